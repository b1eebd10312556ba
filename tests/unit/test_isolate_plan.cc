// isolate's decisions driven by synthetic outcomes: the statistics, the
// order of steps, and, by simulation, how often an innocent factor is
// blamed and how often a guilty one is missed.
#include "protocol/isolate_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>

namespace memdet::protocol {
namespace {

TEST(IsolateStatistics, MatchingBoundFollowsTheRuleOfThree) {
  EXPECT_NEAR(matching_bound(5), 0.451, 0.001);
  EXPECT_NEAR(matching_bound(11), 0.238, 0.001);
  EXPECT_NEAR(matching_bound(29), 0.098, 0.001);
  EXPECT_NEAR(matching_bound(59), 0.049, 0.001);
  EXPECT_EQ(matching_bound(0), 1.0);
}

TEST(IsolateStatistics, DifferingRunsNeededForEightPooledRunsIsThree) {
  // 1 / C(11, 3) = 0.006; 1 / C(10, 2) = 0.022.
  EXPECT_EQ(differing_runs_needed(8, 0.01), 3);
  // A pool of 4: 1 / C(8, 4) = 0.014 is not enough, 1 / C(9, 5) = 0.008 is.
  EXPECT_EQ(differing_runs_needed(4, 0.01), 5);
  EXPECT_EQ(differing_runs_needed(20, 0.01), 2);
}

TEST(IsolateStatistics, LowerRateBoundIsClopperPearson) {
  EXPECT_EQ(lower_rate_bound(0, 4), 0.0);
  // All of n: 0.05^(1/n).
  EXPECT_NEAR(lower_rate_bound(4, 4), std::pow(0.05, 0.25), 1e-9);
  // One of four: 1 - 0.95^(1/4).
  EXPECT_NEAR(lower_rate_bound(1, 4), 1 - std::pow(0.95, 0.25), 1e-6);
  // Two of four: solves P(X >= 2) = 0.05; checked against the tail itself.
  double p = lower_rate_bound(2, 4);
  double tail = 1 - std::pow(1 - p, 4) - 4 * p * std::pow(1 - p, 3);
  EXPECT_NEAR(tail, 0.05, 1e-6);
}

TEST(IsolateStatistics, AgreeingRunsNeeded) {
  EXPECT_EQ(agreeing_runs_needed(0.0), 0);
  EXPECT_EQ(agreeing_runs_needed(0.5), 5);  // 0.5^5 = 0.031 <= 0.05 < 0.5^4
  EXPECT_EQ(agreeing_runs_needed(0.1), 29);
}

// A synthetic workload: what each run would give.
using Oracle = std::function<IsolateOutcome(const IsolateStep&)>;

IsolateFindings drive(const IsolateSettings& settings, const Oracle& oracle, int max_runs = 1000) {
  std::vector<IsolateOutcome> history;
  for (int i = 0; i < max_runs; ++i) {
    IsolatePlan plan = plan_isolate(settings, history);
    if (!plan.next) {
      return plan.findings;
    }
    IsolateOutcome outcome = oracle(*plan.next);
    outcome.step = *plan.next;
    history.push_back(outcome);
  }
  ADD_FAILURE() << "the campaign did not end within " << max_runs << " runs";
  return plan_isolate(settings, history).findings;
}

IsolateOutcome same() { return {{}, false, "reference"}; }

IsolateSettings twelve_factors() {
  IsolateSettings settings;
  const char* names[] = {"aslr", "stack", "heap", "uninit",    "allocator", "threads",
                         "cpu",  "env",   "thp",  "hugepages", "numa",      "mlock"};
  int values[] = {0, 0, 3, 0, 2, 1, 0, 0, 2, 2, 3, 1};
  for (int i = 0; i < 12; ++i) {
    settings.factors.push_back({names[i], values[i], std::string(names[i]) != "aslr"});
  }
  return settings;
}

TEST(IsolatePlan, ADeterministicWorkloadIsReproducible) {
  IsolateSettings settings = twelve_factors();
  IsolateFindings found = drive(settings, [](const IsolateStep&) { return same(); });
  EXPECT_EQ(found.verdict, IsolateVerdict::kReproducible);
  EXPECT_EQ(found.exit_status(), 0);
  // 5 free + 8 pooled + each factor's values (4 for the unbounded ones).
  EXPECT_EQ(found.runs, 5 + 8 + 4 + 4 + 3 + 4 + 2 + 1 + 4 + 4 + 2 + 2 + 3 + 1);
  EXPECT_EQ(found.find("heap")->status, FactorFinding::Status::kAllValues);
  EXPECT_EQ(found.find("aslr")->status, FactorFinding::Status::kNoEffect);
  EXPECT_NEAR(found.find("aslr")->bound, matching_bound(4), 1e-12);
}

TEST(IsolatePlan, RunsAheadCountDownToTheEndOfACampaignInWhichNothingDiffers) {
  IsolateSettings settings = twelve_factors();
  const int total = 5 + 8 + 4 + 4 + 3 + 4 + 2 + 1 + 4 + 4 + 2 + 2 + 3 + 1;
  std::vector<IsolateOutcome> history;
  IsolatePlan plan = plan_isolate(settings, history);
  EXPECT_EQ(runs_ahead(settings, plan.findings), total);
  while (plan.next) {
    IsolateOutcome outcome = same();
    outcome.step = *plan.next;
    history.push_back(outcome);
    plan = plan_isolate(settings, history);
    ASSERT_EQ(static_cast<int>(history.size()) + runs_ahead(settings, plan.findings), total)
        << "after " << history.size() << " runs";
  }
  EXPECT_EQ(runs_ahead(settings, plan.findings), 0);

  // A budget caps the forecast.
  settings.budget = 20;
  EXPECT_EQ(runs_ahead(settings, plan_isolate(settings, {}).findings), 20);
}

TEST(IsolatePlan, ADifferingPoolStopsAtOnce) {
  IsolateSettings settings = twelve_factors();
  int pooled = 0;
  IsolateFindings found = drive(settings, [&](const IsolateStep& step) {
    if (step.phase == IsolatePhase::kPinned && ++pooled == 3) {
      return IsolateOutcome{{}, false, "other"};
    }
    return same();
  });
  EXPECT_EQ(found.verdict, IsolateVerdict::kNotExplained);
  EXPECT_EQ(found.runs, 5 + 3);
  EXPECT_EQ(found.exit_status(), 1);
}

TEST(IsolatePlan, FailingFreeRunsAreTheWorkloadsFailure) {
  IsolateSettings settings = twelve_factors();
  IsolateFindings found = drive(settings, [](const IsolateStep&) {
    return IsolateOutcome{{}, true, ""};
  });
  EXPECT_EQ(found.verdict, IsolateVerdict::kWorkloadFailed);
  EXPECT_EQ(found.runs, 1);
  EXPECT_EQ(found.exit_status(), 3);
}

TEST(IsolatePlan, AValueDependentFactorIsBlamedByReplays) {
  IsolateSettings settings = twelve_factors();
  std::vector<int> heap_values;
  IsolateFindings found = drive(settings, [&](const IsolateStep& step) {
    if (step.phase == IsolatePhase::kFactor && step.factor == "heap") {
      heap_values.push_back(step.value);
      if (step.value == 2) {
        return IsolateOutcome{{}, false, "heap-2"};
      }
    }
    return same();
  });
  // The free runs agree: the runs repeat as made, and the heap's value is
  // a finding attached to that verdict. Some runs differed: exit 1.
  EXPECT_EQ(found.verdict, IsolateVerdict::kReproducible);
  EXPECT_EQ(found.exit_status(), 1);
  const FactorFinding* heap = found.find("heap");
  EXPECT_EQ(heap->status, FactorFinding::Status::kChanges);
  EXPECT_EQ(heap->cause, FactorFinding::Cause::kValue);
  EXPECT_EQ(heap->value, 2);
  // Value 1, then 2 and its two replays; value 3 is never needed.
  EXPECT_EQ(heap_values, (std::vector<int>{1, 2, 2, 2}));
  // The free runs agreed: no batch tries whether pinning it is enough.
  EXPECT_FALSE(found.enough.has_value());
  for (const FactorFinding& other : found.factors) {
    if (other.name != "heap") {
      EXPECT_NE(other.status, FactorFinding::Status::kChanges) << other.name;
    }
  }
}

// The twelve factors behind the missed-seed ones, tried first as isolate
// orders them.
IsolateSettings with_seed_sources() {
  IsolateSettings settings;
  FactorPlan entropy{"entropy", 0, true, true};
  entropy.seed_source = true;
  FactorPlan clock{"clock", 0, true, true};
  clock.seed_source = true;
  settings.factors = {entropy, clock, {"fileorder", 0, true, false}};
  for (const FactorPlan& plan : twelve_factors().factors) {
    settings.factors.push_back(plan);
  }
  return settings;
}

TEST(IsolatePlan, AResultThatFollowsOsEntropyIsAMissedSeed) {
  // Free runs differ in every run; pinned runs agree; another entropy seed
  // gives another result, and replaying it gives that result again.
  int free_run = 0;
  IsolateFindings found = drive(with_seed_sources(), [&](const IsolateStep& step) {
    if (step.phase == IsolatePhase::kFree) {
      return IsolateOutcome{{}, false, "free-" + std::to_string(free_run++)};
    }
    if (step.phase == IsolatePhase::kFactor && step.factor == "entropy") {
      return IsolateOutcome{{}, false, "entropy-" + std::to_string(step.value)};
    }
    if (step.phase == IsolatePhase::kEnough) {
      return same();
    }
    return same();
  });
  EXPECT_EQ(found.verdict, IsolateVerdict::kMissedSeed);
  const FactorFinding* entropy = found.find("entropy");
  ASSERT_NE(entropy, nullptr);
  EXPECT_EQ(entropy->status, FactorFinding::Status::kChanges);
  EXPECT_EQ(entropy->cause, FactorFinding::Cause::kValue);
  EXPECT_NE(found.find("clock")->status, FactorFinding::Status::kChanges);
}

TEST(IsolatePlan, AMemoryFactorThatExplainsTheRunsIsNotAMissedSeed) {
  int free_run = 0;
  IsolateFindings found = drive(with_seed_sources(), [&](const IsolateStep& step) {
    if (step.phase == IsolatePhase::kFree) {
      return IsolateOutcome{{}, false, "free-" + std::to_string(free_run++)};
    }
    if (step.phase == IsolatePhase::kFactor && step.factor == "aslr") {
      return IsolateOutcome{{}, false, "aslr-" + std::to_string(step.value)};
    }
    return same();
  });
  EXPECT_EQ(found.verdict, IsolateVerdict::kLayoutDependent);
}

TEST(IsolatePlan, AnotherDirectoryOrderGivingAnotherResultIsItsOwnVerdict) {
  // The runs agree as made; each other order gives its own repeatable result.
  IsolateFindings found = drive(with_seed_sources(), [&](const IsolateStep& step) {
    if (step.phase == IsolatePhase::kFactor && step.factor == "fileorder") {
      return IsolateOutcome{{}, false, "order-" + std::to_string(step.value)};
    }
    return same();
  });
  EXPECT_EQ(found.verdict, IsolateVerdict::kDirectoryOrder);
  EXPECT_EQ(found.find("fileorder")->cause, FactorFinding::Cause::kValue);
  EXPECT_EQ(found.exit_status(), 1);
}

TEST(IsolatePlan, AFactorTheProgramNeverUsesTakesOneRun) {
  int entropy_runs = 0;
  IsolateFindings found = drive(with_seed_sources(), [&](const IsolateStep& step) {
    IsolateOutcome outcome = same();
    if (step.phase == IsolatePhase::kFactor && step.factor == "entropy") {
      ++entropy_runs;
      outcome.used = false;
    }
    return outcome;
  });
  EXPECT_EQ(entropy_runs, 1);
  EXPECT_EQ(found.find("entropy")->status, FactorFinding::Status::kUnused);
  EXPECT_EQ(found.verdict, IsolateVerdict::kReproducible);
}

TEST(IsolatePlan, AnUnusedFactorThatStillDiffersIsTriedOn) {
  // "Unused" is only believed while the runs match the pool.
  int entropy_runs = 0;
  drive(with_seed_sources(), [&](const IsolateStep& step) {
    IsolateOutcome outcome = same();
    if (step.phase == IsolatePhase::kFactor && step.factor == "entropy") {
      ++entropy_runs;
      outcome.used = false;
      outcome.signature = "entropy-" + std::to_string(step.value);
    }
    return outcome;
  });
  EXPECT_GT(entropy_runs, 1);
}

TEST(IsolatePlan, ALayoutFactorIsShownEnoughToPin) {
  IsolateSettings settings = twelve_factors();
  int fresh = 0;
  IsolateFindings found = drive(settings, [&](const IsolateStep& step) {
    bool aslr_free =
        step.phase == IsolatePhase::kFree ||
        (step.phase == IsolatePhase::kEnough &&
         std::find(step.pinned.begin(), step.pinned.end(), "aslr") == step.pinned.end());
    bool aslr_moved = step.phase == IsolatePhase::kFactor && step.factor == "aslr";
    if (aslr_free || aslr_moved) {
      return IsolateOutcome{{}, false, "layout-" + std::to_string(++fresh)};
    }
    // The heap offset moves addresses too, by its value; left free it
    // holds one value, so it cannot be why the free runs differ.
    if (step.phase == IsolatePhase::kFactor && step.factor == "heap") {
      return IsolateOutcome{{}, false, "heap-" + std::to_string(step.value)};
    }
    return same();
  });
  EXPECT_EQ(found.verdict, IsolateVerdict::kLayoutDependent);
  EXPECT_EQ(found.find("aslr")->cause, FactorFinding::Cause::kLayout);
  EXPECT_EQ(found.find("heap")->status, FactorFinding::Status::kChanges);
  EXPECT_EQ(found.find("heap")->cause, FactorFinding::Cause::kValue);
  ASSERT_TRUE(found.enough.has_value());
  EXPECT_EQ(found.enough->pinned, std::vector<std::string>{"aslr"});
  // 4 of 4 free runs after the first differed: p_L = 0.473, 5 runs.
  EXPECT_EQ(found.enough->needed, 5);
  EXPECT_TRUE(found.enough->shown);
}

TEST(IsolatePlan, RunsAheadCountTheBatchThatShowsPinningEnough) {
  IsolateSettings settings = twelve_factors();
  int fresh = 0;
  std::vector<IsolateOutcome> history;
  std::vector<int> forecasts;  // made + ahead, before each run of the batch
  IsolatePlan plan = plan_isolate(settings, history);
  while (plan.next) {
    const IsolateStep step = *plan.next;
    if (step.phase == IsolatePhase::kEnough) {
      forecasts.push_back(static_cast<int>(history.size()) + runs_ahead(settings, plan.findings));
    }
    const bool aslr_free = step.phase == IsolatePhase::kFree ||
                           (step.phase == IsolatePhase::kFactor && step.factor == "aslr");
    IsolateOutcome outcome =
        aslr_free ? IsolateOutcome{{}, false, "layout-" + std::to_string(++fresh)} : same();
    outcome.step = step;
    history.push_back(outcome);
    plan = plan_isolate(settings, history);
  }
  ASSERT_TRUE(plan.findings.enough.has_value());
  ASSERT_FALSE(forecasts.empty());
  for (int forecast : forecasts) {
    EXPECT_EQ(forecast, static_cast<int>(history.size()));
  }
}

TEST(IsolatePlan, TheBudgetEndsTheCampaignInconclusive) {
  IsolateSettings settings = twelve_factors();
  settings.budget = 20;
  IsolateFindings found = drive(settings, [](const IsolateStep&) { return same(); });
  EXPECT_EQ(found.runs, 20);
  EXPECT_TRUE(found.budget_exhausted);
  EXPECT_EQ(found.verdict, IsolateVerdict::kInconclusive);
  EXPECT_EQ(found.exit_status(), 0);
  int undecided = 0;
  for (const FactorFinding& factor : found.factors) {
    undecided += factor.status == FactorFinding::Status::kUndecided ? 1 : 0;
  }
  EXPECT_EQ(undecided, 1);
}

// The factors as isolate orders them, with the four that take a value of
// their own when left free: entropy, clock, aslr and cpu.
IsolateSettings varying_when_free() {
  IsolateSettings settings = with_seed_sources();
  for (FactorPlan& plan : settings.factors) {
    plan.varies_when_free = plan.varies_when_free || plan.name == "aslr" || plan.name == "cpu";
  }
  return settings;
}

bool holds(const std::vector<std::string>& pinned, const std::string& name) {
  return std::find(pinned.begin(), pinned.end(), name) != pinned.end();
}

// Factors that matter only while free: no perturbed value changes the
// result, but each run with one of `needed` free gives a fresh one.
Oracle free_only(std::vector<std::string> needed) {
  auto fresh = std::make_shared<int>(0);
  return [needed, fresh](const IsolateStep& step) {
    bool settled = step.phase != IsolatePhase::kFree;
    if (step.phase == IsolatePhase::kEnough && !step.pinned.empty()) {
      for (const std::string& name : needed) {
        settled = settled && holds(step.pinned, name);
      }
    }
    return settled ? same() : IsolateOutcome{{}, false, "free-" + std::to_string(++*fresh)};
  };
}

TEST(IsolateSetSearch, TwoFactorsThatMatterOnlyTogetherAreFoundAsOneSet) {
  IsolateSettings settings = varying_when_free();
  IsolateFindings found = drive(settings, free_only({"aslr", "cpu"}));

  for (size_t i = 0; i < found.factors.size(); ++i) {
    EXPECT_FALSE(explains_divergence(found.factors[i], settings.factors[i]))
        << found.factors[i].name;
  }
  ASSERT_TRUE(found.enough.has_value());
  EXPECT_TRUE(found.enough->pinned.empty());
  EXPECT_TRUE(found.enough->shown);
  ASSERT_TRUE(found.search.has_value());
  const SetSearchFinding& search = *found.search;
  EXPECT_EQ(search.candidates, (std::vector<std::string>{"entropy", "clock", "aslr", "cpu"}));
  EXPECT_TRUE(search.complete);
  EXPECT_EQ(search.found, (std::vector<std::string>{"aslr", "cpu"}));
  EXPECT_EQ(found.verdict, IsolateVerdict::kLayoutDependent);
  EXPECT_EQ(found.exit_status(), 1);

  // ddmin's halves, then the half that was enough halved again; a test
  // ends at the second run that differs, or at `needed` agreeing runs.
  ASSERT_EQ(search.tests.size(), 4u);
  std::vector<std::vector<std::string>> sets;
  for (const PinnedSetTest& test : search.tests) {
    sets.push_back(test.pinned);
  }
  EXPECT_EQ(sets, (std::vector<std::vector<std::string>>{
                      {"entropy", "clock"}, {"aslr", "cpu"}, {"aslr"}, {"cpu"}}));
  EXPECT_TRUE(search.tests[0].refuted);
  EXPECT_EQ(search.tests[0].runs, 2);
  EXPECT_TRUE(search.tests[1].shown);
  EXPECT_EQ(search.tests[1].runs, search.needed);
  EXPECT_TRUE(search.tests[2].refuted);
  EXPECT_TRUE(search.tests[3].refuted);
}

TEST(IsolateSetSearch, OneFactorThatMattersOnlyWhileFreeIsFoundAlone) {
  IsolateSettings settings = varying_when_free();
  for (const char* guilty : {"entropy", "clock", "aslr", "cpu"}) {
    IsolateFindings found = drive(settings, free_only({guilty}));
    ASSERT_TRUE(found.search.has_value()) << guilty;
    EXPECT_TRUE(found.search->complete) << guilty;
    EXPECT_EQ(found.search->found, std::vector<std::string>{guilty});
    EXPECT_EQ(found.verdict, IsolateVerdict::kLayoutDependent) << guilty;
    EXPECT_EQ(found.find(guilty)->status, FactorFinding::Status::kNoEffect) << guilty;
  }
}

TEST(IsolateSetSearch, ASingleCandidateIsTestedWithTheRestFree) {
  // The pool held every factor; whether the one candidate alone is enough
  // takes a batch of its own.
  IsolateSettings settings = twelve_factors();
  settings.factors[6].varies_when_free = true;  // cpu
  IsolateFindings found = drive(settings, free_only({"cpu", "heap"}));
  ASSERT_TRUE(found.search.has_value());
  ASSERT_EQ(found.search->tests.size(), 1u);
  EXPECT_EQ(found.search->tests[0].pinned, std::vector<std::string>{"cpu"});
  EXPECT_TRUE(found.search->tests[0].refuted);
  EXPECT_TRUE(found.search->complete);
  EXPECT_TRUE(found.search->found.empty());
  // Every factor pinned is still shown enough.
  EXPECT_EQ(found.verdict, IsolateVerdict::kLayoutDependent);
}

TEST(IsolateSetSearch, NoSearchWhenNoFactorVariesWhenFree) {
  IsolateFindings found = drive(twelve_factors(), free_only({"aslr"}));
  ASSERT_TRUE(found.enough.has_value());
  EXPECT_TRUE(found.enough->shown);
  EXPECT_FALSE(found.search.has_value());
}

TEST(IsolateSetSearch, UnusedFactorsAreNotCandidates) {
  IsolateSettings settings = varying_when_free();
  Oracle workload = free_only({"cpu"});
  IsolateFindings found = drive(settings, [&](const IsolateStep& step) {
    IsolateOutcome outcome = workload(step);
    outcome.used = !(step.phase == IsolatePhase::kFactor && step.factor == "clock");
    return outcome;
  });
  ASSERT_TRUE(found.search.has_value());
  EXPECT_EQ(found.search->candidates, (std::vector<std::string>{"entropy", "aslr", "cpu"}));
  EXPECT_EQ(found.search->found, std::vector<std::string>{"cpu"});
}

TEST(IsolateSetSearch, TheBudgetEndsTheSearchInconclusiveWithWhatItNeeds) {
  IsolateSettings settings = varying_when_free();
  std::vector<IsolateOutcome> history;
  Oracle workload = free_only({"aslr", "cpu"});
  // Where the test of aslr and cpu together begins, in a campaign without a budget.
  int begins = -1;
  IsolatePlan plan = plan_isolate(settings, history);
  while (plan.next) {
    if (begins < 0 && plan.next->phase == IsolatePhase::kEnough &&
        plan.next->pinned == std::vector<std::string>{"aslr", "cpu"}) {
      begins = static_cast<int>(history.size());
    }
    IsolateOutcome outcome = workload(*plan.next);
    outcome.step = *plan.next;
    history.push_back(outcome);
    plan = plan_isolate(settings, history);
  }
  ASSERT_GT(begins, 0);

  settings.budget = begins + 2;
  IsolateFindings found = drive(settings, free_only({"aslr", "cpu"}));
  EXPECT_EQ(found.runs, begins + 2);
  EXPECT_TRUE(found.budget_exhausted);
  EXPECT_EQ(found.verdict, IsolateVerdict::kInconclusive);
  ASSERT_TRUE(found.search.has_value());
  const SetSearchFinding& search = *found.search;
  EXPECT_FALSE(search.complete);
  EXPECT_TRUE(search.found.empty());
  EXPECT_EQ(search.testing, (std::vector<std::string>{"aslr", "cpu"}));
  EXPECT_EQ(search.needs, search.needed - 2);
  EXPECT_EQ(search.narrowed, search.candidates);
  EXPECT_EQ(runs_ahead(settings, found), 0);
}

bool same_step(const IsolateStep& a, const IsolateStep& b) {
  return a.phase == b.phase && a.factor == b.factor && a.value == b.value &&
         a.confirmation == b.confirmation && a.pinned == b.pinned;
}

TEST(IsolateSetSearch, EveryPrefixOfTheHistoryLeadsToTheSameNextStep) {
  IsolateSettings settings = varying_when_free();
  Oracle workload = free_only({"clock", "cpu"});
  std::vector<IsolateOutcome> history;
  IsolatePlan plan = plan_isolate(settings, history);
  while (plan.next) {
    IsolateOutcome outcome = workload(*plan.next);
    outcome.step = *plan.next;
    history.push_back(outcome);
    plan = plan_isolate(settings, history);
  }
  ASSERT_TRUE(plan.findings.search.has_value());
  EXPECT_EQ(plan.findings.search->found, (std::vector<std::string>{"clock", "cpu"}));

  // A campaign resumed after any run replays the same outcomes, so it
  // must ask for the run that came next, and the search must count each
  // set's runs as made; in the search, the runs ahead are the rest of the
  // set under test.
  for (size_t made = 0; made < history.size(); ++made) {
    const std::vector<IsolateOutcome> prefix(history.begin(),
                                             history.begin() + static_cast<std::ptrdiff_t>(made));
    IsolatePlan again = plan_isolate(settings, prefix);
    ASSERT_TRUE(again.next.has_value()) << "after " << made << " runs";
    EXPECT_TRUE(same_step(*again.next, history[made].step)) << "after " << made << " runs";
    if (again.findings.search) {
      const SetSearchFinding& search = *again.findings.search;
      int counted = 0;
      for (const PinnedSetTest& test : search.tests) {
        counted += test.runs;
      }
      int made_in_search = 0;
      for (const IsolateOutcome& outcome : prefix) {
        made_in_search += outcome.step.phase == IsolatePhase::kEnough ? 1 : 0;
      }
      EXPECT_EQ(counted, made_in_search) << "after " << made << " runs";
      EXPECT_EQ(search.testing, history[made].step.pinned);
      EXPECT_EQ(runs_ahead(settings, again.findings), search.needs);
    }
  }
  EXPECT_FALSE(plan_isolate(settings, history).next.has_value());
}

// Simulated campaigns: a workload that differs in 10 % of runs for no
// factor's sake, and one factor of four values of which one matters.
struct Rates {
  double false_blame_campaigns = 0;  // campaigns blaming an innocent factor
  double false_blame_factors = 0;    // innocent factors blamed, per factor tried
  double missed = 0;                 // campaigns not blaming the guilty factor
  double mean_runs = 0;
};

Rates simulate(double background, bool guilty, int campaigns, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  IsolateSettings settings = twelve_factors();
  settings.factors[10].values = 4;  // numa: the guilty one when there is one
  Rates rates;
  int innocent_tried = 0;
  int innocent_blamed = 0;
  int campaigns_blaming = 0;
  int campaigns_missing = 0;
  int usable = 0;
  long total_runs = 0;
  for (int c = 0; c < campaigns; ++c) {
    int bad_value = 1 + static_cast<int>(random() % 4);
    int noise = 0;
    IsolateFindings found = drive(settings, [&](const IsolateStep& step) {
      if (uniform(random) < background) {
        return IsolateOutcome{{}, false, "noise-" + std::to_string(++noise)};
      }
      if (guilty && step.phase == IsolatePhase::kFactor && step.factor == "numa" &&
          step.value == bad_value) {
        return IsolateOutcome{{}, false, "numa-value"};
      }
      return same();
    });
    total_runs += found.runs;
    if (found.verdict == IsolateVerdict::kNotExplained) {
      continue;  // the pool differed: nothing is blamed, nothing could be
    }
    ++usable;
    bool blamed_innocent = false;
    for (const FactorFinding& factor : found.factors) {
      if (guilty && factor.name == "numa") {
        campaigns_missing += factor.status == FactorFinding::Status::kChanges ? 0 : 1;
        continue;
      }
      if (factor.status != FactorFinding::Status::kUntried) {
        ++innocent_tried;
      }
      if (factor.status == FactorFinding::Status::kChanges) {
        ++innocent_blamed;
        blamed_innocent = true;
      }
    }
    campaigns_blaming += blamed_innocent ? 1 : 0;
  }
  rates.false_blame_campaigns = static_cast<double>(campaigns_blaming) / campaigns;
  rates.false_blame_factors = static_cast<double>(innocent_blamed) / std::max(1, innocent_tried);
  rates.missed = static_cast<double>(campaigns_missing) / std::max(1, usable);
  rates.mean_runs = static_cast<double>(total_runs) / campaigns;
  return rates;
}

TEST(IsolateSimulation, BackgroundDivergenceRarelyBlamesAnInnocentFactor) {
  Rates rates = simulate(0.10, false, 4000, 1);
  std::printf(
      "10 %% background, no factor matters: innocent factor blamed in %.2f %% of "
      "campaigns, %.2f %% per factor tried; %.1f runs per campaign\n",
      100 * rates.false_blame_campaigns, 100 * rates.false_blame_factors, rates.mean_runs);
  // Per factor: about 4 scanned runs x 0.1 x 0.1^2 confirmations = 0.4 %.
  EXPECT_LT(rates.false_blame_factors, 0.008);
  EXPECT_LT(rates.false_blame_campaigns, 0.04);
}

TEST(IsolateSimulation, TheNaiveRuleBlamesOftenForComparison) {
  // One differing perturbed run blames its factor: three runs per factor.
  std::mt19937_64 random(2);
  std::uniform_real_distribution<double> uniform(0, 1);
  int blaming = 0;
  const int campaigns = 4000;
  for (int c = 0; c < campaigns; ++c) {
    bool any = false;
    for (int factor = 0; factor < 12 && !any; ++factor) {
      for (int run = 0; run < 3; ++run) {
        any = any || uniform(random) < 0.10;
      }
    }
    blaming += any ? 1 : 0;
  }
  double naive = static_cast<double>(blaming) / campaigns;
  Rates rates = simulate(0.10, false, 2000, 3);
  std::printf("naive rule: %.1f %% of campaigns blame an innocent factor; the protocol: %.2f %%\n",
              100 * naive, 100 * rates.false_blame_campaigns);
  EXPECT_GT(naive, 0.9);
  EXPECT_LT(rates.false_blame_campaigns * 10, naive);
}

TEST(IsolateSimulation, AFactorThatMattersForOneValueInFourIsFound) {
  Rates clean = simulate(0.0, true, 500, 4);
  EXPECT_EQ(clean.missed, 0.0);
  EXPECT_EQ(clean.false_blame_campaigns, 0.0);
  Rates noisy = simulate(0.10, true, 4000, 5);
  std::printf(
      "one value in four matters, 10 %% background: missed in %.2f %% of campaigns whose "
      "pool agreed; innocent blamed in %.2f %%\n",
      100 * noisy.missed, 100 * noisy.false_blame_campaigns);
  // Noise in a replay of the guilty value still differs from the pool, so
  // it cannot hide the factor; it can only make it look timing-dependent.
  EXPECT_LT(noisy.missed, 0.05);
}

TEST(IsolateSimulation, BackgroundDivergenceRarelyGivesASetOfFactors) {
  // The free runs differ through background alone, so no set of factors
  // is a true finding. The search begins only where the pool already
  // showed every factor pinned enough: when the first free run is the odd
  // one, every later one differs from it, and five agreeing runs then
  // pass as enough, for the pool and for each set alike.
  std::mt19937_64 random(6);
  std::uniform_real_distribution<double> uniform(0, 1);
  const IsolateSettings settings = varying_when_free();
  const int campaigns = 2000;
  int searched = 0;
  int found_a_set = 0;
  for (int c = 0; c < campaigns; ++c) {
    int noise = 0;
    IsolateFindings found = drive(settings, [&](const IsolateStep&) {
      return uniform(random) < 0.10 ? IsolateOutcome{{}, false, "noise-" + std::to_string(++noise)}
                                    : same();
    });
    searched += found.search ? 1 : 0;
    found_a_set += found.search && !found.search->found.empty() ? 1 : 0;
  }
  std::printf("10 %% background: a search began in %.2f %% of campaigns, named a set in %.2f %%\n",
              100.0 * searched / campaigns, 100.0 * found_a_set / campaigns);
  EXPECT_LT(static_cast<double>(found_a_set) / campaigns, 0.04);
}

}  // namespace
}  // namespace memdet::protocol
