#include "launch/launcher.h"
#include "protocol/placeholders.h"

#include <gtest/gtest.h>

namespace memdet::protocol {
namespace {

TEST(Placeholders, LabelsAreZeroPaddedToTheLargestRun) {
  EXPECT_EQ(run_label(1, 5), "01");
  EXPECT_EQ(run_label(7, 12), "07");
  EXPECT_EQ(run_label(7, 120), "007");
  EXPECT_EQ(run_label(100, 100), "100");
}

TEST(Placeholders, EveryLabelOfACampaignHasOneLength) {
  for (int total : {2, 9, 10, 99, 100, 1000}) {
    size_t width = run_label(1, total).size();
    for (int index = 1; index <= total; ++index) {
      ASSERT_EQ(run_label(index, total).size(), width) << index << " of " << total;
    }
  }
}

TEST(Placeholders, SubstitutesEveryOccurrence) {
  EXPECT_EQ(substitute("out/{run}/x-{run}.npy", "03", "/r/run-03"), "out/03/x-03.npy");
  EXPECT_EQ(substitute("{run_dir}/w.npy", "03", "/r/run-03"), "/r/run-03/w.npy");
  EXPECT_EQ(substitute("--out={run_dir}/{run}", "03", "/d"), "--out=/d/03");
  EXPECT_EQ(substitute("{ru}{run_di}", "03", "/d"), "{ru}{run_di}");
}

TEST(Placeholders, SubstitutedTextDoesNotExpandAgain) {
  EXPECT_EQ(substitute("{run_dir}", "01", "/x/{run}"), "/x/{run}");
}

TEST(Placeholders, FootprintCountsTerminatingNuls) {
  EXPECT_EQ(launch::exec_footprint("/bin/a", {"a", "bc"}, {"X=1"}), 7u + 2u + 3u + 4u);
}

TEST(Placeholders, RunsOfOneCampaignHaveEqualFootprints) {
  std::vector<std::string> command = {"python3", "train.py", "--out", "out/{run}", "{run_dir}"};
  size_t first = 0;
  for (int index = 1; index <= 12; ++index) {
    std::string label = run_label(index, 12);
    std::string dir = "/c/run-" + label;
    std::vector<std::string> argv;
    for (const std::string& arg : command) {
      argv.push_back(substitute(arg, label, dir));
    }
    size_t footprint = launch::exec_footprint("/usr/bin/python3", argv,
                                              {"MEMDET_RUN=" + label, "MEMDET_RUN_DIR=" + dir});
    if (index == 1) {
      first = footprint;
    }
    EXPECT_EQ(footprint, first) << "run " << label;
  }
}

}  // namespace
}  // namespace memdet::protocol
