// thp: the transparent-huge-page mode. Per process, `never` through
// PR_SET_THP_DISABLE, which fork and exec keep, with no system write.
// `system` (the default) holds the machine's mode: it counts as pinned when
// it reads the same before and after every run. The system-wide modes
// (always, madvise) need --system. No perturbation.
//
// The kernel also has one mode per THP size (multi-size THP,
// Documentation/admin-guide/mm/transhuge.rst): hugepages-<N>kB/enabled,
// where `inherit` follows the top-level mode. A system-wide mode makes the
// PMD size (2048 kB on x86-64) `inherit`, so that "always" means always for
// the 2 MiB pages that large arrays get; the smaller sizes are left as the
// administrator set them (turning them on changes how every small
// allocation faults) and recorded as read. Sizes without a file are
// skipped. Verification reads every per-size mode back.
#include "core/sys.h"
#include "factors/exec_stop.h"
#include "factors/system_settings.h"

namespace memdet::factors {
namespace {

constexpr const char* kEnabled = "/sys/kernel/mm/transparent_hugepage/enabled";
constexpr const char* kThpDir = "/sys/kernel/mm/transparent_hugepage";

std::string size_file(long long kb) {
  return std::string(kThpDir) + "/hugepages-" + std::to_string(kb) + "kB/enabled";
}

// The size whose mode a system-wide pin sets: the PMD size, 2 MiB when the
// kernel does not say.
long long pmd_kb(const Host& host) { return host.thp_pmd_kb > 0 ? host.thp_pmd_kb : 2048; }

// The per-size modes a run should find: as the host read them, with the PMD
// size at inherit under a system-wide pin.
std::map<long long, std::string> expected_size_modes(const std::string& value, const Host& host) {
  std::map<long long, std::string> modes = host.thp_size_modes;
  auto pmd = modes.find(pmd_kb(host));
  if ((value == "always" || value == "madvise") && pmd != modes.end()) {
    pmd->second = "inherit";
  }
  return modes;
}

// "2048kB inherit, 8kB never, ...": sizes grouped by mode.
std::string describe_size_modes(const std::map<long long, std::string>& modes) {
  std::map<std::string, std::string> by_mode;
  for (const auto& [kb, mode] : modes) {
    std::string& sizes = by_mode[mode.empty() ? "unread" : mode];
    if (!sizes.empty()) {
      sizes += ',';
    }
    sizes += std::to_string(kb);
    sizes += "kB";
  }
  std::string text;
  for (const auto& [mode, sizes] : by_mode) {
    if (!text.empty()) {
      text += "; ";
    }
    text += mode;
    text += ' ';
    text += sizes;
  }
  return text;
}

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
           "(hold the machine's mode), or always/madvise (system-wide, needs --system; the "
           "2048 kB per-size mode becomes inherit, smaller sizes stay as set); verified by "
           "THP_enabled at the exec stop and the modes read back";
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

  std::vector<SystemWrite> system_writes(const std::string& value,
                                         const Host& host) const override {
    if (value != "always" && value != "madvise") {
      return {};
    }
    std::vector<SystemWrite> writes = {{kEnabled, value}};
    if (host.thp_size_modes.count(pmd_kb(host)) != 0) {
      writes.push_back({size_file(pmd_kb(host)), "inherit"});
    }
    return writes;
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
    if (seen.host == nullptr || seen.host->thp_size_modes.empty()) {
      return;
    }
    std::map<long long, std::string> want = expected_size_modes(value, *seen.host);
    std::map<long long, std::string> now;
    for (const auto& [kb, before] : want) {
      auto read = read_setting(size_file(kb));
      now[kb] = read ? *read : "";
    }
    record.observed += ", per size: " + describe_size_modes(now);
    if (now != want) {
      record.verified = launch::CheckState::kDiffers;
      record.note += std::string(record.note.empty() ? "" : "; ") +
                     "the per-size THP modes are not as expected (" + describe_size_modes(want) +
                     ")";
    }
  }
};

}  // namespace

const Factor& thp_factor() {
  static const Thp factor;
  return factor;
}

}  // namespace memdet::factors
