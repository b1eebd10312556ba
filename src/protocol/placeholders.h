// Per-run names and the placeholders a command uses to reach them. Every run
// of a campaign must differ in nothing but what is under test, and the
// initial stack address moves with the byte length of argv and environment,
// so every per-run string has the same length in every run.
#pragma once

#include <string>
#include <vector>

namespace memdet::protocol {

// Zero-padded run number: width is that of the largest run number, at
// least 2, so run 7 of 12 is "07" and run 7 of 120 is "007".
std::string run_label(int index, int total_runs);

// Replaces every "{run}" with `label` and every "{run_dir}" with `run_dir`.
std::string substitute(const std::string& text, const std::string& label,
                       const std::string& run_dir);

}  // namespace memdet::protocol
