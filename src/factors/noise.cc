// noise: memory-bandwidth interference from other work on the machine.
#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

class Noise final : public Factor {
 public:
  const char* name() const override { return "noise"; }
  const char* summary() const override {
    return "memory-bandwidth antagonist on CPUs set aside (--noise-cpus)";
  }
  bool in_all() const override { return false; }

  Resolution resolve(const std::string&, const Host&) const override {
    return not_applicable("the antagonist is not available in this build");
  }
  void apply(const std::string&, const Host&, LaunchPlan&) const override {}
  void verify(const std::string&, const Observation&, FactorRecord&) const override {}
};

}  // namespace

const Factor& noise_factor() {
  static const Noise factor;
  return factor;
}

}  // namespace memdet::factors
