#include "protocol/isolate.h"

#include <algorithm>
#include <set>

#include "report/check_json.h"
#include "store/campaign_store.h"

namespace memdet::protocol {
namespace {

struct Profiles {
  factors::Profile free;
  factors::Profile pinned;
  std::vector<std::pair<std::string, factors::Profile>> perturbed;  // one per factor tried
  std::vector<std::pair<std::vector<std::string>, factors::Profile>> enough;

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
      return make_error("--factors: unknown factor '" + name + "'");
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
                          {"record", report::run_json(run)}};
  return entry.dump();
}

IsolateOutcome outcome_of(const RunRecord& run, const IsolateStep& step) {
  IsolateOutcome outcome;
  outcome.step = step;
  outcome.failed = !run.completed();
  if (!outcome.failed) {
    outcome.signature = Campaign::signature(run);
  }
  return outcome;
}

}  // namespace

const std::vector<std::string>& isolate_factor_order() {
  static const std::vector<std::string> order = {
      "uninit", "heap", "aslr",      "stack", "allocator", "threads",        "cpu",
      "env",    "thp",  "hugepages", "numa",  "mlock",     "numa-balancing", "noise",
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
  report.pinned = profiles.pinned;

  const int max_runs = report.settings.budget > 0 ? report.settings.budget : 999;
  auto opened = Campaign::open(options.check, max_runs, "isolate.json");
  if (!opened) {
    return opened.error();
  }
  Campaign& campaign = *opened;
  auto store = store::CampaignStore::open(campaign.report().campaign_dir);
  if (!store) {
    campaign.discard();
    return store.error();
  }
  {
    nlohmann::json settings = {{"free_runs", report.settings.free_runs},
                               {"pool_runs", report.settings.pool_runs},
                               {"factor_runs", report.settings.factor_runs},
                               {"blame_level", report.settings.blame_level},
                               {"budget", report.settings.budget}};
    for (const auto& [key, value] : {std::pair<std::string, std::string>{
                                         "command", nlohmann::json(options.check.command).dump()},
                                     {"seed", std::to_string(options.seed)},
                                     {"settings", settings.dump()}}) {
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
      case IsolatePhase::kPinned:
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
        request.footprint_group = step.pinned.empty() ? "pinned" : "enough";
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

  std::vector<IsolateOutcome> history;
  while (true) {
    IsolatePlan plan = plan_isolate(report.settings, history);
    report.findings = plan.findings;
    if (!plan.next || campaign.stopped()) {
      break;
    }
    auto request = request_for(*plan.next);
    if (!request) {
      report.input_error = request.error().message;
      break;
    }
    auto made = campaign.run(*request);
    if (!made) {
      return made.error();
    }
    const RunRecord& run = **made;
    if (plan.next->phase == IsolatePhase::kPinned && report.pool_run == 0) {
      report.pool_run = run.index;
    }
    report.steps.push_back(*plan.next);
    history.push_back(outcome_of(run, *plan.next));
    // Committed as the run ends, so a campaign cut short keeps every run it
    // finished; the write-ahead log is folded in at each change of phase.
    Status stored = store->add_run({run.index, isolate_phase_name(plan.next->phase),
                                    plan.next->factor, stored_record(run, history.back())});
    if (!stored) {
      report.input_error = stored.error().message;
      break;
    }
    if (history.size() >= 2 && (history[history.size() - 2].step.phase != plan.next->phase ||
                                history[history.size() - 2].step.factor != plan.next->factor)) {
      (void)store->checkpoint();
    }
    if (options.on_run_done != nullptr) {
      options.on_run_done(run, *plan.next, plan_isolate(report.settings, history).findings);
    }
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
  return report;
}

}  // namespace memdet::protocol
