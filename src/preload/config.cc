#include "preload/config.h"

#include <cstdint>
#include <cstring>

namespace memdet::preload {
namespace {

struct Span {
  const char* data;
  size_t size;

  bool equals(const char* word) const {
    return std::strlen(word) == size && std::memcmp(data, word, size) == 0;
  }
};

Span trim(Span span) {
  while (span.size > 0 && (span.data[0] == ' ' || span.data[0] == '\t')) {
    ++span.data;
    --span.size;
  }
  while (span.size > 0 && (span.data[span.size - 1] == ' ' || span.data[span.size - 1] == '\t')) {
    --span.size;
  }
  return span;
}

bool parse_decimal(Span text, uint64_t limit, uint64_t& value) {
  if (text.size == 0 || text.size > 20) {
    return false;
  }
  value = 0;
  for (size_t i = 0; i < text.size; ++i) {
    char c = text.data[i];
    if (c < '0' || c > '9') {
      return false;
    }
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > limit) {
      return false;
    }
  }
  return true;
}

bool parse_hex(Span text, uint64_t& value) {
  if (text.size > 2 && text.data[0] == '0' && (text.data[1] == 'x' || text.data[1] == 'X')) {
    text.data += 2;
    text.size -= 2;
  }
  if (text.size == 0 || text.size > 16) {
    return false;
  }
  value = 0;
  for (size_t i = 0; i < text.size; ++i) {
    char c = text.data[i];
    uint64_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint64_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return false;
    }
    value = value << 4 | digit;
  }
  return true;
}

bool parse_flag(Span text, bool& value) {
  if (text.equals("1")) {
    value = true;
    return true;
  }
  if (text.equals("0")) {
    value = false;
    return true;
  }
  return false;
}

bool parse_signed_decimal(Span text, int64_t& value) {
  bool negative = text.size > 0 && text.data[0] == '-';
  uint64_t magnitude = 0;
  if (!parse_decimal({text.data + (negative ? 1 : 0), text.size - (negative ? 1 : 0)},
                     static_cast<uint64_t>(INT64_MAX), magnitude)) {
    return false;
  }
  value = negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
  return true;
}

// "LO-HI" with 1 <= LO <= HI, or "0-0" for none.
bool parse_window(Span text, uint64_t& low, uint64_t& high) {
  const char* dash = static_cast<const char*>(std::memchr(text.data, '-', text.size));
  if (dash == nullptr) {
    return false;
  }
  Span first = {text.data, static_cast<size_t>(dash - text.data)};
  Span last = {dash + 1, text.size - first.size - 1};
  if (!parse_decimal(first, UINT64_MAX / 10, low) || !parse_decimal(last, UINT64_MAX / 10, high)) {
    return false;
  }
  return (low == 0 && high == 0) || (low >= 1 && low <= high);
}

// Calls `on_item` with each inclusive range of a taskset-style list, in the
// order written. Returns false on a malformed list.
template <typename OnRange>
bool for_each_range(Span text, OnRange on_range) {
  if (text.size == 0) {
    return false;
  }
  size_t start = 0;
  while (start <= text.size) {
    size_t end = start;
    while (end < text.size && text.data[end] != ',') {
      ++end;
    }
    Span item = trim({text.data + start, end - start});
    const char* dash = static_cast<const char*>(std::memchr(item.data, '-', item.size));
    uint64_t first = 0;
    uint64_t last = 0;
    if (dash == nullptr) {
      if (!parse_decimal(item, CPU_SETSIZE - 1, first)) {
        return false;
      }
      last = first;
    } else {
      Span low = {item.data, static_cast<size_t>(dash - item.data)};
      Span high = {dash + 1, item.size - low.size - 1};
      if (!parse_decimal(low, CPU_SETSIZE - 1, first) ||
          !parse_decimal(high, CPU_SETSIZE - 1, last) || last < first) {
        return false;
      }
    }
    if (!on_range(static_cast<int>(first), static_cast<int>(last))) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

void set_error(char* error, size_t error_size, const char* what, Span key) {
  static const char kPrefix[] = "memdet preload: ";
  size_t used = 0;
  auto append = [&](const char* data, size_t size) {
    for (size_t i = 0; i < size && used + 1 < error_size; ++i) {
      error[used++] = data[i];
    }
  };
  append(kPrefix, sizeof kPrefix - 1);
  append(what, std::strlen(what));
  append(key.data, key.size);
  if (error_size > 0) {
    error[used] = '\0';
  }
}

// Applies one key=value field; returns why it is rejected ("unknown key "
// is followed by the key, every other reason by the value), or null.
constexpr const char* kUnknownKey = "unknown key ";

const char* apply_field(Span key, Span value, Config& config) {
  uint64_t number = 0;
  if (key.equals("report")) {
    if (value.size == 0 || value.size >= kMaxValue || value.data[0] != '/') {
      return "report needs an absolute prefix: ";
    }
    std::memcpy(config.report_prefix, value.data, value.size);
    config.report_prefix[value.size] = '\0';
  } else if (key.equals("seed")) {
    if (!parse_hex(value, config.seed)) {
      return "seed needs up to 16 hex digits: ";
    }
  } else if (key.equals("heap")) {
    if (!parse_decimal(value, 48, number) || number % 16 != 0) {
      return "heap needs 0, 16, 32 or 48: ";
    }
    config.heap_class = static_cast<int>(number);
  } else if (key.equals("heap_random")) {
    if (!parse_flag(value, config.heap_random)) {
      return "heap_random needs 0 or 1: ";
    }
  } else if (key.equals("uninit")) {
    if (!parse_decimal(value, 255, number)) {
      return "uninit needs a byte 0..255: ";
    }
    config.uninit = static_cast<int>(number);
  } else if (key.equals("hugepages")) {
    if (value.equals("huge")) {
      config.hugepages = Hugepages::kHuge;
    } else if (value.equals("small")) {
      config.hugepages = Hugepages::kSmall;
    } else if (value.equals("hugetlb-2M")) {
      config.hugepages = Hugepages::kHugetlb;
      config.hugetlb_shift = 21;
    } else if (value.equals("hugetlb-1G")) {
      config.hugepages = Hugepages::kHugetlb;
      config.hugetlb_shift = 30;
    } else {
      return "hugepages needs huge, small, hugetlb-2M or hugetlb-1G: ";
    }
  } else if (key.equals("mlock")) {
    if (!parse_flag(value, config.mlock)) {
      return "mlock needs 0 or 1: ";
    }
  } else if (key.equals("cpus")) {
    config.pin_cpu_count = 0;
    bool fits = true;
    bool parsed = for_each_range(value, [&](int first, int last) {
      for (int cpu = first; cpu <= last; ++cpu) {
        if (config.pin_cpu_count == kMaxPinCpus) {
          fits = false;
          return false;
        }
        config.pin_cpus[config.pin_cpu_count++] = cpu;
      }
      return true;
    });
    if (!parsed || !fits) {
      return "cpus needs a list of CPUs: ";
    }
  } else if (key.equals("free_cpus")) {
    if (!parse_cpu_set(value.data, value.size, config.free_cpus)) {
      return "free_cpus needs a CPU list: ";
    }
    config.has_free_cpus = true;
  } else if (key.equals("trace_threads")) {
    if (!parse_flag(value, config.trace_threads)) {
      return "trace_threads needs 0 or 1: ";
    }
  } else if (key.equals("fingerprint")) {
    if (value.size == 0 || value.size >= kMaxValue || value.data[0] != '/') {
      return "fingerprint needs an absolute directory: ";
    }
    std::memcpy(config.fingerprint_dir, value.data, value.size);
    config.fingerprint_dir[value.size] = '\0';
  } else if (key.equals("fp_threshold")) {
    if (!parse_decimal(value, UINT64_MAX / 10, config.fingerprint_threshold)) {
      return "fp_threshold needs a size in bytes: ";
    }
  } else if (key.equals("fp_colours")) {
    if (!parse_decimal(value, 4096, number) || number == 0) {
      return "fp_colours needs a count 1..4096: ";
    }
    config.fingerprint_colours = static_cast<unsigned>(number);
  } else if (key.equals("entropy")) {
    if (!parse_hex(value, config.entropy_seed)) {
      return "entropy needs a seed of up to 16 hex digits: ";
    }
    config.entropy = true;
  } else if (key.equals("entropy_window")) {
    if (!parse_window(value, config.entropy_window_low, config.entropy_window_high)) {
      return "entropy_window needs LO-HI (1 <= LO <= HI) or 0-0: ";
    }
  } else if (key.equals("entropy_window_seed")) {
    if (!parse_hex(value, config.entropy_window_seed)) {
      return "entropy_window_seed needs up to 16 hex digits: ";
    }
  } else if (key.equals("lineage")) {
    if (!parse_hex(value, config.lineage)) {
      return "lineage needs up to 16 hex digits: ";
    }
  } else if (key.equals("clock")) {
    if (value.equals("counter")) {
      config.clock = ClockMode::kCounter;
    } else if (value.equals("shift")) {
      config.clock = ClockMode::kShift;
    } else {
      return "clock needs counter or shift: ";
    }
  } else if (key.equals("clock_epoch")) {
    if (!parse_signed_decimal(value, config.clock_epoch)) {
      return "clock_epoch needs seconds since 1970: ";
    }
  } else if (key.equals("clock_epoch_ns")) {
    if (!parse_decimal(value, 999999999, config.clock_epoch_ns)) {
      return "clock_epoch_ns needs nanoseconds 0..999999999: ";
    }
  } else if (key.equals("clock_window")) {
    if (!parse_window(value, config.clock_window_low, config.clock_window_high)) {
      return "clock_window needs LO-HI (1 <= LO <= HI) or 0-0: ";
    }
  } else if (key.equals("clock_window_epoch")) {
    if (!parse_signed_decimal(value, config.clock_window_epoch)) {
      return "clock_window_epoch needs seconds since 1970: ";
    }
  } else if (key.equals("clock_window_epoch_ns")) {
    if (!parse_decimal(value, 999999999, config.clock_window_epoch_ns)) {
      return "clock_window_epoch_ns needs nanoseconds 0..999999999: ";
    }
  } else if (key.equals("fileorder")) {
    if (value.equals("sorted")) {
      config.fileorder = FileOrder::kSorted;
    } else if (value.equals("keyed")) {
      config.fileorder = FileOrder::kKeyed;
    } else {
      return "fileorder needs sorted or keyed: ";
    }
  } else if (key.equals("fileorder_window")) {
    if (!parse_window(value, config.fileorder_window_low, config.fileorder_window_high)) {
      return "fileorder_window needs LO-HI (1 <= LO <= HI) or 0-0: ";
    }
  } else if (key.equals("fileorder_key")) {
    if (!parse_hex(value, config.fileorder_key)) {
      return "fileorder_key needs up to 16 hex digits: ";
    }
  } else {
    return kUnknownKey;
  }
  return nullptr;
}

}  // namespace

bool parse_cpu_set(const char* text, size_t size, cpu_set_t& set) {
  CPU_ZERO(&set);
  return for_each_range(trim({text, size}), [&](int first, int last) {
    for (int cpu = first; cpu <= last; ++cpu) {
      CPU_SET(static_cast<size_t>(cpu), &set);
    }
    return true;
  });
}

ParseOutcome parse_config(const char* text, Config& config, char* error, size_t error_size) {
  if (text == nullptr) {
    return ParseOutcome::kPassive;
  }
  Span all = trim({text, std::strlen(text)});
  if (all.size == 0) {
    return ParseOutcome::kPassive;
  }

  for (size_t start = 0; start < all.size;) {
    const char* separator =
        static_cast<const char*>(std::memchr(all.data + start, ';', all.size - start));
    size_t end = separator == nullptr ? all.size : static_cast<size_t>(separator - all.data);
    Span field = trim({all.data + start, end - start});
    start = end + 1;
    if (field.size == 0) {
      continue;
    }

    const char* equals = static_cast<const char*>(std::memchr(field.data, '=', field.size));
    Span key = field;
    Span value = {field.data + field.size, 0};
    if (equals != nullptr) {
      key = trim({field.data, static_cast<size_t>(equals - field.data)});
      value = trim({equals + 1, static_cast<size_t>(field.data + field.size - equals - 1)});
    }
    const char* problem = apply_field(key, value, config);
    if (problem != nullptr) {
      set_error(error, error_size, problem, problem == kUnknownKey ? key : value);
      return ParseOutcome::kError;
    }
  }
  return ParseOutcome::kActive;
}

}  // namespace memdet::preload
