// memdet isolate [-n N] [--pool N0] [--factors LIST] [--budget RUNS]
//                [--artifact PATTERN]... -- CMD ARGS...
//
// Which factor changes the command's result: free runs, a pool with every
// factor pinned, then each factor perturbed alone against that pool. Exit 0:
// the free runs agree and nothing else differed; 1: some runs differ; 2:
// usage or input error; 3: the workload failed in the free runs; 130:
// interrupted.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/campaign_options.h"
#include "cli/commands.h"
#include "cli/interrupt.h"
#include "core/error.h"
#include "core/text.h"
#include "factors/system_settings.h"
#include "measure/counters.h"
#include "protocol/isolate.h"
#include "report/check_json.h"
#include "report/isolate_json.h"
#include "report/isolate_terminal.h"
#include "report/progress.h"
#include "store/campaign_store.h"

namespace memdet::cli {
namespace {

struct IsolateCliOptions {
  int free_runs = 5;
  int pool_runs = 8;
  int factor_runs = 4;
  int budget = 100;
  std::vector<std::string> factors;
  std::string seed;
  bool system = false;
  bool try_fix = false;
  CampaignOptions campaign;
  std::string resume_dir;
};

// The options a campaign began with, as its store keeps them, with the
// seed it drew when none was given.
nlohmann::json options_json(const IsolateCliOptions& cli, uint64_t seed) {
  const CampaignOptions& campaign = cli.campaign;
  return {{"runs", cli.free_runs},
          {"pool", cli.pool_runs},
          {"factor_runs", cli.factor_runs},
          {"budget", cli.budget},
          {"factors", cli.factors},
          {"seed", std::to_string(seed)},
          {"system", cli.system},
          {"try_fix", cli.try_fix},
          {"artifacts", campaign.artifacts},
          {"no_stdout", campaign.no_stdout},
          {"masks", campaign.masks},
          {"step_regex", campaign.step_regex},
          {"dtype", campaign.dtype},
          {"atol", campaign.tolerance.atol},
          {"rtol", campaign.tolerance.rtol},
          {"max_ulp", campaign.tolerance.max_ulp},
          {"equal_nan", campaign.tolerance.equal_nan},
          {"keep", campaign.keep},
          {"timeout", campaign.timeout},
          {"no_counters", campaign.no_counters},
          {"fingerprint", campaign.fingerprint},
          {"fingerprint_threshold", campaign.fingerprint_threshold},
          {"command", campaign.command}};
}

void read_options_json(const nlohmann::json& stored, IsolateCliOptions& cli) {
  CampaignOptions& campaign = cli.campaign;
  cli.free_runs = stored.at("runs").get<int>();
  cli.pool_runs = stored.at("pool").get<int>();
  cli.factor_runs = stored.at("factor_runs").get<int>();
  cli.budget = stored.at("budget").get<int>();
  cli.factors = stored.at("factors").get<std::vector<std::string>>();
  cli.seed = stored.at("seed").get<std::string>();
  cli.system = stored.at("system").get<bool>();
  cli.try_fix = stored.at("try_fix").get<bool>();
  campaign.artifacts = stored.at("artifacts").get<std::vector<std::string>>();
  campaign.no_stdout = stored.at("no_stdout").get<bool>();
  campaign.masks = stored.at("masks").get<std::vector<std::string>>();
  campaign.step_regex = stored.at("step_regex").get<std::string>();
  campaign.dtype = stored.at("dtype").get<std::string>();
  campaign.tolerance.atol = stored.at("atol").get<double>();
  campaign.tolerance.rtol = stored.at("rtol").get<double>();
  campaign.tolerance.max_ulp = stored.at("max_ulp").get<uint64_t>();
  campaign.tolerance.equal_nan = stored.at("equal_nan").get<bool>();
  campaign.keep = stored.at("keep").get<std::string>();
  campaign.timeout = stored.at("timeout").get<double>();
  campaign.no_counters = stored.at("no_counters").get<bool>();
  campaign.fingerprint = stored.at("fingerprint").get<bool>();
  campaign.fingerprint_threshold = stored.at("fingerprint_threshold").get<uint64_t>();
  campaign.command = stored.at("command").get<std::vector<std::string>>();
}

// How a command given with --resume differs from the campaign's, or empty.
std::string command_difference(const std::vector<std::string>& given,
                               const std::vector<std::string>& stored) {
  for (size_t i = 0; i < given.size() && i < stored.size(); ++i) {
    if (given[i] != stored[i]) {
      return "argument " + std::to_string(i + 1) + " is '" + given[i] + "', the campaign's is '" +
             stored[i] + "'";
    }
  }
  if (given.size() != stored.size()) {
    std::string campaign;
    for (const std::string& arg : stored) {
      campaign += (campaign.empty() ? "'" : " '") + arg + "'";
    }
    return "it has " + std::to_string(given.size()) + " arguments, the campaign's " +
           std::to_string(stored.size()) + ": " + campaign;
  }
  return {};
}

// Replaces `cli` with the options the campaign in --resume DIR began with.
// Only where the report goes may be given again, and a command only when
// it is the campaign's.
void load_campaign_options(const CLI::App& app, IsolateCliOptions& cli) {
  namespace fs = std::filesystem;
  const std::string dir = cli.resume_dir;
  for (const CLI::Option* option : app.get_options()) {
    const std::string name = option->get_name();
    if (option->count() > 0 && name != "--resume" && name != "--json" && name != "--html" &&
        name != "command") {
      throw usage_error("--resume takes the options the campaign began with; " + name +
                        " cannot be given again");
    }
  }
  std::error_code code;
  if (!fs::exists(fs::path(dir) / "campaign.db", code)) {
    throw usage_error("--resume " + dir + ": no campaign.db there: not an isolate campaign");
  }
  const fs::path report = fs::path(dir) / "isolate.json";
  if (fs::exists(report, code)) {
    // An interrupted campaign writes its report too, and can go on.
    std::ifstream in(report);
    const nlohmann::json written = nlohmann::json::parse(in, nullptr, false);
    if (!written.is_object() || written.value("exit_status", 0) != 130) {
      throw usage_error("--resume " + dir + ": the campaign is already finished (" +
                        report.string() + "); memdet report " + dir + " shows it");
    }
  }
  auto store = store::CampaignStore::open(dir);
  if (!store) {
    throw usage_error(store.error().message);
  }
  std::optional<std::string> kept = store->meta("options");
  const nlohmann::json stored =
      kept ? nlohmann::json::parse(*kept, nullptr, false) : nlohmann::json();
  if (!stored.is_object()) {
    throw usage_error("--resume " + dir + ": " + store->path() +
                      " holds no isolate campaign to resume: a campaign stopped before it "
                      "stored its options had made no run; start it again with --out " +
                      dir);
  }
  IsolateCliOptions resumed;
  try {
    read_options_json(stored, resumed);
  } catch (const nlohmann::json::exception& error) {
    throw usage_error("--resume " + dir + ": the stored options cannot be read: " + error.what());
  }
  if (!cli.campaign.command.empty()) {
    const std::string difference =
        command_difference(cli.campaign.command, resumed.campaign.command);
    if (!difference.empty()) {
      throw usage_error("--resume " + dir +
                        ": the command differs from the campaign's: " + difference);
    }
  }
  resumed.campaign.out_dir = dir;
  resumed.campaign.json_path = cli.campaign.json_path;
  resumed.campaign.html_path = cli.campaign.html_path;
  resumed.resume_dir = dir;
  cli = resumed;
}

// The status line at the foot of the terminal while a campaign runs.
report::StatusLine* status_line = nullptr;

void progress(const protocol::IsolateProgress& progress) {
  if (status_line != nullptr) {
    status_line->clear();
  }
  report::print_isolate_progress(progress, stderr);
  if (status_line != nullptr) {
    status_line->show(report::progress_text("isolate", report::isolate_progress_what(progress),
                                            progress.made, progress.ahead, true,
                                            progress.elapsed_seconds));
  }
}

}  // namespace

// Shared with `demo`, which runs isolate on the built-in workloads.
protocol::IsolateReport run_isolate_campaign(protocol::IsolateOptions options, std::FILE* summary) {
  if (options.check.measure_counters) {
    measure::warm_up_perf_events();
  }
  InterruptGuard guard;
  options.check.interrupt = guard.flag();
  options.on_run_done = progress;
  options.on_begin = [](const protocol::IsolateReport& begun) {
    warn_about_weakened_entropy(begun.pinned);
    if (begun.resumed_after > 0) {
      std::fprintf(stderr, "memdet isolate: going on after the %d stored runs\n",
                   begun.resumed_after);
    }
  };
  auto report = [&] {
    report::StatusLine line(stderr);
    status_line = &line;
    auto made = protocol::run_isolate(options);
    status_line = nullptr;
    return made;
  }();
  if (!report) {
    throw usage_error(report.error().message);
  }
  Status written = report::write_json(report::isolate_json(*report),
                                      report->campaign.campaign_dir + "/isolate.json");
  if (!written) {
    std::fprintf(stderr, "memdet isolate: %s\n", written.error().message.c_str());
  }
  if (summary != nullptr) {
    report::print_isolate_summary(*report, summary);
  }
  return std::move(*report);
}

namespace {

int isolate(const IsolateCliOptions& given, const CLI::App& app) {
  IsolateCliOptions cli = given;
  if (!cli.resume_dir.empty()) {
    load_campaign_options(app, cli);
  } else if (cli.campaign.command.empty()) {
    throw usage_error("no command given after --");
  }
  protocol::IsolateOptions options;
  protocol::CheckOptions& check = options.check;
  apply_campaign_options(cli.campaign, check);
  options.settings.free_runs = cli.free_runs;
  options.settings.pool_runs = cli.pool_runs;
  options.settings.factor_runs = cli.factor_runs;
  options.settings.budget = cli.budget;
  for (const std::string& list : cli.factors) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = std::min(list.find(',', start), list.size());
      std::string name = list.substr(start, comma - start);
      if (name.empty()) {
        throw usage_error("--factors '" + list + "': an empty factor name");
      }
      if (std::find(options.factor_names.begin(), options.factor_names.end(), name) ==
          options.factor_names.end()) {
        options.factor_names.push_back(name);
      }
      start = comma + 1;
    }
  }
  if (cli.budget < cli.free_runs + cli.pool_runs + 1) {
    throw usage_error("--budget " + std::to_string(cli.budget) + " cannot reach a factor: the " +
                      std::to_string(cli.free_runs) + " free runs and the pool of " +
                      std::to_string(cli.pool_runs) + " come first; give at least " +
                      std::to_string(cli.free_runs + cli.pool_runs + 1));
  }

  ControlOptions controls;
  controls.seed = cli.seed;
  controls.system = cli.system;
  FactorSetup setup = prepare_factors(controls, 2);
  options.seed = setup.profile.seed;
  options.system = cli.system;
  options.try_fix = cli.try_fix;
  options.resume = !cli.resume_dir.empty();
  options.stored_options = options_json(cli, options.seed).dump();
  check.controls = setup.controls;
  check.host = setup.host;

  // The pool's machine-wide settings, held for the whole campaign and undone
  // when this scope ends on any path.
  factors::Selection all;
  all.pins = {"all"};
  all.seed = options.seed;
  all.system = cli.system;
  auto pinned = factors::make_profile(all, setup.host);
  if (!pinned) {
    throw usage_error(pinned.error().message);
  }
  auto system = factors::SystemSettings::apply(factors::system_writes(*pinned, setup.host));
  if (!system) {
    throw usage_error(system.error().message);
  }

  std::FILE* summary = cli.campaign.json_path == "-" ? stderr : stdout;
  protocol::IsolateReport report = run_isolate_campaign(options, summary);
  if (!cli.campaign.json_path.empty()) {
    Status written = report::write_json(report::isolate_json(report), cli.campaign.json_path);
    if (!written) {
      throw usage_error(written.error().message);
    }
  }
  if (!cli.campaign.html_path.empty()) {
    write_campaign_html(report::isolate_json(report),
                        report.campaign.campaign_dir + "/isolate.json", cli.campaign.html_path);
  }
  if (!report.input_error.empty()) {
    std::fprintf(stderr, "memdet isolate: %s\n", printable(report.input_error).c_str());
  }
  return report.exit_status();
}

}  // namespace

Registered add_isolate_command(CLI::App& parent) {
  auto options = std::make_shared<IsolateCliOptions>();
  CLI::App* app = parent.add_subcommand(
      "isolate",
      "Find which memory or timing factor changes a command's result: free runs, a pool with "
      "every factor pinned, then each factor perturbed alone against that pool. Exit 0: no run "
      "differed; 1: some did; 2: usage or input error; 3: a free run failed; 130: interrupted");
  app->add_option("-n,--runs", options->free_runs, "free runs, as the command runs without memdet")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  app->add_option("--pool", options->pool_runs,
                  "runs with every factor pinned: the reference every factor is judged against")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000));
  app->add_option("--factor-runs", options->factor_runs,
                  "perturbed values tried per factor when none changes the result (fewer when "
                  "a factor has fewer values: then each is tried)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app->add_option("--budget", options->budget,
                  "most runs in all; when they run out the verdict is inconclusive, with what "
                  "each undecided factor still needs")
      ->capture_default_str()
      ->check(CLI::Range(2, 999));
  app->add_option("--factors", options->factors,
                  "the factors to try, comma-separated: entropy, clock, uninit, heap, aslr, "
                  "stack, allocator, threads, fileorder, cpu, env, thp, hugepages, numa, mlock, "
                  "numa-balancing, noise "
                  "(default: every one --pin all applies on this host; mlock and noise only when "
                  "named)")
      ->allow_extra_args(false);
  app->add_option("--seed", options->seed,
                  "seed for perturbed values (default: drawn, and recorded so runs replay)")
      ->check([](const std::string& value) {
        return value.empty() ? std::string("empty: give a number, or leave --seed out") : "";
      });
  app->add_flag("--system", options->system,
                "let the pool pin machine-wide settings (THP mode, NUMA balancing); restored "
                "when memdet ends");
  add_campaign_options(*app, options->campaign, "isolate");
  app->add_flag("--try-fix", options->try_fix,
                "when the verdict names a switch in the program, run it again with the switch "
                "on: for a PyTorch program, torch.use_deterministic_algorithms(True) set by a "
                "start-up hook on PYTHONPATH (no change to your files); reports whether the runs "
                "then agree and the price in wall time");
  app->add_option("--resume", options->resume_dir,
                  "go on with the campaign in DIR that an interrupt or a kill cut short, with "
                  "the options it began with: its stored runs count as made, the run that was "
                  "in progress is made again under its number, and the report covers every "
                  "run; only --json and --html may be given with it, and a command after -- "
                  "must be the campaign's")
      ->type_name("DIR");
  add_command_option(*app, options->campaign);
  // With --resume the command is the campaign's own.
  app->get_option("command")->required(false);
  return {app, [options, app] { return isolate(*options, *app); }, 2};
}

}  // namespace memdet::cli
