#include "factors/antagonist.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "core/sys.h"

namespace memdet::factors {
namespace {

// The last CPU this process may use, as the noise factor's default.
launch::CpuSet last_cpu() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ::sched_getaffinity(0, sizeof mask, &mask);
  int last = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &mask)) {
      last = cpu;
    }
  }
  return {last};
}

// True once `pid` no longer exists, or is a zombie nobody has reaped yet
// (this test process may be a subreaper, and so inherit it).
bool gone(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) {
    return true;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z';
}

bool gone_within(int pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (gone(pid)) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return gone(pid);
}

double stream_for(const std::string& intensity, std::chrono::milliseconds how_long) {
  auto antagonist = Antagonist::start(last_cpu(), intensity);
  EXPECT_TRUE(antagonist.ok()) << antagonist.error().message;
  if (!antagonist) {
    return 0;
  }
  std::this_thread::sleep_for(how_long);
  auto gbps = antagonist->stop();
  EXPECT_TRUE(gbps.ok()) << gbps.error().message;
  return gbps ? *gbps : 0;
}

TEST(Antagonist, ParsesIntensities) {
  EXPECT_EQ(*antagonist_duty_percent("stream"), 100);
  EXPECT_EQ(*antagonist_duty_percent("stream50"), 50);
  EXPECT_EQ(*antagonist_duty_percent("stream100"), 100);
  EXPECT_EQ(*antagonist_duty_percent("stream1"), 1);
  for (const char* bad : {"", "idle", "stream0", "stream101", "stream050", "stream5x", "Stream"}) {
    EXPECT_FALSE(antagonist_duty_percent(bad).ok()) << bad;
  }
}

TEST(Antagonist, ReportsTheBandwidthItAchieved) {
  double gbps = stream_for("stream", std::chrono::milliseconds(300));
  // Any machine that runs memdet copies well over 0.1 GB/s out of cache.
  EXPECT_GT(gbps, 0.1);
}

TEST(Antagonist, StopReapsEveryChild) {
  auto antagonist = Antagonist::start(last_cpu(), "stream");
  ASSERT_TRUE(antagonist.ok()) << antagonist.error().message;
  std::vector<int> pids = antagonist->pids();
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_FALSE(gone(pids[0]));

  ASSERT_TRUE(antagonist->stop().ok());
  EXPECT_FALSE(antagonist->running());
  // Reaped by stop, so not even a zombie is left.
  errno = 0;
  EXPECT_EQ(::kill(pids[0], 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(antagonist->stop().ok());
}

TEST(Antagonist, DestructorStopsIt) {
  std::vector<int> pids;
  {
    auto antagonist = Antagonist::start(last_cpu(), "stream");
    ASSERT_TRUE(antagonist.ok()) << antagonist.error().message;
    pids = antagonist->pids();
    Antagonist moved = std::move(*antagonist);
    EXPECT_FALSE(antagonist->running());
    EXPECT_TRUE(moved.running());
  }
  ASSERT_EQ(pids.size(), 1u);
  errno = 0;
  EXPECT_EQ(::kill(pids[0], 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(Antagonist, DiesWithTheProcessThatStartedIt) {
  auto pipe = sys::make_pipe();
  ASSERT_TRUE(pipe.ok());
  pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    // Starts one and leaves without stopping it: no destructor runs.
    auto antagonist = Antagonist::start(last_cpu(), "stream");
    int pid = antagonist ? antagonist->pids().front() : -1;
    sys::write_all(pipe->write.get(), &pid, sizeof pid);
    ::_exit(0);
  }
  pipe->write.reset();
  int pid = -1;
  ASSERT_EQ(::read(pipe->read.get(), &pid, sizeof pid), static_cast<ssize_t>(sizeof pid));
  ::waitpid(middle, nullptr, 0);
  ASSERT_GT(pid, 0);

  EXPECT_TRUE(gone_within(pid, std::chrono::seconds(5)));
  ::waitpid(pid, nullptr, WNOHANG);  // if this process adopted it
}

TEST(Antagonist, HoldsNoInheritedDescriptor) {
  auto pipe = sys::make_pipe();
  ASSERT_TRUE(pipe.ok());
  auto antagonist = Antagonist::start(last_cpu(), "stream");
  ASSERT_TRUE(antagonist.ok()) << antagonist.error().message;

  // With the only write end closed here, the reader sees the end at once.
  pipe->write.reset();
  char byte = 0;
  EXPECT_EQ(::read(pipe->read.get(), &byte, 1), 0);
}

TEST(Antagonist, ReportsAKillFromOutside) {
  auto antagonist = Antagonist::start(last_cpu(), "stream");
  ASSERT_TRUE(antagonist.ok()) << antagonist.error().message;
  int pid = antagonist->pids().front();
  ::kill(pid, SIGKILL);

  auto gbps = antagonist->stop();
  ASSERT_FALSE(gbps.ok());
  EXPECT_NE(gbps.error().message.find("without reporting"), std::string::npos)
      << gbps.error().message;
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1);
}

TEST(Antagonist, RefusesWhatItCannotRun) {
  auto unknown = Antagonist::start(last_cpu(), "thrash");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("unknown intensity 'thrash'"), std::string::npos);

  EXPECT_FALSE(Antagonist::start({}, "stream").ok());

  // A CPU this machine does not have: the child cannot pin itself, says so,
  // and is reaped before start returns.
  auto absent = Antagonist::start({CPU_SETSIZE - 1}, "stream");
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().message.find("sched_setaffinity"), std::string::npos)
      << absent.error().message;
}

FactorRecord noise_record(const std::string& value) {
  FactorRecord record;
  record.name = "noise";
  record.mode = Mode::kPerturb;
  record.value = value;
  record.reference = "idle:1";
  record.applied = Applied::kApplied;
  return record;
}

TEST(AntagonistFor, StartsOnlyForAStreamingValue) {
  auto plan = antagonist_for(noise_record("stream50:2-3"));
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->cpus, (launch::CpuSet{2, 3}));
  EXPECT_EQ(plan->intensity, "stream50");

  EXPECT_FALSE(antagonist_for(noise_record("idle:1")).has_value());

  FactorRecord refused = noise_record("stream:1");
  refused.applied = Applied::kNotApplicable;
  EXPECT_FALSE(antagonist_for(refused).has_value());

  FactorRecord other = noise_record("stream:1");
  other.name = "heap";
  EXPECT_FALSE(antagonist_for(other).has_value());
}

TEST(RecordAntagonist, VerifiesWhatMovedMemory) {
  FactorRecord record = noise_record("stream:1");
  record.verified = launch::CheckState::kNotObservable;
  record.observed =
      "workload on CPUs 0, CPUs 1 set aside; the antagonist's bandwidth was not "
      "recorded";
  record_antagonist(Result<double>(12.345), record);
  EXPECT_EQ(record.verified, launch::CheckState::kVerified);
  EXPECT_EQ(record.observed,
            "workload on CPUs 0, CPUs 1 set aside; antagonist stream on CPUs 1 copied 12.35 GB/s");
  EXPECT_EQ(record.measured, "antagonist stream");
}

TEST(RecordAntagonist, KeepsACpuMismatch) {
  FactorRecord record = noise_record("stream:1");
  record.verified = launch::CheckState::kDiffers;
  record_antagonist(Result<double>(5.0), record);
  EXPECT_EQ(record.verified, launch::CheckState::kDiffers);
}

TEST(RecordAntagonist, AFailedOrSilentAntagonistProvesNothing) {
  FactorRecord failed = noise_record("stream:1");
  failed.verified = launch::CheckState::kNotObservable;
  record_antagonist(Result<double>(make_error("killed")), failed);
  EXPECT_EQ(failed.verified, launch::CheckState::kDiffers);
  EXPECT_EQ(failed.measured, "antagonist idle");
  EXPECT_NE(failed.observed.find("killed"), std::string::npos);

  FactorRecord silent = noise_record("stream:1");
  silent.verified = launch::CheckState::kNotObservable;
  record_antagonist(Result<double>(0.0), silent);
  EXPECT_EQ(silent.verified, launch::CheckState::kDiffers);
  EXPECT_EQ(silent.measured, "antagonist idle");
}

}  // namespace
}  // namespace memdet::factors
