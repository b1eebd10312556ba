#include "compare/npy.h"
#include "compare/ulp.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
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
#include <type_traits>
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
      write("void.npy", "<V4", "(2, 2)", 16),
      write("fortran.npy", "<f4", "(2, 2)", 16, true),
  };
  for (const std::string& other : others) {
    const auto diff = compare_npy(base, other);
    ASSERT_TRUE(diff.ok()) << diff.error().message;
    EXPECT_FALSE(diff->has_value()) << other;
  }

  const std::vector<std::string> unsupported = {
      write("c8.npy", "<c8", "(2,)", 16),   write("f16.npy", "<f16", "(1,)", 16),
      write("text.npy", "<U2", "(2,)", 16), write("time.npy", "<M8[ns]", "(2,)", 16),
      write("void2.npy", "|V2", "(2,)", 4),
  };
  for (const std::string& file : unsupported) {
    const auto diff = compare_npy(file, file);
    ASSERT_TRUE(diff.ok()) << diff.error().message;
    EXPECT_FALSE(diff->has_value()) << file;
  }
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

namespace memdet::compare {
namespace {

// Bit patterns laid out in the given byte order, whatever the host's, the
// way a file written on that kind of machine holds them.
template <typename Bits>
std::string encode(const std::vector<Bits>& values, bool big_endian) {
  std::string bytes;
  for (Bits value : values) {
    for (size_t i = 0; i < sizeof(Bits); ++i) {
      const size_t shift = 8 * (big_endian ? sizeof(Bits) - 1 - i : i);
      bytes += static_cast<char>((static_cast<uint64_t>(value) >> shift) & 0xff);
    }
  }
  return bytes;
}

template <typename Float,
          typename Bits = std::conditional_t<sizeof(Float) == 4, uint32_t, uint64_t>>
std::vector<Bits> bits_of(const std::vector<Float>& values) {
  std::vector<Bits> bits;
  for (Float value : values) bits.push_back(std::bit_cast<Bits>(value));
  return bits;
}

constexpr bool kBig = true;
constexpr bool kLittle = false;

// The comparison of two files that must be compared as numbers.
NumericDiff numeric(const std::string& a, const std::string& b,
                    const CompareOptions& options = {}) {
  const auto diff = compare_npy(a, b, options);
  if (!diff.ok()) {
    ADD_FAILURE() << diff.error().message;
    return {};
  }
  if (!diff->has_value()) {
    ADD_FAILURE() << a << " and " << b << " were not compared as numbers";
    return {};
  }
  return **diff;
}

bool compared(const std::string& a, const std::string& b, const CompareOptions& options = {}) {
  const auto diff = compare_npy(a, b, options);
  EXPECT_TRUE(diff.ok()) << diff.error().message;
  return diff.ok() && diff->has_value();
}

TEST(CompareNpyLayouts, BigEndianFloat32EqualAndOneChanged) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // np.array([1, 2, 3, 4], '>f4').tobytes() starts 3f 80 00 00.
  const std::vector<float> values = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<float> changed = values;
  changed[2] = std::nextafter(3.0f, 4.0f);
  const std::string a =
      dir.write("a.npy", npy_bytes(dict(">f4", "(2, 2)"), encode(bits_of(values), kBig)));
  const std::string b =
      dir.write("b.npy", npy_bytes(dict(">f4", "(2, 2)"), encode(bits_of(values), kBig)));
  const std::string c =
      dir.write("c.npy", npy_bytes(dict(">f4", "(2, 2)"), encode(bits_of(changed), kBig)));
  ASSERT_EQ(slurp(a).substr(128, 4), std::string("\x3f\x80\x00\x00", 4));

  const NumericDiff same = numeric(a, b);
  EXPECT_EQ(same.dtype, "float32");
  EXPECT_EQ(same.elements, 4u);
  EXPECT_EQ(same.differing, 0u);

  const NumericDiff one = numeric(a, c);
  EXPECT_EQ(one.differing, 1u);
  EXPECT_EQ(one.first_index, (std::vector<uint64_t>{1, 0}));
  EXPECT_EQ(one.first_a, 3.0);
  EXPECT_EQ(one.first_b, static_cast<double>(changed[2]));
  EXPECT_EQ(one.max_ulp, 1u);
  EXPECT_TRUE(one.has_ulp);
  EXPECT_EQ(one.max_abs, static_cast<double>(changed[2]) - 3.0);
}

TEST(CompareNpyLayouts, BigEndianFloat64EqualAndOneChanged) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::vector<double> values = {0.5, -1.25, 1e300, 0.0, 7.0};
  std::vector<double> changed = values;
  changed[3] = -0.0;
  changed[4] = std::nextafter(7.0, 0.0);
  const std::string a =
      dir.write("a.npy", npy_bytes(dict(">f8", "(5,)"), encode(bits_of(values), kBig)));
  const std::string b =
      dir.write("b.npy", npy_bytes(dict(">f8", "(5,)"), encode(bits_of(values), kBig)));
  const std::string c =
      dir.write("c.npy", npy_bytes(dict(">f8", "(5,)"), encode(bits_of(changed), kBig)));

  EXPECT_EQ(numeric(a, b).differing, 0u);

  const NumericDiff d = numeric(a, c);
  EXPECT_EQ(d.dtype, "float64");
  EXPECT_EQ(d.differing, 2u);
  EXPECT_EQ(d.first_index, (std::vector<uint64_t>{3}));
  EXPECT_EQ(d.max_ulp, 1u);
  EXPECT_EQ(d.max_abs, 7.0 - changed[4]);
}

TEST(CompareNpyLayouts, ComparesAcrossByteOrders) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // Past one read chunk, so equal bytes must not be taken for equal values
  // in any chunk.
  std::vector<float> values(600000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 977) * 0.25f;
  std::vector<float> changed = values;
  changed[400001] += 1.0f;
  const std::string shape = "(600000,)";
  const std::string little =
      dir.write("little.npy", npy_bytes(dict("<f4", shape), encode(bits_of(values), kLittle)));
  const std::string big =
      dir.write("big.npy", npy_bytes(dict(">f4", shape), encode(bits_of(values), kBig)));
  const std::string big_changed =
      dir.write("big_changed.npy", npy_bytes(dict(">f4", shape), encode(bits_of(changed), kBig)));

  EXPECT_EQ(numeric(little, big).differing, 0u);
  EXPECT_EQ(numeric(big, little).differing, 0u);

  const NumericDiff d = numeric(little, big_changed);
  EXPECT_EQ(d.elements, 600000u);
  EXPECT_EQ(d.differing, 1u);
  EXPECT_EQ(d.first_index, (std::vector<uint64_t>{400001}));
  EXPECT_EQ(d.max_abs, 1.0);
  EXPECT_EQ(numeric(big, big_changed).first_index, (std::vector<uint64_t>{400001}));
}

TEST(CompareNpyLayouts, FortranOrderFirstIndexFollowsStorageOrder) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // Shape (2, 3) in Fortran order stores [0,0] [1,0] [0,1] [1,1] [0,2] [1,2].
  const std::vector<float> values = {0, 1, 2, 3, 4, 5};
  std::vector<float> changed = values;
  changed[3] = 30;  // [1, 1]
  changed[4] = 40;  // [0, 2], first in C order but not in this file's
  const std::string a =
      dir.write("a.npy", npy_bytes(dict("<f4", "(2, 3)", true), encode(bits_of(values), kLittle)));
  const std::string b =
      dir.write("b.npy", npy_bytes(dict("<f4", "(2, 3)", true), encode(bits_of(changed), kLittle)));

  const NumericDiff d = numeric(a, b);
  EXPECT_EQ(d.differing, 2u);
  EXPECT_EQ(d.first_index, (std::vector<uint64_t>{1, 1}));
  EXPECT_EQ(d.first_a, 3.0);
  EXPECT_EQ(d.first_b, 30.0);

  // In (2, 3, 4) Fortran order, storage offset p holds [p % 2, p / 2 % 3, p / 6].
  std::vector<double> cube(24, 1.0);
  const std::string c =
      dir.write("c.npy", npy_bytes(dict(">f8", "(2, 3, 4)", true), encode(bits_of(cube), kBig)));
  cube[17] = 2.0;
  const std::string e =
      dir.write("e.npy", npy_bytes(dict(">f8", "(2, 3, 4)", true), encode(bits_of(cube), kBig)));
  EXPECT_EQ(numeric(c, e).first_index, (std::vector<uint64_t>{1, 2, 2}));
}

TEST(CompareNpyLayouts, MixedOrdersOnlyWhereTheLayoutsCoincide) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string data = encode(bits_of(std::vector<float>{1, 2, 3, 4}), kLittle);
  const std::string c_square = dir.write("c22.npy", npy_bytes(dict("<f4", "(2, 2)"), data));
  const std::string f_square = dir.write("f22.npy", npy_bytes(dict("<f4", "(2, 2)", true), data));
  EXPECT_FALSE(compared(c_square, f_square));

  const std::string c_row = dir.write("c14.npy", npy_bytes(dict("<f4", "(1, 4, 1)"), data));
  const std::string f_row = dir.write("f14.npy", npy_bytes(dict("<f4", "(1, 4, 1)", true), data));
  EXPECT_EQ(numeric(c_row, f_row).differing, 0u);
}

TEST(UlpDistance16, Float16StepsInItsOwnFormat) {
  EXPECT_EQ(ulp_distance_f16(0x3c00, 0x3c01), 1u);  // 1.0 and the next half
  EXPECT_EQ(ulp_distance_f16(0x3c01, 0x3c00), 1u);
  EXPECT_EQ(ulp_distance_f16(0x0000, 0x8000), 0u);  // +0 and -0
  EXPECT_EQ(ulp_distance_f16(0x0001, 0x8001), 2u);  // smallest subnormals across zero
  EXPECT_EQ(ulp_distance_f16(0x3c00, 0xbc00), 2u * 0x3c00);
  EXPECT_EQ(ulp_distance_f16(0x7bff, 0x7c00), 1u);  // 65504 and infinity
  EXPECT_EQ(ulp_distance_f16(0x7e00, 0x7c01), 0u);  // two NaNs
  EXPECT_EQ(ulp_distance_f16(0x7e00, 0x3c00), std::numeric_limits<uint64_t>::max());
}

TEST(UlpDistance16, Bfloat16StepsInItsOwnFormat) {
  EXPECT_EQ(ulp_distance_bf16(0x3f80, 0x3f81), 1u);  // 1.0 and 1.0078125
  EXPECT_EQ(ulp_distance_bf16(0x0000, 0x8000), 0u);
  EXPECT_EQ(ulp_distance_bf16(0x0001, 0x8001), 2u);
  EXPECT_EQ(ulp_distance_bf16(0x7f7f, 0x7f80), 1u);  // largest finite and infinity
  // 0x7c00 is a large finite bfloat16, though it is infinity in float16.
  EXPECT_EQ(ulp_distance_bf16(0x7c00, 0x7c01), 1u);
  EXPECT_EQ(ulp_distance_bf16(0x7fc0, 0xffc1), 0u);
  EXPECT_EQ(ulp_distance_bf16(0x7fc0, 0x3f80), std::numeric_limits<uint64_t>::max());
}

TEST(UlpDistance16, WidensExactly) {
  EXPECT_EQ(f16_to_double(0x3c00), 1.0);
  EXPECT_EQ(f16_to_double(0xc000), -2.0);
  EXPECT_EQ(f16_to_double(0x3555), 0.333251953125);
  EXPECT_EQ(f16_to_double(0x7bff), 65504.0);
  EXPECT_EQ(f16_to_double(0x0001), std::ldexp(1.0, -24));
  EXPECT_EQ(f16_to_double(0x03ff), std::ldexp(1023.0, -24));
  EXPECT_EQ(f16_to_double(0x0400), std::ldexp(1.0, -14));
  EXPECT_TRUE(std::signbit(f16_to_double(0x8000)));
  EXPECT_EQ(f16_to_double(0x7c00), std::numeric_limits<double>::infinity());
  EXPECT_EQ(f16_to_double(0xfc00), -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_double(0x7e00)));

  EXPECT_EQ(bf16_to_double(0x3f80), 1.0);
  EXPECT_EQ(bf16_to_double(0x4049), 3.140625);
  EXPECT_EQ(bf16_to_double(0xc2f7), -123.5);
  EXPECT_TRUE(std::isnan(bf16_to_double(0x7fc0)));
}

TEST(CompareNpyLayouts, Float16InBothByteOrders) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // 1.0, 2.0, +0, 65504, -1.0: np.array([1, 2, 0, 65504, -1], '<f2').
  const std::vector<uint16_t> values = {0x3c00, 0x4000, 0x0000, 0x7bff, 0xbc00};
  const std::vector<uint16_t> changed = {0x3c00, 0x4001, 0x8000, 0x7bff, 0xbc00};
  for (bool big : {kLittle, kBig}) {
    const std::string descr = big ? ">f2" : "<f2";
    const std::string a = dir.write("a.npy", npy_bytes(dict(descr, "(5,)"), encode(values, big)));
    const std::string b = dir.write("b.npy", npy_bytes(dict(descr, "(5,)"), encode(changed, big)));

    const NumericDiff d = numeric(a, b);
    EXPECT_EQ(d.dtype, "float16") << descr;
    EXPECT_EQ(d.differing, 2u) << descr;
    EXPECT_EQ(d.first_index, (std::vector<uint64_t>{1})) << descr;
    EXPECT_EQ(d.first_a, 2.0) << descr;
    EXPECT_EQ(d.first_b, 2.001953125) << descr;
    EXPECT_EQ(d.max_ulp, 1u) << descr;
    EXPECT_EQ(d.max_abs, std::ldexp(1.0, -9)) << descr;
  }
}

TEST(CompareNpyLayouts, Float16SpecialValues) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // NaN against a number, two different NaNs, infinity against 65504.
  const std::vector<uint16_t> a_bits = {0x7e00, 0x7e00, 0x7c00, 0x3c00};
  const std::vector<uint16_t> b_bits = {0x3c00, 0x7e01, 0x7bff, 0x3c00};
  const std::string a = dir.write("a.npy", npy_bytes(dict("<f2", "(4,)"), encode(a_bits, kLittle)));
  const std::string b = dir.write("b.npy", npy_bytes(dict("<f2", "(4,)"), encode(b_bits, kLittle)));

  const NumericDiff d = numeric(a, b);
  EXPECT_EQ(d.differing, 3u);
  EXPECT_EQ(d.nan_mismatch, 1u);
  EXPECT_TRUE(std::isnan(d.first_a));
  EXPECT_EQ(d.max_ulp, 1u);
  EXPECT_TRUE(std::isinf(d.max_abs));
}

TEST(CompareNpyLayouts, Bfloat16AsWrittenByMlDtypes) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // np.save(np.array([1, 3.140625, -0.0], ml_dtypes.bfloat16)) writes '<V2'.
  const std::vector<uint16_t> values = {0x3f80, 0x4049, 0x8000};
  const std::vector<uint16_t> changed = {0x3f80, 0x404a, 0x0000};
  const CompareOptions bf16{RawDtype::kBF16};
  const std::string a = dir.write("a.npy", npy_bytes(dict("<V2", "(3,)"), encode(values, kLittle)));
  const std::string b =
      dir.write("b.npy", npy_bytes(dict("<V2", "(3,)"), encode(changed, kLittle)));

  // A two-byte void could be anything, so only the caller can say.
  EXPECT_FALSE(compared(a, b));
  EXPECT_FALSE(compared(a, b, CompareOptions{RawDtype::kF32}));

  const NumericDiff d = numeric(a, b, bf16);
  EXPECT_EQ(d.dtype, "bfloat16");
  EXPECT_EQ(d.differing, 2u);
  EXPECT_EQ(d.first_index, (std::vector<uint64_t>{1}));
  EXPECT_EQ(d.first_a, 3.140625);
  EXPECT_EQ(d.first_b, 3.15625);
  EXPECT_EQ(d.max_ulp, 1u);  // -0 against +0 adds nothing
  EXPECT_EQ(d.max_abs, 0.015625);

  // The descr 'bfloat16' needs no option; '|V2' and '>V2' take it.
  const std::string named =
      dir.write("named.npy", npy_bytes(dict("bfloat16", "(3,)"), encode(changed, kLittle)));
  const std::string plain =
      dir.write("plain.npy", npy_bytes(dict("|V2", "(3,)"), encode(values, kLittle)));
  const std::string big =
      dir.write("big.npy", npy_bytes(dict(">V2", "(3,)"), encode(values, kBig)));
  EXPECT_EQ(numeric(a, named, bf16).differing, 2u);
  EXPECT_FALSE(compared(plain, named));
  EXPECT_EQ(numeric(plain, named, bf16).max_ulp, 1u);
  EXPECT_EQ(numeric(a, big, bf16).differing, 0u);

  const Result<NpyHeader> header = read_npy_header(named);
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->item_size, 2u);
  EXPECT_EQ(header->data_bytes, 6u);
}

TEST(CompareNpyLayouts, ForcedDtypeLeavesTypedFilesAlone) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string data = encode(bits_of(std::vector<float>{1, 2}), kLittle);
  const std::string a = dir.write("a.npy", npy_bytes(dict("<f4", "(2,)"), data));
  const std::string v = dir.write("v.npy", npy_bytes(dict("<V4", "(2,)"), data));

  EXPECT_EQ(numeric(a, a, CompareOptions{RawDtype::kBF16}).dtype, "float32");
  EXPECT_EQ(numeric(a, v, CompareOptions{RawDtype::kF32}).differing, 0u);
  EXPECT_FALSE(compared(a, v, CompareOptions{RawDtype::kF64}));
}

// 5000 random float16 values with special values and neighbours mixed in:
// the block path and the element path must agree with a plain reference.
TEST(CompareNpyLayouts, Float16BlockPathsAgreeWithAPlainReference) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const uint64_t count = 5000;
  std::vector<uint16_t> a(count);
  std::vector<uint16_t> b(count);
  uint64_t state = 99;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (uint64_t i = 0; i < count; ++i) {
    // Finite patterns, far enough below infinity that a few steps up stay finite.
    a[i] = static_cast<uint16_t>(next() % 0x7b00 | (next() % 2 ? 0x8000 : 0));
    b[i] = a[i];
    if (next() % 4 == 0) b[i] = static_cast<uint16_t>(a[i] + 1 + next() % 3);
  }
  a[4100] = 0x7e00;
  b[4101] = 0xfc00;

  uint64_t differing = 0;
  uint64_t max_ulp = 0;
  double max_abs = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (a[i] == b[i]) continue;
    ++differing;
    if ((a[i] & 0x7fff) >= 0x7c00 || (b[i] & 0x7fff) >= 0x7c00) continue;
    max_ulp = std::max(max_ulp, ulp_distance_f16(a[i], b[i]));
    max_abs = std::max(max_abs, std::fabs(f16_to_double(a[i]) - f16_to_double(b[i])));
  }

  const std::string shape = "(" + std::to_string(count) + ",)";
  const std::string path_a = dir.write("a.npy", npy_bytes(dict("<f2", shape), encode(a, kLittle)));
  const std::string path_b = dir.write("b.npy", npy_bytes(dict(">f2", shape), encode(b, kBig)));
  const NumericDiff d = numeric(path_a, path_b);
  EXPECT_EQ(d.differing, differing);
  EXPECT_EQ(d.nan_mismatch, 1u);
  EXPECT_TRUE(std::isinf(d.max_abs));
  // The two special values sit in the last block; the others are finite.
  EXPECT_GE(d.max_ulp, max_ulp);

  b[4101] = a[4101];
  a[4100] = b[4100];
  const std::string path_c = dir.write("c.npy", npy_bytes(dict("<f2", shape), encode(a, kLittle)));
  const std::string path_d = dir.write("d.npy", npy_bytes(dict("<f2", shape), encode(b, kLittle)));
  uint64_t finite_differing = 0;
  for (uint64_t i = 0; i < count; ++i) finite_differing += a[i] != b[i];
  const NumericDiff finite = numeric(path_c, path_d);
  EXPECT_EQ(finite.differing, finite_differing);
  EXPECT_EQ(finite.max_ulp, max_ulp);
  EXPECT_EQ(finite.max_abs, max_abs);
  EXPECT_EQ(finite.nan_mismatch, 0u);
}

TEST(CompareNpyLayouts, IntegersCountDifferencesWithoutUlps) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::vector<uint32_t> values = {5, 0xfffffffe, 7, 100};  // 5, -2, 7, 100 as int32
  const std::vector<uint32_t> changed = {5, 3, 7, 90};
  for (bool big : {kLittle, kBig}) {
    const std::string descr = big ? ">i4" : "<i4";
    const std::string a = dir.write("a.npy", npy_bytes(dict(descr, "(2, 2)"), encode(values, big)));
    const std::string b =
        dir.write("b.npy", npy_bytes(dict(descr, "(2, 2)"), encode(changed, big)));

    const NumericDiff d = numeric(a, b);
    EXPECT_EQ(d.dtype, "int32") << descr;
    EXPECT_EQ(d.differing, 2u) << descr;
    EXPECT_EQ(d.first_index, (std::vector<uint64_t>{0, 1})) << descr;
    EXPECT_EQ(d.first_a, -2.0) << descr;
    EXPECT_EQ(d.first_b, 3.0) << descr;
    EXPECT_EQ(d.max_abs, 10.0) << descr;
    EXPECT_DOUBLE_EQ(d.max_rel, 5.0 / 3.0) << descr;
    EXPECT_FALSE(d.has_ulp) << descr;
    EXPECT_EQ(d.max_ulp, 0u) << descr;
  }

  // The same values as unsigned are another type.
  const std::string s = dir.write("s.npy", npy_bytes(dict("<i4", "(4,)"), encode(values, kLittle)));
  const std::string u = dir.write("u.npy", npy_bytes(dict("<u4", "(4,)"), encode(values, kLittle)));
  EXPECT_FALSE(compared(s, u));
  EXPECT_EQ(numeric(u, u).dtype, "uint32");
}

TEST(CompareNpyLayouts, IntegerExtremesDoNotOverflow) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const uint64_t min = uint64_t{1} << 63;  // INT64_MIN's pattern
  const std::string a = dir.write(
      "a.npy", npy_bytes(dict(">i8", "(2,)"), encode(std::vector<uint64_t>{min, 1}, kBig)));
  const std::string b = dir.write(
      "b.npy", npy_bytes(dict("<i8", "(2,)"), encode(std::vector<uint64_t>{min - 1, 1}, kLittle)));
  const NumericDiff d = numeric(a, b);
  EXPECT_EQ(d.dtype, "int64");
  EXPECT_EQ(d.differing, 1u);
  EXPECT_EQ(d.max_abs, 18446744073709551615.0);
  EXPECT_EQ(d.first_a, -9223372036854775808.0);

  const std::string c =
      dir.write("c.npy", npy_bytes(dict("<u8", "(1,)"), encode(std::vector<uint64_t>{0}, kLittle)));
  const std::string e = dir.write(
      "e.npy",
      npy_bytes(dict("<u8", "(1,)"), encode(std::vector<uint64_t>{~uint64_t{0}}, kLittle)));
  EXPECT_EQ(numeric(c, e).max_abs, 18446744073709551615.0);
  EXPECT_EQ(numeric(c, e).max_rel, 1.0);
}

TEST(CompareNpyLayouts, SmallIntegers) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string a = dir.write("a.npy", npy_bytes(dict("|i1", "(3,)"), "\x80\x01\x7f"));
  const std::string b = dir.write("b.npy", npy_bytes(dict("|i1", "(3,)"), "\x7f\x01\x7f"));
  const NumericDiff d = numeric(a, b);
  EXPECT_EQ(d.dtype, "int8");
  EXPECT_EQ(d.first_a, -128.0);
  EXPECT_EQ(d.max_abs, 255.0);

  const std::string c = dir.write("c.npy", npy_bytes(dict("|u1", "(3,)"), "\x80\x01\x7f"));
  const std::string e = dir.write("e.npy", npy_bytes(dict("|u1", "(3,)"), "\x7f\x01\x7f"));
  EXPECT_EQ(numeric(c, e).max_abs, 1.0);

  const std::string f = dir.write(
      "f.npy", npy_bytes(dict(">u2", "(2,)"), encode(std::vector<uint16_t>{1, 65535}, kBig)));
  const std::string g = dir.write(
      "g.npy", npy_bytes(dict("<u2", "(2,)"), encode(std::vector<uint16_t>{1, 0}, kLittle)));
  EXPECT_EQ(numeric(f, g).first_index, (std::vector<uint64_t>{1}));
  EXPECT_EQ(numeric(f, g).max_abs, 65535.0);
}

TEST(CompareNpyLayouts, BoolsCountFlippedValues) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  // Byte 2 is not what numpy writes, but it reads as True.
  const std::string a =
      dir.write("a.npy", npy_bytes(dict("|b1", "(2, 3)"), std::string("\0\1\1\0\1\1", 6)));
  const std::string b =
      dir.write("b.npy", npy_bytes(dict("|b1", "(2, 3)"), std::string("\0\1\0\1\2\1", 6)));

  const NumericDiff d = numeric(a, b);
  EXPECT_EQ(d.dtype, "bool");
  EXPECT_EQ(d.elements, 6u);
  EXPECT_EQ(d.differing, 3u);
  EXPECT_EQ(d.first_index, (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(d.first_a, 1.0);
  EXPECT_EQ(d.first_b, 0.0);
  EXPECT_EQ(d.max_abs, 1.0);
  EXPECT_FALSE(d.has_ulp);
}

TEST(CompareNpyLayouts, EmptyArraysAreEqual) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string a = dir.write("a.npy", npy_bytes(dict(">f2", "(0, 4)", true), ""));
  const NumericDiff d = numeric(a, a);
  EXPECT_EQ(d.elements, 0u);
  EXPECT_EQ(d.differing, 0u);
  EXPECT_TRUE(d.first_index.empty());
}

}  // namespace
}  // namespace memdet::compare
