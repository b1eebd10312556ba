// clock: what a seed taken from the wall clock reads. Pinned (counter): each
// thread's wall clock starts at a fixed epoch and moves 1 µs per read plus
// the sleeps it asks for; shift: real speed from a fixed epoch, which repeats
// seeds taken in seconds but not in nanoseconds. Absolute wall-clock
// deadlines become real waits as long as the virtual ones. Perturbed:
// another epoch per run, days apart and at another time of day. Monotonic and CPU clocks stay real.
// Verified by the reads the preload library served.
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

constexpr long long kDefaultEpoch = 946684800;  // 2000-01-01T00:00:00Z
constexpr long long kDay = 86400;
constexpr long long kNanos = 1000000000;
// Nanoseconds since 1970 fit an int64 until 2262; a perturbation may add
// ten years, so epochs stop at 2200-01-01.
constexpr long long kLatestEpoch = 7258118400;

struct ClockValue {
  std::string mode;
  long long epoch = 0;        // seconds since 1970
  long long nanoseconds = 0;  // past them
};

std::string value_text(const ClockValue& value) {
  std::string text = value.mode + "@" + std::to_string(value.epoch);
  if (value.nanoseconds != 0) {
    char digits[16];
    std::snprintf(digits, sizeof digits, ".%09lld", value.nanoseconds);
    text += digits;
  }
  return text;
}

// Seconds since 1970 with up to nine decimals, or a date YYYY-MM-DD
// (midnight UTC) that exists, from 1970-01-01 to 2199-12-31.
bool parse_epoch(const std::string& text, long long& epoch, long long& nanoseconds) {
  nanoseconds = 0;
  if (text.size() == 10 && text[4] == '-' && text[7] == '-') {
    int year = 0;
    int month = 0;
    int day = 0;
    char tail = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &year, &month, &day, &tail) != 3 ||
        text.find_first_not_of("0123456789-") != std::string::npos) {
      return false;
    }
    std::tm date{};
    date.tm_year = year - 1900;
    date.tm_mon = month - 1;
    date.tm_mday = day;
    epoch = static_cast<long long>(timegm(&date));
    // timegm rolls 2024-02-30 over into March: a date that does not exist
    // does not come back unchanged.
    return date.tm_year == year - 1900 && date.tm_mon == month - 1 && date.tm_mday == day &&
           epoch >= 0 && epoch < kLatestEpoch;
  }
  size_t dot = text.find('.');
  std::string whole = text.substr(0, dot);
  std::string fraction = dot == std::string::npos ? "" : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 10 ||
      whole.find_first_not_of("0123456789") != std::string::npos ||
      (dot != std::string::npos &&
       (fraction.empty() || fraction.size() > 9 ||
        fraction.find_first_not_of("0123456789") != std::string::npos))) {
    return false;
  }
  epoch = std::strtoll(whole.c_str(), nullptr, 10);
  fraction.resize(9, '0');
  nanoseconds = std::strtoll(fraction.c_str(), nullptr, 10);
  return epoch <= kLatestEpoch;
}

bool parse(const std::string& text, ClockValue& value) {
  size_t at = text.find('@');
  std::string mode = text.substr(0, at);
  value.mode = mode.empty() ? "counter" : mode;
  if (value.mode != "counter" && value.mode != "shift") {
    return false;
  }
  value.epoch = kDefaultEpoch;
  value.nanoseconds = 0;
  return at == std::string::npos ||
         parse_epoch(text.substr(at + 1), value.epoch, value.nanoseconds);
}

class Clock final : public Factor {
 public:
  const char* name() const override { return "clock"; }
  const char* summary() const override {
    return "the wall clock a seed or a file name may come from: pin counter (each thread's "
           "clock starts at a fixed epoch and moves 1 us per read plus the sleeps it asks for) "
           "or shift (real speed from the epoch), clock=counter|shift@SECONDS[.NANOS] or "
           "@YYYY-MM-DD; perturb moves the epoch by days, to another time of day. Loops timed "
           "by the wall clock run longer, progress rates (tqdm) show virtual time, TLS "
           "certificate checks may fail against the epoch, wall times compared across threads "
           "or processes or with file times may misbehave; verified by the reads the preload "
           "library served";
  }
  bool needs_preload() const override { return true; }
  bool varies_when_free() const override { return true; }

  Resolution resolve(const std::string& value, const Host&) const override {
    ClockValue parsed;
    if (!parse(value, parsed)) {
      return bad_request("unknown value '" + value +
                         "' (counter, shift, counter@EPOCH or shift@EPOCH; EPOCH is seconds "
                         "since 1970, with up to 9 decimals, or a date YYYY-MM-DD, from 1970 to "
                         "2199)");
    }
    return resolved(value_text(parsed));
  }

  std::string perturbed_value(const std::string& reference, const std::string&, int k,
                              uint64_t seed, const Host&) const override {
    ClockValue parsed;
    if (!parse(reference, parsed)) {
      return {};
    }
    // 1 to 3650 days away, at another time of day and another fraction of
    // a second: a seed taken from the hour or the microseconds moves too.
    const uint64_t draw = mix_seed(seed, static_cast<uint64_t>(k));
    const long long shift_ns =
        static_cast<long long>(1 + draw % 3650) * kDay * kNanos +
        static_cast<long long>(mix_seed(draw, 1) % static_cast<uint64_t>(kDay * kNanos));
    const long long total = parsed.nanoseconds + shift_ns;
    parsed.epoch += total / kNanos;
    parsed.nanoseconds = total % kNanos;
    return value_text(parsed);
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    ClockValue parsed;
    parse(value, parsed);
    plan.preload["clock"] = parsed.mode;
    plan.preload["clock_epoch"] = std::to_string(parsed.epoch);
    plan.preload["clock_epoch_ns"] = std::to_string(parsed.nanoseconds);
    plan.needs_preload = true;
  }

  void verify(const std::string& value, const Observation& seen,
              FactorRecord& record) const override {
    if (!preload_report_read(seen, record)) {
      return;
    }
    ClockValue parsed;
    parse(value, parsed);
    const PreloadReport& report = *seen.preload;
    record.measured =
        "epoch " + value_text(parsed).substr(parsed.mode.size() + 1) + " (" + parsed.mode + ")";
    const auto& served = report.rows_of("clock");
    std::vector<std::string> expected = {parsed.mode, std::to_string(parsed.epoch),
                                         std::to_string(parsed.nanoseconds)};
    if (served.empty() || served[0] != expected) {
      record.verified = launch::CheckState::kDiffers;
      record.observed = "the library served " + (served.empty() || served[0].size() < 2
                                                     ? std::string("no clock")
                                                     : served[0][0] + " from " + served[0][1]);
      return;
    }
    int children = 0;
    long long reads = count_in_all(seen, "clock_reads", &children);
    int waiting = 0;
    long long deadlines = count_in_all(seen, "clock_deadlines", &waiting);
    if (reads <= 0 && deadlines <= 0) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed = "the program read no wall clock the library could see";
      return;
    }
    record.verified = launch::CheckState::kVerified;
    record.observed =
        std::to_string(reads) + " wall-clock reads" +
        (deadlines > 0 ? ", " + std::to_string(deadlines) + " deadlines converted" : "") +
        (children > 0 ? ", in this process and " + std::to_string(children) + " child process" +
                            (children == 1 ? "" : "es")
                      : "");
  }
};

}  // namespace

const Factor& clock_factor() {
  static const Clock factor;
  return factor;
}

}  // namespace memdet::factors
