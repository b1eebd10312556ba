// The cures `isolate --try-fix` tries on a workload whose runs differ with
// every factor pinned: for a PyTorch program, a start-up hook that turns on
// torch.use_deterministic_algorithms(True) as soon as torch is imported,
// with no change to the user's files.
#pragma once

#include <string>

#include "protocol/check.h"

namespace memdet::protocol {

inline constexpr const char* kTorchCure = "torch.use_deterministic_algorithms(True)";
// The file the hook writes into the run's directory once it has run.
inline constexpr const char* kCureMarker = "cure-applied";

// The hook: a sitecustomize.py that arms the cure and then runs the
// sitecustomize it hides (Debian ships one), so the interpreter starts as
// it would have.
std::string torch_cure_hook();

// The run loaded libtorch, in any of its processes (through /usr/bin/env
// and other wrappers alike).
bool loads_torch(const RunRecord& run);

// PyTorch's complaint about an operation that has no deterministic
// implementation, from the run's stderr; empty when there is none.
std::string nondeterministic_operation(const RunRecord& run);

}  // namespace memdet::protocol
