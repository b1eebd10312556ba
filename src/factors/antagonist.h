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

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/sys.h"
#include "factors/factor.h"
#include "factors/profile.h"
#include "launch/cpu_list.h"

namespace memdet::factors {

// "stream" copies all the time; "streamN" (N from 1 to 100) copies for N %
// of every 10 ms period and sleeps the rest. Fails with the accepted forms.
Result<int> antagonist_duty_percent(const std::string& intensity);

class Antagonist {
 public:
  // Forks one copier per CPU in `cpus` and returns once every one has
  // pinned itself and touched its buffer, so the run that follows meets a
  // streaming antagonist from its first instruction. Fails, leaving no
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
  // them, and returns the copy bandwidth they achieved together, in GB/s
  // (10^9 bytes) counted as STREAM counts a copy: bytes read plus bytes
  // written. Fails when a child did not report (it was killed from outside)
  // or when nothing is running.
  Result<double> stop();

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
// noise record: the bandwidth becomes `observed` and `measured`, and the
// record is verified when the antagonist moved memory. Call it after
// verify_run, which checks that the workload kept off the noise CPUs.
void record_antagonist(const Result<double>& gbps, FactorRecord& record);

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
  std::optional<Result<double>> outcome_;
  bool asked_ = false;
};

}  // namespace memdet::factors
