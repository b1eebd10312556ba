// Reading safetensors files, the format Hugging Face checkpoints use, with
// every rule the format sets enforced, so that a file that lies is refused
// before any of its data is compared.
//
// Format: https://github.com/huggingface/safetensors#format. An 8-byte
// little-endian header length N of at most 100,000,000; N bytes of JSON,
// leading and trailing whitespace allowed; then the data. The JSON maps
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// relative to the data, with an optional "__metadata__" of strings.
// Sorted by offset the tensors start at 0, are contiguous and end where the
// file ends; end - begin is the element count times the dtype's bytes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compare/mapped_file.h"
#include "compare/tensor.h"
#include "core/result.h"

namespace memdet::compare {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

struct SafetensorsEntry {
  std::string name;
  TensorLayout layout;  // little-endian, C order
  uint64_t begin = 0;   // offsets into the data, which starts at data_start
  uint64_t end = 0;
};

struct SafetensorsFile {
  uint64_t data_start = 0;                      // 8 + the header length
  std::vector<SafetensorsEntry> entries;        // in offset order
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Parses a whole safetensors file held in bytes. Errors describe the
// problem and leave naming the file to the caller.
Result<SafetensorsFile> parse_safetensors(std::string_view bytes);

// A safetensors file opened for comparison: its mapping and what it holds.
struct OpenSafetensors {
  std::shared_ptr<MappedFile> file;
  SafetensorsFile contents;

  // The bytes of one entry, inside the mapping.
  std::string_view data(const SafetensorsEntry& entry) const;
};

// Maps path and parses it. Errors start with the path.
Result<OpenSafetensors> open_safetensors(const std::string& path);

// The safetensors spelling of a dtype ("F32", "BF16", "F8_E4M3").
std::string_view safetensors_dtype_name(DType dtype);

}  // namespace memdet::compare
