#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdlib>

#include "cli/commands.h"
#include "core/error.h"

namespace memdet::cli {

void add_control_options(CLI::App& app, ControlOptions& options) {
  app.add_option("--aslr", options.aslr,
                 "off: run with address-space randomisation disabled, "
                 "personality(ADDR_NO_RANDOMIZE), verified in the child's /proc; on: leave it")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--cpus", options.cpus,
                 "pin the workload to these CPUs (taskset syntax: 0-3,8); memdet stops if the "
                 "kernel grants a different set");
  app.add_option("--threads", options.threads,
                 "set OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS (recorded as set; "
                 "their effect is not observable from outside)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--env-preset", options.env_preset,
                 "deterministic: set the determinism knobs libraries really read "
                 "(CUBLAS_WORKSPACE_CONFIG=:4096:8 PYTHONHASHSEED=0 TF_DETERMINISTIC_OPS=1 "
                 "NCCL_ALGO=Ring NCCL_PROTO=Simple MKL_CBWR=COMPATIBLE "
                 "KMP_DETERMINISTIC_REDUCTION=true OMP_DYNAMIC=false). CUDNN_DETERMINISTIC and "
                 "similar often-quoted names are left out: no library reads them")
      ->check(CLI::IsMember({"deterministic"}));
}

launch::Controls to_controls(const ControlOptions& options, int usage_status) {
  launch::Controls controls;
  controls.aslr_off = options.aslr == "off";
  if (options.cpus) {
    auto cpus = launch::parse_cpu_list(*options.cpus);
    if (!cpus) {
      throw CommandError(usage_status, "--cpus: " + cpus.error().message);
    }
    controls.cpus = *cpus;
  }
  if (options.threads > 0) {
    controls.threads = options.threads;
  }
  controls.env_deterministic = options.env_preset == "deterministic";
  return controls;
}

CLI::Validator timeout_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        double seconds = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(seconds) || seconds <= 0 ||
            seconds > 366.0 * 24 * 3600) {
          return "'" + text + "' is not a number of seconds above 0 and at most a year";
        }
        return {};
      },
      "SECONDS");
}

std::string self_executable() {
  char path[PATH_MAX];
  ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) {
    return "memdet";
  }
  return std::string(path, static_cast<size_t>(length));
}

}  // namespace memdet::cli
