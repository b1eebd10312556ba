// memdet check -n N [controls] [--artifact PATTERN]... -- CMD ARGS...
//
// N runs of the command, one after another, each in its own record
// directory; the outcomes grouped by the digests of what the runs wrote; a
// verdict with the evidence. Exit 0: no difference seen; 1: results differ;
// 2: usage or input error; 3: the workload failed in some run; 130:
// interrupted.
#include <unistd.h>

#include <cstdio>

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

namespace memdet::cli {
namespace {

struct CheckCliOptions {
  int runs = 5;
  ControlOptions controls;
  std::vector<std::string> artifacts;
  bool no_stdout = false;
  bool no_library_record = false;
  std::vector<std::string> masks;
  std::string step_regex;
  std::string dtype;
  std::string keep = "diverged";
  std::string out_dir;
  double timeout = 0;
  bool show_output = false;
  bool stop_at_first_difference = false;
  bool stdin_terminal = false;
  std::string counter_rule = "none";
  bool no_counters = false;
  bool fingerprint = false;
  uint64_t fingerprint_threshold = 64 * 1024;
  std::string json_path;
  std::vector<std::string> command;
};

void progress(const protocol::RunRecord& run, int total) {
  report::print_run_progress(run, total, stderr);
}

void started(const protocol::CheckReport& report) { report::print_campaign_start(report, stderr); }

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
  auto report = protocol::run_check(options);
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
  if (!cli.no_counters) {
    measure::warm_up_perf_events();
  }
  protocol::CheckOptions options;
  options.runs = cli.runs;
  options.command = cli.command;
  options.artifact_patterns = cli.artifacts;
  options.include_stdout = !cli.no_stdout;
  options.record_libraries = !cli.no_library_record;
  options.masks = cli.masks;
  options.step_regex = cli.step_regex;
  options.dtype = cli.dtype;
  options.keep = cli.keep == "all"    ? protocol::CheckOptions::Keep::kAll
                 : cli.keep == "none" ? protocol::CheckOptions::Keep::kNone
                                      : protocol::CheckOptions::Keep::kDiverged;
  options.out_dir = cli.out_dir;
  if (!cli.json_path.empty() && cli.json_path != "-") {
    require_writable_json(cli.json_path);
  }
  auto rule = measure::parse_counter_rule(cli.counter_rule);
  if (!rule) {
    throw usage_error(rule.error().message);
  }
  options.counter_rule = *rule;
  options.measure_counters = !cli.no_counters;
  options.fingerprint = cli.fingerprint;
  options.fingerprint_threshold = cli.fingerprint_threshold;
  FactorSetup setup = prepare_factors(cli.controls, 2);
  // Held for the whole campaign, undone when this scope ends on any path.
  auto system = factors::SystemSettings::apply(factors::system_writes(setup.profile, setup.host));
  if (!system) {
    throw usage_error(system.error().message);
  }
  options.controls = setup.controls;
  options.profile = std::move(setup.profile);
  options.host = std::move(setup.host);
  if (cli.timeout > 0) {
    options.timeout_seconds = cli.timeout;
  }
  options.show_output = cli.show_output;
  options.echo_to_stderr = cli.json_path == "-";
  options.stop_at_first_difference = cli.stop_at_first_difference;
  options.stdin_mode = cli.stdin_terminal ? launch::StdinMode::kTerminal : launch::StdinMode::kNull;
  if (options.artifact_patterns.empty() && !options.include_stdout) {
    throw usage_error("nothing to compare: --no-stdout and no --artifact");
  }

  // The JSON on stdout is for machines, so the summary moves to stderr.
  std::FILE* summary = cli.json_path == "-" ? stderr : stdout;
  protocol::CheckReport report = run_check_campaign(options, summary);
  if (!cli.json_path.empty()) {
    Status written = report::write_json(report::check_json(report), cli.json_path);
    if (!written) {
      throw usage_error(written.error().message);
    }
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
  app->add_option("--artifact", options->artifacts,
                  "a file or glob the runs write, compared between runs (repeatable); {run} and "
                  "{run_dir} are replaced as in the command")
      ->allow_extra_args(false);
  app->add_flag("--no-stdout", options->no_stdout, "do not compare the runs' stdout");
  app->add_option("--mask", options->masks,
                  "a regex blanked out of stdout and text artifacts before they are compared: "
                  "step times, dates, PIDs (repeatable); the run's own directory is always "
                  "blanked out of stdout")
      ->allow_extra_args(false);
  app->add_option("--step-regex", options->step_regex,
                  "a regex whose capture group is the step number in text artifacts, e.g. "
                  "'^step (\\d+)': the report names the first step whose numbers differ");
  app->add_option("--dtype", options->dtype,
                  "how to read files that carry no dtype: raw arrays (f16, bf16, f32, f64), "
                  "numbers in text (f32, f64; inferred when not given), and untyped .npy "
                  "(bf16 for '<V2')")
      ->check(CLI::IsMember({"f16", "bf16", "f32", "f64"}));
  app->add_option("--keep", options->keep,
                  "which runs keep a copy of their artifacts: all, diverged (the first run of "
                  "each distinct outcome) or none")
      ->check(CLI::IsMember({"all", "diverged", "none"}))
      ->capture_default_str();
  app->add_flag("--no-library-record", options->no_library_record,
                "do not load memdet's LD_AUDIT library into the runs, so their records do not "
                "say which BLAS and allocator they loaded (it adds a linker namespace, and sets "
                "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096)");
  app->add_option("--out", options->out_dir,
                  "campaign directory for the run records (default: a new .memdet/check-TIME)");
  app->add_option("--timeout", options->timeout,
                  "seconds before a run's whole process group is killed; the run counts as failed")
      ->check(timeout_validator());
  app->add_flag("--show-output", options->show_output,
                "also pass the runs' stdout and stderr through (they are always captured)");
  app->add_flag("--stop-at-first-difference", options->stop_at_first_difference,
                "end the batch at the first run whose outcome differs from the first");
  app->add_flag("--stdin", options->stdin_terminal,
                "give the runs memdet's stdin instead of /dev/null");
  app->add_flag("--fingerprint", options->fingerprint,
                "record a memory-layout fingerprint of every run in its record directory (this "
                "loads memdet's preload library into every run) and say, for each outcome, where "
                "its allocations first diverged from the reference's and whether the virtual "
                "layouts matched");
  app->add_option("--fingerprint-threshold", options->fingerprint_threshold,
                  "with --fingerprint: allocations of at least this many bytes are kept with "
                  "address and caller, besides each thread's first ones")
      ->capture_default_str();
  app->add_flag("--no-counters", options->no_counters,
                "do not open perf counters on the runs nor read /proc/vmstat around them "
                "(rusage is recorded either way)");
  app->add_option("--counter-rule", options->counter_rule,
                  "when a counter's variation across the runs is flagged: none (the default: "
                  "the figures are shown, and with one pool of runs nothing says how much "
                  "spread to expect) or fixed:P% (a coefficient of variation above P %, a rule "
                  "of thumb; e.g. fixed:2%)")
      ->capture_default_str();
  app->add_option("--json", options->json_path,
                  "also write the campaign as JSON to FILE (- for stdout)");
  app->add_option("command", options->command,
                  "the command, after --; {run} becomes the zero-padded run number and "
                  "{run_dir} the run's record directory (also in MEMDET_RUN and MEMDET_RUN_DIR)")
      ->required();
  return {app, [options] { return check(*options); }, 2};
}

}  // namespace memdet::cli
