// The decisions of `memdet isolate`, as a pure function of the outcomes so
// far: which run to make next, and what the runs made so far show. Nothing
// here launches anything, so a resumed campaign takes the same next step as
// the one that stopped, and a simulation can drive the protocol with
// synthetic outcomes.
//
// The protocol: free runs as the user would make them; a pool of runs with
// every factor pinned, the one reference for every factor; then one factor
// at a time perturbed, the others pinned. A factor is blamed only when the
// perturbed run that first differed from the pool and its confirmations all
// differ, and so many of them that "the factor does nothing, these runs are
// just the odd ones out" has a chance of at most `blame_level`. When the
// free runs differ, a batch with the blamed factors pinned and the rest free
// shows whether pinning them is enough; when none is blamed, a search over
// sets of factors finds the fewest whose pinning is.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace memdet::protocol {

enum class IsolatePhase {
  kFree,    // every factor free
  kPinned,  // every factor pinned: the reference pool
  kFactor,  // one factor perturbed, the others pinned
  kEnough,  // the blamed factors pinned, the others free
  kCure,    // every factor free, a cure applied (--try-fix); not planned here
  // Every factor pinned but a window of OS-entropy or wall-clock reads
  // moved, to find the read that matters; not planned here.
  kRead,
};
const char* isolate_phase_name(IsolatePhase phase);

struct FactorPlan {
  std::string name;
  // How many distinct perturbed values the factor has; 0: more than any
  // campaign tries (a fresh layout, a seeded pad).
  int values = 0;
  // A perturbed value can be given again exactly; ASLR's layout cannot.
  bool replayable = true;
  // Left free, it takes a value of its own in each run (ASLR, thread
  // placement); a free heap offset or allocator stays the same, so its
  // value cannot explain free runs that differ.
  bool varies_when_free = false;
  // What an unseeded generator reads (OS entropy, the wall clock): when it
  // explains the divergence, a seed was missed.
  bool seed_source = false;
};

struct IsolateSettings {
  int free_runs = 5;
  int pool_runs = 8;
  // Perturbed values tried per factor when none differs (fewer when the
  // factor has fewer values: then all are tried).
  int factor_runs = 4;
  double blame_level = 0.01;
  int budget = 0;                   // most runs in all; 0: no limit
  std::vector<FactorPlan> factors;  // in the order they are tried
};

struct IsolateStep {
  IsolatePhase phase = IsolatePhase::kFree;
  std::string factor;  // kFactor
  // kFactor: the k-th perturbed value of the factor (from 1). A
  // confirmation of a replayable factor repeats the value that differed.
  int value = 0;
  bool confirmation = false;
  // kEnough: the factors held at their pinned values, the others free;
  // empty: every factor, as in the pool.
  std::vector<std::string> pinned;
};

struct IsolateOutcome {
  IsolateStep step;
  bool failed = false;
  std::string signature;  // equal signatures: equal outcomes; empty when failed
  // kFactor: the perturbed factor had something to act on (the program
  // read OS entropy, the clock, a listing of two entries); false when its
  // record shows it had none, so no value of it can matter.
  bool used = true;
};

struct FactorFinding {
  std::string name;
  enum class Status {
    kUntried,      // the campaign stopped before it
    kUndecided,    // the budget ran out while trying it
    kNoEffect,     // every perturbed run matched the pool
    kAllValues,    // every value it has was tried, and each matched
    kUnconfirmed,  // a perturbed run differed, its confirmations did not
    kChanges,      // blamed: the differing run and its confirmations all differed
    kFailed,       // the workload failed under a perturbed value
    kUnused,       // the program never used what it controls, and matched the pool
  } status = Status::kUntried;
  // How a blamed factor changes the result.
  enum class Cause {
    kNone,
    kValue,   // replays of the value that differed gave the same result again
    kTiming,  // they differed, but not the same way
    kLayout,  // not replayable (ASLR): layout-dependent
  } cause = Cause::kNone;
  int runs = 0;        // perturbed runs made
  int differing = 0;   // of them, how many differed from the pool
  int matching = 0;    // of them, how many matched it
  double bound = 1.0;  // kNoEffect, kAllValues: its effect rate is below this (95 %)
  int value = 0;       // kChanges, kFailed: the value (k) that first differed or failed
  int needs = 0;       // kUndecided: further runs it needs at least
};

struct EnoughFinding {
  std::vector<std::string> pinned;  // empty: every factor together
  int needed = 0;                   // agreeing runs that would show it
  int runs = 0;                     // made
  bool shown = false;               // `needed` runs agreed
  bool refuted = false;             // two of them differed
};

// One set of factors pinned and the rest free, tested by a batch of runs:
// enough when `needed` of them agree, not enough as soon as two differ.
struct PinnedSetTest {
  std::vector<std::string> pinned;
  int runs = 0;
  bool shown = false;
  bool refuted = false;
};

// When the free runs differ, every factor pinned makes them agree, and no
// factor's own perturbation explains it (two that matter only together,
// one that matters only while free), the smallest set whose pinning is
// enough is searched by delta debugging (Zeller's ddmin) over the factors
// that take a value of their own when free, each candidate set tested by a
// pinned batch.
struct SetSearchFinding {
  std::vector<std::string> candidates;
  int needed = 0;                    // agreeing runs a set needs, as for EnoughFinding
  std::vector<PinnedSetTest> tests;  // in the order the search first needed each
  bool complete = false;
  // Complete: the set shown enough of which no part tried was; empty when
  // the candidates pinned without the other factors were not enough.
  std::vector<std::string> found;
  // Not complete: the smallest set shown enough so far (at first every
  // candidate, known only through the pool), the set under test, and the
  // agreeing runs it still needs.
  std::vector<std::string> narrowed;
  std::vector<std::string> testing;
  int needs = 0;
};

enum class IsolateVerdict {
  kWorkloadFailed,
  kNotExplained,   // the pinned pool itself differs
  kUninitialised,  // the result moves with the uninit fill
  kMissedSeed,     // the result follows OS entropy or the wall clock
  // One or more factors change it through layout or timing, or by a value
  // that varies between free runs; or a set of them, found together by the
  // search, whose pinning is enough. A factor whose value alone decides the
  // result, and that holds one value when left free (a heap offset, the
  // allocator), is a value finding attached to whichever verdict stands:
  // it cannot be why runs made as the user makes them differ.
  kLayoutDependent,
  kRareDivergence,  // divergence no factor explains, the free runs agreed
  kInconclusive,
  // The runs as made agree, but another directory order gives another
  // result, as another machine or file system would.
  kDirectoryOrder,
  kReproducible,
};
const char* isolate_verdict_name(IsolateVerdict verdict);

// The finding names a cause of the verdict, not only a value it depends on.
bool explains_divergence(const FactorFinding& finding, const FactorPlan& plan);

struct IsolateFindings {
  IsolateVerdict verdict = IsolateVerdict::kInconclusive;
  int runs = 0;
  int free_runs = 0;
  int free_failed = 0;
  int free_differing = 0;  // free runs after the first that differ from it
  int pool_runs = 0;
  int pool_failed = 0;
  int pool_outcomes = 0;  // distinct outcomes among the pool's completed runs
  std::string reference;  // the pool's outcome
  int confirmations = 0;  // confirmations a factor's first differing run needs
  std::vector<FactorFinding> factors;
  std::optional<EnoughFinding> enough;
  std::optional<SetSearchFinding> search;
  bool budget_exhausted = false;
  bool any_difference = false;  // some run differed from another of its kind

  const FactorFinding* find(const std::string& name) const;
  int exit_status() const;
};

struct IsolatePlan {
  std::optional<IsolateStep> next;  // none: the campaign is over
  IsolateFindings findings;
};

IsolatePlan plan_isolate(const IsolateSettings& settings,
                         const std::vector<IsolateOutcome>& history);

// The runs still ahead if nothing differs from here on: the free runs and
// the pool's not yet made, each undecided factor's untried values, the
// batch that shows pinning enough, and the rest of the set under test in a
// search, within the budget. A run that differs adds its confirmations (or,
// in a search, other sets to test); the campaign stops early when the pool
// differs.
int runs_ahead(const IsolateSettings& settings, const IsolateFindings& findings);

// The one-sided lower 95 % confidence bound (Clopper-Pearson) of a rate
// seen `hits` times in `trials`; 0 when hits is 0.
double lower_rate_bound(int hits, int trials);
// With K runs matching a fixed reference, the largest per-run rate of
// difference not rejected at 95 %: 1 - 0.05^(1/K).
double matching_bound(int matching);
// Agreeing runs that show a divergence of rate `rate` is gone, at 95 %:
// ceil(ln 0.05 / ln(1 - rate)); 0 for a rate of 0.
int agreeing_runs_needed(double rate);
// The fewest differing perturbed runs k with 1 / C(pool + k, k) <= level.
int differing_runs_needed(int pool, double level);

}  // namespace memdet::protocol
