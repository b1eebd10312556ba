// `memdet check`: N runs of one command under one set of controls, the
// outcomes grouped by artifact digest, and a verdict with its evidence.
#pragma once

#include <csignal>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <cstdint>
#include "compare/npy.h"
#include "compare/tensor.h"
#include "compare/text.h"
#include "compare/trace.h"
#include "factors/profile.h"
#include "host/host_info.h"
#include "host/loaded_libraries.h"
#include "host/program.h"
#include "launch/launcher.h"
#include "measure/variation.h"

namespace memdet::protocol {

struct CheckOptions {
  int runs = 5;
  std::vector<std::string> command;  // argv; may hold {run} and {run_dir}
  std::vector<std::string> artifact_patterns;
  bool include_stdout = true;
  // Regexes blanked out of stdout and text artifacts before digests and
  // comparisons (step times, dates, PIDs).
  std::vector<std::string> masks;
  // A regex whose capture group is the step number in text artifacts.
  std::string step_regex;
  // How to read files that carry no dtype of their own: raw arrays, and the
  // numbers in text ("f32", "f64"; raw arrays also "f16", "bf16").
  std::string dtype;
  // When two tensor artifacts (.npy, .npz, .safetensors) whose bits differ
  // still count as the same result; the default asks for equal bits.
  // Text, traces and other files are compared as written.
  compare::Tolerance tolerance;
  // Which runs keep a copy of their artifacts in their record directory.
  enum class Keep { kAll, kDiverged, kNone } keep = Keep::kDiverged;
  std::string out_dir;  // campaign directory; empty: a new one under .memdet/
  launch::Controls controls;
  // What each factor does, and the host it was resolved against. A
  // campaign with a perturbed factor runs the reference first (run 1, every
  // factor at its pinned value), then one perturbed value per further run.
  factors::Profile profile;
  factors::Host host;
  std::optional<double> timeout_seconds;
  // Loads memdet's LD_AUDIT library into each run to record the shared
  // objects it loaded.
  bool record_libraries = true;
  bool show_output = false;
  bool echo_to_stderr = false;  // with show_output: the runs' stdout goes to stderr
  bool stop_at_first_difference = false;
  // Perf counters on every run, and /proc/vmstat around it.
  bool measure_counters = true;
  // Every run leaves a memory-layout fingerprint in its record directory
  // (the preload library is loaded into every run for it), and each outcome
  // is compared with the reference's: where the allocation sequences first
  // diverge, whether the virtual layouts matched.
  bool fingerprint = false;
  uint64_t fingerprint_threshold = 64 * 1024;
  // Which counters' variation across the runs is flagged.
  measure::CounterRule counter_rule;
  launch::StdinMode stdin_mode = launch::StdinMode::kNull;
  // Set (to the signal number) by a signal handler that wants the campaign
  // to stop after the current run.
  const volatile std::sig_atomic_t* interrupt = nullptr;
  // Called once the campaign directory exists, and after each run, for
  // progress lines.
  void (*on_start)(const struct CheckReport&) = nullptr;
  void (*on_run_done)(const struct RunRecord&, int total) = nullptr;
};

struct ArtifactRecord {
  std::string key;      // the same in every run: "stdout", "out/{run}/w.npy"
  std::string written;  // where the run wrote it
  std::string kept;     // where the record holds it now; empty once dropped
  std::string digest;   // XXH3-128, hex; of the masked text for text files
  bool text = false;    // read as text: masks apply and numbers are compared
  uint64_t bytes = 0;
};

struct RunRecord {
  int index = 0;
  std::string label;
  std::string dir;
  std::vector<std::string> argv;
  std::string cwd;  // where the command ran
  launch::LaunchResult launch;
  std::vector<ArtifactRecord> artifacts;
  std::vector<std::string> missing;  // patterns that matched nothing
  std::vector<std::string> moved_before;
  host::ProgramRecord program;
  std::vector<std::string> numeric_env;
  host::LoadedLibraries loaded;
  int perturbed = 0;  // 0: a reference run; k: the k-th perturbed run
  // Which part of a campaign made the run ("free", "pinned", a factor's
  // batch); empty for a plain check.
  std::string phase;
  std::string factor;  // the factor perturbed, if any
  factors::RunFactors factors;
  factors::PreloadReport preload;
  // The reports of the processes the launched one started.
  std::vector<factors::PreloadReport> descendant_preloads;
  // Factors whose measured quantity did not move as the profile says
  // relative to the reference run.
  std::vector<std::string> factor_problems;
  int outcome = -1;  // index into CheckReport::outcomes; -1 when the run failed
  // The bytes of argv and environment the run started with, its stack
  // padding aside: equal within a footprint group.
  size_t footprint = 0;

  bool completed() const { return launch.succeeded() && missing.empty(); }
};

struct ArtifactComparison {
  std::string key;
  enum class Kind { kSame, kDigestDiffers, kNumeric, kText, kTrace, kMissing } kind = Kind::kSame;
  std::optional<compare::NumericDiff> numeric;
  std::optional<compare::TextDiff> text;
  std::optional<compare::TraceDiff> trace;  // two traces of python/memdet_trace.py
  std::string reference_path;
  std::string other_path;
  std::string note;
  // The artifact is a tensor file compared under the campaign's tolerance,
  // and whether every element was within it.
  bool tolerance_checked = false;
  bool within_tolerance = false;
};

struct OutcomeGroup {
  std::string signature;                         // digest over every (key, digest) pair
  std::vector<int> runs;                         // run indices, ascending
  std::vector<ArtifactComparison> vs_reference;  // empty for the reference
  // The fingerprint of its first run against the reference's first run's,
  // in lines for the terminal and as JSON; empty without --fingerprint.
  std::vector<std::string> fingerprint_lines;
  std::string fingerprint_json;
  // Every artifact is the reference's, or within the tolerance of it.
  bool within_tolerance = false;
};

enum class Verdict {
  kNoDifferenceSeen,
  // The outcomes' bits differ, but each is within the tolerance of the
  // reference.
  kWithinTolerance,
  kDiffers,
  kTooFewRuns,
};

struct CheckReport {
  std::string campaign_dir;
  host::HostInfo host;
  std::string audit_library;  // empty: loaded libraries are not recorded
  std::string executable;
  std::vector<std::string> command;
  CheckOptions options;
  std::vector<RunRecord> runs;
  std::vector<OutcomeGroup> outcomes;
  int reference = -1;     // index into outcomes
  int reference_run = 0;  // the run named as the reference; 0: none was
  Verdict verdict = Verdict::kTooFewRuns;
  int completed_runs = 0;
  int failed_runs = 0;
  int interrupted_by = 0;
  bool stopped_early = false;
  std::string input_error;  // a malformed artifact: the one-line message
  double started_unix = 0;
  // Over the completed runs: each perf counter, rusage field and the wall
  // time, the first run apart.
  std::vector<measure::CounterSummary> counters;

  // A counter was flagged, yet every completed run gave the same outcome.
  bool timing_varied_results_did_not() const;

  // Chance bound when no difference was seen: a further run differs with
  // probability below this, at 95 % confidence.
  double difference_bound() const;
  int exit_status() const;
};

// What one run measured, as figures to compare across runs: the counters
// that counted, the workload's rusage and its wall time.
measure::RunFigures run_figures(const RunRecord& run);

// Whether a tolerance other than bitwise equality was asked for.
bool has_tolerance(const compare::Tolerance& tolerance);

// Whether `other`'s artifacts are those of `reference`, each bitwise or
// within options.tolerance; both runs must hold copies of what they wrote
// (the first run of each outcome does). A file that cannot be read sets
// `input_error` and counts as different.
bool same_within_tolerance(const RunRecord& reference, const RunRecord& other,
                           const CheckOptions& options, std::string& input_error);

// 1 - 0.05^(1/(n-1)): with n matching runs, the largest per-run difference
// probability not rejected at 95 % confidence.
double no_difference_bound(int matching_runs);
// Runs needed before the bound falls to `probability`.
int runs_for_bound(double probability);

// Runs the campaign. Fails (an input error, exit 2) only when it cannot
// start: the command cannot be resolved, the campaign directory cannot be
// made. Everything after that is in the report.
Result<CheckReport> run_check(const CheckOptions& options);

// One run as a campaign asks for it: under which profile, and for a
// perturbed factor which of its values (the k-th, from 1; 0 takes every
// factor's pinned value). A run repeated with the same profile and k gets
// the same values.
struct RunRequest {
  const factors::Profile* profile = nullptr;
  int perturbed = 0;
  std::string phase;
  std::string factor;
  // Runs of one group must start from stacks of equal size: a campaign
  // whose profiles load different helpers puts each kind in its own group.
  std::string footprint_group;
  // Variables set in the run's environment, replacing the user's, before
  // the factors add theirs.
  std::map<std::string, std::string> env;
  // Fields added to the preload library's configuration after the
  // factors' own (a window of reads to move).
  std::map<std::string, std::string> preload;
  // The run whose factor records this run's are judged against: 0, the
  // campaign's first run; below 0, none.
  int reference_run = 0;
};

// The runs of one campaign, made one at a time, for protocols that choose
// each next run from the outcomes so far. `options.profile` is only the
// default; each request carries its own.
class Campaign {
 public:
  // Checks the options and makes the campaign directory. `max_runs` sets
  // the width of the run labels, which must not change within a campaign;
  // `report_name`: the file that marks a finished campaign there.
  static Result<Campaign> open(const CheckOptions& options, int max_runs,
                               const std::string& report_name = "check.json");

  // Opens the unfinished campaign in options.out_dir again, to go on from
  // `stored`: the runs it made, in order, each with its footprint. The
  // protocol asks for those runs again as it did the first time, and run()
  // gives back each stored record in place of running it, so every
  // decision is taken again from the same outcomes. Fails with one line
  // when the stored runs cannot be this campaign's: a run numbered out of
  // order, another working directory, or a program or script whose digest
  // differs from the one the runs recorded. A run directory beyond the
  // stored runs (the run that was in progress) is removed, to be made
  // again under its number. `created`: the files the command names that
  // did not exist when the campaign began.
  static Result<Campaign> resume(const CheckOptions& options, int max_runs,
                                 std::vector<RunRecord> stored, std::set<std::string> created);
  // The files the command names that did not exist when the campaign
  // began; a resumed campaign needs them.
  const std::set<std::string>& created_files() const { return created_; }
  // Runs given back from the stored ones so far.
  int replayed() const { return replayed_; }

  // Carries out a run's factor plan on paper, so a value the launch cannot
  // take (a stack past ARG_MAX) is found before anything runs.
  // `index`: the number the run will have.
  Status rehearse(const RunRequest& request, int index) const;

  // Makes the next run. Fails only when memdet cannot go on (a directory
  // cannot be made); a run that failed, an input error or an interrupt is
  // in the record and in stopped().
  Result<const RunRecord*> run(const RunRequest& request);

  // What decides whether two runs had the same outcome: a digest over every
  // artifact's key and digest.
  static std::string signature(const RunRecord& run);

  // An input error or an interrupt: make no further run.
  bool stopped() const;

  // Groups the outcomes, compares each with the reference outcome (the
  // outcome of `reference_run`; 0: the most common one), drops duplicate
  // copies as --keep says, and rewrites every run's record.
  CheckReport finish(int reference_run = 0);

  const CheckReport& report() const { return report_; }
  // Removes the campaign directory again when memdet made it and no run
  // was made.
  void discard();

 private:
  Campaign() = default;
  // What open and resume share: the options checked, the executable
  // resolved, the host read.
  static Result<Campaign> prepare(const CheckOptions& options, int max_runs);
  void protect_command_files();
  Result<const RunRecord*> replay(const RunRequest& request, int index);
  Result<launch::LaunchSpec> plan(const RunRequest& request, int index, const std::string& label,
                                  const std::string& dir, factors::RunFactors& planned) const;

  CheckReport report_;
  int max_runs_ = 0;
  bool dir_existed_ = false;
  std::shared_ptr<const compare::Masks> masks_;
  // By footprint group: the bytes its first run started with, and its label.
  std::map<std::string, std::pair<size_t, std::string>> footprints_;
  std::set<std::string> signatures_;
  std::set<std::string> written_;
  std::set<std::string> protected_files_;
  std::set<std::string> created_;
  // A resumed campaign's stored runs, given back by run() in order.
  std::vector<RunRecord> stored_;
  int replayed_ = 0;
};

}  // namespace memdet::protocol
