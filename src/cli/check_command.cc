// memdet check -n N [controls] [--artifact PATTERN]... -- CMD ARGS...
//
// N runs of the command, one after another, each in its own record
// directory; the outcomes grouped by the digests of what the runs wrote; a
// verdict with the evidence. Exit 0: no difference seen; 1: results differ;
// 2: usage or input error; 3: the workload failed in some run; 130:
// interrupted.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli/campaign_options.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "core/error.h"
#include "core/sys.h"
#include "core/text.h"
#include "factors/system_settings.h"
#include "measure/counters.h"
#include "measure/variation.h"
#include "protocol/check.h"
#include "report/check_json.h"
#include "report/check_terminal.h"
#include "report/progress.h"

namespace memdet::cli {
namespace {

struct CheckCliOptions {
  int runs = 5;
  ControlOptions controls;
  CampaignOptions campaign;
  bool no_library_record = false;
  bool show_output = false;
  bool stop_at_first_difference = false;
  bool stdin_terminal = false;
  std::string counter_rule = "none";
};

// The status line at the foot of the terminal while a campaign runs, and
// when the campaign started.
report::StatusLine* status_line = nullptr;
std::chrono::steady_clock::time_point campaign_start;

void progress(const protocol::RunRecord& run, int total) {
  if (status_line != nullptr) {
    status_line->clear();
  }
  report::print_run_progress(run, total, stderr);
  if (status_line != nullptr) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - campaign_start).count();
    status_line->show(report::progress_text("check", "", run.index, std::max(0, total - run.index),
                                            false, elapsed));
  }
}

void started(const protocol::CheckReport& report) {
  campaign_start = std::chrono::steady_clock::now();
  warn_about_weakened_entropy(report.options.profile);
  report::print_campaign_start(report, stderr);
}

}  // namespace

// Shared with `demo`, which runs the same campaign on the canary.
protocol::CheckReport run_check_campaign(protocol::CheckOptions options, std::FILE* summary) {
  if (options.measure_counters) {
    measure::warm_up_perf_events();
  }
  InterruptGuard guard;
  options.interrupt = guard.flag();
  options.on_run_done = progress;
  options.on_start = started;
  auto report = [&] {
    // The runs' own output goes to the terminal with --show-output: no
    // status line to tangle with it.
    report::StatusLine line(stderr);
    status_line = options.show_output ? nullptr : &line;
    auto made = protocol::run_check(options);
    status_line = nullptr;
    return made;
  }();
  if (!report) {
    throw usage_error(report.error().message);
  }
  Status written =
      report::write_json(report::check_json(*report), report->campaign_dir + "/check.json");
  if (!written) {
    std::fprintf(stderr, "memdet check: %s\n", written.error().message.c_str());
  }
  if (summary != nullptr) {
    report::print_check_summary(*report, summary);
  }
  return std::move(*report);
}

namespace {

int check(const CheckCliOptions& cli) {
  if (!cli.campaign.no_counters) {
    measure::warm_up_perf_events();
  }
  protocol::CheckOptions options;
  options.runs = cli.runs;
  apply_campaign_options(cli.campaign, options);
  options.record_libraries = !cli.no_library_record;
  auto rule = measure::parse_counter_rule(cli.counter_rule);
  if (!rule) {
    throw usage_error(rule.error().message);
  }
  options.counter_rule = *rule;
  FactorSetup setup = prepare_factors(cli.controls, 2);
  // Held for the whole campaign, undone when this scope ends on any path.
  auto system = factors::SystemSettings::apply(factors::system_writes(setup.profile, setup.host));
  if (!system) {
    throw usage_error(system.error().message);
  }
  options.controls = setup.controls;
  options.profile = std::move(setup.profile);
  options.host = std::move(setup.host);
  options.show_output = cli.show_output;
  options.stop_at_first_difference = cli.stop_at_first_difference;
  options.stdin_mode = cli.stdin_terminal ? launch::StdinMode::kTerminal : launch::StdinMode::kNull;

  // The JSON on stdout is for machines, so the summary moves to stderr.
  std::FILE* summary = cli.campaign.json_path == "-" ? stderr : stdout;
  protocol::CheckReport report = run_check_campaign(options, summary);
  if (!cli.campaign.json_path.empty()) {
    Status written = report::write_json(report::check_json(report), cli.campaign.json_path);
    if (!written) {
      throw usage_error(written.error().message);
    }
  }
  if (!cli.campaign.html_path.empty()) {
    write_campaign_html(report::check_json(report), report.campaign_dir + "/check.json",
                        cli.campaign.html_path);
  }
  if (!report.input_error.empty()) {
    std::fprintf(stderr, "memdet check: %s\n", printable(report.input_error).c_str());
  }
  return report.exit_status();
}

}  // namespace

Registered add_check_command(CLI::App& parent) {
  auto options = std::make_shared<CheckCliOptions>();
  CLI::App* app = parent.add_subcommand(
      "check", "Run a command N times and say, with evidence, whether its results repeat");
  app->add_option("-n,--runs", options->runs, "how many runs (at least 2)")
      ->capture_default_str()
      ->check(CLI::Range(2, 100000));
  add_control_options(*app, options->controls);
  add_campaign_options(*app, options->campaign, "check");
  app->add_flag("--no-library-record", options->no_library_record,
                "do not load memdet's LD_AUDIT library into the runs, so their records do not "
                "say which BLAS and allocator they loaded (it adds a linker namespace, and sets "
                "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096)");
  app->add_flag("--show-output", options->show_output,
                "also pass the runs' stdout and stderr through (they are always captured)");
  app->add_flag("--stop-at-first-difference", options->stop_at_first_difference,
                "end the batch at the first run whose outcome differs from the first");
  app->add_flag("--stdin", options->stdin_terminal,
                "give the runs memdet's stdin instead of /dev/null");
  app->add_option("--counter-rule", options->counter_rule,
                  "when a counter's variation across the runs is flagged: none (the default: "
                  "the figures are shown, and with one pool of runs nothing says how much "
                  "spread to expect) or fixed:P% (a coefficient of variation above P %, a rule "
                  "of thumb; e.g. fixed:2%)")
      ->capture_default_str();
  add_command_option(*app, options->campaign);
  return {app, [options] { return check(*options); }, 2};
}

}  // namespace memdet::cli
