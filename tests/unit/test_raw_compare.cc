// Comparing headerless dumps of float arrays, as tensor.tofile() writes them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "compare/npy.h"

namespace memdet::compare {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = testing::TempDir() + "memdet-raw-XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }

  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string path = path_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

// Little-endian bytes of the given bit patterns, whatever the host's order.
template <typename Bits>
std::string little_endian(const std::vector<Bits>& values) {
  std::string bytes;
  for (Bits value : values) {
    for (size_t i = 0; i < sizeof(Bits); ++i) {
      bytes += static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xff);
    }
  }
  return bytes;
}

std::string f32_bytes(const std::vector<float>& values) {
  std::vector<uint32_t> bits;
  for (float value : values) bits.push_back(std::bit_cast<uint32_t>(value));
  return little_endian(bits);
}

TEST(ParseRawDtype, ReadsEachSpelling) {
  for (RawDtype dtype : {RawDtype::kF16, RawDtype::kBF16, RawDtype::kF32, RawDtype::kF64}) {
    const Result<RawDtype> parsed = parse_raw_dtype(raw_dtype_name(dtype));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(*parsed, dtype);
  }
  EXPECT_EQ(raw_dtype_size(RawDtype::kF16), 2u);
  EXPECT_EQ(raw_dtype_size(RawDtype::kBF16), 2u);
  EXPECT_EQ(raw_dtype_size(RawDtype::kF32), 4u);
  EXPECT_EQ(raw_dtype_size(RawDtype::kF64), 8u);
}

TEST(ParseRawDtype, RefusesOtherNames) {
  for (const char* name : {"float32", "F32", "f8", "", "bf16 "}) {
    const Result<RawDtype> parsed = parse_raw_dtype(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.error().message,
              "unknown dtype '" + std::string(name) + "': expected f16, bf16, f32 or f64");
  }
}

TEST(CompareRaw, Float32EqualAndChanged) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::vector<float> values = {1.0f, -0.5f, 3.0f, 0.0f};
  std::vector<float> changed = values;
  changed[2] = std::nextafter(3.0f, 0.0f);
  changed[3] = -0.0f;
  const std::string a = dir.write("a.bin", f32_bytes(values));
  const std::string b = dir.write("b.bin", f32_bytes(values));
  const std::string c = dir.write("c.bin", f32_bytes(changed));

  const Result<NumericDiff> same = compare_raw(a, b, RawDtype::kF32);
  ASSERT_TRUE(same.ok()) << same.error().message;
  EXPECT_EQ(same->dtype, "float32");
  EXPECT_EQ(same->elements, 4u);
  EXPECT_EQ(same->differing, 0u);
  EXPECT_TRUE(same->first_index.empty());

  const Result<NumericDiff> diff = compare_raw(a, c, RawDtype::kF32);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  EXPECT_EQ(diff->differing, 2u);
  EXPECT_EQ(diff->first_index, (std::vector<uint64_t>{2}));
  EXPECT_EQ(diff->first_a, 3.0);
  EXPECT_EQ(diff->max_ulp, 1u);
  EXPECT_TRUE(diff->has_ulp);
  EXPECT_EQ(diff->max_abs, 3.0 - static_cast<double>(changed[2]));
}

TEST(CompareRaw, Float16AndBfloat16CountTheirOwnSteps) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // 1.0 in both formats, then its neighbour above.
  const std::string f16_a = dir.write("a16.bin", little_endian(std::vector<uint16_t>{0x3c00, 0}));
  const std::string f16_b = dir.write("b16.bin", little_endian(std::vector<uint16_t>{0x3c01, 0}));
  const Result<NumericDiff> half = compare_raw(f16_a, f16_b, RawDtype::kF16);
  ASSERT_TRUE(half.ok()) << half.error().message;
  EXPECT_EQ(half->dtype, "float16");
  EXPECT_EQ(half->elements, 2u);
  EXPECT_EQ(half->max_ulp, 1u);
  EXPECT_EQ(half->max_abs, std::ldexp(1.0, -10));
  EXPECT_EQ(half->first_index, (std::vector<uint64_t>{0}));

  const std::string bf_a = dir.write("abf.bin", little_endian(std::vector<uint16_t>{0, 0x3f80}));
  const std::string bf_b = dir.write("bbf.bin", little_endian(std::vector<uint16_t>{0, 0x3f81}));
  const Result<NumericDiff> brain = compare_raw(bf_a, bf_b, RawDtype::kBF16);
  ASSERT_TRUE(brain.ok()) << brain.error().message;
  EXPECT_EQ(brain->dtype, "bfloat16");
  EXPECT_EQ(brain->max_ulp, 1u);
  EXPECT_EQ(brain->max_abs, std::ldexp(1.0, -7));
  EXPECT_EQ(brain->first_index, (std::vector<uint64_t>{1}));
}

TEST(CompareRaw, Float64) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string a =
      dir.write("a.bin", little_endian(std::vector<uint64_t>{std::bit_cast<uint64_t>(2.0)}));
  const std::string b =
      dir.write("b.bin", little_endian(std::vector<uint64_t>{std::bit_cast<uint64_t>(-2.0)}));
  const Result<NumericDiff> diff = compare_raw(a, b, RawDtype::kF64);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  EXPECT_EQ(diff->dtype, "float64");
  EXPECT_EQ(diff->max_abs, 4.0);
  EXPECT_EQ(diff->max_rel, 2.0);
}

TEST(CompareRaw, EmptyFilesAreEqual) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string a = dir.write("a.bin", "");
  const Result<NumericDiff> diff = compare_raw(a, a, RawDtype::kBF16);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  EXPECT_EQ(diff->elements, 0u);
  EXPECT_EQ(diff->differing, 0u);
}

TEST(CompareRaw, RefusesPartialElements) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string whole = dir.write("whole.bin", std::string(12, '\0'));
  const std::string ragged = dir.write("ragged.bin", std::string(10, '\0'));

  const Result<NumericDiff> first = compare_raw(ragged, whole, RawDtype::kF32);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().message,
            ragged + ": 10 bytes is not a whole number of 4-byte f32 values");

  const Result<NumericDiff> second = compare_raw(whole, ragged, RawDtype::kF64);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message,
            whole + ": 12 bytes is not a whole number of 8-byte f64 values");
}

TEST(CompareRaw, RefusesFilesOfDifferentSizes) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string a = dir.write("a.bin", std::string(8, '\0'));
  const std::string b = dir.write("b.bin", std::string(12, '\0'));

  const Result<NumericDiff> diff = compare_raw(a, b, RawDtype::kF16);
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.error().message, b + ": 12 bytes, but " + a +
                                      " has 8; raw files of different sizes cannot be compared "
                                      "element by element");
}

TEST(CompareRaw, NamesAFileItCannotOpen) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string a = dir.write("a.bin", std::string(8, '\0'));
  const std::string missing = a + ".missing";

  const Result<NumericDiff> diff = compare_raw(a, missing, RawDtype::kF32);
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.error().message, missing + ": cannot open: No such file or directory");

  const std::filesystem::path folder = std::filesystem::path(a).parent_path();
  const Result<NumericDiff> not_file = compare_raw(folder.string(), a, RawDtype::kF32);
  ASSERT_FALSE(not_file.ok());
  EXPECT_EQ(not_file.error().message, folder.string() + ": not a regular file");
}

}  // namespace
}  // namespace memdet::compare
