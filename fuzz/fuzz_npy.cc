// Fuzzes the .npy header parser on raw bytes, then the whole reader.
#include <cstdint>
#include <string_view>

#include "compare/npy.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)memdet::compare::parse_npy_header(bytes, size);
  memdet::fuzz::diff_with_itself(data, size, ".npy");
  return 0;
}
