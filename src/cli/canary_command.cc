// memdet canary sgd --threads T --reduce atomic|ordered --steps S --out DIR
// memdet canary cause KIND --out DIR
//
// Built-in workloads whose determinism is known, for trying memdet before
// trusting it with a real job: `sgd` differs or repeats as asked, `cause`
// differs for one known reason each.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "workloads/canary_sgd.h"
#include "workloads/labelled.h"

namespace memdet::cli {
namespace {

struct CanaryOptions {
  int threads = 2;
  std::string reduce = "atomic";
  int steps = 200;
  std::string cause;
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

int run_cause(const CanaryOptions& options) {
  Status done = workloads::run_labelled(*workloads::parse_cause(options.cause), options.out_dir);
  if (!done) {
    std::fprintf(stderr, "memdet canary cause: %s\n", done.error().message.c_str());
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

  std::vector<std::string> kinds;
  for (workloads::Cause cause : workloads::kCauses) {
    kinds.emplace_back(workloads::cause_name(cause));
  }
  CLI::App* cause = app->add_subcommand(
      "cause",
      "A workload that differs for one known reason, KIND; writes DIR/result.txt. For testing "
      "that memdet names the factor behind a difference");
  cause->footer(
      "KIND (the factor that changes it under `check --pin all --perturb F`):\n"
      "  heap       a float reduction grouped by its malloc'd buffer's address mod 64 (heap)\n"
      "  aslr       a sum ordered by a hash of the executable's static addresses (aslr)\n"
      "  atomic     two threads adding floats atomically in arrival order (none: it\n"
      "             differs with every factor pinned)\n"
      "  threads    a sum cut into OMP_NUM_THREADS parts, else one per CPU (threads)\n"
      "  uninit     a sum over malloc'd memory never written (uninit)\n"
      "  allocator  a sum in the address order of malloc blocks of mixed sizes (allocator)\n"
      "  entropy    a sum in an order drawn from an unseeded std::random_device (entropy)\n"
      "  clock      a sum in an order drawn from a seed read off system_clock (clock)\n"
      "  fileorder  a sum in the order a directory of value files lists (fileorder)\n"
      "  none       a fixed-order sum: repeats whatever is perturbed");
  cause->add_option("kind", options->cause, "the workload, listed below")
      ->required()
      ->check(CLI::IsMember(kinds));
  cause->add_option("--out", options->out_dir, "output directory")->required();

  return {app, [options, sgd] { return sgd->parsed() ? run_sgd(*options) : run_cause(*options); },
          2};
}

}  // namespace memdet::cli
