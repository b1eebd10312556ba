// Built-in workloads with one known cause of run-to-run difference each, so
// that a command which names the cause of a difference can be tried on
// answers known in advance. Each writes out_dir/result.txt, one
// "name value" line per value, floats printed with %.9g (enough digits to
// read back the same float), so two files differ exactly when a value does.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace memdet::workloads {

enum class Cause {
  heap,       // a reduction grouped by its buffer's address mod 64
  aslr,       // a sum in an order set by where the executable is mapped
  atomic,     // threads adding into one float in arrival order
  threads,    // a partition into as many parts as the thread count
  uninit,     // a sum over memory never written
  allocator,  // a sum in the address order of blocks the allocator chose
  entropy,    // a sum in an order drawn from std::random_device, never seeded
  clock,      // a sum in an order drawn from a seed read off the wall clock
  fileorder,  // a sum in the order a directory lists the files holding the values
  none,       // a fixed-order sum: the control
};

// Every cause, in the order help lists them.
inline constexpr Cause kCauses[] = {
    Cause::heap,      Cause::aslr,    Cause::atomic, Cause::threads,   Cause::uninit,
    Cause::allocator, Cause::entropy, Cause::clock,  Cause::fileorder, Cause::none};

const char* cause_name(Cause cause);
std::optional<Cause> parse_cause(std::string_view name);

// Runs the workload of `cause` and writes out_dir/result.txt; out_dir is
// created, with its parents, if missing. The fileorder workload also
// writes one file per value under out_dir/values.
Status run_labelled(Cause cause, const std::string& out_dir);

// The pieces whose dependence can be checked in-process.

// The values the workloads sum: fixed by `count` alone, spread over 2^-12 ..
// 2^12 in magnitude so that almost any change in the order or grouping of
// their sum changes its rounding.
std::vector<float> labelled_values(size_t count);

// Sums data[0, count) the way a vectorised reduction does: one at a time
// until data + i is 64-byte aligned, then 16 lanes over aligned blocks, then
// the tail. The grouping, and so the rounding, follows the address mod 64.
float offset_grouped_sum(const float* data, size_t count);

// Sums data[0, count) cut into `parts` contiguous parts, each summed in
// order on a thread of its own, the part sums then added in order. `parts`
// is capped to 1..256.
Result<float> partitioned_sum(const float* data, size_t count, int parts);

// The thread count an OpenMP program would use: OMP_NUM_THREADS's value
// when it is a count (`omp_num_threads` null when unset), else the CPUs in
// the affinity mask. Capped to 1..256.
int thread_count(const char* omp_num_threads, int affinity_cpus);

}  // namespace memdet::workloads
