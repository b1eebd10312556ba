#include "protocol/placeholders.h"

namespace memdet::protocol {
namespace {

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  size_t at = 0;
  while ((at = text.find(from, at)) != std::string::npos) {
    text.replace(at, from.size(), to);
    at += to.size();
  }
}

}  // namespace

std::string run_label(int index, int total_runs) {
  size_t width = std::max<size_t>(2, std::to_string(total_runs).size());
  std::string digits = std::to_string(index);
  if (digits.size() < width) {
    digits.insert(0, width - digits.size(), '0');
  }
  return digits;
}

std::string substitute(const std::string& text, const std::string& label,
                       const std::string& run_dir) {
  std::string result = text;
  replace_all(result, "{run_dir}", run_dir);
  replace_all(result, "{run}", label);
  return result;
}

size_t exec_footprint(const std::string& executable, const std::vector<std::string>& argv,
                      const std::vector<std::string>& env) {
  size_t bytes = executable.size() + 1;
  for (const std::string& arg : argv) {
    bytes += arg.size() + 1;
  }
  for (const std::string& entry : env) {
    bytes += entry.size() + 1;
  }
  return bytes;
}

}  // namespace memdet::protocol
