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

AntagonistRate stream_for(const std::string& intensity, std::chrono::milliseconds how_long) {
  auto antagonist = Antagonist::start(last_cpu(), intensity);
  EXPECT_TRUE(antagonist.ok()) << antagonist.error().message;
  if (!antagonist) {
    return {};
  }
  std::this_thread::sleep_for(how_long);
  auto rate = antagonist->stop();
  EXPECT_TRUE(rate.ok()) << rate.error().message;
  return rate ? *rate : AntagonistRate{};
}

// A copier on a simulated clock: each chunk takes `chunk_ns` of copying,
// a wait the pacer asks for passes in full, and after every `run_ns` of
// the clock the CPU is taken away for `preempted_ns`. Returns the bytes
// moved in `total_ns`.
struct Simulated {
  int64_t chunk_ns = 500'000;  // 2 MiB moved in 0.5 ms: 4.2 GB/s
  uint64_t chunk_bytes = 2 << 20;
  int64_t run_ns = 0;  // 0: never preempted
  int64_t preempted_ns = 0;

  double full_bytes_per_ns() const {
    return static_cast<double>(chunk_bytes) / static_cast<double>(chunk_ns);
  }

  uint64_t copy(int duty_percent, int64_t total_ns) const {
    const int64_t start = 1'000'000'000;
    Pacer pacer(full_bytes_per_ns(), duty_percent, start);
    int64_t now = start;
    int64_t next_preemption = start + run_ns;
    uint64_t moved = 0;
    while (now < start + total_ns) {
      now += chunk_ns;
      moved += chunk_bytes;
      now += pacer.wait_ns(moved, now);
      if (run_ns > 0 && now >= next_preemption) {
        now += preempted_ns;
        next_preemption = now + run_ns;
      }
    }
    return moved;
  }

  double fraction(int duty_percent, int64_t total_ns) const {
    return static_cast<double>(copy(duty_percent, total_ns)) /
           (full_bytes_per_ns() * static_cast<double>(total_ns));
  }
};

TEST(Pacer, HoldsTheFractionAsked) {
  const Simulated copier;
  for (int duty : {1, 10, 25, 50, 75, 99}) {
    EXPECT_NEAR(copier.fraction(duty, 2'000'000'000), duty / 100.0, 0.01) << duty;
  }
}

TEST(Pacer, HoldsItOnACpuItShares) {
  // Preempted for 3 ms of every 10 ms: a copier that counts its busy share
  // of each period by the wall clock finds every period used up and never
  // pauses. The pacer still gives half of full speed.
  Simulated shared;
  shared.run_ns = 7'000'000;
  shared.preempted_ns = 3'000'000;
  EXPECT_NEAR(shared.fraction(50, 2'000'000'000), 0.5, 0.02);
  EXPECT_NEAR(shared.fraction(25, 2'000'000'000), 0.25, 0.02);
}

TEST(Pacer, ReachesWhatTheCpuLeavesAndNoMore) {
  // Preempted 70 % of the time: 30 % of full speed is all there is.
  Simulated starved;
  starved.run_ns = 3'000'000;
  starved.preempted_ns = 7'000'000;
  EXPECT_NEAR(starved.fraction(50, 2'000'000'000), 0.3, 0.03);
}

TEST(Pacer, ForgivesALongShortfall) {
  // After a 200 ms stall, the copier catches up by at most kMaxDebtNs of
  // paced bytes before it pauses again.
  const Simulated copier;
  const int64_t start = 0;
  Pacer pacer(copier.full_bytes_per_ns(), 50, start);
  uint64_t moved = 0;
  int64_t now = start;
  for (int chunk = 0; chunk < 100; ++chunk) {
    now += copier.chunk_ns;
    moved += copier.chunk_bytes;
    now += pacer.wait_ns(moved, now);
  }
  now += 200'000'000;
  int unpaused = 0;
  for (;;) {
    now += copier.chunk_ns;
    moved += copier.chunk_bytes;
    int64_t wait = pacer.wait_ns(moved, now);
    if (wait > 0) {
      break;
    }
    ++unpaused;
  }
  // Half speed owes a chunk every 2 * chunk_ns; copying at full speed pays
  // off one chunk's worth of debt every 2 * chunk_ns.
  const double owed_chunks =
      static_cast<double>(Pacer::kMaxDebtNs) / (2.0 * static_cast<double>(copier.chunk_ns));
  EXPECT_LE(unpaused, 2 * owed_chunks + 2);
  EXPECT_GT(unpaused, 0);
}

TEST(Pacer, LeavesFullSpeedAlone) {
  Pacer pacer(4.0, 100, 0);
  EXPECT_EQ(pacer.wait_ns(uint64_t{1} << 30, 1), 0);
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
  AntagonistRate rate = stream_for("stream", std::chrono::milliseconds(300));
  // Any machine that runs memdet copies well over 0.1 GB/s out of cache.
  EXPECT_GT(rate.gbps, 0.1);
  EXPECT_GT(rate.full_gbps, 0.1);
  EXPECT_EQ(rate.duty_percent, 100);
}

TEST(Antagonist, HalfSpeedStaysAtHalfItsFullSpeed) {
  // Paced against its own calibration, stream50 cannot run ahead of half
  // speed by more than a chunk and a short wait, however loaded the
  // machine. A busy CPU can hold it below; that is not judged here.
  AntagonistRate rate = stream_for("stream50", std::chrono::milliseconds(500));
  EXPECT_EQ(rate.duty_percent, 50);
  EXPECT_GT(rate.gbps, 0);
  EXPECT_LT(rate.achieved_fraction(), 0.6)
      << rate.gbps << " GB/s of a full " << rate.full_gbps << " GB/s";
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
  record_antagonist(Result<AntagonistRate>(AntagonistRate{100, 12.345, 12.5}), record);
  EXPECT_EQ(record.verified, launch::CheckState::kVerified);
  EXPECT_EQ(record.observed,
            "workload on CPUs 0, CPUs 1 set aside; antagonist stream on CPUs 1 copied 12.35 GB/s, "
            "0.99 of its full 12.50 GB/s (1.00 asked)");
  EXPECT_EQ(record.measured, "antagonist stream");
  EXPECT_EQ(record.note, "");
}

TEST(RecordAntagonist, SaysWhenItFellShortOfTheFractionAsked) {
  FactorRecord record = noise_record("stream50:1");
  record.verified = launch::CheckState::kNotObservable;
  record_antagonist(Result<AntagonistRate>(AntagonistRate{50, 2.0, 10.0}), record);
  EXPECT_EQ(record.verified, launch::CheckState::kVerified);
  EXPECT_NE(record.observed.find("0.20 of its full 10.00 GB/s (0.50 asked)"), std::string::npos)
      << record.observed;
  EXPECT_NE(record.note.find("reached 0.20 of its full speed where 0.50 was asked"),
            std::string::npos)
      << record.note;

  FactorRecord on_target = noise_record("stream50:1");
  record_antagonist(Result<AntagonistRate>(AntagonistRate{50, 4.9, 10.0}), on_target);
  EXPECT_EQ(on_target.note, "");
}

TEST(RecordAntagonist, KeepsACpuMismatch) {
  FactorRecord record = noise_record("stream:1");
  record.verified = launch::CheckState::kDiffers;
  record_antagonist(Result<AntagonistRate>(AntagonistRate{100, 5.0, 6.0}), record);
  EXPECT_EQ(record.verified, launch::CheckState::kDiffers);
}

TEST(RecordAntagonist, AFailedOrSilentAntagonistProvesNothing) {
  FactorRecord failed = noise_record("stream:1");
  failed.verified = launch::CheckState::kNotObservable;
  record_antagonist(Result<AntagonistRate>(make_error("killed")), failed);
  EXPECT_EQ(failed.verified, launch::CheckState::kDiffers);
  EXPECT_EQ(failed.measured, "antagonist idle");
  EXPECT_NE(failed.observed.find("killed"), std::string::npos);

  FactorRecord silent = noise_record("stream:1");
  silent.verified = launch::CheckState::kNotObservable;
  record_antagonist(Result<AntagonistRate>(AntagonistRate{100, 0.0, 6.0}), silent);
  EXPECT_EQ(silent.verified, launch::CheckState::kDiffers);
  EXPECT_EQ(silent.measured, "antagonist idle");
}

}  // namespace
}  // namespace memdet::factors
