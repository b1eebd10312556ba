// The terminal summary of a check campaign: a few lines and a table of runs,
// for a person. Machines read the JSON form instead.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

#include "protocol/check.h"

namespace memdet::report {

void print_check_summary(const protocol::CheckReport& report, std::FILE* out);

// The verdict paragraph the summary ends with: the verdict, the bound, and
// what failed.
void print_check_verdict(const protocol::CheckReport& report, std::FILE* out);

// What `print` writes, as a string: the JSON writers store the verdict
// paragraphs in the words the terminal shows.
std::string printed(const std::function<void(std::FILE*)>& print);

// Where the records go, before the first run starts.
void print_campaign_start(const protocol::CheckReport& report, std::FILE* out);

// One line per finished run, printed while the campaign goes on.
void print_run_progress(const protocol::RunRecord& run, int total, std::FILE* out);

// One line naming what is pinned, perturbed and not applicable.
std::string describe_profile(const factors::Profile& profile);

// "heap perturbed 32 (reference 0): verified, 1200 allocations ..."
std::string describe_factor(const factors::FactorRecord& record);

// "exit 0", "signal 9 (Killed)", "timed out", ...
std::string describe_status(const launch::LaunchResult& result);

// A run's launch status, with the first artifact it did not write.
std::string run_status(const protocol::RunRecord& run);

// How one artifact of an outcome differs from the reference's, in the
// indented lines check's summary uses; nothing for an identical one.
void print_artifact_comparison(const protocol::ArtifactComparison& comparison, std::FILE* out);

}  // namespace memdet::report
