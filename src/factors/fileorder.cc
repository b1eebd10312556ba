// fileorder: the order a directory listing returns its entries in, which
// one file system repeats and another changes. Pinned: byte order of the
// names, the same on every machine. Perturbed: a keyed hash order per run,
// so two listings of one directory in one run still agree. Served by the
// preload library for readdir, scandir, glob(GLOB_NOSORT) and fts; verified
// by the listings it served. A run whose every listing had fewer than two
// entries cannot show an order effect.
#include <cstdio>
#include <cstdlib>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

// A key of 1 to 16 hex digits, either case, with or without 0x, written
// back as 16 lower-case digits; empty when it is not one.
std::string key_text(std::string key) {
  if (key.rfind("0x", 0) == 0 || key.rfind("0X", 0) == 0) {
    key = key.substr(2);
  }
  if (key.empty() || key.size() > 16 ||
      key.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return {};
  }
  char text[20];
  std::snprintf(text, sizeof text, "%016llx",
                static_cast<unsigned long long>(std::strtoull(key.c_str(), nullptr, 16)));
  return text;
}

class FileOrder final : public Factor {
 public:
  const char* name() const override { return "fileorder"; }
  const char* summary() const override {
    return "the order directory listings return (readdir, scandir, glob with GLOB_NOSORT, fts): "
           "pin sorts by name bytes, perturb orders by a keyed hash per run (keyed:HEX); "
           "verified by the listings the preload library served";
  }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host&) const override {
    if (value.empty() || value == "sorted") {
      return resolved("sorted");
    }
    if (value.rfind("keyed:", 0) == 0 && !key_text(value.substr(6)).empty()) {
      return resolved("keyed:" + key_text(value.substr(6)));
    }
    return bad_request("unknown value '" + value + "' (sorted or keyed:HEX)");
  }

  std::string perturbed_value(const std::string& reference, const std::string&, int k,
                              uint64_t seed, const Host&) const override {
    char text[32];
    uint64_t key = mix_seed(seed, static_cast<uint64_t>(k));
    std::snprintf(text, sizeof text, "keyed:%016llx", static_cast<unsigned long long>(key));
    if (reference == text) {
      std::snprintf(text, sizeof text, "keyed:%016llx",
                    static_cast<unsigned long long>(mix_seed(key, 1)));
    }
    return text;
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    if (value.rfind("keyed:", 0) == 0) {
      plan.preload["fileorder"] = "keyed";
      plan.preload["fileorder_key"] = value.substr(6);
    } else {
      plan.preload["fileorder"] = "sorted";
    }
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    const PreloadReport& report = *seen.preload;
    record.measured = "order " + value;
    const std::string* served = report.find("fileorder");
    std::string mode = value.rfind("keyed:", 0) == 0 ? "keyed" : "sorted";
    if (served == nullptr || *served != mode) {
      record.verified = launch::CheckState::kDiffers;
      record.observed = "the library served " + (served != nullptr ? *served : "no order");
      return;
    }
    int children = 0;
    long long listings = count_in_all(seen, "fileorder_listings", &children);
    long long ordered = count_in_all(seen, "fileorder_ordered", &children);
    std::string unseen;
    for (const std::vector<std::string>& row : report.rows_of("fileorder_unseen")) {
      if (row.size() >= 2 && row[1] != "0") {
        unseen += (unseen.empty() ? "" : ", ") + row[0] + " " + row[1];
      }
    }
    if (!unseen.empty()) {
      record.note = "listings the library could not order: " + unseen;
    }
    record.observed = std::to_string(listings) + " listings, " + std::to_string(ordered) +
                      " of two entries or more" +
                      (children > 0 ? ", in this process and " + std::to_string(children) +
                                          " child process" + (children == 1 ? "" : "es")
                                    : "");
    if (ordered <= 0) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed =
          "not applicable: " + std::string(listings > 0 ? "no listing had two entries or more"
                                                        : "the program listed no directory");
      return;
    }
    record.verified = launch::CheckState::kVerified;
  }
};

}  // namespace

const Factor& fileorder_factor() {
  static const FileOrder factor;
  return factor;
}

}  // namespace memdet::factors
