#include <gtest/gtest.h>

#include "protocol/check.h"

namespace memdet::protocol {
namespace {

TEST(CheckBound, MatchesTheStatedFigures) {
  EXPECT_NEAR(no_difference_bound(5), 0.527, 0.001);
  EXPECT_NEAR(no_difference_bound(20), 0.146, 0.001);
  EXPECT_DOUBLE_EQ(no_difference_bound(1), 1.0);
}

TEST(CheckBound, RunsNeededForATighterBound) {
  EXPECT_EQ(runs_for_bound(0.10), 30);
  EXPECT_EQ(runs_for_bound(0.05), 60);
  // The bound those runs give is at or below the target.
  EXPECT_LE(no_difference_bound(runs_for_bound(0.10)), 0.10);
  EXPECT_GT(no_difference_bound(runs_for_bound(0.10) - 1), 0.10);
}

TEST(CheckExit, FailureOutranksDifference) {
  CheckReport report;
  report.verdict = Verdict::kDiffers;
  EXPECT_EQ(report.exit_status(), 1);
  report.failed_runs = 1;
  EXPECT_EQ(report.exit_status(), 3);
  report.interrupted_by = 2;
  EXPECT_EQ(report.exit_status(), 130);
  report.input_error = "x.npy: bad header";
  EXPECT_EQ(report.exit_status(), 2);
}

TEST(CheckExit, NoDifferenceIsZero) {
  CheckReport report;
  report.verdict = Verdict::kNoDifferenceSeen;
  report.completed_runs = 5;
  EXPECT_EQ(report.exit_status(), 0);
}

}  // namespace
}  // namespace memdet::protocol
