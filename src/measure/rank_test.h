// An exact rank test of whether two groups of runs count differently: a
// perturbed factor's counter values against the pinned pool's.
#pragma once

#include <vector>

namespace memdet::measure {

// Below this many values on either side the test gives no judgement: at 3
// against 3 the smallest two-sided p an exact rank test can reach is 0.10.
inline constexpr int kRankTestMinimum = 4;

struct RankTest {
  int left = 0;  // values on each side
  int right = 0;
  bool judged = false;  // false: too few values, only show them
  // Mann-Whitney U of the left side: pairs where left beats right, ties
  // counting a half.
  double u = 0;
  // Exact two-sided p: the chance, with the values dealt to the two sides
  // at random, of a rank sum at least as far from its mean as this one.
  // Ties take their mean rank and the permutation distribution keeps them.
  double p_two_sided = 1;
};

// The Wilcoxon-Mann-Whitney rank-sum test by full enumeration of the rank
// sums, for the small groups memdet runs (cost grows with the square of
// the total times the smaller side).
RankTest rank_test(const std::vector<double>& left, const std::vector<double>& right);

}  // namespace memdet::measure
