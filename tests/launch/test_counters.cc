// Counters opened by the launcher on real workloads.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "launch/launcher.h"
#include "measure/counters.h"

extern char** environ;

namespace memdet::launch {
namespace {

std::string helper(const std::string& name) {
  return std::string(MEMDET_TEST_HELPER_DIR) + "/" + name;
}

LaunchSpec counted(std::vector<std::string> argv) {
  LaunchSpec spec;
  spec.executable = argv[0];
  spec.argv = std::move(argv);
  for (char** entry = environ; *entry != nullptr; ++entry) {
    spec.env.emplace_back(*entry);
  }
  spec.timeout_seconds = 60;
  spec.measure_counters = true;
  return spec;
}

const measure::CounterValue& counter(const LaunchResult& result, const std::string& name) {
  const measure::CounterValue* found = result.counters.find(name);
  if (found == nullptr) {
    ADD_FAILURE() << name << " is not in the readings";
    static const measure::CounterValue none;
    return none;
  }
  return *found;
}

LaunchResult fresh_pages(long pages) {
  auto result = launch(counted({helper("fresh_pages"), std::to_string(pages)}));
  EXPECT_TRUE(result.ok()) << result.error().message;
  EXPECT_TRUE(result->succeeded()) << result->message;
  return std::move(*result);
}

// Measured here over 600 trials: the difference lands within -12..+17 of
// N; the allowance is four times that.
constexpr long kFaultSlack = 64;

TEST(Counters, PageFaultsGrowByThePagesWritten) {
  constexpr long kPages = 4000;
  LaunchResult once = fresh_pages(kPages);
  LaunchResult twice = fresh_pages(2 * kPages);

  ASSERT_TRUE(once.counters.measured);
  for (const char* name : {"page-faults", "minor-faults"}) {
    const measure::CounterValue& a = counter(once, name);
    const measure::CounterValue& b = counter(twice, name);
    ASSERT_TRUE(a.supported && b.supported) << name << ": " << a.reason;
    const long difference = static_cast<long>(b.value()) - static_cast<long>(a.value());
    EXPECT_LE(std::labs(difference - kPages), kFaultSlack)
        << name << ": " << a.value() << " then " << b.value();
  }
  // wait4's count agrees.
  EXPECT_LE(std::labs(twice.minor_faults - once.minor_faults - kPages), kFaultSlack)
      << once.minor_faults << " then " << twice.minor_faults;
  EXPECT_GE(once.minor_faults, kPages);
}

TEST(Counters, SoftwareCountersCountTheWorkloadAlone) {
  LaunchResult result = fresh_pages(100);

  const measure::CounterValue& clock = counter(result, "task-clock");
  ASSERT_TRUE(clock.supported) << clock.reason;
  EXPECT_GT(clock.value(), 0.0);
  EXPECT_EQ(clock.unit, "ns");
  EXPECT_FALSE(result.counters.user_space_only && ::geteuid() == 0);
  for (const char* name : {"context-switches", "cpu-migrations", "major-faults"}) {
    const measure::CounterValue& value = counter(result, name);
    EXPECT_TRUE(value.supported || value.reason == measure::kNeedsPrivilege) << value.reason;
  }
}

TEST(Counters, HardwareCountersSayWhyTheyAreMissing) {
  LaunchResult result = fresh_pages(10);
  ASSERT_TRUE(result.counters.measured);

  if (!measure::core_pmu_visible()) {
    for (const char* name : {"cycles", "instructions", "LLC-load-misses", "LLC-store-misses"}) {
      const measure::CounterValue& value = counter(result, name);
      EXPECT_FALSE(value.supported) << name;
      EXPECT_EQ(value.reason, measure::kNoPmu) << name;
    }
    // The named core events need the same PMU.
    for (const measure::CounterValue& value : result.counters.counters) {
      if (value.source == measure::Source::kNamed) {
        EXPECT_FALSE(value.supported) << value.name;
        EXPECT_EQ(value.reason, measure::kNoPmu) << value.name;
      }
    }
    return;
  }
  const measure::CounterValue& cycles = counter(result, "cycles");
  if (!cycles.supported) {
    GTEST_SKIP() << "a core PMU is visible but cycles did not open: " << cycles.reason;
  }
  EXPECT_GT(cycles.value(), 0.0);
  EXPECT_GT(counter(result, "instructions").value(), 0.0);
}

TEST(Counters, VmstatDeltasAreRecorded) {
  LaunchResult result = fresh_pages(10);
  EXPECT_TRUE(result.counters.vmstat_error.empty()) << result.counters.vmstat_error;
  bool compaction = false;
  for (const measure::VmstatDelta& delta : result.counters.vmstat) {
    compaction = compaction || delta.name == "compact_stall";
    EXPECT_GE(delta.after, delta.before) << delta.name;
  }
  EXPECT_TRUE(compaction) << "compact_stall is in every kernel with compaction";
}

TEST(Counters, NotOpenedUnlessAsked) {
  LaunchSpec spec = counted({helper("fresh_pages"), "10"});
  spec.measure_counters = false;
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->counters.measured);
  EXPECT_TRUE(result->counters.counters.empty());
  // rusage is there either way.
  EXPECT_GT(result->minor_faults, 0);
}

TEST(Counters, ExecFailureMeasuresNothing) {
  LaunchSpec spec = counted({"/nonexistent/program"});
  auto result = launch(spec);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, Outcome::kExecFailed);
  EXPECT_FALSE(result->counters.measured);
}

// Without privilege (perf_event_paranoid 2 and not root) the software
// counters open only user-space-only, where switches and migrations count
// nothing: they must come back as not supported, never as 0.
TEST(Counters, UnprivilegedRecordsKernelCountsAsNotSupported) {
  auto paranoid = measure::read_perf_event_paranoid();
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to drop to an unprivileged user";
  }
  if (!paranoid || *paranoid < 2) {
    GTEST_SKIP() << "perf_event_paranoid is below 2: an unprivileged user may count the kernel";
  }
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    // nobody: no capabilities once the uid changes.
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
      ::_exit(3);
    }
    // A process that changed its credentials is not dumpable, and neither
    // are its children until they exec: perf_event_open would refuse them
    // for that alone. A user's own shell is dumpable.
    ::prctl(PR_SET_DUMPABLE, 1);
    auto result = launch(counted({helper("fresh_pages"), "1000"}));
    std::string verdict;
    if (!result.ok()) {
      verdict = "launch failed: " + result.error().message;
    } else {
      const measure::CounterValue* switches = result->counters.find("context-switches");
      const measure::CounterValue* migrations = result->counters.find("cpu-migrations");
      const measure::CounterValue* faults = result->counters.find("page-faults");
      if (switches == nullptr || migrations == nullptr || faults == nullptr) {
        verdict = "a counter is missing";
      } else if (switches->supported || switches->reason != measure::kNeedsPrivilege ||
                 migrations->supported || migrations->reason != measure::kNeedsPrivilege) {
        verdict = "switches: " + switches->reason + "; migrations: " + migrations->reason;
      } else if (!faults->supported || faults->value() < 1000) {
        verdict = "page faults: " + faults->reason + " " + std::to_string(faults->value());
      } else if (!result->counters.user_space_only) {
        verdict = "not marked user space only";
      } else {
        verdict = "ok";
      }
    }
    [[maybe_unused]] ssize_t written = ::write(pipe_fds[1], verdict.data(), verdict.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string verdict;
  char buffer[256];
  ssize_t got = 0;
  while ((got = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) {
    verdict.append(buffer, static_cast<size_t>(got));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_EQ(verdict, "ok");
}

}  // namespace
}  // namespace memdet::launch
