#include "protocol/isolate.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "host/host_info.h"
#include "measure/rank_test.h"
#include "protocol/cure.h"
#include "report/check_json.h"
#include "store/campaign_store.h"

namespace memdet::protocol {
namespace {

struct Profiles {
  factors::Profile free;
  factors::Profile pinned;
  std::vector<std::pair<std::string, factors::Profile>> perturbed;  // one per factor tried
  // A deque: a profile handed out stays where it is as other sets are added.
  std::deque<std::pair<std::vector<std::string>, factors::Profile>> enough;

  const factors::Profile* for_factor(const std::string& name) const {
    for (const auto& [factor, profile] : perturbed) {
      if (factor == name) {
        return &profile;
      }
    }
    return nullptr;
  }
};

factors::Selection selection(const IsolateOptions& options) {
  factors::Selection chosen;
  chosen.seed = options.seed;
  chosen.system = options.system;
  return chosen;
}

// The profile of a batch that pins `names` and leaves the rest free.
Result<const factors::Profile*> enough_profile(const IsolateOptions& options,
                                               const std::vector<std::string>& names,
                                               Profiles& profiles) {
  if (names.empty()) {
    return &profiles.pinned;
  }
  for (const auto& [pinned, profile] : profiles.enough) {
    if (pinned == names) {
      return &profile;
    }
  }
  factors::Selection chosen = selection(options);
  chosen.pins = names;
  auto profile = factors::make_profile(chosen, options.check.host);
  if (!profile) {
    return profile.error();
  }
  profiles.enough.emplace_back(names, std::move(*profile));
  return &profiles.enough.back().second;
}

// Which factors the campaign tries: those the pool pins, in the order
// isolate tries them, that can be perturbed one at a time on this host.
Status choose_factors(const IsolateOptions& options, Profiles& profiles, IsolateSettings& settings,
                      std::vector<SkippedFactor>& skipped) {
  std::set<std::string> asked(options.factor_names.begin(), options.factor_names.end());
  for (const std::string& name : options.factor_names) {
    if (factors::find_factor(name) == nullptr) {
      std::string known;
      for (const std::string& factor : isolate_factor_order()) {
        known += (known.empty() ? "" : ", ") + factor;
      }
      return make_error("--factors: unknown factor '" + name + "' (factors: " + known + ")");
    }
  }
  const factors::Host workload = factors::workload_host(profiles.pinned, options.check.host);
  for (const std::string& name : isolate_factor_order()) {
    const factors::Factor* factor = factors::find_factor(name);
    const factors::ProfileEntry* entry = profiles.pinned.find(name);
    if (factor == nullptr || entry == nullptr) {
      continue;
    }
    if (!asked.empty() && asked.count(name) == 0) {
      continue;
    }
    auto skip = [&](std::string why) { skipped.push_back({name, std::move(why)}); };
    if (entry->applied == factors::Applied::kNotApplicable) {
      skip(entry->reason);
      continue;
    }
    if (entry->mode != factors::Mode::kPin || entry->applied != factors::Applied::kApplied) {
      skip(asked.empty() ? "not part of --pin all (name it in --factors)"
                         : "cannot be pinned here");
      continue;
    }
    if (factor->system_wide()) {
      skip("a machine-wide setting: isolate holds it at its pinned value");
      continue;
    }
    if (!factor->perturbable()) {
      skip("has no perturbation");
      continue;
    }
    factors::Selection chosen = selection(options);
    chosen.pins = {"all"};
    chosen.perturbs = {name};
    auto profile = factors::make_profile(chosen, options.check.host);
    if (!profile) {
      skip(profile.error().message);
      continue;
    }
    FactorPlan plan;
    plan.name = name;
    plan.replayable = factor->replayable();
    plan.varies_when_free = factor->varies_when_free();
    plan.seed_source = name == "entropy" || name == "clock";
    // The values its first runs would take: when they repeat within that
    // many runs, the factor has only so many. A factor that cannot be
    // replayed gives a fresh layout in every run, however few values it
    // names.
    const factors::ProfileEntry* perturbed = profile->find(name);
    std::set<std::string> values;
    for (int k = 1; k <= options.settings.factor_runs; ++k) {
      values.insert(factor->perturbed_value(perturbed->reference, perturbed->variant, k,
                                            perturbed->seed, workload));
    }
    const int distinct = static_cast<int>(values.size());
    plan.values = plan.replayable && distinct < options.settings.factor_runs ? distinct : 0;
    settings.factors.push_back(plan);
    profiles.perturbed.emplace_back(name, std::move(*profile));
  }
  return {};
}

// Names given in --factors that pin all does not include are still pinned
// in the pool, so their perturbation is judged against a pool that held
// them.
Result<factors::Profile> pool_profile(const IsolateOptions& options) {
  factors::Selection chosen = selection(options);
  chosen.pins = {"all"};
  for (const std::string& name : options.factor_names) {
    const factors::Factor* factor = factors::find_factor(name);
    if (factor != nullptr && !factor->in_all()) {
      chosen.pins.push_back(name);
    }
  }
  return factors::make_profile(chosen, options.check.host);
}

bool same_stack(const factors::Profile& pool, const factors::Profile& batch) {
  const factors::ProfileEntry* a = pool.find("stack");
  const factors::ProfileEntry* b = batch.find("stack");
  if (a == nullptr || b == nullptr) {
    return a == b;
  }
  return a->mode == b->mode && a->applied == b->applied && a->reference == b->reference;
}

// What the store keeps of a run: the step it was made for and its outcome,
// which is all the protocol reads back, beside the whole record.
std::string stored_record(const RunRecord& run, const IsolateOutcome& outcome) {
  nlohmann::json step = {{"phase", isolate_phase_name(outcome.step.phase)},
                         {"factor", outcome.step.factor},
                         {"value", outcome.step.value},
                         {"confirmation", outcome.step.confirmation},
                         {"pinned", outcome.step.pinned}};
  nlohmann::json entry = {{"step", step},
                          {"failed", outcome.failed},
                          {"signature", outcome.signature},
                          {"footprint", run.footprint},
                          {"record", report::run_json(run)}};
  return entry.dump();
}

// The step a stored run was made for, as stored_record writes it.
Result<IsolateStep> stored_step(const nlohmann::json& step) {
  IsolateStep read;
  const std::string phase = step.value("phase", "");
  bool known = false;
  for (IsolatePhase candidate : {IsolatePhase::kFree, IsolatePhase::kPinned, IsolatePhase::kFactor,
                                 IsolatePhase::kEnough, IsolatePhase::kCure, IsolatePhase::kRead}) {
    if (phase == isolate_phase_name(candidate)) {
      read.phase = candidate;
      known = true;
    }
  }
  if (!known) {
    return make_error("unknown phase \"" + phase + "\"");
  }
  read.factor = step.value("factor", "");
  read.value = step.value("value", 0);
  read.confirmation = step.value("confirmation", false);
  read.pinned = step.value("pinned", std::vector<std::string>());
  return read;
}

bool same_step(const IsolateStep& a, const IsolateStep& b) {
  return a.phase == b.phase && a.factor == b.factor && a.value == b.value &&
         a.confirmation == b.confirmation && a.pinned == b.pinned;
}

// A stored run: its record, and the step and outcome the campaign saw.
struct StoredStep {
  IsolateStep step;
  bool failed = false;
  std::string signature;
};

// The stored runs of a campaign, read back for Campaign::resume.
Status read_stored_runs(const store::CampaignStore& store, std::vector<RunRecord>& records,
                        std::vector<StoredStep>& steps) {
  auto runs = store.runs();
  if (!runs) {
    return runs.error();
  }
  for (const store::StoredRun& stored : *runs) {
    const std::string name = store.path() + ": run " + std::to_string(stored.ordinal);
    const nlohmann::json entry = nlohmann::json::parse(stored.record, nullptr, false);
    if (!entry.is_object() || !entry.contains("step") || !entry.contains("record")) {
      return make_error(name + " is not an isolate run");
    }
    auto step = stored_step(entry["step"]);
    if (!step) {
      return make_error(name + ": " + step.error().message);
    }
    auto record = report::read_run_json(entry["record"]);
    if (!record) {
      return make_error(name + ": " + record.error().message);
    }
    record->footprint = entry.value("footprint", size_t{0});
    records.push_back(std::move(*record));
    steps.push_back({*step, entry.value("failed", false), entry.value("signature", "")});
  }
  return {};
}

// The host fields the campaign's values were derived from: a campaign
// resumed elsewhere would perturb and pin other values.
Status same_host(const std::string& stored, const host::HostInfo& now) {
  const nlohmann::json then = nlohmann::json::parse(stored, nullptr, false);
  const nlohmann::json here = report::host_json(now);
  if (!then.is_object()) {
    return make_error("the stored host record is not JSON");
  }
  for (const char* key : {"kernel", "machine", "cpu_model", "online_cpus"}) {
    if (then.value(key, nlohmann::json()) != here[key]) {
      return make_error("the host differs from the campaign's: " + std::string(key) + " is " +
                        here[key].dump() + " here, " + then.value(key, nlohmann::json()).dump() +
                        " where the campaign began");
    }
  }
  return {};
}

// Which outcome a run had. Bitwise by default; with a tolerance, a run
// whose artifacts are within it of an earlier outcome's first run counts
// as that outcome, so the plan sees one result where the bits alone would
// show several.
class OutcomeClasses {
 public:
  OutcomeClasses(const Campaign& campaign, const CheckOptions& options)
      : campaign_(campaign), options_(options) {}

  std::string of(const RunRecord& run) {
    const std::string signature = Campaign::signature(run);
    if (!has_tolerance(options_.tolerance)) {
      return signature;
    }
    if (auto known = classes_.find(signature); known != classes_.end()) {
      return known->second;
    }
    for (const auto& [first_signature, first_run] : firsts_) {
      std::string ignored;  // an unreadable file counts as different here; finish() reports it
      const RunRecord& first = campaign_.report().runs[static_cast<size_t>(first_run - 1)];
      if (same_within_tolerance(first, run, options_, ignored)) {
        classes_[signature] = first_signature;
        return first_signature;
      }
    }
    firsts_.emplace_back(signature, run.index);
    classes_[signature] = signature;
    return signature;
  }

 private:
  const Campaign& campaign_;
  const CheckOptions& options_;
  std::map<std::string, std::string> classes_;       // signature: its outcome's
  std::vector<std::pair<std::string, int>> firsts_;  // each outcome's first run
};

IsolateOutcome outcome_of(const RunRecord& run, const IsolateStep& step, OutcomeClasses& classes) {
  IsolateOutcome outcome;
  outcome.step = step;
  outcome.failed = !run.completed();
  if (!outcome.failed) {
    outcome.signature = classes.of(run);
  }
  // The missed-seed factors count what they served exactly: a run that
  // shows none served had nothing for the factor to change.
  if (step.phase == IsolatePhase::kFactor &&
      (step.factor == "entropy" || step.factor == "clock" || step.factor == "fileorder")) {
    for (const factors::FactorRecord& record : run.factors.records) {
      if (record.name == step.factor && record.verified == launch::CheckState::kNotObservable) {
        outcome.used = false;
      }
    }
  }
  return outcome;
}

double median(std::vector<double> values) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

double median_wall(const std::vector<const RunRecord*>& runs) {
  std::vector<double> times;
  for (const RunRecord* run : runs) {
    if (run->completed()) {
      times.push_back(run->launch.wall_seconds);
    }
  }
  return median(times);
}

std::vector<const RunRecord*> runs_of(const IsolateReport& report, const Campaign& campaign,
                                      IsolatePhase phase) {
  std::vector<const RunRecord*> runs;
  const std::vector<RunRecord>& made = campaign.report().runs;
  for (size_t i = 0; i < report.steps.size() && i < made.size(); ++i) {
    if (report.steps[i].phase == phase) {
      runs.push_back(&made[i]);
    }
  }
  return runs;
}

// The runs of the batch that pinned exactly `pinned`, the rest free.
std::vector<const RunRecord*> batch_runs(const IsolateReport& report, const Campaign& campaign,
                                         const std::vector<std::string>& pinned) {
  std::vector<const RunRecord*> runs;
  const std::vector<RunRecord>& made = campaign.report().runs;
  for (size_t i = 0; i < report.steps.size() && i < made.size(); ++i) {
    if (report.steps[i].phase == IsolatePhase::kEnough && report.steps[i].pinned == pinned) {
      runs.push_back(&made[i]);
    }
  }
  return runs;
}

// Each factor's counters against the pool's, run by run.
std::vector<CounterChange> compare_counters(const IsolateReport& report) {
  auto figures_of = [&](const std::vector<const RunRecord*>& runs) {
    std::map<std::string, std::pair<std::string, std::vector<double>>> by_name;
    for (const RunRecord* run : runs) {
      if (!run->completed() || !run->launch.counters.measured) {
        continue;
      }
      for (const measure::Figure& figure : run_figures(*run).figures) {
        by_name[figure.name].first = figure.unit;
        by_name[figure.name].second.push_back(figure.value);
      }
    }
    return by_name;
  };
  std::vector<const RunRecord*> pool;
  for (size_t i = 0; i < report.steps.size() && i < report.campaign.runs.size(); ++i) {
    if (report.steps[i].phase == IsolatePhase::kPinned) {
      pool.push_back(&report.campaign.runs[i]);
    }
  }
  const auto pool_figures = figures_of(pool);
  std::vector<CounterChange> changes;
  for (const FactorFinding& finding : report.findings.factors) {
    if (finding.runs == 0) {
      continue;
    }
    CounterChange change;
    change.factor = finding.name;
    change.results_same = finding.differing == 0;
    const auto perturbed = figures_of(report.factor_runs(finding.name));
    for (const auto& [name, figure] : perturbed) {
      auto theirs = pool_figures.find(name);
      if (theirs == pool_figures.end()) {
        continue;
      }
      measure::RankTest test = measure::rank_test(figure.second, theirs->second.second);
      change.perturbed_runs = test.left;
      change.pool_runs = test.right;
      if (!test.judged) {
        continue;
      }
      ++change.counters_tested;
      if (!change.judged || test.p_two_sided < change.p) {
        change.judged = true;
        change.p = test.p_two_sided;
        change.counter = name;
        change.unit = figure.first;
        change.perturbed_median = median(figure.second);
        change.pool_median = median(theirs->second.second);
      }
    }
    change.flagged = change.judged && change.p < 0.05 / std::max(1, change.counters_tested);
    changes.push_back(change);
  }
  return changes;
}

// The fields of a read search's run: the reads (or listings) LO..HI of the
// launched process take the perturbed value, every other one the pinned.
std::map<std::string, std::string> read_window(const std::string& factor, const std::string& value,
                                               int low, int high) {
  const std::string window = std::to_string(low) + "-" + std::to_string(high);
  if (factor == "entropy") {
    return {{"entropy_window", window}, {"entropy_window_seed", value}};
  }
  if (factor == "fileorder") {
    // fileorder values are "keyed:KEY".
    return {{"fileorder", "keyed"},
            {"fileorder_key", value.substr(value.find(':') + 1)},
            {"fileorder_window", window}};
  }
  // clock values are "mode@seconds[.nanoseconds]".
  const std::string epoch = value.substr(value.find('@') + 1);
  const size_t dot = epoch.find('.');
  return {{"clock_window", window},
          {"clock_window_epoch", epoch.substr(0, dot)},
          {"clock_window_epoch_ns",
           dot == std::string::npos ? "0" : std::to_string(std::stoll(epoch.substr(dot + 1)))}};
}

template <typename Make>
SeedRead search_read(const std::string& factor, const FactorFinding& finding,
                     const IsolateReport& report, const Campaign& campaign, Make make,
                     RunRequest request, OutcomeClasses& classes) {
  SeedRead read;
  read.factor = factor;
  const std::string rows_key = factor == "entropy"     ? "entropy_read"
                               : factor == "fileorder" ? "fileorder_listing"
                                                       : "clock_read";
  const std::string count_key = factor == "entropy"     ? "entropy_reads"
                                : factor == "fileorder" ? "fileorder_listings"
                                                        : "clock_reads";
  // The value that differed and was replayed.
  std::string value;
  const std::vector<RunRecord>& runs = campaign.report().runs;
  for (size_t i = 0; i < runs.size() && i < report.steps.size(); ++i) {
    if (report.steps[i].phase != IsolatePhase::kFactor || report.steps[i].factor != factor) {
      continue;
    }
    for (const factors::FactorRecord& record : runs[i].factors.records) {
      if (record.name == factor && record.perturbed && runs[i].perturbed == finding.value) {
        value = record.value;
      }
    }
  }
  int reads = 0;
  {
    const RunRecord& reference = campaign.report().runs[report.pool_run - 1];
    reads = static_cast<int>(reference.preload.number(count_key, 0));
  }
  read.reads = reads;
  if (value.empty()) {
    read.note = "the value that differed is not in the records";
    return read;
  }
  if (reads <= 0) {
    read.note =
        "the launched process made no read the library saw: the reads that matter are "
        "in a child process";
    return read;
  }
  // Runs with one window moved; true when the outcome left the pool's.
  std::string failure;
  auto moved = [&](int low, int high) -> std::optional<bool> {
    request.preload = read_window(factor, value, low, high);
    auto made = make(request);
    if (!made) {
      failure = made.error().message;
      return std::nullopt;
    }
    ++read.runs;
    const RunRecord& run = **made;
    if (!run.completed()) {
      failure = "a run of the search failed";
      return std::nullopt;
    }
    return classes.of(run) != report.findings.reference;
  };
  int low = 1;
  int high = reads;
  bool last_alone = false;  // the last window tried was [low, low] and it moved the result
  while (low < high) {
    int mid = low + (high - low) / 2;
    auto differs = moved(low, mid);
    if (!differs) {
      read.note = "the search stopped: " + failure;
      return read;
    }
    if (*differs) {
      high = mid;
      last_alone = low == mid;
    } else {
      low = mid + 1;
      last_alone = false;
    }
  }
  if (!last_alone) {
    auto differs = moved(low, low);
    if (!differs) {
      read.note = "the search stopped: " + failure;
      return read;
    }
    if (!*differs) {
      read.note = "no single read of the launched process's " + std::to_string(reads) +
                  " changes the result alone: several together, or a child process's";
      return read;
    }
  }
  read.found = true;
  read.ordinal = low;
  const RunRecord& reference = campaign.report().runs[report.pool_run - 1];
  for (const auto& row : reference.preload.rows_of(rows_key)) {
    if (!row.empty() && std::atoi(row[0].c_str()) == low && row.size() >= 4) {
      read.source = row[1];
      read.row = row;
      read.site = call_site(row.back(), reference.cwd);
    }
  }
  if (read.source.empty()) {
    read.note = "the library lists only the first 256";
  }
  return read;
}

}  // namespace

CallSite call_site(const std::string& caller, const std::string& cwd) {
  CallSite site;
  site.caller = caller;
  size_t py = caller.find("|py:");
  if (py == std::string::npos) {
    return site;
  }
  std::string frames = caller.substr(py + 4);
  size_t begin = 0;
  while (begin <= frames.size()) {
    size_t end = frames.find(';', begin);
    std::string frame = frames.substr(begin, end == std::string::npos ? end : end - begin);
    begin = end == std::string::npos ? frames.size() + 1 : end + 1;
    size_t colon = frame.rfind(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::string file = frame.substr(0, colon);
    const bool library = file.empty() || file[0] == '<' || file.find("/usr/lib/python3") == 0 ||
                         file.find("/usr/local/lib/python3") == 0 ||
                         file.find("/site-packages/") != std::string::npos ||
                         file.find("/dist-packages/") != std::string::npos;
    if (library) {
      continue;
    }
    site.location = frame;
    int number = std::atoi(frame.c_str() + colon + 1);
    std::ifstream source(file[0] == '/' ? file : cwd + "/" + file);
    std::string text;
    for (int at = 1; number > 0 && std::getline(source, text); ++at) {
      if (at == number) {
        size_t first = text.find_first_not_of(" \t");
        site.line = first == std::string::npos ? "" : text.substr(first);
        break;
      }
    }
    break;
  }
  return site;
}

const std::vector<std::string>& isolate_factor_order() {
  static const std::vector<std::string> order = {
      "entropy", "clock",          "uninit", "heap", "aslr", "stack",     "allocator",
      "threads", "fileorder",      "cpu",    "env",  "thp",  "hugepages", "numa",
      "mlock",   "numa-balancing", "noise",
  };
  return order;
}

std::vector<const RunRecord*> IsolateReport::factor_runs(const std::string& name) const {
  std::vector<const RunRecord*> runs;
  for (size_t i = 0; i < campaign.runs.size() && i < steps.size(); ++i) {
    if (steps[i].phase == IsolatePhase::kFactor && steps[i].factor == name) {
      runs.push_back(&campaign.runs[i]);
    }
  }
  return runs;
}

std::vector<std::string> IsolateReport::values_tried(const std::string& name) const {
  std::vector<std::string> values;
  for (const RunRecord* run : factor_runs(name)) {
    for (const factors::FactorRecord& record : run->factors.records) {
      if (record.name == name && record.perturbed &&
          std::find(values.begin(), values.end(), record.value) == values.end()) {
        values.push_back(record.value);
      }
    }
  }
  return values;
}

std::vector<std::string> IsolateReport::unproven(const std::string& name) const {
  std::vector<std::string> reasons;
  for (const RunRecord* run : factor_runs(name)) {
    std::string why;
    for (const factors::FactorRecord& record : run->factors.records) {
      if (record.name == name && record.verified != launch::CheckState::kVerified &&
          record.verified != launch::CheckState::kNotObservable) {
        why = record.observed.empty() ? launch::check_state_name(record.verified) : record.observed;
      }
    }
    for (const std::string& problem : run->factor_problems) {
      if (why.empty() && problem.rfind(name + ":", 0) == 0) {
        why = problem.substr(name.size() + 2);
      }
    }
    if (!why.empty()) {
      reasons.push_back(why);
    }
  }
  return reasons;
}

std::string IsolateReport::not_held(const std::string& name) const {
  for (size_t i = 0; i < campaign.runs.size() && i < steps.size(); ++i) {
    if (steps[i].phase != IsolatePhase::kPinned) {
      continue;
    }
    for (const factors::FactorRecord& record : campaign.runs[i].factors.records) {
      if (record.name != name) {
        continue;
      }
      if (record.applied == factors::Applied::kRefused) {
        return record.reason;
      }
      if (record.verified == launch::CheckState::kUnread) {
        return record.observed;
      }
    }
  }
  return {};
}

bool IsolateReport::seed_sources_held() const {
  for (const char* name : {"entropy", "clock"}) {
    const factors::ProfileEntry* entry = pinned.find(name);
    if (entry == nullptr || entry->mode != factors::Mode::kPin ||
        entry->applied != factors::Applied::kApplied || !not_held(name).empty()) {
      return false;
    }
  }
  return true;
}

int IsolateReport::exit_status() const {
  if (!input_error.empty()) {
    return 2;
  }
  if (interrupted_by != 0) {
    return 130;
  }
  return findings.exit_status();
}

Result<IsolateReport> run_isolate(const IsolateOptions& options) {
  IsolateReport report;
  report.settings = options.settings;
  report.settings.factors.clear();

  Profiles profiles;
  auto free = factors::make_profile(selection(options), options.check.host);
  if (!free) {
    return free.error();
  }
  profiles.free = std::move(*free);
  auto pinned = pool_profile(options);
  if (!pinned) {
    return pinned.error();
  }
  profiles.pinned = std::move(*pinned);
  Status chosen = choose_factors(options, profiles, report.settings, report.skipped);
  if (!chosen) {
    return chosen.error();
  }
  if (!options.factor_names.empty() && report.settings.factors.empty()) {
    std::string why;
    for (const SkippedFactor& skipped : report.skipped) {
      why += (why.empty() ? "" : "; ") + skipped.name + ": " + skipped.reason;
    }
    return make_error("--factors: none of the factors named can be perturbed here (" + why + ")");
  }
  report.pinned = profiles.pinned;

  const int max_runs = report.settings.budget > 0 ? report.settings.budget : 999;
  std::optional<store::CampaignStore> store;
  std::vector<StoredStep> stored_steps;
  auto opened = [&]() -> Result<Campaign> {
    if (!options.resume) {
      auto fresh = Campaign::open(options.check, max_runs, "isolate.json");
      if (!fresh) {
        return fresh.error();
      }
      auto made = store::CampaignStore::open(fresh->report().campaign_dir);
      if (!made) {
        fresh->discard();
        return made.error();
      }
      store.emplace(std::move(*made));
      return fresh;
    }
    // The lock is taken before anything is read, so no other memdet adds
    // runs meanwhile.
    auto held = store::CampaignStore::open(options.check.out_dir);
    if (!held) {
      return held.error();
    }
    store.emplace(std::move(*held));
    std::optional<std::string> host = store->meta("host");
    std::optional<std::string> created = store->meta("created");
    if (!host || !created) {
      return make_error(store->path() + " holds no isolate campaign to resume");
    }
    Status here = same_host(*host, host::read_host_info());
    if (!here) {
      return here.error();
    }
    std::vector<RunRecord> records;
    Status read = read_stored_runs(*store, records, stored_steps);
    if (!read) {
      return read.error();
    }
    const nlohmann::json files = nlohmann::json::parse(*created, nullptr, false);
    if (!files.is_array()) {
      return make_error(store->path() + ": the stored list of created files is not JSON");
    }
    return Campaign::resume(options.check, max_runs, std::move(records),
                            files.get<std::set<std::string>>());
  }();
  if (!opened) {
    return opened.error();
  }
  Campaign& campaign = *opened;
  report.resumed_after = static_cast<int>(stored_steps.size());
  if (!options.resume) {
    nlohmann::json settings = {{"free_runs", report.settings.free_runs},
                               {"pool_runs", report.settings.pool_runs},
                               {"factor_runs", report.settings.factor_runs},
                               {"blame_level", report.settings.blame_level},
                               {"budget", report.settings.budget}};
    for (const auto& [key, value] :
         {std::pair<std::string, std::string>{"command",
                                              nlohmann::json(options.check.command).dump()},
          {"seed", std::to_string(options.seed)},
          {"settings", settings.dump()},
          {"options", options.stored_options},
          {"host", report::host_json(campaign.report().host).dump()},
          {"created", nlohmann::json(campaign.created_files()).dump()}}) {
      Status kept = store->set_meta(key, value);
      if (!kept) {
        return kept.error();
      }
    }
  }

  auto request_for = [&](const IsolateStep& step) -> Result<RunRequest> {
    RunRequest request;
    request.phase = isolate_phase_name(step.phase);
    // The pool's first run is the reference of every pinned and perturbed
    // run's factor records; free runs have none.
    request.reference_run = report.pool_run > 0 ? report.pool_run : -1;
    switch (step.phase) {
      case IsolatePhase::kFree:
        request.profile = &profiles.free;
        request.footprint_group = "free";
        request.reference_run = -1;
        break;
      case IsolatePhase::kCure:
        // Free runs with the cure's environment, which the caller adds.
        request.profile = &profiles.free;
        request.footprint_group = "cure";
        request.reference_run = -1;
        break;
      case IsolatePhase::kPinned:
      case IsolatePhase::kRead:
        // A read search moves a window of reads, which the caller adds.
        request.profile = &profiles.pinned;
        request.footprint_group = "pinned";
        break;
      case IsolatePhase::kFactor:
        request.profile = profiles.for_factor(step.factor);
        request.perturbed = step.value;
        request.factor = step.factor;
        // A batch whose perturbation lets the stack move (ASLR on) cannot
        // start where the pool's runs do; every other batch must.
        request.footprint_group =
            same_stack(profiles.pinned, *request.profile) ? "pinned" : "factor " + step.factor;
        break;
      case IsolatePhase::kEnough: {
        auto profile = enough_profile(options, step.pinned, profiles);
        if (!profile) {
          return profile.error();
        }
        request.profile = *profile;
        // Each set pins its own factors, whose variables the others lack.
        request.footprint_group = step.pinned.empty() ? "pinned" : "enough";
        for (const std::string& name : step.pinned) {
          request.footprint_group += " " + name;
        }
        break;
      }
    }
    return request;
  };

  // The first run of every profile is planned on paper before anything
  // runs, so a value the launch cannot take stops the campaign at once.
  {
    std::vector<IsolateStep> rehearsals = {{IsolatePhase::kFree, {}, 0, false, {}},
                                           {IsolatePhase::kPinned, {}, 0, false, {}}};
    for (const FactorPlan& plan : report.settings.factors) {
      rehearsals.push_back({IsolatePhase::kFactor, plan.name, 1, false, {}});
    }
    for (const IsolateStep& step : rehearsals) {
      auto request = request_for(step);
      Status ready = request ? campaign.rehearse(*request, 1) : Status(request.error());
      if (!ready) {
        campaign.discard();
        return ready.error();
      }
    }
  }
  if (options.on_begin != nullptr) {
    options.on_begin(report);
  }

  std::vector<IsolateOutcome> history;
  OutcomeClasses classes(campaign, options.check);
  const auto started = std::chrono::steady_clock::now();
  // Why a stored run could not be taken again: the campaign then stops
  // with that line and leaves its directory as it was, resumable.
  std::string replay_failure;
  // Makes one run and commits it to the store as it ends, so a campaign cut
  // short keeps every run it finished; the write-ahead log is folded in at
  // each change of phase. A resumed campaign's stored runs come back from
  // the store instead, in the order they were made.
  auto make = [&](const IsolateStep& step, const RunRequest& request) -> Result<const RunRecord*> {
    const bool replaying = static_cast<size_t>(campaign.replayed()) < stored_steps.size();
    auto made = campaign.run(request);
    if (!made) {
      if (replaying) {
        replay_failure = made.error().message;
      }
      return made.error();
    }
    const RunRecord& run = **made;
    if (step.phase == IsolatePhase::kPinned && report.pool_run == 0) {
      report.pool_run = run.index;
    }
    report.steps.push_back(step);
    IsolateOutcome outcome = outcome_of(run, step, classes);
    const bool replayed = run.index <= campaign.replayed();
    if (replayed) {
      // The campaign takes each step again from the same outcomes, so it
      // asks for the stored runs in the order they were made.
      const StoredStep& stored = stored_steps[static_cast<size_t>(run.index - 1)];
      if (!same_step(stored.step, step) || stored.failed != outcome.failed ||
          stored.signature != outcome.signature) {
        replay_failure = "stored run " + run.label +
                         " does not follow from the runs before it: the stored runs are not "
                         "this campaign's";
        return make_error(replay_failure);
      }
      history.push_back(outcome);
      return &run;
    }
    // A run cut short by an interrupt says nothing about the workload, and
    // is not stored: a resumed campaign makes it again.
    if (run.launch.interrupted_by == 0) {
      history.push_back(outcome);
      Status stored = store->add_run(
          {run.index, isolate_phase_name(step.phase), step.factor, stored_record(run, outcome)});
      if (!stored) {
        report.input_error = stored.error().message;
      }
    }
    const size_t made_steps = report.steps.size();
    if (made_steps >= 2 && (report.steps[made_steps - 2].phase != step.phase ||
                            report.steps[made_steps - 2].factor != step.factor)) {
      (void)store->checkpoint();
    }
    if (options.on_run_done != nullptr) {
      const IsolateFindings findings = plan_isolate(report.settings, history).findings;
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      options.on_run_done({run, step, findings, outcome.signature,
                           static_cast<int>(report.steps.size()),
                           runs_ahead(report.settings, findings), elapsed});
    }
    return &run;
  };

  while (true) {
    IsolatePlan plan = plan_isolate(report.settings, history);
    report.findings = plan.findings;
    if (!plan.next || campaign.stopped() || !report.input_error.empty()) {
      break;
    }
    auto request = request_for(*plan.next);
    if (!request) {
      report.input_error = request.error().message;
      break;
    }
    auto made = make(*plan.next, *request);
    if (!made) {
      // The runs so far stay in the records and the report.
      report.input_error = made.error().message;
      break;
    }
  }

  // The read that matters, for each seed source whose value was shown to
  // change the result: halve a window of the launched process's reads,
  // moved to the perturbed value that differed, until one read is left.
  // None when the value was not shown to change it.
  auto search = [&](const char* name) -> std::optional<SeedRead> {
    const FactorFinding* finding = report.findings.find(name);
    if (finding == nullptr || finding->status != FactorFinding::Status::kChanges ||
        finding->cause != FactorFinding::Cause::kValue || campaign.stopped() ||
        !report.input_error.empty() || report.pool_run <= 0) {
      return std::nullopt;
    }
    const IsolateStep step{IsolatePhase::kRead, name, 0, false, {}};
    return search_read(
        name, *finding, report, campaign,
        [&](const RunRequest& request) {
          if (report.settings.budget > 0 &&
              static_cast<int>(history.size()) >= report.settings.budget) {
            return Result<const RunRecord*>(make_error("the budget ran out"));
          }
          return make(step, request);
        },
        *request_for(step), classes);
  };
  for (const char* source : {"entropy", "clock"}) {
    if (std::optional<SeedRead> read = search(source)) {
      report.seed_reads.push_back(*read);
    }
  }
  // The listing that matters, found the same way over the launched
  // process's listings; when none is found alone, every listing of two
  // entries or more is named.
  if (std::optional<SeedRead> searched = search("fileorder")) {
    const SeedRead& found = *searched;
    report.listing_search = found;
    const RunRecord& reference = campaign.report().runs[report.pool_run - 1];
    for (const auto& row : reference.preload.rows_of("fileorder_listing")) {
      if (row.size() >= 5 && (!found.found || std::atoi(row[0].c_str()) == found.ordinal)) {
        report.listings.push_back(
            {row[1], std::atoi(row[2].c_str()), row[3], call_site(row[4], reference.cwd)});
      }
    }
  }

  // The cure, when the verdict names one and it was asked for: the free
  // runs again, with PyTorch's deterministic mode switched on by a start-up
  // hook, until enough of them agree to show the divergence gone.
  if (options.try_fix && report.input_error.empty() && !campaign.stopped()) {
    CureFinding cure;
    cure.cure = kTorchCure;
    const IsolateFindings& found = report.findings;
    const auto free_runs = runs_of(report, campaign, IsolatePhase::kFree);
    const bool torch = std::any_of(free_runs.begin(), free_runs.end(),
                                   [](const RunRecord* run) { return loads_torch(*run); });
    const bool recorded = free_runs.empty() || free_runs.front()->loaded.recorded;
    if (found.verdict != IsolateVerdict::kNotExplained) {
      cure.not_tried = "the verdict names no switch in the program to try";
    } else if (!torch) {
      cure.not_tried = recorded ? "the program did not load libtorch: memdet knows no switch for it"
                                : "the loaded libraries were not recorded, so torch cannot be seen";
    } else {
      const std::string dir = campaign.report().campaign_dir + "/cure";
      std::error_code code;
      std::filesystem::create_directories(dir, code);
      std::ofstream hook(dir + "/sitecustomize.py");
      hook << torch_cure_hook();
      hook.close();
      if (code || !hook) {
        return make_error(dir + "/sitecustomize.py: cannot write the start-up hook");
      }
      const IsolateStep cure_step{IsolatePhase::kCure, {}, 0, false, {}};
      RunRequest request = *request_for(cure_step);
      const char* user_path = std::getenv("PYTHONPATH");
      request.env["PYTHONPATH"] =
          dir + (user_path != nullptr && *user_path != '\0' ? ":" + std::string(user_path) : "");
      // cuBLAS needs a fixed workspace to be deterministic; PyTorch raises
      // without it once deterministic mode is on.
      request.env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8";
      const int differing = std::max(1, found.free_differing);
      cure.needed = std::max(found.free_runs, agreeing_runs_needed(lower_rate_bound(
                                                  differing, std::max(1, found.free_runs - 1))));
      std::string first;
      cure.agreed = true;
      while (cure.runs < cure.needed && cure.agreed && !campaign.stopped() &&
             report.input_error.empty() &&
             (report.settings.budget <= 0 ||
              static_cast<int>(history.size()) < report.settings.budget)) {
        auto made = make(cure_step, request);
        if (!made) {
          report.input_error = made.error().message;
          break;
        }
        const RunRecord& run = **made;
        ++cure.runs;
        std::error_code marked;
        cure.applied += std::filesystem::exists(run.dir + "/" + kCureMarker, marked) ? 1 : 0;
        if (!run.completed()) {
          cure.agreed = false;
          cure.refused = nondeterministic_operation(run);
        } else if (first.empty()) {
          first = classes.of(run);
        } else if (classes.of(run) != first) {
          cure.agreed = false;
        }
      }
      // The records moved as runs were added: look them up again.
      double free_wall = median_wall(runs_of(report, campaign, IsolatePhase::kFree));
      double cured_wall = median_wall(runs_of(report, campaign, IsolatePhase::kCure));
      cure.price = free_wall > 0 ? cured_wall / free_wall : 0;
    }
    report.cure = cure;
  }
  auto price_of = [&](const std::vector<std::string>& set) {
    double free_wall = median_wall(runs_of(report, campaign, IsolatePhase::kFree));
    double pinned_wall = median_wall(batch_runs(report, campaign, set));
    return free_wall > 0 && pinned_wall > 0 ? pinned_wall / free_wall : 0;
  };
  if (report.findings.enough && report.findings.enough->shown) {
    report.enough_price = price_of(report.findings.enough->pinned);
  }
  if (report.findings.search && !report.findings.search->found.empty()) {
    report.search_price = price_of(report.findings.search->found);
  }
  if (!replay_failure.empty()) {
    return make_error(replay_failure);
  }
  report.campaign = campaign.finish(report.pool_run);
  Status folded = store->checkpoint();
  if (!folded && report.input_error.empty()) {
    report.input_error = folded.error().message;
  }
  if (report.input_error.empty()) {
    report.input_error = report.campaign.input_error;
  }
  report.interrupted_by = report.campaign.interrupted_by;
  report.counter_changes = compare_counters(report);
  return report;
}

}  // namespace memdet::protocol
