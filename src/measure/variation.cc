#include "measure/variation.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/text.h"

namespace memdet::measure {

SampleStats describe_samples(const std::vector<double>& values) {
  SampleStats stats;
  stats.count = static_cast<int>(values.size());
  if (values.empty()) {
    return stats;
  }
  double sum = 0;
  for (double value : values) {
    sum += value;
  }
  stats.mean = sum / static_cast<double>(values.size());
  if (values.size() < 2 || stats.mean == 0) {
    return stats;
  }
  double squares = 0;
  for (double value : values) {
    squares += (value - stats.mean) * (value - stats.mean);
  }
  const double deviation = std::sqrt(squares / static_cast<double>(values.size() - 1));
  stats.cv = deviation / std::fabs(stats.mean);
  return stats;
}

std::optional<double> cv_relative_uncertainty(int count) {
  if (count < 2) {
    return std::nullopt;
  }
  return 1.0 / std::sqrt(2.0 * static_cast<double>(count - 1));
}

std::string CounterRule::text() const {
  if (kind == Kind::kNone) {
    return "none";
  }
  char percent[32];
  std::snprintf(percent, sizeof percent, "fixed:%g%%", threshold * 100.0);
  return percent;
}

std::string CounterRule::label() const {
  return kind == Kind::kNone ? "no counter is flagged" : "rule of thumb";
}

Result<CounterRule> parse_counter_rule(const std::string& text) {
  auto refuse = [&](const std::string& problem) {
    return make_error("--counter-rule '" + printable(text) + "': " + problem +
                      "; expected none or fixed:P% (e.g. fixed:2%)");
  };
  if (text == "none") {
    return CounterRule{};
  }
  const std::string prefix = "fixed:";
  if (text.rfind(prefix, 0) != 0) {
    return refuse("unknown rule");
  }
  std::string number = text.substr(prefix.size());
  if (number.empty() || number.back() != '%') {
    return refuse("the threshold needs a % sign");
  }
  number.pop_back();
  // Digits and one point only: strtod alone would take " 2", "0x2" and "inf".
  char* end = nullptr;
  const double percent = std::strtod(number.c_str(), &end);
  if (number.empty() || *end != '\0' ||
      number.find_first_not_of("0123456789.") != std::string::npos) {
    return refuse("the threshold is not a number");
  }
  if (!std::isfinite(percent) || percent <= 0 || percent > 1000) {
    return refuse("the threshold must be above 0 % and at most 1000 %");
  }
  return CounterRule{CounterRule::Kind::kFixed, percent / 100.0};
}

std::vector<CounterSummary> summarize_counters(const std::vector<RunFigures>& runs,
                                               const CounterRule& rule) {
  std::vector<CounterSummary> summaries;
  if (runs.empty()) {
    return summaries;
  }
  auto summary_for = [&](const Figure& figure) -> CounterSummary& {
    for (CounterSummary& summary : summaries) {
      if (summary.name == figure.name) {
        return summary;
      }
    }
    CounterSummary fresh;
    fresh.name = figure.name;
    fresh.unit = figure.unit;
    fresh.cold_run = runs.front().run;
    summaries.push_back(fresh);
    return summaries.back();
  };

  std::vector<std::vector<double>> warm_values;
  for (size_t i = 0; i < runs.size(); ++i) {
    for (const Figure& figure : runs[i].figures) {
      CounterSummary& summary = summary_for(figure);
      if (i == 0) {
        summary.cold = figure.value;
        continue;
      }
      const size_t at = static_cast<size_t>(&summary - summaries.data());
      warm_values.resize(summaries.size());
      warm_values[at].push_back(figure.value);
      summary.runs.push_back(runs[i].run);
    }
  }
  warm_values.resize(summaries.size());

  for (size_t i = 0; i < summaries.size(); ++i) {
    CounterSummary& summary = summaries[i];
    summary.warm = describe_samples(warm_values[i]);
    summary.flagged = rule.kind == CounterRule::Kind::kFixed && summary.warm.cv &&
                      *summary.warm.cv > rule.threshold;
  }
  return summaries;
}

}  // namespace memdet::measure
