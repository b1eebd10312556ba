#include "compare/safetensors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "scratch.h"

namespace memdet::compare {
namespace {

using testing_support::Scratch;

// A safetensors file: the header's length in 8 little-endian bytes, the
// header, the data.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string file;
  for (int i = 0; i < 8; ++i) file += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return file + header + data;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string bytes;
  for (float value : values) {
    char raw[4];
    std::memcpy(raw, &value, 4);
    bytes.append(raw, 4);
  }
  return bytes;
}

// The error open_safetensors gives for a file of these bytes, or "" when
// it opens.
std::string open_error(const Scratch& scratch, const std::string& bytes) {
  const std::string path = scratch.write("model.safetensors", bytes);
  auto opened = open_safetensors(path);
  if (opened) return "";
  const std::string& message = opened.error().message;
  EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
  return message;
}

TEST(Safetensors, ReadsEntriesInOffsetOrderWithTheirData) {
  Scratch scratch;
  const std::string header = R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
                             R"("a":{"dtype":"I8","shape":[2,2],"data_offsets":[12,16]},)"
                             R"("s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                             R"("z":{"dtype":"BF16","shape":[0,3],"data_offsets":[16,16]},)"
                             R"("__metadata__":{"format":"pt"}})";
  const std::string data = f32_bytes({7.0f, 1.0f, 2.0f}) + std::string("\x01\x02\x03\x04", 4);
  const std::string path = scratch.write("m.safetensors", safetensors_bytes(header, data));

  auto opened = open_safetensors(path);
  ASSERT_TRUE(opened) << opened.error().message;
  const auto& entries = opened->contents.entries;
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "s");
  EXPECT_TRUE(entries[0].layout.shape.empty());
  EXPECT_EQ(entries[0].layout.elements, 1u);
  EXPECT_EQ(entries[1].name, "b");
  EXPECT_EQ(entries[1].layout.dtype, DType::kF32);
  EXPECT_EQ(entries[2].name, "a");
  EXPECT_EQ(entries[2].layout.dtype, DType::kI8);
  EXPECT_EQ(entries[2].layout.shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(entries[3].name, "z");
  EXPECT_EQ(entries[3].layout.elements, 0u);
  EXPECT_EQ(opened->data(entries[1]), f32_bytes({1.0f, 2.0f}));
  EXPECT_EQ(opened->data(entries[2]), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(opened->contents.metadata.at("format"), "pt");
}

TEST(Safetensors, ReadsEveryDtypeItLists) {
  const std::pair<const char*, size_t> dtypes[] = {
      {"BOOL", 1},        {"U8", 1},      {"U16", 2},         {"U32", 4},     {"U64", 8},
      {"I8", 1},          {"I16", 2},     {"I32", 4},         {"I64", 8},     {"F16", 2},
      {"BF16", 2},        {"F32", 4},     {"F64", 8},         {"C64", 8},     {"F8_E4M3", 1},
      {"F8_E4M3FNUZ", 1}, {"F8_E5M2", 1}, {"F8_E5M2FNUZ", 1}, {"F8_E8M0", 1},
  };
  for (const auto& [name, size] : dtypes) {
    const std::string header = std::string(R"({"t":{"dtype":")") + name +
                               R"(","shape":[3],"data_offsets":[0,)" + std::to_string(3 * size) +
                               "]}}";
    auto parsed = parse_safetensors(safetensors_bytes(header, std::string(3 * size, '\0')));
    ASSERT_TRUE(parsed) << name << ": " << parsed.error().message;
    EXPECT_EQ(safetensors_dtype_name(parsed->entries[0].layout.dtype), name);
    EXPECT_EQ(dtype_size(parsed->entries[0].layout.dtype), size) << name;
  }
}

TEST(Safetensors, AcceptsWhitespaceAroundTheHeaderAndZeroSizeTensorsSharingAnOffset) {
  const std::string header =
      "  \n{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"f\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
      "\"g\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}    ";
  auto parsed = parse_safetensors(safetensors_bytes(header, "x"));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->entries.size(), 3u);
  EXPECT_EQ(parsed->entries[2].name, "g");
}

TEST(Safetensors, EmptyHeaderObjectWithNoData) {
  auto parsed = parse_safetensors(safetensors_bytes("{}", ""));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_TRUE(parsed->entries.empty());
}

TEST(Safetensors, RefusesAHeaderLengthOverTheLimitWithoutReadingIt) {
  Scratch scratch;
  std::string bytes(8, '\0');
  const uint64_t length = 100'000'001;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  bytes += "{}";
  EXPECT_NE(open_error(scratch, bytes).find("header length 100000001 is over the format's limit"),
            std::string::npos);

  std::string huge(8, '\xff');
  EXPECT_NE(open_error(scratch, huge).find("is over the format's limit"), std::string::npos);
}

TEST(Safetensors, RefusesTruncatedFiles) {
  Scratch scratch;
  EXPECT_NE(open_error(scratch, std::string("\x05\x00\x00", 3)).find("truncated: 3 bytes"),
            std::string::npos);
  const std::string full =
      safetensors_bytes(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "x");
  EXPECT_NE(
      open_error(scratch, full.substr(0, 20)).find("runs past the end of the file (20 bytes)"),
      std::string::npos);
  EXPECT_NE(open_error(scratch, full.substr(0, full.size() - 1))
                .find("tensor 't' ends at byte 1, past the end of the data (0 bytes)"),
            std::string::npos);
}

TEST(Safetensors, RefusesOverlapsHolesAndTrailingBytes) {
  Scratch scratch;
  const std::string overlap = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                              R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})";
  EXPECT_NE(
      open_error(scratch, safetensors_bytes(overlap, "abcd")).find("tensors 'a' and 'b' overlap"),
      std::string::npos);

  const std::string hole = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                           R"("b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(hole, "abcd"))
                .find("hole of 1 bytes before tensor 'b'"),
            std::string::npos);

  const std::string late_start = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(late_start, "abcd")).find("hole of 2 bytes"),
            std::string::npos);

  const std::string trailing = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(trailing, "abcd"))
                .find("2 trailing bytes after the last tensor"),
            std::string::npos);

  const std::string past = R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(past, "abcd")).find("past the end of the data"),
            std::string::npos);
}

TEST(Safetensors, RefusesDuplicateKeysAtAnyLevel) {
  Scratch scratch;
  const std::string top = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                          R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_NE(
      open_error(scratch, safetensors_bytes(top, "x")).find("duplicate key 'a' in the header"),
      std::string::npos);
  const std::string inner = R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(inner, "x")).find("duplicate key 'dtype'"),
            std::string::npos);
  const std::string metadata = R"({"__metadata__":{"k":"1","k":"2"}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(metadata, "")).find("duplicate key 'k'"),
            std::string::npos);
}

TEST(Safetensors, RefusesBadAndSubByteDtypesByName) {
  Scratch scratch;
  const std::string f4 = R"({"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})";
  EXPECT_NE(
      open_error(scratch, safetensors_bytes(f4, "x")).find("dtype F4 packs elements below a byte"),
      std::string::npos);
  const std::string f6 = R"({"a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(f6, "xyz")).find("dtype F6_E2M3"),
            std::string::npos);
  const std::string unknown = R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_NE(
      open_error(scratch, safetensors_bytes(unknown, "x")).find("tensor 'a': unknown dtype 'Q7'"),
      std::string::npos);
}

TEST(Safetensors, RefusesElementCountsThatOverflowAndSizesThatDisagree) {
  Scratch scratch;
  const std::string overflow =
      R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(overflow, ""))
                .find("more elements than fit in 64 bits"),
            std::string::npos);
  const std::string bytes_overflow =
      R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(bytes_overflow, ""))
                .find("more bytes than fit in 64 bits"),
            std::string::npos);
  const std::string wrong_size = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(wrong_size, "abcd"))
                .find("hold 4 bytes, but shape (2,) of F32 needs 8"),
            std::string::npos);
  const std::string negative = R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(negative, "")).find("dimension -1 is not"),
            std::string::npos);
  const std::string reversed = R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(reversed, "x")).find("end before they begin"),
            std::string::npos);
}

TEST(Safetensors, RefusesNumbersTooLargeForJsonToHold) {
  Scratch scratch;
  const std::string huge = R"({"a":{"dtype":"U8","shape":[1e400],"data_offsets":[0,0]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(huge, "")).find("header is not valid JSON"),
            std::string::npos);
  const std::string big =
      R"({"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,0]}})";
  EXPECT_NE(open_error(scratch, safetensors_bytes(big, "")).find("is not a non-negative integer"),
            std::string::npos);
}

TEST(Safetensors, RefusesMetadataThatIsNotStrings) {
  Scratch scratch;
  EXPECT_NE(open_error(scratch, safetensors_bytes(R"({"__metadata__":{"step":3}})", ""))
                .find("__metadata__ value of 'step' is not a string"),
            std::string::npos);
  EXPECT_NE(open_error(scratch, safetensors_bytes(R"({"__metadata__":["x"]})", ""))
                .find("__metadata__ is not an object"),
            std::string::npos);
}

TEST(Safetensors, RefusesHeadersThatAreNotTheFormatsJson) {
  Scratch scratch;
  EXPECT_NE(open_error(scratch, safetensors_bytes("{\"a\":", "")).find("header is not valid JSON"),
            std::string::npos);
  EXPECT_NE(open_error(scratch, safetensors_bytes("[1]", "")).find("header is not a JSON object"),
            std::string::npos);
  EXPECT_NE(
      open_error(scratch, safetensors_bytes(
                              R"({"a":{"dtype":"U8","shape":[[1]],"data_offsets":[0,1]}})", "x"))
          .find("nests deeper"),
      std::string::npos);
  EXPECT_NE(open_error(scratch,
                       safetensors_bytes(
                           R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})", "x"))
                .find("unexpected key 'x'"),
            std::string::npos);
  EXPECT_NE(open_error(scratch, safetensors_bytes(R"({"a":{"dtype":"U8","shape":[1]}})", "x"))
                .find("no 'data_offsets'"),
            std::string::npos);
  EXPECT_NE(
      open_error(scratch, safetensors_bytes("{\"a\xff\":1}", "")).find("header is not valid JSON"),
      std::string::npos);
}

}  // namespace
}  // namespace memdet::compare
