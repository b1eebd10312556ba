// memdet: runs a training command several times under controlled memory and
// timing conditions and says whether, and why, its results differ.
//
// This file parses the command line and maps every error to one exit status
// in one place. Errors that are the user's (bad options, unreadable input)
// print one line; anything else is memdet's fault and says so.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "core/text.h"
#include "factors/system_settings.h"

int main(int argc, char** argv) {
  using namespace memdet;

  CLI::App app{"memdet: find out whether, and why, a training run gives different results",
               "memdet"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "memdet 0.1.0");

  std::vector<cli::Registered> commands = {
      cli::add_run_command(app),    cli::add_check_command(app),   cli::add_demo_command(app),
      cli::add_canary_command(app), cli::add_restore_command(app), cli::add_doctor_command(app),
      cli::add_diff_command(app),   cli::add_isolate_command(app), cli::add_report_command(app),
  };

  // A reader that goes away (`memdet check ... | head`) must not kill memdet
  // before it has stopped the workload and written its records; writes then
  // fail with EPIPE instead. The child resets every disposition before exec.
  std::signal(SIGPIPE, SIG_IGN);

  // `memdet help` is what many people type first.
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "help") {
    args[0] = "--help";
  }
  std::reverse(args.begin(), args.end());

  int usage_status = 2;
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return app.exit(version);
  } catch (const CLI::ParseError& error) {
    // CLI11's own statuses are not memdet's; a usage error is 2, or 125 under
    // `run`, where 2 could be the child's own status.
    std::string stray;
    for (const cli::Registered& command : commands) {
      if (command.app->parsed()) {
        usage_status = command.usage_status;
        for (const std::string& arg : command.app->remaining()) {
          stray += arg == "--" ? "" : (stray.empty() ? "" : " ") + arg;
        }
      }
    }
    if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr && !stray.empty()) {
      std::fprintf(stderr,
                   "memdet: unknown option or stray argument: %s (the command goes after --; "
                   "see --help)\n",
                   printable(stray).c_str());
    } else {
      std::fprintf(stderr, "memdet: %s (see --help)\n", printable(error.what()).c_str());
    }
    return usage_status;
  }

  for (const cli::Registered& command : commands) {
    if (!command.app->parsed()) {
      continue;
    }
    // System settings a killed memdet left changed are put back before
    // anything else runs (or, without root, reported). `restore` does it
    // itself; `canary` is a workload, not a campaign.
    const std::string& name = command.app->get_name();
    if (name == "run" || name == "check" || name == "demo" || name == "isolate") {
      std::vector<std::string> messages;
      (void)factors::recover_journal(messages);
      for (const std::string& message : messages) {
        std::fprintf(stderr, "memdet: %s\n", printable(message).c_str());
      }
    }
    try {
      return command.run();
    } catch (const CommandError& error) {
      std::fprintf(stderr, "memdet: %s\n", printable(error.what()).c_str());
      return error.status();
    } catch (const std::exception& error) {
      std::fprintf(stderr, "memdet: internal error: %s\n", error.what());
      return command.usage_status == 125 ? 125 : 2;
    }
  }
  std::fprintf(stderr, "memdet: no command given; run with --help\n");
  return 2;
}
