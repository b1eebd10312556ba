#include "measure/vmstat.h"

#include <cstdlib>
#include <string_view>

#include "core/sys.h"

namespace memdet::measure {

VmstatSnapshot parse_vmstat(const std::string& text) {
  VmstatSnapshot found;
  for (const char* field : kVmstatFields) {
    const std::string_view name(field);
    size_t at = 0;
    while ((at = text.find(name, at)) != std::string::npos) {
      const bool line_start = at == 0 || text[at - 1] == '\n';
      const size_t after = at + name.size();
      if (line_start && after < text.size() && text[after] == ' ') {
        const char* digits = text.c_str() + after + 1;
        char* end = nullptr;
        unsigned long long value = std::strtoull(digits, &end, 10);
        if (end != digits && (*end == '\n' || *end == '\0')) {
          found.push_back({field, value});
        }
        break;
      }
      at = after;
    }
  }
  return found;
}

Result<VmstatSnapshot> read_vmstat(const std::string& path) {
  auto text = sys::read_small_file(path);
  if (!text) {
    return text.error();
  }
  return parse_vmstat(*text);
}

std::vector<VmstatDelta> vmstat_deltas(const VmstatSnapshot& before, const VmstatSnapshot& after) {
  std::vector<VmstatDelta> deltas;
  for (const VmstatValue& old_value : before) {
    for (const VmstatValue& new_value : after) {
      if (new_value.name == old_value.name) {
        deltas.push_back({old_value.name, old_value.value, new_value.value});
        break;
      }
    }
  }
  return deltas;
}

}  // namespace memdet::measure
