#include "measure/variation.h"

#include <gtest/gtest.h>

#include <cmath>

namespace memdet::measure {
namespace {

TEST(Samples, MeanAndCoefficientOfVariation) {
  SampleStats stats = describe_samples({10, 12, 14});
  EXPECT_EQ(stats.count, 3);
  EXPECT_DOUBLE_EQ(stats.mean, 12.0);
  ASSERT_TRUE(stats.cv.has_value());
  // Sample standard deviation 2 (n - 1 in the denominator) over 12.
  EXPECT_NEAR(*stats.cv, 2.0 / 12.0, 1e-12);
}

TEST(Samples, EqualValuesVaryByNothing) {
  SampleStats stats = describe_samples({7, 7, 7, 7});
  ASSERT_TRUE(stats.cv.has_value());
  EXPECT_EQ(*stats.cv, 0.0);
}

TEST(Samples, NoCoefficientFromOneValueOrAZeroMean) {
  EXPECT_FALSE(describe_samples({5}).cv.has_value());
  EXPECT_FALSE(describe_samples({}).cv.has_value());
  EXPECT_EQ(describe_samples({}).count, 0);
  EXPECT_FALSE(describe_samples({0, 0, 0}).cv.has_value());
}

TEST(Samples, UncertaintyOfTheCoefficient) {
  EXPECT_FALSE(cv_relative_uncertainty(1).has_value());
  ASSERT_TRUE(cv_relative_uncertainty(5).has_value());
  // About a third at five runs.
  EXPECT_NEAR(*cv_relative_uncertainty(5), 1.0 / std::sqrt(8.0), 1e-12);
  EXPECT_LT(*cv_relative_uncertainty(50), *cv_relative_uncertainty(5));
}

TEST(CounterRule, NoneAndFixed) {
  auto none = parse_counter_rule("none");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->kind, CounterRule::Kind::kNone);
  EXPECT_EQ(none->text(), "none");

  auto fixed = parse_counter_rule("fixed:2%");
  ASSERT_TRUE(fixed.ok()) << fixed.error().message;
  EXPECT_EQ(fixed->kind, CounterRule::Kind::kFixed);
  EXPECT_DOUBLE_EQ(fixed->threshold, 0.02);
  EXPECT_EQ(fixed->text(), "fixed:2%");
  EXPECT_EQ(fixed->label(), "rule of thumb");

  auto fraction = parse_counter_rule("fixed:0.5%");
  ASSERT_TRUE(fraction.ok());
  EXPECT_DOUBLE_EQ(fraction->threshold, 0.005);
}

TEST(CounterRule, BadRulesGetOneLineNamingTheOption) {
  for (const char* text : {"", "fixed", "fixed:", "fixed:2", "fixed:%", "fixed:-1%", "fixed:0%",
                           "fixed:abc%", "fixed: 2%", "fixed:0x2%", "fixed:inf%", "fixed:nan%",
                           "fixed:1e1%", "fixed:2000%", "fixed:2%%", "bogus", "None", "rank"}) {
    auto rule = parse_counter_rule(text);
    ASSERT_FALSE(rule.ok()) << "'" << text << "' was accepted";
    const std::string& message = rule.error().message;
    EXPECT_EQ(message.rfind("--counter-rule '", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find("fixed:P%"), std::string::npos) << message;
  }
}

RunFigures run(int index, std::vector<Figure> figures) { return {index, std::move(figures)}; }

TEST(CounterSummary, FirstRunApartAndStatisticsOverTheRest) {
  std::vector<RunFigures> runs = {
      run(1, {{"page-faults", "", 900}, {"task-clock", "ns", 5}}),
      run(2, {{"page-faults", "", 100}, {"task-clock", "ns", 10}}),
      run(3, {{"page-faults", "", 100}, {"task-clock", "ns", 11}}),
      run(4, {{"page-faults", "", 100}, {"task-clock", "ns", 12}}),
  };
  std::vector<CounterSummary> summaries = summarize_counters(runs, CounterRule{});

  ASSERT_EQ(summaries.size(), 2u);
  const CounterSummary& faults = summaries[0];
  EXPECT_EQ(faults.name, "page-faults");
  EXPECT_EQ(faults.cold_run, 1);
  ASSERT_TRUE(faults.cold.has_value());
  EXPECT_EQ(*faults.cold, 900.0);
  EXPECT_EQ(faults.warm.count, 3);
  EXPECT_EQ(faults.runs, (std::vector<int>{2, 3, 4}));
  EXPECT_DOUBLE_EQ(faults.warm.mean, 100.0);
  EXPECT_EQ(*faults.warm.cv, 0.0);

  const CounterSummary& clock = summaries[1];
  EXPECT_EQ(clock.unit, "ns");
  EXPECT_DOUBLE_EQ(clock.warm.mean, 11.0);
  EXPECT_NEAR(*clock.warm.cv, 1.0 / 11.0, 1e-12);
  // The default rule flags nothing.
  EXPECT_FALSE(faults.flagged);
  EXPECT_FALSE(clock.flagged);
}

TEST(CounterSummary, FixedRuleFlagsOnlyWhatVariesBeyondIt) {
  std::vector<RunFigures> runs = {
      run(1, {{"steady", "", 1}, {"wobbly", "", 1}}),
      run(2, {{"steady", "", 1000}, {"wobbly", "", 100}}),
      run(3, {{"steady", "", 1010}, {"wobbly", "", 120}}),
  };
  auto rule = parse_counter_rule("fixed:2%");
  ASSERT_TRUE(rule.ok());
  std::vector<CounterSummary> summaries = summarize_counters(runs, *rule);

  ASSERT_EQ(summaries.size(), 2u);
  // CV of 1000 and 1010 is about 0.7 %; of 100 and 120 about 12.9 %.
  EXPECT_FALSE(summaries[0].flagged);
  EXPECT_TRUE(summaries[1].flagged);
}

TEST(CounterSummary, OneRunAfterTheFirstIsNoGroundForAFlag) {
  std::vector<RunFigures> runs = {run(1, {{"x", "", 1}}), run(2, {{"x", "", 100}})};
  auto rule = parse_counter_rule("fixed:2%");
  ASSERT_TRUE(rule.ok());
  std::vector<CounterSummary> summaries = summarize_counters(runs, *rule);

  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(summaries[0].warm.count, 1);
  EXPECT_FALSE(summaries[0].warm.cv.has_value());
  EXPECT_FALSE(summaries[0].flagged);
}

TEST(CounterSummary, ACounterMissingFromSomeRunsRestsOnFewer) {
  std::vector<RunFigures> runs = {
      run(2, {{"a", "", 1}}),
      run(3, {{"a", "", 2}, {"b", "", 5}}),
      run(5, {{"a", "", 2}, {"b", "", 6}}),
  };
  std::vector<CounterSummary> summaries = summarize_counters(runs, CounterRule{});

  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[0].cold_run, 2);
  EXPECT_EQ(summaries[0].warm.count, 2);
  EXPECT_EQ(summaries[1].name, "b");
  // The first measured run did not count b: no cold value for it.
  EXPECT_FALSE(summaries[1].cold.has_value());
  EXPECT_EQ(summaries[1].warm.count, 2);
  EXPECT_EQ(summaries[1].runs, (std::vector<int>{3, 5}));
}

TEST(CounterSummary, NoRunsNoSummaries) {
  EXPECT_TRUE(summarize_counters({}, CounterRule{}).empty());
}

}  // namespace
}  // namespace memdet::measure
