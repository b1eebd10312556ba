#include "report/html.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>

#include "core/sys.h"
#include "core/text.h"

namespace memdet::report {
namespace {

// Outcome colours, the reference's first; chosen to stay apart for the
// common forms of colour blindness.
constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

constexpr const char* kStyle = R"(
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: #1d2330; background: #f6f7f9; margin: 0; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.meta { color: #5b6475; font-size: 13px; margin: 2px 0; overflow-wrap: anywhere; }
code, pre { font: 13px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.verdict { background: #fff; border: 1px solid #d9dde5; border-left: 6px solid #2e8b57;
  border-radius: 6px; padding: 12px 18px; margin-top: 18px; }
.verdict.bad { border-left-color: #c0392b; }
.verdict h2 { margin: 2px 0 8px; font-size: 19px; }
.verdict pre { white-space: pre-wrap; margin: 8px 0; }
.verdict ul { margin: 6px 0 0; padding-left: 20px; color: #39414f; }
table { border-collapse: collapse; background: #fff; border: 1px solid #d9dde5; font-size: 13px; }
th, td { padding: 4px 10px; text-align: left; border-bottom: 1px solid #eceef2;
  vertical-align: top; }
th { background: #eef0f4; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.changes td { background: #fdecea; }
tr.changes td.name { font-weight: 600; }
.note { color: #5b6475; font-size: 13px; margin: 6px 0; }
.warn { color: #8a4b00; font-size: 13px; margin: 6px 0; }
figure { background: #fff; border: 1px solid #d9dde5; border-radius: 6px; margin: 0 0 14px;
  padding: 10px 12px; }
figcaption { font-size: 13px; color: #39414f; margin-bottom: 4px; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: #39414f; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12px; margin-top: 6px; }
.swatch { display: inline-block; width: 14px; height: 3px; vertical-align: middle;
  margin-right: 5px; }
.outcome { background: #fff; border: 1px solid #d9dde5; border-radius: 6px; padding: 8px 14px;
  margin-bottom: 10px; }
.outcome h3 { font-size: 14px; margin: 2px 0 6px; }
.outcome ul { margin: 0; padding-left: 18px; }
.outcome li { overflow-wrap: anywhere; }
details summary { cursor: pointer; color: #39414f; margin: 6px 0; }
footer { color: #5b6475; font-size: 12px; margin-top: 32px; }
.up { color: #b03a2e; } .down { color: #1e6b3f; }
)";

std::string fixed(const char* pattern, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, pattern, value);
  return buffer;
}

// The reference outcome takes the first colour wherever it falls in the
// order; failed runs are grey.
std::string color(const CampaignView& view, int outcome) {
  if (outcome < 0) {
    return "#9aa1ad";
  }
  const int rank = outcome == view.reference                         ? 0
                   : view.reference >= 0 && outcome < view.reference ? outcome + 1
                                                                     : outcome;
  return kPalette[static_cast<size_t>(rank) % (sizeof kPalette / sizeof kPalette[0])];
}

// A list of run labels, cut after a few with how many more.
std::string run_list(const std::vector<std::string>& runs) {
  constexpr size_t kShown = 12;
  std::vector<std::string> shown(runs.begin(), runs.begin() + std::min(runs.size(), kShown));
  std::string text = join(shown);
  if (runs.size() > kShown) {
    text += " and " + std::to_string(runs.size() - kShown) + " more";
  }
  return text;
}

std::string figure_text(double value, const std::string& unit) {
  if (unit == "ns") {
    return fixed("%.3f ms", value / 1e6);
  }
  if (unit == "s") {
    return fixed("%.3f s", value);
  }
  return fixed("%.6g", value);
}

std::string counter_label(const std::string& name) {
  if (name == "wall-time") {
    return "wall time (s)";
  }
  if (name == "task-clock") {
    return "task-clock (ms)";
  }
  return name;
}

std::string median_text(const std::string& name, double value) {
  if (name == "wall-time") {
    return fixed("%.3f", value);
  }
  if (name == "task-clock") {
    return fixed("%.1f", value / 1e6);
  }
  return fixed("%.6g", value);
}

// ---- the chart ---------------------------------------------------------

struct Series {
  std::string label;
  std::string color;
  std::vector<double> x;
  std::vector<double> y;
};

// Tick positions at 1, 2 or 5 times a power of ten, about `wanted` of
// them across [low, high].
std::vector<double> ticks(double low, double high, int wanted) {
  std::vector<double> positions;
  const double span = high - low;
  // A span too narrow for ticks to print apart, or one a double cannot
  // hold, gets one tick.
  if (!(span > 0) || !std::isfinite(span) ||
      span < 1e-9 * std::max(std::fabs(low), std::fabs(high))) {
    positions.push_back(low + span / 2);
    return positions;
  }
  const double rough = span / wanted;
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  double step = power;
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * power;
    if (step >= rough) {
      break;
    }
  }
  // Counted in steps, not summed: a step below the spacing of doubles near
  // `low` would never move a running sum.
  const double first = std::ceil(low / step);
  const double last = std::floor(high / step + 1e-9);
  for (double k = first; k <= last && positions.size() <= static_cast<size_t>(4 * wanted); ++k) {
    const double tick = k * step;
    positions.push_back(std::fabs(tick) < step * 1e-9 ? 0 : tick);
  }
  return positions;
}

struct Frame {
  static constexpr double kWidth = 900;
  static constexpr double kHeight = 320;
  static constexpr double kLeft = 74;
  static constexpr double kRight = 20;
  static constexpr double kTop = 26;
  static constexpr double kBottom = 42;
  double x_low = 0, x_high = 1, y_low = 0, y_high = 1;
  bool log_y = false;

  double x(double value) const {
    return kLeft + (value - x_low) / (x_high - x_low) * (kWidth - kLeft - kRight);
  }
  double y(double value) const {
    double v = log_y ? std::log10(value) : value;
    return kTop + (1 - (v - y_low) / (y_high - y_low)) * (kHeight - kTop - kBottom);
  }
};

// At most this many points per line: more than the chart has pixels.
constexpr size_t kMostPoints = 1500;

std::string polyline(const Frame& frame, const Series& series, size_t begin, size_t end) {
  const size_t stride = std::max<size_t>(1, (end - begin + kMostPoints - 1) / kMostPoints);
  std::string points;
  for (size_t i = begin; i < end; i += stride) {
    points += fixed("%.1f", frame.x(series.x[i])) + "," + fixed("%.1f", frame.y(series.y[i])) + " ";
  }
  if ((end - begin - 1) % stride != 0) {
    points +=
        fixed("%.1f", frame.x(series.x[end - 1])) + "," + fixed("%.1f", frame.y(series.y[end - 1]));
  }
  if (end - begin == 1) {
    return "<circle cx=\"" + fixed("%.1f", frame.x(series.x[begin])) + "\" cy=\"" +
           fixed("%.1f", frame.y(series.y[begin])) + "\" r=\"2.5\" fill=\"" + series.color + "\"/>";
  }
  return "<polyline fill=\"none\" stroke=\"" + series.color +
         "\" stroke-width=\"1.6\" stroke-opacity=\"0.75\" stroke-linejoin=\"round\" points=\"" +
         points + "\"><title>" + html_escape(series.label) + "</title></polyline>";
}

// A line chart of the series, with a dashed vertical line at `marker` when
// given. On a log scale, points at or below zero break the line.
std::string line_chart(const std::vector<Series>& series, const std::string& x_label,
                       const std::string& y_label, std::optional<double> marker,
                       const std::string& marker_label, bool log_y) {
  Frame frame;
  frame.log_y = log_y;
  double x_low = INFINITY, x_high = -INFINITY, y_low = INFINITY, y_high = -INFINITY;
  for (const Series& line : series) {
    for (size_t i = 0; i < line.x.size(); ++i) {
      // Steps left out of a log scale still span the axis, so the charts
      // of one log line up.
      x_low = std::min(x_low, line.x[i]);
      x_high = std::max(x_high, line.x[i]);
      if (log_y && !(line.y[i] > 0)) {
        continue;
      }
      const double y = log_y ? std::log10(line.y[i]) : line.y[i];
      if (!std::isfinite(y)) {
        continue;
      }
      y_low = std::min(y_low, y);
      y_high = std::max(y_high, y);
    }
  }
  if (marker) {
    x_low = std::min(x_low, *marker);
    x_high = std::max(x_high, *marker);
  }
  // Values so far apart that their distance overflows cannot be placed on
  // one linear axis.
  if (!std::isfinite(x_low) || !std::isfinite(y_low) || !std::isfinite(y_high - y_low) ||
      !std::isfinite(x_high - x_low)) {
    return {};
  }
  if (x_high == x_low) {
    x_high = x_low + 1;
  }
  if (y_high == y_low) {
    const double pad = log_y ? 0.5 : std::max(std::fabs(y_low) * 0.05, 1e-12);
    y_low -= pad;
    y_high += pad;
  } else if (log_y) {
    y_low = std::floor(y_low);
    y_high = std::ceil(y_high);
  } else {
    const double pad = (y_high - y_low) * 0.05;
    y_low -= pad;
    y_high += pad;
  }
  frame.x_low = x_low;
  frame.x_high = x_high;
  frame.y_low = y_low;
  frame.y_high = y_high;

  const double right = Frame::kWidth - Frame::kRight;
  const double bottom = Frame::kHeight - Frame::kBottom;
  std::string svg = "<svg viewBox=\"0 0 " + fixed("%.0f", Frame::kWidth) + " " +
                    fixed("%.0f", Frame::kHeight) + "\" role=\"img\" aria-label=\"" +
                    html_escape(y_label + " by " + x_label) + "\">\n";
  svg += "<rect x=\"" + fixed("%.0f", Frame::kLeft) + "\" y=\"" + fixed("%.0f", Frame::kTop) +
         "\" width=\"" + fixed("%.0f", right - Frame::kLeft) + "\" height=\"" +
         fixed("%.0f", bottom - Frame::kTop) + "\" fill=\"#fbfcfd\" stroke=\"#c9ced8\"/>\n";

  std::vector<double> y_ticks = ticks(y_low, y_high, 5);
  if (log_y) {
    // Powers of ten only: a tick between two would read as one of them.
    y_ticks.clear();
    const double step = std::max(1.0, std::ceil((y_high - y_low) / 5));
    for (int k = 0; y_low + k * step <= y_high && k <= 10; ++k) {
      y_ticks.push_back(y_low + k * step);
    }
  }
  for (double tick : y_ticks) {
    const double at =
        Frame::kTop + (1 - (tick - y_low) / (y_high - y_low)) * (bottom - Frame::kTop);
    const std::string label = log_y ? "1e" + fixed("%.0f", tick) : fixed("%.6g", tick);
    svg += "<line x1=\"" + fixed("%.0f", Frame::kLeft) + "\" x2=\"" + fixed("%.0f", right) +
           "\" y1=\"" + fixed("%.1f", at) + "\" y2=\"" + fixed("%.1f", at) +
           "\" stroke=\"#e6e9ef\"/><text x=\"" + fixed("%.0f", Frame::kLeft - 6) + "\" y=\"" +
           fixed("%.1f", at + 4) + "\" text-anchor=\"end\">" + html_escape(label) + "</text>\n";
  }
  for (double tick : ticks(x_low, x_high, 8)) {
    const double at = frame.x(tick);
    svg += "<line x1=\"" + fixed("%.1f", at) + "\" x2=\"" + fixed("%.1f", at) + "\" y1=\"" +
           fixed("%.0f", bottom) + "\" y2=\"" + fixed("%.0f", bottom + 4) +
           "\" stroke=\"#9aa1ad\"/><text x=\"" + fixed("%.1f", at) + "\" y=\"" +
           fixed("%.0f", bottom + 17) + "\" text-anchor=\"middle\">" +
           html_escape(fixed("%.6g", tick)) + "</text>\n";
  }
  svg += "<text x=\"" + fixed("%.0f", (Frame::kLeft + right) / 2) + "\" y=\"" +
         fixed("%.0f", Frame::kHeight - 6) + "\" text-anchor=\"middle\">" + html_escape(x_label) +
         "</text>\n";
  svg += "<text transform=\"translate(14 " + fixed("%.0f", (Frame::kTop + bottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(y_label) + "</text>\n";

  // NaN and infinity have no place on the axis, nor zero on a log scale:
  // they break the line.
  auto drawable = [log_y](double y) { return std::isfinite(y) && (!log_y || y > 0); };
  for (const Series& line : series) {
    size_t begin = 0;
    while (begin < line.x.size()) {
      if (!drawable(line.y[begin])) {
        ++begin;
        continue;
      }
      size_t end = begin;
      while (end < line.x.size() && drawable(line.y[end])) {
        ++end;
      }
      svg += polyline(frame, line, begin, end) + "\n";
      begin = end;
    }
  }

  if (marker) {
    const double at = frame.x(*marker);
    const bool near_right = at > right - 200;
    svg += "<g class=\"divergence\" data-step=\"" + html_escape(fixed("%.15g", *marker)) +
           "\"><line x1=\"" + fixed("%.1f", at) + "\" x2=\"" + fixed("%.1f", at) + "\" y1=\"" +
           fixed("%.0f", Frame::kTop) + "\" y2=\"" + fixed("%.0f", bottom) +
           "\" stroke=\"#c0392b\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\"/><text x=\"" +
           fixed("%.1f", near_right ? at - 6 : at + 6) + "\" y=\"" +
           fixed("%.0f", Frame::kTop - 8) + "\" text-anchor=\"" + (near_right ? "end" : "start") +
           "\" style=\"fill:#c0392b;font-weight:600\">" + html_escape(marker_label) +
           "</text></g>\n";
  }
  return svg + "</svg>\n";
}

// ---- sections ----------------------------------------------------------

std::string started_text(double unix_seconds) {
  if (!(unix_seconds > 0)) {
    return {};
  }
  const auto seconds = static_cast<std::time_t>(unix_seconds);
  std::tm utc{};
  if (gmtime_r(&seconds, &utc) == nullptr) {
    return {};
  }
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &utc);
  return text;
}

std::string verdict_section(const CampaignView& view) {
  std::string html = std::string("<section class=\"verdict") + (view.verdict_bad ? " bad" : "") +
                     "\" id=\"verdict\">\n<h2>" + html_escape(view.verdict_headline) + "</h2>\n";
  // The paragraph keeps the terminal's line breaks: its indented lines
  // are the evidence under the verdict.
  html += "<pre>" + html_escape(view.verdict_text) + "</pre>\n";
  if (!view.summary.empty()) {
    html += "<ul>";
    for (const std::string& line : view.summary) {
      html += "<li>" + html_escape(line) + "</li>";
    }
    html += "</ul>\n";
  }
  return html + "</section>\n";
}

std::string factor_section(const CampaignView& view) {
  if (view.factors.empty()) {
    return {};
  }
  if (std::none_of(view.factors.begin(), view.factors.end(),
                   [](const FactorRow& row) { return row.runs > 0; })) {
    return "<section id=\"factors\">\n<h2>Factors</h2>\n<p class=\"note\">no factor was "
           "perturbed: the campaign ended before any</p>\n</section>\n";
  }
  std::string html =
      "<section id=\"factors\">\n<h2>Factors</h2>\n<table>\n<tr><th>factor</th><th>values "
      "tried</th><th class=\"num\">runs</th><th>changed?</th><th class=\"num\">bound</th><th "
      "class=\"num\">max ULP</th><th class=\"num\">max rel</th><th>counters</th></tr>\n";
  for (const FactorRow& row : view.factors) {
    std::string ulp = row.max_ulp          ? std::to_string(*row.max_ulp)
                      : row.spread.empty() ? "–"
                                           : row.spread;
    std::string rel = row.max_rel ? fixed("%.2g", *row.max_rel) : "–";
    html += std::string("<tr") + (row.changes ? " class=\"changes\"" : "") +
            "><td class=\"name\">" + html_escape(row.name) + "</td><td>" +
            html_escape(join(row.values_tried, ", ")) + "</td><td class=\"num\">" +
            std::to_string(row.runs) + "</td><td>" + html_escape(row.changed) +
            "</td><td class=\"num\">" + html_escape(row.bound.empty() ? "–" : row.bound) +
            "</td><td class=\"num\">" + html_escape(ulp) + "</td><td class=\"num\">" +
            html_escape(rel) + "</td><td>" +
            html_escape(row.counter.empty() ? "not judged" : row.counter) + "</td></tr>\n";
  }
  html += "</table>\n";
  for (const std::string& note : view.factor_notes) {
    html += "<p class=\"note\">" + html_escape(note) + "</p>\n";
  }
  html +=
      "<p class=\"note\">bound: with every perturbed run matching the pool, the factor's effect "
      "rate is below this at 95 % confidence. max ULP, max rel: the largest difference of the "
      "factor's perturbed runs from the pool's result. counters: whether a rank test found the "
      "factor's counters moved against the pool's (see below).</p>\n";
  return html + "</section>\n";
}

std::string legend(const CampaignView& view, const std::vector<int>& outcomes) {
  std::string html = "<div class=\"legend\">";
  for (int outcome : outcomes) {
    std::vector<std::string> runs;
    for (const LossCurve& curve : view.loss.curves) {
      if (curve.outcome == outcome) {
        runs.push_back(curve.run);
      }
    }
    const std::string name = outcome < 0 ? std::string("failed runs")
                                         : "outcome " + outcome_letter(outcome) +
                                               (outcome == view.reference ? " (reference)" : "");
    html +=
        "<span><span class=\"swatch\" style=\"background:" + color(view, outcome) + "\"></span>" +
        html_escape(name + ": run" + (runs.size() == 1 ? " " : "s ") + run_list(runs)) + "</span>";
  }
  return html + "</div>\n";
}

std::string loss_section(const CampaignView& view) {
  const LossChart& chart = view.loss;
  std::string html = "<section id=\"curves\">\n<h2>Loss curves</h2>\n";
  const std::string x_label = chart.step_regex.empty() ? "line" : "step";
  if (!chart.curves.empty()) {
    std::vector<Series> series;
    std::vector<int> outcomes;
    // The reference outcome is drawn last, on top: the others are read
    // against it.
    std::vector<const LossCurve*> order;
    for (const LossCurve& curve : chart.curves) {
      if (curve.outcome != view.reference) {
        order.push_back(&curve);
      }
    }
    for (const LossCurve& curve : chart.curves) {
      if (curve.outcome == view.reference) {
        order.push_back(&curve);
      }
    }
    for (const LossCurve* curve : order) {
      series.push_back({"run " + curve->run + ", outcome " + outcome_letter(curve->outcome),
                        color(view, curve->outcome), curve->steps, curve->values});
    }
    for (const LossCurve& curve : chart.curves) {
      if (std::find(outcomes.begin(), outcomes.end(), curve.outcome) == outcomes.end()) {
        outcomes.push_back(curve.outcome);
      }
    }
    std::sort(outcomes.begin(), outcomes.end());
    html += "<figure>\n<figcaption>" +
            html_escape(chart.artifact + ": each run's logged value by " + x_label +
                        (chart.step_regex.empty() ? " (no step regex was given)"
                                                  : " (step regex " + chart.step_regex + ")")) +
            "</figcaption>\n";
    html +=
        line_chart(series, x_label, "value", chart.divergent_step, chart.divergent_label, false);
    html += legend(view, outcomes) + "</figure>\n";

    // Runs that part by a few ULP draw on top of each other; their
    // distance from the reference run shows where and how fast they part.
    const LossCurve* reference = nullptr;
    for (const LossCurve& curve : chart.curves) {
      if (curve.outcome == view.reference && reference == nullptr) {
        reference = &curve;
      }
    }
    std::vector<Series> distances;
    if (reference != nullptr) {
      std::map<double, double> at;
      for (size_t i = 0; i < reference->steps.size(); ++i) {
        at.emplace(reference->steps[i], reference->values[i]);
      }
      for (const LossCurve& curve : chart.curves) {
        if (curve.outcome == view.reference || curve.outcome < 0) {
          continue;
        }
        Series distance{"run " + curve.run + " against run " + reference->run,
                        color(view, curve.outcome),
                        {},
                        {}};
        for (size_t i = 0; i < curve.steps.size(); ++i) {
          auto found = at.find(curve.steps[i]);
          if (found != at.end()) {
            distance.x.push_back(curve.steps[i]);
            distance.y.push_back(std::fabs(curve.values[i] - found->second));
          }
        }
        if (std::any_of(distance.y.begin(), distance.y.end(), [](double d) { return d > 0; })) {
          distances.push_back(std::move(distance));
        }
      }
    }
    if (!distances.empty()) {
      html += "<figure>\n<figcaption>" +
              html_escape("|difference| from run " + reference->run +
                          " (the reference), log scale; steps where a run equals it are left "
                          "out") +
              "</figcaption>\n";
      html += line_chart(distances, x_label, "|difference|", chart.divergent_step,
                         chart.divergent_label, true);
      html += "</figure>\n";
    }
  }
  for (const std::string& note : chart.notes) {
    html += "<p class=\"warn\">" + html_escape(note) + "</p>\n";
  }
  if (!chart.curves.empty() && !chart.divergent_step) {
    html += "<p class=\"note\">" +
            html_escape("the runs' " + chart.artifact + " agree at every " + x_label) + "</p>\n";
  }
  return html + "</section>\n";
}

std::string counter_section(const CampaignView& view) {
  std::string html;
  if (!view.counter_groups.empty() && !view.counter_names.empty()) {
    const CounterGroup* pool = nullptr;
    for (const CounterGroup& group : view.counter_groups) {
      if (group.name == "pool") {
        pool = &group;
      }
    }
    html +=
        "<section id=\"counters\">\n<h2>Counters per factor</h2>\n<table>\n<tr><th>runs of</th>"
        "<th class=\"num\">n</th>";
    for (const std::string& name : view.counter_names) {
      html += "<th class=\"num\">" + html_escape(counter_label(name)) + "</th>";
    }
    html += "<th>rank test against the pool</th></tr>\n";
    for (const CounterGroup& group : view.counter_groups) {
      html += "<tr><td>" + html_escape(group.name) + "</td><td class=\"num\">" +
              std::to_string(group.runs) + "</td>";
      for (size_t i = 0; i < view.counter_names.size(); ++i) {
        const std::optional<double>& value = group.medians[i];
        std::string cell = value ? median_text(view.counter_names[i], *value) : "–";
        std::string change;
        if (value && pool != nullptr && &group != pool && pool->medians[i] &&
            *pool->medians[i] != 0) {
          const double ratio = *value / *pool->medians[i] - 1;
          if (std::fabs(ratio) >= 0.005) {
            change = std::string(" <span class=\"") + (ratio > 0 ? "up" : "down") + "\">" +
                     html_escape(fixed("%+.0f %%", 100 * ratio)) + "</span>";
          }
        }
        html += "<td class=\"num\">" + html_escape(cell) + change + "</td>";
      }
      std::string test = "–";
      for (const CounterChange& change : view.counter_changes) {
        if (change.factor != group.name) {
          continue;
        }
        if (!change.judged) {
          test = "not judged (too few runs)";
        } else if (change.flagged) {
          test = change.counter + " moved: median " +
                 figure_text(change.perturbed_median, change.unit) + " against " +
                 figure_text(change.pool_median, change.unit) + ", p = " + fixed("%.3g", change.p) +
                 (change.results_same ? "; timing varied, results did not" : "");
        } else {
          test = "no counter moved (smallest p = " + fixed("%.3g", change.p) + ")";
        }
      }
      html += "<td>" + html_escape(test) + "</td></tr>\n";
    }
    html +=
        "</table>\n<p class=\"note\">medians over each group's completed runs; the "
        "percentages compare with the pool, where every factor was pinned.</p>\n";
    html += "</section>\n";
  }
  if (!view.counters.empty()) {
    html +=
        "<section id=\"counters\">\n<h2>Counters</h2>\n<table>\n<tr><th>counter</th><th "
        "class=\"num\">first run</th><th class=\"num\">mean of the rest</th><th "
        "class=\"num\">CV</th><th class=\"num\">n</th><th></th></tr>\n";
    for (const CounterSummary& row : view.counters) {
      html += "<tr><td>" + html_escape(row.name) + "</td><td class=\"num\">" +
              html_escape(row.cold ? figure_text(*row.cold, row.unit) : "–") +
              "</td><td class=\"num\">" +
              html_escape(row.mean ? figure_text(*row.mean, row.unit) : "–") +
              "</td><td class=\"num\">" +
              html_escape(row.cv ? fixed("%.1f %%", 100 * *row.cv) : "–") +
              "</td><td class=\"num\">" + std::to_string(row.count) + "</td><td>" +
              (row.flagged ? "flagged" : "") + "</td></tr>\n";
    }
    html += "</table>\n<p class=\"note\">the first run is shown apart: it runs cold.</p>\n";
    html += "</section>\n";
  }
  return html;
}

std::string runs_table(const CampaignView& view) {
  const bool phases = view.kind == CampaignView::Kind::kIsolate;
  std::string html = std::string("<table>\n<tr><th>run</th>") + (phases ? "<th>phase</th>" : "") +
                     "<th>status</th><th class=\"num\">wall s</th><th class=\"num\">cpu "
                     "s</th><th class=\"num\">peak MiB</th><th>outcome</th></tr>\n";
  for (const RunRow& run : view.runs) {
    html += "<tr><td>" + html_escape(run.label) + "</td>" +
            (phases ? "<td>" + html_escape(run.phase) + "</td>" : "") + "<td>" +
            html_escape(run.status) + "</td><td class=\"num\">" + fixed("%.2f", run.wall_seconds) +
            "</td><td class=\"num\">" + fixed("%.2f", run.cpu_seconds) + "</td><td class=\"num\">" +
            fixed("%.1f", run.peak_mib) +
            "</td><td><span class=\"swatch\" style=\"background:" + color(view, run.outcome) +
            "\"></span>" + html_escape(outcome_letter(run.outcome)) +
            (run.outcome >= 0 && run.outcome == view.reference ? " (reference)" : "") +
            "</td></tr>\n";
  }
  return html + "</table>\n";
}

std::string outcomes_section(const CampaignView& view) {
  if (view.outcomes.empty()) {
    return {};
  }
  std::string html = "<section id=\"outcomes\">\n<h2>Outcomes</h2>\n";
  for (const OutcomeRow& outcome : view.outcomes) {
    html += "<div class=\"outcome\"><h3><span class=\"swatch\" style=\"background:" +
            color(view, outcome.index) + "\"></span>" +
            html_escape("outcome " + outcome_letter(outcome.index) +
                        (outcome.reference ? " (reference)" : "") + ": " +
                        std::to_string(outcome.runs.size()) + " run" +
                        (outcome.runs.size() == 1 ? " " : "s ") + run_list(outcome.runs)) +
            "</h3>\n";
    if (!outcome.reference && view.reference >= 0) {
      html += "<ul>\n";
      for (const ArtifactDifference& difference : outcome.differences) {
        html += "<li><code>" + html_escape(difference.key) + "</code>";
        for (size_t i = 0; i < difference.lines.size(); ++i) {
          html += (i == 0 ? ": " : "<br>") + html_escape(difference.lines[i]);
        }
        html += "</li>\n";
      }
      if (!outcome.identical.empty()) {
        html += "<li>identical to " + html_escape(outcome_letter(view.reference)) + ": " +
                html_escape(join(outcome.identical)) + "</li>\n";
      }
      html += "</ul>\n";
    }
    html += "</div>\n";
  }
  return html + "</section>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default: {
        // Line breaks and tabs lay the page out; other control characters
        // are shown as the terminal report shows them.
        const auto byte = static_cast<unsigned char>(c);
        const bool control = (byte < 0x20 && c != '\n' && c != '\t') || byte == 0x7f;
        escaped += control ? printable(std::string_view(&c, 1)) : std::string(1, c);
      }
    }
  }
  return escaped;
}

std::string render_html(const CampaignView& view) {
  const bool isolate = view.kind == CampaignView::Kind::kIsolate;
  const std::string title = std::string(isolate ? "memdet isolate" : "memdet check");
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>" +
      html_escape(title + ": " + view.verdict_headline) + "</title>\n<style>" + kStyle +
      "</style>\n</head>\n<body>\n<main>\n";
  html += "<h1>" + html_escape(title) + "</h1>\n";
  html += "<p class=\"meta\">records: <code>" + html_escape(view.campaign_dir) + "</code>";
  const std::string started = started_text(view.started_unix);
  if (!started.empty()) {
    html += " · started " + html_escape(started);
  }
  html += "</p>\n<p class=\"meta\">command: <code>" + html_escape(view.command) + "</code></p>\n";
  html += verdict_section(view);
  html += factor_section(view);
  html += loss_section(view);
  html += counter_section(view);
  if (isolate) {
    html += "<section id=\"runs\">\n<h2>Runs</h2>\n<details><summary>" +
            html_escape(std::to_string(view.runs.size()) +
                        " runs: free, pinned pool, and each factor's perturbed runs") +
            "</summary>\n" + runs_table(view) + "</details>\n</section>\n";
  } else {
    html += "<section id=\"runs\">\n<h2>Runs</h2>\n" + runs_table(view) + "</section>\n";
  }
  html += outcomes_section(view);
  html += "<footer>" + html_escape(view.source + " (" + view.schema + ")") +
          (view.host.empty() ? "" : "<br>host: " + html_escape(view.host)) +
          "</footer>\n</main>\n</body>\n</html>\n";
  return html;
}

Status write_html(const CampaignView& view, const std::string& path) {
  const std::string page = render_html(view);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !(out << page) || !out.flush()) {
    return make_error(path + ": cannot write: " + sys::errno_text(errno));
  }
  return {};
}

}  // namespace memdet::report
