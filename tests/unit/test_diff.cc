#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "compare/tensor.h"
#include "compare/tensor_diff.h"
#include "scratch.h"

namespace memdet::compare {
namespace {

using testing_support::Scratch;

template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// An .npy file as numpy writes it, with the header padded to 64 bytes.
std::string npy_bytes(const std::string& descr, const std::string& shape, bool fortran,
                      const std::string& data) {
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string file("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size() & 0xff);
  file += static_cast<char>(header.size() >> 8);
  return file + header + data;
}

struct Entry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::string data;
};

// A safetensors file holding the entries in the order given.
std::string safetensors_bytes(const std::vector<Entry>& entries) {
  std::string header = "{";
  std::string data;
  for (const Entry& entry : entries) {
    if (header.size() > 1) header += ",";
    header += "\"" + entry.name + "\":{\"dtype\":\"" + entry.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < entry.shape.size(); ++i) {
      header += (i > 0 ? "," : "") + std::to_string(entry.shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
              std::to_string(data.size() + entry.data.size()) + "]}";
    data += entry.data;
  }
  header += "}";
  std::string file;
  for (int i = 0; i < 8; ++i) file += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return file + header + data;
}

std::vector<float> ramp(size_t n) {
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = 0.25f * static_cast<float>(i) + 1.0f;
  return values;
}

float next_up(float value) { return std::nextafter(value, std::numeric_limits<float>::infinity()); }

DiffReport diff_or_fail(const std::string& a, const std::string& b,
                        const Tolerance& tolerance = {}) {
  auto report = diff_paths(a, b, tolerance);
  EXPECT_TRUE(report) << report.error().message;
  return report ? *report : DiffReport{};
}

std::vector<const TensorFinding*> not_identical(const DiffReport& report) {
  std::vector<const TensorFinding*> found;
  for (const TensorFinding& finding : report.findings) {
    if (finding.kind != FindingKind::kIdentical) found.push_back(&finding);
  }
  return found;
}

TEST(Diff, IdenticalSafetensorsAreIdentical) {
  Scratch scratch;
  const std::string bytes = safetensors_bytes({{"w", "F32", {4, 5}, raw_bytes(ramp(20))},
                                               {"n", "I64", {3}, raw_bytes<int64_t>({1, 2, 3})}});
  const DiffReport report =
      diff_or_fail(scratch.write("a.safetensors", bytes), scratch.write("b.safetensors", bytes));
  EXPECT_EQ(report.verdict, Verdict::kIdentical);
  ASSERT_EQ(report.findings.size(), 2u);
  EXPECT_EQ(report.findings[0].tensor, "w");
  EXPECT_EQ(report.findings[0].diff.elements, 20u);
  EXPECT_TRUE(not_identical(report).empty());
}

TEST(Diff, OneUlpInOneSafetensorsTensorIsNamedWithItsCoordinate) {
  Scratch scratch;
  std::vector<float> changed = ramp(20);
  changed[2 * 5 + 3] = next_up(changed[2 * 5 + 3]);
  const Entry other{"bias", "F16", {2}, std::string("\x00\x3c\x00\x40", 4)};
  const std::string a = scratch.write(
      "a.safetensors", safetensors_bytes({other, {"w", "F32", {4, 5}, raw_bytes(ramp(20))}}));
  const std::string b = scratch.write(
      "b.safetensors", safetensors_bytes({other, {"w", "F32", {4, 5}, raw_bytes(changed)}}));

  const DiffReport report = diff_or_fail(a, b);
  EXPECT_EQ(report.verdict, Verdict::kDiffer);
  const auto found = not_identical(report);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]->tensor, "w");
  EXPECT_EQ(found[0]->kind, FindingKind::kDiffers);
  EXPECT_EQ(found[0]->diff.differing, 1u);
  EXPECT_EQ(found[0]->diff.max_ulp, 1u);
  EXPECT_EQ(found[0]->diff.ulp_histogram[1], 1u);
  EXPECT_EQ(found[0]->diff.first_index, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(found[0]->diff.first_a, "4.25 [0x40880000]");

  Tolerance one_ulp;
  one_ulp.max_ulp = 1;
  const DiffReport within = diff_or_fail(a, b, one_ulp);
  EXPECT_EQ(within.verdict, Verdict::kWithinTolerance);
}

TEST(Diff, OneUlpInAFortranOrderNpyIsReportedAtItsLogicalCoordinate) {
  Scratch scratch;
  // Column-major (3, 4): element [i, j] is stored at j * 3 + i.
  std::vector<float> values = ramp(12);
  const std::string a = scratch.write("a.npy", npy_bytes("<f4", "(3, 4)", true, raw_bytes(values)));
  values[3 * 3 + 1] = next_up(values[3 * 3 + 1]);
  const std::string b = scratch.write("b.npy", npy_bytes("<f4", "(3, 4)", true, raw_bytes(values)));

  const DiffReport report = diff_or_fail(a, b);
  const auto found = not_identical(report);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]->diff.first_index, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(found[0]->diff.max_ulp, 1u);
}

TEST(Diff, CAndFortranOrderOfTheSameValuesAreIdentical) {
  Scratch scratch;
  const std::vector<float> c_order = {1, 2, 3, 4, 5, 6};  // [[1, 2, 3], [4, 5, 6]]
  const std::vector<float> f_order = {1, 4, 2, 5, 3, 6};  // the same, column-major
  const std::string a =
      scratch.write("a.npy", npy_bytes("<f4", "(2, 3)", false, raw_bytes(c_order)));
  std::vector<float> changed = f_order;
  changed[3] = next_up(changed[3]);  // [1, 1]
  const std::string b =
      scratch.write("b.npy", npy_bytes("<f4", "(2, 3)", true, raw_bytes(f_order)));
  const std::string c =
      scratch.write("c.npy", npy_bytes("<f4", "(2, 3)", true, raw_bytes(changed)));

  EXPECT_EQ(diff_or_fail(a, b).verdict, Verdict::kIdentical);
  const DiffReport report = diff_or_fail(a, c);
  ASSERT_EQ(not_identical(report).size(), 1u);
  EXPECT_EQ(report.findings[0].diff.first_index, (std::vector<uint64_t>{1, 1}));
}

TEST(Diff, BigEndianAgainstLittleEndianComparesValues) {
  Scratch scratch;
  const std::string a =
      scratch.write("a.npy", npy_bytes("<i4", "(2,)", false, raw_bytes<int32_t>({1, 2})));
  const std::string b =
      scratch.write("b.npy", npy_bytes(">i4", "(2,)", false, std::string("\0\0\0\1\0\0\0\2", 8)));
  const std::string c =
      scratch.write("c.npy", npy_bytes(">i4", "(2,)", false, std::string("\0\0\0\1\0\0\0\7", 8)));
  EXPECT_EQ(diff_or_fail(a, b).verdict, Verdict::kIdentical);
  const DiffReport report = diff_or_fail(a, c);
  EXPECT_EQ(report.findings[0].diff.max_abs, 5.0);
  EXPECT_EQ(report.findings[0].diff.max_ulp, 5u);
}

TEST(Diff, NanPayloadsAloneAreAFindingUnlessEqualNan) {
  Scratch scratch;
  const uint32_t quiet = 0x7fc00000u;
  const std::vector<uint32_t> a_bits = {0x3f800000u, quiet};
  const std::vector<uint32_t> b_bits = {0x3f800000u, quiet | 1u};
  const std::string a = scratch.write("a.npy", npy_bytes("<f4", "(2,)", false, raw_bytes(a_bits)));
  const std::string b = scratch.write("b.npy", npy_bytes("<f4", "(2,)", false, raw_bytes(b_bits)));

  const DiffReport report = diff_or_fail(a, b);
  EXPECT_EQ(report.verdict, Verdict::kDiffer);
  EXPECT_EQ(report.findings[0].diff.nan_payload, 1u);
  EXPECT_EQ(report.findings[0].diff.nan_mismatch, 0u);
  EXPECT_EQ(report.findings[0].diff.first_index, (std::vector<uint64_t>{1}));

  Tolerance equal_nan;
  equal_nan.equal_nan = true;
  EXPECT_EQ(diff_or_fail(a, b, equal_nan).verdict, Verdict::kWithinTolerance);
}

TEST(Diff, SignedZerosAreEqualWithinToleranceButNotBitwise) {
  Scratch scratch;
  const std::string a =
      scratch.write("a.npy", npy_bytes("<f8", "(1,)", false, raw_bytes<double>({0.0})));
  const std::string b =
      scratch.write("b.npy", npy_bytes("<f8", "(1,)", false, raw_bytes<double>({-0.0})));
  const DiffReport report = diff_or_fail(a, b);
  EXPECT_EQ(report.verdict, Verdict::kWithinTolerance);
  EXPECT_EQ(report.findings[0].diff.bitwise_differing, 1u);
  EXPECT_EQ(report.findings[0].diff.differing, 0u);
  EXPECT_EQ(report.findings[0].diff.ulp_histogram[0], 1u);
}

TEST(Diff, ToleranceRules) {
  Scratch scratch;
  const std::string a =
      scratch.write("a.npy", npy_bytes("<f8", "(2,)", false, raw_bytes<double>({1.0, 100.0})));
  const std::string b =
      scratch.write("b.npy", npy_bytes("<f8", "(2,)", false, raw_bytes<double>({1.5, 101.0})));
  Tolerance atol;
  atol.atol = 0.5;
  EXPECT_EQ(diff_or_fail(a, b, atol).findings[0].diff.differing, 1u);  // 100 vs 101 is outside
  atol.atol = 1.0;
  EXPECT_EQ(diff_or_fail(a, b, atol).verdict, Verdict::kWithinTolerance);
  Tolerance rtol;
  rtol.rtol = 0.01;  // 0.01 * |101| covers 1; 0.01 * 1.5 does not cover 0.5
  const DiffReport report = diff_or_fail(a, b, rtol);
  EXPECT_EQ(report.findings[0].diff.differing, 1u);
  EXPECT_EQ(report.findings[0].diff.first_index, (std::vector<uint64_t>{0}));
  EXPECT_DOUBLE_EQ(report.findings[0].diff.max_rel, 0.5 / 1.5);
}

TEST(Diff, IntegersAndBoolsMeasureValueDifferences) {
  Scratch scratch;
  const std::string a = scratch.write(
      "a.safetensors", safetensors_bytes({{"i", "I16", {3}, raw_bytes<int16_t>({-5, 7, 9})},
                                          {"b", "BOOL", {2}, std::string("\x01\x00", 2)}}));
  const std::string b = scratch.write(
      "b.safetensors", safetensors_bytes({{"i", "I16", {3}, raw_bytes<int16_t>({-5, 10, 9})},
                                          {"b", "BOOL", {2}, std::string("\x02\x00", 2)}}));
  const DiffReport report = diff_or_fail(a, b);
  ASSERT_EQ(report.findings.size(), 2u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kDiffers);
  EXPECT_EQ(report.findings[0].diff.max_ulp, 3u);
  EXPECT_EQ(report.findings[0].diff.first_index, (std::vector<uint64_t>{1}));
  // True written as 2 is still true: equal in value, not in bits.
  EXPECT_EQ(report.findings[1].kind, FindingKind::kWithinTolerance);

  Tolerance three;
  three.max_ulp = 3;
  EXPECT_EQ(diff_or_fail(a, b, three).verdict, Verdict::kWithinTolerance);
}

TEST(Diff, EightBitFloatsStepThroughSignedIndices) {
  Scratch scratch;
  // E4M3: 0x01 is the smallest subnormal, 0x81 its negative: two steps
  // apart across zero; 0x00 and 0x80 are +0 and -0.
  const std::string a = scratch.write(
      "a.safetensors", safetensors_bytes({{"e", "F8_E4M3", {3}, std::string("\x01\x00\x7e", 3)}}));
  const std::string b = scratch.write(
      "b.safetensors", safetensors_bytes({{"e", "F8_E4M3", {3}, std::string("\x81\x80\x7d", 3)}}));
  const DiffReport report = diff_or_fail(a, b);
  const TensorDiff& diff = report.findings[0].diff;
  EXPECT_EQ(diff.bitwise_differing, 3u);
  EXPECT_EQ(diff.differing, 2u);
  EXPECT_EQ(diff.max_ulp, 2u);
  EXPECT_EQ(diff.max_abs, 448.0 - 416.0);

  EXPECT_EQ(f8_to_double(DType::kF8E4M3, 0x7e), 448.0);
  EXPECT_TRUE(std::isnan(f8_to_double(DType::kF8E4M3, 0x7f)));
  EXPECT_TRUE(std::isinf(f8_to_double(DType::kF8E5M2, 0xfc)));
  EXPECT_EQ(f8_to_double(DType::kF8E5M2, 0x7b), 57344.0);
  EXPECT_TRUE(std::isnan(f8_to_double(DType::kF8E4M3Fnuz, 0x80)));
  EXPECT_EQ(f8_to_double(DType::kF8E4M3Fnuz, 0x7f), 240.0);
  EXPECT_EQ(f8_to_double(DType::kF8E8M0, 127), 1.0);
  EXPECT_TRUE(std::isnan(f8_to_double(DType::kF8E8M0, 0xff)));
}

TEST(Diff, MismatchedDtypesShapesAndNamesAreReportedAsSuch) {
  Scratch scratch;
  const std::string a =
      scratch.write("a.safetensors", safetensors_bytes({{"d", "F32", {2}, raw_bytes<float>({1, 2})},
                                                        {"s", "F32", {2}, raw_bytes<float>({1, 2})},
                                                        {"gone", "U8", {1}, "x"}}));
  const std::string b = scratch.write(
      "b.safetensors", safetensors_bytes({{"d", "I32", {2}, raw_bytes<int32_t>({1, 2})},
                                          {"s", "F32", {1, 2}, raw_bytes<float>({1, 2})},
                                          {"new", "U8", {1}, "x"}}));
  const DiffReport report = diff_or_fail(a, b);
  EXPECT_EQ(report.verdict, Verdict::kDiffer);
  ASSERT_EQ(report.findings.size(), 4u);
  EXPECT_EQ(report.findings[0].kind, FindingKind::kDtypeMismatch);
  EXPECT_EQ(report.findings[0].dtype_b, "int32");
  EXPECT_EQ(report.findings[1].kind, FindingKind::kShapeMismatch);
  EXPECT_EQ(report.findings[2].tensor, "gone");
  EXPECT_EQ(report.findings[2].kind, FindingKind::kOnlyInA);
  EXPECT_EQ(report.findings[3].tensor, "new");
  EXPECT_EQ(report.findings[3].kind, FindingKind::kOnlyInB);
}

TEST(Diff, FoldersPairFilesByRelativePath) {
  Scratch scratch;
  const std::string npy = npy_bytes("<f4", "(2,)", false, raw_bytes<float>({1, 2}));
  std::vector<float> changed = {1, 2};
  changed[1] = next_up(changed[1]);
  scratch.write("a/sub/x.npy", npy);
  scratch.write("b/sub/x.npy", npy_bytes("<f4", "(2,)", false, raw_bytes(changed)));
  scratch.write("a/only_a.log", "loss 1\n");
  scratch.write("b/only_b.npy", npy);
  scratch.write("a/same.txt", "same\n");
  scratch.write("b/same.txt", "same\n");

  const DiffReport report = diff_or_fail(scratch.path() + "/a", scratch.path() + "/b");
  EXPECT_EQ(report.verdict, Verdict::kDiffer);
  const auto found = not_identical(report);
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0]->file, "only_a.log");
  EXPECT_EQ(found[0]->kind, FindingKind::kOnlyInA);
  EXPECT_EQ(found[1]->file, "sub/x.npy");
  EXPECT_EQ(found[1]->diff.first_index, (std::vector<uint64_t>{1}));
  EXPECT_EQ(found[2]->file, "only_b.npy");
  EXPECT_EQ(found[2]->kind, FindingKind::kOnlyInB);
}

TEST(Diff, LyingFilesAreErrorsNamingTheFile) {
  Scratch scratch;
  const std::string good =
      scratch.write("a.npy", npy_bytes("<f4", "(2,)", false, raw_bytes<float>({1, 2})));
  const std::string truncated =
      scratch.write("b.npy", npy_bytes("<f4", "(4,)", false, raw_bytes<float>({1, 2})));
  auto report = diff_paths(good, truncated, {});
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().message.rfind(truncated + ": header says 16 bytes of data", 0), 0u)
      << report.error().message;

  const std::string not_npy = scratch.write("c.npy", "hello");
  report = diff_paths(good, not_npy, {});
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message.find(not_npy + ": "), std::string::npos);

  report = diff_paths(good, scratch.path(), {});
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message.find("is a folder"), std::string::npos);
}

// Past the 64 MiB mark the stream has handed the pages it read back to the
// kernel; what comes after must still be read right.
TEST(Diff, FindsAChangeBeyondTheFirstReleasedWindow) {
  Scratch scratch;
  const size_t count = size_t{20} << 20;  // 80 MiB of float32
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = static_cast<float>(i % 1000) + 0.5f;
  const std::string shape = "(" + std::to_string(count) + ",)";
  const std::string a = scratch.write("a.npy", npy_bytes("<f4", shape, false, raw_bytes(values)));
  const size_t changed = count - 3;
  values[changed] = next_up(values[changed]);
  const std::string b = scratch.write("b.npy", npy_bytes("<f4", shape, false, raw_bytes(values)));

  const DiffReport report = diff_or_fail(a, b);
  ASSERT_EQ(report.findings.size(), 1u);
  EXPECT_EQ(report.findings[0].diff.bitwise_differing, 1u);
  EXPECT_EQ(report.findings[0].diff.first_index, (std::vector<uint64_t>{changed}));
}

TEST(Diff, ComplexElementsCompareBothParts) {
  Scratch scratch;
  std::vector<float> a_values = {1, 2, 3, 4};
  std::vector<float> b_values = a_values;
  b_values[3] = next_up(b_values[3]);  // imaginary part of element 1
  const std::string a =
      scratch.write("a.npy", npy_bytes("<c8", "(2,)", false, raw_bytes(a_values)));
  const std::string b =
      scratch.write("b.npy", npy_bytes("<c8", "(2,)", false, raw_bytes(b_values)));
  const DiffReport report = diff_or_fail(a, b);
  EXPECT_EQ(report.findings[0].diff.first_index, (std::vector<uint64_t>{1}));
  EXPECT_EQ(report.findings[0].diff.max_ulp, 1u);
}

}  // namespace
}  // namespace memdet::compare
