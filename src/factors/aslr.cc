// aslr: address-space layout randomisation. Pinned: personality
// (ADDR_NO_RANDOMIZE) in the child before exec. Perturbed: randomisation left
// on, so each run gets a layout from the kernel's entropy; such a run cannot
// be replayed, only recorded.
#include <sys/personality.h>

#include <cstdio>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

class Aslr final : public Factor {
 public:
  // Left free, it takes a different value in every run.
  bool varies_when_free() const override { return true; }

  const char* name() const override { return "aslr"; }
  const char* summary() const override {
    return "address-space randomisation: pin off (personality ADDR_NO_RANDOMIZE), perturb "
           "leaves it on; verified in the personality at the exec stop";
  }

  Resolution resolve(const std::string& value, const Host&) const override {
    if (value.empty() || value == "off") {
      return resolved("off");
    }
    if (value == "on") {
      return resolved("on");
    }
    return bad_request("unknown value '" + value + "' (off, on)");
  }

  std::vector<std::string> alternatives(const std::string& reference, const Host&) const override {
    return {reference == "off" ? "on" : "off"};
  }

  bool replayable() const override { return false; }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    plan.controls.aslr_off = value == "off";
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!exec_stop_read(seen, record)) {
      return;
    }
    const launch::ProcSnapshot& start = seen.launch->at_start;
    bool off = (start.personality & ADDR_NO_RANDOMIZE) != 0;
    char text[64];
    std::snprintf(text, sizeof text, "personality 0x%08lx (%s)", start.personality,
                  off ? "ADDR_NO_RANDOMIZE" : "randomized");
    record.observed = text;
    record.measured = off ? "off" : "on";
    record.verified =
        off == (value == "off") ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
    if (!off) {
      record.replayable = false;
      record.note = "the layout comes from the kernel's entropy: recorded, not replayable";
    }
  }
};

}  // namespace

const Factor& aslr_factor() {
  static const Aslr factor;
  return factor;
}

}  // namespace memdet::factors
