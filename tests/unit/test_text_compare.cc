#include "compare/text.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace memdet::compare {
namespace {

class TextFiles : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "memdet-text-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  TextDiff compare(const std::string& a, const std::string& b, const TextOptions& options = {},
                   std::string_view run_dir_a = {}, std::string_view run_dir_b = {}) const {
    auto diff = compare_text(write("a.log", a), write("b.log", b), options, run_dir_a, run_dir_b);
    EXPECT_TRUE(diff.ok()) << diff.error().message;
    return diff.ok() ? *diff : TextDiff{};
  }

  std::string dir_;
};

std::string printed(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

double number(std::string_view token) {
  const auto parsed = parse_number(token);
  EXPECT_TRUE(parsed.has_value()) << token;
  return parsed ? parsed->value : -12345.0;
}

TEST(TextNumbers, ReadsHexFloats) {
  EXPECT_EQ(number("0x1.8p+1"), 3.0);
  EXPECT_EQ(number("-0x1p-3"), -0.125);
  EXPECT_EQ(number("0X1.FFFFFEp+127"), static_cast<double>(std::numeric_limits<float>::max()));
  EXPECT_EQ(parse_number("0x1.8p+1")->form, ParsedNumber::Form::kHex);
}

// The readings std::from_chars gives these tokens in libstdc++ 12, which is
// why hex floats do not go through it.
TEST(TextNumbers, AvoidsFromCharsHexTraps) {
  const std::string hex = "0x1.8p+1";
  double value = -1;
  std::from_chars(hex.data(), hex.data() + hex.size(), value);
  EXPECT_NE(value, 3.0);
  const std::string decimal = "1e-05";
  std::from_chars(decimal.data(), decimal.data() + decimal.size(), value, std::chars_format::hex);
  EXPECT_NE(value, 1e-05);

  EXPECT_EQ(number("1e-05"), 1e-05);
  EXPECT_EQ(number("0x1.8p+1"), 3.0);
}

TEST(TextNumbers, ReadsDecimals) {
  EXPECT_EQ(number("1e-05"), 1e-05);
  EXPECT_EQ(number("-3.5"), -3.5);
  EXPECT_EQ(number("+2"), 2.0);
  EXPECT_EQ(number(".5"), 0.5);
  EXPECT_EQ(number("1."), 1.0);
  EXPECT_EQ(number("0.6931471805599453"), 0.6931471805599453);
  EXPECT_EQ(number("1e400"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(number("1e-400"), 0.0);
}

TEST(TextNumbers, ReadsInfinitiesAndNans) {
  EXPECT_EQ(number("inf"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(number("-inf"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(number("Infinity"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(number("+INF"), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(number("nan")));
  EXPECT_TRUE(std::isnan(number("NaN")));
  EXPECT_TRUE(std::signbit(number("-nan")));
  EXPECT_EQ(parse_number("nan")->form, ParsedNumber::Form::kSpecial);
}

TEST(TextNumbers, LeavesWordsAsText) {
  for (const char* text :
       {"nanny", "banana", "infinite", "fc1.weight", "2026-12-03", "v1.2.3", "1e",
        "e5",    "1.2.3",  "-",        ".",          "0x1f",       "0x1p",   "0xp1",
        "1e+",   "12ms",   "--",       "+-1",        "0.5%",       "nan1",   "1_000"}) {
    EXPECT_FALSE(parse_number(text).has_value()) << text;
  }
}

TEST(TextNumbers, CountsSignificantDigitsAndTheLastDigitsUnit) {
  EXPECT_EQ(parse_number("0.00123")->significant_digits, 3);
  EXPECT_EQ(parse_number("1.2300")->significant_digits, 5);
  EXPECT_EQ(parse_number("123")->significant_digits, 3);
  EXPECT_EQ(parse_number("-0.6931471805599453")->significant_digits, 16);
  EXPECT_EQ(parse_number("1.234e-05")->unit_exponent, -8);
  EXPECT_EQ(parse_number("0.5")->unit_exponent, -1);
  EXPECT_EQ(parse_number("12")->unit_exponent, 0);
  EXPECT_EQ(parse_number("1.5e3")->unit_exponent, 2);
}

TEST(TextNumbers, TellsIntegersApart) {
  EXPECT_TRUE(parse_number("42")->integer);
  EXPECT_EQ(parse_number("42")->exact, 42);
  EXPECT_EQ(parse_number("-7")->exact, -7);
  EXPECT_EQ(parse_number("+5")->exact, 5);
  EXPECT_EQ(parse_number("-9223372036854775808")->exact, std::numeric_limits<int64_t>::min());
  for (const char* not_integer : {"1.", "1.0", "1e3", ".5", "inf", "nan", "0x1p+3"}) {
    EXPECT_FALSE(parse_number(not_integer)->integer) << not_integer;
  }
  const auto wide = parse_number("99999999999999999999");
  ASSERT_TRUE(wide.has_value());
  EXPECT_TRUE(wide->integer);
  EXPECT_FALSE(wide->exact.has_value());
}

TEST(TextTokens, SplitsOnSeparatorsButKeepsNumbersWhole) {
  const std::vector<std::string_view> expected = {"step", "3",        "loss", "1e-05", "lr", "-3.5",
                                                  "x",    "0x1.8p+1", "y",    "-inf",  "z",  "+2"};
  EXPECT_EQ(split_tokens("step 3: loss=1e-05, lr=(-3.5) [x]{0x1.8p+1} 'y'=\"-inf\";z=+2"),
            expected);
  const std::vector<std::string_view> time = {"at", "12", "30", "05", "on", "2026-12-03"};
  EXPECT_EQ(split_tokens("  at 12:30:05\ton 2026-12-03\r"), time);
  EXPECT_TRUE(split_tokens(" ,;: ").empty());
}

TEST(TextMasks, ReplaceEveryMatch) {
  auto masks = compile_masks({R"(\d+\.\d+s)"});
  ASSERT_TRUE(masks.ok()) << masks.error().message;
  EXPECT_EQ(normalize_text("step 1 took 0.52s, io 1.25s\nstep 2 took 3.10s\n", *masks, ""),
            "step 1 took <masked>, io <masked>\nstep 2 took <masked>\n");
}

TEST(TextMasks, AnchorAtEachLine) {
  auto masks = compile_masks({"^time \\S+"});
  ASSERT_TRUE(masks.ok());
  EXPECT_EQ(normalize_text("time 1\nloss time 2\ntime 3", *masks, ""),
            "<masked>\nloss time 2\n<masked>");
}

TEST(TextMasks, EveryMaskAppliesToTheTextAsWritten) {
  // Applied in turn, the second mask would match the marker the first one
  // wrote, and a line would grow with every mask.
  auto masks = compile_masks({R"(\d)", "[a-z]"});
  ASSERT_TRUE(masks.ok()) << masks.error().message;
  EXPECT_EQ(normalize_text("a1", *masks, ""), "<masked><masked>");
}

TEST(TextMasks, NameTheBadPattern) {
  auto bad = compile_masks({"ok", "(unclosed"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("(unclosed"), std::string::npos) << bad.error().message;

  auto empty = compile_masks({"x*"});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("x*"), std::string::npos) << empty.error().message;
}

TEST(TextMasks, ApplyToPiecesOfAnyLength) {
  auto masks = compile_masks({R"(\S+)"});
  ASSERT_TRUE(masks.ok());
  const std::string word(200000, 'x');
  EXPECT_EQ(normalize_text(word + "\nshort", *masks, ""), "<masked>\n<masked>");
  EXPECT_EQ(normalize_text("a\rb", *masks, ""), "<masked>\r<masked>");
}

TEST(TextMasks, BacktrackingPatternsRunInLinearTime) {
  // A backtracking engine takes exponential time here; the test finishing
  // at all is the check.
  auto masks = compile_masks({"(a+)+$", "(?:a|aa)*c"});
  ASSERT_TRUE(masks.ok()) << masks.error().message;
  const std::string no_match = std::string(5000, 'a') + "b";
  EXPECT_EQ(normalize_text(no_match, *masks, ""), no_match);
  EXPECT_EQ(normalize_text(std::string(5000, 'a'), *masks, ""), "<masked>");
}

TEST(TextMasks, RefusesPatternsThatMatchNothing) {
  for (const char* pattern : {"x*", "\\b", "(?:)", "a?"}) {
    EXPECT_FALSE(compile_masks({pattern}).ok()) << pattern;
  }
  EXPECT_FALSE(compile_masks({"(?=t)"}).ok()) << "lookahead is not RE2 syntax";
  EXPECT_TRUE(compile_masks({"t=\\d+"}).ok());
}

TEST(TextNormalize, ReplacesTheRunDirectoryFirst) {
  auto masks = compile_masks({"run[0-9]"});
  ASSERT_TRUE(masks.ok());
  EXPECT_EQ(normalize_text("saved /tmp/x/run3/ckpt.pt", *masks, "/tmp/x/run3"),
            "saved {run_dir}/ckpt.pt");
  EXPECT_EQ(normalize_text("no dir here", {}, ""), "no dir here");
}

TEST_F(TextFiles, IdenticalFilesDoNotDiffer) {
  const std::string log = "step 1 loss 0.693147\nstep 2 loss 0.5\n";
  const TextDiff diff = compare(log, log);
  EXPECT_EQ(diff.lines_a, 2u);
  EXPECT_EQ(diff.lines_b, 2u);
  EXPECT_EQ(diff.differing_lines, 0u);
  EXPECT_EQ(diff.extra_lines, 0u);
  EXPECT_EQ(diff.first_line, 0u);
  EXPECT_EQ(diff.numbers_compared, 4u);
  EXPECT_EQ(diff.numbers_differing, 0u);
  EXPECT_FALSE(diff.final_newline_differs);
}

TEST_F(TextFiles, SixDigitLogDiffersInLastDigits) {
  const TextDiff diff = compare("epoch 1\nloss 0.693147\n", "epoch 1\nloss 0.693148\n");
  EXPECT_EQ(diff.differing_lines, 1u);
  EXPECT_EQ(diff.first_line, 2u);
  EXPECT_EQ(diff.first_text_a, "loss 0.693147");
  EXPECT_EQ(diff.first_text_b, "loss 0.693148");
  EXPECT_EQ(diff.numbers_compared, 2u);
  EXPECT_EQ(diff.numbers_differing, 1u);
  EXPECT_EQ(diff.digit_numbers, 1u);
  EXPECT_EQ(diff.max_digit_units, 1.0);
  EXPECT_EQ(diff.ulp_numbers, 0u);
  EXPECT_NEAR(diff.max_abs, 1e-06, 1e-15);
}

TEST_F(TextFiles, CoarserTokenSetsTheDigitUnit) {
  const TextDiff diff = compare("x 0.12\n", "x 0.1234\n");
  EXPECT_EQ(diff.digit_numbers, 1u);
  // 0.0034 in units of 0.01: below half a unit, kept as the fraction so
  // that a difference never reads as none.
  EXPECT_NEAR(diff.max_digit_units, 0.34, 1e-9);
  const TextDiff wider = compare("x 0.12\n", "x 0.1456\n");
  EXPECT_EQ(wider.max_digit_units, 3.0);
}

TEST_F(TextFiles, ReprLogDiffersInFloat64Ulp) {
  // math.log(2) and the next double, as Python's repr prints them: 16
  // digits, the shortest that read back.
  const TextDiff diff = compare("loss 0.6931471805599453\n", "loss 0.6931471805599454\n");
  EXPECT_EQ(diff.dtype, "float64");
  EXPECT_TRUE(diff.dtype_inferred);
  EXPECT_EQ(diff.ulp_numbers, 1u);
  EXPECT_EQ(diff.max_ulp, 1u);
  EXPECT_EQ(diff.digit_numbers, 0u);

  const TextDiff seventeen = compare("loss 0.69314718055994529\n", "loss 0.69314718055994540\n");
  EXPECT_EQ(seventeen.dtype, "float64");
  EXPECT_EQ(seventeen.ulp_numbers, 1u);
  EXPECT_EQ(seventeen.max_ulp, 1u);
}

TEST_F(TextFiles, NineDigitFloat32LogDiffersInFloat32Ulp) {
  const float a = std::log(2.0f);
  const float b = std::nextafter(a, 1.0f);
  const TextDiff diff =
      compare("loss " + printed("%.9g", a) + "\n", "loss " + printed("%.9g", b) + "\n");
  EXPECT_EQ(diff.dtype, "float32");
  EXPECT_TRUE(diff.dtype_inferred);
  EXPECT_EQ(diff.ulp_numbers, 1u);
  EXPECT_EQ(diff.max_ulp, 1u);
}

TEST_F(TextFiles, Float32ValuesPrintedAsDoublesStayFloat32) {
  // float(loss) of a float32 tensor, printed with repr: exact float32 values.
  const float a = std::log(2.0f);
  const float b = std::nextafter(a, 1.0f);
  const std::string log_a = "loss " + printed("%.17g", a) + "\n";
  const std::string log_b = "loss " + printed("%.17g", b) + "\n";

  const TextDiff inferred = compare(log_a, log_b);
  EXPECT_EQ(inferred.dtype, "float32");
  EXPECT_EQ(inferred.max_ulp, 1u);

  TextOptions as_double;
  as_double.dtype = TextOptions::Dtype::kFloat64;
  const TextDiff forced = compare(log_a, log_b, as_double);
  EXPECT_EQ(forced.dtype, "float64");
  EXPECT_FALSE(forced.dtype_inferred);
  EXPECT_EQ(forced.max_ulp, 536870912u);  // 2^29: the bits float64 has beyond float32
}

TEST_F(TextFiles, OneFloat64OnlyValueMakesTheFileFloat64) {
  const std::string common = "lr 0.5\nloss 0.693147182\n";
  EXPECT_EQ(compare(common, common).dtype, "float32");
  EXPECT_EQ(compare(common + "x 0.1\n", common + "x 0.1\n").dtype, "float32");
  EXPECT_EQ(compare(common + "x 0.1000000000000000055511\n", common).dtype, "float64");
  EXPECT_EQ(compare(common, common + "x 0.6931471805599453\n").dtype, "float64");
}

TEST_F(TextFiles, HexFloatsDifferInUlp) {
  const TextDiff diff = compare("w 0x1.8p+1\n", "w 0x1.8000000000001p+1\n");
  EXPECT_EQ(diff.dtype, "float64");
  EXPECT_EQ(diff.ulp_numbers, 1u);
  EXPECT_EQ(diff.max_ulp, 1u);
}

TEST_F(TextFiles, IntegersDifferExactlyWhereDoublesCannotTell) {
  // Both round to the double 123456789012345680.
  const TextDiff diff = compare("seen 123456789012345678\n", "seen 123456789012345679\n");
  EXPECT_EQ(diff.numbers_compared, 1u);
  EXPECT_EQ(diff.numbers_differing, 1u);
  EXPECT_EQ(diff.integer_numbers, 1u);
  EXPECT_EQ(diff.max_integer_difference, 1u);
  EXPECT_EQ(diff.wide_integer_numbers, 0u);
  EXPECT_EQ(diff.ulp_numbers, 0u);
  EXPECT_EQ(diff.digit_numbers, 0u);
  EXPECT_EQ(diff.max_abs, 1.0);
  EXPECT_EQ(diff.first_number_line, 1u);
}

TEST_F(TextFiles, StepCountsDifferAsIntegersNotUlp) {
  const TextDiff diff =
      compare("step 10 loss 0.5\nstep 20 loss 0.25\n", "step 10 loss 0.5\nstep 23 loss 0.25\n");
  EXPECT_EQ(diff.numbers_differing, 1u);
  EXPECT_EQ(diff.integer_numbers, 1u);
  EXPECT_EQ(diff.max_integer_difference, 3u);
  EXPECT_EQ(diff.ulp_numbers, 0u);
  EXPECT_EQ(diff.digit_numbers, 0u);
  EXPECT_NEAR(diff.max_rel, 3.0 / 23.0, 1e-12);
}

TEST_F(TextFiles, IntegerDifferenceSpansTheWholeInt64Range) {
  const TextDiff diff = compare("n -9223372036854775808\n", "n 9223372036854775807\n");
  EXPECT_EQ(diff.integer_numbers, 1u);
  EXPECT_EQ(diff.max_integer_difference, std::numeric_limits<uint64_t>::max());
}

TEST_F(TextFiles, IntegersBeyondInt64CompareByDigits) {
  const TextDiff diff =
      compare("id 123456789012345678901234567890 n 5\n", "id 123456789012345678901234567891 n 5\n");
  EXPECT_EQ(diff.numbers_compared, 2u);
  EXPECT_EQ(diff.numbers_differing, 1u);
  EXPECT_EQ(diff.integer_numbers, 1u);
  EXPECT_EQ(diff.wide_integer_numbers, 1u);
  EXPECT_EQ(diff.max_integer_difference, 0u);
  EXPECT_EQ(diff.max_abs, 0.0);
  EXPECT_EQ(diff.ulp_numbers + diff.digit_numbers, 0u);

  // Spelled differently, the same integer: the line differs, no number does.
  const TextDiff same = compare("id +000123456789012345678901234567890 z -0\n",
                                "id 123456789012345678901234567890 z 0\n");
  EXPECT_EQ(same.differing_lines, 1u);
  EXPECT_EQ(same.numbers_compared, 2u);
  EXPECT_EQ(same.numbers_differing, 0u);
}

TEST_F(TextFiles, AnIntegerAgainstADecimalComparesAsNumbers) {
  const TextDiff diff = compare("x 3\n", "x 3.5\n");
  EXPECT_EQ(diff.numbers_differing, 1u);
  EXPECT_EQ(diff.integer_numbers, 0u);
  EXPECT_EQ(diff.digit_numbers, 1u);
}

TEST_F(TextFiles, IntegersDoNotDecideTheDtype) {
  // 16777217 is no float32, but it is a step count, not a float.
  const std::string log = "step 16777217 loss 0.693147182\n";
  EXPECT_EQ(compare(log, log).dtype, "float32");
}

TEST_F(TextFiles, CountsNanAndInfMismatches) {
  const TextDiff diff = compare("a nan b inf c nan d 1\n", "a 1.5 b 2 c -nan d inf\n");
  EXPECT_EQ(diff.numbers_compared, 4u);
  EXPECT_EQ(diff.numbers_differing, 3u);
  EXPECT_EQ(diff.nan_mismatch, 1u);
  EXPECT_EQ(diff.inf_mismatch, 2u);
  EXPECT_EQ(diff.max_abs, 0.0);
  EXPECT_EQ(diff.text_tokens_differing, 0u);
}

TEST_F(TextFiles, CountsTextTokenDifferences) {
  const TextDiff diff =
      compare("layer fc1.weight ok 2026-12-03 nanny\n", "layer fc2.weight ok 2026-12-04 nan\n");
  EXPECT_EQ(diff.numbers_compared, 0u);
  EXPECT_EQ(diff.text_tokens_differing, 3u);
}

TEST_F(TextFiles, ReportsLinesWhoseTokenCountsDiffer) {
  const TextDiff diff =
      compare("a 1\nloss 0.5\nb 2\nc 3 4\n", "a 1\nloss nan (skipped)\nb 2\nc 3\n");
  EXPECT_EQ(diff.differing_lines, 2u);
  EXPECT_EQ(diff.token_count_lines, 2u);
  EXPECT_EQ(diff.first_token_count_line, 2u);
  EXPECT_EQ(diff.first_line, 2u);
  EXPECT_EQ(diff.nan_mismatch, 0u);
  EXPECT_EQ(diff.numbers_differing, 0u);
}

TEST_F(TextFiles, NamesTheStepOfTheFirstDifference) {
  TextOptions options;
  options.step_regex = R"(^step (\d+))";
  const std::string head = "start\nstep 1\n  loss 0.5\nstep 2\n";
  const TextDiff diff = compare(head + "  loss 0.25\nstep 3\n  loss 0.1\n",
                                head + "  loss 0.26\nstep 3\n  loss 0.2\n", options);
  ASSERT_TRUE(diff.first_step.has_value());
  EXPECT_EQ(*diff.first_step, "2");
  EXPECT_EQ(diff.first_line, 5u);
  EXPECT_EQ(diff.differing_lines, 2u);

  const TextDiff on_step_line = compare("step 7 loss 0.5\n", "step 7 loss 0.6\n", options);
  ASSERT_TRUE(on_step_line.first_step.has_value());
  EXPECT_EQ(*on_step_line.first_step, "7");

  const TextDiff before_any_step = compare("warmup 1\nstep 1\n", "warmup 2\nstep 1\n", options);
  EXPECT_FALSE(before_any_step.first_step.has_value());
}

TEST_F(TextFiles, NamesTheStepWhereNumbersFirstDiffer) {
  TextOptions options;
  options.step_regex = R"(^step (\d+))";
  // Step 1 differs in a word only; the numbers part at step 2.
  const TextDiff diff = compare("step 1 loss 0.5 host alpha\nstep 2 loss 0.25\n",
                                "step 1 loss 0.5 host beta\nstep 2 loss 0.26\n", options);
  EXPECT_EQ(diff.first_line, 1u);
  ASSERT_TRUE(diff.first_step.has_value());
  EXPECT_EQ(*diff.first_step, "1");
  EXPECT_EQ(diff.first_number_line, 2u);
  ASSERT_TRUE(diff.first_number_step.has_value());
  EXPECT_EQ(*diff.first_number_step, "2");

  const TextDiff text_only = compare("step 1 a\n", "step 1 b\n", options);
  EXPECT_EQ(text_only.first_number_line, 0u);
  EXPECT_FALSE(text_only.first_number_step.has_value());
}

TEST_F(TextFiles, RefusesAStepRegexWithoutAGroup) {
  TextOptions options;
  options.step_regex = "^step \\d+";
  auto diff = compare_text(write("a.log", "x"), write("b.log", "x"), options, "", "");
  ASSERT_FALSE(diff.ok());
  EXPECT_NE(diff.error().message.find("^step"), std::string::npos);
}

TEST_F(TextFiles, MaskedTimingsMakeLinesEqual) {
  TextOptions options;
  options.masks = {R"(\d+\.\d+s)"};
  const TextDiff diff =
      compare("step 1 loss 0.5 took 1.23s\n", "step 1 loss 0.5 took 1.31s\n", options);
  EXPECT_EQ(diff.differing_lines, 0u);
  EXPECT_EQ(diff.first_line, 0u);

  const TextDiff unmasked = compare("took 1.23s\n", "took 1.31s\n");
  EXPECT_EQ(unmasked.differing_lines, 1u);
  EXPECT_EQ(unmasked.text_tokens_differing, 1u);
}

TEST_F(TextFiles, RunDirectoriesAreNormalized) {
  const TextDiff diff =
      compare("saved /runs/0/ckpt.pt\n", "saved /runs/1/ckpt.pt\n", {}, "/runs/0", "/runs/1");
  EXPECT_EQ(diff.differing_lines, 0u);
  const TextDiff crossed =
      compare("saved /runs/1/ckpt.pt\n", "saved /runs/1/ckpt.pt\n", {}, "/runs/0", "/runs/1");
  EXPECT_EQ(crossed.differing_lines, 1u);
  EXPECT_EQ(crossed.first_text_b, "saved {run_dir}/ckpt.pt");
}

TEST_F(TextFiles, ComparesTheCommonPrefixOfUnequalLengths) {
  const TextDiff longer_b = compare("a\nb\n", "a\nb\nc\nd\n");
  EXPECT_EQ(longer_b.lines_a, 2u);
  EXPECT_EQ(longer_b.lines_b, 4u);
  EXPECT_EQ(longer_b.differing_lines, 0u);
  EXPECT_EQ(longer_b.extra_lines, 2u);
  EXPECT_EQ(longer_b.first_line, 3u);
  EXPECT_EQ(longer_b.first_text_a, "");
  EXPECT_EQ(longer_b.first_text_b, "c");

  const TextDiff earlier = compare("a\nx\nc\n", "a\nb\n");
  EXPECT_EQ(earlier.differing_lines, 1u);
  EXPECT_EQ(earlier.extra_lines, 1u);
  EXPECT_EQ(earlier.first_line, 2u);
}

TEST_F(TextFiles, NoticesAMissingFinalNewline) {
  const TextDiff diff = compare("a\nb\n", "a\nb");
  EXPECT_EQ(diff.lines_a, 2u);
  EXPECT_EQ(diff.lines_b, 2u);
  EXPECT_EQ(diff.differing_lines, 0u);
  EXPECT_TRUE(diff.final_newline_differs);
}

TEST_F(TextFiles, CutsLongLinesInTheReport) {
  const std::string line_a(1000, 'a');
  const TextDiff diff = compare(line_a + "\n", line_a + "b\n");
  EXPECT_EQ(diff.first_line, 1u);
  EXPECT_LT(diff.first_text_a.size(), 210u);
  EXPECT_EQ(diff.first_text_a.substr(0, 10), "aaaaaaaaaa");
}

TEST_F(TextFiles, ReadsLinesLongerThanTheReadBuffer) {
  std::string log;
  for (int i = 0; i < 20000; ++i) log += "step " + std::to_string(i) + " loss 0.5\n";
  const std::string long_line(300000, 'z');
  const TextDiff diff = compare(log + long_line + "\n", log + long_line + "\n");
  EXPECT_EQ(diff.lines_a, 20001u);
  EXPECT_EQ(diff.differing_lines, 0u);
  EXPECT_EQ(diff.numbers_compared, 40000u);
}

TEST_F(TextFiles, ErrorsNameTheFile) {
  const std::string missing = dir_ + "/missing.log";
  auto diff = compare_text(write("a.log", "x\n"), missing, {}, "", "");
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.error().message.rfind(missing + ": ", 0), 0u) << diff.error().message;

  auto directory = compare_text(dir_, write("a.log", "x\n"), {}, "", "");
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, dir_ + ": not a regular file");
}

}  // namespace
}  // namespace memdet::compare
