#include "launch/launcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/personality.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "../unit/scratch.h"
#include "core/sys.h"

extern char** environ;

namespace memdet::launch {
namespace {

std::string helper(const std::string& name) {
  return std::string(MEMDET_TEST_HELPER_DIR) + "/" + name;
}

LaunchSpec spec_for(std::vector<std::string> argv) {
  LaunchSpec spec;
  std::optional<ResolveError> failure = resolve_executable(argv[0], spec.executable);
  EXPECT_FALSE(failure.has_value()) << argv[0];
  spec.argv = std::move(argv);
  for (char** entry = environ; *entry != nullptr; ++entry) {
    spec.env.emplace_back(*entry);
  }
  spec.timeout_seconds = 60;
  return spec;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool process_exists(int pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

TEST(Launcher, ArgumentsArriveVerbatim) {
  testing_support::Scratch scratch;
  const std::string& dir = scratch.path();
  std::vector<std::string> args = {"a b", "'single'", "\"double\"", "x;y", "", "-n", "--", "$HOME"};
  std::vector<std::string> argv = {helper("print_args")};
  argv.insert(argv.end(), args.begin(), args.end());
  LaunchSpec spec = spec_for(argv);
  spec.stdout_spec = {OutputSpec::Mode::kFile, dir + "/out"};

  auto result = launch(spec);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(result->succeeded());

  std::string expected;
  for (const std::string& arg : args) {
    expected += arg;
    expected.push_back('\0');
  }
  EXPECT_EQ(slurp(dir + "/out"), expected);
}

TEST(Launcher, ExitCodePropagates) {
  auto result = launch(spec_for({"/bin/sh", "-c", "exit 7"}));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, Outcome::kExited);
  EXPECT_EQ(result->exit_code, 7);
  EXPECT_EQ(result->run_exit_status(), 7);
}

TEST(Launcher, SignalBecomes128PlusN) {
  auto result = launch(spec_for({"/bin/sh", "-c", "kill -TERM $$"}));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, Outcome::kSignaled);
  EXPECT_EQ(result->signal, SIGTERM);
  EXPECT_EQ(result->run_exit_status(), 128 + SIGTERM);
}

TEST(Launcher, StdinIsDevNullByDefault) {
  testing_support::Scratch scratch;
  const std::string& dir = scratch.path();
  LaunchSpec spec = spec_for({"/bin/sh", "-c", "if read line; then echo got; else echo eof; fi"});
  spec.stdout_spec = {OutputSpec::Mode::kFile, dir + "/out"};
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(slurp(dir + "/out"), "eof\n");
}

TEST(Launcher, TimeoutKillsTheGroupAndASetsidGrandchild) {
  testing_support::Scratch scratch;
  const std::string& dir = scratch.path();
  LaunchSpec spec = spec_for({helper("spawn_setsid"), dir + "/pid", "stay"});
  spec.timeout_seconds = 1.0;

  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, Outcome::kTimedOut);
  EXPECT_EQ(result->run_exit_status(), 124);

  int grandchild = std::stoi(slurp(dir + "/pid"));
  EXPECT_FALSE(process_exists(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST(Launcher, LeftoversAreEndedAndReported) {
  testing_support::Scratch scratch;
  const std::string& dir = scratch.path();
  auto result = launch(spec_for({helper("spawn_setsid"), dir + "/pid", "exit"}));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->succeeded());

  int grandchild = std::stoi(slurp(dir + "/pid"));
  EXPECT_FALSE(process_exists(grandchild));
  ASSERT_EQ(result->left_behind.size(), 1u);
  EXPECT_EQ(result->left_behind[0].pid, grandchild);
}

TEST(Launcher, LeftoverHoldingTheOutputPipeDoesNotHang) {
  testing_support::Scratch scratch;
  const std::string& dir = scratch.path();
  LaunchSpec spec = spec_for({"/bin/sh", "-c", "setsid sleep 300 & echo started"});
  spec.stdout_spec = {OutputSpec::Mode::kTee, dir + "/out"};
  double began = sys::monotonic_seconds();
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->succeeded());
  EXPECT_LT(sys::monotonic_seconds() - began, 30.0);
  EXPECT_EQ(slurp(dir + "/out"), "started\n");
  EXPECT_FALSE(result->left_behind.empty());
}

TEST(Launcher, AslrOffIsVerifiedAtStartAndExit) {
  LaunchSpec spec = spec_for({"/bin/true"});
  spec.controls.aslr_off = true;
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->outcome, Outcome::kExited) << result->message;
  ASSERT_TRUE(result->at_start.valid) << result->at_start.error;
  ASSERT_TRUE(result->at_exit.valid) << result->at_exit.error;
  EXPECT_NE(result->at_start.personality & ADDR_NO_RANDOMIZE, 0u);
  EXPECT_NE(result->at_exit.personality & ADDR_NO_RANDOMIZE, 0u);
}

TEST(Launcher, WithoutControlsTheChildKeepsRandomisation) {
  auto result = launch(spec_for({"/bin/true"}));
  ASSERT_TRUE(result.ok());
  ASSERT_TRUE(result->at_exit.valid) << result->at_exit.error;
  EXPECT_EQ(result->at_exit.personality & ADDR_NO_RANDOMIZE, 0u);
}

TEST(Launcher, CpuPinningIsVerified) {
  LaunchSpec spec = spec_for({"/bin/true"});
  spec.controls.cpus = CpuSet{0};
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->outcome, Outcome::kExited) << result->message;
  EXPECT_EQ(result->at_start.cpus_allowed_list, "0");
  EXPECT_EQ(result->checks[0].at_exit, CheckState::kVerified);
}

TEST(Launcher, HandshakeReportsARefusedControl) {
  // No CPU in the mask exists, so sched_setaffinity fails in the child and
  // the child reports the errno instead of running anything.
  LaunchSpec spec = spec_for({"/bin/true"});
  spec.controls.cpus = CpuSet{1000};
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, Outcome::kControlFailed);
  EXPECT_NE(result->message.find("sched_setaffinity"), std::string::npos) << result->message;
  EXPECT_EQ(result->run_exit_status(), 125);
}

TEST(Launcher, TrimmedCpuMaskStopsTheLaunch) {
  long online = ::sysconf(_SC_NPROCESSORS_CONF);
  LaunchSpec spec = spec_for({"/bin/true"});
  spec.controls.cpus = CpuSet{0, static_cast<int>(online) + 3};
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, Outcome::kControlFailed);
  EXPECT_NE(result->message.find("Cpus_allowed_list 0"), std::string::npos) << result->message;
}

TEST(Launcher, ExecFailureIsReportedWithItsStatus) {
  testing_support::Scratch scratch;
  const std::string& dir = scratch.path();
  std::ofstream(dir + "/not-executable") << "data\n";
  std::string path;
  auto failure = resolve_executable(dir + "/not-executable", path);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->status, 126);

  failure = resolve_executable("memdet-no-such-command-anywhere", path);
  ASSERT_TRUE(failure.has_value());
  EXPECT_EQ(failure->status, 127);

  // Resolution passed but exec itself fails: a script with a missing
  // interpreter.
  std::ofstream(dir + "/bad-script") << "#!/nonexistent/interpreter\n";
  ::chmod((dir + "/bad-script").c_str(), 0755);
  LaunchSpec spec = spec_for({dir + "/bad-script"});
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, Outcome::kExecFailed);
  EXPECT_EQ(result->run_exit_status(), 127);
}

TEST(Launcher, ForwardsSigtermToTheWorkload) {
  LaunchSpec spec = spec_for({"/bin/sleep", "30"});
  std::thread sender([] {
    ::usleep(300 * 1000);
    ::kill(::getpid(), SIGTERM);
  });
  auto result = launch(spec);
  sender.join();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->interrupted_by, SIGTERM);
  EXPECT_EQ(result->outcome, Outcome::kSignaled);
  EXPECT_EQ(result->signal, SIGTERM);
}

TEST(Launcher, KillsAWorkloadThatIgnoresTheInterruptAfterTheGrace) {
  // The ignored disposition survives exec, so sleep ignores SIGTERM too.
  LaunchSpec spec = spec_for({"/bin/sh", "-c", "trap '' TERM; exec sleep 30"});
  spec.interrupt_grace_seconds = 0.5;
  std::thread sender([] {
    ::usleep(300 * 1000);
    ::kill(::getpid(), SIGTERM);
  });
  auto result = launch(spec);
  sender.join();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->interrupted_by, SIGTERM);
  EXPECT_EQ(result->outcome, Outcome::kSignaled);
  EXPECT_EQ(result->signal, SIGKILL);
}

TEST(Launcher, EnvironmentArrivesExactly) {
  testing_support::Scratch scratch;
  const std::string& dir = scratch.path();
  LaunchSpec spec = spec_for({"/usr/bin/env"});
  spec.env = {"ONE=1", "TWO=two words"};
  spec.stdout_spec = {OutputSpec::Mode::kFile, dir + "/out"};
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(slurp(dir + "/out"), "ONE=1\nTWO=two words\n");
}

TEST(Launcher, ExecStopShowsTheNewProgram) {
  LaunchSpec spec = spec_for({"/bin/true"});
  spec.env = {"ONE=1", "TWO=two words"};
  spec.controls.aslr_off = true;
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->outcome, Outcome::kExited) << result->message;
  ASSERT_TRUE(result->at_start.at_exec) << result->exec_stop_note;
  EXPECT_EQ(result->at_start.environ, spec.env);
  EXPECT_NE(result->at_start.start_stack, 0u);
  EXPECT_NE(result->at_start.personality & ADDR_NO_RANDOMIZE, 0u);
  EXPECT_FALSE(result->at_start.numa_policy.empty());
}

TEST(Launcher, EqualFootprintsStartTheStackAtOneAddressWithoutAslr) {
  auto start_stack = [](const std::string& pad) {
    LaunchSpec spec = spec_for({"/bin/true"});
    spec.env = {"PAD=" + pad};
    spec.controls.aslr_off = true;
    auto result = launch(spec);
    EXPECT_TRUE(result.ok() && result->at_start.at_exec);
    return result.ok() ? result->at_start.start_stack : 0;
  };
  unsigned long first = start_stack(std::string(100, 'a'));
  EXPECT_EQ(start_stack(std::string(100, 'b')), first);
  EXPECT_NE(start_stack(std::string(164, 'a')), first);
}

TEST(Launcher, ThpDisableReachesTheProgram) {
  LaunchSpec spec = spec_for({"/bin/true"});
  spec.controls.thp_disable = true;
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->outcome, Outcome::kExited) << result->message;
  if (result->at_start.thp_enabled < 0) {
    GTEST_SKIP() << "this kernel's /proc/<pid>/status has no THP_enabled";
  }
  EXPECT_EQ(result->at_start.thp_enabled, 0);
  auto plain = launch(spec_for({"/bin/true"}));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->at_start.thp_enabled, 1);
}

TEST(Launcher, BindPolicyShowsInNumaMaps) {
  LaunchSpec spec = spec_for({"/bin/true"});
  spec.controls.mem_policy = Controls::MemPolicy::kBind;
  spec.controls.mem_nodes = {0};
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->outcome, Outcome::kExited) << result->message;
  EXPECT_EQ(result->at_start.numa_policy, "bind:0");
}

}  // namespace
}  // namespace memdet::launch
