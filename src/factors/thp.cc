// thp: the transparent-huge-page mode. Per process, `never` through
// PR_SET_THP_DISABLE, which fork and exec keep, with no system write.
// `system` (the default) holds the machine's mode: it counts as pinned when
// it reads the same before and after every run. The system-wide modes
// (always, madvise) need --system. No perturbation.
#include "core/sys.h"
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

constexpr const char* kEnabled = "/sys/kernel/mm/transparent_hugepage/enabled";

std::string system_mode() {
  auto text = sys::read_small_file(kEnabled);
  if (!text) {
    return {};
  }
  size_t open = text->find('[');
  size_t close = text->find(']', open);
  return open == std::string::npos || close == std::string::npos
             ? std::string()
             : text->substr(open + 1, close - open - 1);
}

class Thp final : public Factor {
 public:
  const char* name() const override { return "thp"; }
  const char* summary() const override {
    return "transparent huge page mode: pin never (per process, PR_SET_THP_DISABLE), system "
           "(hold the machine's mode), or always/madvise (system-wide, needs --system); "
           "verified by THP_enabled at the exec stop";
  }
  bool perturbable() const override { return false; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    std::string mode = value.empty() ? "system" : value;
    if (mode != "system" && mode != "never" && mode != "always" && mode != "madvise") {
      return bad_request("unknown value '" + value + "' (never, system, always, madvise)");
    }
    if (host.thp_mode.empty()) {
      return not_applicable("this kernel has no transparent huge pages");
    }
    if ((mode == "always" || mode == "madvise") && !host.system_allowed) {
      return bad_request("thp=" + mode +
                         " changes the machine's mode; add --system (as root), or use "
                         "thp=never, which is per process");
    }
    // Not system_wide() as a factor, since thp=never is per process, so
    // the profile's root check does not cover the system-wide modes.
    if ((mode == "always" || mode == "madvise") && !host.root) {
      return bad_request("thp=" + mode + " changes the machine's mode, which needs root");
    }
    return resolved(mode);
  }

  std::vector<SystemWrite> system_writes(const std::string& value, const Host&) const override {
    if (value == "always" || value == "madvise") {
      return {{kEnabled, value}};
    }
    return {};
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    plan.controls.thp_disable = value == "never";
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!exec_stop_read(seen, record)) {
      return;
    }
    int enabled = seen.launch->at_start.thp_enabled;
    if (enabled < 0) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed = "this kernel shows no THP_enabled";
      return;
    }
    record.observed = "THP_enabled " + std::to_string(enabled);
    record.measured = record.observed;
    record.verified = (enabled == 0) == (value == "never") ? launch::CheckState::kVerified
                                                           : launch::CheckState::kDiffers;
    // The machine's mode counts as held only if it still reads as it did
    // before the first run.
    std::string mode = system_mode();
    record.observed += ", system mode " + (mode.empty() ? std::string("unread") : mode);
    std::string expected = value == "always" || value == "madvise" ? value
                           : seen.host != nullptr                  ? seen.host->thp_mode
                                                                   : mode;
    if (mode != expected) {
      record.verified = launch::CheckState::kDiffers;
      record.note = "the machine's THP mode changed during the campaign (" + expected + " before)";
    }
  }
};

}  // namespace

const Factor& thp_factor() {
  static const Thp factor;
  return factor;
}

}  // namespace memdet::factors
