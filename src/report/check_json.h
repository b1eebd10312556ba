// The JSON form of a check campaign and of each run record. The schema is
// versioned: a reader checks "schema" before anything else.
#pragma once

#include <nlohmann/json.hpp>

#include "protocol/check.h"

namespace memdet::report {

inline constexpr const char* kCheckSchema = "memdet.check/2";
inline constexpr const char* kRunSchema = "memdet.run/2";

nlohmann::json launch_json(const launch::LaunchResult& result);
// A run record's "counters": each perf counter with its value (and, when it
// was multiplexed, the raw count with its enabled and running times) or
// {"supported": false, "reason": ...}; the workload's rusage; and the
// /proc/vmstat deltas, labelled system-wide.
nlohmann::json counters_json(const launch::LaunchResult& result);
// check's "counters": per counter, the first run apart, then mean and
// coefficient of variation over the other completed runs, with the rule.
nlohmann::json counter_summary_json(const protocol::CheckReport& report);
nlohmann::json program_json(const host::ProgramRecord& program);
nlohmann::json factors_json(const std::vector<factors::FactorRecord>& records);
nlohmann::json profile_json(const factors::Profile& profile);
nlohmann::json run_json(const protocol::RunRecord& run);
// The run record run_json wrote, read back for a campaign that goes on
// from its stored runs: every field run_json writes except the derived
// ones ("completed", "status", "seed_sources"), which follow from the rest.
// Counters come back in name order, and each loaded object under its
// resolved path, as the record keeps them. The preload library's reports
// are read again from the run directory the record names. Fails with one
// line for another schema or a field of the wrong type.
Result<protocol::RunRecord> read_run_json(const nlohmann::json& document);
// The host a campaign ran on, as check.json holds it.
nlohmann::json host_json(const host::HostInfo& info);
nlohmann::json check_json(const protocol::CheckReport& report);
// How two text files differ, as check and diff write it.
nlohmann::json text_json(const compare::TextDiff& diff);

// record.json in the run's directory, written as soon as the run ends so a
// campaign cut short keeps every finished run.
void write_run_record(const protocol::RunRecord& run);

// Writes `document` to `path`, or to stdout for "-". Fails with the path
// and the reason.
Status write_json(const nlohmann::json& document, const std::string& path);

}  // namespace memdet::report
