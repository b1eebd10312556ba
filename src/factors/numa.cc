// numa: which memory node the workload's pages come from. Pinned: bind to a
// node (MPOL_BIND, with the node's CPUs, as numactl --membind --cpunodebind)
// or interleave over nodes. Perturbed: another node or policy per run.
// Verified by the policy column of /proc/<pid>/numa_maps at the exec stop
// (not Mems_allowed_list, which is the cpuset), with page counts per node
// from just before exit.
#include <cstdlib>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

// "bind:N" or "interleave:LIST".
struct NumaValue {
  std::string policy;
  launch::CpuSet nodes;  // node ids, in the CPU-list syntax
};

Result<NumaValue> parse(const std::string& value) {
  size_t colon = value.find(':');
  NumaValue parsed;
  parsed.policy = value.substr(0, colon);
  if (parsed.policy != "bind" && parsed.policy != "interleave") {
    return make_error("unknown value '" + value + "' (bind:NODE, interleave:NODES)");
  }
  if (colon == std::string::npos) {
    return make_error("'" + value + "' names no node (bind:0, interleave:0-1)");
  }
  auto nodes = launch::parse_cpu_list(value.substr(colon + 1));
  if (!nodes) {
    return make_error("'" + value + "': not a list of NUMA nodes such as 0 or 0-1");
  }
  if (parsed.policy == "bind" && nodes->size() != 1) {
    return make_error("'" + value + "': bind takes one node");
  }
  parsed.nodes = *nodes;
  return parsed;
}

std::string node_list(const Host& host) {
  launch::CpuSet ids;
  for (const NumaNode& node : host.nodes) {
    ids.insert(node.id);
  }
  return launch::format_cpu_list(ids);
}

class Numa final : public Factor {
 public:
  const char* name() const override { return "numa"; }
  bool shapes_cpus() const override { return true; }
  const char* summary() const override {
    return "memory node: pin bind:NODE (memory and CPUs) or interleave:NODES, perturb picks "
           "another node or policy; verified by the policy in numa_maps at the exec stop";
  }

  Resolution resolve(const std::string& value, const Host& host) const override {
    if (value.empty()) {
      if (host.nodes.size() < 2) {
        return not_applicable("one NUMA node");
      }
      return resolved("bind:" + std::to_string(host.nodes.front().id));
    }
    auto parsed = parse(value);
    if (!parsed) {
      return bad_request(parsed.error().message);
    }
    for (int node : parsed->nodes) {
      bool exists = false;
      for (const NumaNode& known : host.nodes) {
        exists = exists || known.id == node;
      }
      if (!exists) {
        return bad_request("NUMA node " + std::to_string(node) +
                           " does not exist (nodes: " + node_list(host) + ")");
      }
    }
    return resolved(value);
  }

  std::vector<std::string> alternatives(const std::string&, const Host& host) const override {
    if (host.nodes.size() < 2) {
      return {};
    }
    std::vector<std::string> values;
    for (const NumaNode& node : host.nodes) {
      values.push_back("bind:" + std::to_string(node.id));
    }
    values.push_back("interleave:" + node_list(host));
    return values;
  }

  void apply(const std::string& value, const Host& host, LaunchPlan& plan) const override {
    auto parsed = parse(value);
    if (!parsed) {
      return;
    }
    plan.controls.mem_policy = parsed->policy == "bind" ? launch::Controls::MemPolicy::kBind
                                                        : launch::Controls::MemPolicy::kInterleave;
    plan.controls.mem_nodes.assign(parsed->nodes.begin(), parsed->nodes.end());
    if (parsed->policy == "bind") {
      for (const NumaNode& node : host.nodes) {
        if (node.id == *parsed->nodes.begin() && !node.cpus.empty()) {
          plan.controls.cpus = node.cpus;
        }
      }
    }
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!exec_stop_read(seen, record)) {
      return;
    }
    const std::string& policy = seen.launch->at_start.numa_policy;
    record.observed = "numa_maps policy " + (policy.empty() ? std::string("unread") : policy);
    record.measured = policy;
    auto parsed = parse(value);
    std::string expected =
        parsed ? parsed->policy + ":" + launch::format_cpu_list(parsed->nodes) : value;
    record.verified =
        policy == expected ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
    if (seen.preload != nullptr) {
      if (const std::string* pages = seen.preload->find("numa_pages")) {
        record.observed += "; pages per node before exit " + *pages;
      }
    }
  }
};

}  // namespace

const Factor& numa_factor() {
  static const Numa factor;
  return factor;
}

}  // namespace memdet::factors
