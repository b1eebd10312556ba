// threads: how many threads OpenMP, MKL and OpenBLAS start. Pinned: the count
// a free run would use (the CPUs the workload may run on), written into
// OMP_NUM_THREADS, MKL_NUM_THREADS and OPENBLAS_NUM_THREADS. Perturbed: a
// different count within 1..CPUs (OpenBLAS caps at the CPU count). Verified
// by the threads the program really created, from the preload library's
// creation log, and by the counts it set itself at run time through
// omp_set_num_threads, openblas_set_num_threads or mkl_set_num_threads,
// which the library interposes. A count set equal to the one asked is no
// override: torch calls omp_set_num_threads at import with the count
// OMP_NUM_THREADS gives (measured with torch 1.13), before any user code.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

const char* const kVariables[] = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"};

int cpu_count(const Host& host) {
  return std::max<int>(1, static_cast<int>(host.allowed_cpus.size()));
}

// Zero-padded to the width of the largest count, so every value has one
// size; the libraries read leading zeros.
std::string count_text(int count, const Host& host) {
  int width = static_cast<int>(std::to_string(std::max(count, cpu_count(host))).size());
  char text[16];
  std::snprintf(text, sizeof text, "%0*d", width, count);
  return text;
}

class Threads final : public Factor {
 public:
  const char* name() const override { return "threads"; }
  const char* summary() const override {
    return "OpenMP/MKL/OpenBLAS thread count: pin N (default: the CPUs available), perturb "
           "varies it within 1..CPUs; verified in the program's environment, with the threads it "
           "created and any count it set itself (omp_set_num_threads) recorded";
  }
  bool needs_preload() const override { return true; }

  Resolution resolve(const std::string& value, const Host& host) const override {
    if (value.empty()) {
      return resolved(std::to_string(cpu_count(host)));
    }
    char* end = nullptr;
    long count = std::strtol(value.c_str(), &end, 10);
    if (*end != '\0' || count < 1 || count > 4096) {
      return bad_request("unknown value '" + value + "' (a thread count from 1)");
    }
    return resolved(std::to_string(count));
  }

  std::vector<std::string> alternatives(const std::string& reference,
                                        const Host& host) const override {
    std::vector<std::string> values;
    for (int count = 1; count <= cpu_count(host); ++count) {
      if (std::to_string(count) != reference) {
        values.push_back(std::to_string(count));
      }
    }
    return values;
  }

  void apply(const std::string& value, const Host& host, LaunchPlan& plan) const override {
    for (const char* variable : kVariables) {
      plan.env[variable] = count_text(std::atoi(value.c_str()), host);
    }
    plan.preload["trace_threads"] = "1";
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!exec_stop_read(seen, record)) {
      return;
    }
    std::string missing;
    for (const char* variable : kVariables) {
      bool found = false;
      for (const std::string& entry : seen.launch->at_start.environ) {
        found = found || (entry.rfind(std::string(variable) + "=", 0) == 0 &&
                          std::atoi(entry.c_str() + std::string(variable).size() + 1) ==
                              std::atoi(value.c_str()));
      }
      if (!found) {
        missing += (missing.empty() ? "" : ", ") + std::string(variable);
      }
    }
    if (!missing.empty()) {
      record.verified = launch::CheckState::kDiffers;
      record.observed = "not in the program's environment: " + missing;
      return;
    }
    if (!preload_report_read(seen, record)) {
      return;
    }
    long long created = seen.preload->number("threads_created", 0);
    // The count the program was given is what the factor moves; how many
    // threads it made of it stands beside it.
    record.measured = value + " in the environment, " + std::to_string(created) +
                      (created == 1 ? " thread created" : " threads created");
    // What is verified is that the count reached the program; how many
    // threads it made of it is the program's own (an OpenMP team of N
    // creates N - 1, a program may start threads of its own).
    record.observed = value + " in the program's environment (OpenMP, OpenBLAS, MKL); " +
                      std::to_string(created) + (created == 1 ? " thread" : " threads") +
                      " created";
    record.verified = launch::CheckState::kVerified;
    if (judge_setting(std::atoll(value.c_str()), *seen.preload, record)) {
      return;
    }
    if (created + 1 > std::atoll(value.c_str()) * 4) {
      record.note =
          "the program created more threads than the count suggests; it may have started "
          "them in a way the preload library does not see";
    }
  }

 private:
  // The counts the program set at run time. True when it set one; an
  // override then marks the record.
  static bool judge_setting(long long asked, const PreloadReport& report, FactorRecord& record) {
    if (report.number("threads_set_calls", 0) <= 0) {
      return false;
    }
    const std::string* by = report.find("threads_set_by");
    long long last = report.number("threads_set");
    long long low = report.number("threads_set_low", last);
    long long high = report.number("threads_set_high", last);
    std::string call = (by != nullptr ? *by : "a setter") + "(" + std::to_string(last) + ")";

    if (last != asked) {
      record.verified = launch::CheckState::kDiffers;
      record.observed = "overridden by the program: " + call;
      record.measured = call + "; " + record.measured;
    } else if (low != asked || high != asked) {
      std::string other = std::to_string(low != asked ? low : high);
      record.verified = launch::CheckState::kDiffers;
      record.observed =
          "overridden by the program for part of the run: it set " + other + ", then " + call;
      record.measured = "set " + other + " then " + call + "; " + record.measured;
    } else {
      record.note = "the program set the same count itself: " + call;
    }
    return true;
  }
};

}  // namespace

const Factor& threads_factor() {
  static const Threads factor;
  return factor;
}

}  // namespace memdet::factors
