// `memdet isolate`: which factor changes a command's result. The runs are
// made by a check Campaign, one at a time, each chosen by plan_isolate from
// the outcomes so far.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "factors/profile.h"
#include "protocol/check.h"
#include "protocol/isolate_plan.h"

namespace memdet::protocol {

struct IsolateOptions {
  // The command, artifacts, comparison and launch settings; its profile is
  // not used: each phase has its own.
  CheckOptions check;
  IsolateSettings settings;  // its factor list is filled from the host
  // The factors to try (--factors); empty: every one `--pin all` applies.
  std::vector<std::string> factor_names;
  uint64_t seed = 0;
  bool system = false;
  // Called after each run with the step it was made for.
  void (*on_run_done)(const RunRecord&, const IsolateStep&, const IsolateFindings&) = nullptr;
};

// A factor left out of the campaign, and why.
struct SkippedFactor {
  std::string name;
  std::string reason;
};

struct IsolateReport {
  CheckReport campaign;  // every run, its outcome and each outcome against the pool's
  IsolateSettings settings;
  IsolateFindings findings;
  std::vector<IsolateStep> steps;  // per run, in run order
  std::vector<SkippedFactor> skipped;
  factors::Profile pinned;  // the pool's profile
  int pool_run = 0;         // the pool's first run: the reference
  std::string input_error;
  int interrupted_by = 0;

  // The runs of one factor's batch, in order.
  std::vector<const RunRecord*> factor_runs(const std::string& name) const;
  // The values a factor's perturbed runs took, each once, in order.
  std::vector<std::string> values_tried(const std::string& name) const;
  int exit_status() const;
};

// The order factors are tried in: cheap, likely ones first, and uninit
// before every layout factor that merely exposes an uninitialised read.
const std::vector<std::string>& isolate_factor_order();

Result<IsolateReport> run_isolate(const IsolateOptions& options);

}  // namespace memdet::protocol
