#include "report/isolate_json.h"

#include "report/check_json.h"
#include "report/check_terminal.h"
#include "report/isolate_terminal.h"

namespace memdet::report {
namespace {

using json = nlohmann::json;
using protocol::FactorFinding;

const char* status_name(FactorFinding::Status status) {
  switch (status) {
    case FactorFinding::Status::kUntried:
      return "untried";
    case FactorFinding::Status::kUndecided:
      return "undecided";
    case FactorFinding::Status::kNoEffect:
      return "no-effect-seen";
    case FactorFinding::Status::kAllValues:
      return "all-values-tried";
    case FactorFinding::Status::kUnconfirmed:
      return "unconfirmed";
    case FactorFinding::Status::kChanges:
      return "changes-result";
    case FactorFinding::Status::kFailed:
      return "run-failed";
    case FactorFinding::Status::kUnused:
      return "unused";
  }
  return "?";
}

const char* cause_name(FactorFinding::Cause cause) {
  switch (cause) {
    case FactorFinding::Cause::kNone:
      return "none";
    case FactorFinding::Cause::kValue:
      return "value";
    case FactorFinding::Cause::kTiming:
      return "timing";
    case FactorFinding::Cause::kLayout:
      return "layout-not-replayable";
  }
  return "?";
}

json step_json(const protocol::IsolateStep& step) {
  json entry = {{"phase", protocol::isolate_phase_name(step.phase)}};
  if (step.phase == protocol::IsolatePhase::kFactor) {
    entry["factor"] = step.factor;
    entry["value_index"] = step.value;
    entry["confirmation"] = step.confirmation;
  }
  if (step.phase == protocol::IsolatePhase::kEnough) {
    entry["pinned"] = step.pinned;
  }
  return entry;
}

}  // namespace

json isolate_json(const protocol::IsolateReport& report) {
  const protocol::IsolateFindings& found = report.findings;
  json factors = json::array();
  for (size_t i = 0; i < found.factors.size(); ++i) {
    const FactorFinding& finding = found.factors[i];
    json entry = {
        {"name", finding.name},         {"status", status_name(finding.status)},
        {"runs", finding.runs},         {"differing", finding.differing},
        {"matching", finding.matching}, {"values_tried", report.values_tried(finding.name)}};
    if (finding.status == FactorFinding::Status::kChanges) {
      // A cause of the verdict, or only a value the result depends on.
      entry["explains_divergence"] =
          i < report.settings.factors.size() &&
          protocol::explains_divergence(finding, report.settings.factors[i]);
      entry["cause"] = cause_name(finding.cause);
      entry["value_index"] = finding.value;
    }
    if (finding.status == FactorFinding::Status::kNoEffect ||
        finding.status == FactorFinding::Status::kAllValues) {
      entry["rate_below"] = finding.bound;
    }
    // Perturbed runs that did not test the factor (the program overrode
    // its value, or it measured as the pool's), each with the reason.
    entry["untested_runs"] = report.unproven(finding.name);
    if (finding.status == FactorFinding::Status::kUndecided ||
        finding.status == FactorFinding::Status::kUntried) {
      entry["needs_runs"] = finding.needs;
    }
    if (finding.differing > 0) {
      entry["max_difference"] = factor_spread(report, finding.name);
    }
    factors.push_back(entry);
  }
  json skipped = json::array();
  for (const protocol::SkippedFactor& factor : report.skipped) {
    skipped.push_back({{"name", factor.name}, {"reason", factor.reason}});
  }
  json steps = json::array();
  for (size_t i = 0; i < report.steps.size() && i < report.campaign.runs.size(); ++i) {
    json entry = step_json(report.steps[i]);
    entry["run"] = report.campaign.runs[i].label;
    steps.push_back(entry);
  }
  json document = {
      {"schema", kIsolateSchema},
      {"verdict", protocol::isolate_verdict_name(found.verdict)},
      // A pool that differs with OS entropy and the clock held: the
      // divergence is scheduling inside the program.
      {"scheduling",
       found.verdict == protocol::IsolateVerdict::kNotExplained && report.seed_sources_held()},
      {"verdict_text", printed([&](std::FILE* out) { print_isolate_verdict(report, out); })},
      {"exit_status", report.exit_status()},
      {"runs", static_cast<int>(report.steps.size())},
      {"settings",
       {{"free_runs", report.settings.free_runs},
        {"pool_runs", report.settings.pool_runs},
        {"factor_runs", report.settings.factor_runs},
        {"blame_level", report.settings.blame_level},
        {"budget", report.settings.budget}}},
      {"free",
       {{"runs", found.free_runs},
        {"failed", found.free_failed},
        {"differing_from_first", found.free_differing}}},
      {"pool",
       {{"runs", found.pool_runs},
        {"failed", found.pool_failed},
        {"outcomes", found.pool_outcomes},
        {"profile", profile_json(report.pinned)}}},
      {"confirmations_needed", found.confirmations},
      {"factors", factors},
      {"skipped_factors", skipped},
      {"budget_exhausted", found.budget_exhausted},
      {"steps", steps},
      {"input_error", report.input_error.empty() ? json(nullptr) : json(report.input_error)},
      {"campaign", check_json(report.campaign)},
  };
  json counters = json::array();
  for (const protocol::CounterChange& change : report.counter_changes) {
    counters.push_back({{"factor", change.factor},
                        {"judged", change.judged},
                        {"counter", change.counter},
                        {"unit", change.unit},
                        {"p_two_sided", change.p},
                        {"counters_tested", change.counters_tested},
                        {"flagged", change.flagged},
                        {"perturbed_runs", change.perturbed_runs},
                        {"pool_runs", change.pool_runs},
                        {"perturbed_median", change.perturbed_median},
                        {"pool_median", change.pool_median},
                        {"timing_varied_results_did_not", change.flagged && change.results_same}});
  }
  document["counter_changes"] = counters;
  auto site_json = [](const protocol::CallSite& site) {
    return nlohmann::json{
        {"caller", site.caller}, {"location", site.location}, {"line", site.line}};
  };
  auto read_json = [&](const protocol::SeedRead& read) {
    return nlohmann::json{
        {"factor", read.factor},        {"reads", read.reads},     {"runs", read.runs},
        {"found", read.found},          {"ordinal", read.ordinal}, {"source", read.source},
        {"site", site_json(read.site)}, {"note", read.note}};
  };
  nlohmann::json reads = nlohmann::json::array();
  for (const protocol::SeedRead& read : report.seed_reads) {
    reads.push_back(read_json(read));
  }
  document["seed_reads"] = reads;
  document["seed_sources_held"] = report.seed_sources_held();
  if (report.listing_search) {
    document["listing_search"] = read_json(*report.listing_search);
  }
  nlohmann::json listings = nlohmann::json::array();
  for (const protocol::Listing& listing : report.listings) {
    listings.push_back({{"api", listing.api},
                        {"entries", listing.entries},
                        {"directory", listing.directory},
                        {"site", site_json(listing.site)}});
  }
  document["listings"] = listings;
  if (report.cure) {
    const protocol::CureFinding& cure = *report.cure;
    document["cure"] = {{"cure", cure.cure},
                        {"tried", cure.not_tried.empty()},
                        {"not_tried", cure.not_tried},
                        {"needed", cure.needed},
                        {"runs", cure.runs},
                        {"applied_runs", cure.applied},
                        {"agreed", cure.agreed},
                        {"refused", cure.refused},
                        {"wall_time_ratio", cure.price}};
  }
  if (found.enough) {
    document["pinning_enough"] = {
        {"pinned", found.enough->pinned},   {"needed", found.enough->needed},
        {"runs", found.enough->runs},       {"shown", found.enough->shown},
        {"refuted", found.enough->refuted}, {"wall_time_ratio", report.enough_price}};
  }
  if (found.search) {
    const protocol::SetSearchFinding& search = *found.search;
    json tests = json::array();
    for (const protocol::PinnedSetTest& test : search.tests) {
      tests.push_back({{"pinned", test.pinned},
                       {"runs", test.runs},
                       {"shown", test.shown},
                       {"refuted", test.refuted}});
    }
    // found: the fewest factors whose pinning is enough; [] when the
    // candidates alone were not. Unfinished: the set under test and the
    // runs it still needs.
    document["set_search"] = {{"candidates", search.candidates},
                              {"needed", search.needed},
                              {"tests", tests},
                              {"complete", search.complete},
                              {"found", search.found},
                              {"narrowed", search.narrowed},
                              {"testing", search.testing},
                              {"needs_runs", search.needs},
                              {"wall_time_ratio", report.search_price}};
  }
  return document;
}

}  // namespace memdet::report
