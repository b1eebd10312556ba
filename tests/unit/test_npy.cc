#include "compare/npy.h"
#include "compare/ulp.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

namespace memdet::compare {
namespace {

// A .npy file with the given header dictionary and data. align pads the
// header as numpy does; without it the data starts at an odd offset.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1,
                      bool align = true) {
  const size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  if (align) {
    while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  }
  header += '\n';

  std::string file("\x93NUMPY", 6);
  file += static_cast<char>(major);
  file += '\0';
  const size_t width = major == 1 ? 2 : 4;
  for (size_t i = 0; i < width; ++i) file += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return file + header + data;
}

std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

Result<NpyHeader> parse(const std::string& file) { return parse_npy_header(file, file.size()); }

// Parses a file that must be refused, and gives the reason.
std::string refusal(const std::string& file) {
  const Result<NpyHeader> header = parse(file);
  EXPECT_FALSE(header.ok());
  return header.ok() ? "" : header.error().message;
}

template <typename T>
std::string raw(const std::vector<T>& values) {
  std::string bytes(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = testing::TempDir() + "memdet-npy-XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }

  std::string file(const std::string& name) const { return path_ + "/" + name; }

  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(file(name), std::ios::binary) << bytes;
    return file(name);
  }

  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ParseNpyHeader, ReadsVersion1) {
  const Result<NpyHeader> header = parse(npy_bytes(dict("<f4", "(3, 4)"), std::string(48, 'x')));
  ASSERT_TRUE(header.ok()) << header.error().message;

  EXPECT_EQ(header->descr, "<f4");
  EXPECT_EQ(header->byte_order, '<');
  EXPECT_EQ(header->kind, 'f');
  EXPECT_EQ(header->item_size, 4u);
  EXPECT_FALSE(header->fortran_order);
  EXPECT_EQ(header->shape, (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(header->element_count, 12u);
  EXPECT_EQ(header->data_offset, 128u);
  EXPECT_EQ(header->data_bytes, 48u);
}

TEST(ParseNpyHeader, ReadsVersions2And3) {
  for (int major : {2, 3}) {
    const Result<NpyHeader> header =
        parse(npy_bytes(dict("<i8", "(5,)"), std::string(40, 'x'), major));
    ASSERT_TRUE(header.ok()) << header.error().message;
    EXPECT_EQ(header->kind, 'i');
    EXPECT_EQ(header->element_count, 5u);
    EXPECT_EQ(header->data_offset, 128u);
  }
}

TEST(ParseNpyHeader, ReadsScalarAndVectorAndCubeShapes) {
  const Result<NpyHeader> scalar = parse(npy_bytes(dict("<f8", "()"), std::string(8, 'x')));
  ASSERT_TRUE(scalar.ok()) << scalar.error().message;
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->element_count, 1u);

  const Result<NpyHeader> vector = parse(npy_bytes(dict("<f4", "(5,)"), std::string(20, 'x')));
  ASSERT_TRUE(vector.ok()) << vector.error().message;
  EXPECT_EQ(vector->shape, (std::vector<uint64_t>{5}));

  const Result<NpyHeader> cube = parse(npy_bytes(dict("<f4", "(2, 3, 4)"), std::string(96, 'x')));
  ASSERT_TRUE(cube.ok()) << cube.error().message;
  EXPECT_EQ(cube->shape, (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(cube->element_count, 24u);
}

TEST(ParseNpyHeader, ReadsEmptyArrays) {
  const Result<NpyHeader> header = parse(npy_bytes(dict("<f4", "(0, 3)"), ""));
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->element_count, 0u);
  EXPECT_EQ(header->data_bytes, 0u);
}

TEST(ParseNpyHeader, ReadsFortranOrderAndBigEndian) {
  const Result<NpyHeader> header =
      parse(npy_bytes(dict(">f8", "(2, 2)", true), std::string(32, 'x')));
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_TRUE(header->fortran_order);
  EXPECT_EQ(header->byte_order, '>');
  EXPECT_EQ(header->item_size, 8u);
}

TEST(ParseNpyHeader, ToleratesWhitespaceKeyOrderAndQuotes) {
  const std::string text = "{ \"shape\":(2 ,3 ) ,'fortran_order' :True,\t'descr':'<u2'}";
  const Result<NpyHeader> header = parse(npy_bytes(text, std::string(12, 'x')));
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->kind, 'u');
  EXPECT_TRUE(header->fortran_order);
  EXPECT_EQ(header->shape, (std::vector<uint64_t>{2, 3}));
}

TEST(ParseNpyHeader, ReadsPython2LongDimensions) {
  const Result<NpyHeader> header = parse(npy_bytes(dict("|u1", "(3L, 2L)"), std::string(6, 'x')));
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->element_count, 6u);
}

TEST(ParseNpyHeader, ReadsNonNumericFixedSizeDtypes) {
  const Result<NpyHeader> text = parse(npy_bytes(dict("<U3", "(2,)"), std::string(24, 'x')));
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(text->item_size, 12u);

  const Result<NpyHeader> time = parse(npy_bytes(dict("<M8[ns]", "(1,)"), std::string(8, 'x')));
  ASSERT_TRUE(time.ok()) << time.error().message;
  EXPECT_EQ(time->kind, 'M');

  const Result<NpyHeader> flags = parse(npy_bytes(dict("|b1", "(3,)"), std::string(3, 'x')));
  ASSERT_TRUE(flags.ok()) << flags.error().message;
  EXPECT_EQ(flags->byte_order, '|');
}

TEST(ParseNpyHeader, RefusesBadMagic) {
  EXPECT_NE(refusal("PK\x03\x04 this is a zip file").find("not an npy file"), std::string::npos);
}

TEST(ParseNpyHeader, RefusesTruncatedHeader) {
  const std::string file = npy_bytes(dict("<f4", "(3,)"), std::string(12, 'x'));
  EXPECT_NE(refusal(file.substr(0, 9)).find("truncated header"), std::string::npos);
  EXPECT_NE(refusal("").find("truncated header"), std::string::npos);

  // The caller handed over fewer bytes than the header needs.
  const Result<NpyHeader> short_start = parse_npy_header(file.substr(0, 30), file.size());
  ASSERT_FALSE(short_start.ok());
  EXPECT_NE(short_start.error().message.find("truncated header"), std::string::npos);
}

TEST(ParseNpyHeader, RefusesHeaderLengthPastEndOfFile) {
  const std::string file = npy_bytes(dict("<f4", "(3,)"), "");
  EXPECT_EQ(refusal(file.substr(0, 40)),
            "header length 118 runs past the end of the file (40 bytes)");
}

TEST(ParseNpyHeader, RefusesFileShorterThanItsData) {
  const std::string file = npy_bytes(dict("<f4", "(100,)"), std::string(128, 'x'));
  EXPECT_EQ(refusal(file), "header says 400 bytes of data, file has 128");
}

TEST(ParseNpyHeader, RefusesTrailingBytes) {
  const std::string file = npy_bytes(dict("<f4", "(3,)"), std::string(16, 'x'));
  EXPECT_EQ(refusal(file), "header says 12 bytes of data, file has 16");
}

TEST(ParseNpyHeader, RefusesUnknownDtype) {
  EXPECT_EQ(refusal(npy_bytes(dict("<q4", "(1,)"), "xxxx")), "unsupported dtype '<q4'");
  EXPECT_EQ(refusal(npy_bytes(dict("<f3", "(1,)"), "xxx")), "unsupported dtype '<f3'");
  EXPECT_EQ(refusal(npy_bytes(dict("f4", "(1,)"), "xxxx")), "dtype 'f4' has no byte order");
}

TEST(ParseNpyHeader, RefusesObjectAndStructuredDtypes) {
  EXPECT_EQ(refusal(npy_bytes(dict("|O", "(2,)"), std::string(16, 'x'))),
            "object arrays are not supported");

  const std::string structured =
      "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }";
  EXPECT_EQ(refusal(npy_bytes(structured, std::string(8, 'x'))),
            "structured dtypes are not supported");
}

TEST(ParseNpyHeader, RefusesAbsurdShapes) {
  EXPECT_NE(refusal(npy_bytes(dict("<f4", "(18446744073709551615, 2)"), ""))
                .find("more elements than fit in 64 bits"),
            std::string::npos);
  EXPECT_NE(refusal(npy_bytes(dict("<f8", "(2305843009213693952,)"), ""))
                .find("more bytes than fit in 64 bits"),
            std::string::npos);
  EXPECT_EQ(refusal(npy_bytes(dict("<f4", "(18446744073709551616,)"), "")),
            "dimension in shape does not fit in 64 bits");
  EXPECT_EQ(refusal(npy_bytes(dict("<f4", "(-1, 3)"), "")), "negative dimension in shape");
}

TEST(ParseNpyHeader, RefusesMalformedDictionaries) {
  const std::string data(12, 'x');
  EXPECT_EQ(refusal(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), ", data)),
            "malformed header: missing closing brace");
  EXPECT_EQ(refusal(npy_bytes("{'descr': '<f4', 'fortran_order': False}", data)),
            "malformed header: no 'shape' key");
  EXPECT_EQ(refusal(npy_bytes("{'descr': '<f4', 'descr': '<f4'}", data)),
            "malformed header: duplicate key 'descr'");
  EXPECT_EQ(refusal(npy_bytes(dict("<f4", "(3,)") + " 'x'", data)),
            "malformed header: unexpected text after the closing brace");
  EXPECT_EQ(refusal(npy_bytes("{'descr': '<f4', 'order': 'C'}", data)),
            "malformed header: unexpected key 'order'");
  EXPECT_EQ(refusal(npy_bytes(dict("<f4", "(3)"), data)),
            "malformed header: 'shape' is not a tuple");
  EXPECT_EQ(refusal(npy_bytes("{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", data)),
            "malformed header: 'fortran_order' is not True or False");
}

TEST(ParseNpyHeader, RefusesUnknownVersions) {
  std::string file = npy_bytes(dict("<f4", "(3,)"), std::string(12, 'x'));
  file[6] = 4;
  EXPECT_EQ(refusal(file), "unsupported npy version 4.0");
}

TEST(ParseNpyHeader, SurvivesEveryTruncation) {
  const std::string file = npy_bytes(dict("<f4", "(3, 4)"), std::string(48, 'x'));
  for (size_t size = 0; size < file.size(); ++size) {
    // A buffer of exactly this size, so an overread would leave it.
    const std::string prefix = file.substr(0, size);
    EXPECT_FALSE(parse_npy_header(prefix, prefix.size()).ok()) << size;
  }
}

TEST(ReadNpyHeader, ReportsOpenErrors) {
  const Result<NpyHeader> header = read_npy_header("/nonexistent/weights.npy");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().message, "cannot open: No such file or directory");
}

TEST(WriteNpyF32, RoundTripsThroughTheParser) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(write_npy_f32(dir.file("a.npy"), values.data(), {2, 3}).ok());

  const Result<NpyHeader> header = read_npy_header(dir.file("a.npy"));
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->descr, "<f4");
  EXPECT_EQ(header->shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(header->data_offset % 64, 0u);

  const std::string file = slurp(dir.file("a.npy"));
  EXPECT_EQ(file.substr(header->data_offset), raw(values));
  EXPECT_EQ(file[header->data_offset - 1], '\n');
}

TEST(WriteNpyF32, MatchesNumpyByteForByte) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "numpy is not installed for /usr/bin/python3";
  }
  TempDir dir;
  ASSERT_TRUE(dir.ok());

  const std::vector<std::pair<std::vector<uint64_t>, std::string>> shapes = {
      {{3, 4}, "(3, 4)"}, {{5}, "(5,)"}, {{}, "()"}, {{0}, "(0,)"}, {{1, 2, 3, 4}, "(1, 2, 3, 4)"}};
  for (const auto& [shape, text] : shapes) {
    uint64_t count = 1;
    for (uint64_t dimension : shape) count *= dimension;
    std::vector<float> values(count);
    for (uint64_t i = 0; i < count; ++i) values[i] = 0.5f * static_cast<float>(i);

    const std::string ours = dir.file("ours.npy");
    const std::string theirs = dir.file("theirs.npy");
    ASSERT_TRUE(write_npy_f32(ours, values.data(), shape).ok());
    const std::string script = "import numpy as np; np.save('" + theirs + "', (0.5 * np.arange(" +
                               std::to_string(count) + ", dtype='<f4')).reshape(" + text + "))";
    ASSERT_EQ(std::system(("/usr/bin/python3 -c \"" + script + "\"").c_str()), 0);

    EXPECT_EQ(slurp(ours), slurp(theirs)) << text;
  }
}

TEST(WriteNpyF32, ReportsAnUncreatableFile) {
  const float value = 1;
  const Status status = write_npy_f32("/nonexistent/weights.npy", &value, {1});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message,
            "cannot create /nonexistent/weights.npy: No such file or directory");
}

TEST(CompareNpy, IdenticalFilesDoNotDiffer) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::vector<float> values = {1.5f, -2.0f, 0.0f, 1e-30f};
  ASSERT_TRUE(write_npy_f32(dir.file("a.npy"), values.data(), {4}).ok());
  ASSERT_TRUE(write_npy_f32(dir.file("b.npy"), values.data(), {4}).ok());

  const auto diff = compare_npy(dir.file("a.npy"), dir.file("b.npy"));
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_TRUE(diff->has_value());
  EXPECT_EQ((*diff)->elements, 4u);
  EXPECT_EQ((*diff)->differing, 0u);
  EXPECT_EQ((*diff)->max_ulp, 0u);
  EXPECT_EQ((*diff)->max_abs, 0.0);
  EXPECT_TRUE((*diff)->first_index.empty());
}

TEST(CompareNpy, FindsOneChangedElement) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  std::vector<float> values(12);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) + 1.0f;
  ASSERT_TRUE(write_npy_f32(dir.file("a.npy"), values.data(), {3, 4}).ok());
  const float before = values[7];
  values[7] = std::bit_cast<float>(std::bit_cast<uint32_t>(values[7]) + 3);
  ASSERT_TRUE(write_npy_f32(dir.file("b.npy"), values.data(), {3, 4}).ok());

  const auto diff = compare_npy(dir.file("a.npy"), dir.file("b.npy"));
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_TRUE(diff->has_value());
  const NumericDiff& d = **diff;
  EXPECT_EQ(d.elements, 12u);
  EXPECT_EQ(d.differing, 1u);
  EXPECT_EQ(d.first_index, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(d.first_a, static_cast<double>(before));
  EXPECT_EQ(d.first_b, static_cast<double>(values[7]));
  EXPECT_EQ(d.max_ulp, 3u);
  EXPECT_EQ(d.max_abs, static_cast<double>(values[7]) - static_cast<double>(before));
  EXPECT_DOUBLE_EQ(d.max_rel, d.max_abs / static_cast<double>(values[7]));
  EXPECT_EQ(d.nan_mismatch, 0u);
}

TEST(CompareNpy, CountsSignedZerosAndNansAsDiffering) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double other_nan = std::bit_cast<double>(std::bit_cast<uint64_t>(nan) | 1);
  const std::vector<double> a = {0.0, nan, nan, 1.0};
  const std::vector<double> b = {-0.0, other_nan, 2.0, 1.0};
  const std::string path_a = dir.write("a.npy", npy_bytes(dict("<f8", "(4,)"), raw(a)));
  const std::string path_b = dir.write("b.npy", npy_bytes(dict("<f8", "(4,)"), raw(b)));

  const auto diff = compare_npy(path_a, path_b);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_TRUE(diff->has_value());
  EXPECT_EQ((*diff)->differing, 3u);
  EXPECT_EQ((*diff)->nan_mismatch, 1u);
  EXPECT_EQ((*diff)->max_ulp, 0u);
  EXPECT_EQ((*diff)->max_abs, 0.0);
  EXPECT_EQ((*diff)->first_index, (std::vector<uint64_t>{0}));
}

TEST(CompareNpy, MeasuresInfinitiesAndExtremes) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const double inf = std::numeric_limits<double>::infinity();
  const double max = std::numeric_limits<double>::max();
  const std::string path_a =
      dir.write("a.npy", npy_bytes(dict("<f8", "(2,)"), raw(std::vector<double>{inf, max})));
  const std::string path_b =
      dir.write("b.npy", npy_bytes(dict("<f8", "(2,)"), raw(std::vector<double>{inf, -max})));

  const auto diff = compare_npy(path_a, path_b);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_TRUE(diff->has_value());
  EXPECT_EQ((*diff)->differing, 1u);
  EXPECT_TRUE(std::isinf((*diff)->max_abs));
  EXPECT_EQ((*diff)->max_rel, 2.0);
}

TEST(CompareNpy, ReadsUnalignedDataAcrossChunks) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // Past one 1 MiB read chunk, with the data at an odd file offset.
  std::vector<float> a(600000, 1.0f);
  std::vector<float> b = a;
  b[400000] = 2.0f;
  const std::string shape = "(600, 1000)";
  const std::string path_a = dir.write("a.npy", npy_bytes(dict("<f4", shape), raw(a), 1, false));
  const std::string path_b = dir.write("b.npy", npy_bytes(dict("<f4", shape), raw(b), 1, false));

  const Result<NpyHeader> header = read_npy_header(path_a);
  ASSERT_TRUE(header.ok()) << header.error().message;
  ASSERT_NE(header->data_offset % 4, 0u);

  const auto diff = compare_npy(path_a, path_b);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_TRUE(diff->has_value());
  EXPECT_EQ((*diff)->elements, 600000u);
  EXPECT_EQ((*diff)->differing, 1u);
  EXPECT_EQ((*diff)->first_index, (std::vector<uint64_t>{400, 0}));
  EXPECT_EQ((*diff)->max_abs, 1.0);
}

TEST(CompareNpy, LeavesIncomparablePairsAlone) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const auto write = [&](const std::string& name, const std::string& descr,
                         const std::string& shape, size_t bytes, bool fortran = false) {
    return dir.write(name, npy_bytes(dict(descr, shape, fortran), std::string(bytes, '\0')));
  };
  const std::string base = write("base.npy", "<f4", "(2, 2)", 16);
  const std::vector<std::string> others = {
      write("shape.npy", "<f4", "(4,)", 16),
      write("f8.npy", "<f8", "(2, 2)", 32),
      write("i4.npy", "<i4", "(2, 2)", 16),
      write("big.npy", ">f4", "(2, 2)", 16),
      write("fortran.npy", "<f4", "(2, 2)", 16, true),
  };
  for (const std::string& other : others) {
    const auto diff = compare_npy(base, other);
    ASSERT_TRUE(diff.ok()) << diff.error().message;
    EXPECT_FALSE(diff->has_value()) << other;
  }

  const std::string ints = write("i8.npy", "<i8", "(2,)", 16);
  const auto diff = compare_npy(ints, ints);
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  EXPECT_FALSE(diff->has_value());
}

TEST(CompareNpy, NamesTheMalformedFile) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::vector<float> values = {1, 2, 3};
  ASSERT_TRUE(write_npy_f32(dir.file("good.npy"), values.data(), {3}).ok());
  const std::string bad =
      dir.write("bad.npy", npy_bytes(dict("<f4", "(100,)"), std::string(128, 'x')));

  const auto diff = compare_npy(dir.file("good.npy"), bad);
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.error().message, bad + ": header says 400 bytes of data, file has 128");

  const auto missing = compare_npy(dir.file("missing.npy"), dir.file("good.npy"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            dir.file("missing.npy") + ": cannot open: No such file or directory");
}

}  // namespace
}  // namespace memdet::compare

namespace memdet::compare {
namespace {

// The comparison takes blocks of finite values through a vectorised path and
// anything holding a NaN or an infinity element by element; both must agree
// with a plain reference computed here, wherever the special values fall.
TEST(CompareNpy, BlockPathsAgreeWithAPlainReference) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const uint64_t count = 5000;
  std::vector<float> a(count);
  std::vector<float> b(count);
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (uint64_t i = 0; i < count; ++i) {
    a[i] = static_cast<float>(next() % 20000) / 1000.0f - 10.0f;
    b[i] = a[i];
    if (next() % 3 == 0) {
      b[i] = std::nextafter(a[i], next() % 2 ? 100.0f : -100.0f);
    }
    if (i % 1700 == 5) {
      b[i] = -a[i];
    }
  }
  a[2100] = std::numeric_limits<float>::quiet_NaN();
  b[3500] = std::numeric_limits<float>::infinity();

  uint64_t differing = 0;
  uint64_t max_ulp = 0;
  double max_abs = 0;
  uint64_t first = count;
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t bits_a = 0;
    uint32_t bits_b = 0;
    std::memcpy(&bits_a, &a[i], 4);
    std::memcpy(&bits_b, &b[i], 4);
    if (bits_a == bits_b) continue;
    ++differing;
    first = std::min(first, i);
    if (std::isnan(a[i]) || std::isnan(b[i]) || std::isinf(a[i]) || std::isinf(b[i])) continue;
    max_ulp = std::max(max_ulp, ulp_distance(a[i], b[i]));
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  }

  ASSERT_TRUE(write_npy_f32(dir.file("a.npy"), a.data(), {count}).ok());
  ASSERT_TRUE(write_npy_f32(dir.file("b.npy"), b.data(), {count}).ok());
  auto diff = compare_npy(dir.file("a.npy"), dir.file("b.npy"));
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_TRUE(diff->has_value());
  const NumericDiff& got = **diff;
  EXPECT_EQ(got.elements, count);
  EXPECT_EQ(got.differing, differing);
  EXPECT_EQ(got.max_ulp, max_ulp);
  EXPECT_DOUBLE_EQ(got.max_abs, std::numeric_limits<double>::infinity());
  EXPECT_EQ(got.nan_mismatch, 1u);
  ASSERT_EQ(got.first_index.size(), 1u);
  EXPECT_EQ(got.first_index[0], first);

  // Without the infinity, the largest finite difference is the maximum.
  b[3500] = a[3500];
  ASSERT_TRUE(write_npy_f32(dir.file("b.npy"), b.data(), {count}).ok());
  diff = compare_npy(dir.file("a.npy"), dir.file("b.npy"));
  ASSERT_TRUE(diff.ok() && diff->has_value());
  EXPECT_DOUBLE_EQ((*diff)->max_abs, max_abs);
}

}  // namespace
}  // namespace memdet::compare
