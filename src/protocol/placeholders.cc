#include "protocol/placeholders.h"

namespace memdet::protocol {
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
  // One pass, so a replacement that itself holds a placeholder stays as it is.
  static const std::string kRunDir = "{run_dir}";
  static const std::string kRun = "{run}";
  std::string result;
  size_t at = 0;
  while (at < text.size()) {
    if (text.compare(at, kRunDir.size(), kRunDir) == 0) {
      result += run_dir;
      at += kRunDir.size();
    } else if (text.compare(at, kRun.size(), kRun) == 0) {
      result += label;
      at += kRun.size();
    } else {
      result += text[at++];
    }
  }
  return result;
}

}  // namespace memdet::protocol
