// Turns what the factors planned for one run into the launch itself: the
// environment, the preload library and its configuration, the stack
// padding and the controls the child applies before exec.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "factors/profile.h"
#include "launch/launcher.h"

namespace memdet::factors {

struct PreloadUse {
  // Load the library in every run, passive where no factor needs it, and
  // pad LD_PRELOAD and MEMDET_PRELOAD to fixed widths: within a campaign,
  // runs then differ only in the factor under test.
  bool always = false;
  // Where the library writes its report; it appends ".<pid>".
  std::string report_prefix;
};

// A memory-layout fingerprint for a launch: the library is loaded active
// whatever the factors need, and every process of the workload leaves its
// fingerprint in `dir` (absolute; it must exist). Read it back with
// measure::read_run_fingerprint(dir, pid of the launched process). The
// configuration and LD_PRELOAD are then padded as with PreloadUse::always,
// so the directory's name does not change the environment's size.
struct FingerprintUse {
  std::string dir;  // empty: no fingerprint
  // Allocations of at least this many bytes are kept with their address
  // and caller, besides each thread's first ones.
  uint64_t threshold = 64 * 1024;
};

// Adds the run's plan to `spec`, whose env already holds the base
// environment. Fails when the plan cannot be carried out (the preload
// library is missing but needed, the pinned stack total is too small, the
// CPU sets of two factors do not meet). Records the stack total it used.
Status finish_launch(const LaunchPlan& plan, const Host& host, const PreloadUse& use,
                     launch::LaunchSpec& spec, RunFactors& run);
// The same, recording a fingerprint.
Status finish_launch(const LaunchPlan& plan, const Host& host, const PreloadUse& use,
                     const FingerprintUse& fingerprint, launch::LaunchSpec& spec, RunFactors& run);

}  // namespace memdet::factors
