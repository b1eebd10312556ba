// hugepages: whether large allocations get 2 MiB pages. Pinned: small
// (4 KiB pages only: the preload library turns the program's own
// MADV_HUGEPAGE into a no-op, as numpy advises it on large arrays) or huge
// (allocations of 2 MiB and more aligned to 2 MiB and advised). Perturbed:
// the other one. Verified by AnonHugePages just before exit.
#include <algorithm>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

class Hugepages final : public Factor {
 public:
  const char* name() const override { return "hugepages"; }
  const char* summary() const override {
    return "transparent huge pages for large allocations: pin small (4 KiB only) or huge "
           "(2 MiB aligned, MADV_HUGEPAGE), perturb switches; verified by AnonHugePages "
           "before exit";
  }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    std::string mode = value.empty() ? "small" : value;
    if (mode != "small" && mode != "huge") {
      return bad_request("unknown value '" + value + "' (small, huge)");
    }
    if (host.thp_mode.empty()) {
      return not_applicable("this kernel has no transparent huge pages");
    }
    return resolved(mode);
  }

  std::vector<std::string> alternatives(const std::string&, const Host& host) const override {
    if (host.thp_mode == "never") {
      return {"small"};
    }
    return {"small", "huge"};
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    plan.preload["hugepages"] = value;
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    // A program that frees its large arrays before exit (Python does) shows
    // them only in the peak taken before each large free.
    long long huge_kb = std::max(seen.preload->number("AnonHugePages", -1),
                                 seen.preload->number("AnonHugePages_peak", -1));
    long long aligned = seen.preload->number("huge_aligned", 0);
    if (huge_kb < 0) {
      record.verified = launch::CheckState::kUnread;
      record.observed = "AnonHugePages was not read";
      return;
    }
    record.observed = "AnonHugePages " + std::to_string(huge_kb) + " kB";
    record.measured = huge_kb > 0 ? "huge pages in use" : "no huge pages";
    if (value == "small") {
      record.verified = huge_kb == 0 ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
    } else if (huge_kb > 0) {
      record.verified = launch::CheckState::kVerified;
    } else if (aligned == 0) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed += ": the program made no allocation of 2 MiB or more";
    } else {
      record.verified = launch::CheckState::kDiffers;
      record.observed += " after " + std::to_string(aligned) +
                         " advised allocations (the kernel found no free huge page?)";
    }
  }
};

}  // namespace

const Factor& hugepages_factor() {
  static const Hugepages factor;
  return factor;
}

}  // namespace memdet::factors
