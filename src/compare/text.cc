#include "compare/text.h"

#include "core/sys.h"

#include <re2/re2.h>

#include <fcntl.h>
#include <locale.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "compare/ulp.h"

namespace memdet::compare {

namespace {

// Significant digits that identify every float32 and every float64 value:
// std::numeric_limits<T>::max_digits10.
constexpr int kRoundTripDigits32 = std::numeric_limits<float>::max_digits10;
constexpr int kRoundTripDigits64 = std::numeric_limits<double>::max_digits10;
// How much of a differing line the report shows.
constexpr size_t kMaxShownText = 200;
// Bounds the exponents kept from absurd tokens such as "1e999999999999",
// far past where every value has become zero or infinity.
constexpr int64_t kExponentLimit = 1'000'000;
// A float32's exact decimal expansion has at most 112 significant digits;
// a longer token cannot be a rounding of one.
constexpr int64_t kMaxFloat32Digits = 112;
constexpr size_t kReadChunk = 1 << 16;

// Where a line splits into tokens. '+', '-' and '.' are absent so that
// signed numbers, exponents and dotted names stay whole.
constexpr std::string_view kSeparators = " \t\n\v\f\r,;:=()[]{}'\"`";

bool is_separator(char c) { return kSeparators.find(c) != std::string_view::npos; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool equals_lower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c =
        text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
    if (c != lower[i]) return false;
  }
  return true;
}

size_t skip_digits(std::string_view text, size_t pos, bool (*digit)(char)) {
  while (pos < text.size() && digit(text[pos])) ++pos;
  return pos;
}

// Reads "[+-]digits" from pos to the end of text, saturating far beyond any
// exponent a double can use.
std::optional<int64_t> read_exponent(std::string_view text, size_t pos) {
  bool negative = false;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    negative = text[pos] == '-';
    ++pos;
  }
  if (pos == text.size()) return std::nullopt;
  int64_t value = 0;
  for (; pos < text.size(); ++pos) {
    if (!is_digit(text[pos])) return std::nullopt;
    value = std::min(value * 10 + (text[pos] - '0'), kExponentLimit);
  }
  return negative ? -value : value;
}

int clamp_to_int(int64_t value) {
  return static_cast<int>(std::clamp(value, -kExponentLimit, kExponentLimit));
}

// strtod's hex float reading without its locale. std::from_chars cannot
// stand in: as the standard specifies it, it refuses the "0x" prefix
// (reading "0x1.8p+1" as 0), and in hex mode it knows no decimal exponent
// (reading "1e-05" as 0x1e, that is 30).
locale_t c_locale() {
  static const locale_t locale = newlocale(LC_ALL_MASK, "C", nullptr);
  return locale;
}

template <typename Float>
std::optional<Float> parse_with_strtod(std::string_view token) {
  const locale_t locale = c_locale();
  if (locale == nullptr) return std::nullopt;
  const std::string terminated(token);
  char* end = nullptr;
  Float value;
  if constexpr (std::is_same_v<Float, float>) {
    value = strtof_l(terminated.c_str(), &end, locale);
  } else {
    value = strtod_l(terminated.c_str(), &end, locale);
  }
  if (end != terminated.c_str() + terminated.size()) return std::nullopt;
  return value;
}

// Decimals go through std::from_chars, exact and locale-free. It refuses a
// leading '+' and reports values beyond the type's range as an error, where
// strtod gives the infinity or zero (or subnormal) the value rounds to.
template <typename Float>
std::optional<Float> parse_decimal(std::string_view token) {
  std::string_view digits = token;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  Float value{};
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value,
                                         std::chars_format::general);
  if (ec == std::errc() && end == digits.data() + digits.size()) return value;
  return parse_with_strtod<Float>(token);
}

// An integer token's value; std::nullopt when it needs more than 64 bits.
std::optional<int64_t> parse_integer(std::string_view token) {
  std::string_view digits = token;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// An integer token as a sign and its digits without leading zeros, so that
// "+007" and "7", or "-0" and "0", read the same.
std::string canonical_integer(std::string_view token) {
  const bool negative = !token.empty() && token.front() == '-';
  if (!token.empty() && (token.front() == '+' || token.front() == '-')) token.remove_prefix(1);
  const size_t first = token.find_first_not_of('0');
  if (first == std::string_view::npos) return "0";
  return (negative ? "-" : "") + std::string(token.substr(first));
}

// |a - b| of two int64_t values, which always fits in uint64_t.
uint64_t integer_distance(int64_t a, int64_t b) {
  return a > b ? static_cast<uint64_t>(a) - static_cast<uint64_t>(b)
               : static_cast<uint64_t>(b) - static_cast<uint64_t>(a);
}

struct DecimalParts {
  std::string_view integer;
  std::string_view fraction;
  int64_t exponent = 0;
};

// Splits an unsigned decimal, digits[.digits][e[+-]digits] with at least one
// mantissa digit, into its parts; std::nullopt when text is anything else.
std::optional<DecimalParts> split_decimal(std::string_view text) {
  DecimalParts parts;
  size_t pos = skip_digits(text, 0, is_digit);
  parts.integer = text.substr(0, pos);
  if (pos < text.size() && text[pos] == '.') {
    const size_t start = pos + 1;
    pos = skip_digits(text, start, is_digit);
    parts.fraction = text.substr(start, pos - start);
  }
  if (parts.integer.empty() && parts.fraction.empty()) return std::nullopt;
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    const auto exponent = read_exponent(text, pos + 1);
    if (!exponent) return std::nullopt;
    parts.exponent = *exponent;
    pos = text.size();
  }
  if (pos != text.size()) return std::nullopt;
  return parts;
}

// Whether text, after "0x", is <hex digits>[.<hex digits>]p[+-]digits with
// at least one mantissa digit. The binary exponent is required, as in a C99
// hex floating constant and in what printf's %a writes, so that "0x1f" and
// addresses stay text.
bool is_hex_float_body(std::string_view text) {
  size_t pos = skip_digits(text, 0, is_hex_digit);
  size_t mantissa_digits = pos;
  if (pos < text.size() && text[pos] == '.') {
    const size_t start = pos + 1;
    pos = skip_digits(text, start, is_hex_digit);
    mantissa_digits += pos - start;
  }
  if (mantissa_digits == 0 || pos == text.size()) return false;
  if (text[pos] != 'p' && text[pos] != 'P') return false;
  return read_exponent(text, pos + 1).has_value();
}

// The significant digits of a decimal, from the first non-zero one.
std::string significant_digits(const DecimalParts& parts) {
  std::string digits;
  digits.reserve(parts.integer.size() + parts.fraction.size());
  digits.append(parts.integer).append(parts.fraction);
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  return digits;
}

// Digits and exponent of a value's scientific form, as std::to_chars writes
// it: the shortest that reads back when precision is empty, else correctly
// rounded to precision + 1 significant digits.
struct Scientific {
  std::string digits;
  int64_t exponent = 0;
};

template <typename Float>
std::optional<Scientific> scientific(Float value, std::optional<int> precision) {
  std::array<char, 256> buffer{};
  const auto [end, ec] = precision ? std::to_chars(buffer.data(), buffer.data() + buffer.size(),
                                                   value, std::chars_format::scientific, *precision)
                                   : std::to_chars(buffer.data(), buffer.data() + buffer.size(),
                                                   value, std::chars_format::scientific);
  if (ec != std::errc()) return std::nullopt;

  const std::string_view text(buffer.data(), static_cast<size_t>(end - buffer.data()));
  const size_t e = text.find('e');
  if (e == std::string_view::npos) return std::nullopt;
  Scientific out;
  for (const char c : text.substr(0, e)) {
    if (is_digit(c)) out.digits.push_back(c);
  }
  const auto exponent = read_exponent(text, e + 1);
  if (!exponent) return std::nullopt;
  out.exponent = *exponent;
  return out;
}

float as_float32(const ParsedNumber& number) {
  std::optional<float> value;
  switch (number.form) {
    case ParsedNumber::Form::kDecimal:
      value = parse_decimal<float>(number.text);
      break;
    case ParsedNumber::Form::kHex:
      value = parse_with_strtod<float>(number.text);
      break;
    case ParsedNumber::Form::kSpecial:
      break;
  }
  return value ? *value : static_cast<float>(number.value);
}

// Whether a float32 printer could have written the token: it holds a float32
// exactly, or it is one correctly rounded to the digits it shows. A float64
// value printed with enough digits to tell it apart from the nearest float32
// is neither.
bool could_be_float32(const ParsedNumber& number) {
  if (!std::isfinite(number.value)) return true;
  if (static_cast<double>(static_cast<float>(number.value)) == number.value) return true;
  if (number.form != ParsedNumber::Form::kDecimal) return false;

  const std::string_view unsigned_text = number.text.front() == '+' || number.text.front() == '-'
                                             ? number.text.substr(1)
                                             : number.text;
  const auto parts = split_decimal(unsigned_text);
  if (!parts) return false;
  const std::string digits = significant_digits(*parts);
  const auto digit_count = static_cast<int64_t>(digits.size());
  if (digit_count == 0 || digit_count > kMaxFloat32Digits) return false;

  const float nearest = std::fabs(as_float32(number));
  if (!std::isfinite(nearest) || nearest == 0) return false;
  const auto rounded = scientific(static_cast<double>(nearest), static_cast<int>(digit_count - 1));
  const int64_t leading_exponent =
      parts->exponent + static_cast<int64_t>(parts->integer.size()) -
      static_cast<int64_t>(parts->integer.size() + parts->fraction.size() - digits.size()) - 1;
  return rounded && rounded->digits == digits && rounded->exponent == leading_exponent;
}

enum class Width { k32, k64 };

// Whether the token tells its value in the given width apart from every
// other: hex floats always do, decimals with max_digits10 significant
// digits always do, and a decimal one digit shorter does when no shorter
// decimal reads as the same value, which is what shortest round-trip
// printers (Python's repr, numpy, std::to_chars) write for many values.
bool identifies_value(const ParsedNumber& number, Width width) {
  if (number.form == ParsedNumber::Form::kHex) return true;
  if (number.form != ParsedNumber::Form::kDecimal) return false;

  const int needed = width == Width::k32 ? kRoundTripDigits32 : kRoundTripDigits64;
  if (number.significant_digits >= needed) return true;
  if (number.significant_digits != needed - 1) return false;
  const auto shortest = width == Width::k32 ? scientific(as_float32(number), std::nullopt)
                                            : scientific(number.value, std::nullopt);
  return shortest && static_cast<int>(shortest->digits.size()) == number.significant_digits;
}

// |a - b| in units of the last digit of the coarser of two decimals,
// rounded to nearest, or the fraction itself when a difference is below
// half a unit (2.0 against 2.0000002), so it never reads as none; a hex
// float has no last decimal digit and leaves the unit to the other.
double last_digit_units(const ParsedNumber& a, const ParsedNumber& b, double difference) {
  const bool a_decimal = a.form == ParsedNumber::Form::kDecimal;
  const bool b_decimal = b.form == ParsedNumber::Form::kDecimal;
  int unit = 0;
  if (a_decimal && b_decimal) {
    unit = std::max(a.unit_exponent, b.unit_exponent);
  } else if (a_decimal || b_decimal) {
    unit = a_decimal ? a.unit_exponent : b.unit_exponent;
  }
  const double scaled =
      unit <= 0 ? difference * std::pow(10.0, -unit) : difference / std::pow(10.0, unit);
  const double rounded = std::round(scaled);
  return rounded == 0 && difference > 0 ? scaled : rounded;
}

std::string shown(std::string_view text) {
  if (text.size() <= kMaxShownText) return std::string(text);
  size_t cut = kMaxShownText;
  // Back off to the start of a UTF-8 sequence rather than split one.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "...";
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
}

// Normalizes one line, which holds no '\n', appending the result to out.
// Each piece between carriage returns is masked on its own, so every update
// of a progress bar is its own piece and "^" and "$" anchor at its ends.
void normalize_line(std::string_view line, const Masks& masks, std::string_view run_dir,
                    std::string& out) {
  std::string text(line);
  replace_all(text, run_dir, kRunDirText);
  if (masks.empty()) {
    out += text;
    return;
  }

  size_t start = 0;
  for (;;) {
    const size_t end = std::min(text.find('\r', start), text.size());
    std::string piece = text.substr(start, end - start);
    for (const Mask& mask : masks) {
      re2::RE2::GlobalReplace(&piece, *mask, std::string(kMaskedText));
    }
    out += piece;
    if (end == text.size()) break;
    out += '\r';
    start = end + 1;
  }
}

void split_into(std::string_view line, std::vector<std::string_view>& tokens) {
  tokens.clear();
  size_t pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && is_separator(line[pos])) ++pos;
    const size_t start = pos;
    while (pos < line.size() && !is_separator(line[pos])) ++pos;
    if (pos > start) tokens.push_back(line.substr(start, pos - start));
  }
}

// Reads a regular file a line at a time through a fixed buffer.
class LineReader {
 public:
  LineReader() = default;
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  ~LineReader() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status open(const std::string& path) {
    path_ = path;
    // O_NONBLOCK: a FIFO in the artifact's place must not stall the open.
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) return make_error(path + ": " + std::strerror(errno));
    struct stat info {};
    if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
      return make_error(path + ": not a regular file");
    }
    buffer_.resize(kReadChunk);
    return {};
  }

  // Reads the next line, without its '\n', into line; false past the end.
  Result<bool> next(std::string& line) {
    line.clear();
    bool partial = false;
    for (;;) {
      if (pos_ == end_) {
        if (at_end_) {
          if (partial) terminated_ = false;
          return partial;
        }
        const ssize_t got = ::read(fd_, buffer_.data(), buffer_.size());
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return make_error(path_ + ": " + std::strerror(errno));
        pos_ = 0;
        end_ = static_cast<size_t>(got);
        at_end_ = got == 0;
        continue;
      }

      const char* start = buffer_.data() + pos_;
      const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
      if (newline != nullptr) {
        line.append(start, newline);
        pos_ += static_cast<size_t>(newline - start) + 1;
        terminated_ = true;
        return true;
      }
      line.append(start, end_ - pos_);
      pos_ = end_;
      partial = true;
    }
  }

  // Whether the last line read ended in '\n'.
  bool terminated() const { return terminated_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<char> buffer_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool at_end_ = false;
  bool terminated_ = false;
};

// Differences as each dtype would measure them; the dtype is known only once
// every number has been read.
struct Measure {
  uint64_t ulp_numbers = 0;
  uint64_t max_ulp = 0;
  uint64_t digit_numbers = 0;
  double max_digit_units = 0;
};

class Comparison {
 public:
  explicit Comparison(TextOptions::Dtype dtype) : dtype_(dtype) {}

  // A line both files have and agree on: its numbers count as compared, and
  // as evidence of the dtype.
  void same_line(const std::vector<std::string_view>& tokens) {
    for (const std::string_view token : tokens) {
      const auto number = parse_number(token);
      if (!number) continue;
      ++diff_.numbers_compared;
      observe(*number);
    }
  }

  // A line only one file has.
  void lone_line(const std::vector<std::string_view>& tokens) {
    for (const std::string_view token : tokens) {
      if (const auto number = parse_number(token)) observe(*number);
    }
  }

  void differing_line(const std::vector<std::string_view>& a,
                      const std::vector<std::string_view>& b, uint64_t line_number) {
    if (a.size() != b.size()) {
      if (diff_.token_count_lines++ == 0) diff_.first_token_count_line = line_number;
      lone_line(a);
      lone_line(b);
      return;
    }
    for (size_t i = 0; i < a.size(); ++i) {
      const auto number_a = parse_number(a[i]);
      const auto number_b = parse_number(b[i]);
      if (number_a && number_b) {
        observe(*number_a);
        observe(*number_b);
        numbers(*number_a, *number_b);
      } else {
        if (number_a) observe(*number_a);
        if (number_b) observe(*number_b);
        if (a[i] != b[i]) ++diff_.text_tokens_differing;
      }
    }
  }

  TextDiff& diff() { return diff_; }

  // Settles the dtype and takes its measure.
  TextDiff finish() {
    const bool use_32 = dtype_ == TextOptions::Dtype::kFloat32 ||
                        (dtype_ == TextOptions::Dtype::kInfer && all_float32_);
    diff_.dtype = use_32 ? "float32" : "float64";
    diff_.dtype_inferred = dtype_ == TextOptions::Dtype::kInfer;
    const Measure& measure = use_32 ? as_32_ : as_64_;
    diff_.ulp_numbers = measure.ulp_numbers;
    diff_.max_ulp = measure.max_ulp;
    diff_.digit_numbers = measure.digit_numbers;
    diff_.max_digit_units = measure.max_digit_units;
    return std::move(diff_);
  }

 private:
  void observe(const ParsedNumber& number) {
    if (number.integer) return;
    if (dtype_ == TextOptions::Dtype::kInfer && all_float32_ && !could_be_float32(number)) {
      all_float32_ = false;
    }
  }

  void numbers(const ParsedNumber& a, const ParsedNumber& b) {
    ++diff_.numbers_compared;
    if (a.integer && b.integer) {
      integers(a, b);
      return;
    }
    const bool a_nan = std::isnan(a.value);
    const bool b_nan = std::isnan(b.value);
    if (a_nan && b_nan) return;
    if (a.value == b.value && std::signbit(a.value) == std::signbit(b.value)) return;

    ++diff_.numbers_differing;
    if (a_nan || b_nan) {
      ++diff_.nan_mismatch;
      return;
    }
    if (std::isinf(a.value) || std::isinf(b.value)) {
      ++diff_.inf_mismatch;
      return;
    }

    const double difference = std::fabs(a.value - b.value);
    const double scale = std::max(std::fabs(a.value), std::fabs(b.value));
    diff_.max_abs = std::max(diff_.max_abs, difference);
    if (scale > 0) diff_.max_rel = std::max(diff_.max_rel, difference / scale);

    const double units = last_digit_units(a, b, difference);
    if (dtype_ != TextOptions::Dtype::kFloat64) {
      const bool exact = identifies_value(a, Width::k32) && identifies_value(b, Width::k32);
      take(as_32_, exact, exact ? ulp_distance(as_float32(a), as_float32(b)) : 0, units);
    }
    if (dtype_ != TextOptions::Dtype::kFloat32) {
      const bool exact = identifies_value(a, Width::k64) && identifies_value(b, Width::k64);
      take(as_64_, exact, exact ? ulp_distance(a.value, b.value) : 0, units);
    }
  }

  // Both integers: exact, whatever their size. A double would round
  // integers past 2^53 and call unequal ones equal.
  void integers(const ParsedNumber& a, const ParsedNumber& b) {
    if (a.exact && b.exact) {
      if (*a.exact == *b.exact) return;
      ++diff_.numbers_differing;
      ++diff_.integer_numbers;
      const uint64_t difference = integer_distance(*a.exact, *b.exact);
      diff_.max_integer_difference = std::max(diff_.max_integer_difference, difference);
      const double scale = std::max(std::fabs(static_cast<double>(*a.exact)),
                                    std::fabs(static_cast<double>(*b.exact)));
      diff_.max_abs = std::max(diff_.max_abs, static_cast<double>(difference));
      diff_.max_rel = std::max(diff_.max_rel, static_cast<double>(difference) / scale);
      return;
    }
    if (canonical_integer(a.text) == canonical_integer(b.text)) return;
    ++diff_.numbers_differing;
    ++diff_.integer_numbers;
    ++diff_.wide_integer_numbers;
  }

  static void take(Measure& measure, bool exact, uint64_t ulp, double units) {
    if (exact) {
      ++measure.ulp_numbers;
      measure.max_ulp = std::max(measure.max_ulp, ulp);
    } else {
      ++measure.digit_numbers;
      measure.max_digit_units = std::max(measure.max_digit_units, units);
    }
  }

  TextOptions::Dtype dtype_;
  bool all_float32_ = true;
  Measure as_32_;
  Measure as_64_;
  TextDiff diff_;
};

}  // namespace

std::vector<std::string_view> split_tokens(std::string_view line) {
  std::vector<std::string_view> tokens;
  split_into(line, tokens);
  return tokens;
}

std::optional<ParsedNumber> parse_number(std::string_view token) {
  ParsedNumber number;
  number.text = token;
  std::string_view body = token;
  bool negative = false;
  if (!body.empty() && (body.front() == '+' || body.front() == '-')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (body.empty()) return std::nullopt;

  if (equals_lower(body, "inf") || equals_lower(body, "infinity")) {
    number.form = ParsedNumber::Form::kSpecial;
    number.value = negative ? -std::numeric_limits<double>::infinity()
                            : std::numeric_limits<double>::infinity();
    return number;
  }
  if (equals_lower(body, "nan")) {
    number.form = ParsedNumber::Form::kSpecial;
    number.value = std::copysign(std::numeric_limits<double>::quiet_NaN(), negative ? -1.0 : 1.0);
    return number;
  }

  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    if (!is_hex_float_body(body.substr(2))) return std::nullopt;
    const auto value = parse_with_strtod<double>(token);
    if (!value) return std::nullopt;
    number.form = ParsedNumber::Form::kHex;
    number.value = *value;
    return number;
  }

  const auto parts = split_decimal(body);
  if (!parts) return std::nullopt;
  const auto value = parse_decimal<double>(token);
  if (!value) return std::nullopt;
  number.value = *value;
  number.integer = body.find_first_not_of("0123456789") == std::string_view::npos;
  if (number.integer) number.exact = parse_integer(token);
  number.significant_digits = clamp_to_int(static_cast<int64_t>(significant_digits(*parts).size()));
  number.unit_exponent =
      clamp_to_int(parts->exponent - static_cast<int64_t>(parts->fraction.size()));
  return number;
}

std::string normalize_text(std::string_view text, const Masks& masks, std::string_view run_dir) {
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  for (;;) {
    const size_t end = std::min(text.find('\n', start), text.size());
    normalize_line(text.substr(start, end - start), masks, run_dir, out);
    if (end == text.size()) break;
    out += '\n';
    start = end + 1;
  }
  return out;
}

namespace {

Result<Mask> compile(const std::string& pattern, const char* what) {
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto compiled = std::make_shared<const re2::RE2>(pattern, options);
  if (!compiled->ok()) {
    return make_error(std::string(what) + " '" + pattern +
                      "' is not a valid regex: " + compiled->error());
  }
  return Mask(compiled);
}

}  // namespace

Result<Masks> compile_masks(const std::vector<std::string>& patterns) {
  Masks masks;
  masks.reserve(patterns.size());
  for (const std::string& pattern : patterns) {
    auto mask = compile(pattern, "mask");
    if (!mask) return mask.error();
    // A mask that can match nothing would insert "<masked>" between
    // characters; try it where empty matches happen: at the ends, between
    // words and between digits.
    for (const char* sample : {"", "a", "a b", "t=1", "1.5"}) {
      re2::StringPiece input(sample);
      re2::StringPiece whole;
      if ((*mask)->Match(input, 0, input.size(), re2::RE2::UNANCHORED, &whole, 1) &&
          whole.empty()) {
        return make_error("mask '" + pattern + "' matches the empty string");
      }
    }
    masks.push_back(*mask);
  }
  if (masks.size() <= 1) return masks;
  // Every mask applies to the text as written: one alternation, one pass.
  // Masks applied in turn would match the "<masked>" an earlier one wrote,
  // and a line could grow by the marker's length for each character.
  std::string alternation;
  for (const std::string& pattern : patterns) {
    alternation += (alternation.empty() ? "(?:" : "|(?:") + pattern + ")";
  }
  auto combined = compile(alternation, "the masks together:");
  if (!combined) return make_error("the masks together are too large for one regex");
  return Masks{*combined};
}

Result<Mask> compile_step_regex(const std::string& pattern) {
  auto step = compile(pattern, "step regex");
  if (!step) return step.error();
  if ((*step)->NumberOfCapturingGroups() < 1) {
    return make_error("step regex '" + pattern + "' has no capture group");
  }
  return step;
}

// The differing pairs of finite numbers in two lines of equal token counts:
// how many, and the largest difference.
void add_line_figures(const std::vector<std::string_view>& a,
                      const std::vector<std::string_view>& b, TextStepRow& row) {
  if (a.size() != b.size()) return;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i]) continue;
    const auto number_a = parse_number(a[i]);
    const auto number_b = parse_number(b[i]);
    if (!number_a || !number_b || number_a->value == number_b->value) continue;
    ++row.numbers_differing;
    const double difference = std::fabs(number_a->value - number_b->value);
    if (std::isfinite(difference)) row.max_abs = std::max(row.max_abs, difference);
  }
}

// Gathers the growth table one line at a time: a row per step from the
// first whose numbers differ, kept at ordinals 0, 1, 2, 4, 8, ... and for
// the last step.
class GrowthTable {
 public:
  // A line of the first file; `step` is its capture, when it has one.
  void step_seen(const std::optional<std::string>& step) {
    if (!step || (current_ && *step == current_->step)) return;
    if (started_) {
      close();
      ++ordinal_;
    }
    current_ = TextStepRow{*step, ordinal_, 0, 0};
  }

  void line_differs(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b,
                    bool first_number_difference) {
    if (first_number_difference && current_) started_ = true;
    if (started_) add_line_figures(a, b, *current_);
  }

  std::vector<TextStepRow> finish() {
    if (started_) close();
    if (last_ && (rows_.empty() || rows_.back().step != last_->step)) rows_.push_back(*last_);
    return std::move(rows_);
  }

 private:
  void close() {
    const uint64_t k = current_->ordinal;
    if ((k & (k - 1)) == 0) {
      rows_.push_back(*current_);
    } else {
      last_ = current_;
      return;
    }
    last_.reset();
  }

  std::optional<TextStepRow> current_;
  std::optional<TextStepRow> last_;
  std::vector<TextStepRow> rows_;
  uint64_t ordinal_ = 0;
  bool started_ = false;
};

Result<TextDiff> compare_text(const std::string& path_a, const std::string& path_b,
                              const TextOptions& options, std::string_view run_dir_a,
                              std::string_view run_dir_b) {
  auto masks = compile_masks(options.masks);
  if (!masks) return masks.error();
  Mask step;
  if (!options.step_regex.empty()) {
    auto compiled = compile_step_regex(options.step_regex);
    if (!compiled) return compiled.error();
    step = *compiled;
  }

  LineReader reader_a;
  LineReader reader_b;
  if (Status opened = reader_a.open(path_a); !opened) return opened.error();
  if (Status opened = reader_b.open(path_b); !opened) return opened.error();

  Comparison comparison(options.dtype);
  TextDiff& diff = comparison.diff();
  GrowthTable growth;
  std::optional<std::string> last_step;
  std::string raw_a;
  std::string raw_b;
  std::string line_a;
  std::string line_b;
  std::vector<std::string_view> tokens_a;
  std::vector<std::string_view> tokens_b;
  bool more_a = true;
  bool more_b = true;

  for (uint64_t line_number = 1;; ++line_number) {
    if (more_a) {
      auto got = reader_a.next(raw_a);
      if (!got) return got.error();
      more_a = *got;
    }
    if (more_b) {
      auto got = reader_b.next(raw_b);
      if (!got) return got.error();
      more_b = *got;
    }
    if (!more_a && !more_b) break;
    diff.lines_a += more_a ? 1 : 0;
    diff.lines_b += more_b ? 1 : 0;

    if (step && more_a) {
      re2::StringPiece captured;
      if (re2::RE2::PartialMatch(raw_a, *step, &captured) && captured.data() != nullptr) {
        const std::string named = shown(std::string_view(captured.data(), captured.size()));
        diff.step_matched = true;
        // The step named for the first differences stays the one they had.
        if (diff.first_number_line == 0) last_step = named;
        growth.step_seen(named);
      }
    }

    line_a.clear();
    line_b.clear();
    if (more_a) normalize_line(raw_a, *masks, run_dir_a, line_a);
    if (more_b) normalize_line(raw_b, *masks, run_dir_b, line_b);
    split_into(line_a, tokens_a);
    split_into(line_b, tokens_b);

    if (more_a && more_b && line_a == line_b) {
      comparison.same_line(tokens_a);
      continue;
    }

    if (diff.first_line == 0) {
      diff.first_line = line_number;
      diff.first_text_a = shown(line_a);
      diff.first_text_b = shown(line_b);
      diff.first_step = last_step;
    }
    if (more_a && more_b) {
      ++diff.differing_lines;
      const uint64_t numbers_before = diff.numbers_differing;
      comparison.differing_line(tokens_a, tokens_b, line_number);
      const bool first = diff.first_number_line == 0 && diff.numbers_differing > numbers_before;
      if (first) {
        diff.first_number_line = line_number;
        diff.first_number_step = last_step;
      }
      growth.line_differs(tokens_a, tokens_b, first);
    } else {
      ++diff.extra_lines;
      comparison.lone_line(more_a ? tokens_a : tokens_b);
    }
  }

  diff.final_newline_differs =
      diff.lines_a > 0 && diff.lines_b > 0 && reader_a.terminated() != reader_b.terminated();
  diff.step_regex_given = step != nullptr;
  if (step) diff.growth = growth.finish();
  return comparison.finish();
}

// Text is what reads as UTF-8 without control characters (tabs, line
// breaks, form feeds and the escapes of coloured logs aside) over its first
// 8 KiB. The bytes of a raw float array almost never do, even when they hold
// no NUL byte.
bool looks_like_text(const std::string& path) {
  auto start = sys::read_prefix(path, 8192);
  if (!start) {
    return false;
  }
  const std::string& bytes = *start;
  size_t i = 0;
  while (i < bytes.size()) {
    auto byte = static_cast<unsigned char>(bytes[i]);
    if (byte < 0x80) {
      bool control = byte < 0x20 && byte != '\t' && byte != '\n' && byte != '\r' && byte != '\f' &&
                     byte != '\v' && byte != 0x1b;
      if (control || byte == 0x7f) {
        return false;
      }
      ++i;
      continue;
    }
    size_t length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc2 ? 2 : 0;
    if (length == 0 || byte > 0xf4) {
      return false;
    }
    if (i + length > bytes.size()) {
      // A character cut by the 8 KiB window.
      return true;
    }
    for (size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(bytes[i + k]) & 0xc0) != 0x80) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

}  // namespace memdet::compare
