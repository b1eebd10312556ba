#include "host/host_info.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <set>
#include <sstream>

#include "core/sys.h"
#include "core/text.h"

namespace memdet::host {
namespace {

// The value of the first "key : value" line of /proc/cpuinfo.
std::string cpuinfo_field(const std::string& cpuinfo, const std::string& key) {
  std::istringstream lines(cpuinfo);
  std::string line;
  while (std::getline(lines, line)) {
    size_t colon = line.find(':');
    if (colon != std::string::npos && trim(line.substr(0, colon)) == key) {
      return std::string(trim(line.substr(colon + 1)));
    }
  }
  return {};
}

std::string libc_version() {
#ifdef _CS_GNU_LIBC_VERSION
  char version[64] = {0};
  if (::confstr(_CS_GNU_LIBC_VERSION, version, sizeof version) > 0) {
    return version;
  }
#endif
  return "unknown";
}

}  // namespace

std::vector<std::string> numeric_vector_extensions(const std::string& flags_line) {
  // x86 flags first, then Arm's "Features" names.
  static const char* const kKnown[] = {
      "sse2",        "sse4_1",      "sse4_2",   "avx",      "f16c",     "fma",
      "avx2",        "avx512f",     "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
      "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "asimd",    "asimdhp",
      "sve",         "sve2",        "bf16",     "i8mm"};
  std::set<std::string> present;
  std::istringstream words(flags_line);
  std::string word;
  while (words >> word) {
    present.insert(word);
  }
  std::vector<std::string> found;
  for (const char* name : kKnown) {
    if (present.count(name) != 0) {
      found.emplace_back(name);
    }
  }
  return found;
}

HostInfo read_host_info(const std::string& root) {
  HostInfo info;
  std::string base = root.empty() || root.back() == '/' ? root : root + "/";

  utsname names{};
  if (::uname(&names) == 0) {
    info.hostname = names.nodename;
    info.kernel = names.release;
    info.machine = names.machine;
  }
  if (auto release = sys::read_small_file(base + "proc/sys/kernel/osrelease")) {
    info.kernel = std::string(trim(*release));
  }

  if (auto cpuinfo = sys::read_small_file(base + "proc/cpuinfo")) {
    info.cpu_model = cpuinfo_field(*cpuinfo, "model name");
    std::string flags = cpuinfo_field(*cpuinfo, "flags");
    if (flags.empty()) {
      flags = cpuinfo_field(*cpuinfo, "Features");
    }
    info.vector_extensions = numeric_vector_extensions(flags);
  }

  info.online_cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  info.libc = libc_version();
  return info;
}

}  // namespace memdet::host
