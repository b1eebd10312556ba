// Facts about the machine that explain why two hosts compute different bits:
// kernel, CPU model and vector extensions, libc. Read from a root that tests
// can move, so a recorded machine can stand in for this one.
#pragma once

#include <string>
#include <vector>

namespace memdet::host {

struct HostInfo {
  std::string hostname;
  std::string kernel;                          // release, as in /proc/sys/kernel/osrelease
  std::string machine;                         // x86_64, aarch64
  std::string cpu_model;                       // the first "model name" in /proc/cpuinfo
  std::vector<std::string> vector_extensions;  // of the ones that change numerics
  long online_cpus = 0;
  std::string libc;  // "glibc 2.36"
};

// `root` is "/" on a live machine; a test points it at a directory holding
// proc/cpuinfo and proc/sys/kernel/osrelease.
HostInfo read_host_info(const std::string& root = "/");

// The vector extensions named in a cpuinfo "flags" line that decide which
// kernels numerical libraries pick, in a fixed order.
std::vector<std::string> numeric_vector_extensions(const std::string& flags_line);

}  // namespace memdet::host
