// noise: memory-bandwidth interference from other work on the machine. A
// value is INTENSITY:CPUS. Every run, pinned or perturbed, keeps the
// workload off CPUS (default: the last CPU it may use), so the only
// difference between a reference run and a perturbed one is what runs
// there. Pinned: idle, nothing. Perturbed: the antagonist (antagonist.h),
// which the campaign starts before the run and stops after it; `stream`
// copies at full speed, `noise=stream50` at half of it. Verified by the
// workload's CPU list at the exec stop and by the bandwidth the antagonist
// reported, against the fraction of its full speed that was asked.
//
// Not part of `all`: the CPUs set aside are taken from the workload.
#include <cstdio>

#include "factors/antagonist.h"
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

constexpr const char* kIdle = "idle";
// An antagonist that reached less than this share of the fraction asked
// was starved of its CPU: the record says so.
constexpr double kShortfall = 0.8;

struct NoiseValue {
  std::string intensity;  // "idle", or what Antagonist::start takes
  launch::CpuSet cpus;    // empty: not given
};

Result<NoiseValue> parse(const std::string& value) {
  size_t colon = value.find(':');
  NoiseValue parsed;
  parsed.intensity = value.substr(0, colon);
  if (parsed.intensity.empty()) {
    parsed.intensity = kIdle;
  }
  if (parsed.intensity != kIdle) {
    auto duty = antagonist_duty_percent(parsed.intensity);
    if (!duty) {
      return make_error(duty.error().message + "; a value is idle[:CPUS] or stream[N][:CPUS]");
    }
  }
  if (colon != std::string::npos) {
    auto cpus = launch::parse_cpu_list(value.substr(colon + 1));
    if (!cpus) {
      return make_error("'" + value + "': " + cpus.error().message);
    }
    parsed.cpus = *cpus;
  }
  return parsed;
}

std::string format(const NoiseValue& value) {
  return value.intensity + ":" + launch::format_cpu_list(value.cpus);
}

class Noise final : public Factor {
 public:
  // Left free, it takes a different value in every run.
  bool varies_when_free() const override { return true; }

  const char* name() const override { return "noise"; }
  bool shapes_cpus() const override { return true; }
  const char* summary() const override {
    return "memory-bandwidth antagonist: every run keeps off the CPUs set aside (default: the "
           "last one; value idle:CPUS), perturb streams memory there (stream, or stream50 for "
           "half its full speed); verified by the bandwidth it reported";
  }
  bool in_all() const override { return false; }
  bool accepts_variant(const std::string& variant) const override {
    return variant.empty() || antagonist_duty_percent(variant).ok();
  }

  Resolution resolve(const std::string& value, const Host& host) const override {
    if (host.allowed_cpus.size() < 2) {
      return not_applicable("one CPU: none can be set aside for the antagonist");
    }
    auto parsed = parse(value);
    if (!parsed) {
      return bad_request(parsed.error().message);
    }
    if (!parsed->cpus.empty() && !host.noise_cpus.empty() && parsed->cpus != host.noise_cpus) {
      return bad_request("'" + value + "' sets aside CPUs " +
                         launch::format_cpu_list(parsed->cpus) + ", --noise-cpus " +
                         launch::format_cpu_list(host.noise_cpus) + ": they contradict each other");
    }
    if (parsed->cpus.empty()) {
      parsed->cpus = host.noise_cpus;
    }
    if (parsed->cpus.empty()) {
      parsed->cpus.insert(*host.allowed_cpus.rbegin());
    }
    launch::CpuSet left = host.allowed_cpus;
    for (int cpu : parsed->cpus) {
      if (left.erase(cpu) == 0) {
        return bad_request("CPU " + std::to_string(cpu) + " is not available to memdet (allowed: " +
                           launch::format_cpu_list(host.allowed_cpus) + ")");
      }
    }
    if (left.empty()) {
      return bad_request("setting aside CPUs " + launch::format_cpu_list(parsed->cpus) +
                         " leaves none for the workload");
    }
    return resolved(format(*parsed));
  }

  std::string perturbed_value(const std::string& reference, const std::string& variant, int,
                              uint64_t, const Host&) const override {
    auto parsed = parse(reference);
    if (!parsed) {
      return {};
    }
    std::string intensity = variant.empty() ? "stream" : variant;
    parsed->intensity = intensity == parsed->intensity ? kIdle : intensity;
    return format(*parsed);
  }

  // After numa, which may have narrowed the CPUs to one node's. If the
  // noise CPUs were all that was left, the CPU set is empty and the launch
  // fails loudly rather than share them with the antagonist.
  void apply(const std::string& value, const Host& host, LaunchPlan& plan) const override {
    auto parsed = parse(value);
    if (!parsed) {
      return;
    }
    launch::CpuSet cpus = plan.controls.cpus ? *plan.controls.cpus : host.allowed_cpus;
    for (int cpu : parsed->cpus) {
      cpus.erase(cpu);
    }
    plan.controls.cpus = cpus;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!exec_stop_read(seen, record)) {
      return;
    }
    auto parsed = parse(value);
    const std::string& listed = seen.launch->at_start.cpus_allowed_list;
    auto workload = launch::parse_cpu_list(listed);
    if (!parsed || !workload) {
      record.verified = launch::CheckState::kUnread;
      record.observed = "the workload's CPU list '" + listed + "' could not be read";
      return;
    }
    std::string shared;
    for (int cpu : parsed->cpus) {
      if (workload->count(cpu) != 0) {
        shared += (shared.empty() ? "" : ",") + std::to_string(cpu);
      }
    }
    record.observed = "workload on CPUs " + launch::format_cpu_list(*workload) + ", CPUs " +
                      launch::format_cpu_list(parsed->cpus) + " set aside";
    if (!shared.empty()) {
      record.verified = launch::CheckState::kDiffers;
      record.observed += ", but the workload may run on " + shared;
      return;
    }
    if (parsed->intensity == kIdle) {
      record.measured = "antagonist idle";
      record.verified = launch::CheckState::kVerified;
      return;
    }
    // The rest of the proof is the antagonist's bandwidth, which
    // record_antagonist adds.
    record.verified = launch::CheckState::kNotObservable;
    record.observed += "; the antagonist's bandwidth was not recorded";
  }
};

}  // namespace

const Factor& noise_factor() {
  static const Noise factor;
  return factor;
}

std::optional<AntagonistPlan> antagonist_for(const FactorRecord& record) {
  if (record.name != noise_factor().name() || record.applied != Applied::kApplied) {
    return std::nullopt;
  }
  auto parsed = parse(record.value);
  if (!parsed || parsed->intensity == kIdle || parsed->cpus.empty()) {
    return std::nullopt;
  }
  return AntagonistPlan{parsed->cpus, parsed->intensity};
}

void record_antagonist(const Result<AntagonistRate>& rate, FactorRecord& record) {
  auto parsed = parse(record.value);
  std::string intensity = parsed ? parsed->intensity : record.value;
  std::string where = parsed ? " on CPUs " + launch::format_cpu_list(parsed->cpus) : "";
  const std::string pending = "; the antagonist's bandwidth was not recorded";
  if (record.observed.size() >= pending.size() &&
      record.observed.compare(record.observed.size() - pending.size(), pending.size(), pending) ==
          0) {
    record.observed.resize(record.observed.size() - pending.size());
  }
  std::string separator = record.observed.empty() ? "" : "; ";

  if (!rate) {
    record.observed += separator + "antagonist " + intensity + where + ": " + rate.error().message;
    record.measured = "antagonist idle";
    record.verified = launch::CheckState::kDiffers;
    return;
  }
  char text[200];
  double asked = rate->duty_percent / 100.0;
  std::snprintf(text, sizeof text, "%.2f GB/s, %.2f of its full %.2f GB/s (%.2f asked)", rate->gbps,
                rate->achieved_fraction(), rate->full_gbps, asked);
  record.observed += separator + "antagonist " + intensity + where + " copied " + text;
  bool moved = rate->gbps > 0;
  if (moved && rate->full_gbps > 0 && rate->achieved_fraction() < kShortfall * asked) {
    std::snprintf(text, sizeof text,
                  "the antagonist reached %.2f of its full speed where %.2f was asked: its CPU "
                  "was busy with other work, or memory was saturated",
                  rate->achieved_fraction(), asked);
    record.note += (record.note.empty() ? "" : "; ") + std::string(text);
  }
  // Coarse on purpose: pinned runs compare this between runs, and the
  // exact bandwidth never repeats.
  record.measured = moved ? "antagonist " + intensity : "antagonist idle";
  if (!moved) {
    record.verified = launch::CheckState::kDiffers;
  } else if (record.verified == launch::CheckState::kNotObservable) {
    record.verified = launch::CheckState::kVerified;
  }
}

}  // namespace memdet::factors
