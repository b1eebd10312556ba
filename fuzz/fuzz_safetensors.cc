// Fuzzes the safetensors parser on raw bytes, then the whole reader.
#include <cstdint>
#include <string_view>

#include "compare/safetensors.h"
#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)memdet::compare::parse_safetensors(bytes);
  memdet::fuzz::diff_with_itself(data, size, ".safetensors");
  return 0;
}
