// The report for people: what doctor read, a line per fact ("not visible"
// where it could read nothing), then a line per finding with its severity,
// why it matters and its fix.
#include <cstdio>
#include <map>
#include <string>

#include "core/text.h"
#include "doctor/report.h"

namespace memdet::doctor {
namespace {

constexpr const char* kNotVisible = "not visible";

std::string plural(long long count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

std::string probe_text(const Probe& probe, const char* allowed) {
  switch (probe.outcome) {
    case ProbeOutcome::kNotVisible:
      return kNotVisible;
    case ProbeOutcome::kAllowed:
      return allowed;
    case ProbeOutcome::kUserOnly:
      return std::string(allowed) + " for user space only";
    case ProbeOutcome::kRefused:
      return "refused (" + probe.error + ")";
  }
  return kNotVisible;
}

std::string aslr_text(const Facts& facts) {
  if (!facts.randomize_va_space) {
    return kNotVisible;
  }
  const char* meaning = *facts.randomize_va_space == 0   ? "off"
                        : *facts.randomize_va_space == 1 ? "stack, mmap and vDSO randomised"
                                                         : "stack, mmap, vDSO and heap randomised";
  return "randomize_va_space " + std::to_string(*facts.randomize_va_space) + " (" + meaning + ")";
}

std::string topology_text(const Facts& facts) {
  if (!facts.topology) {
    return kNotVisible;
  }
  const Topology& t = *facts.topology;
  return plural(t.packages, "package") + ", " + plural(t.numa_nodes, "NUMA node") + ", " +
         plural(t.cores, "core") + ", " + plural(t.pus, "PU") + " (hwloc)";
}

std::string balancing_text(const Facts& facts) {
  if (!facts.numa_balancing) {
    return kNotVisible;
  }
  const char* meaning = *facts.numa_balancing == 0   ? "off"
                        : *facts.numa_balancing == 1 ? "on"
                        : *facts.numa_balancing == 2 ? "memory tiering"
                                                     : "on, with memory tiering";
  return std::to_string(*facts.numa_balancing) + " (" + meaning + ")";
}

std::string thp_text(const Facts& facts) {
  return "enabled " + facts.thp_enabled.value_or(kNotVisible) + ", defrag " +
         facts.thp_defrag.value_or(kNotVisible);
}

std::string hugepages_text(const Facts& facts) {
  if (facts.hugepages.empty()) {
    return kNotVisible;
  }
  std::string text;
  for (const HugePagePool& pool : facts.hugepages) {
    text += (text.empty() ? "" : "; ") + format_bytes(static_cast<uint64_t>(pool.page_kib) * 1024) +
            " pages: " + std::to_string(pool.total) + " total, " + std::to_string(pool.free) +
            " free";
  }
  return text;
}

std::string memlock_text(const Facts& facts) {
  std::string limit = !facts.memlock_visible ? std::string(kNotVisible)
                      : facts.memlock_limit  ? format_bytes(*facts.memlock_limit)
                                             : std::string("unlimited");
  std::string capability = !facts.cap_ipc_lock ? std::string("CAP_IPC_LOCK not visible")
                           : *facts.cap_ipc_lock
                               ? std::string("CAP_IPC_LOCK held (no limit applies)")
                               : std::string("no CAP_IPC_LOCK");
  return "RLIMIT_MEMLOCK " + limit + ", " + capability;
}

std::string perf_text(const Facts& facts) {
  std::string paranoid = facts.perf_event_paranoid ? std::to_string(*facts.perf_event_paranoid)
                                                   : std::string(kNotVisible);
  return "perf_event_paranoid " + paranoid + "; task-clock " +
         probe_text(facts.perf_software, "opens") + "; cycles " +
         probe_text(facts.perf_hardware, "opens") + "; " +
         (facts.pmu_visible ? "a CPU PMU is listed" : "no CPU PMU listed");
}

std::string counters_text(const Facts& facts) {
  if (facts.counters.empty()) {
    return std::string(kNotVisible) + " (probed on the live machine only)";
  }
  std::string opened;
  std::map<std::string, std::string> refused;  // reason -> counters
  for (const auto& [name, probe] : facts.counters) {
    if (probe.outcome == ProbeOutcome::kRefused) {
      std::string& names = refused[probe.error];
      names += (names.empty() ? "" : ", ") + name;
    } else {
      opened += (opened.empty() ? "" : ", ") + name;
    }
  }
  std::string text = "open: " + (opened.empty() ? std::string("none") : opened);
  for (const auto& [reason, names] : refused) {
    text += "; not supported (" + reason + "): " + names;
  }
  return text;
}

std::string governor_text(const Facts& facts) {
  if (facts.governors.empty()) {
    return kNotVisible;
  }
  std::string text;
  for (const auto& [governor, cpus] : facts.governors) {
    text += (text.empty() ? "" : ", ") + governor + " on " + plural(cpus, "CPU");
  }
  return text;
}

std::string smt_text(const Facts& facts) {
  if (!facts.smt_active) {
    return kNotVisible;
  }
  return std::string(*facts.smt_active == 1 ? "on" : "off") + " (smt/active " +
         std::to_string(*facts.smt_active) + ")";
}

std::string blas_text(const Facts& facts) {
  if (!facts.blas) {
    return kNotVisible;
  }
  return facts.blas->name + ": " + facts.blas->link + " -> " + facts.blas->resolved;
}

std::string allocator_text(const Facts& facts) {
  if (!facts.environment) {
    return kNotVisible;
  }
  auto conf = facts.environment->find("MALLOC_CONF");
  return facts.allocator +
         (facts.environment->count("LD_PRELOAD") != 0 ? "" : " (LD_PRELOAD unset)") +
         (conf != facts.environment->end() ? "; MALLOC_CONF=" + conf->second
                                           : std::string("; MALLOC_CONF unset"));
}

std::string openmp_text(const Facts& facts) {
  if (facts.openmp_runtimes.empty()) {
    return "no runtime found";
  }
  std::string text;
  for (const std::string& runtime : facts.openmp_runtimes) {
    text += (text.empty() ? "" : ", ") + runtime;
  }
  return text + " installed";
}

std::string environment_text(const Facts& facts) {
  if (!facts.environment) {
    return std::string(kNotVisible) + (facts.live ? "" : " (no proc/self/environ in the root)");
  }
  std::string text = facts.live ? "memdet's own" : "proc/self/environ of the root";
  std::string variables;
  for (const auto& [name, value] : relevant_variables(facts)) {
    variables += " " + name + "=" + value;
  }
  return text +
         (variables.empty() ? "; none of the variables doctor reads is set" : ":" + variables);
}

std::string gpu_text(const Facts& facts) {
  std::string text;
  for (const std::string& gpu : facts.gpus) {
    text += (text.empty() ? "" : "; ") + gpu;
  }
  if (text.empty()) {
    text = "none in /proc/driver/nvidia";
  }
  if (!facts.nvidia_smi) {
    return text + "; nvidia-smi not on PATH";
  }
  std::string listed;
  for (const std::string& line : *facts.nvidia_smi) {
    listed += (listed.empty() ? "" : "; ") + line;
  }
  return text + "; nvidia-smi: " + (listed.empty() ? std::string("no GPU listed") : listed);
}

}  // namespace

std::string render_text(const Report& report) {
  const Facts& facts = report.facts;
  std::string out = facts.live ? "memdet doctor: this machine\n"
                               : "memdet doctor: the saved machine in " + facts.root + "\n";
  const std::pair<const char*, std::string> lines[] = {
      {"aslr", aslr_text(facts)},
      {"personality", "ADDR_NO_RANDOMIZE " + probe_text(facts.personality, "allowed")},
      {"topology", topology_text(facts)},
      {"numa-balancing", balancing_text(facts)},
      {"thp", thp_text(facts)},
      {"hugepages", hugepages_text(facts)},
      {"memlock", memlock_text(facts)},
      {"perf", perf_text(facts)},
      {"counters", counters_text(facts)},
      {"cpufreq", governor_text(facts)},
      {"smt", smt_text(facts)},
      {"blas", blas_text(facts)},
      {"allocator", allocator_text(facts)},
      {"openmp", openmp_text(facts)},
      {"environment", environment_text(facts)},
      {"gpus", gpu_text(facts)},
  };
  for (const auto& [name, text] : lines) {
    char label[24];
    std::snprintf(label, sizeof label, "  %-16s", name);
    out += label + printable(text) + "\n";
  }

  int counts[3] = {0, 0, 0};
  for (const Finding& finding : report.findings) {
    ++counts[static_cast<int>(finding.severity)];
  }
  out += "\n" + plural(static_cast<long long>(report.findings.size()), "finding") + " (" +
         std::to_string(counts[0]) + " high, " + std::to_string(counts[1]) + " medium, " +
         std::to_string(counts[2]) + " low)\n";
  for (const Finding& finding : report.findings) {
    char severity[16];
    std::snprintf(severity, sizeof severity, "  %-8s", severity_name(finding.severity));
    out += severity +
           printable(finding.id + ": " + finding.what + ". Why: " + finding.why +
                     ". Fix: " + finding.fix) +
           "\n";
  }
  return out;
}

}  // namespace memdet::doctor
