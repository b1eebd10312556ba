// The kernel's memory-management event counts from /proc/vmstat, read before
// and after a run. They count the whole machine, not the workload: another
// process migrating pages or faulting huge pages moves them too, so every
// record labels them system-wide.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace memdet::measure {

// The fields memdet records, those of them the running kernel has (a kernel
// built without NUMA or THP support omits theirs).
inline constexpr const char* kVmstatFields[] = {
    "numa_pages_migrated", "pgmigrate_success", "thp_fault_alloc", "thp_fault_fallback",
    "thp_collapse_alloc",  "compact_stall",     "compact_success",
};

struct VmstatValue {
  std::string name;
  uint64_t value = 0;
};
using VmstatSnapshot = std::vector<VmstatValue>;

struct VmstatDelta {
  std::string name;
  uint64_t before = 0;
  uint64_t after = 0;
  // The kernel's counters only grow; a smaller value after means it wrapped
  // or was reset, and the delta is then reported as 0.
  uint64_t delta() const { return after >= before ? after - before : 0; }
};

// The recorded fields from the text of /proc/vmstat ("name value" lines), in
// the order of kVmstatFields. Lines that do not parse are skipped.
VmstatSnapshot parse_vmstat(const std::string& text);

// Reads and parses `path`. Fails when it cannot be read.
Result<VmstatSnapshot> read_vmstat(const std::string& path = "/proc/vmstat");

// The fields present in both snapshots, in the order of `before`.
std::vector<VmstatDelta> vmstat_deltas(const VmstatSnapshot& before, const VmstatSnapshot& after);

}  // namespace memdet::measure
