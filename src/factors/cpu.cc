// cpu: which CPU each thread runs on. The workload keeps the CPU set it
// would get and its main thread stays unpinned (pinning it shrinks OpenMP's
// and OpenBLAS's default thread counts). Pinned: the preload library pins
// each created thread to its own CPU, in creation order, round-robin.
// Perturbed: the same with the CPU order shuffled. Verified from the
// library's log of (ordinal, thread, CPU) and where each thread last ran.
#include <algorithm>
#include <numeric>
#include <set>
#include <sstream>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

std::string join(const std::vector<int>& cpus) {
  std::string text;
  for (int cpu : cpus) {
    text += (text.empty() ? "" : ",") + std::to_string(cpu);
  }
  return text;
}

std::vector<int> split(const std::string& text) {
  std::vector<int> cpus;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos ||
        item.size() > 5) {
      return {};
    }
    cpus.push_back(std::stoi(item));
  }
  return cpus;
}

class Cpu final : public Factor {
 public:
  // Left free, it takes a different value in every run.
  bool varies_when_free() const override { return true; }

  const char* name() const override { return "cpu"; }
  const char* summary() const override {
    return "thread placement: pin each created thread to its own CPU in creation order (main "
           "thread unpinned; value: a CPU order such as 1,0), perturb shuffles the order; "
           "verified from the thread log";
  }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    std::vector<int> allowed(host.allowed_cpus.begin(), host.allowed_cpus.end());
    if (value.empty()) {
      return resolved(join(allowed));
    }
    std::vector<int> order = split(value);
    if (order.empty()) {
      return bad_request("unknown value '" + value + "' (a CPU order such as 1,0)");
    }
    std::set<int> seen;
    for (int cpu : order) {
      if (!seen.insert(cpu).second) {
        return bad_request("CPU " + std::to_string(cpu) +
                           " is named twice in the order; name each CPU once (threads beyond "
                           "the list wrap around it)");
      }
      if (host.allowed_cpus.count(cpu) == 0) {
        return bad_request("CPU " + std::to_string(cpu) +
                           " is not available to the workload (allowed: " +
                           launch::format_cpu_list(host.allowed_cpus) + ")");
      }
    }
    return resolved(join(order));
  }

  std::string perturbed_value(const std::string& reference, const std::string&, int k,
                              uint64_t seed, const Host&) const override {
    std::vector<int> order = split(reference);
    if (order.size() < 2) {
      return {};
    }
    // A seeded shuffle per perturbed run, drawn again until it differs from
    // the reference; with few CPUs, the k-th permutation in a seeded order.
    std::vector<std::vector<int>> others;
    if (order.size() <= 6) {
      std::vector<int> sorted = order;
      std::sort(sorted.begin(), sorted.end());
      do {
        if (sorted != order) {
          others.push_back(sorted);
        }
      } while (std::next_permutation(sorted.begin(), sorted.end()));
      std::vector<std::string> values;
      for (const auto& other : others) {
        values.push_back(join(other));
      }
      size_t offset = mix_seed(seed, 0) % values.size();
      return values[(offset + static_cast<size_t>(k - 1)) % values.size()];
    }
    for (uint64_t attempt = 0;; ++attempt) {
      std::vector<int> shuffled = order;
      for (size_t i = shuffled.size(); i > 1; --i) {
        size_t j = mix_seed(seed, static_cast<uint64_t>(k) * 1000003 + attempt * 31 + i) % i;
        std::swap(shuffled[i - 1], shuffled[j]);
      }
      if (shuffled != order) {
        return join(shuffled);
      }
    }
  }

  void apply(const std::string& value, const Host& host, LaunchPlan& plan) const override {
    plan.preload["cpus"] = value;
    plan.preload["free_cpus"] =
        launch::format_cpu_list(plan.controls.cpus ? *plan.controls.cpus : host.allowed_cpus);
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    const PreloadReport& report = *seen.preload;
    std::string assignment;
    int pinned = 0;
    int elsewhere = 0;
    int collisions = 0;
    for (const PreloadThread& thread : report.threads) {
      if (thread.assigned_cpu < 0) {
        continue;
      }
      ++pinned;
      collisions += thread.collision ? 1 : 0;
      if (thread.seen_cpu >= 0 && thread.seen_cpu != thread.assigned_cpu) {
        ++elsewhere;
      }
      assignment += (assignment.empty() ? "" : " ") + thread.ordinal + ":" +
                    std::to_string(thread.assigned_cpu);
    }
    // What a run holds still or moves is the order threads are placed in;
    // how many threads there are is the threads factor's.
    record.measured = "order " + value;
    record.observed = std::to_string(pinned) + " threads pinned over CPUs " + value +
                      (assignment.empty() ? "" : " (ordinal:CPU " + assignment + ")");
    if (collisions > 0) {
      record.observed +=
          ", " + std::to_string(collisions) + " sharing a CPU (more threads than CPUs)";
    }
    if (!report.unpinned_tasks.empty()) {
      record.note = std::to_string(report.unpinned_tasks.size()) +
                    " threads not created through pthread_create ran unpinned";
    }
    record.verified = elsewhere == 0 ? launch::CheckState::kVerified : launch::CheckState::kDiffers;
    if (elsewhere > 0) {
      record.observed += ", " + std::to_string(elsewhere) + " last seen on another CPU";
    }
  }
};

}  // namespace

const Factor& cpu_factor() {
  static const Cpu factor;
  return factor;
}

}  // namespace memdet::factors
