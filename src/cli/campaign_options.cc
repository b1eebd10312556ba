#include "cli/campaign_options.h"

#include "cli/commands.h"
#include "core/error.h"
#include "report/campaign_view.h"
#include "report/html.h"

namespace memdet::cli {

void add_campaign_options(CLI::App& app, CampaignOptions& options, const std::string& kind) {
  app.add_option("--artifact", options.artifacts,
                 "a file or glob the runs write, compared between runs (repeatable); {run} and "
                 "{run_dir} are replaced as in the command")
      ->allow_extra_args(false);
  app.add_flag("--no-stdout", options.no_stdout, "do not compare the runs' stdout");
  app.add_option("--mask", options.masks,
                 "a regex blanked out of stdout and text artifacts before they are compared: "
                 "step times, dates, PIDs (repeatable); the run's own directory is always "
                 "blanked out of stdout")
      ->allow_extra_args(false);
  app.add_option("--step-regex", options.step_regex,
                 "a regex whose capture group is the step number in text artifacts, e.g. "
                 "'^step (\\d+)': the report names the first step whose numbers differ");
  app.add_option("--dtype", options.dtype,
                 "how to read files that carry no dtype: raw arrays (f16, bf16, f32, f64), "
                 "numbers in text (f32, f64; inferred when not given), and untyped .npy "
                 "(bf16 for '<V2')")
      ->check(CLI::IsMember({"f16", "bf16", "f32", "f64"}));
  add_tolerance_options(app, options.tolerance,
                        "; applies to .npy, .npz and .safetensors artifacts, whose outcomes then "
                        "count as one when every element is within it");
  app.add_option("--keep", options.keep,
                 "which runs keep a copy of their artifacts: all, diverged (the first run of "
                 "each distinct outcome) or none")
      ->check(CLI::IsMember({"all", "diverged", "none"}))
      ->capture_default_str();
  app.add_option(
      "--out", options.out_dir,
      "campaign directory for the run records (default: a new .memdet/" + kind + "-TIME)");
  app.add_option("--timeout", options.timeout,
                 "seconds before a run's whole process group is killed; the run counts as failed")
      ->check(timeout_validator());
  app.add_flag("--fingerprint", options.fingerprint,
               "record a memory-layout fingerprint of every run in its record directory (this "
               "loads memdet's preload library into every run) and say, for each outcome, where "
               "its allocations first diverged from the reference's and whether the virtual "
               "layouts matched");
  app.add_option("--fingerprint-threshold", options.fingerprint_threshold,
                 "with --fingerprint: allocations of at least this many bytes are kept with "
                 "address and caller, besides each thread's first ones")
      ->capture_default_str();
  app.add_flag("--no-counters", options.no_counters,
               "do not open perf counters on the runs nor read /proc/vmstat around them "
               "(rusage is recorded either way)");
  app.add_option("--json", options.json_path,
                 "also write the " + kind + " report as JSON to FILE (- for stdout)")
      ->check(non_empty_file_name());
  app.add_option("--html", options.html_path,
                 "also write the " + kind +
                     " report as one self-contained HTML page to FILE, with the runs' loss "
                     "curves, as memdet report --html writes it")
      ->type_name("FILE")
      ->check(non_empty_file_name());
}

void write_campaign_html(const nlohmann::json& document, const std::string& source,
                         const std::string& path) {
  Status written = report::write_html(report::campaign_view(document, source), path);
  if (!written) {
    throw usage_error(written.error().message);
  }
}

void add_command_option(CLI::App& app, CampaignOptions& options) {
  app.add_option("command", options.command,
                 "the command, after --; {run} becomes the zero-padded run number and "
                 "{run_dir} the run's record directory (also in MEMDET_RUN and MEMDET_RUN_DIR)")
      ->required();
}

void apply_campaign_options(const CampaignOptions& cli, protocol::CheckOptions& check) {
  check.command = cli.command;
  check.artifact_patterns = cli.artifacts;
  check.include_stdout = !cli.no_stdout;
  check.masks = cli.masks;
  check.step_regex = cli.step_regex;
  check.dtype = cli.dtype;
  check.tolerance = tolerance_from(cli.tolerance);
  check.keep = cli.keep == "all"    ? protocol::CheckOptions::Keep::kAll
               : cli.keep == "none" ? protocol::CheckOptions::Keep::kNone
                                    : protocol::CheckOptions::Keep::kDiverged;
  check.out_dir = cli.out_dir;
  check.measure_counters = !cli.no_counters;
  check.fingerprint = cli.fingerprint;
  check.fingerprint_threshold = cli.fingerprint_threshold;
  if (cli.timeout > 0) {
    check.timeout_seconds = cli.timeout;
  }
  check.echo_to_stderr = cli.json_path == "-";
  if (check.artifact_patterns.empty() && !check.include_stdout) {
    throw usage_error("nothing to compare: --no-stdout and no --artifact");
  }
  if (!cli.json_path.empty() && cli.json_path != "-") {
    require_report_output("--json", cli.json_path, cli.out_dir);
  }
  if (!cli.html_path.empty()) {
    require_report_output("--html", cli.html_path, cli.out_dir);
  }
}

}  // namespace memdet::cli
