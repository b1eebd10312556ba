// Judging the host: the kernel's memory and scheduling settings, what
// memdet can probe, and the CPU. Each finding names memdet's own flag when
// memdet can hold the factor for one run, and the system command otherwise.
#include "doctor/findings.h"

#include "measure/counters.h"

#include <algorithm>
#include <string>

namespace memdet::doctor {
namespace {

std::string number(long long value) { return std::to_string(value); }

std::string plural(long long count, const std::string& noun) {
  return number(count) + " " + noun + (count == 1 ? "" : "s");
}

void add(std::vector<Finding>& findings, std::string id, Severity severity, std::string what,
         std::string why, std::string fix) {
  findings.push_back({std::move(id), severity, std::move(what), std::move(why), std::move(fix)});
}

void judge_aslr(const Facts& facts, std::vector<Finding>& findings) {
  bool refused = facts.personality.outcome == ProbeOutcome::kRefused;
  bool randomised = facts.randomize_va_space && *facts.randomize_va_space != 0;
  if (randomised) {
    add(findings, "aslr", Severity::kMedium,
        "address-space randomisation is on (randomize_va_space " +
            number(*facts.randomize_va_space) + ")",
        "stack, mmap and library addresses change every launch, and with them the alignment "
        "of arrays and the order of address-keyed containers, which can change the bits",
        refused ? "sysctl -w kernel.randomize_va_space=0 on the host (this process may not use "
                  "--pin aslr, see personality)"
                : "memdet run --pin aslr (per process, as setarch -R does)");
  }
  if (refused) {
    add(findings, "personality", randomised ? Severity::kHigh : Severity::kLow,
        "personality(ADDR_NO_RANDOMIZE) is refused (" + facts.personality.error +
            "): a seccomp filter, as containers install, blocks it",
        randomised ? "memdet cannot pin aslr or stack here, so every run gets a new layout"
                   : "ASLR is off system-wide now, but --pin aslr fails if it is turned back on",
        "allow personality in the container's seccomp profile (docker run --security-opt "
        "seccomp=PROFILE), or turn ASLR off on the host: sysctl -w kernel.randomize_va_space=0");
  }
}

void judge_numa(const Facts& facts, std::vector<Finding>& findings) {
  int nodes = facts.topology ? facts.topology->numa_nodes : 0;
  if (nodes >= 2) {
    add(findings, "numa-nodes", Severity::kMedium,
        plural(nodes, "NUMA node") + ": pages land on the node of the CPU that first touches them",
        "remote memory is slower, so which node a run's pages and threads get changes its "
        "timing and the order of timing-dependent reductions",
        "memdet run --pin numa=bind:0 (or numactl --membind=0 --cpunodebind=0 CMD)");
  }
  if (facts.numa_balancing && *facts.numa_balancing != 0) {
    std::string mode = *facts.numa_balancing == 2   ? " (memory tiering)"
                       : *facts.numa_balancing == 3 ? " (balancing and memory tiering)"
                                                    : "";
    add(findings, "numa-balancing", nodes >= 2 ? Severity::kHigh : Severity::kLow,
        "automatic NUMA balancing is on (numa_balancing " + number(*facts.numa_balancing) + ")" +
            mode,
        nodes >= 2 ? "the kernel unmaps pages to sample accesses and migrates pages and threads "
                     "between nodes while the program runs, differently every run"
                   : "with one node nothing migrates, but the sampling faults still cost time",
        nodes >= 2 ? "memdet run --system --pin numa-balancing=0 (as root; restored afterwards), "
                     "or sysctl -w kernel.numa_balancing=0"
                   : "sysctl -w kernel.numa_balancing=0");
  }
}

void judge_thp(const Facts& facts, std::vector<Finding>& findings) {
  if (facts.thp_enabled == "always") {
    add(findings, "thp", Severity::kMedium,
        "transparent huge pages are 'always': any large anonymous region may get 2 MiB pages",
        "whether it does depends on alignment and on free contiguous memory at fault time, so "
        "page faults, TLB reach and physical placement differ between runs",
        "memdet run --pin thp=never (per process), or echo madvise > "
        "/sys/kernel/mm/transparent_hugepage/enabled");
  }
  if (facts.thp_defrag == "always" && facts.thp_enabled != "never") {
    add(findings, "thp-defrag", Severity::kLow,
        "THP defrag is 'always': a fault that wants a huge page waits for direct compaction",
        "stalls at unpredictable points change timing, not layout",
        "echo defer+madvise > /sys/kernel/mm/transparent_hugepage/defrag, or memdet run --pin "
        "thp=never");
  }
  for (const HugePagePool& pool : facts.hugepages) {
    if (pool.total > 0 && pool.free < pool.total) {
      std::string size = format_bytes(static_cast<uint64_t>(pool.page_kib) * 1024);
      std::string id = pool.page_kib % (1024 * 1024) == 0
                           ? std::to_string(pool.page_kib / (1024 * 1024)) + "G"
                           : std::to_string(pool.page_kib / 1024) + "M";
      add(findings, "hugepages-" + id, Severity::kLow,
          "the " + size + " huge page pool has " + number(pool.free) + " of " + number(pool.total) +
              " pages free: other processes hold the rest",
          "a program that maps huge pages gets them only while the pool has some free, and "
          "falls back to small pages or fails otherwise",
          "find the holders (grep -l huge /proc/*/numa_maps), or grow the pool: echo " +
              number(pool.total * 2) + " > /sys/kernel/mm/hugepages/hugepages-" +
              number(pool.page_kib) + "kB/nr_hugepages");
    }
  }
}

void judge_memlock(const Facts& facts, const Options& options, std::vector<Finding>& findings) {
  if (!facts.memlock_visible || !facts.memlock_limit || facts.cap_ipc_lock.value_or(false)) {
    return;
  }
  uint64_t limit = *facts.memlock_limit;
  std::string fix =
      "ulimit -l unlimited before memdet (as root; or LimitMEMLOCK=infinity for a service, "
      "memlock in /etc/security/limits.conf), or run memdet with CAP_IPC_LOCK";
  if (limit < options.mlock_bytes) {
    add(findings, "memlock", Severity::kMedium,
        "RLIMIT_MEMLOCK is " + format_bytes(limit) + " without CAP_IPC_LOCK: an mlock of " +
            format_bytes(options.mlock_bytes) + " fails",
        "memdet refuses --pin mlock (it locks every page, which needs an unlimited limit), and a "
        "program that locks its buffers itself gets ENOMEM",
        fix);
  } else {
    add(findings, "memlock", Severity::kLow,
        "RLIMIT_MEMLOCK is " + format_bytes(limit) + " without CAP_IPC_LOCK: an mlock of " +
            format_bytes(options.mlock_bytes) + " fits, locking everything does not",
        "memdet refuses --pin mlock, which locks every page and needs an unlimited limit", fix);
  }
}

// A saved machine records the errno, a live probe memdet's reason for it.
bool permission(const Probe& probe) {
  return probe.outcome == ProbeOutcome::kRefused &&
         (probe.error == "EPERM" || probe.error == "EACCES" ||
          probe.error == measure::kNeedsPrivilege);
}

bool no_pmu(const Probe& probe, bool pmu_visible) {
  return probe.outcome == ProbeOutcome::kRefused &&
         ((probe.error == "ENOENT" && !pmu_visible) || probe.error == measure::kNoPmu);
}

void judge_perf(const Facts& facts, std::vector<Finding>& findings) {
  std::string paranoid = facts.perf_event_paranoid
                             ? " (perf_event_paranoid " + number(*facts.perf_event_paranoid) + ")"
                             : "";
  std::string privilege_fix =
      "sysctl -w kernel.perf_event_paranoid=1, or run memdet as root (in a container: docker "
      "run --cap-add PERFMON)";
  if (facts.perf_software.outcome == ProbeOutcome::kRefused) {
    add(findings, "perf-software", Severity::kMedium,
        "perf_event_open refuses a software counter (task-clock) with " +
            facts.perf_software.error + paranoid,
        "memdet records no counters: page faults and context switches fall back to the child's "
        "rusage and CPU migrations go unrecorded, so timing differences lose their explanation",
        privilege_fix);
  } else if (facts.perf_software.outcome == ProbeOutcome::kUserOnly) {
    add(findings, "perf-software", Severity::kLow,
        "software counters open only for user space (exclude_kernel)" +
            (facts.perf_event_paranoid
                 ? ", as perf_event_paranoid " + number(*facts.perf_event_paranoid) + " allows"
                 : std::string()),
        "context switches and CPU migrations then read 0; memdet records them as not supported",
        privilege_fix);
  }

  const Probe& hardware = facts.perf_hardware;
  if (hardware.outcome != ProbeOutcome::kRefused ||
      (permission(hardware) && permission(facts.perf_software))) {
    return;
  }
  if (permission(hardware)) {
    add(findings, "perf-hardware", Severity::kLow,
        "perf_event_open refuses the cycles counter with " + hardware.error + paranoid,
        "cycles, instructions and cache misses are not recorded, so a timing difference cannot "
        "be traced to the memory system",
        privilege_fix);
  } else if (no_pmu(hardware, facts.pmu_visible)) {
    add(findings, "perf-hardware", Severity::kLow,
        "no hardware counters: cycles does not open (" + hardware.error +
            ") and there is no /sys/bus/event_source/devices/cpu (a virtual machine without a "
            "virtual PMU)",
        "cycles, instructions and cache misses are not recorded, so a timing difference cannot "
        "be traced to the memory system",
        "give the guest a PMU (KVM: -cpu host,pmu=on; in a cloud, an instance type with a "
        "virtual PMU)");
  } else {
    add(findings, "perf-hardware", Severity::kLow,
        "perf_event_open refuses the cycles counter with " + hardware.error,
        "cycles, instructions and cache misses are not recorded",
        "perf stat -e cycles true shows whether the kernel can count cycles here");
  }
}

void judge_cpu(const Facts& facts, std::vector<Finding>& findings) {
  std::string others;
  int cpus = 0;
  for (const auto& [governor, count] : facts.governors) {
    if (governor != "performance") {
      others += (others.empty() ? "" : ", ") + governor;
      cpus += count;
    }
  }
  if (!others.empty()) {
    add(findings, "cpufreq", Severity::kLow,
        "the CPU frequency governor is " + others + " on " + plural(cpus, "CPU"),
        "clock speed follows load, so timings and the interleaving of threads vary; results "
        "change only where they depend on timing",
        "cpupower frequency-set -g performance (system-wide)");
  }
  if (facts.smt_active == 1) {
    std::string cpus_flag = facts.topology && !facts.topology->first_pu_per_core.empty()
                                ? "memdet run --cpus " + facts.topology->first_pu_per_core +
                                      " --pin cpu (one hardware thread per core)"
                                : "memdet run --cpus LIST --pin cpu with one CPU per core";
    add(findings, "smt", Severity::kLow, "SMT is on: two hardware threads share each core",
        "a thread's speed depends on what its sibling runs, which moves the arrival order of "
        "parallel reductions",
        cpus_flag + ", or echo off > /sys/devices/system/cpu/smt/control");
  }
}

}  // namespace

const char* severity_name(Severity severity) {
  switch (severity) {
    case Severity::kHigh:
      return "high";
    case Severity::kMedium:
      return "medium";
    case Severity::kLow:
      return "low";
  }
  return "low";
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (unit < 4 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return std::to_string(bytes) + " " + units[unit];
}

void judge_host(const Facts& facts, const Options& options, std::vector<Finding>& findings) {
  judge_aslr(facts, findings);
  judge_numa(facts, findings);
  judge_thp(facts, findings);
  judge_memlock(facts, options, findings);
  judge_perf(facts, findings);
  judge_cpu(facts, findings);
}

std::vector<Finding> judge(const Facts& facts, const Options& options) {
  std::vector<Finding> findings;
  judge_host(facts, options, findings);
  judge_environment(facts, findings);
  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    return static_cast<int>(a.severity) < static_cast<int>(b.severity);
  });
  return findings;
}

}  // namespace memdet::doctor
