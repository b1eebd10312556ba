// entropy: what a generator left unseeded reads from the OS. Pinned: the
// preload library serves getrandom, getentropy, arc4random, /dev/urandom,
// /dev/random, the kernel's uuid file and std::random_device from one
// seeded stream, keyed by process lineage, thread and read count, so an
// unseeded program repeats. Perturbed: another seed per run. Verified by the
// reads the library served; a program that never loads the library (static,
// setuid) is reported unread, never pinned. Cryptographic randomness is
// weakened in such a run.
#include <cstdio>
#include <cstdlib>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

std::string seed_text(uint64_t seed) {
  char text[20];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(seed));
  return text;
}

// Reads by source, from the reports' first reads: "getrandom 3, urandom 1".
std::string reads_by_source(const Observation& seen) {
  std::map<std::string, int> counts;
  auto add = [&](const PreloadReport& report) {
    for (const std::vector<std::string>& row : report.rows_of("entropy_read")) {
      if (row.size() >= 2) {
        ++counts[row[1]];
      }
    }
  };
  add(*seen.preload);
  if (seen.descendants != nullptr) {
    for (const PreloadReport& report : *seen.descendants) {
      add(report);
    }
  }
  std::string text;
  for (const auto& [source, count] : counts) {
    text += (text.empty() ? "" : ", ") + source + " " + std::to_string(count);
  }
  return text;
}

class Entropy final : public Factor {
 public:
  const char* name() const override { return "entropy"; }
  const char* summary() const override {
    return "OS entropy an unseeded generator reads (getrandom, /dev/urandom, "
           "std::random_device, ...): pin serves a seeded stream (entropy=SEED, 16 hex digits), "
           "perturb another seed per run; weakens cryptographic randomness in the run; verified "
           "by the reads the preload library served";
  }
  bool needs_preload() const override { return true; }
  bool varies_when_free() const override { return true; }

  Resolution resolve(const std::string& value, const Host&) const override {
    if (value.empty()) {
      return resolved(seed_text(0x6d656d646574ULL));
    }
    std::string digits = value.rfind("0x", 0) == 0 ? value.substr(2) : value;
    if (digits.empty() || digits.size() > 16 ||
        digits.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return bad_request("unknown value '" + value + "' (a seed of 1 to 16 hex digits)");
    }
    return resolved(seed_text(std::strtoull(digits.c_str(), nullptr, 16)));
  }

  std::string perturbed_value(const std::string& reference, const std::string&, int k,
                              uint64_t seed, const Host&) const override {
    std::string value = seed_text(mix_seed(seed, static_cast<uint64_t>(k)));
    return value == reference ? seed_text(mix_seed(seed, static_cast<uint64_t>(k) + 1000003))
                              : value;
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    plan.preload["entropy"] = value;
    plan.preload["lineage"] = seed_text(0);
    // Python draws its hash secret from the OS unless PYTHONHASHSEED is set;
    // hash order is the env factor's finding, so it stays fixed here.
    if (std::getenv("PYTHONHASHSEED") == nullptr) {
      plan.env.emplace("PYTHONHASHSEED", "0000000000");
    }
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    const PreloadReport& report = *seen.preload;
    record.measured = "seed " + value;
    // The library writes the seed without leading zeros.
    const std::string* served = report.find("entropy");
    if (served == nullptr ||
        std::strtoull(served->c_str(), nullptr, 16) != std::strtoull(value.c_str(), nullptr, 16)) {
      record.verified = launch::CheckState::kDiffers;
      record.observed = "the library served seed " + (served != nullptr ? *served : "none");
      return;
    }
    int children = 0;
    long long reads = count_in_all(seen, "entropy_reads", &children);
    long long bytes = count_in_all(seen, "entropy_bytes", &children);
    if (reads <= 0) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed = "the program read no OS entropy the library could see";
      return;
    }
    record.verified = launch::CheckState::kVerified;
    record.observed = std::to_string(reads) + " reads, " + std::to_string(bytes) + " bytes (" +
                      reads_by_source(seen) + ")";
    if (children > 0) {
      record.observed += ", " + std::to_string(reads - report.number("entropy_reads", 0)) +
                         " of them in " + std::to_string(children) + " child process" +
                         (children == 1 ? "" : "es");
    }
    record.note =
        "not seen: the kernel's AT_RANDOM bytes, RDRAND in the program's own code, glibc "
        "malloc's tcache key, a random_device linked in statically, raw system calls, stdio "
        "reads other than fread, fgetc, getc and fgets";
  }
};

}  // namespace

const Factor& entropy_factor() {
  static const Entropy factor;
  return factor;
}

}  // namespace memdet::factors
