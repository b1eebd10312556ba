#include "measure/rank_test.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <numeric>

namespace memdet::measure {

RankTest rank_test(const std::vector<double>& left, const std::vector<double>& right) {
  RankTest test;
  test.left = static_cast<int>(left.size());
  test.right = static_cast<int>(right.size());
  if (left.empty() || right.empty()) {
    return test;
  }

  // Doubled mid-ranks: whole numbers even where ties share a rank.
  struct Entry {
    double value;
    bool is_left;
  };
  std::vector<Entry> all;
  for (double value : left) {
    all.push_back({value, true});
  }
  for (double value : right) {
    all.push_back({value, false});
  }
  std::sort(all.begin(), all.end(),
            [](const Entry& a, const Entry& b) { return a.value < b.value; });
  const size_t total = all.size();
  std::vector<int64_t> doubled_ranks(total);
  for (size_t start = 0; start < total;) {
    size_t end = start;
    while (end < total && all[end].value == all[start].value) {
      ++end;
    }
    // Ranks start + 1 .. end share their mean, (start + 1 + end) / 2.
    for (size_t i = start; i < end; ++i) {
      doubled_ranks[i] = static_cast<int64_t>(start + 1 + end);
    }
    start = end;
  }
  int64_t observed = 0;
  for (size_t i = 0; i < total; ++i) {
    if (all[i].is_left) {
      observed += doubled_ranks[i];
    }
  }
  const int64_t n_left = test.left;
  test.u = static_cast<double>(observed) / 2.0 - static_cast<double>(n_left * (n_left + 1)) / 2.0;

  // ways[k][s]: subsets of k ranks whose doubled sum is s; every one of
  // the C(total, left) deals is equally likely under no difference.
  const int64_t max_sum = std::accumulate(doubled_ranks.begin(), doubled_ranks.end(), int64_t{0});
  const size_t k_max = left.size();
  std::vector<std::vector<double>> ways(k_max + 1,
                                        std::vector<double>(static_cast<size_t>(max_sum) + 1, 0));
  ways[0][0] = 1;
  for (size_t i = 0; i < total; ++i) {
    const size_t rank = static_cast<size_t>(doubled_ranks[i]);
    for (size_t k = std::min(k_max, i + 1); k >= 1; --k) {
      for (size_t s = static_cast<size_t>(max_sum); s >= rank; --s) {
        ways[k][s] += ways[k - 1][s - rank];
      }
    }
  }
  // Mean of the left rank sum, doubled: left * (total + 1).
  const int64_t mean = n_left * static_cast<int64_t>(total + 1);
  const int64_t distance = std::llabs(observed - mean);
  double extreme = 0;
  double all_deals = 0;
  for (size_t s = 0; s <= static_cast<size_t>(max_sum); ++s) {
    const double count = ways[k_max][s];
    all_deals += count;
    if (std::llabs(static_cast<int64_t>(s) - mean) >= distance) {
      extreme += count;
    }
  }
  test.p_two_sided = all_deals > 0 ? std::min(1.0, extreme / all_deals) : 1.0;
  test.judged = test.left >= kRankTestMinimum && test.right >= kRankTestMinimum;
  return test;
}

}  // namespace memdet::measure
