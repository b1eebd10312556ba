// How much a counter varied over the runs of one campaign, and the rule
// that decides whether that variation is worth a flag.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace memdet::measure {

struct SampleStats {
  int count = 0;
  double mean = 0;
  // Sample standard deviation over the mean; none with fewer than two
  // values or a mean of zero.
  std::optional<double> cv;
};

SampleStats describe_samples(const std::vector<double>& values);

// The coefficient of variation of n normal samples is itself uncertain:
// its relative standard error is about 1 / sqrt(2 (n - 1)), a third at
// n = 5. None below two samples.
std::optional<double> cv_relative_uncertainty(int count);

// When a counter's variation earns a flag. `check` has one pool of runs and
// nothing that says how much spread to expect, so by default it flags
// nothing and shows the figures; `fixed:P%` flags a CV above P %, a rule of
// thumb rather than a test.
struct CounterRule {
  enum class Kind { kNone, kFixed } kind = Kind::kNone;
  double threshold = 0;  // kFixed: the CV, as a fraction, above which to flag

  std::string text() const;   // "none", "fixed:2%"
  std::string label() const;  // "no counter is flagged", "rule of thumb"
};

// Parses "none" or "fixed:P%" (P a positive number of percent). The error
// is one line naming what was given and what is accepted.
Result<CounterRule> parse_counter_rule(const std::string& text);

// One figure of one run: a counter's value, a rusage field, the wall time.
struct Figure {
  std::string name;
  std::string unit;
  double value = 0;
};

struct RunFigures {
  int run = 0;  // the run's index in its campaign
  std::vector<Figure> figures;
};

struct CounterSummary {
  std::string name;
  std::string unit;
  // The first measured run, apart: it meets cold caches, an empty page
  // cache and fresh page tables.
  int cold_run = 0;
  std::optional<double> cold;
  // The runs after it.
  std::vector<int> runs;
  SampleStats warm;
  bool flagged = false;
};

// Per figure name, in the order names first appear: the first run of
// `runs` apart, mean and CV over the others, and the rule's flag (which
// needs at least two of them).
std::vector<CounterSummary> summarize_counters(const std::vector<RunFigures>& runs,
                                               const CounterRule& rule);

}  // namespace memdet::measure
