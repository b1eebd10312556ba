#include "compare/finding_report.h"

#include <cmath>
#include <cstdio>

#include "core/text.h"

namespace memdet::compare {

namespace {

std::string index_text(const std::vector<uint64_t>& index) {
  std::string text = "[";
  for (size_t i = 0; i < index.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(index[i]);
  return text + "]";
}

std::vector<std::string> figures(const TensorFinding& finding, const Tolerance& tolerance,
                                 const std::string& pad) {
  std::vector<std::string> lines;
  const TensorDiff& diff = finding.diff;
  const std::string name = printable(finding_name(finding));
  const std::string what = finding.bytes_only ? "bytes" : "elements";
  std::string head = pad + name + "  " + finding.dtype_a + " " + shape_text(finding.shape_a) +
                     ": " + std::to_string(diff.bitwise_differing) + " of " +
                     std::to_string(diff.elements) + " " + what + " differ";
  if (finding.kind == FindingKind::kWithinTolerance) {
    head += " in their bits, all within tolerance";
  } else if (tolerance.atol > 0 || tolerance.rtol > 0 || tolerance.max_ulp > 0 ||
             tolerance.equal_nan) {
    head += ", " + std::to_string(diff.differing) + " outside the tolerance";
  }
  lines.push_back(head);

  const std::string more = pad + "    ";
  if (!finding.bytes_only) {
    lines.push_back(more + "max abs " + number_text(diff.max_abs) + ", max rel " +
                    number_text(diff.max_rel) + ", max ulp " + std::to_string(diff.max_ulp));
    std::string histogram;
    for (size_t bucket = 0; bucket < kUlpBuckets; ++bucket) {
      if (diff.ulp_histogram[bucket] == 0) continue;
      histogram += std::string(histogram.empty() ? "" : ", ") +
                   std::string(ulp_bucket_name(bucket)) + ": " +
                   std::to_string(diff.ulp_histogram[bucket]);
    }
    if (!histogram.empty()) lines.push_back(more + "ulp histogram: " + histogram);
    if (diff.nan_payload > 0) {
      lines.push_back(more + std::to_string(diff.nan_payload) +
                      " NaN pairs differ only in their payload bits");
    }
    if (diff.nan_mismatch > 0) {
      lines.push_back(more + std::to_string(diff.nan_mismatch) + " pairs are NaN on one side only");
    }
  }
  if (diff.has_first) {
    lines.push_back(more + "first at " + index_text(diff.first_index) + ": " +
                    printable(diff.first_a) + " vs " + printable(diff.first_b));
  }
  return lines;
}

}  // namespace

std::string finding_name(const TensorFinding& finding) {
  if (finding.file.empty()) return finding.tensor.empty() ? "the array" : finding.tensor;
  if (finding.tensor.empty()) return finding.file;
  return finding.file + ": " + finding.tensor;
}

std::string_view finding_kind_word(FindingKind kind) {
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

std::vector<std::string> describe_finding(const TensorFinding& finding, const DiffReport& report,
                                          int indent) {
  const std::string pad(indent, ' ');
  const std::string name = printable(finding_name(finding));
  switch (finding.kind) {
    case FindingKind::kIdentical:
      return {};
    case FindingKind::kWithinTolerance:
    case FindingKind::kDiffers:
      return figures(finding, report.tolerance, pad);
    case FindingKind::kDtypeMismatch:
      return {pad + name + "  dtype differs: " + finding.dtype_a + " vs " + finding.dtype_b};
    case FindingKind::kShapeMismatch:
      return {pad + name + "  shape differs: " + shape_text(finding.shape_a) + " vs " +
              shape_text(finding.shape_b)};
    case FindingKind::kOnlyInA:
      return {pad + name + "  only in " + printable(report.path_a)};
    case FindingKind::kOnlyInB:
      break;
  }
  return {pad + name + "  only in " + printable(report.path_b)};
}

nlohmann::json json_number(double value) {
  if (std::isinf(value)) return "inf";
  return value;
}

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", value);
  return text;
}

std::string tolerance_text(const Tolerance& tolerance) {
  return "atol " + number_text(tolerance.atol) + ", rtol " + number_text(tolerance.rtol) +
         ", max-ulp " + std::to_string(tolerance.max_ulp) +
         (tolerance.equal_nan ? ", NaNs equal" : "");
}

nlohmann::json finding_json(const TensorFinding& finding) {
  nlohmann::json entry = {
      {"file", finding.file},
      {"tensor", finding.tensor},
      {"status", finding_kind_word(finding.kind)},
      {"bytes_only", finding.bytes_only},
      {"dtype_a", finding.dtype_a},
      {"dtype_b", finding.dtype_b},
      {"shape_a", finding.shape_a},
      {"shape_b", finding.shape_b},
  };
  if (finding.kind == FindingKind::kIdentical || finding.kind == FindingKind::kWithinTolerance ||
      finding.kind == FindingKind::kDiffers) {
    const TensorDiff& diff = finding.diff;
    nlohmann::json histogram = nlohmann::json::object();
    for (size_t bucket = 0; bucket < kUlpBuckets; ++bucket) {
      histogram[std::string(ulp_bucket_name(bucket))] = diff.ulp_histogram[bucket];
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
  return entry;
}

}  // namespace memdet::compare
