// The memory-bandwidth antagonist of the noise factor: one forked process
// per CPU set aside, each pinned to its CPU and copying a buffer far larger
// than the last-level cache, so the workload's memory traffic competes with
// it. The campaign starts it before a run that the noise record asks for
// and stops it after; what it achieved goes into that record.
//
// The children run no other program: after fork they make only system
// calls and memcpy, since another thread of memdet may have held a lock at
// the moment of the fork. They are signalled through pidfds, so a child
// that someone else reaped early is never confused with a recycled pid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/sys.h"
#include "factors/factor.h"
#include "factors/profile.h"
#include "launch/cpu_list.h"

namespace memdet::factors {

// "stream" copies at full speed; "streamN" (N from 1 to 100) at N % of
// it. Fails with the accepted forms.
Result<int> antagonist_duty_percent(const std::string& intensity);

// Holds a copier to a fraction of its full-speed rate. Pacing by bytes
// against a clock, rather than copying for a share of each period, is what
// keeps the fraction when the copier's CPU is shared: a period in which it
// was preempted would otherwise pass without a pause, and the copier would
// run at full speed.
class Pacer {
 public:
  // A copier that fell behind (preempted, or slowed by the workload's
  // traffic) copies without pause to catch up, but by at most this much
  // time's worth of bytes: a longer shortfall is forgiven, so it never
  // bursts at full speed for long.
  static constexpr int64_t kMaxDebtNs = 20'000'000;
  // Shorter waits are not slept but added to the next one: a sleep costs
  // a system call and oversleeps by the timer slack.
  static constexpr int64_t kMinSleepNs = 1'000'000;

  // `full_bytes_per_ns`: the calibrated full-speed rate; `start_ns`: the
  // clock when copying began. A duty of 100 never waits.
  Pacer(double full_bytes_per_ns, int duty_percent, int64_t start_ns);

  // Given the bytes moved since the start and the clock now, how long to
  // sleep before the next chunk; 0: copy on.
  int64_t wait_ns(uint64_t moved, int64_t now_ns);

 private:
  double paced_bytes_per_ns_;
  int64_t origin_ns_;  // moves forward when a shortfall is forgiven
};

// What the copiers achieved together between start and stop.
struct AntagonistRate {
  int duty_percent = 100;  // what was asked
  // GB/s (10^9 bytes) counted as STREAM counts a copy: bytes read plus
  // bytes written. `full_gbps`: what they copied at full speed, measured
  // just before they reported ready.
  double gbps = 0;
  double full_gbps = 0;

  // gbps / full_gbps; 0 when nothing was calibrated.
  double achieved_fraction() const { return full_gbps > 0 ? gbps / full_gbps : 0; }
};

class Antagonist {
 public:
  // Forks one copier per CPU in `cpus` and returns once every one has
  // pinned itself, touched its buffer and measured its full-speed rate, so
  // the run that follows meets a streaming antagonist from its first
  // instruction. Fails, leaving no
  // child behind, when a CPU cannot be used or memory cannot be had.
  //
  // Each child dies with the thread that called start (PR_SET_PDEATHSIG):
  // call it from a thread that outlives the runs.
  static Result<Antagonist> start(const launch::CpuSet& cpus, const std::string& intensity);

  Antagonist(Antagonist&& other) noexcept;
  Antagonist& operator=(Antagonist&& other) noexcept;
  Antagonist(const Antagonist&) = delete;
  Antagonist& operator=(const Antagonist&) = delete;
  ~Antagonist();  // stops the children still running

  // Stops every child (SIGTERM, then SIGKILL after a grace period), reaps
  // them, and returns the bandwidth they achieved together against their
  // full speed. Fails when a child did not report (it was killed from
  // outside) or when nothing is running.
  Result<AntagonistRate> stop();

  bool running() const { return !workers_.empty(); }
  // The children's pids, for code that sweeps memdet's children after a
  // run and must leave these alone.
  std::vector<int> pids() const;

 private:
  struct Worker {
    int cpu = -1;
    int pid = -1;
    sys::ScopedFd pidfd;
    sys::ScopedFd report;  // read end of the child's report pipe
  };

  Antagonist() = default;

  std::vector<Worker> workers_;
  int duty_percent_ = 100;
};

// What the noise factor asks the campaign to run beside one launch.
struct AntagonistPlan {
  launch::CpuSet cpus;
  std::string intensity;
};

// The antagonist a run's noise record calls for: nothing for any other
// factor, for a noise factor that was not applied, or for an idle value
// (the reference runs).
std::optional<AntagonistPlan> antagonist_for(const FactorRecord& record);

// Puts what Antagonist::stop returned (or why it could not start) into the
// noise record: the bandwidth and the fraction of full speed it reached,
// against the one asked, become `observed`; the intensity `measured`. The
// record is verified when the antagonist moved memory, and carries a note
// when it fell well short of the fraction asked. Call it after verify_run,
// which checks that the workload kept off the noise CPUs.
void record_antagonist(const Result<AntagonistRate>& rate, FactorRecord& record);

}  // namespace memdet::factors

namespace memdet::factors {

// The antagonist of one run, if its factors ask for one: started before the
// launch, stopped after it, its bandwidth put into the noise record.
class RunNoise {
 public:
  // Starts what `run`'s records ask for; a failure to start is kept for the
  // record, and the run goes on without it.
  explicit RunNoise(const RunFactors& run);
  // memdet's children the launcher must leave alone.
  std::vector<int> pids() const;
  // Stops the antagonist; call before verify_run.
  void stop();
  // After verify_run: the bandwidth into the noise record.
  void record(RunFactors& run) const;

 private:
  std::optional<Antagonist> antagonist_;
  std::optional<Result<AntagonistRate>> outcome_;
  bool asked_ = false;
};

}  // namespace memdet::factors
