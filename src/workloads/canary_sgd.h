// A built-in training run whose determinism is known in advance, so that
// memdet can be checked against a workload before it is trusted with a real
// one: `atomic` must be caught differing between runs, `ordered` must not.
#pragma once

#include <string>

#include "core/result.h"

namespace memdet::workloads {

struct SgdOptions {
  // How the threads' gradient contributions are summed each step.
  enum class Reduce {
    // Each thread adds small partial sums into one shared gradient with
    // atomic float additions, in whatever order the threads get there.
    // Float addition is not associative, so the result depends on timing.
    atomic,
    // The samples are cut into a fixed number of blocks whatever the thread
    // count; each block is summed in sample order and the block sums in
    // block order, so every run gives the same bits.
    ordered,
  };

  int threads = 2;
  Reduce reduce = Reduce::atomic;
  int steps = 200;
  std::string out_dir;  // created, with its parents, if missing
};

// Trains a linear regression model on fixed synthetic data by full-batch
// gradient descent, and writes out_dir/weights.npy (float32) and
// out_dir/loss.txt, one "step <n> loss <value>" line per step with the loss
// printed exactly.
Status run_sgd_canary(const SgdOptions& options);

}  // namespace memdet::workloads
