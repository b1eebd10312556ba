// The isolate report for a terminal: a verdict paragraph, then one line per
// factor, readable in 80 columns.
#pragma once

#include <cstdio>

#include "protocol/isolate.h"

namespace memdet::report {

void print_isolate_summary(const protocol::IsolateReport& report, std::FILE* out);

// The verdict paragraph the summary ends with, and the --try-fix line.
void print_isolate_verdict(const protocol::IsolateReport& report, std::FILE* out);

// One line per finished run, for logs and terminals alike.
void print_isolate_progress(const protocol::RunRecord& run, const protocol::IsolateStep& step,
                            const protocol::IsolateFindings& findings, std::FILE* out);

// How far a factor's differing runs moved the result from the pool's:
// "12 ULP, rel 3.1e-07", or "bytes" when no number was compared.
std::string factor_spread(const protocol::IsolateReport& report, const std::string& factor);

}  // namespace memdet::report
