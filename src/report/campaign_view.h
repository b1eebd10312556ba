// What `memdet report` shows of a finished campaign, read from its
// check.json or isolate.json: the one model the terminal and HTML
// renderers draw from. Everything here comes from the stored JSON, except
// the loss curves, which are read from the runs' text artifacts where
// they still exist.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace memdet::report {

// One factor's line in isolate's table.
struct FactorRow {
  std::string name;
  std::vector<std::string> values_tried;
  int runs = 0;
  int differing = 0;
  std::string changed;  // "no", "YES (value)", "undecided", ...
  bool changes = false;
  std::string bound;  // "<53 %", or empty when the factor was not cleared
  // The largest distance of its differing runs from the pool's outcome.
  std::optional<uint64_t> max_ulp;
  std::optional<double> max_rel;
  std::string spread;   // "bytes", "failed", or empty when numbers were compared
  std::string counter;  // "moved", "same", or empty when not judged
};

// A rank test of one factor's counters against the pool's.
struct CounterChange {
  std::string factor;
  bool judged = false;
  bool flagged = false;
  std::string counter;
  std::string unit;
  double p = 1;
  double pool_median = 0;
  double perturbed_median = 0;
  int perturbed_runs = 0;
  int pool_runs = 0;
  bool results_same = false;
};

// The median of a few counters over one group of runs (the free runs, the
// pool, or one factor's perturbed runs).
struct CounterGroup {
  std::string name;
  int runs = 0;
  std::vector<std::optional<double>> medians;  // one per CampaignView::counter_names
};

// check's summary of one counter over its runs.
struct CounterSummary {
  std::string name;
  std::string unit;
  std::optional<double> cold;
  std::optional<double> mean;
  std::optional<double> cv;
  int count = 0;
  bool flagged = false;
};

struct RunRow {
  std::string label;
  std::string phase;  // isolate: "free", "pinned", a factor's name; empty in check
  std::string status;
  double wall_seconds = 0;
  double cpu_seconds = 0;
  double peak_mib = 0;
  int outcome = -1;  // -1: no outcome (the run failed)
};

// How one outcome's artifact differs from the reference outcome's.
struct ArtifactDifference {
  std::string key;
  std::vector<std::string> lines;  // the first says what differs, the rest add detail
};

struct OutcomeRow {
  int index = 0;
  bool reference = false;
  std::vector<std::string> runs;
  std::vector<ArtifactDifference> differences;  // empty for the reference
  std::vector<std::string> identical;           // keys of artifacts equal to the reference's
};

// One run's values of a text artifact, step by step.
struct LossCurve {
  std::string run;
  int outcome = -1;
  std::vector<double> steps;
  std::vector<double> values;
};

struct LossChart {
  std::string artifact;  // the artifact's key: "out/{run}/loss.txt"
  std::string step_regex;
  std::vector<LossCurve> curves;
  // Where the outcomes' numbers first part: a step when the campaign had a
  // step regex, else a line number.
  std::optional<double> divergent_step;
  std::string divergent_label;
  // Files that are gone or no longer what the run wrote, and anything else
  // that kept the chart from being drawn as asked.
  std::vector<std::string> notes;
};

struct CampaignView {
  enum class Kind { kCheck, kIsolate } kind = Kind::kCheck;
  std::string source;  // the JSON file read
  std::string schema;
  std::string campaign_dir;
  std::string command;
  double started_unix = 0;
  std::string host;

  std::string verdict;               // "differs", "missed-seed", ...
  std::string verdict_headline;      // "Results differ", "Missed seed", ...
  bool verdict_bad = false;          // the results differ or could not be judged
  std::string verdict_text;          // the paragraph, as the terminal printed it
  std::vector<std::string> summary;  // free runs and pool (isolate), outcomes

  std::vector<FactorRow> factors;  // isolate only
  std::vector<std::string> factor_notes;
  std::vector<CounterChange> counter_changes;
  std::vector<std::string> counter_names;
  std::vector<CounterGroup> counter_groups;  // isolate: per factor; check: empty
  std::vector<CounterSummary> counters;      // check only

  std::vector<RunRow> runs;
  std::vector<OutcomeRow> outcomes;
  int reference = -1;
  LossChart loss;
};

// The number a line of a text log holds for the curve: the one after a
// token naming the loss ("loss", "val_loss="), else the first with a
// fraction or an exponent, else the first; never the step's own number,
// which `step` views inside `line` (empty without a step regex).
std::optional<double> logged_value(std::string_view line, std::string_view step);

// "A", "B", ..., "Z", "AA": outcome letters as check's summary prints them.
std::string outcome_letter(int outcome);

// Reads DIR/isolate.json, or else DIR/check.json, and checks its schema.
// The error is one line naming the file and the problem.
struct CampaignFile {
  std::string path;
  nlohmann::json document;
};
Result<CampaignFile> read_campaign(const std::string& dir);

// The view of a parsed campaign document. `source` names it in the output.
// Fields of the wrong type read as absent, so a damaged file shows what it
// holds instead of stopping the report.
CampaignView campaign_view(const nlohmann::json& document, const std::string& source);

}  // namespace memdet::report
