// memdet demo
//
// The main job on the built-in workloads, for a first look with no code of
// one's own: `isolate` on the atomic and the ordered SGD, and on a workload
// whose result follows ASLR, and what each verdict means.
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "cli/commands.h"
#include "core/error.h"
#include "factors/profile.h"
#include "protocol/isolate.h"

namespace memdet::cli {

protocol::IsolateReport run_isolate_campaign(protocol::IsolateOptions options, std::FILE* summary);

namespace {

struct DemoOptions {
  std::string out_dir;
};

protocol::IsolateOptions demo_isolate(std::vector<std::string> workload, const std::string& name,
                                      const std::string& out_dir, const FactorSetup& setup) {
  protocol::IsolateOptions options;
  options.check.command = {self_executable()};
  for (std::string& arg : workload) {
    options.check.command.push_back(std::move(arg));
  }
  options.check.command.insert(options.check.command.end(), {"--out", "{run_dir}/out"});
  options.check.artifact_patterns = {"{run_dir}/out/*"};
  options.check.out_dir = out_dir + "/" + name;
  options.check.timeout_seconds = 120;
  options.check.host = setup.host;
  options.check.controls = setup.controls;
  options.seed = setup.profile.seed;
  return options;
}

std::string default_out_dir() {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  return ".memdet/demo-" + std::string(stamp);
}

int demo(const DemoOptions& options) {
  std::string out_dir = options.out_dir.empty() ? default_out_dir() : options.out_dir;
  FactorSetup setup = prepare_factors(ControlOptions{}, 2);

  std::printf(
      "memdet demo: memdet isolate on three built-in workloads. Each is run free, then\n"
      "with every memory and timing factor pinned, then with one factor at a time\n"
      "perturbed, until the verdict is clear.\n"
      "\n1. atomic SGD: two threads add their gradient contributions into one shared sum\n"
      "   with atomic float adds, in whatever order they finish.\n");
  std::fflush(stdout);
  protocol::IsolateReport atomic =
      run_isolate_campaign(demo_isolate({"canary", "sgd", "--threads", "2", "--reduce", "atomic"},
                                        "atomic", out_dir, setup),
                           stdout);

  std::printf(
      "\n2. ordered SGD: the same data cut into a fixed number of blocks, each summed in\n"
      "   order and the block sums added in block order, whatever thread finishes first.\n");
  std::fflush(stdout);
  protocol::IsolateReport ordered =
      run_isolate_campaign(demo_isolate({"canary", "sgd", "--threads", "2", "--reduce", "ordered"},
                                        "ordered", out_dir, setup),
                           stdout);

  std::printf(
      "\n3. address order: a sum over a hash set keyed by addresses in the program's own\n"
      "   image, which ASLR moves every run.\n");
  std::fflush(stdout);
  protocol::IsolateReport aslr = run_isolate_campaign(
      demo_isolate({"canary", "cause", "aslr"}, "aslr", out_dir, setup), stdout);

  for (const protocol::IsolateReport* report : {&atomic, &ordered, &aslr}) {
    if (report->exit_status() == 2 || report->exit_status() >= 3) {
      std::printf("\nA built-in workload itself failed; see the records under %s.\n",
                  out_dir.c_str());
      return report->exit_status();
    }
  }

  using protocol::IsolateVerdict;
  std::printf("\nWhat this shows:\n");
  if (atomic.findings.verdict == IsolateVerdict::kNotExplained) {
    std::printf(
        "- atomic: it differs even with every factor pinned, so no memory factor is to\n"
        "  blame: floating-point addition is not associative, and the order of the atomic\n"
        "  adds follows thread timing. The cure is in the program: a fixed order.\n");
  } else {
    std::printf(
        "- atomic: the pinned runs agreed this time. With fewer than two cores free the\n"
        "  threads rarely interleave; the order of accumulation can still change.\n");
  }
  if (ordered.findings.verdict == IsolateVerdict::kReproducible) {
    std::printf(
        "- ordered: reproducible as run, and no factor memdet perturbed changed it: a\n"
        "  fixed summation order repeats bit for bit. That is the cure for the atomic one.\n");
  } else {
    std::printf(
        "- ordered: %s, which this workload should never give: please report it with "
        "the records under %s.\n",
        protocol::isolate_verdict_name(ordered.findings.verdict), out_dir.c_str());
  }
  const protocol::FactorFinding* found = aslr.findings.find("aslr");
  if (found != nullptr && found->status == protocol::FactorFinding::Status::kChanges) {
    std::printf(
        "- address order: ASLR is named, by its own perturbation alone.%s Iterating in\n"
        "  a fixed order is the cure in the program; pinning ASLR (memdet run --pin\n"
        "  aslr, or setarch -R) hides it.\n",
        aslr.findings.enough && aslr.findings.enough->shown
            ? "\n  With ASLR pinned and the rest free, the runs repeat."
            : "");
  } else {
    std::printf(
        "- address order: ASLR was not named (%s); with ASLR disabled on this machine "
        "the workload cannot move.\n",
        protocol::isolate_verdict_name(aslr.findings.verdict));
  }
  std::string example = std::string(MEMDET_SOURCE_DIR) + "/examples/pytorch/train_embedding.py";
  if (::access(example.c_str(), R_OK) != 0) {
    example = "examples/pytorch/train_embedding.py";  // from a copy of the source tree
  }
  std::printf(
      "\nRecords: %s\nA real PyTorch job:\n"
      "  %s isolate --artifact 'out/{run}/*.npy' --artifact 'out/{run}/loss.txt' "
      "--step-regex '^(\\d+) ' -- /usr/bin/python3 %s --out 'out/{run}'\n",
      out_dir.c_str(), self_executable().c_str(), example.c_str());
  return 0;
}

}  // namespace

Registered add_demo_command(CLI::App& parent) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* app = parent.add_subcommand(
      "demo",
      "Run isolate on built-in workloads: a training loop that differs for no memory reason, "
      "its cure, and one whose result follows ASLR");
  app->add_option("--out", options->out_dir, "where the records go (default .memdet/demo-TIME)");
  return {app, [options] { return demo(*options); }, 2};
}

}  // namespace memdet::cli
