// A profile is what one campaign does with every factor: which are free,
// pinned or perturbed, to which reference value, under which seed. It turns
// into a launch plan per run and, after the run, into one record per
// factor saying what verification saw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "factors/factor.h"

namespace memdet::factors {

// The factor flags as the user gave them.
struct Selection {
  std::vector<std::string> pins;      // "F" or "F=V"; "all"
  std::vector<std::string> perturbs;  // "F" or "F=V" (heap=random); "all"
  std::optional<uint64_t> seed;
  bool system = false;  // --system: system-wide settings may change
  // Values recorded by an earlier run, pinned exactly (--replay).
  std::vector<std::pair<std::string, std::string>> replay;
};

struct ProfileEntry {
  const Factor* factor = nullptr;
  Mode mode = Mode::kFree;
  std::string reference;  // the pinned value
  std::string variant;    // the perturbation's own value ("random" for heap)
  bool explicit_request = false;
  Applied applied = Applied::kFree;
  std::string reason;
  uint64_t seed = 0;
};

struct Profile {
  uint64_t seed = 0;
  std::vector<ProfileEntry> entries;  // one per factor, in all_factors() order

  bool any_perturbed() const;
  bool needs_preload() const;
  const ProfileEntry* find(const std::string& name) const;
};

// Checks the selection against the host. A bad request (unknown factor or
// value, a perturbation a factor does not have, a contradiction, a value the
// host cannot give, a system change without --system or root) fails with
// one line naming the factor.
Result<Profile> make_profile(const Selection& selection, const Host& host);

// The host as the workload sees it once the CPU-shaping factors (numa,
// noise) took their CPUs: what thread placement and counts resolve against.
Host workload_host(const Profile& profile, const Host& host);

// What the factors do in one run. `perturbed` counts perturbed runs from 1;
// 0 is a reference run, where a perturbed factor takes its pinned value.
struct RunFactors {
  LaunchPlan plan;
  std::vector<FactorRecord> records;  // one per factor that is not free
};
RunFactors plan_run(const Profile& profile, const Host& host, int perturbed);

// Fills each record's verification from what the run showed.
void verify_run(const Profile& profile, const Observation& seen, RunFactors& run);

// Compares each factor's measured quantity with the reference run's: a
// perturbed run that measured the same as the reference proves nothing, a
// pinned run that measured something else was not held still. Returns one
// line per such factor.
std::vector<std::string> compare_with_reference(const RunFactors& reference, RunFactors& run);

// The machine-wide writes the profile's pinned values need, made through
// SystemSettings before the first run and undone after the last.
std::vector<SystemWrite> system_writes(const Profile& profile, const Host& host);

// The seed used when none is given: from the kernel's entropy.
uint64_t fresh_seed();

}  // namespace memdet::factors
