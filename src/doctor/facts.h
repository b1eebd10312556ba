// What `memdet doctor` reads about a machine and the environment it audits.
// Every fact that could not be read stays empty ("not visible"): doctor
// reports it as such and draws no finding from it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "doctor/root.h"

namespace memdet::doctor {

// How a probe that tries a system call came out.
enum class ProbeOutcome {
  kNotVisible,  // not probed (a saved machine that did not record it)
  kAllowed,     // the call succeeded
  kUserOnly,    // a perf event that opened only with exclude_kernel
  kRefused,     // the call failed; `error` names the errno
};

struct Probe {
  ProbeOutcome outcome = ProbeOutcome::kNotVisible;
  std::string error;  // "EPERM", "ENOENT"; empty unless refused
};

// Packages, NUMA nodes, cores and hardware threads, as hwloc counts them.
struct Topology {
  int packages = 0;
  int numa_nodes = 0;
  int cores = 0;
  int pus = 0;
  std::string first_pu_per_core;  // a CPU list with one hardware thread of each core
};

struct HugePagePool {
  long long page_kib = 0;  // 2048 or 1048576
  long long total = 0;
  long long free = 0;
};

struct Blas {
  std::string link;      // the alternatives link or library that was followed
  std::string resolved;  // the machine's path it resolves to
  std::string name;      // "OpenBLAS (pthread)", "reference BLAS", ...
};

struct Facts {
  std::string root;  // "/" for the live machine
  bool live = true;

  std::optional<long long> randomize_va_space;
  Probe personality;  // personality(ADDR_NO_RANDOMIZE) in a child
  std::optional<Topology> topology;
  std::optional<long long> numa_balancing;
  std::optional<std::string> thp_enabled;  // the bracketed mode
  std::optional<std::string> thp_defrag;
  std::vector<HugePagePool> hugepages;  // the pools /sys/kernel/mm/hugepages lists

  // RLIMIT_MEMLOCK's soft limit in bytes; nothing: unlimited.
  std::optional<uint64_t> memlock_limit;
  bool memlock_visible = false;
  std::optional<bool> cap_ipc_lock;

  std::optional<long long> perf_event_paranoid;
  // task-clock and cycles opened on this process as memdet opens them on a
  // workload; `error` is an errno name (saved) or memdet's reason (live).
  Probe perf_software;
  Probe perf_hardware;
  std::vector<std::pair<std::string, Probe>> counters;  // every default counter; live only
  bool pmu_visible = false;                             // /sys/bus/event_source/devices/cpu exists

  std::map<std::string, int> governors;  // scaling_governor -> CPUs; empty: not visible
  std::optional<long long> smt_active;

  std::optional<Blas> blas;
  std::vector<std::string> openmp_runtimes;  // installed: "libgomp", "libomp", "libiomp5"

  // The environment audited; nothing: not visible.
  std::optional<std::map<std::string, std::string>> environment;
  std::string allocator;                     // the one LD_PRELOAD names, else "glibc malloc"
  std::vector<std::string> preload_missing;  // LD_PRELOAD paths the machine lacks

  std::vector<std::string> gpus;                       // models in /proc/driver/nvidia/gpus
  std::optional<std::vector<std::string>> nvidia_smi;  // `nvidia-smi -L`; nothing: not on PATH
};

// Reads every fact from `root`. On the live machine the probes run here
// (in children where they change the process); on a saved one they come
// from its memdet/probes file and the environment from its
// proc/self/environ.
Facts read_facts(const MachineRoot& root);

// The entries of an LD_PRELOAD value, which the dynamic linker splits at
// spaces and colons.
std::vector<std::string> split_preload(const std::string& value);

// The probes a live machine answers by trying, kept apart so tests of a
// saved machine never run them.
Probe probe_personality();
// Opens memdet's default counters (measure/counters.h) on this process and
// sets perf_software, perf_hardware and counters from what opened.
void probe_counters(Facts& facts);
std::optional<std::vector<std::string>> probe_nvidia_smi(const std::string& path_variable);

// The facts hwloc reads about the machine's topology; nothing when hwloc
// cannot read it (a saved machine without /sys/devices/system/cpu).
std::optional<Topology> read_topology(const MachineRoot& root);

}  // namespace memdet::doctor
