#include "workloads/canary_sgd.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "compare/npy.h"

namespace memdet::workloads {
namespace {

using Reduce = SgdOptions::Reduce;

class CanarySgd : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "memdet-canary-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }

  void TearDown() override {
    std::error_code ignored;
    if (!root_.empty()) std::filesystem::remove_all(root_, ignored);
  }

  // Runs the canary into a fresh directory under the test's root.
  std::string run(const std::string& name, int threads, Reduce reduce, int steps = 200) {
    SgdOptions options;
    options.threads = threads;
    options.reduce = reduce;
    options.steps = steps;
    options.out_dir = root_ + "/" + name;
    const Status status = run_sgd_canary(options);
    EXPECT_TRUE(status.ok()) << status.error().message;
    return options.out_dir;
  }

  static std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::string root_;
};

TEST_F(CanarySgd, OrderedIsBitwiseIdenticalAtAnyThreadCount) {
  const std::string one = run("one", 1, Reduce::ordered);
  const std::string weights = slurp(one + "/weights.npy");
  const std::string losses = slurp(one + "/loss.txt");
  ASSERT_FALSE(weights.empty());
  ASSERT_FALSE(losses.empty());

  int round = 0;
  for (int threads : {2, 3, 2}) {
    const std::string dir = run("run" + std::to_string(++round), threads, Reduce::ordered);
    EXPECT_EQ(slurp(dir + "/weights.npy"), weights) << threads << " threads";
    EXPECT_EQ(slurp(dir + "/loss.txt"), losses) << threads << " threads";
  }
}

TEST_F(CanarySgd, AtomicWritesValidOutput) {
  const int steps = 50;
  const std::string dir = run("atomic/nested", 2, Reduce::atomic, steps);

  const Result<compare::NpyHeader> header = compare::read_npy_header(dir + "/weights.npy");
  ASSERT_TRUE(header.ok()) << header.error().message;
  EXPECT_EQ(header->descr, "<f4");
  EXPECT_EQ(header->shape.size(), 1u);

  std::istringstream losses(slurp(dir + "/loss.txt"));
  std::string line;
  int lines = 0;
  double first = 0;
  double last = 0;
  while (std::getline(losses, line)) {
    const std::string prefix = "step " + std::to_string(lines) + " loss ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    char* end = nullptr;
    last = std::strtod(line.c_str() + prefix.size(), &end);
    EXPECT_EQ(*end, '\0') << line;
    EXPECT_TRUE(std::isfinite(last)) << line;
    if (lines == 0) first = last;
    ++lines;
  }
  EXPECT_EQ(lines, steps);
  EXPECT_LT(last, first);
}

TEST_F(CanarySgd, AtomicAndOrderedLearnTheSameModel) {
  const std::string atomic = run("atomic", 2, Reduce::atomic);
  const std::string ordered = run("ordered", 2, Reduce::ordered);

  const auto diff = compare::compare_npy(atomic + "/weights.npy", ordered + "/weights.npy");
  ASSERT_TRUE(diff.ok()) << diff.error().message;
  ASSERT_TRUE(diff->has_value());
  EXPECT_LT((*diff)->max_rel, 1e-3);
  EXPECT_EQ((*diff)->nan_mismatch, 0u);
}

TEST_F(CanarySgd, RefusesBadOptions) {
  SgdOptions options;
  options.out_dir = root_ + "/bad";

  options.threads = 0;
  EXPECT_FALSE(run_sgd_canary(options).ok());
  options.threads = 2;
  options.steps = 0;
  EXPECT_FALSE(run_sgd_canary(options).ok());
  options.steps = 10;
  options.out_dir = "";
  EXPECT_FALSE(run_sgd_canary(options).ok());
}

TEST_F(CanarySgd, ReportsAnUncreatableDirectory) {
  std::ofstream(root_ + "/file") << "in the way";
  SgdOptions options;
  options.out_dir = root_ + "/file/out";

  const Status status = run_sgd_canary(options);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("cannot create " + options.out_dir), std::string::npos);
}

}  // namespace
}  // namespace memdet::workloads
