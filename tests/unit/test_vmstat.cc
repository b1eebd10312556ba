#include "measure/vmstat.h"

#include <gtest/gtest.h>

#include <fstream>

#include "scratch.h"

namespace memdet::measure {
namespace {

TEST(Vmstat, ParsesTheRecordedFieldsInTheirOrder) {
  const std::string text =
      "nr_free_pages 1000\n"
      "thp_fault_alloc 6564\n"
      "numa_pages_migrated 3\n"
      "nr_thp_fault_alloc_like 99\n"
      "compact_stall 0\n"
      "thp_collapse_alloc 107\n";
  VmstatSnapshot snapshot = parse_vmstat(text);

  ASSERT_EQ(snapshot.size(), 4u);
  EXPECT_EQ(snapshot[0].name, "numa_pages_migrated");
  EXPECT_EQ(snapshot[0].value, 3u);
  EXPECT_EQ(snapshot[1].name, "thp_fault_alloc");
  EXPECT_EQ(snapshot[1].value, 6564u);
  EXPECT_EQ(snapshot[2].name, "thp_collapse_alloc");
  EXPECT_EQ(snapshot[3].name, "compact_stall");
}

TEST(Vmstat, ANameInsideAnotherIsNotTakenForIt) {
  VmstatSnapshot snapshot = parse_vmstat("xcompact_stall 5\ncompact_stall_more 6\n");
  EXPECT_TRUE(snapshot.empty());
}

TEST(Vmstat, GarbledValuesAreSkipped) {
  VmstatSnapshot snapshot = parse_vmstat("compact_stall lots\ncompact_success 7\n");
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].name, "compact_success");
}

TEST(Vmstat, DeltasOfFieldsInBothSnapshots) {
  VmstatSnapshot before = {{"thp_fault_alloc", 10}, {"compact_stall", 4}, {"pgmigrate_success", 9}};
  VmstatSnapshot after = {{"compact_stall", 6}, {"thp_fault_alloc", 15}};
  std::vector<VmstatDelta> deltas = vmstat_deltas(before, after);

  ASSERT_EQ(deltas.size(), 2u);
  EXPECT_EQ(deltas[0].name, "thp_fault_alloc");
  EXPECT_EQ(deltas[0].delta(), 5u);
  EXPECT_EQ(deltas[1].name, "compact_stall");
  EXPECT_EQ(deltas[1].delta(), 2u);
}

TEST(Vmstat, ACounterThatWentBackReadsAsZero) {
  VmstatDelta delta{"compact_stall", 10, 3};
  EXPECT_EQ(delta.delta(), 0u);
}

TEST(Vmstat, ReadsEveryRecordedFieldThisMachineHas) {
  auto snapshot = read_vmstat();
  ASSERT_TRUE(snapshot.ok()) << snapshot.error().message;

  // Read apart, a word at a time: every recorded field the file holds is in
  // the snapshot.
  std::ifstream in("/proc/vmstat");
  std::string name;
  uint64_t value = 0;
  size_t expected = 0;
  while (in >> name >> value) {
    for (const char* field : kVmstatFields) {
      if (name == field) {
        ++expected;
        bool found = false;
        for (const VmstatValue& read : *snapshot) {
          found = found || read.name == name;
        }
        EXPECT_TRUE(found) << name;
      }
    }
  }
  EXPECT_EQ(snapshot->size(), expected);
}

TEST(Vmstat, UnreadableFileFails) {
  testing_support::Scratch scratch;
  EXPECT_FALSE(read_vmstat(scratch.path() + "/absent").ok());
}

}  // namespace
}  // namespace memdet::measure
