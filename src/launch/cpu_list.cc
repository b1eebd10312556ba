#include "launch/cpu_list.h"

#include <charconv>

#include <sched.h>

#include "core/text.h"

namespace memdet::launch {
namespace {

Result<int> parse_cpu(std::string_view text, std::string_view whole) {
  int cpu = -1;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), cpu);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return make_error("bad CPU list '" + std::string(whole) + "': '" + std::string(text) +
                      "' is not a CPU number");
  }
  if (cpu >= CPU_SETSIZE) {
    return make_error("bad CPU list '" + std::string(whole) + "': CPU " + std::to_string(cpu) +
                      " is past the largest this system call accepts (" +
                      std::to_string(CPU_SETSIZE - 1) + ")");
  }
  return cpu;
}

}  // namespace

Result<CpuSet> parse_cpu_list(std::string_view text) {
  std::string_view whole = trim(text);
  if (whole.empty()) {
    return make_error("bad CPU list: it is empty");
  }

  CpuSet cpus;
  std::string_view rest = whole;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      auto cpu = parse_cpu(item, whole);
      if (!cpu) {
        return cpu.error();
      }
      cpus.insert(*cpu);
    } else {
      auto first = parse_cpu(item.substr(0, dash), whole);
      if (!first) {
        return first.error();
      }
      auto last = parse_cpu(item.substr(dash + 1), whole);
      if (!last) {
        return last.error();
      }
      if (*last < *first) {
        return make_error("bad CPU list '" + std::string(whole) + "': range '" + std::string(item) +
                          "' runs backwards");
      }
      for (int cpu = *first; cpu <= *last; ++cpu) {
        cpus.insert(cpu);
      }
    }
    if (comma == std::string_view::npos) {
      break;
    }
    rest = rest.substr(comma + 1);
  }
  return cpus;
}

std::string format_cpu_list(const CpuSet& cpus) {
  std::string text;
  auto it = cpus.begin();
  while (it != cpus.end()) {
    int first = *it;
    int last = first;
    for (++it; it != cpus.end() && *it == last + 1; ++it) {
      last = *it;
    }
    if (!text.empty()) {
      text += ',';
    }
    text += std::to_string(first);
    if (last != first) {
      text += '-' + std::to_string(last);
    }
  }
  return text;
}

}  // namespace memdet::launch
