// A factor is one mechanism that can make a run's memory layout or timing
// differ between launches. Each can be left free, pinned to one value, or
// perturbed: a different value in each perturbed run, drawn from a recorded
// seed and never equal to the pinned reference. A factor knows how to apply
// a value before exec and how to judge, from the child's side, whether it
// took effect. One file per factor in this folder.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "factors/host.h"
#include "factors/preload_report.h"
#include "launch/controls.h"
#include "launch/launcher.h"

namespace memdet::factors {

enum class Mode { kFree, kPin, kPerturb };
const char* mode_name(Mode mode);

// What a factor contributes to one launch.
struct LaunchPlan {
  launch::Controls controls;
  std::map<std::string, std::string> env;      // set (replacing) in the child
  std::map<std::string, std::string> preload;  // fields of MEMDET_PRELOAD
  std::string lower_allocator;                 // preloaded beneath the shim; empty: libc's
  // The stack factor: the total of argv + environment + path bytes to pad
  // to ("auto": the command's own, rounded up; empty: no padding), plus
  // `stack_extra` bytes.
  std::string stack_base;
  size_t stack_extra = 0;
  bool needs_preload = false;
};

// One write of a system-wide setting (a /proc/sys or /sys file), made
// through the journal so that it is undone on every exit path.
struct SystemWrite {
  std::string path;
  std::string value;
};

// What the child showed: the exec stop, the preload library's report from
// just before exit, and the launch itself.
struct Observation {
  const launch::LaunchResult* launch = nullptr;
  const PreloadReport* preload = nullptr;  // never null; may be empty
  const std::vector<std::string>* argv = nullptr;
  const Host* host = nullptr;  // as read before the first run
  // The reports of the processes the launched one started; may be null.
  const std::vector<PreloadReport>* descendants = nullptr;
};

enum class Applied {
  kFree,           // not asked for
  kApplied,        // applied; see the verification
  kNotApplicable,  // implied by `all`, but this host cannot vary it
  kRefused,        // the host refused it
};
const char* applied_name(Applied applied);

// One factor in one run, as the record holds it.
struct FactorRecord {
  std::string name;
  Mode mode = Mode::kFree;
  std::string value;       // what this run used
  std::string reference;   // the pinned value a perturbed run must differ from
  bool perturbed = false;  // this run took a perturbed value
  uint64_t seed = 0;       // the factor's own seed, for perturbed values
  Applied applied = Applied::kFree;
  std::string reason;  // for kNotApplicable and kRefused
  launch::CheckState verified = launch::CheckState::kUnread;
  std::string observed;  // what verification saw
  // The quantity the factor moves, comparable between runs ("startstack
  // 0x7ffd...", "mod64 16"): a perturbed run must differ from the
  // reference run in it.
  std::string measured;
  bool replayable = true;
  std::string note;
};

// The outcome of checking a request against the host.
struct Resolution {
  enum class Kind { kOk, kNotApplicable, kError } kind = Kind::kOk;
  std::string value;   // kOk: the pinned (reference) value
  std::string reason;  // kNotApplicable, kError: one line
};

inline Resolution resolved(std::string value) {
  return {Resolution::Kind::kOk, std::move(value), {}};
}
inline Resolution not_applicable(std::string reason) {
  return {Resolution::Kind::kNotApplicable, {}, std::move(reason)};
}
inline Resolution bad_request(std::string reason) {
  return {Resolution::Kind::kError, {}, std::move(reason)};
}

class Factor {
 public:
  virtual ~Factor() = default;

  virtual const char* name() const = 0;
  // One line for --help.
  virtual const char* summary() const = 0;
  // Changes a setting of the whole machine: needs --system and root, and is
  // journaled.
  virtual bool system_wide() const { return false; }
  // Part of `--pin all`.
  virtual bool in_all() const { return true; }
  virtual bool perturbable() const { return true; }
  // A perturbed value can be given again exactly in a later run; ASLR's
  // layout comes from the kernel's entropy and cannot.
  virtual bool replayable() const { return true; }
  // Left free, the factor takes a value of its own in each run (the
  // kernel's layout, the scheduler's placement), so its value can explain
  // runs that differ; a free heap offset or allocator stays the same.
  virtual bool varies_when_free() const { return false; }
  // Restricts the CPUs the workload gets (numa binding, noise): resolved and
  // applied before the factors that place threads on those CPUs.
  virtual bool shapes_cpus() const { return false; }
  // Works through libmemdet_preload.so inside the workload.
  virtual bool needs_preload() const { return false; }
  // A perturbation of its own kind (--perturb heap=random); "" is the plain one.
  virtual bool accepts_variant(const std::string& variant) const { return variant.empty(); }

  // Checks a request for `value` (empty: the factor's default) against the
  // host and returns the reference value.
  virtual Resolution resolve(const std::string& value, const Host& host) const = 0;

  // The value of the k-th perturbed run (k from 1), different from
  // `reference`. The default cycles through alternatives() in a seeded
  // order before repeating one.
  virtual std::string perturbed_value(const std::string& reference, const std::string& variant,
                                      int k, uint64_t seed, const Host& host) const;
  virtual std::vector<std::string> alternatives(const std::string& reference,
                                                const Host& host) const;

  // Adds what `value` needs to the launch.
  virtual void apply(const std::string& value, const Host& host, LaunchPlan& plan) const = 0;

  // The system-wide settings `value` needs, written before the first run and
  // restored after the last; none for a per-process value.
  virtual std::vector<SystemWrite> system_writes(const std::string& value, const Host& host) const;

  // Judges what the child showed; fills verified, observed and measured.
  virtual void verify(const std::string& value, const Observation& seen,
                      FactorRecord& record) const = 0;
};

// Every factor, in the order reports list them.
const std::vector<const Factor*>& all_factors();
const Factor* find_factor(const std::string& name);

// A 64-bit mix of a seed and a salt (SplitMix64 over both).
uint64_t mix_seed(uint64_t seed, uint64_t salt);
uint64_t mix_seed(uint64_t seed, const std::string& salt);

}  // namespace memdet::factors
