// heap: where allocations land relative to a cache line. Pinned: no offset.
// Perturbed: one offset class per run (16, 32 or 48 bytes mod 64, applied by
// the preload library to every allocation, small and large), different from
// the reference, so array alignment mod 64 always changes; `heap=random`
// adds a seeded per-allocation offset on top. An aligned request
// (posix_memalign(64), as PyTorch's CPU allocator makes) can only move by
// multiples of its alignment. Verified by the addresses the library handed
// out.
#include <cstdio>
#include <cstdlib>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

// "16" or "16,random=HEX".
struct HeapValue {
  std::string offset_class;
  std::string random_seed;
};

HeapValue parse(const std::string& value) {
  size_t comma = value.find(",random=");
  if (comma == std::string::npos) {
    return {value, {}};
  }
  return {value.substr(0, comma), value.substr(comma + 8)};
}

bool valid_class(const std::string& text) {
  return text == "0" || text == "16" || text == "32" || text == "48";
}

class Heap final : public Factor {
 public:
  const char* name() const override { return "heap"; }
  const char* summary() const override {
    return "allocation offset mod 64: pin 0 (or 16, 32, 48), perturb moves every allocation "
           "to another class (heap=random adds a seeded per-allocation offset); verified by "
           "the addresses the preload library returned";
  }
  bool needs_preload() const override { return true; }
  bool accepts_variant(const std::string& variant) const override {
    return variant.empty() || variant == "random";
  }

  Resolution resolve(const std::string& value, const Host&) const override {
    HeapValue parsed = parse(value.empty() ? "0" : value);
    if (!valid_class(parsed.offset_class) ||
        (!parsed.random_seed.empty() &&
         parsed.random_seed.find_first_not_of("0123456789abcdef") != std::string::npos)) {
      return bad_request("unknown value '" + value + "' (0, 16, 32 or 48)");
    }
    return resolved(value.empty() ? "0" : value);
  }

  std::vector<std::string> alternatives(const std::string& reference, const Host&) const override {
    std::vector<std::string> values;
    for (const char* offset_class : {"0", "16", "32", "48"}) {
      if (parse(reference).offset_class != offset_class) {
        values.push_back(offset_class);
      }
    }
    return values;
  }

  std::string perturbed_value(const std::string& reference, const std::string& variant, int k,
                              uint64_t seed, const Host& host) const override {
    std::string value = Factor::perturbed_value(reference, "", k, seed, host);
    if (variant == "random" && !value.empty()) {
      char text[32];
      std::snprintf(text, sizeof text, ",random=%016llx",
                    static_cast<unsigned long long>(mix_seed(seed, static_cast<uint64_t>(k))));
      value += text;
    }
    return value;
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    HeapValue parsed = parse(value);
    plan.preload["heap"] = parsed.offset_class;
    if (!parsed.random_seed.empty()) {
      plan.preload["heap_random"] = "1";
      plan.preload["seed"] = parsed.random_seed;
    }
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    HeapValue parsed = parse(value);
    const PreloadReport& report = *seen.preload;
    long long allocations = report.number("allocations", 0);
    const std::string* histogram = report.find("mod64");
    record.measured = "class " + parsed.offset_class +
                      (parsed.random_seed.empty() ? "" : ", random " + parsed.random_seed);
    record.observed = std::to_string(allocations) + " allocations, by address mod 64 " +
                      "(0,16,32,48,other): " + (histogram != nullptr ? *histogram : "none");
    long long aligned = report.number("aligned_requests", 0);
    if (aligned > 0) {
      record.note = std::to_string(aligned) +
                    " aligned requests (alignment above 16) can only move by multiples of "
                    "their alignment";
    }
    if (allocations <= 0 || histogram == nullptr) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed = "the program made no allocation through the preload library";
      return;
    }
    if (!parsed.random_seed.empty()) {
      record.verified = report.number("heap_random", 0) == 1 ? launch::CheckState::kVerified
                                                             : launch::CheckState::kDiffers;
      return;
    }
    // Every counted allocation must sit in the requested class.
    long long counts[5] = {0, 0, 0, 0, 0};
    std::sscanf(histogram->c_str(), "%lld,%lld,%lld,%lld,%lld", &counts[0], &counts[1], &counts[2],
                &counts[3], &counts[4]);
    int slot = std::atoi(parsed.offset_class.c_str()) / 16;
    long long outside = 0;
    for (int i = 0; i < 5; ++i) {
      outside += i == slot ? 0 : counts[i];
    }
    // Only aligned requests may sit outside the class.
    record.verified = outside <= aligned && counts[slot] > 0 ? launch::CheckState::kVerified
                                                             : launch::CheckState::kDiffers;
  }
};

}  // namespace

const Factor& heap_factor() {
  static const Heap factor;
  return factor;
}

}  // namespace memdet::factors
