#include "factors/host.h"

#include <dirent.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "core/sys.h"
#include "core/text.h"

namespace memdet::factors {
namespace {

constexpr int kCapIpcLock = 14;

bool file_exists(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

launch::CpuSet own_affinity() {
  launch::CpuSet cpus;
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (::sched_getaffinity(0, sizeof mask, &mask) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &mask)) {
        cpus.insert(cpu);
      }
    }
  }
  return cpus;
}

bool has_capability(const std::string& root, int capability) {
  auto status = sys::read_small_file(root + "/proc/self/status");
  if (!status) {
    return false;
  }
  size_t at = status->find("\nCapEff:");
  if (at == std::string::npos) {
    return false;
  }
  unsigned long long bits = std::strtoull(status->c_str() + at + 8, nullptr, 16);
  return (bits >> capability) & 1ULL;
}

std::string bracketed(const std::string& text) {
  size_t open = text.find('[');
  size_t close = text.find(']', open);
  if (open == std::string::npos || close == std::string::npos) {
    return {};
  }
  return text.substr(open + 1, close - open - 1);
}

// The sizes in kB of the entries of `dir` named <prefix><digits>kB.
std::vector<long long> sized_entries(const std::string& dir, const std::string& prefix) {
  std::vector<long long> sizes;
  DIR* listing = ::opendir(dir.c_str());
  if (listing == nullptr) {
    return sizes;
  }
  while (dirent* entry = ::readdir(listing)) {
    std::string name = entry->d_name;
    if (name.size() <= prefix.size() + 2 || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - 2, 2, "kB") != 0) {
      continue;
    }
    std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - 2);
    if (digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 12) {
      sizes.push_back(std::atoll(digits.c_str()));
    }
  }
  ::closedir(listing);
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

long long number_in(const std::string& path) {
  auto text = sys::read_small_file(path);
  return text ? std::atoll(text->c_str()) : 0;
}

void read_huge_pages(const std::string& root, Host& host) {
  std::string thp = root + "/sys/kernel/mm/transparent_hugepage";
  for (long long kb : sized_entries(thp, "hugepages-")) {
    auto mode = sys::read_small_file(thp + "/hugepages-" + std::to_string(kb) + "kB/enabled");
    if (mode) {
      host.thp_size_modes[kb] = bracketed(*mode);
    }
  }
  host.thp_pmd_kb = number_in(thp + "/hpage_pmd_size") / 1024;

  std::string pools = root + "/sys/kernel/mm/hugepages";
  for (long long kb : sized_entries(pools, "hugepages-")) {
    std::string dir = pools + "/hugepages-" + std::to_string(kb) + "kB";
    host.hugetlb_pools[kb] = {number_in(dir + "/nr_hugepages"), number_in(dir + "/free_hugepages")};
  }
  if (auto meminfo = sys::read_small_file(root + "/proc/meminfo")) {
    size_t at = meminfo->find("MemTotal:");
    if (at != std::string::npos) {
      host.mem_total_kb = std::atoll(meminfo->c_str() + at + 9);
    }
  }
}

}  // namespace

std::vector<NumaNode> read_numa_nodes(const std::string& root, const launch::CpuSet& fallback) {
  std::vector<NumaNode> nodes;
  std::string dir = root + "/sys/devices/system/node";
  if (DIR* listing = ::opendir(dir.c_str())) {
    while (dirent* entry = ::readdir(listing)) {
      std::string name = entry->d_name;
      if (name.size() <= 4 || name.compare(0, 4, "node") != 0 ||
          name.find_first_not_of("0123456789", 4) != std::string::npos) {
        continue;
      }
      NumaNode node;
      node.id = std::atoi(name.c_str() + 4);
      auto cpulist = sys::read_small_file(dir + "/" + name + "/cpulist");
      if (cpulist && !trim(*cpulist).empty()) {
        if (auto cpus = launch::parse_cpu_list(*cpulist)) {
          node.cpus = *cpus;
        }
      }
      nodes.push_back(node);
    }
    ::closedir(listing);
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const NumaNode& a, const NumaNode& b) { return a.id < b.id; });
  if (nodes.empty()) {
    nodes.push_back({0, fallback});
  }
  return nodes;
}

Host read_host(const std::string& root, const std::string& self_dir) {
  Host host;
  host.allowed_cpus = own_affinity();
  host.nodes = read_numa_nodes(root, host.allowed_cpus);
  host.root = ::geteuid() == 0;
  host.cap_ipc_lock = has_capability(root, kCapIpcLock);
  rlimit limit{};
  host.memlock_unlimited =
      ::getrlimit(RLIMIT_MEMLOCK, &limit) == 0 && limit.rlim_cur == RLIM_INFINITY;
  if (auto thp = sys::read_small_file(root + "/sys/kernel/mm/transparent_hugepage/enabled")) {
    host.thp_mode = bracketed(*thp);
  }
  read_huge_pages(root, host);

  host.allocators["glibc"] = "";
  const std::pair<const char*, const char*> candidates[] = {
      {"jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"},
      {"tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"},
      {"tcmalloc", "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"},
  };
  for (const auto& [name, path] : candidates) {
    if (host.allocators.count(name) == 0 && file_exists(root + path)) {
      host.allocators[name] = path;
    }
  }
  std::string preload = self_dir + "/libmemdet_preload.so";
  if (file_exists(preload)) {
    host.preload_library = preload;
  }
  return host;
}

}  // namespace memdet::factors
