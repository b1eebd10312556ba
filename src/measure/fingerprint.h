// The memory-layout fingerprints that libmemdet_preload.so leaves in a run
// directory (fingerprint= in src/preload/CONTRACT.md): one per process
// image, read from its full record, or from its live file alone when the
// process was killed before it could write one. And the comparison of two
// runs: where their allocation sequences first diverge, whether their
// virtual layouts match, how far their physical page colours differ.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace memdet::measure {

struct KeptAllocation {
  std::string thread;  // creation ordinal: "0", "0.1", ...
  uint64_t index = 0;  // in that thread's sequence
  int kind = 0;        // 1 malloc, 2 calloc, 3 realloc, 4 aligned, 5 new
  uint64_t size = 0;
  uint64_t address = 0;
  uint64_t page_offset = 0;  // address mod 4096
  std::string caller;        // module+0xoffset, or 0xaddress
};

struct ThreadSequence {
  std::string ordinal;
  uint64_t count = 0;
  uint64_t size_digest = 0;
  uint64_t address_digest = 0;
  std::vector<std::pair<uint64_t, uint64_t>> checkpoints;  // (count 2^k, size digest)
};

struct Region {
  uint64_t start = 0;
  uint64_t size = 0;
  std::string perms;
  std::string path;  // the run directory written as <run>; "-" when anonymous
};

enum class FingerprintSource {
  kRecord,    // the full record: the process left by exit, _exit, exec or a fatal signal
  kLiveOnly,  // only the live file: killed (SIGKILL, a timeout) before writing one
  kMissing,   // nothing: the library was not loaded, or could not write
};

struct ProcessFingerprint {
  FingerprintSource source = FingerprintSource::kMissing;
  std::string stem;  // "<pid>" or "<pid>-<image>"
  int pid = 0;
  int ppid = 0;
  int image = 0;
  std::string exe;
  std::string end;  // exit, _exit, exec, signal N, running
  uint64_t threshold = 0;
  uint64_t global_count = 0;
  uint64_t global_digest = 0;  // order across threads: depends on timing
  std::vector<ThreadSequence> threads;
  std::vector<KeptAllocation> first;  // the first allocations of each thread
  std::vector<KeptAllocation> large;  // those at or above the threshold, capped
  std::optional<uint64_t> maps_digest;
  std::vector<Region> regions;
  std::string numa_pages;  // "N0=123,N1=4" or "-"
  long long rss_kb = -1;
  long long anonymous_kb = -1;
  long long anon_huge_kb = -1;
  std::string physical;  // readable, hidden, unreadable, none
  uint64_t physical_pages = 0;
  unsigned colours = 0;
  std::vector<uint64_t> colour_pages;
  std::optional<uint64_t> frame_digest;
  std::string hypervisor;  // "none" or the CPUID vendor, e.g. KVMKVMKVM

  const ThreadSequence* thread(const std::string& ordinal) const;
};

struct RunFingerprint {
  std::string dir;
  // The root process first (the one whose parent left no fingerprint
  // here), then the others in pid order, each pid's images in exec order.
  std::vector<ProcessFingerprint> processes;
  std::vector<std::string> problems;  // files that did not parse
};

// Parses the text of a fingerprint.<stem>.txt record.
Result<ProcessFingerprint> parse_fingerprint_record(const std::string& text);
// Reads the digests of a fingerprint.<stem>.live file.
Result<ProcessFingerprint> read_live_fingerprint(const std::string& path);

// Whether `dir` holds any fingerprint file.
bool has_fingerprints(const std::string& dir);

// Every fingerprint in `dir`. With root_pid > 0 (the pid memdet launched),
// that process comes first, and is recorded as kMissing when it left none.
RunFingerprint read_run_fingerprint(const std::string& dir, int root_pid = 0);

// Where two allocation sequences first diverge.
struct Divergence {
  std::string thread;
  bool exact = false;   // index and both allocations known
  uint64_t index = 0;   // exact: the first differing allocation
  uint64_t after = 0;   // not exact: equal up to here (a checkpoint) ...
  uint64_t before = 0;  // ... and differing by here (0: unknown)
  std::optional<KeptAllocation> a;
  std::optional<KeptAllocation> b;
};

struct ProcessComparison {
  std::string stem_a;
  std::string stem_b;
  std::string problem;           // a side missing, or only live
  bool sizes_equal = false;      // every thread's size sequence
  bool addresses_equal = false;  // sizes and addresses
  bool global_equal = false;     // the timing-dependent order across threads
  std::optional<Divergence> divergence;
  std::optional<bool> layout_equal;  // absent: a side has no layout
  std::string first_region_a;        // the first region that differs
  std::string first_region_b;
  std::optional<double> colour_distance;  // total variation, 0..1
  std::string physical_a;
  std::string physical_b;
  std::string hypervisor;
};

struct FingerprintComparison {
  std::vector<ProcessComparison> processes;  // paired in run order
  size_t only_a = 0;
  size_t only_b = 0;
  bool equal = true;  // sizes, addresses and layouts all equal
};

FingerprintComparison compare_fingerprints(const RunFingerprint& a, const RunFingerprint& b);

// Total variation distance between two histograms, each normalised to sum
// 1: half the sum of absolute differences. Empty or zero-sum: nullopt.
std::optional<double> total_variation(const std::vector<uint64_t>& a,
                                      const std::vector<uint64_t>& b);

// The comparison as text lines (each starting with two spaces) and as JSON.
std::vector<std::string> describe_comparison(const FingerprintComparison& comparison);
nlohmann::json comparison_json(const FingerprintComparison& comparison);

}  // namespace memdet::measure
