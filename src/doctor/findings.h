// What doctor concludes from the facts: one finding per risk, each with
// the reason it matters and the command or flag that removes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "doctor/facts.h"

namespace memdet::doctor {

// How directly a finding can change a program's results.
enum class Severity {
  kHigh,    // changes placement or layout every run, or keeps memdet from holding a factor
  kMedium,  // changes results in code that depends on layout, timing or thread count
  kLow,     // changes timing only, or a setting that does nothing
};

const char* severity_name(Severity severity);

struct Finding {
  std::string id;  // stable, for scripts: "numa-balancing", "unknown-env:MPI_PRELOAD"
  Severity severity = Severity::kLow;
  std::string what;
  std::string why;
  std::string fix;  // the memdet flag or system command that removes it
};

struct Options {
  // The mlock the memlock finding is judged against (--mlock-size).
  uint64_t mlock_bytes = uint64_t{1} << 30;
};

// Every finding, the most severe first; host before environment within one
// severity.
std::vector<Finding> judge(const Facts& facts, const Options& options);

// The parts of judge(), one per source of risk.
void judge_host(const Facts& facts, const Options& options, std::vector<Finding>& findings);
void judge_environment(const Facts& facts, std::vector<Finding>& findings);

// "64 KiB", "8 MiB", "1 GiB": binary units, exact when they divide.
std::string format_bytes(uint64_t bytes);

// Names in a MALLOC_CONF value that jemalloc 5.3 does not know, and pairs
// without a "name:value" shape, in order.
std::vector<std::string> unknown_jemalloc_options(const std::string& conf);
// The known jemalloc option closest to `name`; empty when none is close.
std::string closest_jemalloc_option(const std::string& name);

}  // namespace memdet::doctor
