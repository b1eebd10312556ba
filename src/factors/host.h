// What the factors need to know about the machine before the first run:
// CPUs, NUMA nodes, privileges, THP, allocators, where memdet's preload
// library is. Read once per campaign, from a root tests can move.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "launch/cpu_list.h"

namespace memdet::factors {

struct NumaNode {
  int id = 0;
  launch::CpuSet cpus;
};

// One hugetlb pool: /sys/kernel/mm/hugepages/hugepages-<page_kb>kB.
struct HugetlbPool {
  long long pages = 0;  // nr_hugepages
  long long free = 0;   // free_hugepages
};

struct Host {
  launch::CpuSet allowed_cpus;  // memdet's own affinity: what a free run gets
  std::vector<NumaNode> nodes;  // at least one
  bool root = false;
  bool cap_ipc_lock = false;
  bool memlock_unlimited = false;
  std::string thp_mode;  // the bracketed word of transparent_hugepage/enabled; empty: no THP
  // The per-size THP files, transparent_hugepage/hugepages-<kB>kB/enabled:
  // the bracketed word of each ("inherit"), by size in kB.
  std::map<long long, std::string> thp_size_modes;
  long long thp_pmd_kb = 0;  // transparent_hugepage/hpage_pmd_size in kB; 0: unknown
  std::map<long long, HugetlbPool> hugetlb_pools;  // by page size in kB
  long long mem_total_kb = 0;                      // MemTotal of /proc/meminfo; 0: unknown
  // Allocators that can be preloaded, by name; "glibc" maps to "" (libc's own).
  std::map<std::string, std::string> allocators;
  std::string preload_library;  // libmemdet_preload.so beside memdet; empty: missing
  bool system_allowed = false;  // --system was given
  launch::CpuSet noise_cpus;    // --noise-cpus; empty: the noise factor's default
};

// Reads the host. `root` prefixes every /sys and /proc path ("" for the
// real machine); `self_dir` is the folder of the memdet binary.
Host read_host(const std::string& root, const std::string& self_dir);

// The NUMA nodes under <root>/sys/devices/system/node; one node holding
// `fallback` when the folder is missing.
std::vector<NumaNode> read_numa_nodes(const std::string& root, const launch::CpuSet& fallback);

}  // namespace memdet::factors
