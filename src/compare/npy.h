// Reading, writing and numerically comparing NumPy .npy files, the format
// training scripts most often dump tensors in, and comparing raw dumps of
// float arrays, the other format they use.
//
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
// The header is checked against the file size before any data is touched, so
// a truncated or padded file is reported as such instead of being compared.
#pragma once

#include <cstddef>
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
  // 'b', 'i', 'u', 'f', 'c', 'S', 'U', 'V', 'M' or 'm'. The descr
  // 'bfloat16', which numpy has no code for, reads as '<' and 'V' of size 2.
  char kind = 0;
  size_t item_size = 0;  // bytes per element
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
  // What the elements were read as, in numpy's spelling: "float32",
  // "bfloat16", "int64", "bool".
  std::string dtype;
  uint64_t elements = 0;
  // Elements whose bit patterns differ, so +0 against -0 and NaNs with
  // different payloads count although they compare equal or unordered.
  uint64_t differing = 0;
  // The next three cover pairs in which neither value is NaN. An infinity
  // against any other value makes max_abs and max_rel infinite. Integers
  // and bools are measured too, as doubles, which round beyond 2^53.
  double max_abs = 0;
  double max_rel = 0;  // |a - b| / max(|a|, |b|), 0 when both are zero
  // Steps of the array's own format, so 1 for neighbouring float16 values.
  // Integers and bools have no such unit: has_ulp is false and max_ulp 0.
  uint64_t max_ulp = 0;
  bool has_ulp = true;
  // Index of the first differing element and its two values; empty when
  // nothing differs. "First" is in the file's storage order: for a
  // Fortran-order array the first index varies fastest, so in a 2-D array
  // [1, 0] comes before [0, 1]. The index itself is the element's position
  // in the array, the same whichever order the file stores.
  std::vector<uint64_t> first_index;
  double first_a = 0;
  double first_b = 0;
  // Pairs in which exactly one value is NaN.
  uint64_t nan_mismatch = 0;
};

// Element formats that carry no type information of their own: raw dumps,
// and .npy files whose descr only says "so many bytes" (see CompareOptions).
// All are IEEE 754 binary formats except bfloat16, the upper half of a
// float32.
enum class RawDtype { kF16, kBF16, kF32, kF64 };

// Reads "f16", "bf16", "f32" or "f64", the spellings --dtype takes.
Result<RawDtype> parse_raw_dtype(std::string_view name);

// The spelling parse_raw_dtype reads, and the bytes one element takes.
std::string_view raw_dtype_name(RawDtype dtype);
size_t raw_dtype_size(RawDtype dtype);

struct CompareOptions {
  // How to read .npy files whose descr is a void type ('<V2', '|V2', '>V2')
  // of this format's size. numpy has no bfloat16, so np.save writes
  // ml_dtypes' bfloat16, the one JAX arrays use, under its type code 'V':
  // '<V2' on a little-endian host (https://github.com/jax-ml/ml_dtypes/issues/41).
  // Without this option such files are compared by digest only, since the
  // same descr fits any record of that size. '<' and '|' are read as
  // little-endian, '>' as big-endian. Files whose descr names a type are
  // read as that type whatever this says, so one setting serves a run that
  // also writes float32 and integer arrays.
  std::optional<RawDtype> dtype;
};

// Compares the data of two .npy files. An error names the file at fault.
//
// Floats (float16, float32, float64, and bfloat16 as described under
// CompareOptions or written with the descr 'bfloat16'), signed and
// unsigned integers of 1 to 8 bytes, and bools are compared, in either byte
// order: both files must hold the same type and shape, though one may be
// big-endian and the other little. Otherwise, and for any other dtype, the
// result is std::nullopt and the caller falls back to digests. A Fortran-order
// file compares with another Fortran-order file; against a C-order file only
// when at most one dimension exceeds 1, which makes the two layouts the same
// bytes. Other mixed-order pairs give std::nullopt: matching [i, j] with
// [i, j] there would mean reading one file out of order, and the streaming
// below promises constant memory and sequential reads.
//
// The data is streamed in fixed-size chunks, so memory use does not grow
// with the file, and chunks whose bytes agree are skipped with memcmp when
// both files use one byte order.
Result<std::optional<NumericDiff>> compare_npy(const std::string& path_a, const std::string& path_b,
                                               const CompareOptions& options = {});

// Compares two files of headerless little-endian elements, as numpy's
// ndarray.tofile() writes them on a little-endian host.
// first_index has one entry, the element's position in the file. A size that
// is not a whole number of elements, or two files of different sizes, is an
// error naming the file.
Result<NumericDiff> compare_raw(const std::string& path_a, const std::string& path_b,
                                RawDtype dtype);

}  // namespace memdet::compare
