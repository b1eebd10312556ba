#include "measure/counters.h"

#include <dirent.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "core/text.h"

namespace memdet::measure {
namespace {

constexpr uint64_t cache_event(uint64_t cache, uint64_t op, uint64_t result) {
  return cache | (op << 8) | (result << 16);
}

constexpr int kCapPerfmon = 38;  // <linux/capability.h> of kernels before 5.8 lacks it
constexpr int kCapSysAdmin = 21;

bool is_generic_llc(const EventSpec& spec) {
  return spec.source == Source::kHardware && spec.type == PERF_TYPE_HW_CACHE;
}

long perf_event_open(perf_event_attr& attr, int pid) {
  return ::syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

// The attributes every counter shares: counting only from the workload's
// execve on, inherited by what it starts, with the times that reveal
// multiplexing.
perf_event_attr base_attr(const PlannedEvent& planned) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = planned.spec.type;
  attr.config = planned.spec.config;
  attr.disabled = 1;
  attr.enable_on_exec = 1;
  attr.inherit = 1;
  attr.exclude_kernel = planned.exclude_kernel ? 1 : 0;
  attr.exclude_hv = planned.exclude_kernel ? 1 : 0;
  attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  return attr;
}

}  // namespace

const std::vector<EventSpec>& default_events() {
  static const std::vector<EventSpec> events = {
      {"task-clock", Source::kSoftware, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, "ns"},
      {"context-switches", Source::kSoftware, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES,
       ""},
      {"cpu-migrations", Source::kSoftware, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS, ""},
      {"page-faults", Source::kSoftware, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, ""},
      {"minor-faults", Source::kSoftware, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN, ""},
      {"major-faults", Source::kSoftware, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ, ""},
      {"cycles", Source::kHardware, PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, ""},
      {"instructions", Source::kHardware, PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, ""},
      {"LLC-load-misses", Source::kHardware, PERF_TYPE_HW_CACHE,
       cache_event(PERF_COUNT_HW_CACHE_LL, PERF_COUNT_HW_CACHE_OP_READ,
                   PERF_COUNT_HW_CACHE_RESULT_MISS),
       ""},
      {"LLC-store-misses", Source::kHardware, PERF_TYPE_HW_CACHE,
       cache_event(PERF_COUNT_HW_CACHE_LL, PERF_COUNT_HW_CACHE_OP_WRITE,
                   PERF_COUNT_HW_CACHE_RESULT_MISS),
       ""},
      {"DEMAND_DATA_CACHE_FILLS_FROM_SYSTEM:DRAM_IO_NEAR", Source::kNamed, 0, 0, ""},
      {"DEMAND_DATA_CACHE_FILLS_FROM_SYSTEM:DRAM_IO_FAR", Source::kNamed, 0, 0, ""},
  };
  return events;
}

std::optional<int> read_perf_event_paranoid(const std::string& path) {
  auto text = sys::read_small_file(path);
  if (!text) {
    return std::nullopt;
  }
  std::string value(trim(*text));
  char* end = nullptr;
  long number = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0') {
    return std::nullopt;
  }
  return static_cast<int>(number);
}

bool perf_capable() {
  if (::geteuid() == 0) {
    return true;
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return false;
  }
  auto has = [&](int capability) {
    return (data[capability / 32].effective & (1U << (capability % 32))) != 0;
  };
  return has(kCapPerfmon) || has(kCapSysAdmin);
}

Privilege read_privilege() { return {perf_capable(), read_perf_event_paranoid()}; }

bool core_pmu_visible(const std::string& sysfs_root) {
  DIR* devices = ::opendir((sysfs_root + "/bus/event_source/devices").c_str());
  if (devices == nullptr) {
    return false;
  }
  bool found = false;
  while (dirent* entry = ::readdir(devices)) {
    std::string name = entry->d_name;
    if (name == "cpu" || name == "cpu_core" || name == "cpu_atom" || name.rfind("armv", 0) == 0) {
      found = true;
      break;
    }
  }
  ::closedir(devices);
  return found;
}

std::vector<PlannedEvent> plan_events(const std::vector<EventSpec>& events,
                                      const Privilege& privilege) {
  const bool kernel = privilege.kernel_allowed();
  std::vector<PlannedEvent> plan;
  for (const EventSpec& spec : events) {
    PlannedEvent planned{spec, !kernel, ""};
    // With exclude_kernel these open and count nothing: the kernel does the
    // switching and the migrating.
    const bool kernel_only = spec.source == Source::kSoftware && spec.type == PERF_TYPE_SOFTWARE &&
                             (spec.config == PERF_COUNT_SW_CONTEXT_SWITCHES ||
                              spec.config == PERF_COUNT_SW_CPU_MIGRATIONS);
    if (kernel_only && !kernel) {
      planned.unsupported = kNeedsPrivilege;
    }
    plan.push_back(planned);
  }
  return plan;
}

std::string open_failure_reason(int error, Source source, bool pmu_visible) {
  switch (error) {
    case EACCES:
    case EPERM:
      return kNeedsPrivilege;
    case ENOENT:
    case ENODEV:
    case EOPNOTSUPP:
      if (source != Source::kSoftware && !pmu_visible) {
        return kNoPmu;
      }
      return "this PMU does not count it (" + sys::errno_text(error) + ")";
    case EMFILE:
    case ENFILE:
      return "no file descriptor left for it";
    default:
      return "perf_event_open: " + sys::errno_text(error);
  }
}

void warm_up_perf_events() {
  static bool started = false;
  if (started) {
    return;
  }
  started = true;
  std::thread([] {
    for (const EventSpec& spec : default_events()) {
      if (spec.source != Source::kSoftware) {
        continue;
      }
      perf_event_attr attr{};
      attr.size = sizeof attr;
      attr.type = spec.type;
      attr.config = spec.config;
      attr.disabled = 1;
      // User space only: allowed on one's own process at any paranoid
      // level below 3. Never enabled, it counts nothing; it is never
      // closed either, so the kernel's hooks for its type stay patched in.
      attr.exclude_kernel = 1;
      attr.exclude_hv = 1;
      perf_event_open(attr, 0);
    }
  }).detach();
}

double CounterValue::value() const {
  if (multiplexed() && running_ns > 0) {
    return static_cast<double>(raw) * static_cast<double>(enabled_ns) /
           static_cast<double>(running_ns);
  }
  return static_cast<double>(raw);
}

const CounterValue* CounterReadings::find(const std::string& name) const {
  for (const CounterValue& counter : counters) {
    if (counter.name == name) {
      return &counter;
    }
  }
  return nullptr;
}

CounterSet CounterSet::open(int pid, const std::vector<PlannedEvent>& plan) {
  CounterSet set;
  std::optional<bool> pmu_visible;  // looked up at the first hardware failure
  bool generic_llc_opened = false;
  bool generic_llc_planned = false;
  std::string hardware_absent;  // why the core PMU gave nothing, once cycles failed

  for (const PlannedEvent& planned : plan) {
    set.user_space_only_ = set.user_space_only_ || planned.exclude_kernel;
    Open event{planned, sys::ScopedFd(), planned.unsupported};
    if (!event.reason.empty()) {
      set.events_.push_back(std::move(event));
      continue;
    }
    if (planned.spec.source == Source::kNamed && (generic_llc_opened || !generic_llc_planned)) {
      // The generic LLC events count for this process; nothing to replace.
      continue;
    }
    if (planned.spec.source == Source::kNamed && !hardware_absent.empty()) {
      // Named events are core events: without the core PMU they cannot
      // open, and asking libpfm4 would cost its start-up for nothing.
      event.reason = hardware_absent;
      set.events_.push_back(std::move(event));
      continue;
    }

    perf_event_attr attr = base_attr(planned);
    if (planned.spec.source == Source::kNamed) {
      auto encoding = resolve_named_event(planned.spec.name, planned.exclude_kernel);
      if (!encoding) {
        event.reason = encoding.error().message;
        set.events_.push_back(std::move(event));
        continue;
      }
      attr.type = encoding->type;
      attr.config = encoding->config;
      attr.config1 = encoding->config1;
      attr.config2 = encoding->config2;
    }
    long fd = perf_event_open(attr, pid);
    if (fd >= 0) {
      event.fd.reset(static_cast<int>(fd));
    } else {
      int error = errno;
      if (!pmu_visible && planned.spec.source != Source::kSoftware) {
        pmu_visible = core_pmu_visible();
      }
      event.reason = open_failure_reason(error, planned.spec.source, pmu_visible.value_or(true));
      if (planned.spec.source == Source::kHardware && planned.spec.type == PERF_TYPE_HARDWARE &&
          event.reason == kNoPmu) {
        hardware_absent = event.reason;
      }
    }
    if (is_generic_llc(planned.spec)) {
      generic_llc_planned = true;
      generic_llc_opened = generic_llc_opened || event.fd.valid();
    }
    set.events_.push_back(std::move(event));
  }
  return set;
}

CounterReadings CounterSet::read() const {
  CounterReadings readings;
  readings.measured = true;
  readings.user_space_only = user_space_only_;
  for (const Open& event : events_) {
    CounterValue value;
    value.name = event.planned.spec.name;
    value.source = event.planned.spec.source;
    value.unit = event.planned.spec.unit;
    value.reason = event.reason;
    if (event.fd.valid()) {
      uint64_t fields[3] = {0, 0, 0};
      ssize_t got = ::read(event.fd.get(), fields, sizeof fields);
      if (got == static_cast<ssize_t>(sizeof fields)) {
        value.raw = fields[0];
        value.enabled_ns = fields[1];
        value.running_ns = fields[2];
        value.supported = true;
        // Enabled but never on a hardware counter: every slot was taken
        // by other events, and the count says nothing.
        if (value.enabled_ns > 0 && value.running_ns == 0) {
          value.supported = false;
          value.reason = "never counted: other events held every hardware counter";
        }
      } else {
        value.reason = "read: " + sys::errno_text(got < 0 ? errno : EIO);
      }
    }
    readings.counters.push_back(value);
  }
  return readings;
}

std::vector<std::string> UnsupportedNotices::take(const CounterReadings& readings) {
  // Grouped by reason, in the order the reasons first appear.
  std::vector<std::pair<std::string, std::string>> by_reason;
  for (const CounterValue& counter : readings.counters) {
    if (counter.supported || !announced_.insert(counter.name).second) {
      continue;
    }
    auto it = by_reason.begin();
    while (it != by_reason.end() && it->first != counter.reason) {
      ++it;
    }
    if (it == by_reason.end()) {
      by_reason.emplace_back(counter.reason, counter.name);
    } else {
      it->second += ", " + counter.name;
    }
  }
  std::vector<std::string> lines;
  for (const auto& [reason, names] : by_reason) {
    // Without a PMU no hardware event opens; the records name each one.
    lines.push_back((reason == kNoPmu ? std::string("hardware counters") : names) +
                    " not supported (" + reason + ")");
  }
  return lines;
}

UnsupportedNotices& process_notices() {
  static UnsupportedNotices notices;
  return notices;
}

}  // namespace memdet::measure
