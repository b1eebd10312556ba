// Reading, writing and numerically comparing NumPy .npy files, the format
// training scripts most often dump tensors in.
//
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
// The header is checked against the file size before any data is touched, so
// a truncated or padded file is reported as such instead of being compared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace memdet::compare {

struct NpyHeader {
  std::string descr;      // as written, e.g. "<f4"
  char byte_order = '|';  // '<', '>', or '|' where byte order does not apply
  char kind = 0;          // 'b', 'i', 'u', 'f', 'c', 'S', 'U', 'V', 'M' or 'm'
  size_t item_size = 0;   // bytes per element
  bool fortran_order = false;
  std::vector<uint64_t> shape;  // empty for a scalar
  uint64_t element_count = 0;
  uint64_t data_offset = 0;  // where the data starts, a multiple of 64 in numpy's files
  uint64_t data_bytes = 0;   // element_count * item_size, which the file size matches
};

// Parses the header at the start of a .npy file of file_size bytes.
// file_start holds the file's first bytes, at least up to the end of the
// header; more are ignored. Versions 1.0, 2.0 and 3.0 are read. Object and
// structured dtypes are refused, as is a file whose size disagrees with the
// header in either direction. Errors carry a short description of the
// problem and no file name, which the caller adds.
Result<NpyHeader> parse_npy_header(std::string_view file_start, uint64_t file_size);

// Reads and parses the header of the file at path, reading no more than the
// header itself. Errors, like parse_npy_header's, leave naming the file to
// the caller.
Result<NpyHeader> read_npy_header(const std::string& path);

// Writes a little-endian, C-order float32 array of the given shape, with the
// version 1.0 header numpy itself would write, so the file matches np.save's
// byte for byte. data holds the product of shape's dimensions elements.
Status write_npy_f32(const std::string& path, const float* data,
                     const std::vector<uint64_t>& shape);

// How two arrays of one shape and dtype differ, element by element.
struct NumericDiff {
  uint64_t elements = 0;
  // Elements whose bit patterns differ, so +0 against -0 and NaNs with
  // different payloads count although they compare equal or unordered.
  uint64_t differing = 0;
  // The next three cover pairs in which neither value is NaN. An infinity
  // against any other value makes max_abs and max_rel infinite.
  double max_abs = 0;
  double max_rel = 0;  // |a - b| / max(|a|, |b|), 0 when both are zero
  uint64_t max_ulp = 0;
  // C-order index of the first differing element and its two values; empty
  // when nothing differs.
  std::vector<uint64_t> first_index;
  double first_a = 0;
  double first_b = 0;
  // Pairs in which exactly one value is NaN.
  uint64_t nan_mismatch = 0;
};

// Compares the data of two .npy files. An error names the file at fault.
// Gives std::nullopt when the pair cannot be compared as numbers here: both
// must be little-endian C-order float32 or float64 with the same dtype and
// shape. The data is streamed in fixed-size chunks, so memory use does not
// grow with the file.
Result<std::optional<NumericDiff>> compare_npy(const std::string& path_a,
                                               const std::string& path_b);

}  // namespace memdet::compare
