// Comparing text artifacts, above all training logs, line by line and
// number by number.
//
// Two runs' loss logs rarely differ as text alone: "loss 0.693147" against
// "loss 0.693148" is one digit, but whether that digit is one rounding step
// of a float32 loss, or a float64 loss printed with six digits, decides what
// the difference means. So numbers are parsed out of each line and measured
// in the unit their printing allows: in ULP of the dtype the values came
// from when they were printed with enough digits to identify that value,
// and otherwise in units of the last digit printed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace re2 {
class RE2;
}

namespace memdet::compare {

struct TextOptions {
  // RE2 regexes; every match is replaced by "<masked>" before lines
  // are compared, so that timings, dates and hostnames do not count.
  std::vector<std::string> masks;
  // Optional regex with one capture group, the step number, e.g.
  // "^step (\d+)". It names the step in which the logs first diverge.
  std::string step_regex;
  // The dtype in whose ULP differences are measured. kInfer picks float32 when
  // every number in both files could have been printed from a float32.
  enum class Dtype { kInfer, kFloat32, kFloat64 } dtype = Dtype::kInfer;
};

// Replaces every match of a mask with this.
inline constexpr std::string_view kMaskedText = "<masked>";
// Replaces a run's own directory, which its stdout often prints.
inline constexpr std::string_view kRunDirText = "{run_dir}";
// Masks and step regexes are RE2 patterns: RE2 matches in time linear in
// the text, so a pattern such as "(a+)+$" cannot stall a comparison the way
// a backtracking engine does (measured: std::regex took 32 s on a 29-byte
// line). RE2's syntax is Perl's without backreferences and lookaround.
using Mask = std::shared_ptr<const re2::RE2>;
using Masks = std::vector<Mask>;

// The text after run_dir (when not empty) has become "{run_dir}" and every
// mask match "<masked>": what memdet digests and compares. Masks apply to
// each piece between line breaks on its own, so a match never spans a line
// break and "^" and "$" anchor at the piece's ends.
std::string normalize_text(std::string_view text, const Masks& masks, std::string_view run_dir);

// Compiles mask patterns, each checked on its own, into one alternation, so
// that every mask applies to the text as written. The error names the
// pattern at fault, also when it matches the empty string, which would
// insert "<masked>" between every two characters.
Result<Masks> compile_masks(const std::vector<std::string>& patterns);

// Compiles a step regex; it must have a capture group, the step number.
Result<Mask> compile_step_regex(const std::string& pattern);

// A line's tokens: it is split on whitespace and on , ; : = ( ) [ ] { } and
// quotes. Signs, dots and exponents stay inside tokens, so "1e-05", "-3.5"
// and "0x1.8p+1" each remain one token.
std::vector<std::string_view> split_tokens(std::string_view line);

// A token that reads as a number as a whole.
struct ParsedNumber {
  enum class Form {
    kDecimal,  // [+-]digits[.digits][e[+-]digits]
    kHex,      // C99 hex float, [+-]0x<hex digits>[.<hex digits>]p[+-]digits
    kSpecial,  // inf, infinity or nan in any case, with an optional sign
  };
  double value = 0;  // the nearest double
  Form form = Form::kDecimal;
  // Decimal only: digits of the mantissa from the first non-zero one, so
  // "0.00123" has 3 and "1.2300" has 5; a zero has none.
  int significant_digits = 0;
  // Decimal only: the power of ten of the last digit printed, -8 for
  // "1.234e-05", -1 for "0.5", 0 for "12".
  int unit_exponent = 0;
  // Decimal only: the token is an integer, [+-]digits with no '.' and no
  // exponent, as step counts, sample counts and seeds print. Two integers
  // compare exactly, never through a double.
  bool integer = false;
  // An integer's value when it fits in int64_t; longer ones compare digit
  // by digit.
  std::optional<int64_t> exact;
  std::string_view text;  // the token, viewing the caller's string
};

// Parses a token as a number, independently of the locale; std::nullopt
// when the token is text, as "nanny", "fc1.weight", "v1.2.3" and
// "2026-12-03" are.
std::optional<ParsedNumber> parse_number(std::string_view token);

// One step of a log in the table of how a difference grows: the numbers of
// its lines that differ, and by how much at most.
struct TextStepRow {
  std::string step;      // the step regex's capture
  uint64_t ordinal = 0;  // steps since the first whose numbers differ
  uint64_t numbers_differing = 0;
  double max_abs = 0;  // over differing pairs of finite numbers
};

// How two text files differ. Lines are compared after normalize_text; the
// numbers in lines of equal token counts are compared pairwise.
struct TextDiff {
  uint64_t lines_a = 0;
  uint64_t lines_b = 0;
  // Lines both files have whose normalized texts differ.
  uint64_t differing_lines = 0;
  // Lines one file has past the other's end.
  uint64_t extra_lines = 0;
  // Both files have lines and exactly one ends in a line break: the lines
  // can all agree while the digests do not.
  bool final_newline_differs = false;

  // The first line, 1-based, that differs or that only one file has; 0 when
  // the lines agree. Its normalized texts, cut to about 200 bytes; a side
  // past its file's end is empty.
  uint64_t first_line = 0;
  std::string first_text_a;
  std::string first_text_b;
  // The step of the first differing line: the capture of step_regex in the
  // nearest line of file a at or above it that matches. Empty when
  // step_regex is, or when no such line exists.
  std::optional<std::string> first_step;
  // The same for the first line in which numbers differ, which may come
  // after lines that differ in text only; 0 and empty when no number does.
  uint64_t first_number_line = 0;
  std::optional<std::string> first_number_step;
  // With a step regex: from the first step whose numbers differ, the steps
  // 0, 1, 2, 4, 8, ... after it and the last one, as the first file names
  // them.
  std::vector<TextStepRow> growth;
  // Whether a step regex was given, and whether it matched any line of the
  // first file.
  bool step_regex_given = false;
  bool step_matched = false;

  // Lines whose token counts differ; their tokens are not paired, since a
  // count that differs shifts every token after the change.
  uint64_t token_count_lines = 0;
  uint64_t first_token_count_line = 0;  // 0 when none

  // Token pairs in which both are numbers, and those whose values differ
  // (a NaN against a NaN does not; +0 against -0 does).
  uint64_t numbers_compared = 0;
  uint64_t numbers_differing = 0;
  // Over differing pairs of finite numbers; rel is |a - b| / max(|a|, |b|).
  double max_abs = 0;
  double max_rel = 0;

  // "float32" or "float64", and whether the values chose it. Integers are
  // no evidence either way.
  std::string dtype;
  bool dtype_inferred = false;
  // Differing finite pairs in which both tokens identify their value in
  // dtype: hex floats, decimals with at least 9 (float32) or 17 (float64)
  // significant digits, and decimals one digit shorter that are the
  // shortest form of their value, as Python's repr and numpy print. The
  // largest distance in ULP of dtype among them.
  uint64_t ulp_numbers = 0;
  uint64_t max_ulp = 0;
  // The other differing finite pairs, measured in units of the last digit
  // printed (of the coarser token when the two differ), rounded to nearest:
  // "0.123457" against "0.123458" is 1.
  uint64_t digit_numbers = 0;
  double max_digit_units = 0;

  // Differing pairs in which both tokens are integers. They are compared
  // as integers, exactly, and count toward neither ulp_numbers nor
  // digit_numbers: "123456789012345678" against "123456789012345679" is a
  // difference of 1, though both round to one double. The largest
  // difference among the pairs that fit in int64_t; those also count toward
  // max_abs and max_rel.
  uint64_t integer_numbers = 0;
  uint64_t max_integer_difference = 0;
  // Of the integer pairs, those with a token beyond int64_t: compared digit
  // by digit (leading zeros and a '+' aside), with no difference measured.
  uint64_t wide_integer_numbers = 0;

  // Pairs in which exactly one value is NaN, and pairs of unequal values of
  // which one is infinite. Neither counts toward the maxima above.
  uint64_t nan_mismatch = 0;
  uint64_t inf_mismatch = 0;
  // Token pairs, not both numbers, whose texts differ.
  uint64_t text_tokens_differing = 0;
};

// Whether a file reads as text over its first 8 KiB: UTF-8 without control
// characters other than tabs, line breaks, form feeds and escapes.
bool looks_like_text(const std::string& path);

// Compares two text files, reading each a line at a time so that memory
// does not grow with the file. run_dir_a and run_dir_b are the directories
// of the runs that wrote them, replaced before the masks apply (see
// normalize_text). An error names the file or the regex at fault.
Result<TextDiff> compare_text(const std::string& path_a, const std::string& path_b,
                              const TextOptions& options, std::string_view run_dir_a,
                              std::string_view run_dir_b);

}  // namespace memdet::compare
