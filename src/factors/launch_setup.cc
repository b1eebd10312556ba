#include "factors/launch_setup.h"

#include <unistd.h>

#include <algorithm>

namespace memdet::factors {
namespace {

constexpr size_t kStackRounding = 256;

// Removes NAME from env and returns its value ("" when absent).
std::string take(std::vector<std::string>& env, const std::string& name) {
  std::string value;
  const std::string prefix = name + "=";
  auto it = std::find_if(env.begin(), env.end(),
                         [&](const std::string& entry) { return entry.rfind(prefix, 0) == 0; });
  if (it != env.end()) {
    value = it->substr(prefix.size());
    env.erase(it);
  }
  return value;
}

void put(std::vector<std::string>& env, const std::string& name, const std::string& value) {
  take(env, name);
  env.push_back(name + "=" + value);
}

Status merge_controls(const launch::Controls& planned, launch::Controls& controls) {
  controls.aslr_off = controls.aslr_off || planned.aslr_off;
  controls.thp_disable = controls.thp_disable || planned.thp_disable;
  if (planned.mem_policy != launch::Controls::MemPolicy::kDefault) {
    controls.mem_policy = planned.mem_policy;
    controls.mem_nodes = planned.mem_nodes;
  }
  if (planned.cpus) {
    if (!controls.cpus) {
      controls.cpus = planned.cpus;
    } else {
      launch::CpuSet both;
      std::set_intersection(controls.cpus->begin(), controls.cpus->end(), planned.cpus->begin(),
                            planned.cpus->end(), std::inserter(both, both.begin()));
      if (both.empty()) {
        return make_error("the CPUs asked for (" + launch::format_cpu_list(*controls.cpus) +
                          ") and the CPUs a factor needs (" +
                          launch::format_cpu_list(*planned.cpus) + ") have none in common");
      }
      controls.cpus = both;
    }
  }
  return {};
}

// The stack factor's base: "auto", "BYTES", or "BYTES@ENTRIES". The kernel
// lays out the strings and then one pointer per argv and environment entry,
// so an exact replay needs both the byte total and the entry count.
Status pad_stack(const LaunchPlan& plan, launch::LaunchSpec& spec, RunFactors& run) {
  put(spec.env, "MEMDET_STACK_PAD", "");
  size_t base = 0;
  size_t entries = 0;
  if (plan.stack_base != "auto") {
    size_t at = plan.stack_base.find('@');
    base = static_cast<size_t>(std::stoul(plan.stack_base.substr(0, at)));
    if (at != std::string::npos) {
      entries = static_cast<size_t>(std::stoul(plan.stack_base.substr(at + 1)));
    }
  }
  size_t count = spec.argv.size() + spec.env.size();
  if (entries > 0 && count > entries) {
    return make_error("stack: the command has " + std::to_string(count) +
                      " argv and environment entries, more than the " + std::to_string(entries) +
                      " recorded");
  }
  // Each entry takes a pointer and at least one byte on the new stack, so a
  // count that could never fit is refused before any filler is built.
  const long arg_max = ::sysconf(_SC_ARG_MAX);
  if (arg_max > 0 && entries > static_cast<size_t>(arg_max) / (sizeof(char*) + 1)) {
    return make_error("stack: " + std::to_string(entries) +
                      " argv and environment entries are more than the kernel lets exec take "
                      "(ARG_MAX " +
                      std::to_string(arg_max) + ")");
  }
  for (size_t fill = 1; count < entries; ++fill, ++count) {
    spec.env.push_back("MEMDET_STACK_FILL" + std::to_string(fill) + "=");
  }
  const size_t footprint = launch::exec_footprint(spec.executable, spec.argv, spec.env);
  if (plan.stack_base == "auto") {
    base = (footprint / kStackRounding + 1) * kStackRounding;
  }
  const size_t total = base + plan.stack_extra;
  if (total < footprint) {
    return make_error("stack: the command and its environment take " + std::to_string(footprint) +
                      " bytes, more than the pinned total of " + std::to_string(total));
  }
  // The kernel refuses one string over 128 KiB (MAX_ARG_STRLEN) and a
  // total over a quarter of the stack limit (ARG_MAX): say so here, not as
  // the command's failure to execute.
  constexpr size_t kMaxArgString = 128 * 1024;
  const size_t pad = total - footprint;
  if (pad + std::string("MEMDET_STACK_PAD=").size() + 1 > kMaxArgString ||
      (arg_max > 0 && total + count * sizeof(char*) > static_cast<size_t>(arg_max))) {
    return make_error("stack: a total of " + std::to_string(total) +
                      " bytes is more than the kernel lets exec take (ARG_MAX " +
                      std::to_string(arg_max) + ", 128 KiB a string)");
  }
  put(spec.env, "MEMDET_STACK_PAD", std::string(pad, 'x'));
  const std::string layout = std::to_string(base) + "@" + std::to_string(count);
  for (FactorRecord& record : run.records) {
    if (record.name == "stack") {
      record.reference = layout;
      record.value = layout + (plan.stack_extra > 0 ? "+" + std::to_string(plan.stack_extra) : "");
      record.observed = std::to_string(total) + " bytes in " + std::to_string(count) +
                        " argv and environment entries";
    }
  }
  return {};
}

}  // namespace

Status finish_launch(const LaunchPlan& plan, const Host& host, const PreloadUse& use,
                     launch::LaunchSpec& spec, RunFactors& run) {
  return finish_launch(plan, host, use, FingerprintUse{}, spec, run);
}

Status finish_launch(const LaunchPlan& plan, const Host& host, const PreloadUse& use,
                     const FingerprintUse& fingerprint_use, launch::LaunchSpec& spec,
                     RunFactors& run) {
  Status merged = merge_controls(plan.controls, spec.controls);
  if (!merged) {
    return merged;
  }
  for (const auto& [name, value] : plan.env) {
    put(spec.env, name, value);
  }

  take(spec.env, "MEMDET_PRELOAD");
  take(spec.env, "MEMDET_STACK_PAD");
  const bool fingerprint = !fingerprint_use.dir.empty();
  // Padded whenever a fingerprint is taken: its directory is in the value.
  const bool padded = use.always || fingerprint;
  if (fingerprint && fingerprint_use.dir[0] != '/') {
    return make_error("the fingerprint directory must be an absolute path: " + fingerprint_use.dir);
  }
  if (padded || plan.needs_preload) {
    if (host.preload_library.empty()) {
      if (plan.needs_preload || fingerprint) {
        return make_error(
            "libmemdet_preload.so was not found beside the memdet binary; the "
            "factors or the fingerprint asked for need it (cmake --build build --target "
            "memdet_preload)");
      }
    } else {
      std::map<std::string, std::string> fields;
      if (plan.needs_preload) {
        fields = plan.preload;
        fields["report"] = use.report_prefix;
      }
      if (fingerprint) {
        fields["fingerprint"] = fingerprint_use.dir;
        fields["fp_threshold"] = std::to_string(fingerprint_use.threshold);
      }
      std::string config = encode_preload_config(fields);
      if (config.empty()) {
        return make_error("the preload configuration does not fit in " +
                          std::to_string(kPreloadConfigWidth) + " bytes");
      }
      if (!padded) {
        config.erase(config.find_last_not_of(' ') + 1);
      }
      std::string list = host.preload_library;
      if (!plan.lower_allocator.empty()) {
        list += " " + plan.lower_allocator;
      }
      std::string user = take(spec.env, "LD_PRELOAD");
      if (!user.empty()) {
        list += " " + user;
      }
      if (padded) {
        if (list.size() > kPreloadListWidth) {
          return make_error("LD_PRELOAD would exceed " + std::to_string(kPreloadListWidth) +
                            " bytes");
        }
        list.resize(kPreloadListWidth, ' ');
      }
      put(spec.env, "LD_PRELOAD", list);
      put(spec.env, "MEMDET_PRELOAD", config);
    }
  }
  if (!plan.stack_base.empty()) {
    return pad_stack(plan, spec, run);
  }
  return {};
}

}  // namespace memdet::factors
