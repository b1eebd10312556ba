// The fingerprint reader and the comparison of two runs' fingerprints, over
// records written here by hand in the library's format.
#include "measure/fingerprint.h"

#include <gtest/gtest.h>

#include <string>

namespace memdet::measure {
namespace {

// A record of one thread; `sizes` are its first allocations, kept.
std::string record(const std::vector<uint64_t>& sizes, const std::string& maps_digest,
                   const std::string& colours) {
  uint64_t digest = 0;
  for (uint64_t size : sizes) {
    digest = digest * 31 + size;
  }
  std::string text =
      "memdet-fingerprint\t1\npid\t10\nppid\t1\nimage\t0\nexe\t/bin/probe\nend\texit\n";
  text += "threshold\t65536\nglobal_count\t" + std::to_string(sizes.size()) + "\nglobal_digest\t" +
          std::to_string(digest) + "\n";
  text += "thread\t0\t" + std::to_string(sizes.size()) + "\t" + std::to_string(digest) + "\t" +
          std::to_string(digest) + "\n";
  for (size_t i = 0; i < sizes.size(); ++i) {
    text += "first\t0\t" + std::to_string(i) + "\t1\t" + std::to_string(sizes[i]) +
            "\t1000\t0\t/bin/probe+0x1a2b\n";
  }
  text += "region\t400000\t4096\tr-xp\t/bin/probe\nmaps_regions\t1\nmaps_digest\t" + maps_digest +
          "\nphysical\treadable\ncolours\t4\ncolour_pages\t" + colours +
          "\nhypervisor\tKVMKVMKVM\nend_of_record\t1\n";
  return text;
}

RunFingerprint run_of(const std::string& text) {
  auto process = parse_fingerprint_record(text);
  EXPECT_TRUE(process) << (process ? "" : process.error().message);
  RunFingerprint run;
  run.processes.push_back(*process);
  return run;
}

TEST(Fingerprint, RecordParses) {
  auto process = parse_fingerprint_record(record({16, 32, 48}, "abc", "1,2,3,4"));
  ASSERT_TRUE(process);
  EXPECT_EQ(process->pid, 10);
  EXPECT_EQ(process->end, "exit");
  ASSERT_EQ(process->threads.size(), 1u);
  EXPECT_EQ(process->threads[0].count, 3u);
  ASSERT_EQ(process->first.size(), 3u);
  EXPECT_EQ(process->first[2].size, 48u);
  EXPECT_EQ(process->first[2].caller, "/bin/probe+0x1a2b");
  EXPECT_EQ(process->maps_digest, 0xabcu);
  EXPECT_EQ(process->colour_pages.size(), 4u);
  EXPECT_EQ(process->hypervisor, "KVMKVMKVM");
}

TEST(Fingerprint, CutRecordIsAnError) {
  std::string text = record({16}, "abc", "1,1,1,1");
  text.erase(text.find("end_of_record"));
  EXPECT_FALSE(parse_fingerprint_record(text));
  EXPECT_FALSE(parse_fingerprint_record("something else\n"));
}

TEST(Fingerprint, EqualRunsCompareEqual) {
  auto comparison = compare_fingerprints(run_of(record({16, 32}, "abc", "1,1,1,1")),
                                         run_of(record({16, 32}, "abc", "1,1,1,1")));
  EXPECT_TRUE(comparison.equal);
  ASSERT_EQ(comparison.processes.size(), 1u);
  EXPECT_TRUE(comparison.processes[0].layout_equal.value_or(false));
  EXPECT_DOUBLE_EQ(comparison.processes[0].colour_distance.value_or(-1), 0.0);
}

TEST(Fingerprint, NamesTheFirstDifferingAllocation) {
  auto comparison = compare_fingerprints(run_of(record({16, 32, 48, 64}, "abc", "1,1,1,1")),
                                         run_of(record({16, 32, 64, 48}, "def", "2,0,0,0")));
  EXPECT_FALSE(comparison.equal);
  const ProcessComparison& process = comparison.processes[0];
  EXPECT_FALSE(process.sizes_equal);
  ASSERT_TRUE(process.divergence);
  EXPECT_TRUE(process.divergence->exact);
  EXPECT_EQ(process.divergence->index, 2u);
  EXPECT_EQ(process.divergence->a->size, 48u);
  EXPECT_EQ(process.divergence->b->size, 64u);
  EXPECT_FALSE(process.layout_equal.value_or(true));
  // All of B's pages in one colour, A's spread over four: 1 - 1/4.
  EXPECT_DOUBLE_EQ(process.colour_distance.value_or(-1), 0.75);
  auto lines = describe_comparison(comparison);
  bool named = false;
  for (const std::string& line : lines) {
    named = named || line.find("first at allocation 2: 48 bytes (malloc from /bin/probe+0x1a2b)") !=
                         std::string::npos;
  }
  EXPECT_TRUE(named);
}

TEST(Fingerprint, ShorterSequenceDivergesWhereItEnds) {
  auto comparison = compare_fingerprints(run_of(record({16, 32, 48}, "abc", "1,1,1,1")),
                                         run_of(record({16, 32}, "abc", "1,1,1,1")));
  const ProcessComparison& process = comparison.processes[0];
  ASSERT_TRUE(process.divergence);
  EXPECT_TRUE(process.divergence->exact);
  EXPECT_EQ(process.divergence->index, 2u);
  EXPECT_TRUE(process.divergence->a);
  EXPECT_FALSE(process.divergence->b);
}

TEST(Fingerprint, MissingProcessIsNamed) {
  RunFingerprint missing;
  missing.processes.emplace_back();  // kMissing
  auto comparison = compare_fingerprints(run_of(record({16}, "abc", "1,1,1,1")), missing);
  EXPECT_FALSE(comparison.equal);
  EXPECT_NE(comparison.processes[0].problem.find("no fingerprint"), std::string::npos);
}

TEST(Fingerprint, TotalVariation) {
  EXPECT_DOUBLE_EQ(*total_variation({1, 0}, {0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(*total_variation({2, 2}, {1, 1}), 0.0);
  EXPECT_FALSE(total_variation({0, 0}, {1, 1}));
}

}  // namespace
}  // namespace memdet::measure
