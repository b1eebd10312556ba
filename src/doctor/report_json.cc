// The report for scripts: the facts doctor read (null where not visible)
// and one object per finding.
#include "doctor/report.h"

namespace memdet::doctor {
namespace {

using nlohmann::json;

template <typename T>
json optional_json(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json probe_json(const Probe& probe) {
  switch (probe.outcome) {
    case ProbeOutcome::kNotVisible:
      return nullptr;
    case ProbeOutcome::kAllowed:
      return {{"result", "allowed"}};
    case ProbeOutcome::kUserOnly:
      return {{"result", "user space only"}};
    case ProbeOutcome::kRefused:
      return {{"result", "refused"}, {"error", probe.error}};
  }
  return nullptr;
}

json facts_json(const Facts& facts) {
  json out;
  out["randomize_va_space"] = optional_json(facts.randomize_va_space);
  out["personality_addr_no_randomize"] = probe_json(facts.personality);
  if (facts.topology) {
    const Topology& t = *facts.topology;
    out["topology"] = {{"packages", t.packages},
                       {"numa_nodes", t.numa_nodes},
                       {"cores", t.cores},
                       {"pus", t.pus},
                       {"first_pu_per_core", t.first_pu_per_core}};
  } else {
    out["topology"] = nullptr;
  }
  out["numa_balancing"] = optional_json(facts.numa_balancing);
  out["thp"] = {{"enabled", optional_json(facts.thp_enabled)},
                {"defrag", optional_json(facts.thp_defrag)}};
  json pools = json::array();
  for (const HugePagePool& pool : facts.hugepages) {
    pools.push_back({{"page_kib", pool.page_kib}, {"total", pool.total}, {"free", pool.free}});
  }
  out["hugepages"] = pools;
  out["memlock"] = {{"limit_bytes", !facts.memlock_visible ? json(nullptr)
                                    : facts.memlock_limit  ? json(*facts.memlock_limit)
                                                           : json("unlimited")},
                    {"cap_ipc_lock", optional_json(facts.cap_ipc_lock)}};
  out["perf"] = {{"perf_event_paranoid", optional_json(facts.perf_event_paranoid)},
                 {"software_task_clock", probe_json(facts.perf_software)},
                 {"hardware_cycles", probe_json(facts.perf_hardware)},
                 {"cpu_pmu_listed", facts.pmu_visible}};
  json counters = json::array();
  for (const auto& [name, probe] : facts.counters) {
    counters.push_back({{"name", name}, {"probe", probe_json(probe)}});
  }
  out["perf"]["counters"] = counters;
  out["cpufreq_governors"] = facts.governors.empty() ? json(nullptr) : json(facts.governors);
  out["smt_active"] = optional_json(facts.smt_active);
  if (facts.blas) {
    out["blas"] = {
        {"link", facts.blas->link}, {"resolved", facts.blas->resolved}, {"name", facts.blas->name}};
  } else {
    out["blas"] = nullptr;
  }
  out["openmp_runtimes"] = facts.openmp_runtimes;
  if (facts.environment) {
    json variables = json::object();
    for (const auto& [name, value] : relevant_variables(facts)) {
      variables[name] = value;
    }
    out["environment"] = {{"source", facts.live ? "memdet" : "proc/self/environ"},
                          {"variables", variables}};
    out["allocator"] = {{"name", facts.allocator}, {"ld_preload_missing", facts.preload_missing}};
  } else {
    out["environment"] = nullptr;
    out["allocator"] = nullptr;
  }
  out["gpus"] = {{"driver", facts.gpus}, {"nvidia_smi", optional_json(facts.nvidia_smi)}};
  return out;
}

}  // namespace

json render_json(const Report& report) {
  json findings = json::array();
  for (const Finding& finding : report.findings) {
    findings.push_back({{"id", finding.id},
                        {"severity", severity_name(finding.severity)},
                        {"what", finding.what},
                        {"why", finding.why},
                        {"fix", finding.fix}});
  }
  return {{"schema", "memdet.doctor/1"},
          {"root", report.facts.root},
          {"live", report.facts.live},
          {"facts", facts_json(report.facts)},
          {"findings", findings}};
}

std::string render_json_text(const Report& report) {
  return render_json(report).dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace memdet::doctor
