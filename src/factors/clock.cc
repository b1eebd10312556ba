// clock: what a seed taken from the wall clock reads. Pinned (counter): each
// thread's wall clock starts at a fixed epoch and moves 1 µs per read plus
// the time it sleeps; shift: real speed from a fixed epoch, which repeats
// seeds taken in seconds but not in nanoseconds. Absolute wall-clock
// deadlines become real waits as long as the virtual ones. Perturbed:
// another epoch per run, days apart. Monotonic and CPU clocks stay real.
// Verified by the reads the preload library served.
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "factors/exec_stop.h"

namespace memdet::factors {
namespace {

constexpr long long kDefaultEpoch = 946684800;  // 2000-01-01T00:00:00Z
constexpr long long kDay = 86400;

struct ClockValue {
  std::string mode;
  long long epoch = 0;
};

std::string value_text(const ClockValue& value) {
  return value.mode + "@" + std::to_string(value.epoch);
}

// Seconds since 1970, or a date YYYY-MM-DD (midnight UTC).
bool parse_epoch(const std::string& text, long long& epoch) {
  if (text.empty()) {
    return false;
  }
  int year = 0;
  int month = 0;
  int day = 0;
  char tail = 0;
  if (text.size() == 10 &&
      std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &year, &month, &day, &tail) == 3 &&
      month >= 1 && month <= 12 && day >= 1 && day <= 31 && year >= 1970) {
    std::tm date{};
    date.tm_year = year - 1900;
    date.tm_mon = month - 1;
    date.tm_mday = day;
    epoch = static_cast<long long>(timegm(&date));
    return true;
  }
  size_t start = text[0] == '-' ? 1 : 0;
  if (start == text.size() || text.size() > 15 ||
      text.find_first_not_of("0123456789", start) != std::string::npos) {
    return false;
  }
  epoch = std::strtoll(text.c_str(), nullptr, 10);
  return true;
}

bool parse(const std::string& text, ClockValue& value) {
  size_t at = text.find('@');
  std::string mode = text.substr(0, at);
  value.mode = mode.empty() ? "counter" : mode;
  if (value.mode != "counter" && value.mode != "shift") {
    return false;
  }
  value.epoch = kDefaultEpoch;
  return at == std::string::npos || parse_epoch(text.substr(at + 1), value.epoch);
}

class Clock final : public Factor {
 public:
  const char* name() const override { return "clock"; }
  const char* summary() const override {
    return "the wall clock a seed or a file name may come from: pin counter (each thread's "
           "clock starts at a fixed epoch and moves 1 us per read plus its sleeps) or shift "
           "(real speed from the epoch), clock=counter|shift@SECONDS|@YYYY-MM-DD; perturb moves "
           "the epoch by days. Progress rates (tqdm) show virtual time, TLS certificate checks "
           "may fail against the epoch, wall times compared across processes may misbehave; "
           "verified by the reads the preload library served";
  }
  bool needs_preload() const override { return true; }
  bool varies_when_free() const override { return true; }

  Resolution resolve(const std::string& value, const Host&) const override {
    ClockValue parsed;
    if (!parse(value, parsed)) {
      return bad_request("unknown value '" + value +
                         "' (counter, shift, counter@EPOCH or shift@EPOCH, EPOCH in seconds "
                         "since 1970 or YYYY-MM-DD)");
    }
    return resolved(value_text(parsed));
  }

  std::string perturbed_value(const std::string& reference, const std::string&, int k,
                              uint64_t seed, const Host&) const override {
    ClockValue parsed;
    if (!parse(reference, parsed)) {
      return {};
    }
    // 1 to 3650 days away, never the reference's own epoch.
    parsed.epoch += kDay * static_cast<long long>(1 + mix_seed(seed, static_cast<uint64_t>(k)) %
                                                          3650);
    return value_text(parsed);
  }

  void apply(const std::string& value, const Host&, LaunchPlan& plan) const override {
    ClockValue parsed;
    parse(value, parsed);
    plan.preload["clock"] = parsed.mode;
    plan.preload["clock_epoch"] = std::to_string(parsed.epoch);
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
    record.measured = "epoch " + std::to_string(parsed.epoch) + " (" + parsed.mode + ")";
    const auto& served = report.rows_of("clock");
    std::vector<std::string> expected = {parsed.mode, std::to_string(parsed.epoch)};
    if (served.empty() || served[0] != expected) {
      record.verified = launch::CheckState::kDiffers;
      record.observed =
          "the library served " +
          (served.empty() || served[0].size() < 2 ? std::string("no clock")
                                                  : served[0][0] + " from " + served[0][1]);
      return;
    }
    long long reads = report.number("clock_reads", 0);
    long long deadlines = report.number("clock_deadlines", 0);
    if (reads <= 0 && deadlines <= 0) {
      record.verified = launch::CheckState::kNotObservable;
      record.observed = "the program read no wall clock the library could see";
      return;
    }
    record.verified = launch::CheckState::kVerified;
    record.observed = std::to_string(reads) + " wall-clock reads" +
                      (deadlines > 0 ? ", " + std::to_string(deadlines) + " deadlines converted"
                                     : "");
  }
};

}  // namespace

const Factor& clock_factor() {
  static const Clock factor;
  return factor;
}

}  // namespace memdet::factors
