// uninit: what a read of uninitialised memory finds. Pinned: the preload
// library fills every fresh allocation with one byte (0xA5 unless given);
// glibc's perturb tunable is not used, because it needs the per-thread cache
// off, which changes the heap layout, and fills with the complement.
// Perturbed: a seeded pattern per run. Verified by a probe allocation in the
// library.
#include <cstdio>
#include <cstdlib>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

class Uninit final : public Factor {
 public:
  const char* name() const override { return "uninit"; }
  const char* summary() const override {
    return "fresh-allocation contents: pin fills them with one byte (default 165 = 0xA5), "
           "perturb uses a seeded byte per run; verified by a probe allocation";
  }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host&) const override {
    if (value.empty()) {
      return resolved("165");
    }
    // Decimal, or hex with 0x; a leading zero is not octal.
    char* end = nullptr;
    const bool hex = value.size() > 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X');
    long byte = std::strtol(value.c_str() + (hex ? 2 : 0), &end, hex ? 16 : 10);
    if (*end != '\0' || byte < 0 || byte > 255 || value[hex ? 2 : 0] == '-' ||
        value[hex ? 2 : 0] == '+') {
      return bad_request("unknown value '" + value + "' (a byte, 0-255 or 0x00-0xff)");
    }
    return resolved(std::to_string(byte));
  }

  std::vector<std::string> alternatives(const std::string&, const Host&) const override {
    std::vector<std::string> values;
    for (int byte = 0; byte < 256; ++byte) {
      values.push_back(std::to_string(byte));
    }
    return values;
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    plan.preload["uninit"] = value;
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    char text[32];
    std::snprintf(text, sizeof text, "pattern 0x%02x", std::atoi(value.c_str()));
    record.measured = text;
    const std::string* probe = seen.preload->find("uninit_probe");
    record.observed = std::string(text) + ", probe " + (probe != nullptr ? *probe : "missing");
    record.verified = probe != nullptr && *probe == "ok" &&
                              seen.preload->number("uninit") == std::atoll(value.c_str())
                          ? launch::CheckState::kVerified
                          : launch::CheckState::kDiffers;
  }
};

}  // namespace

const Factor& uninit_factor() {
  static const Uninit factor;
  return factor;
}

}  // namespace memdet::factors
