// memdet run [controls] -- CMD ARGS...
//
// One run with the controls applied in the child between fork and exec. It
// prints one line on stderr naming what it applied and verified, and exits
// with the child's status: 128+N for a signal, 124 on timeout, 125 for
// memdet's own failure, 126 or 127 when the command cannot be executed.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "launch/launcher.h"
#include "report/check_json.h"
#include "report/check_terminal.h"

extern char** environ;

namespace memdet::cli {
namespace {

struct RunOptions {
  ControlOptions controls;
  double timeout = 0;
  bool stdin_terminal = false;
  std::string json_path;
  std::vector<std::string> command;
};

int run(const RunOptions& options) {
  if (options.json_path == "-") {
    // The workload writes to memdet's stdout, so JSON there would be mixed
    // with whatever it prints.
    throw CommandError(125,
                       "--json - is not possible with run: the workload's output goes to "
                       "stdout; give --json a file");
  }
  launch::LaunchSpec spec;
  std::string executable;
  if (auto failure = launch::resolve_executable(options.command[0], executable)) {
    std::fprintf(stderr, "memdet run: %s\n", failure->message.c_str());
    return failure->status;
  }
  spec.executable = executable;
  spec.argv = options.command;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    spec.env.emplace_back(*entry);
  }
  spec.controls = to_controls(options.controls, 125);
  launch::apply_env_controls(spec.controls, spec.env);
  if (options.timeout > 0) {
    spec.timeout_seconds = options.timeout;
  }
  spec.stdin_mode =
      options.stdin_terminal ? launch::StdinMode::kTerminal : launch::StdinMode::kNull;

  auto result = launch::launch(spec);
  if (!result) {
    throw CommandError(125, result.error().message);
  }

  std::string line = launch::summarize_checks(result->checks);
  switch (result->outcome) {
    case launch::Outcome::kControlFailed:
    case launch::Outcome::kExecFailed:
      std::fprintf(stderr, "memdet run: %s\n", result->message.c_str());
      break;
    case launch::Outcome::kTimedOut:
      std::fprintf(stderr, "memdet run: timed out after %g s, killed the workload; %s\n",
                   options.timeout, line.c_str());
      break;
    default:
      std::fprintf(stderr, "memdet run: %s; %s\n", report::describe_status(*result).c_str(),
                   line.c_str());
  }
  for (const launch::LeftBehind& process : result->left_behind) {
    std::fprintf(stderr, "memdet run: pid %d (%s) outlived the workload and was ended\n",
                 process.pid, process.command.c_str());
  }

  if (!options.json_path.empty()) {
    Status written = report::write_json(report::launch_json(*result), options.json_path);
    if (!written) {
      throw CommandError(125, written.error().message);
    }
  }
  return result->run_exit_status();
}

}  // namespace

Registered add_run_command(CLI::App& parent) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* app = parent.add_subcommand(
      "run", "Run a command once with controls applied, and verify them from the child's side");
  add_control_options(*app, options->controls);
  app->add_option("--timeout", options->timeout,
                  "seconds before the workload's whole process group is killed (exit 124)")
      ->check(timeout_validator());
  app->add_flag("--stdin", options->stdin_terminal,
                "give the workload memdet's stdin (and the terminal) instead of /dev/null");
  app->add_option("--json", options->json_path,
                  "write the run record as JSON to FILE (- for stdout)");
  app->add_option("command", options->command, "the command to run, after --")->required();
  return {app, [options] { return run(*options); }, 125};
}

}  // namespace memdet::cli
