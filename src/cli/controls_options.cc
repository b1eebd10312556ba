#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "core/sys.h"

namespace memdet::cli {
namespace {

std::string factor_footer() {
  std::string text = "Factors (--pin F[=V], --perturb F; all = every one marked *):\n";
  for (const factors::Factor* factor : factors::all_factors()) {
    std::string name = factor->name();
    name += factor->in_all() ? " *" : "";
    name.resize(std::max<size_t>(name.size() + 1, 17), ' ');
    text += "  " + name + factor->summary() + "\n";
  }
  return text;
}

std::string self_dir() {
  std::string self = self_executable();
  size_t slash = self.rfind('/');
  return slash == std::string::npos ? "." : self.substr(0, slash);
}

uint64_t parse_seed(const std::string& text, int usage_status) {
  char* end = nullptr;
  errno = 0;
  unsigned long long seed = std::strtoull(text.c_str(), &end, 0);
  if (text.empty() || *end != '\0' || errno != 0 || text[0] == '-') {
    throw CommandError(usage_status,
                       "--seed '" + text + "': expected a number (decimal, or hex with 0x)");
  }
  return seed;
}

}  // namespace

void add_control_options(CLI::App& app, ControlOptions& options) {
  app.add_option("--pin", options.pins,
                 "hold factor F still, at V or its default (repeatable; all = every factor "
                 "but mlock and noise); see the list below")
      ->type_name("F[=V]")
      ->allow_extra_args(false);
  app.add_option("--perturb", options.perturbs,
                 "vary factor F on purpose: run 1 is the reference at the pinned value, every "
                 "further run takes a different seeded value (heap=random: per allocation too)")
      ->type_name("F")
      ->allow_extra_args(false);
  app.add_option("--seed", options.seed,
                 "seed for perturbed values (default: drawn, and recorded so runs replay)")
      ->check([](const std::string& value) {
        return value.empty() ? std::string("empty: give a number, or leave --seed out") : "";
      });
  app.add_flag("--system", options.system,
               "allow changes to machine-wide settings (THP mode, NUMA balancing); needs root; "
               "journaled and restored on every exit");
  app.add_option("--aslr", options.aslr, "off: same as --pin aslr (setarch -R); on: leave it")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--cpus,--physcpubind", options.cpus,
                 "run the workload on these CPUs only (taskset syntax: 0-3,8); memdet stops if "
                 "the kernel grants a different set");
  app.add_option("--threads", options.threads, "same as --pin threads=N")
      ->check(CLI::Range(1, 4096));
  app.add_option("--env-preset", options.env_preset, "deterministic: same as --pin env")
      ->check(CLI::IsMember({"deterministic"}));
  app.add_option("--membind", options.membind, "same as --pin numa=bind:NODE");
  app.add_option("--interleave", options.interleave, "same as --pin numa=interleave:NODES");
  app.add_option("--cpunodebind", options.cpunodebind,
                 "run the workload on the CPUs of this NUMA node");
  app.add_option("--noise-cpus", options.noise_cpus,
                 "the CPUs the noise factor sets aside for its antagonist (default: the last "
                 "one the workload may use)");
  app.footer(factor_footer());
}

FactorSetup prepare_factors(const ControlOptions& options, int usage_status,
                            const std::vector<std::pair<std::string, std::string>>& replay) {
  FactorSetup setup;
  setup.host = factors::read_host("", self_dir());
  setup.host.system_allowed = options.system;

  factors::Selection selection;
  selection.pins = options.pins;
  selection.perturbs = options.perturbs;
  selection.system = options.system;
  selection.replay = replay;
  if (!options.seed.empty()) {
    selection.seed = parse_seed(options.seed, usage_status);
  }
  if (options.aslr == "off") {
    selection.pins.push_back("aslr=off");
  }
  if (options.aslr == "on") {
    for (const std::string& pin : options.pins) {
      if (pin == "aslr" || pin.rfind("aslr=", 0) == 0 || pin == "all") {
        throw CommandError(usage_status, "--aslr on leaves ASLR free; --pin " + pin +
                                             " pins it: they contradict each other");
      }
    }
  }
  if (options.threads > 0) {
    selection.pins.push_back("threads=" + std::to_string(options.threads));
  }
  if (options.env_preset == "deterministic") {
    selection.pins.push_back("env=deterministic");
  }
  if (options.membind && options.interleave) {
    throw CommandError(usage_status, "--membind and --interleave contradict each other");
  }
  if (options.membind) {
    selection.pins.push_back("numa=bind:" + *options.membind);
  }
  if (options.interleave) {
    selection.pins.push_back("numa=interleave:" + *options.interleave);
  }

  if (options.cpus) {
    auto cpus = launch::parse_cpu_list(*options.cpus);
    if (!cpus) {
      throw CommandError(usage_status, "--cpus: " + cpus.error().message);
    }
    for (int cpu : *cpus) {
      if (setup.host.allowed_cpus.count(cpu) == 0) {
        throw CommandError(usage_status,
                           "--cpus: CPU " + std::to_string(cpu) + " is not available (allowed: " +
                               launch::format_cpu_list(setup.host.allowed_cpus) + ")");
      }
    }
    setup.controls.cpus = *cpus;
  }
  if (options.cpunodebind) {
    char* end = nullptr;
    long id = std::strtol(options.cpunodebind->c_str(), &end, 10);
    const factors::NumaNode* found = nullptr;
    for (const factors::NumaNode& node : setup.host.nodes) {
      found = *end == '\0' && node.id == id ? &node : found;
    }
    if (found == nullptr || found->cpus.empty()) {
      throw CommandError(usage_status,
                         "--cpunodebind " + *options.cpunodebind + ": no such NUMA node with CPUs");
    }
    setup.controls.cpus = found->cpus;
  }
  if (options.noise_cpus) {
    auto cpus = launch::parse_cpu_list(*options.noise_cpus);
    if (!cpus) {
      throw CommandError(usage_status, "--noise-cpus: " + cpus.error().message);
    }
    setup.host.noise_cpus = *cpus;
  }
  // The factors see the CPUs the workload will really get.
  if (setup.controls.cpus) {
    setup.host.allowed_cpus = *setup.controls.cpus;
  }

  auto profile = factors::make_profile(selection, setup.host);
  if (!profile) {
    throw CommandError(usage_status, profile.error().message);
  }
  setup.profile = std::move(*profile);
  return setup;
}

void warn_about_weakened_entropy(const factors::Profile& profile) {
  const factors::ProfileEntry* entropy = profile.find("entropy");
  if (entropy != nullptr && entropy->mode != factors::Mode::kFree &&
      entropy->applied == factors::Applied::kApplied) {
    std::fprintf(stderr,
                 "memdet: OS entropy comes from a seeded stream in these runs: cryptographic "
                 "randomness is weakened (for experiments, never for production jobs)\n");
  }
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

void require_writable(const std::string& option, const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) == 0 && !S_ISREG(status.st_mode)) {
    // A FIFO or a device: opening it would be a write its reader sees.
    if (S_ISDIR(status.st_mode) || ::access(path.c_str(), W_OK) != 0) {
      throw usage_error(
          option + " " + path + ": cannot write: " +
          (S_ISDIR(status.st_mode) ? std::string("a directory") : sys::errno_text(errno)));
    }
    return;
  }
  // A regular file is opened as it will be, and removed again when this
  // made it.
  const bool existed = ::access(path.c_str(), F_OK) == 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw usage_error(option + " " + path + ": cannot write: " + sys::errno_text(errno));
  }
  ::close(fd);
  if (!existed) {
    ::unlink(path.c_str());
  }
}

CLI::Validator non_empty_file_name() {
  return CLI::Validator(
      [](std::string& text) { return text.empty() ? std::string("needs a file name") : ""; },
      "FILE");
}

void require_report_output(const std::string& option, const std::string& path,
                           const std::string& campaign_dir) {
  namespace fs = std::filesystem;
  if (path.empty()) {
    throw usage_error(option + " needs a file name");
  }
  std::error_code code;
  const fs::path target = fs::weakly_canonical(fs::absolute(path, code), code);
  if (!campaign_dir.empty()) {
    const fs::path dir = fs::weakly_canonical(fs::absolute(campaign_dir, code), code);
    const std::string name = target.filename().string();
    if (target.parent_path() == dir && (name == "check.json" || name == "isolate.json" ||
                                        name == "campaign.db" || name == "campaign.lock")) {
      throw usage_error(option + " " + path + ": would overwrite the campaign's own " + name);
    }
    // A folder of the campaign directory that does not exist yet: memdet
    // makes the campaign directory before it writes the report.
    const fs::path parent = target.parent_path();
    auto [inside, rest] = std::mismatch(dir.begin(), dir.end(), parent.begin(), parent.end());
    if (inside == dir.end() && !fs::exists(parent, code)) {
      return;
    }
  }
  require_writable(option, path);
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
