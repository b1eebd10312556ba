#include "compare/ulp.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace memdet::compare {
namespace {

constexpr uint64_t kFar = std::numeric_limits<uint64_t>::max();

TEST(UlpDistance, EqualValuesAreZeroApart) {
  EXPECT_EQ(ulp_distance(1.5f, 1.5f), 0u);
  EXPECT_EQ(ulp_distance(-3.25, -3.25), 0u);
}

TEST(UlpDistance, AdjacentValuesAreOneApart) {
  EXPECT_EQ(ulp_distance(1.0f, std::nextafter(1.0f, 2.0f)), 1u);
  EXPECT_EQ(ulp_distance(1.0, std::nextafter(1.0, 0.0)), 1u);
  EXPECT_EQ(ulp_distance(-7.0, std::nextafter(-7.0, -8.0)), 1u);
}

TEST(UlpDistance, IsSymmetric) {
  const float a = 0.1f;
  const float b = std::nextafter(std::nextafter(a, 1.0f), 1.0f);
  EXPECT_EQ(ulp_distance(a, b), 2u);
  EXPECT_EQ(ulp_distance(b, a), 2u);
}

TEST(UlpDistance, SignedZerosAreZeroApart) {
  EXPECT_EQ(ulp_distance(0.0f, -0.0f), 0u);
  EXPECT_EQ(ulp_distance(-0.0, 0.0), 0u);
}

TEST(UlpDistance, CountsSubnormals) {
  const float smallest = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(ulp_distance(0.0f, smallest), 1u);
  EXPECT_EQ(ulp_distance(smallest, 2 * smallest), 1u);

  // Every positive subnormal lies between zero and the smallest normal.
  EXPECT_EQ(ulp_distance(0.0f, std::numeric_limits<float>::min()), uint64_t{1} << 23);
  EXPECT_EQ(ulp_distance(0.0, std::numeric_limits<double>::min()), uint64_t{1} << 52);
}

TEST(UlpDistance, SumsAcrossZero) {
  const float smallest = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(ulp_distance(-smallest, smallest), 2u);
  EXPECT_EQ(ulp_distance(-1.0f, 1.0f), 2 * uint64_t{std::bit_cast<uint32_t>(1.0f)});
  EXPECT_EQ(ulp_distance(-1.0, 1.0), 2 * std::bit_cast<uint64_t>(1.0));
}

TEST(UlpDistance, InfinityIsOnePastTheLargestFinite) {
  EXPECT_EQ(ulp_distance(std::numeric_limits<float>::max(), std::numeric_limits<float>::infinity()),
            1u);
  EXPECT_EQ(
      ulp_distance(-std::numeric_limits<double>::max(), -std::numeric_limits<double>::infinity()),
      1u);
}

TEST(UlpDistance, OppositeInfinitiesDoNotOverflow) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(ulp_distance(-inf, inf), 2 * std::bit_cast<uint64_t>(inf));
}

TEST(UlpDistance, NanAgainstANumberIsFarthest) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(ulp_distance(nan, 1.0f), kFar);
  EXPECT_EQ(ulp_distance(0.0f, nan), kFar);
  EXPECT_EQ(ulp_distance(std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()),
            kFar);
}

TEST(UlpDistance, TwoNansAreZeroApartWhateverTheirPayloads) {
  const float quiet = std::numeric_limits<float>::quiet_NaN();
  const float other = std::bit_cast<float>(std::bit_cast<uint32_t>(quiet) | 0x1234u);
  EXPECT_EQ(ulp_distance(quiet, other), 0u);
  EXPECT_EQ(ulp_distance(-std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::signaling_NaN()),
            0u);
}

}  // namespace
}  // namespace memdet::compare
