// The subcommands. Each file defines one: its options, their help, and the
// function that runs it and returns memdet's exit status.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

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

// The controls `run` and `check` share, and their options.
struct ControlOptions {
  std::string aslr;
  std::optional<std::string> cpus;
  int threads = 0;
  std::string env_preset;
};
void add_control_options(CLI::App& app, ControlOptions& options);
// Turns the parsed options into controls; throws a CommandError with
// `usage_status` naming the bad value.
launch::Controls to_controls(const ControlOptions& options, int usage_status);

// A validator for --timeout: a finite number of seconds, above zero and at
// most a year.
CLI::Validator timeout_validator();

// The path of the running memdet binary, for workloads it starts itself.
std::string self_executable();

}  // namespace memdet::cli
