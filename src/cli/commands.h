// The subcommands. Each file defines one: its options, their help, and the
// function that runs it and returns memdet's exit status.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "factors/profile.h"
#include "launch/controls.h"

namespace memdet::cli {

// A subcommand registers itself and says how to run it after parsing.
using Runner = std::function<int()>;

// The exit status of a usage error found while parsing: `run` keeps 125, as
// env(1) does, so its own failures never look like the child's status.
struct Registered {
  CLI::App* app;
  Runner run;
  int usage_status;
};

Registered add_run_command(CLI::App& parent);
Registered add_check_command(CLI::App& parent);
Registered add_canary_command(CLI::App& parent);
Registered add_demo_command(CLI::App& parent);
Registered add_restore_command(CLI::App& parent);
Registered add_doctor_command(CLI::App& parent);
Registered add_diff_command(CLI::App& parent);
Registered add_isolate_command(CLI::App& parent);
Registered add_report_command(CLI::App& parent);

// The factor flags `run` and `check` share, with the aliases users of
// numactl, taskset and setarch would guess.
struct ControlOptions {
  std::vector<std::string> pins;
  std::vector<std::string> perturbs;
  std::string seed;
  bool system = false;
  std::string aslr;
  std::optional<std::string> cpus;
  int threads = 0;
  std::string env_preset;
  std::optional<std::string> membind;
  std::optional<std::string> interleave;
  std::optional<std::string> cpunodebind;
  std::optional<std::string> noise_cpus;
};
void add_control_options(CLI::App& app, ControlOptions& options);

// The factors of one command, resolved against this host.
struct FactorSetup {
  factors::Host host;
  factors::Profile profile;
  launch::Controls controls;  // what no factor owns: the CPU set given with --cpus
};
// Throws a CommandError with `usage_status` and one line naming the factor
// for a bad request. `replay` pins recorded values exactly.
FactorSetup prepare_factors(const ControlOptions& options, int usage_status,
                            const std::vector<std::pair<std::string, std::string>>& replay = {});

// One line on stderr when the profile serves OS entropy from a seeded
// stream, which weakens cryptographic randomness in those runs.
void warn_about_weakened_entropy(const factors::Profile& profile);

// A validator for --timeout: a finite number of seconds, above zero and at
// most a year.
CLI::Validator timeout_validator();

// Fails with a usage error unless the file an option names (--json FILE,
// --html FILE) can be written, so that is found out before the runs rather
// than after them.
void require_writable(const std::string& option, const std::string& path);

// A CLI11 check that an option's file name is not empty.
CLI::Validator non_empty_file_name();

// require_writable for a report written beside a campaign: refuses an empty
// name and the campaign's own record files in `campaign_dir` (check.json,
// isolate.json, campaign.db), and accepts a path inside a campaign
// directory memdet has yet to make. `campaign_dir` may be empty: no
// campaign directory is known yet.
void require_report_output(const std::string& option, const std::string& path,
                           const std::string& campaign_dir);

// The path of the running memdet binary, for workloads it starts itself.
std::string self_executable();

}  // namespace memdet::cli
