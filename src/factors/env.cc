// env: the environment variables frameworks read to choose deterministic
// paths. Pinned: the deterministic preset. Perturbed: the same preset with
// PYTHONHASHSEED drawn from the seed. Verified in the environment the
// program really received at the exec stop; a command that sets a value
// itself (`/usr/bin/env PYTHONHASHSEED=0 ...`) is reported as overriding it.
#include <cstdio>

#include "core/text.h"
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

// Ten digits: every perturbed value has the width of the pinned one, so the
// environment's size does not move the stack. Python reads leading zeros.
std::string hash_seed_text(uint64_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "%010llu", static_cast<unsigned long long>(value));
  return text;
}

std::map<std::string, std::string> preset(const std::string& value) {
  std::map<std::string, std::string> variables;
  for (const auto& [name, setting] : launch::deterministic_env()) {
    variables[name] = setting;
  }
  variables["PYTHONHASHSEED"] = value == "deterministic" ? hash_seed_text(0) : value;
  return variables;
}

// NAME=value arguments an env(1) at the front of the command sets itself.
std::map<std::string, std::string> set_by_command(const std::vector<std::string>& argv) {
  std::map<std::string, std::string> set;
  if (argv.empty() || base_name(argv[0]) != "env") {
    return set;
  }
  for (size_t i = 1; i < argv.size(); ++i) {
    size_t equals = argv[i].find('=');
    if (argv[i].empty() || argv[i][0] == '-' || equals == std::string::npos || equals == 0) {
      break;
    }
    set[argv[i].substr(0, equals)] = argv[i].substr(equals + 1);
  }
  return set;
}

class Env final : public Factor {
 public:
  const char* name() const override { return "env"; }
  const char* summary() const override {
    return "framework determinism variables (PYTHONHASHSEED=0, CUBLAS_WORKSPACE_CONFIG, "
           "OMP_DYNAMIC=false, ...): pin the preset, perturb draws PYTHONHASHSEED; verified "
           "in the environment at the exec stop";
  }

  Resolution resolve(const std::string& value, const Host&) const override {
    if (value.empty() || value == "deterministic") {
      return resolved("deterministic");
    }
    return bad_request("unknown value '" + value + "' (deterministic)");
  }

  std::string perturbed_value(const std::string&, const std::string&, int k, uint64_t seed,
                              const Host&) const override {
    // Never 0, the preset's own value.
    return hash_seed_text(1 + mix_seed(seed, static_cast<uint64_t>(k)) % 4294967295ULL);
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    for (const auto& [name, setting] : preset(value)) {
      plan.env[name] = setting;
    }
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!exec_stop_read(seen, record)) {
      return;
    }
    const launch::ProcSnapshot& start = seen.launch->at_start;
    std::map<std::string, std::string> overridden = set_by_command(*seen.argv);
    std::string missing;
    std::string overrides;
    for (const auto& [name, setting] : preset(value)) {
      bool found = false;
      for (const std::string& entry : start.environ) {
        found = found || entry == name + "=" + setting;
      }
      if (!found) {
        missing += (missing.empty() ? "" : ", ") + name;
      }
      auto by_command = overridden.find(name);
      if (by_command != overridden.end() && by_command->second != setting) {
        overrides += (overrides.empty() ? "" : " ") + name + "=" + by_command->second;
      }
    }
    std::string effective_seed = preset(value)["PYTHONHASHSEED"];
    if (overridden.count("PYTHONHASHSEED") != 0) {
      effective_seed = overridden["PYTHONHASHSEED"];
    }
    record.measured = "PYTHONHASHSEED=" + effective_seed;
    if (!missing.empty()) {
      record.verified = launch::CheckState::kDiffers;
      record.observed = "missing from the program's environment: " + missing;
    } else if (!overrides.empty()) {
      record.verified = launch::CheckState::kDiffers;
      record.observed = "overridden by the command: " + overrides;
    } else {
      record.verified = launch::CheckState::kVerified;
      record.observed = "in the environment at exec: PYTHONHASHSEED=" + effective_seed;
    }
  }
};

}  // namespace

const Factor& env_factor() {
  static const Env factor;
  return factor;
}

}  // namespace memdet::factors
