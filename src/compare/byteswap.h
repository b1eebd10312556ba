// Reversing the byte order of one element, for arrays stored in the other
// endianness.
#pragma once

#include <cstdint>

namespace memdet::compare {

template <typename Bits>
Bits byteswap(Bits bits) {
  if constexpr (sizeof(Bits) == 1) {
    return bits;
  } else if constexpr (sizeof(Bits) == 2) {
    return __builtin_bswap16(bits);
  } else if constexpr (sizeof(Bits) == 4) {
    return __builtin_bswap32(bits);
  } else {
    return __builtin_bswap64(bits);
  }
}

}  // namespace memdet::compare
