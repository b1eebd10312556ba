// Distance between two floating-point values counted in representable
// values, the unit in which "the runs differ in the last bit" is measured.
// The 16-bit formats, which C++20 has no arithmetic type for, are handled as
// their bit patterns.
#pragma once

#include <bit>
#include <cstdint>

namespace memdet::compare {

// How many representable values lie between a and b, stepping through the
// IEEE 754 ordering: +0 and -0 are 0 apart, a step across zero counts the
// subnormals on both sides, and infinity is one step past the largest finite
// value. Two NaNs are 0 apart, whatever their payloads, since payloads are a
// bitwise matter; a NaN against a number is UINT64_MAX apart.
uint64_t ulp_distance(float a, float b);
uint64_t ulp_distance(double a, double b);

// The same distance for IEEE 754 binary16 (float16) and for bfloat16, the
// upper half of a float32, counted in steps of the 16-bit format itself, so
// adjacent float16 values are 1 apart even though float32 has 8192 values
// between them.
uint64_t ulp_distance_f16(uint16_t a_bits, uint16_t b_bits);
uint64_t ulp_distance_bf16(uint16_t a_bits, uint16_t b_bits);

// Widens a binary16 bit pattern exactly; NaNs keep their sign and payload.
inline double f16_to_double(uint16_t bits) {
  const uint64_t sign = uint64_t{bits & 0x8000u} << 48;
  const uint64_t exponent = (bits >> 10) & 0x1fu;
  const uint64_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    // Zeros and subnormals are mantissa * 2^-24, which double holds exactly.
    const double magnitude = static_cast<double>(mantissa) * 0x1p-24;
    return sign != 0 ? -magnitude : magnitude;
  }
  const uint64_t wide_exponent = exponent == 0x1f ? 0x7ff : exponent - 15 + 1023;
  return std::bit_cast<double>(sign | wide_exponent << 52 | mantissa << 42);
}

// Widens a bfloat16 bit pattern exactly: it is a float32 cut to its top half.
inline double bf16_to_double(uint16_t bits) {
  return static_cast<double>(std::bit_cast<float>(uint32_t{bits} << 16));
}

}  // namespace memdet::compare
