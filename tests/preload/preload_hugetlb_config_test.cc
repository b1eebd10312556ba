// The hugetlb values of the hugepages= key: each names its pool's page size.
#include <gtest/gtest.h>

#include <string>

#include "preload/config.h"

namespace memdet::preload {
namespace {

ParseOutcome parse(const char* text, Config& config, std::string& error) {
  char buffer[256] = {};
  ParseOutcome outcome = parse_config(text, config, buffer, sizeof buffer);
  error = buffer;
  return outcome;
}

TEST(PreloadHugetlbConfig, EachValueNamesItsPageSize) {
  std::string error;
  static Config two;
  ASSERT_EQ(parse("hugepages=hugetlb-2M", two, error), ParseOutcome::kActive) << error;
  EXPECT_EQ(two.hugepages, Hugepages::kHugetlb);
  EXPECT_EQ(two.hugetlb_shift, 21u);

  static Config one;
  ASSERT_EQ(parse("hugepages=hugetlb-1G;heap=16", one, error), ParseOutcome::kActive) << error;
  EXPECT_EQ(one.hugepages, Hugepages::kHugetlb);
  EXPECT_EQ(one.hugetlb_shift, 30u);
  EXPECT_EQ(one.heap_class, 16);
}

TEST(PreloadHugetlbConfig, OtherSizesAndPoolCountsAreRefused) {
  for (const char* text : {"hugepages=hugetlb-4M", "hugepages=hugetlb-2M:8", "hugepages=hugetlb",
                           "hugepages=hugetlb-2m"}) {
    static Config config;
    config = Config();
    std::string error;
    EXPECT_EQ(parse(text, config, error), ParseOutcome::kError) << text;
    EXPECT_EQ(
        error.rfind("memdet preload: hugepages needs huge, small, hugetlb-2M or hugetlb-1G: ", 0),
        0u)
        << error;
    EXPECT_EQ(config.hugetlb_shift, 0u) << text;
  }
}

}  // namespace
}  // namespace memdet::preload
