#include <gtest/gtest.h>

#include <string>

#include "preload/config.h"
#include "preload/ordinal.h"

namespace memdet::preload {
namespace {

struct Parsed {
  ParseOutcome outcome;
  std::string error;
};

Parsed parse(const char* text, Config& config) {
  char error[256] = {};
  ParseOutcome outcome = parse_config(text, config, error, sizeof error);
  return {outcome, error};
}

TEST(PreloadConfig, AbsentOrBlankIsPassive) {
  Config config;
  EXPECT_EQ(parse(nullptr, config).outcome, ParseOutcome::kPassive);
  Config blank;
  EXPECT_EQ(parse("", blank).outcome, ParseOutcome::kPassive);
  Config spaces;
  EXPECT_EQ(parse("        ", spaces).outcome, ParseOutcome::kPassive);
}

TEST(PreloadConfig, ReadsEveryKeyAndIgnoresPadding) {
  Config config;
  Parsed parsed = parse(
      "report=/tmp/r;seed=DeadBeef;heap=32;heap_random=1;uninit=165;hugepages=small;mlock=1;"
      "cpus=3,1,2;free_cpus=0-3;trace_threads=1;     ",
      config);
  ASSERT_EQ(parsed.outcome, ParseOutcome::kActive) << parsed.error;
  EXPECT_STREQ(config.report_prefix, "/tmp/r");
  EXPECT_EQ(config.seed, 0xdeadbeefULL);
  EXPECT_EQ(config.heap_class, 32);
  EXPECT_TRUE(config.heap_random);
  EXPECT_EQ(config.uninit, 165);
  EXPECT_EQ(config.hugepages, Hugepages::kSmall);
  EXPECT_TRUE(config.mlock);
  ASSERT_EQ(config.pin_cpu_count, 3u);
  EXPECT_EQ(config.pin_cpus[0], 3);
  EXPECT_EQ(config.pin_cpus[1], 1);
  EXPECT_EQ(config.pin_cpus[2], 2);
  EXPECT_TRUE(config.has_free_cpus);
  EXPECT_EQ(CPU_COUNT(&config.free_cpus), 4);
  EXPECT_TRUE(config.trace_threads);
  EXPECT_TRUE(config.shapes_heap());
  EXPECT_TRUE(config.wraps_threads());
}

TEST(PreloadConfig, OnlyAReportIsActiveButShapesNothing) {
  Config config;
  ASSERT_EQ(parse("report=/x/y", config).outcome, ParseOutcome::kActive);
  EXPECT_FALSE(config.shapes_heap());
  EXPECT_FALSE(config.wraps_threads());
  EXPECT_EQ(config.heap_class, -1);
  EXPECT_EQ(config.uninit, -1);
}

TEST(PreloadConfig, CpuRangesKeepTheirOrder) {
  Config config;
  ASSERT_EQ(parse("cpus=4-6,0", config).outcome, ParseOutcome::kActive);
  ASSERT_EQ(config.pin_cpu_count, 4u);
  EXPECT_EQ(config.pin_cpus[0], 4);
  EXPECT_EQ(config.pin_cpus[2], 6);
  EXPECT_EQ(config.pin_cpus[3], 0);
}

TEST(PreloadConfig, UnknownKeyNamesTheKey) {
  Config config;
  Parsed parsed = parse("heap=16;bogus=1", config);
  EXPECT_EQ(parsed.outcome, ParseOutcome::kError);
  EXPECT_EQ(parsed.error, "memdet preload: unknown key bogus");
}

TEST(PreloadConfig, RejectsBadValues) {
  for (const char* text :
       {"heap=8", "heap=64", "heap=", "uninit=256", "seed=12345678901234567", "seed=xyz",
        "hugepages=medium", "mlock=yes", "cpus=", "cpus=3-1", "cpus=1,,2", "free_cpus=99999",
        "report=relative/path", "heap_random=2"}) {
    Config config;
    Parsed parsed = parse(text, config);
    EXPECT_EQ(parsed.outcome, ParseOutcome::kError) << text;
    EXPECT_EQ(parsed.error.rfind("memdet preload: ", 0), 0u) << parsed.error;
  }
}

TEST(PreloadOrdinal, SlotsFollowTheContract) {
  // Main thread's children: 0, 1, 2, 0 with three CPUs.
  EXPECT_EQ(child_slot(-1, 1, 3), 0u);
  EXPECT_EQ(child_slot(-1, 2, 3), 1u);
  EXPECT_EQ(child_slot(-1, 3, 3), 2u);
  EXPECT_EQ(child_slot(-1, 4, 3), 0u);
  // "0.2" sits in slot 1; its first child goes to slot 2, its third to 1.
  EXPECT_EQ(child_slot(1, 1, 3), 2u);
  EXPECT_EQ(child_slot(1, 3, 3), 1u);
}

TEST(PreloadOrdinal, PathsAndCuts) {
  char out[kOrdinalSize];
  child_ordinal("0", 1, out);
  EXPECT_STREQ(out, "0.1");
  child_ordinal("0.1", 12, out);
  EXPECT_STREQ(out, "0.1.12");

  std::string deep = "0";
  while (deep.size() + 3 < kOrdinalSize) {
    deep += ".1";
  }
  child_ordinal(deep.c_str(), 100, out);
  EXPECT_EQ(out[std::string(out).size() - 1], '+');
  char deeper[kOrdinalSize];
  child_ordinal(out, 1, deeper);
  EXPECT_STREQ(deeper, out);

  EXPECT_NE(child_ordinal_hash(kMainOrdinalHash, 1), child_ordinal_hash(kMainOrdinalHash, 2));
}

}  // namespace
}  // namespace memdet::preload
