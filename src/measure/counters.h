// perf_event_open counters on one workload, opened from memdet while the
// child waits before its execve and read after the workload is reaped.
//
// Each counter is inherited by the workload's threads and children and
// starts counting at the exec (enable_on_exec), so memdet's own forked copy
// is not counted. A counter the host cannot give is recorded as not
// supported with the reason taken from what failed, never as 0.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/sys.h"
#include "measure/vmstat.h"

namespace memdet::measure {

// The reasons a counter is not supported, as records and notices spell them.
inline constexpr const char* kNeedsPrivilege = "needs perf_event_paranoid <= 1 or root";
inline constexpr const char* kNoPmu = "no hardware PMU visible";
inline constexpr const char* kUnknownEvent = "unknown event";

enum class Source {
  kSoftware,  // the kernel's own counts: always there
  kHardware,  // generic hardware events of the core PMU
  kNamed,     // a core event by its name, resolved with libpfm4
};

// What perf_event_open is asked for. Named events carry no encoding: it is
// resolved when they are opened.
struct EventSpec {
  std::string name;  // as perf(1) spells it, or libpfm4's name
  Source source = Source::kSoftware;
  uint32_t type = 0;    // PERF_TYPE_*
  uint64_t config = 0;  // PERF_COUNT_*
  std::string unit;     // "ns" for task-clock; empty for a count
};

// Software: task-clock, context switches, CPU migrations, page faults with
// their minor and major parts. Hardware: cycles, instructions, LLC load and
// store misses (generic cache events). Named: the core's demand fills from
// DRAM, which stand in for LLC misses where the generic ones cannot follow
// one process (AMD Zen counts its L3 per CPU only).
const std::vector<EventSpec>& default_events();

// Who memdet runs as, for what the kernel lets it count.
struct Privilege {
  bool capable = false;  // root, CAP_PERFMON or CAP_SYS_ADMIN
  // /proc/sys/kernel/perf_event_paranoid; unknown when it cannot be read.
  std::optional<int> paranoid;

  // Kernel-side events of another process: only with capability or
  // paranoid <= 1. Otherwise a counter opens only with exclude_kernel.
  bool kernel_allowed() const { return capable || (paranoid && *paranoid <= 1); }
};

// The value in `path`, or none when it cannot be read or is not a number.
std::optional<int> read_perf_event_paranoid(
    const std::string& path = "/proc/sys/kernel/perf_event_paranoid");
// geteuid() == 0, or CAP_PERFMON or CAP_SYS_ADMIN in the effective set.
bool perf_capable();
Privilege read_privilege();

// Whether the kernel shows a core PMU under `sysfs_root`/bus/event_source/
// devices ("cpu", or "cpu_core"/"cpu_atom" on hybrid parts, "armv*" on Arm).
bool core_pmu_visible(const std::string& sysfs_root = "/sys");

// One event as it will be opened: with exclude_kernel when the privilege
// asks for it, or not at all when the counts would be silently wrong.
struct PlannedEvent {
  EventSpec spec;
  bool exclude_kernel = false;
  std::string unsupported;  // set: not opened, for this reason
};

// Without kernel access context switches and CPU migrations open but read
// 0 (they are counted in the kernel), so they are planned as not supported.
std::vector<PlannedEvent> plan_events(const std::vector<EventSpec>& events,
                                      const Privilege& privilege);

// The reason for a failed perf_event_open, from its errno: EACCES and EPERM
// are the paranoid setting; ENOENT (and ENODEV, EOPNOTSUPP) for a hardware
// event on a host without a visible core PMU is "no hardware PMU visible".
std::string open_failure_reason(int error, Source source, bool pmu_visible);

// A libpfm4 name resolved to what perf_event_open takes. Fails with
// kUnknownEvent when libpfm4 does not know the name on this host's PMU
// (libpfm4 reads the CPU's identity, so it names a PMU even in a VM that
// exposes none: only perf_event_open can say whether the event counts).
struct NamedEncoding {
  uint32_t type = 0;
  uint64_t config = 0;
  uint64_t config1 = 0;
  uint64_t config2 = 0;
};
Result<NamedEncoding> resolve_named_event(const std::string& name, bool exclude_kernel);

// Two one-off costs of perf_event_open, measured here, that this moves off
// the launch. The first per-task event of a quiet system switches on the
// kernel's scheduling hooks and waits for an RCU grace period
// (account_event() in kernel/events/core.c: 5 to 15 ms in this VM). And the
// first event of each software type patches that type's hook into the
// kernel's text, the last one's close patches it out again
// (perf_swevent_enabled in the same file), each time across every CPU:
// about 0.5 ms of a launch in this VM. This opens one disabled,
// never-closed event of each software type on memdet itself, in a
// background thread: the grace period overlaps memdet's own set-up, and
// the workloads' counters find their hooks in place. Call it early, once;
// it never fails and never blocks.
void warm_up_perf_events();

// One counter's reading.
struct CounterValue {
  std::string name;
  Source source = Source::kSoftware;
  std::string unit;
  bool supported = false;
  std::string reason;  // when not supported
  uint64_t raw = 0;
  uint64_t enabled_ns = 0;  // how long the counter was enabled
  uint64_t running_ns = 0;  // and how long it really counted

  // Shared hardware counters are time-sliced between events: the count then
  // covers only part of the run and is scaled up to the whole of it.
  bool multiplexed() const { return supported && running_ns < enabled_ns; }
  double value() const;
};

// What was measured around one run.
struct CounterReadings {
  bool measured = false;         // false: the workload never reached its exec
  bool user_space_only = false;  // opened with exclude_kernel
  std::vector<CounterValue> counters;
  // System-wide, from /proc/vmstat before and after.
  std::vector<VmstatDelta> vmstat;
  std::string vmstat_error;

  const CounterValue* find(const std::string& name) const;
};

// The counters of one workload, open from before its exec until they are
// read.
class CounterSet {
 public:
  CounterSet() = default;
  // Opens every planned event on `pid`, a child of ours that has not yet
  // called execve. Never fails: an event that does not open is kept with
  // its reason. Named events are opened only when a generic LLC event did
  // not, since they replace those.
  static CounterSet open(int pid, const std::vector<PlannedEvent>& plan);

  // The counts so far; after the workload and its children are reaped, the
  // whole run's.
  CounterReadings read() const;

 private:
  struct Open {
    PlannedEvent planned;
    sys::ScopedFd fd;
    std::string reason;
  };
  std::vector<Open> events_;
  bool user_space_only_ = false;
};

// Lines for the unsupported counters of `readings` not yet announced, one
// per reason: "cycles, instructions not supported (no hardware PMU visible)".
// Each counter is announced once in the life of this object.
class UnsupportedNotices {
 public:
  std::vector<std::string> take(const CounterReadings& readings);

 private:
  std::set<std::string> announced_;
};

// The one instance a memdet invocation announces through.
UnsupportedNotices& process_notices();

}  // namespace memdet::measure
