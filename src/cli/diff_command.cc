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
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "compare/tensor_diff.h"
#include "core/error.h"
#include "core/text.h"
#include "measure/fingerprint.h"

namespace memdet::cli {
namespace {

using compare::DiffReport;
using compare::FindingKind;
using compare::TensorFinding;
using compare::Verdict;

struct DiffOptions {
  std::string a;
  std::string b;
  double atol = 0;
  double rtol = 0;
  uint64_t max_ulp = 0;
  bool equal_nan = false;
  bool json = false;
};

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", value);
  return text;
}

std::string index_text(const std::vector<uint64_t>& index) {
  std::string text = "[";
  for (size_t i = 0; i < index.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(index[i]);
  return text + "]";
}

// "weights.safetensors: layer.0.weight", or whichever part there is.
std::string finding_name(const TensorFinding& finding) {
  if (finding.file.empty()) return finding.tensor.empty() ? "the array" : finding.tensor;
  if (finding.tensor.empty()) return finding.file;
  return finding.file + ": " + finding.tensor;
}

std::string_view kind_word(FindingKind kind) {
  switch (kind) {
    case FindingKind::kIdentical:
      return "identical";
    case FindingKind::kWithinTolerance:
      return "within_tolerance";
    case FindingKind::kDiffers:
      return "differs";
    case FindingKind::kDtypeMismatch:
      return "dtype_mismatch";
    case FindingKind::kShapeMismatch:
      return "shape_mismatch";
    case FindingKind::kOnlyInA:
      return "only_in_a";
    case FindingKind::kOnlyInB:
      break;
  }
  return "only_in_b";
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

std::string tolerance_text(const compare::Tolerance& tolerance) {
  return "atol " + number(tolerance.atol) + ", rtol " + number(tolerance.rtol) + ", max-ulp " +
         std::to_string(tolerance.max_ulp) + (tolerance.equal_nan ? ", NaNs equal" : "");
}

void print_figures(const TensorFinding& finding) {
  const compare::TensorDiff& diff = finding.diff;
  const std::string name = printable(finding_name(finding));
  const std::string what = finding.bytes_only ? "bytes" : "elements";
  std::printf("  %s  %s %s: %llu of %llu %s differ", name.c_str(), finding.dtype_a.c_str(),
              compare::shape_text(finding.shape_a).c_str(),
              static_cast<unsigned long long>(diff.bitwise_differing),
              static_cast<unsigned long long>(diff.elements), what.c_str());
  if (finding.kind == FindingKind::kWithinTolerance) {
    std::printf(" in their bits, all within tolerance\n");
  } else {
    std::printf(", %llu outside the tolerance\n", static_cast<unsigned long long>(diff.differing));
  }

  if (!finding.bytes_only) {
    std::printf("      max abs %s, max rel %s, max ulp %llu\n", number(diff.max_abs).c_str(),
                number(diff.max_rel).c_str(), static_cast<unsigned long long>(diff.max_ulp));
    std::string histogram;
    for (size_t bucket = 0; bucket < compare::kUlpBuckets; ++bucket) {
      if (diff.ulp_histogram[bucket] == 0) continue;
      histogram += std::string(histogram.empty() ? "" : ", ") +
                   std::string(compare::ulp_bucket_name(bucket)) + ": " +
                   std::to_string(diff.ulp_histogram[bucket]);
    }
    if (!histogram.empty()) std::printf("      ulp histogram: %s\n", histogram.c_str());
    if (diff.nan_payload > 0) {
      std::printf("      %llu NaN pairs differ only in their payload bits\n",
                  static_cast<unsigned long long>(diff.nan_payload));
    }
    if (diff.nan_mismatch > 0) {
      std::printf("      %llu pairs are NaN on one side only\n",
                  static_cast<unsigned long long>(diff.nan_mismatch));
    }
  }
  if (diff.has_first) {
    std::printf("      first at %s: %s vs %s\n", index_text(diff.first_index).c_str(),
                printable(diff.first_a).c_str(), printable(diff.first_b).c_str());
  }
}

void print_text(const DiffReport& report) {
  size_t differ = 0;
  size_t within = 0;
  for (const TensorFinding& finding : report.findings) {
    if (finding.kind == FindingKind::kWithinTolerance) ++within;
    if (finding.kind != FindingKind::kIdentical && finding.kind != FindingKind::kWithinTolerance) {
      ++differ;
    }
  }
  const size_t total = report.findings.size();
  const std::string pair = printable(report.path_a) + " and " + printable(report.path_b);
  switch (report.verdict) {
    case Verdict::kIdentical:
      std::printf("memdet diff: identical: %s are bitwise identical (%zu compared)\n", pair.c_str(),
                  total);
      break;
    case Verdict::kWithinTolerance:
      std::printf(
          "memdet diff: equal within tolerance: %s (%zu of %zu tensors differ in their bits; %s)\n",
          pair.c_str(), within, total, tolerance_text(report.tolerance).c_str());
      break;
    case Verdict::kDiffer:
      std::printf("memdet diff: differ: %s (%zu of %zu tensors differ; %s)\n", pair.c_str(), differ,
                  total, tolerance_text(report.tolerance).c_str());
      break;
  }

  for (const TensorFinding& finding : report.findings) {
    const std::string name = printable(finding_name(finding));
    switch (finding.kind) {
      case FindingKind::kIdentical:
        break;
      case FindingKind::kWithinTolerance:
      case FindingKind::kDiffers:
        print_figures(finding);
        break;
      case FindingKind::kDtypeMismatch:
        std::printf("  %s  dtype differs: %s vs %s\n", name.c_str(), finding.dtype_a.c_str(),
                    finding.dtype_b.c_str());
        break;
      case FindingKind::kShapeMismatch:
        std::printf("  %s  shape differs: %s vs %s\n", name.c_str(),
                    compare::shape_text(finding.shape_a).c_str(),
                    compare::shape_text(finding.shape_b).c_str());
        break;
      case FindingKind::kOnlyInA:
        std::printf("  %s  only in %s\n", name.c_str(), printable(report.path_a).c_str());
        break;
      case FindingKind::kOnlyInB:
        std::printf("  %s  only in %s\n", name.c_str(), printable(report.path_b).c_str());
        break;
    }
  }
}

// Infinities have no JSON spelling; they are written as the string "inf".
nlohmann::json json_number(double value) {
  if (std::isinf(value)) return "inf";
  return value;
}

nlohmann::json render_json(const DiffReport& report) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorFinding& finding : report.findings) {
    nlohmann::json entry = {
        {"file", finding.file},
        {"tensor", finding.tensor},
        {"status", kind_word(finding.kind)},
        {"bytes_only", finding.bytes_only},
        {"dtype_a", finding.dtype_a},
        {"dtype_b", finding.dtype_b},
        {"shape_a", finding.shape_a},
        {"shape_b", finding.shape_b},
    };
    if (finding.kind == FindingKind::kIdentical || finding.kind == FindingKind::kWithinTolerance ||
        finding.kind == FindingKind::kDiffers) {
      const compare::TensorDiff& diff = finding.diff;
      nlohmann::json histogram = nlohmann::json::object();
      for (size_t bucket = 0; bucket < compare::kUlpBuckets; ++bucket) {
        histogram[std::string(compare::ulp_bucket_name(bucket))] = diff.ulp_histogram[bucket];
      }
      entry["elements"] = diff.elements;
      entry["bitwise_differing"] = diff.bitwise_differing;
      entry["differing"] = diff.differing;
      entry["nan_payload"] = diff.nan_payload;
      entry["nan_mismatch"] = diff.nan_mismatch;
      entry["max_abs"] = json_number(diff.max_abs);
      entry["max_rel"] = json_number(diff.max_rel);
      entry["max_ulp"] = diff.max_ulp;
      entry["ulp_histogram"] = histogram;
      entry["first_index"] = diff.has_first ? nlohmann::json(diff.first_index) : nullptr;
      entry["first_a"] = diff.has_first ? nlohmann::json(diff.first_a) : nullptr;
      entry["first_b"] = diff.has_first ? nlohmann::json(diff.first_b) : nullptr;
    }
    tensors.push_back(std::move(entry));
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

int diff(const DiffOptions& options) {
  for (const auto& [flag, value] : {std::pair{"--atol", options.atol}, {"--rtol", options.rtol}}) {
    if (!std::isfinite(value) || value < 0) {
      throw usage_error(std::string(flag) + " " + number(value) +
                        ": must be a finite number of at least 0");
    }
  }
  compare::Tolerance tolerance;
  tolerance.atol = options.atol;
  tolerance.rtol = options.rtol;
  tolerance.max_ulp = options.max_ulp;
  tolerance.equal_nan = options.equal_nan;

  auto report = compare::diff_paths(options.a, options.b, tolerance);
  if (!report) throw usage_error(report.error().message);

  std::optional<measure::FingerprintComparison> fingerprints;
  if (holds_fingerprints(options.a) && holds_fingerprints(options.b)) {
    std::erase_if(report->findings, is_fingerprint_file);
    report->verdict = verdict_of(report->findings);
    fingerprints = measure::compare_fingerprints(measure::read_run_fingerprint(options.a),
                                                 measure::read_run_fingerprint(options.b));
  }

  if (options.json) {
    nlohmann::json document = render_json(*report);
    if (fingerprints) document["fingerprint"] = measure::comparison_json(*fingerprints);
    // Names from files may hold bytes that are not UTF-8; they are replaced
    // rather than refused, since the report is still worth having.
    std::printf("%s\n",
                document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    print_text(*report);
    if (fingerprints) {
      std::printf("memdet diff: fingerprints %s\n", fingerprints->equal ? "equal" : "differ");
      for (const std::string& line : measure::describe_comparison(*fingerprints)) {
        std::printf("%s\n", printable(line).c_str());
      }
    }
  }
  std::fflush(stdout);
  bool differs = report->verdict == Verdict::kDiffer || (fingerprints && !fingerprints->equal);
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
  app->add_option("--atol", options->atol,
                  "elements count as equal when |a - b| <= atol + rtol * |b| (default 0)")
      ->type_name("X");
  app->add_option("--rtol", options->rtol, "the relative part of that rule (default 0)")
      ->type_name("X");
  app->add_option("--max-ulp", options->max_ulp,
                  "elements at most this many representable values apart also count as equal; "
                  "for integers and bools, the difference of values (default 0)")
      ->type_name("N")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            // Checked on the text: an unsigned conversion would wrap "-5".
            bool digits = !text.empty() && text.size() <= 19 &&
                          text.find_first_not_of("0123456789") == std::string::npos;
            return digits
                       ? std::string()
                       : "'" + text + "' is not a whole number from 0 to " + "9999999999999999999";
          },
          "N"));
  app->add_flag("--equal-nan", options->equal_nan,
                "NaNs whose payload bits differ count as equal within tolerance");
  app->add_flag("--json", options->json, "print one JSON document instead of the text report");
  return {app, [options] { return diff(*options); }, 2};
}

}  // namespace memdet::cli
