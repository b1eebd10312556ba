#include "report/campaign_terminal.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "core/text.h"

namespace memdet::report {
namespace {

std::string line(const char* pattern, ...) __attribute__((format(printf, 1, 2)));

std::string line(const char* pattern, ...) {
  char buffer[512];
  va_list args;
  va_start(args, pattern);
  std::vsnprintf(buffer, sizeof buffer, pattern, args);
  va_end(args);
  return std::string(buffer) + "\n";
}

// `text` cut to `width` columns, marked when cut.
std::string fit(const std::string& text, size_t width) {
  return text.size() <= width ? text : text.substr(0, width - 3) + "...";
}

std::string figure(double value, const std::string& unit) {
  char text[48];
  if (unit == "ns") {
    std::snprintf(text, sizeof text, "%.3f ms", value / 1e6);
  } else if (unit == "s") {
    std::snprintf(text, sizeof text, "%.3f s", value);
  } else {
    std::snprintf(text, sizeof text, "%.6g", value);
  }
  return text;
}

std::string factor_table(const CampaignView& view) {
  if (view.factors.empty()) {
    return {};
  }
  if (std::none_of(view.factors.begin(), view.factors.end(),
                   [](const FactorRow& row) { return row.runs > 0; })) {
    return "no factor was perturbed: the campaign ended before any\n";
  }
  std::string out = "\n" + line("  %-14s %-10s %4s %-12s %6s %8s %7s %s", "factor", "values",
                                "runs", "changed?", "bound", "max ULP", "max rel", "counters");
  for (const FactorRow& row : view.factors) {
    std::string ulp = row.max_ulp          ? std::to_string(*row.max_ulp)
                      : row.spread.empty() ? "-"
                                           : row.spread;
    if (ulp.size() > 8) {
      char shorter[16];
      std::snprintf(shorter, sizeof shorter, "%.2g", static_cast<double>(*row.max_ulp));
      ulp = shorter;
    }
    char rel[16] = "-";
    if (row.max_rel) {
      std::snprintf(rel, sizeof rel, "%.1e", *row.max_rel);
    }
    out += line("  %-14s %-10s %4d %-12s %6s %8s %7s %s", printable(fit(row.name, 14)).c_str(),
                printable(fit(join(row.values_tried, ","), 10)).c_str(), row.runs,
                fit(row.changed, 12).c_str(), row.bound.empty() ? "-" : row.bound.c_str(),
                ulp.c_str(), rel, row.counter.empty() ? "-" : row.counter.c_str());
  }
  for (const std::string& note : view.factor_notes) {
    out += wrapped(printable(note), "  ");
  }
  std::vector<std::string> unjudged;
  for (const CounterChange& change : view.counter_changes) {
    if (!change.judged) {
      unjudged.push_back(change.factor);
    } else if (change.flagged) {
      out += wrapped("counters: " + change.factor + " moved " + change.counter + " (median " +
                         figure(change.perturbed_median, change.unit) + " against the pool's " +
                         figure(change.pool_median, change.unit) + "; p = " + figure(change.p, "") +
                         ")" + (change.results_same ? ": timing varied, results did not" : ""),
                     "  ");
    }
  }
  if (!unjudged.empty()) {
    out += wrapped("counters: not judged for " + join(unjudged) + " (too few runs)", "  ");
  }
  out += wrapped(
      "bound: with every perturbed run matching the pool, the factor's effect rate is below "
      "this (95 %); max ULP, max rel: the largest difference of a perturbed run from the pool",
      "  ");
  return out;
}

std::string run_table(const CampaignView& view) {
  std::string out = "\n" + line("  %-4s %-30s %8s %8s %9s  %s", "run", "status", "wall s", "cpu s",
                                "peak MiB", "outcome");
  for (const RunRow& run : view.runs) {
    out += line("  %-4s %-30s %8.2f %8.2f %9.1f  %s", printable(run.label).c_str(),
                printable(fit(run.status, 30)).c_str(), run.wall_seconds, run.cpu_seconds,
                run.peak_mib, outcome_letter(run.outcome).c_str());
  }
  return out;
}

std::string outcome_details(const CampaignView& view) {
  if (view.outcomes.empty()) {
    return {};
  }
  std::string out = "\noutcomes:\n";
  for (const OutcomeRow& outcome : view.outcomes) {
    std::vector<std::string> runs = outcome.runs;
    if (runs.size() > 8) {
      runs.resize(8);
      runs.push_back("...");
    }
    out += wrapped(outcome_letter(outcome.index) + " x" + std::to_string(outcome.runs.size()) +
                       " (run" + (outcome.runs.size() == 1 ? " " : "s ") + join(runs) + ")" +
                       (outcome.reference ? " reference" : ""),
                   "  ");
  }
  // Beyond a few outcomes the detail stops helping a reader; the JSON
  // holds every comparison.
  constexpr int kDetailed = 3;
  int detailed = 0;
  int not_shown = 0;
  for (const OutcomeRow& outcome : view.outcomes) {
    if (outcome.reference || view.reference < 0) {
      continue;
    }
    if (detailed == kDetailed) {
      ++not_shown;
      continue;
    }
    ++detailed;
    out += "  " + outcome_letter(outcome.index) + " vs " + outcome_letter(view.reference) + ":\n";
    for (const ArtifactDifference& difference : outcome.differences) {
      for (size_t i = 0; i < difference.lines.size(); ++i) {
        out += (i == 0 ? "    " + printable(difference.key) + ": " : "      ") +
               printable(difference.lines[i]) + "\n";
      }
    }
    if (!outcome.identical.empty()) {
      out += wrapped("identical: " + printable(join(outcome.identical)), "    ");
    }
  }
  if (not_shown > 0) {
    out += line("  (%d more outcome%s compared in %s)", not_shown, not_shown == 1 ? "" : "s",
                printable(view.source).c_str());
  }
  return out;
}

std::string loss_line(const CampaignView& view) {
  const LossChart& chart = view.loss;
  std::string out;
  if (!chart.curves.empty()) {
    std::string text =
        "loss curves: " + chart.artifact + " of " + std::to_string(chart.curves.size()) + " run" +
        (chart.curves.size() == 1 ? "" : "s") +
        (chart.divergent_step ? "; " + chart.divergent_label : "; they agree at every step") +
        " (--html draws them)";
    out += wrapped(printable(text), "");
  }
  for (const std::string& note : chart.notes) {
    out += wrapped(printable("loss curves: " + note), "");
  }
  return out.empty() ? out : "\n" + out;
}

}  // namespace

std::string render_campaign_terminal(const CampaignView& view) {
  const bool isolate = view.kind == CampaignView::Kind::kIsolate;
  std::string out = line("memdet %s campaign: %s", isolate ? "isolate" : "check",
                         printable(view.campaign_dir).c_str());
  out += line("from: %s (%s)", printable(view.source).c_str(), printable(view.schema).c_str());
  if (!view.command.empty()) {
    out += wrapped("command: " + printable(view.command), "");
  }
  if (!view.host.empty()) {
    out += wrapped("host: " + printable(view.host), "");
  }
  for (const std::string& summary : view.summary) {
    out += wrapped(printable(summary), "");
  }
  if (isolate) {
    out += factor_table(view);
  } else {
    out += run_table(view);
  }
  out += outcome_details(view);
  out += loss_line(view);
  out += "\n";
  // The paragraph was printed by the campaign itself, already wrapped.
  for (size_t start = 0; start < view.verdict_text.size();) {
    size_t end = view.verdict_text.find('\n', start);
    if (end == std::string::npos) {
      end = view.verdict_text.size();
    }
    out += printable(std::string_view(view.verdict_text).substr(start, end - start)) + "\n";
    start = end + 1;
  }
  return out;
}

}  // namespace memdet::report
