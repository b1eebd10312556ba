// Topology through hwloc. A saved machine is read with hwloc's Linux
// back end pointed at it (HWLOC_FSROOT, which hwloc 2 reads when the
// topology loads), with the x86 back end left out: that one asks this
// machine's CPUID, which would mix the live host into a saved one.
#include <hwloc.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "doctor/facts.h"
#include "launch/cpu_list.h"

namespace memdet::doctor {
namespace {

// Sets or clears an environment variable for one scope, then puts back
// what was there.
class ScopedVariable {
 public:
  ScopedVariable(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedVariable(const ScopedVariable&) = delete;
  ScopedVariable& operator=(const ScopedVariable&) = delete;
  ~ScopedVariable() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class TopologyHandle {
 public:
  TopologyHandle() { ok_ = hwloc_topology_init(&topology_) == 0; }
  TopologyHandle(const TopologyHandle&) = delete;
  TopologyHandle& operator=(const TopologyHandle&) = delete;
  ~TopologyHandle() {
    if (ok_) {
      hwloc_topology_destroy(topology_);
    }
  }
  bool ok() const { return ok_; }
  hwloc_topology_t get() const { return topology_; }

 private:
  hwloc_topology_t topology_{};
  bool ok_ = false;
};

int count(hwloc_topology_t topology, hwloc_obj_type_t type) {
  int n = hwloc_get_nbobjs_by_type(topology, type);
  return n < 0 ? 0 : n;
}

}  // namespace

std::optional<Topology> read_topology(const MachineRoot& root) {
  // Without the CPU folder hwloc would fall back to counting this
  // machine's processors.
  if (!root.exists("/sys/devices/system/cpu")) {
    return std::nullopt;
  }
  // hwloc opens what it reads itself, unbounded and blocking, and takes an
  // absolute link as this machine's path; /run is where it looks for
  // hwloc-dump-hwdata's files and udev's.
  for (const char* dir : {"/sys", "/proc", "/run"}) {
    if (!root.holds_only_plain_files(dir)) {
      return std::nullopt;
    }
  }
  std::string fsroot = root.live() ? std::string() : root.path("");
  ScopedVariable fsroot_variable("HWLOC_FSROOT", root.live() ? nullptr : fsroot.c_str());
  ScopedVariable xml_variable("HWLOC_XMLFILE", nullptr);
  ScopedVariable synthetic_variable("HWLOC_SYNTHETIC", nullptr);

  TopologyHandle handle;
  if (!handle.ok()) {
    return std::nullopt;
  }
  if (!root.live()) {
    hwloc_topology_set_components(handle.get(), HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "x86");
  }
  if (hwloc_topology_load(handle.get()) != 0) {
    return std::nullopt;
  }
  const char* backend = hwloc_obj_get_info_by_name(hwloc_get_root_obj(handle.get()), "Backend");
  if (backend == nullptr || std::strcmp(backend, "Linux") != 0) {
    return std::nullopt;
  }

  Topology topology;
  topology.packages = count(handle.get(), HWLOC_OBJ_PACKAGE);
  topology.numa_nodes = count(handle.get(), HWLOC_OBJ_NUMANODE);
  topology.cores = count(handle.get(), HWLOC_OBJ_CORE);
  topology.pus = count(handle.get(), HWLOC_OBJ_PU);
  launch::CpuSet first;
  for (int i = 0; i < topology.cores; ++i) {
    hwloc_obj_t core =
        hwloc_get_obj_by_type(handle.get(), HWLOC_OBJ_CORE, static_cast<unsigned>(i));
    hwloc_obj_t pu =
        hwloc_get_obj_inside_cpuset_by_type(handle.get(), core->cpuset, HWLOC_OBJ_PU, 0);
    if (pu != nullptr) {
      first.insert(static_cast<int>(pu->os_index));
    }
  }
  topology.first_pu_per_core = launch::format_cpu_list(first);
  return topology;
}

}  // namespace memdet::doctor
