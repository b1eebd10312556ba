// numa-balancing: the kernel's automatic NUMA balancing, which migrates
// pages and tasks between nodes while a program runs. A system-wide
// setting: pinned off with --system, through the journal. On one node it
// cannot vary, so `all` records it as not applicable.
#include "core/sys.h"
#include "core/text.h"
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

constexpr const char* kSetting = "/proc/sys/kernel/numa_balancing";

class NumaBalancing final : public Factor {
 public:
  // Left free, it takes a different value in every run.
  bool varies_when_free() const override { return true; }

  const char* name() const override { return "numa-balancing"; }
  const char* summary() const override {
    return "automatic NUMA balancing (system-wide, /proc/sys/kernel/numa_balancing): pin 0 "
           "with --system; journaled and restored on every exit";
  }
  bool system_wide() const override { return true; }
  bool perturbable() const override { return false; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    std::string setting = value.empty() ? "0" : value;
    if (setting.size() != 1 || setting[0] < '0' || setting[0] > '3') {
      return bad_request("unknown value '" + value + "' (0 off, 1 on, 2 or 3 memory tiering)");
    }
    if (!sys::read_small_file(kSetting)) {
      return not_applicable(std::string(kSetting) + " is missing (kernel without NUMA balancing)");
    }
    if (!host.system_allowed) {
      return not_applicable(host.nodes.size() < 2 ? "one NUMA node" : "holding it needs --system");
    }
    return resolved(setting);
  }

  std::vector<SystemWrite> system_writes(const std::string& value, const Host&) const override {
    return {{kSetting, value}};
  }

  void apply(const std::string&, const Host&, LaunchPlan&) const override {}

  void verify(const std::string& value, const Observation&, FactorRecord& record) const override {
    auto now = sys::read_small_file(kSetting);
    if (!now) {
      record.verified = launch::CheckState::kUnread;
      record.observed = now.error().message;
      return;
    }
    std::string current(trim(*now));
    record.observed = std::string(kSetting) + " = " + current + " after the run";
    record.measured = current;
    record.verified =
        current == value ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
  }
};

}  // namespace

const Factor& numa_balancing_factor() {
  static const NumaBalancing factor;
  return factor;
}

}  // namespace memdet::factors
