#include "compare/digest.h"

#include <gtest/gtest.h>

#include <string>

#include "scratch.h"

namespace memdet::compare {
namespace {

using testing_support::Scratch;

std::string pattern_bytes(size_t size) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<char>((i * 131 + i / 4096) & 0xFF);
  }
  return bytes;
}

// The file is read through a buffer sized from the file, so sizes around
// the buffer's bounds must hash exactly as the bytes do in one piece.
TEST(DigestFile, MatchesTheBytesAtEverySizeAroundTheBufferBounds) {
  Scratch scratch;
  for (size_t size :
       {0UL, 1UL, 4095UL, 4096UL, 4097UL, (1UL << 20) - 1, 1UL << 20, (1UL << 20) + 1, 3UL << 20}) {
    std::string bytes = pattern_bytes(size);
    std::string path = scratch.write("data-" + std::to_string(size), bytes);
    auto digest = digest_file(path);
    ASSERT_TRUE(digest) << digest.error().message;
    EXPECT_EQ(*digest, digest_bytes(bytes)) << size << " bytes";
  }
}

TEST(DigestFile, DiffersWhenOneByteDiffers) {
  Scratch scratch;
  std::string bytes = pattern_bytes(5000);
  std::string first = scratch.write("first", bytes);
  bytes[4999] = static_cast<char>(bytes[4999] ^ 1);
  std::string second = scratch.write("second", bytes);
  EXPECT_NE(*digest_file(first), *digest_file(second));
}

TEST(DigestFile, RefusesWhatIsNotARegularFile) {
  Scratch scratch;
  auto digest = digest_file(scratch.path());
  ASSERT_FALSE(digest);
  EXPECT_NE(digest.error().message.find("not a regular file"), std::string::npos);
  EXPECT_FALSE(digest_file(scratch.path() + "/absent"));
}

}  // namespace
}  // namespace memdet::compare
