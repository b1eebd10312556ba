// stack: where the initial stack starts. Its top holds argv, the
// environment and the executable's path, so their total size moves
// `startstack` (in 16-byte steps: a 1-byte change often does not). Pinned:
// the total is padded to a fixed number of bytes with MEMDET_STACK_PAD.
// Perturbed: padded further by a seeded multiple of 16 bytes. ASLR moves the
// stack every run, so this needs ASLR pinned off.
#include <sys/personality.h>

#include <cstdio>
#include <cstdlib>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

constexpr int kMaxSteps = 255;

// "auto" or a byte count, then "+N" for a perturbed run.
struct StackValue {
  std::string base;
  long extra = 0;
};

StackValue parse(const std::string& value) {
  StackValue parsed;
  size_t plus = value.find('+');
  parsed.base = value.substr(0, plus);
  if (plus != std::string::npos) {
    parsed.extra = std::atol(value.c_str() + plus + 1);
  }
  return parsed;
}

bool is_count(const std::string& text) {
  return !text.empty() && text.size() < 9 &&
         text.find_first_not_of("0123456789") == std::string::npos;
}

// "BYTES" or "BYTES@ENTRIES", with "+STEP" after it in a perturbed run.
bool is_layout(const std::string& text) {
  StackValue parsed = parse(text);
  size_t at = parsed.base.find('@');
  std::string step = text.find('+') == std::string::npos ? "0" : text.substr(text.find('+') + 1);
  return is_count(parsed.base.substr(0, at)) && is_count(step) &&
         (at == std::string::npos || is_count(parsed.base.substr(at + 1)));
}

class Stack final : public Factor {
 public:
  const char* name() const override { return "stack"; }
  const char* summary() const override {
    return "initial stack address: pin pads argv + environment + path to a fixed total "
           "(auto or BYTES), perturb adds seeded 16-byte steps; needs aslr pinned; verified "
           "by startstack at the exec stop";
  }

  Resolution resolve(const std::string& value, const Host&) const override {
    if (value.empty() || value == "auto") {
      return resolved("auto");
    }
    if (is_layout(value)) {
      return resolved(value);
    }
    return bad_request("unknown value '" + value +
                       "' (auto, a total in bytes, or BYTES@ENTRIES as records hold it)");
  }

  std::string perturbed_value(const std::string& reference, const std::string&, int k,
                              uint64_t seed, const Host&) const override {
    // Steps 1..255 in a seeded order, each used once before any repeats.
    long step =
        static_cast<long>((mix_seed(seed, 0) + static_cast<uint64_t>(k - 1) * 97) % kMaxSteps) + 1;
    return parse(reference).base + "+" + std::to_string(step * 16 + parse(reference).extra);
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    StackValue parsed = parse(value);
    plan.stack_base = parsed.base;
    plan.stack_extra = static_cast<size_t>(parsed.extra);
  }

  void verify(const std::string&, const Observation& seen, FactorRecord& record) const override {
    if (!exec_stop_read(seen, record)) {
      return;
    }
    const launch::ProcSnapshot& start = seen.launch->at_start;
    char text[64];
    std::snprintf(text, sizeof text, "startstack 0x%lx", start.start_stack);
    record.observed = text;
    record.measured = text;
    // With randomisation on (a setuid program drops ADDR_NO_RANDOMIZE) the
    // stack moves whatever its contents.
    const bool aslr_off = (start.personality & ADDR_NO_RANDOMIZE) != 0;
    record.verified = start.start_stack != 0 && aslr_off ? launch::CheckState::kVerified
                                                         : launch::CheckState::kDiffers;
    if (!aslr_off) {
      record.observed += ", but the program runs with ASLR on (setuid?), so it moves anyway";
    }
  }
};

}  // namespace

const Factor& stack_factor() {
  static const Stack factor;
  return factor;
}

}  // namespace memdet::factors
