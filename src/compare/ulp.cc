#include "compare/ulp.h"

#include <bit>
#include <cmath>
#include <limits>

namespace memdet::compare {

namespace {

// IEEE 754 orders values of one sign by their magnitude bits, so the
// distance is a difference of magnitudes on one side of zero and a sum
// across it. Working on magnitudes in uint64_t keeps the sum from
// overflowing: two magnitudes of at most infinity's 0x7ff0... add up to
// less than 2^64.
template <typename Bits>
uint64_t magnitude_distance(Bits a_bits, Bits b_bits) {
  constexpr Bits kSign = Bits{1} << (std::numeric_limits<Bits>::digits - 1);
  const uint64_t a_magnitude = a_bits & ~kSign;
  const uint64_t b_magnitude = b_bits & ~kSign;

  if ((a_bits & kSign) != (b_bits & kSign)) {
    return a_magnitude + b_magnitude;
  }
  return a_magnitude > b_magnitude ? a_magnitude - b_magnitude : b_magnitude - a_magnitude;
}

template <typename Bits, typename Float>
uint64_t distance(Float a, Float b) {
  const bool a_nan = std::isnan(a);
  const bool b_nan = std::isnan(b);
  if (a_nan || b_nan) {
    return a_nan && b_nan ? 0 : std::numeric_limits<uint64_t>::max();
  }
  return magnitude_distance(std::bit_cast<Bits>(a), std::bit_cast<Bits>(b));
}

// For a 16-bit format whose exponent field, all ones, is `exponent`: NaNs
// are the patterns above it once the sign is cleared.
uint64_t distance16(uint16_t a_bits, uint16_t b_bits, uint16_t exponent) {
  const bool a_nan = (a_bits & 0x7fffu) > exponent;
  const bool b_nan = (b_bits & 0x7fffu) > exponent;
  if (a_nan || b_nan) {
    return a_nan && b_nan ? 0 : std::numeric_limits<uint64_t>::max();
  }
  return magnitude_distance(a_bits, b_bits);
}

}  // namespace

uint64_t ulp_distance(float a, float b) { return distance<uint32_t>(a, b); }

uint64_t ulp_distance(double a, double b) { return distance<uint64_t>(a, b); }

uint64_t ulp_distance_f16(uint16_t a_bits, uint16_t b_bits) {
  return distance16(a_bits, b_bits, 0x7c00);
}

uint64_t ulp_distance_bf16(uint16_t a_bits, uint16_t b_bits) {
  return distance16(a_bits, b_bits, 0x7f80);
}

}  // namespace memdet::compare
