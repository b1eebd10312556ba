#include "report/check_terminal.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "compare/finding_report.h"
#include "core/text.h"
#include "measure/counters.h"
#include "protocol/placeholders.h"
#include "report/campaign_view.h"

namespace memdet::report {
namespace {

std::string join_runs(const std::vector<int>& runs, const protocol::CheckReport& report) {
  std::string text;
  for (int index : runs) {
    text += (text.empty() ? "" : ", ") + report.runs[static_cast<size_t>(index - 1)].label;
  }
  return text;
}

std::string format_index(const std::vector<uint64_t>& index) {
  std::string text = "[";
  for (size_t i = 0; i < index.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(index[i]);
  }
  return text + "]";
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) {
    text += (text.empty() ? "" : " ") + printable(shell_quote(arg));
  }
  return text;
}

void print_text_comparison(const protocol::ArtifactComparison& comparison, std::FILE* out) {
  const compare::TextDiff& diff = *comparison.text;
  auto count = [](uint64_t value) { return static_cast<unsigned long long>(value); };
  std::fprintf(out, "    %s: %llu of %llu lines differ", comparison.key.c_str(),
               count(diff.differing_lines), count(std::min(diff.lines_a, diff.lines_b)));
  if (diff.extra_lines > 0) {
    std::fprintf(out, ", %llu more lines in one", count(diff.extra_lines));
  }
  if (diff.first_line == 0 && diff.final_newline_differs) {
    std::fprintf(out, "; only the final line break differs");
  }
  std::fprintf(out, "\n");
  if (diff.first_line > 0) {
    std::fprintf(out, "      first at line %llu%s%s:\n        %s\n        %s\n",
                 count(diff.first_line), diff.first_step ? ", step " : "",
                 diff.first_step ? diff.first_step->c_str() : "",
                 printable(diff.first_text_a).c_str(), printable(diff.first_text_b).c_str());
  }
  if (!diff.step_matched && diff.first_line > 0 && diff.step_regex_given) {
    std::fprintf(out, "      the step regex matched no line of the first file\n");
  }
  if (!diff.growth.empty()) {
    std::fprintf(out, "      how the difference grows:\n");
    std::fprintf(out, "        step        numbers differing   max abs\n");
    for (const compare::TextStepRow& row : diff.growth) {
      std::fprintf(out, "        %-11s %-19llu %.3g\n", printable(row.step).c_str(),
                   count(row.numbers_differing), row.max_abs);
    }
  }
  if (diff.first_number_line > diff.first_line) {
    std::fprintf(out, "      numbers first differ at line %llu%s%s\n",
                 count(diff.first_number_line), diff.first_number_step ? ", step " : "",
                 diff.first_number_step ? diff.first_number_step->c_str() : "");
  }
  if (diff.numbers_differing > 0) {
    std::fprintf(out, "      %llu of %llu numbers differ; max abs %.3g, max rel %.3g",
                 count(diff.numbers_differing), count(diff.numbers_compared), diff.max_abs,
                 diff.max_rel);
    if (diff.ulp_numbers > 0) {
      std::fprintf(out, "; max %llu ULP of %s (%s, %llu printed to round-trip)",
                   count(diff.max_ulp), diff.dtype.c_str(),
                   diff.dtype_inferred ? "inferred" : "given", count(diff.ulp_numbers));
    }
    if (diff.digit_numbers > 0 && diff.max_digit_units > 0 && diff.max_digit_units < 0.5) {
      std::fprintf(out, "; below one unit of the last printed digit (%llu printed short)",
                   count(diff.digit_numbers));
    } else if (diff.digit_numbers > 0) {
      std::fprintf(out, "; max %.0f units of the last printed digit (%llu printed short)",
                   diff.max_digit_units, count(diff.digit_numbers));
    }
    if (diff.integer_numbers > diff.wide_integer_numbers) {
      std::fprintf(out, "; integers differ by at most %llu (%llu compared exactly)",
                   count(diff.max_integer_difference),
                   count(diff.integer_numbers - diff.wide_integer_numbers));
    }
    if (diff.wide_integer_numbers > 0) {
      std::fprintf(out, "; %llu integers beyond 64 bits differ (compared digit by digit)",
                   count(diff.wide_integer_numbers));
    }
    std::fprintf(out, "\n");
  }
  if (diff.token_count_lines > 0) {
    std::fprintf(out, "      %llu lines have different numbers of tokens (first: line %llu)\n",
                 count(diff.token_count_lines), count(diff.first_token_count_line));
  }
  if (diff.nan_mismatch + diff.inf_mismatch > 0) {
    std::fprintf(out, "      %llu NaN and %llu infinity mismatches\n", count(diff.nan_mismatch),
                 count(diff.inf_mismatch));
  }
}

// Traces name their two sides; an outcome's letters, where known.
void print_comparison(const protocol::ArtifactComparison& comparison, std::FILE* out,
                      std::string_view reference = "the reference",
                      std::string_view other = "this run") {
  using Kind = protocol::ArtifactComparison::Kind;
  switch (comparison.kind) {
    case Kind::kSame:
      return;
    case Kind::kMissing:
      std::fprintf(out, "    %s: %s\n", comparison.key.c_str(), comparison.note.c_str());
      return;
    case Kind::kDigestDiffers:
      std::fprintf(out, "    %s: bytes differ%s%s\n", comparison.key.c_str(),
                   comparison.note.empty() ? "" : "; ", comparison.note.c_str());
      return;
    case Kind::kText:
      print_text_comparison(comparison, out);
      return;
    case Kind::kTrace:
      std::fprintf(out, "    %s: traces differ\n", comparison.key.c_str());
      for (const std::string& line :
           compare::describe_trace_diff(*comparison.trace, reference, other)) {
        std::fprintf(out, "    %s\n", line.c_str());
      }
      return;
    case Kind::kNumeric:
      break;
  }
  const compare::NumericDiff& diff = *comparison.numeric;
  std::string ulp = diff.has_ulp ? ", max ULP " + std::to_string(diff.max_ulp) : "";
  std::fprintf(
      out, "    %s (%s): %llu of %llu elements differ; max abs %.3g, max rel %.3g%s\n",
      comparison.key.c_str(), diff.dtype.c_str(), static_cast<unsigned long long>(diff.differing),
      static_cast<unsigned long long>(diff.elements), diff.max_abs, diff.max_rel, ulp.c_str());
  if (diff.differing > 0) {
    std::fprintf(out, "      first at %s: %.9g (reference) vs %.9g\n",
                 format_index(diff.first_index).c_str(), diff.first_a, diff.first_b);
  } else {
    std::fprintf(out, "      every element is identical: the files differ in their headers\n");
  }
  if (diff.nan_mismatch > 0) {
    std::fprintf(out, "      %llu element%s NaN on one side only\n",
                 static_cast<unsigned long long>(diff.nan_mismatch),
                 diff.nan_mismatch == 1 ? " is" : "s are");
  }
}

// The last lines of a file, for showing why a run failed.
std::vector<std::string> tail_lines(const std::string& path, size_t count) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > count) {
      lines.erase(lines.begin());
    }
  }
  return lines;
}

void print_failures(const protocol::CheckReport& report, std::FILE* out) {
  int interrupted = 0;
  int missing = 0;
  int workload = 0;
  const protocol::RunRecord* first_failed = nullptr;
  for (const protocol::RunRecord& run : report.runs) {
    if (run.completed()) {
      continue;
    }
    if (run.launch.interrupted_by != 0) {
      ++interrupted;
    } else if (run.launch.succeeded()) {
      ++missing;
    } else {
      ++workload;
      if (first_failed == nullptr) {
        first_failed = &run;
      }
    }
  }
  if (workload > 0) {
    std::fprintf(out, "%d run%s failed (non-zero exit, signal or timeout)\n", workload,
                 workload == 1 ? "" : "s");
  }
  if (missing > 0) {
    std::fprintf(out, "%d run%s exited 0 but did not write every artifact\n", missing,
                 missing == 1 ? "" : "s");
  }
  if (interrupted > 0) {
    std::fprintf(out, "%d run%s stopped by the interruption\n", interrupted,
                 interrupted == 1 ? "" : "s");
  }
  if (first_failed != nullptr && first_failed->launch.outcome != launch::Outcome::kTimedOut) {
    std::string path = first_failed->dir + "/stderr.txt";
    std::vector<std::string> lines = tail_lines(path, 5);
    if (!lines.empty()) {
      std::fprintf(out, "last lines of run %s's stderr (%s):\n", first_failed->label.c_str(),
                   path.c_str());
      for (const std::string& line : lines) {
        std::fprintf(out, "  | %s\n", line.c_str());
      }
    }
  }
}

// What the runs loaded, and a warning before the results if the runs did
// not all load the same BLAS and allocator: then their results are not
// comparable as runs of one program.
void print_loaded(const protocol::CheckReport& report, std::FILE* out) {
  if (report.runs.empty()) {
    return;
  }
  const host::LoadedLibraries& first = report.runs.front().loaded;
  if (!first.recorded) {
    std::fprintf(out, "loaded libraries: not recorded: %s\n", first.note.c_str());
    return;
  }
  std::string blas = first.blas_name;
  if (!first.blas.empty()) {
    blas += " (" + first.blas.front().resolved + ")";
  }
  std::fprintf(out, "loaded (run %s): BLAS %s; allocator %s\n", report.runs.front().label.c_str(),
               blas.c_str(), first.allocator.c_str());
  // An allocator the allocator factor varies on purpose is no surprise.
  const factors::ProfileEntry* allocator = report.options.profile.find("allocator");
  const bool allocator_varies = allocator != nullptr && allocator->mode == factors::Mode::kPerturb;
  for (const protocol::RunRecord& run : report.runs) {
    if (!run.loaded.recorded) {
      continue;
    }
    std::string unlike;
    if (run.loaded.blas_name != first.blas_name) {
      unlike += "BLAS " + run.loaded.blas_name;
    }
    if (!allocator_varies && run.loaded.allocator != first.allocator) {
      unlike += (unlike.empty() ? "" : " and ") + std::string("allocator ") + run.loaded.allocator;
    }
    if (!unlike.empty()) {
      std::fprintf(out, "warning: run %s loaded %s, unlike run %s\n", run.label.c_str(),
                   unlike.c_str(), report.runs.front().label.c_str());
    }
  }
}

// A figure as the counters table shows it: task-clock in milliseconds,
// wall time in seconds, counts whole unless they are means.
// What a tolerance made of one differing artifact.
std::string tolerance_note(const protocol::ArtifactComparison& comparison,
                           const protocol::CheckOptions& options) {
  using Kind = protocol::ArtifactComparison::Kind;
  if (comparison.within_tolerance) {
    return "within tolerance (" + compare::tolerance_text(options.tolerance) + ")";
  }
  if (comparison.kind == Kind::kText || comparison.kind == Kind::kTrace) {
    return "compared as written: the tolerance applies to tensor files only";
  }
  if (comparison.kind == Kind::kMissing) {
    return "missing on one side";
  }
  if (comparison.tolerance_checked) {
    return "OUTSIDE the tolerance (" + compare::tolerance_text(options.tolerance) + ")";
  }
  return "compared by its bytes: the tolerance applies to .npy, .npz and .safetensors";
}

// The artifacts of every outcome that are not within the tolerance of the
// reference's, each once: "loss.txt (text, compared as written), w.npy".
std::string beyond_tolerance(const protocol::CheckReport& report) {
  using Kind = protocol::ArtifactComparison::Kind;
  std::vector<std::string> names;
  for (const protocol::OutcomeGroup& group : report.outcomes) {
    for (const protocol::ArtifactComparison& comparison : group.vs_reference) {
      if (comparison.kind == Kind::kSame || comparison.within_tolerance) {
        continue;
      }
      std::string name = comparison.key;
      if (comparison.kind == Kind::kText || comparison.kind == Kind::kTrace) {
        name += " (compared as written)";
      } else if (comparison.kind == Kind::kMissing) {
        name += " (missing on one side)";
      } else if (!comparison.tolerance_checked) {
        name += " (compared by its bytes)";
      }
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(name);
      }
    }
  }
  return join(names);
}

std::string figure_name(const measure::CounterSummary& summary) {
  if (summary.unit == "ns") {
    return summary.name + " (ms)";
  }
  if (summary.unit == "s") {
    return summary.name + " (s)";
  }
  return summary.name;
}

std::string figure_text(double value, const std::string& unit, bool mean) {
  char text[48];
  if (unit == "ns") {
    std::snprintf(text, sizeof text, "%.3f", value / 1e6);
  } else if (unit == "s") {
    std::snprintf(text, sizeof text, "%.3f", value);
  } else if (std::fabs(value) >= 1e12) {
    std::snprintf(text, sizeof text, "%.4g", value);
  } else {
    std::snprintf(text, sizeof text, mean ? "%.1f" : "%.0f", value);
  }
  return text;
}

// Per counter: the cold run, then mean, CV and how many runs they rest on;
// what could not be counted; the rule and what it flagged.
void print_counters(const protocol::CheckReport& report, std::FILE* out) {
  if (report.counters.empty()) {
    return;
  }
  const measure::CounterSummary& first = report.counters.front();
  const std::string cold_label = protocol::run_label(first.cold_run, report.options.runs);
  int most = 0;
  for (const measure::CounterSummary& summary : report.counters) {
    most = std::max(most, summary.warm.count);
  }
  std::fprintf(out,
               "\ncounters (run %s, the first, shown apart; mean and CV over the %d completed "
               "runs after it",
               cold_label.c_str(), most);
  if (auto uncertainty = measure::cv_relative_uncertainty(most)) {
    std::fprintf(out, "; a CV from %d runs is itself uncertain by about %.0f %%", most,
                 100.0 * *uncertainty);
  }
  std::fprintf(out, "):\n");
  std::fprintf(out, "  %-34s %14s %14s %8s %4s\n", "counter", ("run " + cold_label).c_str(), "mean",
               "CV", "n");
  std::vector<std::string> flagged;
  for (const measure::CounterSummary& summary : report.counters) {
    std::string cold = summary.cold ? figure_text(*summary.cold, summary.unit, false) : "-";
    std::string mean =
        summary.warm.count > 0 ? figure_text(summary.warm.mean, summary.unit, true) : "-";
    char cv[24] = "-";
    if (summary.warm.cv) {
      std::snprintf(cv, sizeof cv, "%.1f %%", 100.0 * *summary.warm.cv);
    }
    std::fprintf(out, "  %-34s %14s %14s %8s %4d%s\n", figure_name(summary).c_str(), cold.c_str(),
                 mean.c_str(), cv, summary.warm.count, summary.flagged ? "  flagged" : "");
    if (summary.flagged) {
      flagged.push_back(summary.name);
    }
  }

  // Every run asked for the same counters; the first measured run's
  // refusals stand for all of them.
  for (const protocol::RunRecord& run : report.runs) {
    if (run.launch.counters.measured) {
      measure::UnsupportedNotices notices;
      for (const std::string& line : notices.take(run.launch.counters)) {
        std::fprintf(out, "  %s\n", line.c_str());
      }
      if (run.launch.counters.user_space_only) {
        std::fprintf(out, "  counted in user space only (perf_event_paranoid above 1, not root)\n");
      }
      break;
    }
  }

  const measure::CounterRule& rule = report.options.counter_rule;
  if (rule.kind == measure::CounterRule::Kind::kNone) {
    std::fprintf(out,
                 "  rule: none, so no counter is flagged (--counter-rule fixed:2%% flags a CV "
                 "above 2 %%, a rule of thumb)\n");
  } else if (flagged.empty()) {
    std::fprintf(out, "  rule: %s (%s): no counter flagged\n", rule.text().c_str(),
                 rule.label().c_str());
  } else {
    std::string names;
    for (const std::string& name : flagged) {
      names += (names.empty() ? "" : ", ") + name;
    }
    std::fprintf(out, "  rule: %s (%s): flagged %s\n", rule.text().c_str(), rule.label().c_str(),
                 names.c_str());
  }
}

}  // namespace

std::string describe_status(const launch::LaunchResult& result) {
  switch (result.outcome) {
    case launch::Outcome::kExited:
      return "exit " + std::to_string(result.exit_code);
    case launch::Outcome::kSignaled:
      return "signal " + std::to_string(result.signal) + " (" + strsignal(result.signal) + ")";
    case launch::Outcome::kTimedOut:
      return "timed out";
    case launch::Outcome::kStopped:
      return "stopped by signal " + std::to_string(result.signal) + " (" +
             strsignal(result.signal) + ")";
    case launch::Outcome::kControlFailed:
      return "control failed: " + result.message;
    case launch::Outcome::kExecFailed:
      return result.message;
  }
  return "unknown";
}

void print_artifact_comparison(const protocol::ArtifactComparison& comparison, std::FILE* out) {
  print_comparison(comparison, out);
}

std::string run_status(const protocol::RunRecord& run) {
  std::string status = describe_status(run.launch);
  if (run.launch.succeeded() && !run.missing.empty()) {
    status += ", missing " + run.missing.front();
  }
  return status;
}

std::string describe_profile(const factors::Profile& profile) {
  std::string pinned;
  std::string perturbed;
  std::string not_applicable;
  std::string free;
  for (const factors::ProfileEntry& entry : profile.entries) {
    std::string name = entry.factor->name();
    if (entry.mode == factors::Mode::kFree) {
      free += (free.empty() ? "" : ", ") + name;
      continue;
    }
    if (entry.applied == factors::Applied::kNotApplicable) {
      not_applicable += (not_applicable.empty() ? "" : ", ") + name + " (" + entry.reason + ")";
    } else if (entry.mode == factors::Mode::kPerturb) {
      perturbed += (perturbed.empty() ? "" : ", ") + name + " (reference " + entry.reference +
                   (entry.variant.empty() ? "" : ", " + entry.variant) + ")";
    } else {
      pinned += (pinned.empty() ? "" : ", ") + name + "=" + entry.reference;
    }
  }
  std::string line;
  auto add = [&](const char* label, const std::string& list) {
    if (!list.empty()) {
      line += (line.empty() ? "" : "; ") + std::string(label) + list;
    }
  };
  add("pinned: ", pinned);
  add("perturbed: ", perturbed);
  add("not applicable: ", not_applicable);
  // Named only beside a pinned or perturbed one: a free factor can move the
  // result too.
  if (!line.empty()) {
    add("free: ", free);
  }
  if (!perturbed.empty()) {
    char seed[40];
    std::snprintf(seed, sizeof seed, "; seed 0x%016llx",
                  static_cast<unsigned long long>(profile.seed));
    line += seed;
  }
  return line.empty() ? "every factor free" : line;
}

std::string describe_factor(const factors::FactorRecord& record) {
  std::string line = record.name + " ";
  if (record.applied == factors::Applied::kNotApplicable ||
      record.applied == factors::Applied::kRefused) {
    return line + factors::applied_name(record.applied) + ": " + record.reason;
  }
  line += record.perturbed ? "perturbed " + record.value + " (reference " + record.reference + ")"
                           : "pinned " + record.value;
  line += std::string(": ") + launch::check_state_name(record.verified);
  if (!record.observed.empty()) {
    line += ", " + record.observed;
  }
  if (!record.note.empty()) {
    line += "; " + record.note;
  }
  return line;
}

void print_campaign_start(const protocol::CheckReport& report, std::FILE* out) {
  std::fprintf(out, "%d runs of %s\n  records: %s\n", report.options.runs,
               command_line(report.command).c_str(), report.campaign_dir.c_str());
  if (!report.options.profile.entries.empty()) {
    std::fprintf(out, "  factors: %s\n", describe_profile(report.options.profile).c_str());
    if (report.options.profile.any_perturbed()) {
      std::fprintf(out, "  run %s is the reference; every further run is perturbed\n",
                   protocol::run_label(1, report.options.runs).c_str());
    }
  }
  std::fflush(out);
}

void print_run_progress(const protocol::RunRecord& run, int total, std::FILE* out) {
  std::string values;
  for (const factors::FactorRecord& record : run.factors.records) {
    if (record.perturbed) {
      values += "  " + record.name + "=" + record.value;
    }
  }
  std::fprintf(out, "  run %s/%d %8.2f s  %s%s\n", run.label.c_str(), total,
               run.launch.wall_seconds, run_status(run).c_str(), values.c_str());
  for (const factors::FactorRecord& record : run.factors.records) {
    if (record.applied == factors::Applied::kApplied &&
        record.verified != launch::CheckState::kVerified &&
        record.verified != launch::CheckState::kNotObservable) {
      std::fprintf(out, "    %s\n", describe_factor(record).c_str());
    }
  }
  for (const std::string& problem : run.factor_problems) {
    std::fprintf(out, "    %s\n", problem.c_str());
  }
  // Once per memdet invocation, not once per run.
  for (const std::string& notice : measure::process_notices().take(run.launch.counters)) {
    std::fprintf(out, "    %s\n", notice.c_str());
  }
  std::fflush(out);
}

void print_check_summary(const protocol::CheckReport& report, std::FILE* out) {
  if (static_cast<int>(report.runs.size()) == report.options.runs) {
    std::fprintf(out, "\nmemdet check: %zu runs of %s\n", report.runs.size(),
                 command_line(report.command).c_str());
  } else {
    std::fprintf(out, "\nmemdet check: %zu of %d runs of %s\n", report.runs.size(),
                 report.options.runs, command_line(report.command).c_str());
  }
  std::fprintf(out, "records: %s\n", report.campaign_dir.c_str());
  if (!report.runs.empty() && !report.runs.front().launch.checks.empty()) {
    std::string controls = launch::summarize_checks(report.runs.front().launch.checks);
    std::fprintf(out, "controls (run %s): %s\n", report.runs.front().label.c_str(),
                 controls.c_str());
  }
  if (!report.options.profile.entries.empty()) {
    std::fprintf(out, "factors: %s\n", describe_profile(report.options.profile).c_str());
    // Each factor once, with the runs where it was not verified or did not
    // behave as its mode says.
    std::map<std::string, std::vector<std::string>> unverified;
    std::map<std::string, std::vector<std::string>> misbehaved;
    for (const protocol::RunRecord& run : report.runs) {
      for (const factors::FactorRecord& record : run.factors.records) {
        if (record.applied == factors::Applied::kRefused ||
            (record.applied == factors::Applied::kApplied &&
             record.verified != launch::CheckState::kVerified &&
             record.verified != launch::CheckState::kNotObservable)) {
          unverified[record.name].push_back(run.label);
        }
      }
      for (const std::string& problem : run.factor_problems) {
        misbehaved[problem.substr(0, problem.find(':'))].push_back(run.label);
      }
    }
    auto list = [&](const char* what, const std::map<std::string, std::vector<std::string>>& by) {
      for (const auto& [name, runs] : by) {
        std::string labels;
        for (const std::string& label : runs) {
          labels += (labels.empty() ? "" : ", ") + label;
        }
        std::fprintf(out, "  %s %s in runs %s (see their record.json)\n", name.c_str(), what,
                     labels.c_str());
      }
    };
    list("was not verified", unverified);
    list("did not behave as its mode says (pinned but moved, or perturbed but the same)",
         misbehaved);
  }
  const host::HostInfo& host = report.host;
  std::string extensions;
  for (const std::string& extension : host.vector_extensions) {
    extensions += " " + extension;
  }
  std::fprintf(out, "host: %s, Linux %s, %s; %ld CPUs;%s\n", host.cpu_model.c_str(),
               host.kernel.c_str(), host.libc.c_str(), host.online_cpus, extensions.c_str());
  print_loaded(report, out);

  size_t moved = 0;
  for (const protocol::RunRecord& run : report.runs) {
    moved += run.moved_before.size();
  }
  if (moved > 0) {
    std::fprintf(out,
                 "moved %zu earlier file%s matching the artifact patterns into the runs' "
                 "before/ folders\n",
                 moved, moved == 1 ? "" : "s");
  }

  std::fprintf(out, "\n  run  %-26s %9s %9s %9s  outcome\n", "status", "wall s", "cpu s",
               "peak MiB");
  for (const protocol::RunRecord& run : report.runs) {
    std::string status = run_status(run);
    if (status.size() > 26) {
      status = status.substr(0, 23) + "...";
    }
    std::fprintf(out, "  %3s  %-26s %9.2f %9.2f %9.1f  %s\n", run.label.c_str(), status.c_str(),
                 run.launch.wall_seconds, run.launch.user_seconds + run.launch.system_seconds,
                 static_cast<double>(run.launch.max_rss_kib) / 1024.0,
                 outcome_letter(run.outcome).c_str());
    for (const launch::LeftBehind& process : run.launch.left_behind) {
      std::fprintf(out, "       left behind: pid %d (%s), ended by memdet\n", process.pid,
                   process.command.c_str());
    }
  }

  print_counters(report, out);

  if (!report.outcomes.empty()) {
    std::fprintf(out, "\noutcomes:");
    for (size_t i = 0; i < report.outcomes.size(); ++i) {
      std::fprintf(out, "  %s x%zu (run%s %s)%s", outcome_letter(static_cast<int>(i)).c_str(),
                   report.outcomes[i].runs.size(), report.outcomes[i].runs.size() == 1 ? "" : "s",
                   join_runs(report.outcomes[i].runs, report).c_str(),
                   static_cast<int>(i) == report.reference ? " reference" : "");
    }
    std::fprintf(out, "\n");
  }
  // Beyond a few outcomes the detail stops helping a reader; check.json
  // holds every comparison.
  constexpr int kDetailedOutcomes = 3;
  int detailed = 0;
  int not_shown = 0;
  for (size_t i = 0; i < report.outcomes.size(); ++i) {
    if (static_cast<int>(i) == report.reference) {
      continue;
    }
    if (detailed == kDetailedOutcomes) {
      ++not_shown;
      continue;
    }
    ++detailed;
    std::string identical;
    std::fprintf(out, "  %s vs %s:\n", outcome_letter(static_cast<int>(i)).c_str(),
                 outcome_letter(report.reference).c_str());
    for (const protocol::ArtifactComparison& comparison : report.outcomes[i].vs_reference) {
      if (comparison.kind == protocol::ArtifactComparison::Kind::kSame) {
        identical += (identical.empty() ? "" : ", ") + comparison.key;
        continue;
      }
      print_comparison(comparison, out, outcome_letter(report.reference),
                       outcome_letter(static_cast<int>(i)));
      if (protocol::has_tolerance(report.options.tolerance)) {
        std::fprintf(out, "      %s\n", tolerance_note(comparison, report.options).c_str());
      }
    }
    if (!identical.empty()) {
      std::fprintf(out, "    identical: %s\n", identical.c_str());
    }
    for (const std::string& line : report.outcomes[i].fingerprint_lines) {
      std::fprintf(out, "    fingerprint: %s\n", line.c_str());
    }
  }
  if (not_shown > 0) {
    std::fprintf(out, "  (%d more outcome%s compared in %s/check.json)\n", not_shown,
                 not_shown == 1 ? "" : "s", report.campaign_dir.c_str());
  }

  std::fprintf(out, "\n");
  print_check_verdict(report, out);
}

void print_check_verdict(const protocol::CheckReport& report, std::FILE* out) {
  if (!report.input_error.empty()) {
    std::fprintf(out, "verdict: cannot judge: %s\n", printable(report.input_error).c_str());
    return;
  }
  switch (report.verdict) {
    case protocol::Verdict::kDiffers:
      std::fprintf(out, "verdict: results DIFFER: %zu distinct outcomes in %d completed runs%s\n",
                   report.outcomes.size(), report.completed_runs,
                   report.stopped_early ? " (stopped at the first difference)" : "");
      if (protocol::has_tolerance(report.options.tolerance)) {
        std::fprintf(out, "  beyond the tolerance: %s\n", beyond_tolerance(report).c_str());
      }
      break;
    case protocol::Verdict::kWithinTolerance:
      std::fprintf(out,
                   "verdict: results equal within tolerance (%s): %zu distinct outcomes in %d "
                   "completed runs, each within tolerance of %s\n",
                   compare::tolerance_text(report.options.tolerance).c_str(),
                   report.outcomes.size(), report.completed_runs,
                   outcome_letter(report.reference).c_str());
      break;
    case protocol::Verdict::kNoDifferenceSeen:
      std::fprintf(out,
                   "verdict: no difference seen in %d runs.\n"
                   "  Assuming the runs are independent and identically distributed on this\n"
                   "  host, a further run differs with probability below %.0f %% (95 %%\n"
                   "  confidence); %d runs would bound it below 10 %%, %d below 5 %%.\n",
                   report.completed_runs, 100.0 * report.difference_bound(),
                   protocol::runs_for_bound(0.10), protocol::runs_for_bound(0.05));
      if (report.timing_varied_results_did_not()) {
        std::fprintf(out,
                     "timing varied, results did not: a counter varied beyond the rule (%s), "
                     "yet every run wrote the same outputs\n",
                     report.options.counter_rule.text().c_str());
      }
      break;
    case protocol::Verdict::kTooFewRuns:
      std::fprintf(out, "verdict: too few completed runs to compare (%d)\n", report.completed_runs);
      break;
  }
  if (report.failed_runs > 0) {
    print_failures(report, out);
  }
  if (report.interrupted_by != 0) {
    std::fprintf(out, "interrupted by %s: records of the runs so far are kept\n",
                 strsignal(report.interrupted_by));
  }
}

std::string printed(const std::function<void(std::FILE*)>& print) {
  char* data = nullptr;
  size_t size = 0;
  std::FILE* stream = open_memstream(&data, &size);
  if (stream == nullptr) {
    return {};
  }
  print(stream);
  std::fclose(stream);
  std::string text(data, size);
  std::free(data);
  return text;
}

}  // namespace memdet::report
