// Distance between two floating-point values counted in representable
// values, the unit in which "the runs differ in the last bit" is measured.
#pragma once

#include <cstdint>

namespace memdet::compare {

// How many representable values lie between a and b, stepping through the
// IEEE 754 ordering: +0 and -0 are 0 apart, a step across zero counts the
// subnormals on both sides, and infinity is one step past the largest finite
// value. Two NaNs are 0 apart, whatever their payloads, since payloads are a
// bitwise matter; a NaN against a number is UINT64_MAX apart.
uint64_t ulp_distance(float a, float b);
uint64_t ulp_distance(double a, double b);

}  // namespace memdet::compare
