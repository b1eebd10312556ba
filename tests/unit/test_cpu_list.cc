#include "launch/cpu_list.h"

#include <gtest/gtest.h>

namespace memdet::launch {
namespace {

TEST(CpuList, ParsesSinglesAndRanges) {
  auto cpus = parse_cpu_list("0-3,8");
  ASSERT_TRUE(cpus.ok());
  EXPECT_EQ(*cpus, (CpuSet{0, 1, 2, 3, 8}));
}

TEST(CpuList, IgnoresTheNewlineProcLeaves) {
  auto cpus = parse_cpu_list("0-1\n");
  ASSERT_TRUE(cpus.ok());
  EXPECT_EQ(*cpus, (CpuSet{0, 1}));
}

TEST(CpuList, RejectsMalformedLists) {
  for (const char* bad :
       {"", " ", "a", "1,", ",1", "3-1", "1-", "-1", "1--2", "0x1", "1 2", "99999", "1,,2"}) {
    auto cpus = parse_cpu_list(bad);
    EXPECT_FALSE(cpus.ok()) << "accepted '" << bad << "'";
    if (!cpus.ok()) {
      EXPECT_NE(cpus.error().message.find("CPU list"), std::string::npos);
    }
  }
}

TEST(CpuList, FormatsShortestForm) {
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 8}), "0-3,8");
  EXPECT_EQ(format_cpu_list({5}), "5");
  EXPECT_EQ(format_cpu_list({1, 3, 4}), "1,3-4");
}

TEST(CpuList, RoundTrips) {
  for (const char* text : {"0", "0-7", "1,3,5-9,12"}) {
    auto cpus = parse_cpu_list(text);
    ASSERT_TRUE(cpus.ok());
    EXPECT_EQ(format_cpu_list(*cpus), text);
  }
}

}  // namespace
}  // namespace memdet::launch
