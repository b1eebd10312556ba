// mlock: every page of the workload locked in memory, so none is paged out
// or migrated. mlockall is lost at exec, so the preload library calls it in
// the program. Not part of `all`: locking everything costs memory (a 47 MiB
// numpy script locked 272 MB). Without CAP_IPC_LOCK and with a finite
// RLIMIT_MEMLOCK it is refused up front: Python's mlockall then fails with
// ENOMEM and later mallocs return NULL.
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

class Mlock final : public Factor {
 public:
  const char* name() const override { return "mlock"; }
  const char* summary() const override {
    return "lock all memory (mlockall in the program; needs CAP_IPC_LOCK or an unlimited "
           "RLIMIT_MEMLOCK; not part of all); verified by VmLck before exit";
  }
  bool in_all() const override { return false; }
  bool perturbable() const override { return false; }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    if (!value.empty() && value != "on") {
      return bad_request("unknown value '" + value + "' (on)");
    }
    if (!host.cap_ipc_lock && !host.memlock_unlimited) {
      return bad_request(
          "refused: no CAP_IPC_LOCK and RLIMIT_MEMLOCK is finite (run as root, or raise "
          "`ulimit -l unlimited`)");
    }
    return resolved("on");
  }

  void apply(const std::string&, const Host&, LaunchPlan& plan) const override {
    plan.preload["mlock"] = "1";
    plan.needs_preload = true;
  }

  void verify(const std::string&, const Observation& seen, FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    long long locked = seen.preload->number("VmLck", -1);
    const std::string* result = seen.preload->find("mlock");
    record.observed = "VmLck " + std::to_string(locked) + " kB, mlockall " +
                      (result != nullptr ? *result : "not called");
    record.verified = locked > 0 ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
  }
};

}  // namespace

const Factor& mlock_factor() {
  static const Mlock factor;
  return factor;
}

}  // namespace memdet::factors
