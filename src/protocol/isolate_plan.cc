#include "protocol/isolate_plan.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <set>

namespace memdet::protocol {
namespace {

// P(X >= hits) for X ~ Binomial(trials, rate).
double upper_tail(int hits, int trials, double rate) {
  double sum = 0;
  for (int i = hits; i <= trials; ++i) {
    double log_term = std::lgamma(trials + 1.0) - std::lgamma(i + 1.0) -
                      std::lgamma(trials - i + 1.0) + i * std::log(rate) +
                      (trials - i) * std::log1p(-rate);
    sum += std::exp(log_term);
  }
  return sum;
}

bool differs(const IsolateOutcome& outcome, const std::string& reference) {
  return outcome.failed || outcome.signature != reference;
}

std::vector<const IsolateOutcome*> of_phase(const std::vector<IsolateOutcome>& history,
                                            IsolatePhase phase, const std::string& factor = "") {
  std::vector<const IsolateOutcome*> runs;
  for (const IsolateOutcome& outcome : history) {
    if (outcome.step.phase == phase &&
        (phase != IsolatePhase::kFactor || outcome.step.factor == factor)) {
      runs.push_back(&outcome);
    }
  }
  return runs;
}

// How many values a factor's scan tries: all it has, up to factor_runs.
int values_to_try(const IsolateSettings& settings, const FactorPlan& plan) {
  return plan.values > 0 ? std::min(plan.values, settings.factor_runs) : settings.factor_runs;
}

// Reads one factor's perturbed runs in order and says where it stands, or
// which run it needs next.
std::optional<IsolateStep> judge_factor(const IsolateSettings& settings, const FactorPlan& plan,
                                        const std::vector<const IsolateOutcome*>& runs,
                                        const std::string& reference, int confirmations,
                                        FactorFinding& finding) {
  finding.name = plan.name;
  finding.runs = static_cast<int>(runs.size());
  const int limit = values_to_try(settings, plan);
  int scanned = 0;     // values tried, each once, in order
  int last_value = 0;  // the highest value used so far
  int unconfirmed = 0;
  size_t i = 0;
  IsolateStep step;
  step.phase = IsolatePhase::kFactor;
  step.factor = plan.name;
  while (i < runs.size()) {
    const IsolateOutcome& scan = *runs[i];
    last_value = std::max(last_value, scan.step.value);
    ++scanned;
    ++i;
    if (scan.failed) {
      finding.status = FactorFinding::Status::kFailed;
      finding.value = scan.step.value;
      ++finding.differing;
      return std::nullopt;
    }
    if (!differs(scan, reference)) {
      ++finding.matching;
      if (!scan.used && finding.differing == 0) {
        finding.status = FactorFinding::Status::kUnused;
        return std::nullopt;
      }
      continue;
    }
    ++finding.differing;
    // Its confirmations follow it.
    int confirmed = 0;
    bool same_way = true;
    bool refuted = false;
    while (i < runs.size() && runs[i]->step.confirmation && confirmed < confirmations) {
      const IsolateOutcome& again = *runs[i];
      last_value = std::max(last_value, again.step.value);
      ++i;
      if (again.failed) {
        finding.status = FactorFinding::Status::kFailed;
        finding.value = again.step.value;
        ++finding.differing;
        return std::nullopt;
      }
      if (!differs(again, reference)) {
        ++finding.matching;
        refuted = true;
        break;
      }
      ++finding.differing;
      ++confirmed;
      same_way = same_way && again.signature == scan.signature;
    }
    if (refuted) {
      ++unconfirmed;
      continue;
    }
    if (confirmed < confirmations) {
      step.confirmation = true;
      step.value = plan.replayable ? scan.step.value : last_value + 1;
      finding.status = FactorFinding::Status::kUndecided;
      finding.needs = confirmations - confirmed;
      return step;
    }
    finding.status = FactorFinding::Status::kChanges;
    finding.value = scan.step.value;
    if (!plan.replayable) {
      finding.cause = FactorFinding::Cause::kLayout;
    } else {
      finding.cause = same_way ? FactorFinding::Cause::kValue : FactorFinding::Cause::kTiming;
    }
    return std::nullopt;
  }
  if (scanned < limit) {
    step.value = last_value + 1;
    finding.status = FactorFinding::Status::kUndecided;
    finding.needs = limit - scanned;
    return step;
  }
  if (unconfirmed > 0) {
    finding.status = FactorFinding::Status::kUnconfirmed;
  } else if (plan.values > 0 && plan.values <= settings.factor_runs) {
    finding.status = FactorFinding::Status::kAllValues;
  } else {
    finding.status = FactorFinding::Status::kNoEffect;
  }
  finding.bound = matching_bound(finding.matching);
  return std::nullopt;
}

// A set's test as the batch made with exactly that set pinned stands.
PinnedSetTest read_test(const std::vector<IsolateOutcome>& history,
                        const std::vector<std::string>& pinned, int needed) {
  PinnedSetTest test;
  test.pinned = pinned;
  const IsolateOutcome* first = nullptr;
  for (const IsolateOutcome& outcome : history) {
    if (outcome.step.phase != IsolatePhase::kEnough || outcome.step.pinned != pinned) {
      continue;
    }
    ++test.runs;
    first = first != nullptr ? first : &outcome;
    test.refuted = test.refuted || outcome.failed || outcome.signature != first->signature;
  }
  test.shown = !test.refuted && test.runs >= needed;
  return test;
}

// `set` cut into `parts` runs of neighbours, as even as they come.
std::vector<std::vector<std::string>> split(const std::vector<std::string>& set, size_t parts) {
  std::vector<std::vector<std::string>> pieces;
  size_t start = 0;
  for (size_t i = 0; i < parts; ++i) {
    const size_t stop = start + (set.size() - start) / (parts - i);
    pieces.emplace_back(set.begin() + static_cast<std::ptrdiff_t>(start),
                        set.begin() + static_cast<std::ptrdiff_t>(stop));
    start = stop;
  }
  return pieces;
}

std::vector<std::string> without(const std::vector<std::string>& set,
                                 const std::vector<std::string>& part) {
  std::vector<std::string> rest;
  for (const std::string& name : set) {
    if (std::find(part.begin(), part.end(), name) == part.end()) {
      rest.push_back(name);
    }
  }
  return rest;
}

// ddmin, taken again from the start over the tests the history holds, so
// that the same outcomes always lead to the same next set; it stops at the
// first set whose test is unfinished and asks for that set's next run.
std::optional<IsolateStep> search_sets(const std::vector<IsolateOutcome>& history,
                                       SetSearchFinding& search) {
  enum class Answer { kEnough, kNotEnough, kPending };
  auto test = [&](const std::vector<std::string>& set) {
    auto known = std::find_if(search.tests.begin(), search.tests.end(),
                              [&](const PinnedSetTest& t) { return t.pinned == set; });
    if (known == search.tests.end()) {
      search.tests.push_back(read_test(history, set, search.needed));
      known = search.tests.end() - 1;
    }
    return known->shown ? Answer::kEnough : known->refuted ? Answer::kNotEnough : Answer::kPending;
  };
  std::vector<std::string> narrowed = search.candidates;
  std::optional<std::vector<std::string>> waiting;
  auto tried = [&](const std::vector<std::string>& set) {
    const Answer answer = test(set);
    if (answer == Answer::kPending) {
      waiting = set;
    }
    return answer == Answer::kEnough;
  };

  size_t parts = 2;
  while (narrowed.size() >= 2 && !waiting) {
    parts = std::min(parts, narrowed.size());
    const std::vector<std::vector<std::string>> pieces = split(narrowed, parts);
    std::optional<std::vector<std::string>> smaller;
    for (size_t i = 0; i < pieces.size() && !smaller && !waiting; ++i) {
      if (tried(pieces[i])) {
        smaller = pieces[i];
        parts = 2;
      }
    }
    // With two pieces each one's complement is the other, tried already.
    for (size_t i = 0; parts > 2 && i < pieces.size() && !smaller && !waiting; ++i) {
      const std::vector<std::string> rest = without(narrowed, pieces[i]);
      if (tried(rest)) {
        smaller = rest;
        parts = std::max<size_t>(parts - 1, 2);
      }
    }
    if (waiting) {
      break;
    }
    if (smaller) {
      narrowed = *smaller;
    } else if (parts >= narrowed.size()) {
      break;
    } else {
      parts = std::min(parts * 2, narrowed.size());
    }
  }
  // The pool held every factor; the candidates alone, the rest free, are
  // shown enough only by a test of their own.
  bool enough = true;
  if (!waiting && narrowed == search.candidates) {
    enough = tried(narrowed);
  }

  search.narrowed = narrowed;
  if (waiting) {
    const PinnedSetTest& current =
        *std::find_if(search.tests.begin(), search.tests.end(),
                      [&](const PinnedSetTest& t) { return t.pinned == *waiting; });
    search.testing = *waiting;
    search.needs = std::max(0, search.needed - current.runs);
    return IsolateStep{IsolatePhase::kEnough, {}, 0, false, *waiting};
  }
  search.complete = true;
  if (enough) {
    search.found = narrowed;
  }
  return std::nullopt;
}

bool any_cause(const IsolateSettings& settings, const IsolateFindings& findings,
               bool seed_sources_only = false) {
  for (size_t i = 0; i < settings.factors.size() && i < findings.factors.size(); ++i) {
    if (explains_divergence(findings.factors[i], settings.factors[i]) &&
        (!seed_sources_only || settings.factors[i].seed_source)) {
      return true;
    }
  }
  return false;
}

void decide(const IsolateSettings& settings, IsolateFindings& findings) {
  auto any_status = [&](FactorFinding::Status status) {
    return std::any_of(findings.factors.begin(), findings.factors.end(),
                       [&](const FactorFinding& f) { return f.status == status; });
  };
  const FactorFinding* uninit = findings.find("uninit");
  if (findings.free_failed > 0) {
    findings.verdict = IsolateVerdict::kWorkloadFailed;
  } else if (findings.pool_outcomes > 1) {
    findings.verdict = IsolateVerdict::kNotExplained;
  } else if (uninit != nullptr && uninit->status == FactorFinding::Status::kChanges) {
    findings.verdict = IsolateVerdict::kUninitialised;
  } else if (any_cause(settings, findings, true)) {
    findings.verdict = IsolateVerdict::kMissedSeed;
  } else if (any_cause(settings, findings) || (findings.enough && findings.enough->shown &&
                                               (!findings.search || findings.search->complete))) {
    findings.verdict = IsolateVerdict::kLayoutDependent;
  } else if (findings.free_differing == 0 && (any_status(FactorFinding::Status::kUnconfirmed))) {
    findings.verdict = IsolateVerdict::kRareDivergence;
  } else if (findings.free_differing > 0 || findings.budget_exhausted || findings.pool_failed > 0 ||
             any_status(FactorFinding::Status::kFailed) ||
             any_status(FactorFinding::Status::kUndecided) ||
             any_status(FactorFinding::Status::kUntried)) {
    findings.verdict = IsolateVerdict::kInconclusive;
  } else if (const FactorFinding* order = findings.find("fileorder");
             order != nullptr && order->status == FactorFinding::Status::kChanges) {
    findings.verdict = IsolateVerdict::kDirectoryOrder;
  } else {
    findings.verdict = IsolateVerdict::kReproducible;
  }
}

}  // namespace

bool explains_divergence(const FactorFinding& finding, const FactorPlan& plan) {
  return finding.status == FactorFinding::Status::kChanges &&
         (finding.cause != FactorFinding::Cause::kValue || plan.varies_when_free);
}

const char* isolate_phase_name(IsolatePhase phase) {
  switch (phase) {
    case IsolatePhase::kFree:
      return "free";
    case IsolatePhase::kPinned:
      return "pinned";
    case IsolatePhase::kFactor:
      return "factor";
    case IsolatePhase::kEnough:
      return "enough";
    case IsolatePhase::kCure:
      return "cure";
    case IsolatePhase::kRead:
      return "read";
  }
  return "?";
}

const char* isolate_verdict_name(IsolateVerdict verdict) {
  switch (verdict) {
    case IsolateVerdict::kWorkloadFailed:
      return "workload-failed";
    case IsolateVerdict::kNotExplained:
      return "not-explained";
    case IsolateVerdict::kUninitialised:
      return "reads-uninitialised-memory";
    case IsolateVerdict::kMissedSeed:
      return "missed-seed";
    case IsolateVerdict::kDirectoryOrder:
      return "depends-on-directory-order";
    case IsolateVerdict::kLayoutDependent:
      return "layout-or-timing-dependent";
    case IsolateVerdict::kRareDivergence:
      return "rare-divergence";
    case IsolateVerdict::kInconclusive:
      return "inconclusive";
    case IsolateVerdict::kReproducible:
      return "reproducible";
  }
  return "?";
}

const FactorFinding* IsolateFindings::find(const std::string& name) const {
  for (const FactorFinding& finding : factors) {
    if (finding.name == name) {
      return &finding;
    }
  }
  return nullptr;
}

int IsolateFindings::exit_status() const {
  // A failure under the pool or a perturbed factor is that profile's
  // finding, but still a failed run.
  const bool factor_failed = std::any_of(
      factors.begin(), factors.end(),
      [](const FactorFinding& f) { return f.status == FactorFinding::Status::kFailed; });
  if (verdict == IsolateVerdict::kWorkloadFailed || pool_failed > 0 || factor_failed) {
    return 3;
  }
  return any_difference ? 1 : 0;
}

double lower_rate_bound(int hits, int trials) {
  if (hits <= 0 || trials <= 0) {
    return 0;
  }
  if (hits >= trials) {
    return std::pow(0.05, 1.0 / trials);
  }
  // The rate at which `hits` or more would be seen with chance 0.05.
  double low = 0;
  double high = 1;
  for (int step = 0; step < 60; ++step) {
    double mid = (low + high) / 2;
    (upper_tail(hits, trials, mid) < 0.05 ? low : high) = mid;
  }
  return low;
}

double matching_bound(int matching) {
  if (matching < 1) {
    return 1.0;
  }
  return 1.0 - std::pow(0.05, 1.0 / matching);
}

int agreeing_runs_needed(double rate) {
  if (rate <= 0) {
    return 0;
  }
  if (rate >= 1) {
    return 1;
  }
  return static_cast<int>(std::ceil(std::log(0.05) / std::log1p(-rate)));
}

int differing_runs_needed(int pool, double level) {
  // 1 / C(pool + k, k) falls as k grows; C is kept in floating point.
  double ways = 1;
  for (int k = 1; k <= 64; ++k) {
    ways = ways * (pool + k) / k;
    if (1.0 / ways <= level) {
      return k;
    }
  }
  return 64;
}

IsolatePlan plan_isolate(const IsolateSettings& settings,
                         const std::vector<IsolateOutcome>& history) {
  IsolatePlan plan;
  IsolateFindings& findings = plan.findings;
  findings.runs = static_cast<int>(history.size());
  for (const FactorPlan& factor : settings.factors) {
    findings.factors.push_back({});
    findings.factors.back().name = factor.name;
  }
  const bool budget_left = settings.budget <= 0 || findings.runs < settings.budget;
  auto ask = [&](IsolateStep step) {
    if (budget_left) {
      plan.next = std::move(step);
    } else {
      findings.budget_exhausted = true;
    }
  };
  auto finish = [&]() -> IsolatePlan {
    // Once the budget is gone, what each untried factor would still need.
    for (size_t f = 0; findings.budget_exhausted && f < settings.factors.size(); ++f) {
      if (findings.factors[f].status == FactorFinding::Status::kUntried) {
        findings.factors[f].needs = values_to_try(settings, settings.factors[f]);
      }
    }
    decide(settings, findings);
    return plan;
  };

  // 1. Free runs.
  std::vector<const IsolateOutcome*> free = of_phase(history, IsolatePhase::kFree);
  findings.free_runs = static_cast<int>(free.size());
  for (const IsolateOutcome* run : free) {
    findings.free_failed += run->failed ? 1 : 0;
    if (run != free.front() && !run->failed && !free.front()->failed &&
        run->signature != free.front()->signature) {
      ++findings.free_differing;
    }
  }
  findings.any_difference = findings.free_differing > 0;
  if (findings.free_failed > 0) {
    return finish();
  }
  if (findings.free_runs < settings.free_runs) {
    ask({IsolatePhase::kFree, {}, 0, false, {}});
    return finish();
  }

  // 2. The pinned pool. Two outcomes in it end the campaign at once.
  std::vector<const IsolateOutcome*> pool = of_phase(history, IsolatePhase::kPinned);
  findings.pool_runs = static_cast<int>(pool.size());
  std::set<std::string> pool_outcomes;
  for (const IsolateOutcome* run : pool) {
    if (run->failed) {
      ++findings.pool_failed;
    } else {
      pool_outcomes.insert(run->signature);
    }
  }
  findings.pool_outcomes = static_cast<int>(pool_outcomes.size());
  if (findings.pool_outcomes > 1) {
    findings.any_difference = true;
  }
  if (findings.pool_outcomes > 1 || findings.pool_failed > 0) {
    return finish();
  }
  if (findings.pool_runs < settings.pool_runs) {
    ask({IsolatePhase::kPinned, {}, 0, false, {}});
    return finish();
  }
  findings.reference = *pool_outcomes.begin();
  findings.confirmations = differing_runs_needed(findings.pool_runs, settings.blame_level) - 1;

  // 3. One factor at a time.
  for (size_t f = 0; f < settings.factors.size(); ++f) {
    const FactorPlan& factor = settings.factors[f];
    auto runs = of_phase(history, IsolatePhase::kFactor, factor.name);
    auto next = judge_factor(settings, factor, runs, findings.reference, findings.confirmations,
                             findings.factors[f]);
    findings.any_difference = findings.any_difference || findings.factors[f].differing > 0;
    if (next) {
      ask(*next);
      return finish();
    }
  }

  // 4. When the free runs differ: is pinning the blamed factors enough? With
  // none blamed, every factor together is tried (the pool is such a batch).
  if (findings.free_differing == 0) {
    return finish();
  }
  EnoughFinding enough;
  for (size_t f = 0; f < settings.factors.size(); ++f) {
    if (explains_divergence(findings.factors[f], settings.factors[f])) {
      enough.pinned.push_back(findings.factors[f].name);
    }
  }
  enough.needed =
      agreeing_runs_needed(lower_rate_bound(findings.free_differing, findings.free_runs - 1));
  std::vector<const IsolateOutcome*> batch;
  if (enough.pinned.empty()) {
    batch = pool;
  }
  for (const IsolateOutcome* run : of_phase(history, IsolatePhase::kEnough)) {
    if (run->step.pinned == enough.pinned) {
      batch.push_back(run);
    }
  }
  enough.runs = static_cast<int>(batch.size());
  for (const IsolateOutcome* run : batch) {
    if (run->failed || run->signature != batch.front()->signature) {
      enough.refuted = true;
    }
  }
  enough.shown = !enough.refuted && enough.runs >= enough.needed;
  findings.any_difference = findings.any_difference || enough.refuted;
  findings.enough = enough;
  if (!enough.refuted && !enough.shown) {
    ask({IsolatePhase::kEnough, {}, 0, false, enough.pinned});
    return finish();
  }

  // 5. Every factor pinned is enough and none explains it alone: search for
  // the fewest whose pinning is. Only a factor with a value of its own when
  // free can matter then, and not one the program never used.
  if (!enough.shown || !enough.pinned.empty()) {
    return finish();
  }
  SetSearchFinding search;
  search.needed = enough.needed;
  for (size_t f = 0; f < settings.factors.size(); ++f) {
    if (settings.factors[f].varies_when_free &&
        findings.factors[f].status != FactorFinding::Status::kUnused) {
      search.candidates.push_back(settings.factors[f].name);
    }
  }
  if (search.candidates.empty()) {
    return finish();
  }
  std::optional<IsolateStep> next = search_sets(history, search);
  findings.search = search;
  if (next) {
    ask(*next);
  }
  return finish();
}

int runs_ahead(const IsolateSettings& settings, const IsolateFindings& findings) {
  int ahead = std::max(0, settings.free_runs - findings.free_runs) +
              std::max(0, settings.pool_runs - findings.pool_runs);
  for (size_t f = 0; f < settings.factors.size() && f < findings.factors.size(); ++f) {
    const FactorFinding& finding = findings.factors[f];
    if (finding.status == FactorFinding::Status::kUntried ||
        finding.status == FactorFinding::Status::kUndecided) {
      ahead += std::max(0, values_to_try(settings, settings.factors[f]) - finding.runs);
    }
  }
  if (findings.enough && !findings.enough->shown && !findings.enough->refuted) {
    ahead += std::max(0, findings.enough->needed - findings.enough->runs);
  }
  if (findings.search && !findings.search->complete) {
    ahead += findings.search->needs;
  }
  if (settings.budget > 0) {
    ahead = std::min(ahead, std::max(0, settings.budget - findings.runs));
  }
  return ahead;
}

}  // namespace memdet::protocol
