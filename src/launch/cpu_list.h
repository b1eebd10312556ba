// CPU lists in the kernel's and taskset's syntax: "0-3,8".
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "core/result.h"

namespace memdet::launch {

using CpuSet = std::set<int>;

// Accepts comma-separated CPUs and inclusive ranges; rejects empty input,
// empty items, reversed ranges and CPUs at or past CPU_SETSIZE. Surrounding
// whitespace (the newline /proc leaves) is ignored.
Result<CpuSet> parse_cpu_list(std::string_view text);

// The shortest list in the same syntax: consecutive CPUs become ranges.
std::string format_cpu_list(const CpuSet& cpus);

}  // namespace memdet::launch
