#include "preload/ordinal.h"

#include <cstring>

#include "preload/prim.h"

namespace memdet::preload {

void child_ordinal(const char* parent, unsigned index, char* out) {
  char digits[prim::kDecimalDigits];
  const size_t count = prim::decimal(index, digits);

  size_t parent_size = std::strlen(parent);
  bool cut = parent_size == 0 || parent[parent_size - 1] == '+';
  if (cut || parent_size + 1 + count + 1 > kOrdinalSize) {
    size_t keep = parent_size < kOrdinalSize - 2 ? parent_size : kOrdinalSize - 2;
    std::memcpy(out, parent, keep);
    if (keep == 0 || out[keep - 1] != '+') {
      out[keep++] = '+';
    }
    out[keep] = '\0';
    return;
  }
  std::memcpy(out, parent, parent_size);
  out[parent_size] = '.';
  std::memcpy(out + parent_size + 1, digits, count);
  out[parent_size + 1 + count] = '\0';
}

}  // namespace memdet::preload
