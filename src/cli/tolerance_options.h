// The tolerance flags `diff`, `check` and `isolate` share: when two tensor
// elements whose bits differ still count as equal.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>

#include "compare/tensor.h"

namespace memdet::cli {

struct ToleranceOptions {
  double atol = 0;
  double rtol = 0;
  uint64_t max_ulp = 0;
  bool equal_nan = false;
};

// Registers --atol, --rtol, --max-ulp and --equal-nan. `scope` ends the
// help of --atol: which files the rule applies to.
void add_tolerance_options(CLI::App& app, ToleranceOptions& options, const std::string& scope);

// The tolerance the flags ask for. Throws a usage error for a negative or
// non-finite atol or rtol.
compare::Tolerance tolerance_from(const ToleranceOptions& options);

}  // namespace memdet::cli
