// The isolate report for a terminal: a verdict paragraph, then one line per
// factor, readable in 80 columns.
#pragma once

#include <cstdio>
#include <string>

#include "protocol/isolate.h"

namespace memdet::report {

void print_isolate_summary(const protocol::IsolateReport& report, std::FILE* out);

// The verdict paragraph the summary ends with, and the --try-fix line.
void print_isolate_verdict(const protocol::IsolateReport& report, std::FILE* out);

// One line per finished run: what it varied, its time and status, and
// whether it matched the pool.
void print_isolate_progress(const protocol::IsolateProgress& progress, std::FILE* out);
// What the run varied, as the progress line names it: "heap=32 (again)".
std::string isolate_progress_what(const protocol::IsolateProgress& progress);

// How far a factor's differing runs moved the result from the pool's:
// "12 ULP, rel 3.1e-07", or "bytes" when no number was compared.
std::string factor_spread(const protocol::IsolateReport& report, const std::string& factor);

}  // namespace memdet::report
