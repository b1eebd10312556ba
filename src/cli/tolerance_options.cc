#include "cli/tolerance_options.h"

#include <cmath>
#include <string>
#include <utility>

#include "cli/commands.h"
#include "compare/finding_report.h"
#include "core/error.h"

namespace memdet::cli {

void add_tolerance_options(CLI::App& app, ToleranceOptions& options, const std::string& scope) {
  app.add_option("--atol", options.atol,
                 "elements count as equal when |a - b| <= atol + rtol * |b| (default 0)" + scope)
      ->type_name("X");
  app.add_option("--rtol", options.rtol, "the relative part of that rule (default 0)")
      ->type_name("X");
  app.add_option("--max-ulp", options.max_ulp,
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
  app.add_flag("--equal-nan", options.equal_nan,
               "NaNs whose payload bits differ count as equal within tolerance");
}

compare::Tolerance tolerance_from(const ToleranceOptions& options) {
  for (const auto& [flag, value] : {std::pair{"--atol", options.atol}, {"--rtol", options.rtol}}) {
    if (!std::isfinite(value) || value < 0) {
      throw usage_error(std::string(flag) + " " + compare::number_text(value) +
                        ": must be a finite number of at least 0");
    }
  }
  compare::Tolerance tolerance;
  tolerance.atol = options.atol;
  tolerance.rtol = options.rtol;
  tolerance.max_ulp = options.max_ulp;
  tolerance.equal_nan = options.equal_nan;
  return tolerance;
}

}  // namespace memdet::cli
