// memdet canary sgd --threads T --reduce atomic|ordered --steps S --out DIR
//
// Built-in workloads whose determinism is known, for trying memdet before
// trusting it with a real job.
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "workloads/canary_sgd.h"

namespace memdet::cli {
namespace {

struct CanaryOptions {
  int threads = 2;
  std::string reduce = "atomic";
  int steps = 200;
  std::string out_dir;
};

int run_sgd(const CanaryOptions& options) {
  workloads::SgdOptions sgd;
  sgd.threads = options.threads;
  sgd.reduce = options.reduce == "ordered" ? workloads::SgdOptions::Reduce::ordered
                                           : workloads::SgdOptions::Reduce::atomic;
  sgd.steps = options.steps;
  sgd.out_dir = options.out_dir;
  Status done = workloads::run_sgd_canary(sgd);
  if (!done) {
    std::fprintf(stderr, "memdet canary sgd: %s\n", done.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

Registered add_canary_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("canary", "Built-in workloads with known determinism");
  app->require_subcommand(1);

  auto options = std::make_shared<CanaryOptions>();
  CLI::App* sgd = app->add_subcommand(
      "sgd",
      "Multi-threaded SGD on fixed synthetic data; writes DIR/weights.npy and DIR/loss.txt. "
      "atomic sums gradients with atomic float adds in thread-arrival order (differs between "
      "runs); ordered sums fixed blocks in a fixed order (repeats at any thread count)");
  sgd->add_option("--threads", options->threads, "worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  sgd->add_option("--reduce", options->reduce, "atomic or ordered")
      ->capture_default_str()
      ->check(CLI::IsMember({"atomic", "ordered"}));
  sgd->add_option("--steps", options->steps, "training steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  sgd->add_option("--out", options->out_dir, "output directory")->required();
  return {sgd, [options] { return run_sgd(*options); }, 2};
}

}  // namespace memdet::cli
