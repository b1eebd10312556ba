// MEMDET_PRELOAD, parsed without allocating: the fields of CONTRACT.md as a
// plain struct with fixed-size storage, so it can live in a static and be
// filled at the first hooked call.
#pragma once

#include <sched.h>

#include <cstddef>
#include <cstdint>

namespace memdet::preload {

// kHugetlb: large blocks mapped from the hugetlb pool of one page size
// (Config::hugetlb_shift), with MAP_HUGETLB.
enum class Hugepages { kUnset, kHuge, kSmall, kHugetlb };

// clock=: counter advances a virtual wall clock per read (plus the time
// spent sleeping); shift runs it at real speed from a fixed epoch.
enum class ClockMode { kUnset, kCounter, kShift };

// fileorder=: directory listings in byte order of the names, or in the
// order of a keyed hash of them.
enum class FileOrder { kUnset, kSorted, kKeyed };

inline constexpr size_t kMaxValue = 4096;    // longest MEMDET_PRELOAD accepted
inline constexpr size_t kMaxPinCpus = 1024;  // entries in cpus=

struct Config {
  char report_prefix[kMaxValue] = {};  // empty: no report
  uint64_t seed = 0;
  int heap_class = -1;  // -1: not set
  bool heap_random = false;
  int uninit = -1;  // fill byte, -1: not set
  Hugepages hugepages = Hugepages::kUnset;
  unsigned hugetlb_shift = 0;  // kHugetlb: log2 of the page size, 21 (2 MiB) or 30 (1 GiB)
  bool mlock = false;
  int pin_cpus[kMaxPinCpus] = {};
  size_t pin_cpu_count = 0;
  bool has_free_cpus = false;
  cpu_set_t free_cpus = {};
  bool trace_threads = false;
  char fingerprint_dir[kMaxValue] = {};  // empty: no fingerprint
  uint64_t fingerprint_threshold = 64 * 1024;
  unsigned fingerprint_colours = 0;  // 0: from the LLC's geometry

  bool entropy = false;  // entropy=: OS entropy served from a seeded stream
  uint64_t entropy_seed = 0;
  // entropy_window=LO-HI: the root image's reads LO..HI (from 1) draw from
  // entropy_window_seed instead; 0-0: none.
  uint64_t entropy_window_low = 0;
  uint64_t entropy_window_high = 0;
  uint64_t entropy_window_seed = 0;
  // lineage=: the process's place among the workload's processes; 0 for
  // the image memdet launched, rewritten for exec'd descendants. The top
  // bit marks an image the launched process exec'd (a launcher script
  // exec'ing the interpreter): still the process memdet watches.
  uint64_t lineage = 0;

  ClockMode clock = ClockMode::kUnset;
  int64_t clock_epoch = 0;      // seconds since 1970
  uint64_t clock_epoch_ns = 0;  // and nanoseconds past it, below 10^9
  // clock_window=LO-HI: the root image's wall-clock reads LO..HI read from
  // clock_window_epoch instead; 0-0: none.
  uint64_t clock_window_low = 0;
  uint64_t clock_window_high = 0;
  int64_t clock_window_epoch = 0;
  uint64_t clock_window_epoch_ns = 0;

  FileOrder fileorder = FileOrder::kUnset;
  uint64_t fileorder_key = 0;
  // fileorder_window=LO-HI: with fileorder=keyed, only the root image's
  // listings LO..HI (from 1) take the keyed order, the others are sorted;
  // 0-0: none.
  uint64_t fileorder_window_low = 0;
  uint64_t fileorder_window_high = 0;

  bool fingerprints() const { return fingerprint_dir[0] != '\0'; }

  // Some feature works through the allocation hooks.
  bool shapes_allocation() const {
    return shapes_heap() || uninit >= 0 || hugepages != Hugepages::kUnset || fingerprints();
  }

  // Headers in front of every block: the layout itself is perturbed.
  bool shapes_heap() const { return heap_class >= 0 || heap_random; }
  // Threads go through the start trampoline: pinned, logged, or given an
  // ordinal for the seeded heap offsets.
  // Fingerprints key their digests on the ordinal.
  bool wraps_threads() const {
    return pin_cpu_count > 0 || trace_threads || heap_random || fingerprints() || entropy ||
           clock != ClockMode::kUnset;
  }
  bool logs_threads() const { return pin_cpu_count > 0 || trace_threads; }
};

inline constexpr uint64_t kLaunchedLineageBit = 1ULL << 63;

// An image of the process memdet launched, itself or after execs (never a
// forked child's): where the read and listing windows apply.
inline bool launched_lineage(uint64_t lineage) {
  return lineage == 0 || (lineage & kLaunchedLineageBit) != 0;
}

enum class ParseOutcome {
  kPassive,  // absent or blank
  kActive,
  kError,  // `error` holds the one line to print; the library stays passive
};

// Parses `text` (null when the variable is absent) into `config`, which must
// be freshly constructed (the struct is large: callers keep it static rather
// than build temporaries on a thread's stack). Fields are
// `key=value` separated by ';'; spaces around fields are ignored, so is an
// empty field. On kError, `error` holds "memdet preload: ..." without a
// newline.
ParseOutcome parse_config(const char* text, Config& config, char* error, size_t error_size);

// Parses a CPU list in taskset syntax ("0-3,8") into `set`. Returns false on
// an empty list, a malformed item, a reversed range or a CPU at or past
// CPU_SETSIZE.
bool parse_cpu_set(const char* text, size_t size, cpu_set_t& set);

}  // namespace memdet::preload
