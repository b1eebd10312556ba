// `memdet isolate`: which factor changes a command's result. The runs are
// made by a check Campaign, one at a time, each chosen by plan_isolate from
// the outcomes so far.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "factors/profile.h"
#include "protocol/check.h"
#include "protocol/isolate_plan.h"

namespace memdet::protocol {

struct IsolateOptions {
  // The command, artifacts, comparison and launch settings; its profile is
  // not used: each phase has its own.
  CheckOptions check;
  IsolateSettings settings;  // its factor list is filled from the host
  // The factors to try (--factors); empty: every one `--pin all` applies.
  std::vector<std::string> factor_names;
  uint64_t seed = 0;
  bool system = false;
  // When the verdict names a cure, run the command with it applied.
  bool try_fix = false;
  // Go on with the unfinished campaign in check.out_dir: its stored runs
  // are taken as made, and the campaign carries on after the last.
  bool resume = false;
  // Kept in the campaign's store (meta "options") as it begins: what the
  // caller needs to resume it with the same options.
  std::string stored_options;
  // Called once every profile's first run is planned, before any runs.
  void (*on_begin)(const struct IsolateReport&) = nullptr;
  // Called after each run.
  void (*on_run_done)(const struct IsolateProgress&) = nullptr;
};

// Where a campaign stands after a run, for a progress display.
struct IsolateProgress {
  const RunRecord& run;
  const IsolateStep& step;
  const IsolateFindings& findings;  // with this run counted
  // The run's outcome as the plan counts it (within the tolerance of an
  // earlier outcome, that outcome's); empty when it failed.
  const std::string& outcome;
  int made = 0;   // runs so far, this one included
  int ahead = 0;  // runs_ahead(): the runs still to come if nothing differs
  double elapsed_seconds = 0;
};

// A factor left out of the campaign, and why.
struct SkippedFactor {
  std::string name;
  std::string reason;
};

// What a cure did: whether the runs then agreed, and at what price.
struct CureFinding {
  std::string cure;       // kTorchCure
  std::string not_tried;  // why it was not tried; empty when it was
  int needed = 0;         // agreeing runs that would show it works
  int runs = 0;
  int applied = 0;      // runs in which the hook ran
  bool agreed = false;  // every run completed, with one outcome
  std::string refused;  // PyTorch's complaint about an operation, if any
  // Median wall time of the cured runs over that of the free runs.
  double price = 0;
};

// How one factor's perturbed runs counted against the pool's, by an exact
// rank test per counter; the counter with the smallest p stands for it.
struct CounterChange {
  std::string factor;
  std::string counter;
  std::string unit;
  int perturbed_runs = 0;  // completed runs with counters, on each side
  int pool_runs = 0;
  bool judged = false;  // at least measure::kRankTestMinimum on each side
  double p = 1;         // two-sided
  int counters_tested = 0;
  // p below 0.05 divided by the counters tested (Bonferroni), so testing
  // every counter does not flag one by chance.
  bool flagged = false;
  double pool_median = 0;
  double perturbed_median = 0;
  bool results_same = false;  // every perturbed run matched the pool's outcome
};

// Where a read or a listing came from, as the preload library saw its
// caller: the native code, and the program's own Python line when the
// caller was Python code.
struct CallSite {
  std::string caller;    // "module+0xoffset[:symbol][|py:file:line;...]"
  std::string location;  // "train.py:12": the innermost frame outside the
                         // interpreter's own library; empty when none
  std::string line;      // that line's text, when it could be read
};

// The read of OS entropy or the wall clock whose move alone changes the
// result, found by moving windows of the launched process's reads (kRead
// runs) with every other factor pinned.
struct SeedRead {
  std::string factor;  // entropy or clock
  int reads = 0;       // reads of the pool's reference run, in the launched process
  int runs = 0;        // runs the search made
  bool found = false;
  int ordinal = 0;               // the read, from 1
  std::string source;            // getrandom, urandom, random_device...; the clock function
  std::vector<std::string> row;  // the library's line for it, after the key
  CallSite site;
  std::string note;  // why none was named
};

// A listing of two entries or more in the pool's reference run.
struct Listing {
  std::string api;  // readdir, scandir, glob, fts
  int entries = 0;
  std::string directory;
  CallSite site;
};

struct IsolateReport {
  CheckReport campaign;  // every run, its outcome and each outcome against the pool's
  IsolateSettings settings;
  IsolateFindings findings;
  std::vector<IsolateStep> steps;  // per run, in run order
  std::vector<SkippedFactor> skipped;
  factors::Profile pinned;  // the pool's profile
  int pool_run = 0;         // the pool's first run: the reference
  std::string input_error;
  int interrupted_by = 0;
  int resumed_after = 0;  // the stored runs a resumed campaign went on from
  std::optional<CureFinding> cure;
  // Median wall time of the runs with the explaining factors pinned, the
  // rest free, over that of the free runs; 0 when there were none.
  double enough_price = 0;
  // The same for the set a search over sets of factors found enough.
  double search_price = 0;
  std::vector<CounterChange> counter_changes;  // one per factor tried
  // One per seed source found to change the result.
  std::vector<SeedRead> seed_reads;
  // When the directory order changes the result: the search for the
  // listing that matters, and the listing it found (or, when none was
  // found alone, every listing it could be).
  std::optional<SeedRead> listing_search;
  std::vector<Listing> listings;

  // The runs of one factor's batch, in order.
  std::vector<const RunRecord*> factor_runs(const std::string& name) const;
  // The values a factor's perturbed runs took, each once, in order.
  std::vector<std::string> values_tried(const std::string& name) const;
  // Why each of a factor's perturbed runs did not test it, when it did not:
  // the program overrode the value, or the run measured the same as the
  // pool's. One entry per such run.
  std::vector<std::string> unproven(const std::string& name) const;
  // Why the pool's runs did not hold `name` at its pinned value (refused,
  // or never reported on), or empty when every one of them held it.
  std::string not_held(const std::string& name) const;
  // OS entropy and the wall clock were pinned and held in every pool run:
  // a pool that still differs cannot be following a missed seed.
  bool seed_sources_held() const;
  int exit_status() const;
};

// The order factors are tried in: cheap, likely ones first (a missed seed
// before any memory factor), and uninit before every layout factor that
// merely exposes an uninitialised read.
const std::vector<std::string>& isolate_factor_order();

// Reads the call site out of a caller as the preload library writes it;
// relative Python files are read from `cwd`.
CallSite call_site(const std::string& caller, const std::string& cwd);

Result<IsolateReport> run_isolate(const IsolateOptions& options);

}  // namespace memdet::protocol
