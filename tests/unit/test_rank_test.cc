#include "measure/rank_test.h"

#include <gtest/gtest.h>

namespace memdet::measure {
namespace {

TEST(RankTest, CompleteSeparationAtThreeAgainstThreeCannotGoBelowATenth) {
  RankTest test = rank_test({1, 2, 3}, {4, 5, 6});
  // Two of the C(6, 3) = 20 deals are this extreme: 2 / 20.
  EXPECT_NEAR(test.p_two_sided, 0.10, 1e-12);
  EXPECT_EQ(test.u, 0.0);
  EXPECT_FALSE(test.judged);
}

TEST(RankTest, CompleteSeparationAtFourAgainstFour) {
  RankTest test = rank_test({10, 11, 12, 13}, {1, 2, 3, 4});
  // 2 / C(8, 4) = 2 / 70.
  EXPECT_NEAR(test.p_two_sided, 2.0 / 70.0, 1e-12);
  EXPECT_EQ(test.u, 16.0);
  EXPECT_TRUE(test.judged);
}

TEST(RankTest, InterleavedGroupsShowNoDifference) {
  RankTest test = rank_test({1, 4, 5, 8}, {2, 3, 6, 7});
  EXPECT_NEAR(test.p_two_sided, 1.0, 1e-12);
  EXPECT_EQ(test.u, 8.0);
}

TEST(RankTest, KnownValueWithoutTies) {
  // Left ranks 1, 2, 4 of 1..7: sum 7, U = 1. Deals of 3 from 7 with a rank
  // sum of 7 or less: {1,2,3} and {1,2,4}; by symmetry as many of 17 or
  // more. p = 4 / 35.
  RankTest test = rank_test({1, 2, 4}, {3, 5, 6, 7});
  EXPECT_EQ(test.u, 1.0);
  EXPECT_NEAR(test.p_two_sided, 4.0 / 35.0, 1e-12);
}

TEST(RankTest, TiesTakeTheirMeanRank) {
  // Every value equal: each deal has the same rank sum, nothing is extreme
  // beyond it, and the p is 1.
  RankTest all_tied = rank_test({5, 5, 5, 5}, {5, 5, 5, 5});
  EXPECT_EQ(all_tied.u, 8.0);
  EXPECT_NEAR(all_tied.p_two_sided, 1.0, 1e-12);

  // A tie across the sides counts a half in U.
  RankTest one_tie = rank_test({1, 2, 3, 5}, {5, 6, 7, 8});
  EXPECT_EQ(one_tie.u, 0.5);
  EXPECT_LT(one_tie.p_two_sided, 0.06);
  EXPECT_GT(one_tie.p_two_sided, 2.0 / 70.0);
}

TEST(RankTest, EmptySideIsNotJudged) {
  RankTest test = rank_test({}, {1, 2, 3, 4});
  EXPECT_FALSE(test.judged);
  EXPECT_EQ(test.p_two_sided, 1.0);
}

TEST(RankTest, SymmetricInItsSides) {
  RankTest forward = rank_test({1, 3, 9, 10, 12}, {2, 4, 5, 6});
  RankTest backward = rank_test({2, 4, 5, 6}, {1, 3, 9, 10, 12});
  EXPECT_NEAR(forward.p_two_sided, backward.p_two_sided, 1e-12);
  EXPECT_EQ(forward.u + backward.u, 20.0);
}

}  // namespace
}  // namespace memdet::measure
