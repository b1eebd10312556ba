#include "report/campaign_view.h"

#include <fcntl.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "compare/digest.h"
#include "compare/text.h"
#include "core/sys.h"
#include "core/text.h"
#include "report/check_json.h"
#include "report/isolate_json.h"

namespace memdet::report {
namespace {

using nlohmann::json;

// Readers that treat a field of the wrong type as absent: a campaign file
// edited by hand or cut short still shows what it holds.
const json& field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) {
    return kNull;
  }
  auto found = object.find(key);
  return found == object.end() ? kNull : *found;
}

std::string text(const json& object, const char* key) {
  const json& value = field(object, key);
  return value.is_string() ? value.get<std::string>() : std::string();
}

std::optional<double> maybe_number(const json& object, const char* key) {
  const json& value = field(object, key);
  // JSON has no infinity: memdet writes it as a string.
  if (value.is_string()) {
    const std::string& word = value.get_ref<const std::string&>();
    if (word == "inf" || word == "-inf") {
      return word == "inf" ? INFINITY : -INFINITY;
    }
  }
  if (!value.is_number()) {
    return std::nullopt;
  }
  return value.get<double>();
}

double number(const json& object, const char* key, double fallback = 0) {
  return maybe_number(object, key).value_or(fallback);
}

int integer(const json& object, const char* key, int fallback = 0) {
  const json& value = field(object, key);
  if (!value.is_number_integer() && !value.is_number_unsigned()) {
    return fallback;
  }
  const int64_t wide = value.get<int64_t>();
  return wide < -1000000000 || wide > 1000000000 ? fallback : static_cast<int>(wide);
}

std::optional<uint64_t> maybe_unsigned(const json& object, const char* key) {
  const json& value = field(object, key);
  if (value.is_number_unsigned()) {
    return value.get<uint64_t>();
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

bool flag(const json& object, const char* key) {
  const json& value = field(object, key);
  return value.is_boolean() && value.get<bool>();
}

const json& list(const json& object, const char* key) {
  static const json kEmpty = json::array();
  const json& value = field(object, key);
  return value.is_array() ? value : kEmpty;
}

std::vector<std::string> strings(const json& object, const char* key) {
  std::vector<std::string> values;
  for (const json& item : list(object, key)) {
    if (item.is_string()) {
      values.push_back(item.get<std::string>());
    }
  }
  return values;
}

// A step or line number as check.json writes it: a string for steps, a
// number for lines.
std::optional<double> step_number(const json& value) {
  if (value.is_number()) {
    return value.get<double>();
  }
  if (!value.is_string()) {
    return std::nullopt;
  }
  const std::string step = value.get<std::string>();
  char* end = nullptr;
  const double parsed = std::strtod(step.c_str(), &end);
  if (step.empty() || end != step.c_str() + step.size() || !std::isfinite(parsed)) {
    return std::nullopt;
  }
  return parsed;
}

std::string format(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

std::string count(uint64_t value) { return std::to_string(value); }

std::string headline(const std::string& verdict) {
  static const std::map<std::string, std::string> kHeadlines = {
      {"differs", "Results differ"},
      {"no_difference_seen", "No difference seen"},
      {"equal_within_tolerance", "Equal within tolerance"},
      {"too_few_runs", "Too few runs to compare"},
      {"workload-failed", "The workload failed"},
      {"not-explained", "Not explained by the factors memdet pins"},
      {"reads-uninitialised-memory", "Reads uninitialised memory"},
      {"missed-seed", "Missed seed"},
      {"depends-on-directory-order", "Depends on directory order"},
      {"layout-or-timing-dependent", "Layout or timing dependent"},
      {"rare-divergence", "Rare divergence"},
      {"inconclusive", "Inconclusive"},
      {"reproducible", "Reproducible as run"},
  };
  auto found = kHeadlines.find(verdict);
  return found != kHeadlines.end() ? found->second
         : verdict.empty()         ? std::string("No verdict recorded")
                                   : verdict;
}

std::string run_status(const json& run) {
  const json& launch = field(run, "launch");
  const std::string outcome = text(launch, "outcome");
  std::string status;
  if (outcome == "exited") {
    status = "exit " + std::to_string(integer(launch, "exit_code"));
  } else if (outcome == "killed by signal" || outcome == "stopped") {
    status = outcome + " " + std::to_string(integer(launch, "signal"));
  } else if (!text(launch, "message").empty()) {
    status = text(launch, "message");
  } else {
    status = outcome.empty() ? "unknown" : outcome;
  }
  std::vector<std::string> missing = strings(run, "missing_artifacts");
  if (outcome == "exited" && !missing.empty()) {
    status += ", missing " + missing.front();
  }
  return status;
}

std::vector<std::string> text_difference(const json& diff) {
  std::vector<std::string> lines;
  std::string head = count(maybe_unsigned(diff, "differing_lines").value_or(0)) + " of " +
                     count(std::min(maybe_unsigned(diff, "lines_reference").value_or(0),
                                    maybe_unsigned(diff, "lines_other").value_or(0))) +
                     " lines differ";
  if (auto extra = maybe_unsigned(diff, "extra_lines"); extra && *extra > 0) {
    head += ", " + count(*extra) + " more lines in one";
  }
  lines.push_back(head);
  const uint64_t first = maybe_unsigned(diff, "first_line").value_or(0);
  if (first > 0) {
    std::string where = "first at line " + count(first);
    if (field(diff, "first_step").is_string()) {
      where += ", step " + text(diff, "first_step");
    }
    lines.push_back(where + ":");
    lines.push_back("  reference: " + text(diff, "first_text_reference"));
    lines.push_back("  other:     " + text(diff, "first_text_other"));
  }
  const uint64_t differing = maybe_unsigned(diff, "numbers_differing").value_or(0);
  if (differing > 0) {
    std::string numbers = count(differing) + " of " +
                          count(maybe_unsigned(diff, "numbers_compared").value_or(0)) +
                          " numbers differ; max abs " + format("%.3g", number(diff, "max_abs")) +
                          ", max rel " + format("%.3g", number(diff, "max_rel"));
    if (maybe_unsigned(diff, "ulp_numbers").value_or(0) > 0) {
      numbers += "; max " + count(maybe_unsigned(diff, "max_ulp").value_or(0)) + " ULP of " +
                 text(diff, "dtype");
    }
    lines.push_back(numbers);
  }
  const json& growth = list(diff, "growth");
  if (growth.size() > 1) {
    const json& last = growth.back();
    const uint64_t at_last = maybe_unsigned(last, "numbers_differing").value_or(0);
    lines.push_back("at the last step, " + text(last, "step") + ": " + count(at_last) +
                    (at_last == 1 ? " number differs" : " numbers differ") + ", max abs " +
                    format("%.3g", number(last, "max_abs")));
  }
  return lines;
}

std::vector<std::string> numeric_difference(const json& diff) {
  std::vector<std::string> lines;
  std::string head = "(" + text(diff, "dtype") + ") " +
                     count(maybe_unsigned(diff, "differing").value_or(0)) + " of " +
                     count(maybe_unsigned(diff, "elements").value_or(0)) +
                     " elements differ; max abs " + format("%.3g", number(diff, "max_abs")) +
                     ", max rel " + format("%.3g", number(diff, "max_rel"));
  if (flag(diff, "has_ulp")) {
    head += ", max ULP " + count(maybe_unsigned(diff, "max_ulp").value_or(0));
  }
  lines.push_back(head);
  if (maybe_unsigned(diff, "differing").value_or(0) > 0) {
    std::string index;
    for (const json& coordinate : list(diff, "first_index")) {
      index += (index.empty() ? "" : ", ") + coordinate.dump();
    }
    lines.push_back("first at [" + index + "]: " + format("%.9g", number(diff, "first_reference")) +
                    " (reference) vs " + format("%.9g", number(diff, "first_other")));
  }
  return lines;
}

ArtifactDifference artifact_difference(const json& comparison) {
  ArtifactDifference difference;
  difference.key = text(comparison, "key");
  const std::string kind = text(comparison, "kind");
  const std::string note = text(comparison, "note");
  if (kind == "text") {
    difference.lines = text_difference(field(comparison, "text"));
  } else if (kind == "numeric") {
    difference.lines = numeric_difference(field(comparison, "numeric"));
  } else if (kind == "trace") {
    const json& trace = field(comparison, "trace");
    std::string line = "traces differ";
    if (auto step = step_number(field(trace, "first_step"))) {
      line += ", first at step " + format("%.0f", *step);
    }
    difference.lines.push_back(line);
  } else if (kind == "digest_differs") {
    difference.lines.push_back("bytes differ" + (note.empty() ? "" : "; " + note));
  } else {
    difference.lines.push_back(note.empty() ? kind : note);
  }
  if (flag(comparison, "within_tolerance")) {
    difference.lines.push_back("within tolerance");
  }
  return difference;
}

std::string changed_text(const json& factor) {
  const std::string status = text(factor, "status");
  if (status == "changes-result") {
    const std::string cause = text(factor, "cause");
    return cause == "value"                   ? "YES (value)"
           : cause == "timing"                ? "YES (timing)"
           : cause == "layout-not-replayable" ? "YES (layout)"
                                              : "YES";
  }
  static const std::map<std::string, std::string> kStatus = {{"untried", "not tried"},
                                                             {"undecided", "undecided"},
                                                             {"no-effect-seen", "no"},
                                                             {"all-values-tried", "no (all)"},
                                                             {"unconfirmed", "unconfirmed"},
                                                             {"run-failed", "run failed"},
                                                             {"unused", "unused"}};
  auto found = kStatus.find(status);
  return found != kStatus.end() ? found->second : status;
}

// The largest distance from the pool's outcome of the factor's differing
// runs, from their outcomes' comparisons.
void factor_spread(const json& campaign, const std::string& factor, int reference, FactorRow& row) {
  const json& outcomes = list(campaign, "outcomes");
  std::vector<int> seen;
  bool numbers = false;
  for (const json& run : list(campaign, "runs")) {
    const int outcome = integer(run, "outcome", -1);
    if (text(run, "phase") != "factor" || text(run, "factor") != factor || outcome < 0 ||
        outcome == reference || std::find(seen.begin(), seen.end(), outcome) != seen.end() ||
        static_cast<size_t>(outcome) >= outcomes.size()) {
      continue;
    }
    seen.push_back(outcome);
    for (const json& comparison : list(outcomes[static_cast<size_t>(outcome)], "vs_reference")) {
      const bool is_text = text(comparison, "kind") == "text";
      const json& diff = field(comparison, is_text ? "text" : "numeric");
      const char* differing = is_text ? "numbers_differing" : "differing";
      if (maybe_unsigned(diff, differing).value_or(0) == 0) {
        continue;
      }
      numbers = true;
      row.max_rel = std::max(row.max_rel.value_or(0), number(diff, "max_rel"));
      if (is_text ? maybe_unsigned(diff, "ulp_numbers").value_or(0) > 0 : flag(diff, "has_ulp")) {
        row.max_ulp =
            std::max(row.max_ulp.value_or(0), maybe_unsigned(diff, "max_ulp").value_or(0));
      }
    }
  }
  if (row.differing > 0 && !numbers) {
    row.spread = seen.empty() ? "failed" : "bytes";
  }
}

// The figures of one run by name: perf counters, rusage and wall time.
std::map<std::string, double> run_figures(const json& run) {
  std::map<std::string, double> figures;
  const json& counters = field(run, "counters");
  const json& events = field(counters, "events");
  if (events.is_object()) {
    for (const auto& [name, event] : events.items()) {
      if (flag(event, "supported") && field(event, "value").is_number()) {
        figures[name] = number(event, "value");
      }
    }
  }
  const json& rusage = field(counters, "rusage");
  if (rusage.is_object()) {
    for (const auto& [name, value] : rusage.items()) {
      if (value.is_number()) {
        figures["rusage:" + name] = value.get<double>();
      }
    }
  }
  if (auto wall = maybe_number(field(run, "launch"), "wall_seconds")) {
    figures["wall-time"] = *wall;
  }
  return figures;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// Per group of isolate's runs, the medians of the counters most runs have,
// in the order a reader looks for them.
void counter_groups(const json& campaign, CampaignView& view) {
  static const std::vector<std::string> kPreferred = {"wall-time",
                                                      "task-clock",
                                                      "context-switches",
                                                      "cpu-migrations",
                                                      "page-faults",
                                                      "instructions",
                                                      "rusage:involuntary_switches",
                                                      "rusage:minor_faults",
                                                      "LLC-load-misses"};
  std::vector<std::pair<std::string, std::map<std::string, std::vector<double>>>> groups;
  auto group_of = [&](const std::string& name) -> std::map<std::string, std::vector<double>>& {
    for (auto& group : groups) {
      if (group.first == name) {
        return group.second;
      }
    }
    groups.emplace_back(name, std::map<std::string, std::vector<double>>{});
    return groups.back().second;
  };
  std::map<std::string, int> group_runs;
  for (const json& run : list(campaign, "runs")) {
    if (integer(run, "outcome", -1) < 0) {
      continue;
    }
    const std::string phase = text(run, "phase");
    const std::string name = phase == "factor"   ? text(run, "factor")
                             : phase == "pinned" ? "pool"
                                                 : phase;
    if (name.empty() || (phase != "factor" && phase != "pinned" && phase != "free")) {
      continue;
    }
    auto& group = group_of(name);
    ++group_runs[name];
    for (const auto& [figure, value] : run_figures(run)) {
      group[figure].push_back(value);
    }
  }
  // A context-switch or fault count the kernel refused is stood in for by
  // rusage's.
  std::vector<std::string> names;
  for (const std::string& name : kPreferred) {
    bool present = std::any_of(groups.begin(), groups.end(),
                               [&](const auto& group) { return group.second.count(name) > 0; });
    auto has = [&](const char* other) {
      return std::find(names.begin(), names.end(), other) != names.end();
    };
    if (present && names.size() < 6 &&
        !(name == "rusage:involuntary_switches" && has("context-switches")) &&
        !(name == "rusage:minor_faults" && has("page-faults"))) {
      names.push_back(name);
    }
  }
  view.counter_names = names;
  for (const auto& [name, figures] : groups) {
    CounterGroup group;
    group.name = name;
    group.runs = group_runs[name];
    for (const std::string& counter : names) {
      auto found = figures.find(counter);
      group.medians.push_back(
          found == figures.end() ? std::nullopt : std::optional<double>(median(found->second)));
    }
    view.counter_groups.push_back(group);
  }
}

void isolate_part(const json& document, const json& campaign, CampaignView& view) {
  view.verdict = text(document, "verdict");
  view.verdict_text = text(document, "verdict_text");
  view.verdict_bad = view.verdict != "reproducible";

  const json& free = field(document, "free");
  const json& pool = field(document, "pool");
  const int free_runs = integer(free, "runs");
  const int free_differing = integer(free, "differing_from_first");
  std::string summary = "free: " + std::to_string(free_runs) + " runs";
  if (free_runs >= 2) {
    summary += free_differing > 0 ? ", " + std::to_string(free_differing) + " differ from the first"
                                  : ", all agree";
  }
  const int pool_runs = integer(pool, "runs");
  if (pool_runs == 0) {
    summary += "; pinned pool: not run";
  } else {
    summary += "; pinned pool: " + std::to_string(pool_runs) + " runs" +
               (integer(pool, "outcomes") > 1 ? ", they differ"
                : integer(pool, "failed") > 0 ? ", a run failed"
                                              : ", all agree");
  }
  view.summary.push_back(summary);
  view.summary.push_back(std::to_string(integer(document, "runs")) + " runs in all (budget " +
                         std::to_string(integer(field(document, "settings"), "budget")) + ")");

  for (const json& change : list(document, "counter_changes")) {
    CounterChange row;
    row.factor = text(change, "factor");
    row.judged = flag(change, "judged");
    row.flagged = flag(change, "flagged");
    row.counter = text(change, "counter");
    row.unit = text(change, "unit");
    row.p = number(change, "p_two_sided", 1);
    row.pool_median = number(change, "pool_median");
    row.perturbed_median = number(change, "perturbed_median");
    row.perturbed_runs = integer(change, "perturbed_runs");
    row.pool_runs = integer(change, "pool_runs");
    row.results_same = flag(change, "timing_varied_results_did_not");
    view.counter_changes.push_back(row);
  }

  for (const json& factor : list(document, "factors")) {
    FactorRow row;
    row.name = text(factor, "name");
    row.values_tried = strings(factor, "values_tried");
    row.runs = integer(factor, "runs");
    row.differing = integer(factor, "differing");
    row.changed = changed_text(factor);
    row.changes = text(factor, "status") == "changes-result";
    // As the terminal shows it: a bound only for a factor whose every
    // perturbed run tested it and matched, with values left untried.
    const std::vector<std::string> untested = strings(factor, "untested_runs");
    const bool matched =
        text(factor, "status") == "no-effect-seen" || text(factor, "status") == "all-values-tried";
    if (matched && !untested.empty()) {
      row.changed = static_cast<int>(untested.size()) >= row.runs ? "NOT TESTED" : "no, partly";
      view.factor_notes.push_back(row.name + ": " + std::to_string(untested.size()) + " of " +
                                  std::to_string(row.runs) + " perturbed run" +
                                  (row.runs == 1 ? "" : "s") + " did not test it (" +
                                  untested.front() + ")");
    } else if (auto rate = maybe_number(factor, "rate_below");
               rate && text(factor, "status") == "no-effect-seen") {
      row.bound = "<" + format("%.0f", 100.0 * *rate) + " %";
    }
    if (row.differing > 0) {
      factor_spread(campaign, row.name, view.reference, row);
    }
    for (const CounterChange& change : view.counter_changes) {
      if (change.factor == row.name && change.judged) {
        row.counter = change.flagged ? "moved" : "same";
      }
    }
    view.factors.push_back(row);
  }
  for (const json& skipped : list(document, "skipped_factors")) {
    view.factor_notes.push_back(text(skipped, "name") + " not tried: " + text(skipped, "reason"));
  }
  counter_groups(campaign, view);
}

void check_part(const json& campaign, CampaignView& view) {
  const json& result = field(campaign, "result");
  view.verdict = text(result, "verdict");
  view.verdict_text = text(result, "text");
  view.verdict_bad =
      view.verdict != "no_difference_seen" && view.verdict != "equal_within_tolerance";
  view.summary.push_back(std::to_string(integer(result, "completed_runs")) + " of " +
                         std::to_string(integer(campaign, "runs_requested")) + " runs completed; " +
                         std::to_string(integer(result, "distinct_outcomes")) +
                         " distinct outcome" +
                         (integer(result, "distinct_outcomes") == 1 ? "" : "s"));
  for (const json& summary : list(field(campaign, "counters"), "summaries")) {
    CounterSummary row;
    row.name = text(summary, "name");
    row.unit = text(summary, "unit");
    row.cold = maybe_number(summary, "cold");
    row.mean = maybe_number(summary, "mean");
    row.cv = maybe_number(summary, "cv");
    row.count = integer(summary, "count");
    row.flagged = flag(summary, "flagged");
    view.counters.push_back(row);
  }
}

// The verdict line a campaign file without a stored paragraph still
// supports.
std::string fallback_verdict_text(const CampaignView& view, const json& campaign) {
  const json& result = field(campaign, "result");
  if (view.kind == CampaignView::Kind::kCheck && view.verdict == "differs") {
    return "verdict: results DIFFER: " + std::to_string(integer(result, "distinct_outcomes")) +
           " distinct outcomes in " + std::to_string(integer(result, "completed_runs")) +
           " completed runs\n";
  }
  if (view.kind == CampaignView::Kind::kCheck && view.verdict == "no_difference_seen") {
    return "verdict: no difference seen in " + std::to_string(integer(result, "completed_runs")) +
           " runs; a further run differs with probability below " +
           format("%.0f", 100.0 * number(result, "difference_probability_below")) +
           " % (95 % confidence)\n";
  }
  return "verdict: " + (view.verdict.empty() ? std::string("not recorded") : view.verdict) + "\n";
}

// ---- loss curves -------------------------------------------------------

// What the curves read at most, over every run's file: a campaign of long
// logs is drawn in seconds, from the part it can read.
constexpr uint64_t kMostBytesRead = 512ull << 20;

struct ReadBudget {
  uint64_t read = 0;
  bool exceeded = false;
};

// The file's text as memdet compared it (masks applied, the run's own
// directory replaced), or nothing when it is gone, is no longer what the
// run wrote (its digest must be the recorded one), or would exceed the
// budget.
std::optional<std::string> recorded_text(const std::string& path, const std::string& digest,
                                         const compare::Masks& masks, const std::string& run_dir,
                                         ReadBudget& budget) {
  struct stat info {};
  if (path.empty() || ::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return std::nullopt;
  }
  const auto size = static_cast<uint64_t>(info.st_size);
  if (budget.read + size > kMostBytesRead) {
    budget.exceeded = true;
    return std::nullopt;
  }
  budget.read += size;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  compare::Digester digester;
  std::string normalized;
  std::string line;
  while (std::getline(in, line)) {
    if (!in.eof()) {
      line += '\n';
    }
    std::string piece = compare::normalize_text(line, masks, run_dir);
    digester.update(piece);
    normalized += piece;
  }
  if (digester.finish() != digest) {
    return std::nullopt;
  }
  return normalized;
}

bool names_loss(std::string_view token) {
  std::string lower(token);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("loss") != std::string::npos;
}

}  // namespace

std::optional<double> logged_value(std::string_view line, std::string_view step) {
  std::optional<double> fraction;
  std::optional<double> first;
  bool after_loss = false;
  for (std::string_view token : compare::split_tokens(line)) {
    const bool is_step = !step.empty() && token.data() < step.data() + step.size() &&
                         step.data() < token.data() + token.size();
    auto parsed = compare::parse_number(token);
    if (!parsed) {
      after_loss = names_loss(token);
      continue;
    }
    if (is_step || !std::isfinite(parsed->value)) {
      after_loss = false;
      continue;
    }
    if (after_loss) {
      return parsed->value;
    }
    if (!fraction && !parsed->integer) {
      fraction = parsed->value;
    }
    if (!first) {
      first = parsed->value;
    }
  }
  return fraction ? fraction : first;
}

namespace {

// One run's points: by the step regex's capture, or by line number without
// one. A step logged twice keeps its first line.
void parse_curve(const std::string& content, const compare::Mask& step_regex, LossCurve& curve) {
  std::istringstream lines(content);
  std::string line;
  double line_number = 0;
  double last_step = -INFINITY;
  while (std::getline(lines, line)) {
    ++line_number;
    double x = line_number;
    std::string_view step;
    if (step_regex) {
      re2::StringPiece captured;
      if (!RE2::PartialMatch(line, *step_regex, &captured) || captured.data() == nullptr) {
        continue;
      }
      step = std::string_view(captured.data(), captured.size());
      auto parsed = compare::parse_number(step);
      if (!parsed || !std::isfinite(parsed->value)) {
        continue;
      }
      x = parsed->value;
      if (!curve.steps.empty() && x == last_step) {
        continue;
      }
    }
    auto value = logged_value(line, step);
    if (!value) {
      continue;
    }
    last_step = x;
    curve.steps.push_back(x);
    curve.values.push_back(*value);
  }
}

struct TextArtifact {
  std::string key;
  bool differs = false;  // some outcome's numbers or lines differ in it
};

// The text artifacts in the order a chart should try them: those that
// differ first, stdout last.
std::vector<TextArtifact> text_artifacts(const json& campaign) {
  std::vector<TextArtifact> found;
  for (const json& run : list(campaign, "runs")) {
    for (const json& artifact : list(run, "artifacts")) {
      const std::string key = text(artifact, "key");
      if (flag(artifact, "text") &&
          std::none_of(found.begin(), found.end(),
                       [&](const TextArtifact& seen) { return seen.key == key; })) {
        found.push_back({key, false});
      }
    }
  }
  for (const json& outcome : list(campaign, "outcomes")) {
    for (const json& comparison : list(outcome, "vs_reference")) {
      for (TextArtifact& artifact : found) {
        if (artifact.key == text(comparison, "key") && text(comparison, "kind") == "text") {
          artifact.differs = true;
        }
      }
    }
  }
  std::stable_sort(found.begin(), found.end(), [](const TextArtifact& a, const TextArtifact& b) {
    auto rank = [](const TextArtifact& artifact) {
      return (artifact.differs ? 0 : 2) + (artifact.key == "stdout" ? 1 : 0);
    };
    return rank(a) < rank(b);
  });
  return found;
}

LossChart chart_of(const json& campaign, const std::string& key, const compare::Masks& masks,
                   const compare::Mask& step_regex) {
  LossChart chart;
  chart.artifact = key;
  chart.step_regex = step_regex ? text(campaign, "step_regex") : std::string();
  // Runs with equal digests wrote the same text, so one surviving file
  // serves them all: usually the copy kept for each distinct outcome.
  std::map<std::string, std::optional<std::string>> by_digest;
  ReadBudget budget;
  int unread = 0;
  std::vector<std::string> gone;
  std::vector<std::string> gone_paths;
  for (const json& run : list(campaign, "runs")) {
    const json* artifact = nullptr;
    for (const json& candidate : list(run, "artifacts")) {
      if (text(candidate, "key") == key) {
        artifact = &candidate;
      }
    }
    if (artifact == nullptr) {
      continue;
    }
    const std::string digest = text(*artifact, "digest");
    const std::string run_dir = key == "stdout" ? text(run, "dir") : std::string();
    auto& content = by_digest[digest];
    if (!content) {
      // The run wrote relative paths from its own working directory.
      std::string written = text(*artifact, "written");
      if (!written.empty() && written[0] != '/' && !text(run, "cwd").empty()) {
        written = text(run, "cwd") + "/" + written;
      }
      for (const std::string& path : {text(*artifact, "kept"), written}) {
        content = recorded_text(path, digest, masks, run_dir, budget);
        if (content) {
          break;
        }
      }
    }
    if (!content && budget.exceeded) {
      ++unread;
      by_digest.erase(digest);
      continue;
    }
    if (!content) {
      gone.push_back(text(run, "label"));
      if (gone_paths.size() < 2) {
        gone_paths.push_back(text(*artifact, "written"));
      }
      by_digest.erase(digest);
      continue;
    }
    LossCurve curve;
    curve.run = text(run, "label");
    curve.outcome = integer(run, "outcome", -1);
    parse_curve(*content, step_regex, curve);
    if (!curve.steps.empty()) {
      chart.curves.push_back(std::move(curve));
    }
  }
  if (!gone.empty()) {
    std::vector<std::string> named(gone.begin(), gone.begin() + std::min<size_t>(gone.size(), 12));
    if (gone.size() > named.size()) {
      named.push_back("and " + std::to_string(gone.size() - named.size()) + " more");
    }
    chart.notes.push_back("the " + key + " of run" + (gone.size() == 1 ? " " : "s ") + join(named) +
                          (gone.size() == 1 ? " is" : " are") +
                          " gone or no longer what the run wrote (" + join(gone_paths) +
                          (gone.size() > gone_paths.size() ? ", ..." : "") + "); not drawn");
  }
  if (unread > 0) {
    chart.notes.push_back("the runs' " + key + " files exceed " +
                          std::to_string(kMostBytesRead >> 20) + " MiB together; " +
                          std::to_string(unread) + " run" + (unread == 1 ? " is" : "s are") +
                          " not drawn");
  }

  // The earliest step (or line) at which any outcome's numbers part from
  // the reference's.
  for (const json& outcome : list(campaign, "outcomes")) {
    for (const json& comparison : list(outcome, "vs_reference")) {
      if (text(comparison, "key") != key || text(comparison, "kind") != "text") {
        continue;
      }
      const json& diff = field(comparison, "text");
      const bool numbers = maybe_unsigned(diff, "numbers_differing").value_or(0) > 0;
      std::optional<double> at =
          step_regex ? step_number(field(diff, numbers ? "first_number_step" : "first_step"))
                     : step_number(field(diff, numbers ? "first_number_line" : "first_line"));
      if (at && (step_regex || *at > 0) && (!chart.divergent_step || *at < *chart.divergent_step)) {
        chart.divergent_step = at;
      }
    }
  }
  if (chart.divergent_step) {
    chart.divergent_label =
        std::string(step_regex ? "first divergent step " : "first divergent line ") +
        format("%.15g", *chart.divergent_step);
  }
  return chart;
}

LossChart loss_chart(const json& campaign) {
  LossChart empty;
  std::vector<TextArtifact> artifacts = text_artifacts(campaign);
  if (artifacts.empty()) {
    empty.notes.push_back("the campaign compared no text artifact, so there are no curves to draw");
    return empty;
  }
  auto masks = compare::compile_masks(strings(campaign, "masks"));
  if (!masks) {
    empty.notes.push_back("the campaign's masks do not compile here: " + masks.error().message);
    return empty;
  }
  compare::Mask step_regex;
  const std::string pattern = text(campaign, "step_regex");
  std::string step_note;
  if (!pattern.empty()) {
    auto compiled = compare::compile_step_regex(pattern);
    if (compiled) {
      step_regex = *compiled;
    } else {
      step_note = "the step regex does not compile here (" + compiled.error().message +
                  "); lines are numbered instead";
    }
  }
  std::optional<LossChart> first;
  for (const TextArtifact& artifact : artifacts) {
    LossChart chart = chart_of(campaign, artifact.key, *masks, step_regex);
    size_t drawn = std::count_if(chart.curves.begin(), chart.curves.end(),
                                 [](const LossCurve& curve) { return curve.steps.size() >= 2; });
    if (drawn > 0) {
      if (!step_note.empty()) {
        chart.notes.push_back(step_note);
      }
      return chart;
    }
    if (!first) {
      first = std::move(chart);
    }
  }
  first->curves.clear();
  first->divergent_step.reset();
  first->notes.push_back(first->notes.empty()
                             ? "no text artifact logs a number on two or more steps"
                             : "no run's text artifact could be read, so no curve is drawn");
  return *first;
}

}  // namespace

std::string outcome_letter(int outcome) {
  if (outcome < 0) {
    return "-";
  }
  std::string name;
  int value = outcome;
  do {
    name.insert(name.begin(), static_cast<char>('A' + value % 26));
    value = value / 26 - 1;
  } while (value >= 0);
  return name;
}

Result<CampaignFile> read_campaign(const std::string& dir) {
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0) {
    return make_error(dir + ": " + sys::errno_text(errno));
  }
  if (!S_ISDIR(info.st_mode)) {
    return make_error(dir + ": not a directory (give a campaign directory of check or isolate)");
  }
  CampaignFile file;
  std::string expected;
  for (const auto& [name, schema] :
       {std::pair<std::string, std::string>{"isolate.json", kIsolateSchema},
        std::pair<std::string, std::string>{"check.json", kCheckSchema}}) {
    const std::string path = dir + (dir.ends_with('/') ? "" : "/") + name;
    if (::lstat(path.c_str(), &info) == 0) {
      file.path = path;
      expected = schema;
      break;
    }
  }
  if (file.path.empty()) {
    std::error_code code;
    const bool running = std::filesystem::exists(dir + "/campaign.lock", code);
    return make_error(
        dir + ": holds neither isolate.json nor check.json, so it is no finished " +
        "campaign of memdet check or isolate" +
        (running ? " (it has a campaign.lock: still running, or stopped before its end)" : ""));
  }
  // Opened without blocking, so a FIFO in its place cannot hang the read,
  // and refused unless it is a regular file, so a device cannot fill memory.
  sys::ScopedFd fd(::open(file.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid() || ::fstat(fd.get(), &info) != 0) {
    return make_error(file.path + ": cannot open: " + sys::errno_text(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return make_error(file.path + ": not a regular file");
  }
  if (info.st_size == 0) {
    return make_error(file.path + ": empty");
  }
  std::ifstream in(file.path, std::ios::binary);
  std::ostringstream content;
  if (!in || !(content << in.rdbuf())) {
    return make_error(file.path + ": cannot read");
  }
  try {
    file.document = json::parse(content.str());
  } catch (const json::parse_error& error) {
    return make_error(file.path + ": not valid JSON: parse error at byte " +
                      std::to_string(error.byte));
  }
  const json& schema = field(file.document, "schema");
  if (!schema.is_string()) {
    return make_error(file.path + ": no \"schema\" field, so not a campaign file memdet wrote");
  }
  if (schema.get<std::string>() != expected) {
    return make_error(file.path + ": schema \"" + schema.get<std::string>() +
                      "\" is not the one this memdet reads there (" + expected + ")");
  }
  return file;
}

CampaignView campaign_view(const json& document, const std::string& source) {
  CampaignView view;
  view.source = source;
  view.schema = text(document, "schema");
  view.kind =
      view.schema == kIsolateSchema ? CampaignView::Kind::kIsolate : CampaignView::Kind::kCheck;
  const json& campaign =
      view.kind == CampaignView::Kind::kIsolate ? field(document, "campaign") : document;

  view.campaign_dir = text(campaign, "campaign_dir");
  std::vector<std::string> words;
  for (const std::string& word : strings(campaign, "command")) {
    words.push_back(shell_quote(word));
  }
  view.command = join(words, " ");
  view.started_unix = number(campaign, "started_unix");
  const json& host = field(campaign, "host");
  if (host.is_object()) {
    view.host = text(host, "cpu_model") + ", Linux " + text(host, "kernel") + ", " +
                text(host, "libc") + "; " + std::to_string(integer(host, "online_cpus")) + " CPUs";
  }

  const json& outcomes = list(campaign, "outcomes");
  for (size_t i = 0; i < outcomes.size(); ++i) {
    if (flag(outcomes[i], "reference")) {
      view.reference = static_cast<int>(i);
    }
  }
  std::vector<std::string> labels;
  for (const json& run : list(campaign, "runs")) {
    RunRow row;
    row.label = text(run, "label");
    const std::string phase = text(run, "phase");
    row.phase = phase == "factor" ? text(run, "factor") : phase;
    row.status = run_status(run);
    const json& launch = field(run, "launch");
    row.wall_seconds = number(launch, "wall_seconds");
    row.cpu_seconds = number(launch, "user_seconds") + number(launch, "system_seconds");
    row.peak_mib = number(launch, "max_rss_kib") / 1024.0;
    row.outcome = integer(run, "outcome", -1);
    view.runs.push_back(row);
    labels.push_back(row.label);
  }
  for (size_t i = 0; i < outcomes.size(); ++i) {
    OutcomeRow row;
    row.index = static_cast<int>(i);
    row.reference = flag(outcomes[i], "reference");
    for (const json& run : list(outcomes[i], "runs")) {
      const int index = run.is_number_integer() ? run.get<int>() : 0;
      row.runs.push_back(index >= 1 && static_cast<size_t>(index) <= labels.size()
                             ? labels[static_cast<size_t>(index - 1)]
                             : "?");
    }
    for (const json& comparison : list(outcomes[i], "vs_reference")) {
      if (text(comparison, "kind") == "same") {
        row.identical.push_back(text(comparison, "key"));
      } else {
        row.differences.push_back(artifact_difference(comparison));
      }
    }
    view.outcomes.push_back(row);
  }

  if (view.kind == CampaignView::Kind::kIsolate) {
    isolate_part(document, campaign, view);
  } else {
    check_part(campaign, view);
  }
  view.verdict_headline = flag(document, "scheduling")
                              ? std::string("Not memory: scheduling inside the program")
                              : headline(view.verdict);
  if (view.verdict_text.empty()) {
    view.verdict_text = fallback_verdict_text(view, campaign);
  }
  view.loss = loss_chart(campaign);
  return view;
}

}  // namespace memdet::report
