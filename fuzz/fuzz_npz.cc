// Fuzzes the .npz reader: the zip directory, local headers and members.
#include <cstdint>

#include "fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  memdet::fuzz::diff_with_itself(data, size, ".npz");
  return 0;
}
