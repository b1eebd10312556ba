// allocator: which malloc the workload uses. Pinned: glibc, or a named one
// preloaded beneath memdet's shim. Perturbed: cycles through the installed
// ones. Verified by the library the shim's lower malloc really resolved to.
// jemalloc's per-CPU arenas follow the CPU a thread is on, so its layout
// repeats only with `cpu` pinned.
#include "core/text.h"
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

class Allocator final : public Factor {
 public:
  const char* name() const override { return "allocator"; }
  const char* summary() const override {
    return "malloc implementation: pin glibc (or jemalloc, tcmalloc), perturb cycles through "
           "the installed ones; verified by the library malloc resolved to";
  }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    std::string name = value.empty() ? "glibc" : value;
    if (name != "glibc" && name != "jemalloc" && name != "tcmalloc") {
      return bad_request("unknown value '" + value + "' (glibc, jemalloc, tcmalloc)");
    }
    if (host.allocators.count(name) == 0) {
      return bad_request(name + " is not installed (Debian: apt-get install " +
                         (name == "jemalloc" ? "libjemalloc2" : "libtcmalloc-minimal4") + ")");
    }
    return resolved(name);
  }

  std::vector<std::string> alternatives(const std::string&, const Host& host) const override {
    std::vector<std::string> values;
    for (const auto& [name, path] : host.allocators) {
      values.push_back(name);
    }
    return values;
  }

  void apply(const std::string& value, const Host& host, LaunchPlan& plan) const override {
    auto found = host.allocators.find(value);
    plan.lower_allocator = found == host.allocators.end() ? "" : found->second;
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    const std::string* lower = seen.preload->find("lower_allocator");
    std::string path = lower != nullptr ? *lower : "";
    std::string file(base_name(path));
    record.measured = file.empty() ? "unknown" : file;
    record.observed = "malloc from " + (path.empty() ? std::string("unknown") : path);
    bool matches = value == "glibc"      ? file.rfind("libc.so", 0) == 0
                   : value == "jemalloc" ? file.find("jemalloc") != std::string::npos
                                         : file.find("tcmalloc") != std::string::npos;
    if (seen.preload->number("lower_consistent", 1) == 0) {
      record.observed += "; the allocation functions come from more than one library";
      matches = false;
    }
    if (const std::string* options = seen.preload->find("jemalloc_opt")) {
      record.observed += "; jemalloc options " + *options;
      record.note =
          "jemalloc's per-CPU arenas follow the CPU a thread runs on: its layout "
          "repeats only with cpu pinned";
    }
    record.verified = matches ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
  }
};

}  // namespace

const Factor& allocator_factor() {
  static const Allocator factor;
  return factor;
}

}  // namespace memdet::factors
