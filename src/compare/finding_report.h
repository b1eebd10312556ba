// How one tensor finding reads in a report: the lines `memdet diff` prints
// for it and its JSON entry. The trace report prints the saved tensors of a
// divergent step or operator the same way.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compare/tensor_diff.h"

namespace memdet::compare {

// "weights.safetensors: layer.0.weight", or whichever part there is.
std::string finding_name(const TensorFinding& finding);

// The finding's status word in JSON: identical, differs, only_in_a, ...
std::string_view finding_kind_word(FindingKind kind);

// Lines for a finding, each indented by indent spaces; none for an
// identical tensor. Names are made printable.
std::vector<std::string> describe_finding(const TensorFinding& finding, const DiffReport& report,
                                          int indent);

nlohmann::json finding_json(const TensorFinding& finding);

// Infinities have no JSON spelling; they are written as the string "inf".
nlohmann::json json_number(double value);

// "%.9g": enough digits to tell float32 values apart.
std::string number_text(double value);

// "atol 0.001, rtol 0, max-ulp 4", and ", NaNs equal" with equal_nan.
std::string tolerance_text(const Tolerance& tolerance);

}  // namespace memdet::compare
