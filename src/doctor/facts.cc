#include "doctor/facts.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "core/text.h"
#include "host/loaded_libraries.h"
#include "measure/counters.h"

extern char** environ;

namespace memdet::doctor {
namespace {

constexpr int kCapIpcLock = 14;

// Where Debian and other distributions keep shared libraries.
constexpr const char* kLibraryDirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                        "/usr/lib64", "/usr/lib"};

std::optional<std::string> bracketed(const std::optional<std::string>& text) {
  if (!text) {
    return std::nullopt;
  }
  size_t open = text->find('[');
  size_t close = text->find(']', open);
  if (open == std::string::npos || close == std::string::npos) {
    return std::nullopt;
  }
  return text->substr(open + 1, close - open - 1);
}

// "name: result" lines of a saved machine's memdet/probes; a name may repeat.
std::map<std::string, std::vector<std::string>> read_saved_probes(const MachineRoot& root) {
  std::map<std::string, std::vector<std::string>> probes;
  auto text = root.read_raw("/memdet/probes");
  if (!text) {
    return probes;
  }
  std::stringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    size_t colon = line.find(':');
    if (line.empty() || line[0] == '#' || colon == std::string::npos) {
      continue;
    }
    probes[std::string(trim(line.substr(0, colon)))].emplace_back(trim(line.substr(colon + 1)));
  }
  return probes;
}

// "allowed", "opened", "opened exclude_kernel", "refused EPERM".
Probe saved_probe(const std::map<std::string, std::vector<std::string>>& probes,
                  const std::string& name) {
  auto found = probes.find(name);
  if (found == probes.end() || found->second.empty()) {
    return {};
  }
  const std::string& result = found->second.front();
  if (result == "allowed" || result == "opened") {
    return {ProbeOutcome::kAllowed, {}};
  }
  if (result == "opened exclude_kernel") {
    return {ProbeOutcome::kUserOnly, {}};
  }
  if (result.starts_with("refused")) {
    return {ProbeOutcome::kRefused, std::string(trim(result.substr(7)))};
  }
  return {};
}

std::optional<uint64_t> parse_memlock(const std::string& limits, bool& visible) {
  visible = false;
  std::stringstream lines(limits);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("Max locked memory")) {
      continue;
    }
    std::stringstream fields(line.substr(17));
    std::string soft;
    fields >> soft;
    if (soft == "unlimited") {
      visible = true;
      return std::nullopt;
    }
    char* end = nullptr;
    unsigned long long value = std::strtoull(soft.c_str(), &end, 10);
    if (!soft.empty() && *end == '\0') {
      visible = true;
      return value;
    }
  }
  return std::nullopt;
}

std::optional<bool> read_cap_ipc_lock(const MachineRoot& root) {
  auto status = root.read_raw("/proc/self/status");
  if (!status) {
    return std::nullopt;
  }
  size_t at = status->find("CapEff:");
  if (at == std::string::npos) {
    return std::nullopt;
  }
  unsigned long long bits = std::strtoull(status->c_str() + at + 7, nullptr, 16);
  return ((bits >> kCapIpcLock) & 1ULL) != 0;
}

std::vector<HugePagePool> read_hugepages(const MachineRoot& root) {
  std::vector<HugePagePool> pools;
  for (const std::string& name : root.list("/sys/kernel/mm/hugepages")) {
    if (!name.starts_with("hugepages-") || !name.ends_with("kB")) {
      continue;
    }
    std::string dir = "/sys/kernel/mm/hugepages/" + name;
    auto total = root.read_number(dir + "/nr_hugepages");
    auto free = root.read_number(dir + "/free_hugepages");
    if (!total || !free) {
      continue;
    }
    HugePagePool pool;
    pool.page_kib = std::atoll(name.c_str() + 10);
    pool.total = *total;
    pool.free = *free;
    pools.push_back(pool);
  }
  std::sort(pools.begin(), pools.end(),
            [](const HugePagePool& a, const HugePagePool& b) { return a.page_kib < b.page_kib; });
  return pools;
}

std::map<std::string, int> read_governors(const MachineRoot& root) {
  std::map<std::string, int> governors;
  for (const std::string& name : root.list("/sys/devices/system/cpu")) {
    if (name.size() <= 3 || !name.starts_with("cpu") ||
        name.find_first_not_of("0123456789", 3) != std::string::npos) {
      continue;
    }
    if (auto governor =
            root.read("/sys/devices/system/cpu/" + name + "/cpufreq/scaling_governor")) {
      ++governors[*governor];
    }
  }
  return governors;
}

std::optional<Blas> read_blas(const MachineRoot& root) {
  std::vector<std::string> links;
  for (const std::string& name : root.list("/etc/alternatives")) {
    if (name.starts_with("libblas.so.3-")) {
      links.push_back("/etc/alternatives/" + name);
    }
  }
  if (links.empty()) {
    for (const char* dir : kLibraryDirs) {
      std::string library = std::string(dir) + "/libblas.so.3";
      if (root.exists(library)) {
        links.push_back(library);
        break;
      }
    }
  }
  if (links.empty()) {
    return std::nullopt;
  }
  Blas blas;
  blas.link = links.front();
  blas.resolved = root.resolve(blas.link);
  blas.name = host::describe_blas(blas.resolved);
  return blas;
}

std::vector<std::string> read_openmp_runtimes(const MachineRoot& root) {
  const std::pair<const char*, const char*> kRuntimes[] = {
      {"libgomp", "libgomp.so.1"}, {"libomp", "libomp.so.5"}, {"libiomp5", "libiomp5.so"}};
  std::vector<std::string> found;
  for (const auto& [runtime, file] : kRuntimes) {
    for (const char* dir : kLibraryDirs) {
      if (root.exists(std::string(dir) + "/" + file)) {
        found.push_back(runtime);
        break;
      }
    }
  }
  return found;
}

std::map<std::string, std::string> parse_environment(const std::string& block, char separator) {
  std::map<std::string, std::string> environment;
  std::stringstream entries(block);
  std::string entry;
  while (std::getline(entries, entry, separator)) {
    size_t equals = entry.find('=');
    if (equals != std::string::npos && equals > 0) {
      environment.emplace(entry.substr(0, equals), entry.substr(equals + 1));
    }
  }
  return environment;
}

std::map<std::string, std::string> own_environment() {
  std::string block;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    block += *entry;
    block += '\0';
  }
  return parse_environment(block, '\0');
}

std::vector<std::string> read_gpus(const MachineRoot& root) {
  std::vector<std::string> gpus;
  for (const std::string& bus : root.list("/proc/driver/nvidia/gpus")) {
    std::string model = "unknown model";
    if (auto information = root.read_raw("/proc/driver/nvidia/gpus/" + bus + "/information")) {
      std::stringstream lines(*information);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.starts_with("Model:")) {
          model = std::string(trim(line.substr(6)));
        }
      }
    }
    gpus.push_back(model + " at " + bus);
  }
  return gpus;
}

void read_preload(const MachineRoot& root, Facts& facts) {
  facts.allocator = "glibc malloc";
  if (!facts.environment || facts.environment->count("LD_PRELOAD") == 0) {
    return;
  }
  bool named = false;
  for (const std::string& entry : split_preload(facts.environment->at("LD_PRELOAD"))) {
    std::string name(base_name(entry));
    for (const char* allocator : {"jemalloc", "tcmalloc", "mimalloc"}) {
      if (!named && name.starts_with(std::string("lib") + allocator)) {
        facts.allocator = allocator;
        named = true;
      }
    }
    // A bare name is searched for; $LIB and $PLATFORM are the linker's to expand.
    if (entry.starts_with("/") && entry.find('$') == std::string::npos && !root.exists(entry)) {
      facts.preload_missing.push_back(entry);
    }
  }
}

}  // namespace

std::vector<std::string> split_preload(const std::string& value) {
  std::vector<std::string> entries;
  std::string entry;
  for (char c : value + " ") {
    if (c == ' ' || c == ':') {
      if (!entry.empty()) {
        entries.push_back(entry);
      }
      entry.clear();
    } else {
      entry += c;
    }
  }
  return entries;
}

Facts read_facts(const MachineRoot& root) {
  Facts facts;
  facts.root = root.name();
  facts.live = root.live();
  auto saved = read_saved_probes(root);

  facts.randomize_va_space = root.read_number("/proc/sys/kernel/randomize_va_space");
  facts.personality = root.live() ? probe_personality() : saved_probe(saved, "personality");

  facts.topology = read_topology(root);
  facts.numa_balancing = root.read_number("/proc/sys/kernel/numa_balancing");
  facts.thp_enabled = bracketed(root.read("/sys/kernel/mm/transparent_hugepage/enabled"));
  facts.thp_defrag = bracketed(root.read("/sys/kernel/mm/transparent_hugepage/defrag"));
  facts.hugepages = read_hugepages(root);

  if (auto limits = root.read_raw("/proc/self/limits")) {
    facts.memlock_limit = parse_memlock(*limits, facts.memlock_visible);
  }
  facts.cap_ipc_lock = read_cap_ipc_lock(root);

  facts.perf_event_paranoid = root.read_number("/proc/sys/kernel/perf_event_paranoid");
  if (root.live()) {
    probe_counters(facts);
  } else {
    facts.perf_software = saved_probe(saved, "perf software");
    facts.perf_hardware = saved_probe(saved, "perf hardware");
  }
  facts.pmu_visible = measure::core_pmu_visible(root.path("/sys"));

  facts.governors = read_governors(root);
  facts.smt_active = root.read_number("/sys/devices/system/cpu/smt/active");

  facts.blas = read_blas(root);
  facts.openmp_runtimes = read_openmp_runtimes(root);

  if (root.live()) {
    facts.environment = own_environment();
  } else if (auto block = root.read_raw("/proc/self/environ")) {
    facts.environment = parse_environment(*block, '\0');
  }
  read_preload(root, facts);

  facts.gpus = read_gpus(root);
  if (root.live()) {
    std::string path;
    if (facts.environment && facts.environment->count("PATH") != 0) {
      path = facts.environment->at("PATH");
    }
    facts.nvidia_smi = probe_nvidia_smi(path);
  } else if (auto found = saved.find("nvidia-smi");
             found != saved.end() && found->second != std::vector<std::string>{"absent"}) {
    facts.nvidia_smi = found->second;
  }
  return facts;
}

}  // namespace memdet::doctor
