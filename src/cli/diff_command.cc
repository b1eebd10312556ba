// memdet diff A B [--atol X] [--rtol X] [--max-ulp N] [--equal-nan] [--json]
//
// Compares two tensor files (.npy, .safetensors) or two folders of them,
// pairing files by relative path and tensors by name, and says whether they
// are bitwise identical, equal within the tolerance, or differ; for each
// tensor that differs, how many elements, by how much, and where first.
// Two run directories holding memory-layout fingerprints (memdet run
// --fingerprint DIR) are compared as runs: their other files as artifacts,
// and their fingerprints for where the allocation sequences first diverge,
// whether the virtual layouts match and how far the physical page colours
// differ.
// Exits 0 when identical or equal within tolerance, 1 when they differ, 2
// for a bad option or an unreadable or lying file.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/tolerance_options.h"
#include "compare/digest.h"
#include "compare/finding_report.h"
#include "compare/tensor_diff.h"
#include "compare/text.h"
#include "compare/trace.h"
#include "core/error.h"
#include "core/text.h"
#include "measure/fingerprint.h"
#include "protocol/check.h"
#include "report/check_json.h"
#include "report/check_terminal.h"

namespace memdet::cli {
namespace {

using compare::DiffReport;
using compare::FindingKind;
using compare::TensorFinding;
using compare::Verdict;

struct DiffOptions {
  std::string a;
  std::string b;
  ToleranceOptions tolerance;
  bool json = false;
  std::vector<std::string> masks;
  std::string step_regex;
};

// Two text files, a training log above all, compared line by line and
// number by number as check compares its text artifacts.
struct TextResult {
  TensorFinding finding;  // the file's byte finding, which the text replaces
  compare::TextDiff diff;
};

bool text_equal(const compare::TextDiff& diff) {
  return diff.differing_lines == 0 && diff.extra_lines == 0 && !diff.final_newline_differs;
}

bool same_bytes(const std::string& a, const std::string& b) {
  auto digest_a = compare::digest_file(a);
  auto digest_b = compare::digest_file(b);
  return digest_a && digest_b && *digest_a == *digest_b;
}

bool tensor_named(const std::string& path) {
  return path.ends_with(".npy") || path.ends_with(".npz") || path.ends_with(".safetensors");
}

bool text_pair(const std::string& a, const std::string& b) {
  return !tensor_named(a) && !tensor_named(b) && compare::looks_like_text(a) &&
         compare::looks_like_text(b);
}

compare::TextDiff diff_text_files(const std::string& a, const std::string& b,
                                  const compare::TextOptions& options) {
  auto text = compare::compare_text(a, b, options, "", "");
  if (!text) throw usage_error(text.error().message);
  return *text;
}

void print_text_result(const TextResult& result) {
  protocol::ArtifactComparison comparison;
  comparison.key = printable(compare::finding_name(result.finding));
  comparison.kind = protocol::ArtifactComparison::Kind::kText;
  comparison.text = result.diff;
  report::print_artifact_comparison(comparison, stdout);
}

std::string_view verdict_word(Verdict verdict) {
  switch (verdict) {
    case Verdict::kIdentical:
      return "identical";
    case Verdict::kWithinTolerance:
      return "within_tolerance";
    case Verdict::kDiffer:
      break;
  }
  return "differ";
}

// The headline counts tensors and, when there are any, traces.
void print_text(const DiffReport& report, const std::vector<compare::TraceDiff>& traces,
                const std::vector<TensorFinding>& saved, const std::vector<TextResult>& texts) {
  size_t differ = 0;
  size_t within = 0;
  std::vector<TensorFinding> counted_findings = report.findings;
  for (const TextResult& text : texts) counted_findings.push_back(text.finding);
  for (const TensorFinding& finding : counted_findings) {
    if (finding.kind == FindingKind::kWithinTolerance) ++within;
    if (finding.kind != FindingKind::kIdentical && finding.kind != FindingKind::kWithinTolerance) {
      ++differ;
    }
  }
  size_t traces_differ = 0;
  for (const compare::TraceDiff& trace : traces) traces_differ += trace.identical ? 0 : 1;
  std::set<std::string> saved_files;
  std::set<std::string> saved_differing;
  for (const TensorFinding& finding : saved) {
    saved_files.insert(finding.file);
    if (finding.kind != FindingKind::kIdentical && finding.kind != FindingKind::kWithinTolerance) {
      saved_differing.insert(finding.file);
    }
  }
  const size_t saved_differ = saved_differing.size();
  const size_t total = counted_findings.size();
  const std::string noun = texts.empty()           ? "tensors"
                           : texts.size() == total ? "text files"
                                                   : "tensors and text files";
  std::string counted = std::to_string(total) + " compared";
  if (!traces.empty()) {
    counted = std::to_string(total) + " tensors and " + std::to_string(saved_files.size()) +
              " saved files bitwise identical, " + std::to_string(traces.size()) +
              (traces.size() == 1 ? " trace" : " traces") +
              " the same in every loss, digest and operator";
  }
  std::string trace_part;
  if (!traces.empty()) {
    trace_part = ", " + std::to_string(traces_differ) + " of " + std::to_string(traces.size()) +
                 (traces.size() == 1 ? " trace differs" : " traces differ");
    if (saved_differ > 0) {
      trace_part += ", " + std::to_string(saved_differ) + " of " +
                    std::to_string(saved_files.size()) + " saved files differ";
    }
  }
  const std::string pair = printable(report.path_a) + " and " + printable(report.path_b);
  Verdict verdict = traces_differ > 0 ? Verdict::kDiffer : report.verdict;
  switch (verdict) {
    case Verdict::kIdentical:
      if (traces.empty()) {
        std::printf("memdet diff: identical: %s are bitwise identical (%s)\n", pair.c_str(),
                    counted.c_str());
      } else {
        std::printf("memdet diff: identical: %s (%s)\n", pair.c_str(), counted.c_str());
      }
      break;
    case Verdict::kWithinTolerance:
      std::printf(
          "memdet diff: equal within tolerance: %s (%zu of %zu %s differ in their bits%s; %s)\n",
          pair.c_str(), within, total, noun.c_str(), texts.empty() ? "" : " or only in masked text",
          compare::tolerance_text(report.tolerance).c_str());
      break;
    case Verdict::kDiffer:
      if (total == 0 && !traces.empty()) {
        std::printf("memdet diff: differ: %s (%s)\n", pair.c_str(), trace_part.c_str() + 2);
        break;
      }
      // Text is compared as written, masks aside; the tolerance is not
      // for it.
      std::printf("memdet diff: differ: %s (%zu of %zu %s differ%s%s%s)\n", pair.c_str(), differ,
                  total, noun.c_str(), trace_part.c_str(), texts.size() == total ? "" : "; ",
                  texts.size() == total ? "" : compare::tolerance_text(report.tolerance).c_str());
      break;
  }

  for (const TensorFinding& finding : report.findings) {
    for (const std::string& line : compare::describe_finding(finding, report, 2)) {
      std::printf("%s\n", line.c_str());
    }
  }
  for (const TextResult& text : texts) {
    if (text.finding.kind != FindingKind::kIdentical) print_text_result(text);
  }
  if (saved_differ > 0) {
    std::printf(
        "  %zu of the %zu files the traces saved differ or are on one side only, first "
        "%s (--json lists each)\n",
        saved_differ, saved_files.size(), printable(*saved_differing.begin()).c_str());
  }
  for (const compare::TraceDiff& trace : traces) {
    std::printf("memdet diff: trace %s and %s %s\n", printable(trace.path_a).c_str(),
                printable(trace.path_b).c_str(), trace.identical ? "identical" : "differ");
    for (const std::string& line : compare::describe_trace_diff(trace)) {
      std::printf("%s\n", line.c_str());
    }
  }
}

nlohmann::json render_json(const DiffReport& report) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorFinding& finding : report.findings) {
    tensors.push_back(compare::finding_json(finding));
  }
  return {
      {"schema", "memdet.diff/1"},
      {"a", report.path_a},
      {"b", report.path_b},
      {"verdict", verdict_word(report.verdict)},
      {"tolerance",
       {{"atol", report.tolerance.atol},
        {"rtol", report.tolerance.rtol},
        {"max_ulp", report.tolerance.max_ulp},
        {"equal_nan", report.tolerance.equal_nan}}},
      {"tensors", tensors},
  };
}

// The fingerprint files of two run directories are compared as
// fingerprints, not as artifacts: their names hold pids.
bool is_fingerprint_file(const TensorFinding& finding) {
  return finding.file.rfind("fingerprint.", 0) == 0 && finding.file.find('/') == std::string::npos;
}

Verdict verdict_of(const std::vector<TensorFinding>& findings) {
  Verdict verdict = Verdict::kIdentical;
  for (const TensorFinding& finding : findings) {
    if (finding.kind == FindingKind::kWithinTolerance) verdict = Verdict::kWithinTolerance;
    if (finding.kind != FindingKind::kIdentical && finding.kind != FindingKind::kWithinTolerance) {
      return Verdict::kDiffer;
    }
  }
  return verdict;
}

bool holds_fingerprints(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_directory(path, error) && measure::has_fingerprints(path);
}

bool is_regular_file(const std::string& path) {
  std::error_code error;
  return std::filesystem::is_regular_file(path, error);
}

std::string join_path(const std::string& folder, const std::string& relative) {
  return (std::filesystem::path(folder) / relative).string();
}

bool is_trace_name(const std::string& relative) {
  return std::filesystem::path(relative).filename() == compare::kTraceFileName;
}

// Reads and compares two traces; a lying trace is bad input.
compare::TraceDiff diff_trace_files(const std::string& a, const std::string& b,
                                    const compare::Tolerance& tolerance) {
  auto trace_a = compare::read_trace(a);
  if (!trace_a) throw usage_error(trace_a.error().message);
  auto trace_b = compare::read_trace(b);
  if (!trace_b) throw usage_error(trace_b.error().message);
  return compare::compare_traces(*trace_a, *trace_b, tolerance);
}

// Two files are compared as traces when either is one by its first line or
// its name; a trace against anything else is bad input.
bool trace_pair(const std::string& a, const std::string& b) {
  const bool trace_a = compare::looks_like_trace(a);
  const bool trace_b = compare::looks_like_trace(b);
  if (trace_a != trace_b) {
    throw usage_error((trace_a ? b : a) + ": not a memdet trace, while " + (trace_a ? a : b) +
                      " is one");
  }
  return trace_a || is_trace_name(a) || is_trace_name(b);
}

// The tensor folders beside two trace files, compared as folders: whatever
// the traces say, a saved file that differs makes the pair differ.
void diff_saved_folders(const std::string& a, const std::string& b,
                        const compare::Tolerance& tolerance, std::vector<TensorFinding>& saved) {
  namespace fs = std::filesystem;
  const std::string prefix = std::string(compare::kTraceTensorDir) + "/";
  const fs::path dir_a = fs::path(a).parent_path() / compare::kTraceTensorDir;
  const fs::path dir_b = fs::path(b).parent_path() / compare::kTraceTensorDir;
  std::error_code error;
  const bool has_a = fs::is_directory(dir_a, error);
  const bool has_b = fs::is_directory(dir_b, error);
  if (!has_a && !has_b) return;
  if (has_a != has_b) {
    TensorFinding lone;
    lone.file = prefix;
    lone.kind = has_a ? FindingKind::kOnlyInA : FindingKind::kOnlyInB;
    saved.push_back(std::move(lone));
    return;
  }
  auto compared = compare::diff_paths(dir_a.string(), dir_b.string(), tolerance);
  if (!compared) throw usage_error(compared.error().message);
  for (TensorFinding& finding : compared->findings) {
    finding.file = prefix + finding.file;
    saved.push_back(std::move(finding));
  }
}

// In two folders, each pair of traces is compared as traces. The tensors
// they saved beside them move to `saved`: they still count in the verdict
// and the JSON, but the text shows them through the trace report, which
// names the ones that matter, the first divergent step's and operator's.
std::vector<compare::TraceDiff> take_traces(DiffReport& report, const compare::Tolerance& tolerance,
                                            std::vector<TensorFinding>& saved) {
  std::vector<compare::TraceDiff> traces;
  std::vector<std::string> saved_dirs;
  for (const TensorFinding& finding : report.findings) {
    if (finding.file.empty() || !is_trace_name(finding.file)) continue;
    if (finding.kind == FindingKind::kOnlyInA || finding.kind == FindingKind::kOnlyInB) continue;
    const std::string a = join_path(report.path_a, finding.file);
    const std::string b = join_path(report.path_b, finding.file);
    if (!trace_pair(a, b)) continue;
    traces.push_back(diff_trace_files(a, b, tolerance));
    std::filesystem::path folder = std::filesystem::path(finding.file).parent_path();
    saved_dirs.push_back((folder / compare::kTraceTensorDir).string() + "/");
  }
  std::erase_if(report.findings, [&](const TensorFinding& finding) {
    if (is_trace_name(finding.file)) {
      for (const compare::TraceDiff& trace : traces) {
        if (trace.path_a == join_path(report.path_a, finding.file)) return true;
      }
    }
    for (const std::string& dir : saved_dirs) {
      if (finding.file.rfind(dir, 0) == 0) {
        saved.push_back(finding);
        return true;
      }
    }
    return false;
  });
  return traces;
}

int diff(const DiffOptions& options) {
  compare::Tolerance tolerance = tolerance_from(options.tolerance);

  std::vector<compare::TraceDiff> traces;
  std::optional<DiffReport> report;
  compare::TextOptions text_options;
  text_options.masks = options.masks;
  text_options.step_regex = options.step_regex;
  if (auto masks = compare::compile_masks(options.masks); !masks) {
    throw usage_error("--mask: " + masks.error().message);
  }
  if (!options.step_regex.empty()) {
    if (auto step = compare::compile_step_regex(options.step_regex); !step) {
      throw usage_error("--step-regex: " + step.error().message);
    }
  }

  std::vector<TensorFinding> saved;
  std::vector<TextResult> texts;
  const bool two_files = is_regular_file(options.a) && is_regular_file(options.b);
  if (two_files && trace_pair(options.a, options.b)) {
    traces.push_back(diff_trace_files(options.a, options.b, tolerance));
    diff_saved_folders(options.a, options.b, tolerance, saved);
    report.emplace();
    report->path_a = options.a;
    report->path_b = options.b;
    report->tolerance = tolerance;
  } else if (two_files && text_pair(options.a, options.b)) {
    report.emplace();
    report->path_a = options.a;
    report->path_b = options.b;
    report->tolerance = tolerance;
    TextResult text;
    text.finding.file = std::string(base_name(options.a));
    text.diff = diff_text_files(options.a, options.b, text_options);
    if (same_bytes(options.a, options.b)) {
      text.finding.kind = FindingKind::kIdentical;
    } else {
      text.finding.kind =
          text_equal(text.diff) ? FindingKind::kWithinTolerance : FindingKind::kDiffers;
    }
    texts.push_back(std::move(text));
  } else {
    auto compared = compare::diff_paths(options.a, options.b, tolerance);
    if (!compared) throw usage_error(compared.error().message);
    report = std::move(*compared);
    traces = take_traces(*report, tolerance, saved);
    std::erase_if(report->findings, [&](const TensorFinding& finding) {
      // Files of no tensor format are compared as bytes, and two texts of
      // different lengths are bytes of different shapes.
      const bool differs =
          finding.kind == FindingKind::kDiffers || finding.kind == FindingKind::kShapeMismatch;
      if (!finding.bytes_only || finding.file.empty() || !differs) return false;
      const std::string a = join_path(report->path_a, finding.file);
      const std::string b = join_path(report->path_b, finding.file);
      if (!text_pair(a, b)) return false;
      TextResult text{finding, diff_text_files(a, b, text_options)};
      text.finding.kind =
          text_equal(text.diff) ? FindingKind::kWithinTolerance : FindingKind::kDiffers;
      texts.push_back(std::move(text));
      return true;
    });
  }
  bool traces_differ = false;
  for (const compare::TraceDiff& trace : traces) traces_differ |= !trace.identical;

  std::optional<measure::FingerprintComparison> fingerprints;
  if (holds_fingerprints(options.a) && holds_fingerprints(options.b)) {
    std::erase_if(report->findings, is_fingerprint_file);
    fingerprints = measure::compare_fingerprints(measure::read_run_fingerprint(options.a),
                                                 measure::read_run_fingerprint(options.b));
  }

  std::vector<TensorFinding> all = report->findings;
  all.insert(all.end(), saved.begin(), saved.end());
  for (const TextResult& text : texts) all.push_back(text.finding);
  report->verdict = verdict_of(all);

  if (options.json) {
    nlohmann::json document = render_json(*report);
    for (const TensorFinding& finding : saved) {
      document["tensors"].push_back(compare::finding_json(finding));
    }
    if (fingerprints) document["fingerprint"] = measure::comparison_json(*fingerprints);
    nlohmann::json trace_list = nlohmann::json::array();
    for (const compare::TraceDiff& trace : traces)
      trace_list.push_back(compare::trace_diff_json(trace));
    document["traces"] = trace_list;
    nlohmann::json text_list = nlohmann::json::array();
    for (const TextResult& text : texts) {
      text_list.push_back({{"file", text.finding.file},
                           {"status", compare::finding_kind_word(text.finding.kind)},
                           {"text", report::text_json(text.diff)}});
    }
    document["texts"] = text_list;
    if (traces_differ) document["verdict"] = "differ";
    // Names from files may hold bytes that are not UTF-8; they are replaced
    // rather than refused, since the report is still worth having.
    std::printf("%s\n",
                document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    print_text(*report, traces, saved, texts);
    if (fingerprints) {
      std::printf("memdet diff: fingerprints %s\n", fingerprints->equal ? "equal" : "differ");
      for (const std::string& line : measure::describe_comparison(*fingerprints)) {
        std::printf("%s\n", printable(line).c_str());
      }
    }
  }
  std::fflush(stdout);
  bool differs = report->verdict == Verdict::kDiffer || (fingerprints && !fingerprints->equal) ||
                 traces_differ;
  return differs ? static_cast<int>(Exit::kDiffers) : static_cast<int>(Exit::kNoDifference);
}

}  // namespace

Registered add_diff_command(CLI::App& parent) {
  auto options = std::make_shared<DiffOptions>();
  CLI::App* app = parent.add_subcommand(
      "diff",
      "Compare two tensor files (.npy, .safetensors) or two folders of them: identical, equal "
      "within tolerance, or where and by how much they differ; exit 1 if they differ");
  app->add_option("A", options->a, "the first file or folder")->required();
  app->add_option("B", options->b, "the second file or folder")->required();
  add_tolerance_options(*app, options->tolerance, "");
  app->add_option("--mask", options->masks,
                  "text files: a regex blanked out of both before their lines are compared: "
                  "step times, dates, PIDs (repeatable)")
      ->allow_extra_args(false);
  app->add_option("--step-regex", options->step_regex,
                  "text files: a regex whose capture group is the step number, e.g. "
                  "'^step (\\d+)': the report names the first step whose numbers differ");
  app->add_flag("--json", options->json, "print one JSON document instead of the text report");
  return {app, [options] { return diff(*options); }, 2};
}

}  // namespace memdet::cli
