#include "workloads/labelled.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "scratch.h"

namespace memdet::workloads {
namespace {

// The same values copied to data + offset / sizeof(float), where data is
// 64-byte aligned.
struct OffsetBuffer {
  explicit OffsetBuffer(const std::vector<float>& values, size_t offset)
      : storage(values.size() + 32) {
    auto address = reinterpret_cast<uintptr_t>(storage.data());
    const size_t skip = ((64 - address % 64) % 64 + offset) / sizeof(float);
    data = storage.data() + skip;
    for (size_t i = 0; i < values.size(); ++i) data[i] = values[i];
  }
  std::vector<float> storage;
  float* data;
};

TEST(Labelled, HeapSumFollowsTheOffsetMod64) {
  const std::vector<float> values = labelled_values(4099);
  std::set<float> sums;
  for (size_t offset : {0, 16, 32, 48}) {
    OffsetBuffer buffer(values, offset);
    ASSERT_EQ(reinterpret_cast<uintptr_t>(buffer.data) % 64, offset);
    sums.insert(offset_grouped_sum(buffer.data, values.size()));
  }
  EXPECT_EQ(sums.size(), 4u) << "every offset class must give its own sum";
}

TEST(Labelled, HeapSumRepeatsAtOneOffset) {
  const std::vector<float> values = labelled_values(4099);
  OffsetBuffer first(values, 16);
  OffsetBuffer second(values, 16);
  EXPECT_EQ(offset_grouped_sum(first.data, values.size()),
            offset_grouped_sum(second.data, values.size()));
}

TEST(Labelled, HeapSumOfShortInputs) {
  const std::vector<float> values = {1.0f, 2.0f, 3.0f};
  OffsetBuffer buffer(values, 48);
  EXPECT_EQ(offset_grouped_sum(buffer.data, 3), 6.0f);
  EXPECT_EQ(offset_grouped_sum(buffer.data, 0), 0.0f);
}

TEST(Labelled, PartitionedSumFollowsThePartCount) {
  const std::vector<float> values = labelled_values(10007);
  const float one = partitioned_sum(values.data(), values.size(), 1).value();
  const float two = partitioned_sum(values.data(), values.size(), 2).value();
  const float three = partitioned_sum(values.data(), values.size(), 3).value();
  EXPECT_NE(one, two);
  EXPECT_NE(two, three);
  EXPECT_EQ(two, partitioned_sum(values.data(), values.size(), 2).value());
}

TEST(Labelled, ThreadCountReadsOmpNumThreadsFirst) {
  EXPECT_EQ(thread_count(nullptr, 2), 2);
  EXPECT_EQ(thread_count("1", 2), 1);
  EXPECT_EQ(thread_count("02", 2), 2) << "the threads factor pads with zeros";
  EXPECT_EQ(thread_count("4,2", 2), 4) << "a nested list: the outer count";
  EXPECT_EQ(thread_count("", 3), 3);
  EXPECT_EQ(thread_count("0", 3), 3);
  EXPECT_EQ(thread_count("many", 3), 3);
  EXPECT_EQ(thread_count("100000", 3), 256);
  EXPECT_EQ(thread_count(nullptr, 0), 1);
}

TEST(Labelled, CauseNamesRoundTrip) {
  for (Cause cause : kCauses) {
    ASSERT_TRUE(parse_cause(cause_name(cause)).has_value()) << cause_name(cause);
    EXPECT_EQ(*parse_cause(cause_name(cause)), cause);
  }
  EXPECT_FALSE(parse_cause("stack").has_value());
}

// Runs `cause` into a fresh folder and returns its result.txt.
std::string run_into(const testing_support::Scratch& scratch, Cause cause, const char* name) {
  const Status status = run_labelled(cause, scratch.path() + "/" + name);
  EXPECT_TRUE(status.ok()) << status.error().message;
  return scratch.read(std::string(name) + "/result.txt");
}

// In one process the executable stays where it is and the thread count is
// the same, so these repeat. The heap and allocator workloads need not:
// their second call gets blocks the first one freed.
TEST(Labelled, WorkloadsRepeatInOneProcess) {
  testing_support::Scratch scratch;
  for (Cause cause : {Cause::aslr, Cause::threads, Cause::fileorder, Cause::none}) {
    const std::string first = run_into(scratch, cause, "first");
    const std::string second = run_into(scratch, cause, "second");
    EXPECT_EQ(first, second) << cause_name(cause);
    EXPECT_EQ(first.rfind("sum ", 0), 0u) << cause_name(cause) << ": " << first;
  }
}

// Unseeded, the entropy and clock workloads take a new order in nearly
// every call.
TEST(Labelled, UnseededWorkloadsDifferBetweenCalls) {
  testing_support::Scratch scratch;
  for (Cause cause : {Cause::entropy, Cause::clock}) {
    std::set<std::string> results;
    for (int i = 0; i < 4; ++i) {
      results.insert(run_into(scratch, cause, "call"));
    }
    EXPECT_GE(results.size(), 3u) << cause_name(cause);
  }
}

TEST(Labelled, ResultIsPrintedExactly) {
  testing_support::Scratch scratch;
  const std::string text = run_into(scratch, Cause::none, "none");
  ASSERT_EQ(text.back(), '\n');
  const float value = std::stof(text.substr(4));
  char printed[64];
  std::snprintf(printed, sizeof printed, "sum %.9g\n", static_cast<double>(value));
  EXPECT_EQ(text, printed);
}

TEST(Labelled, UnwritableOutputIsAnError) {
  EXPECT_FALSE(run_labelled(Cause::none, "/proc/self/memdet-labelled").ok());
  EXPECT_FALSE(run_labelled(Cause::none, "").ok());
}

}  // namespace
}  // namespace memdet::workloads
