// One element comparison for every tensor format `memdet diff` reads: a
// tensor is a dtype, a shape, a memory order and a stream of bytes, whether
// the bytes come from an .npy file, a safetensors entry or an npz member.
//
// Bytes are read through memcpy into aligned blocks, never through a cast
// pointer, because npz members and safetensors entries start at any offset.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace memdet::compare {

// The element types compared. The 8-bit floats follow the OCP 8-bit
// floating point specification and the FNUZ variants AMD and Graphcore use:
//   F8_E4M3      bias 7, no infinity, NaN only at 0x7F and 0xFF;
//   F8_E4M3FNUZ  bias 8, no infinity, no -0, NaN only at 0x80;
//   F8_E5M2      bias 15, IEEE-like: infinity at 0x7C and 0xFC;
//   F8_E5M2FNUZ  bias 16, no infinity, no -0, NaN only at 0x80;
//   F8_E8M0      an unsigned power of two, 2^(b - 127), NaN at 0xFF.
// kC64 is a pair of float32, the real part first.
enum class DType {
  kBool,
  kU8,
  kU16,
  kU32,
  kU64,
  kI8,
  kI16,
  kI32,
  kI64,
  kF16,
  kBF16,
  kF32,
  kF64,
  kC64,
  kF8E4M3,
  kF8E4M3Fnuz,
  kF8E5M2,
  kF8E5M2Fnuz,
  kF8E8M0,
};

// numpy's spelling where numpy has one ("float32", "bool"), ml_dtypes'
// for the 8-bit floats ("float8_e4m3fn").
std::string_view dtype_name(DType dtype);
size_t dtype_size(DType dtype);

// How a tensor's elements are laid out in its bytes.
struct TensorLayout {
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;  // empty for a scalar
  uint64_t elements = 0;        // the product of shape, checked by the reader
  bool fortran_order = false;   // the first index varies fastest
  bool big_endian = false;
};

// "(3, 4)" as numpy prints a shape; "()" for a scalar.
std::string shape_text(const std::vector<uint64_t>& shape);

// The bytes of one tensor, read front to back.
class ByteStream {
 public:
  virtual ~ByteStream() = default;

  // The next min(max, left) bytes, valid until the next call. A source that
  // ends before it promised is an error naming what ran short.
  virtual Result<std::string_view> next(size_t max) = 0;

  // The whole tensor when it lies in memory, so that two tensors stored in
  // different orders can be walked in step; empty otherwise.
  virtual std::string_view whole() const { return {}; }
};

// Whether a MemoryStream hands the pages it has read back to the kernel.
enum class PageRelease { kKeep, kBehind };

// A stream over bytes that stay valid for the stream's lifetime, such as a
// file mapping. With PageRelease::kBehind the bytes must be a read-only
// file mapping: every 64 MiB read, the whole pages behind the current chunk
// are dropped with madvise(MADV_DONTNEED), so the process's resident set
// stays near one window per stream whatever the file size; touching them
// again reads them back from the page cache.
class MemoryStream : public ByteStream {
 public:
  explicit MemoryStream(std::string_view bytes, PageRelease release = PageRelease::kKeep)
      : bytes_(bytes), release_(release) {}
  Result<std::string_view> next(size_t max) override;
  std::string_view whole() const override { return bytes_; }

 private:
  void release_before(size_t offset);

  std::string_view bytes_;
  PageRelease release_;
  size_t offset_ = 0;
  size_t released_ = 0;
};

// When two elements that differ in their bits still count as equal: either
// |a - b| <= atol + rtol * |b| or their ULP distance is at most max_ulp. All
// zero by default, which leaves only bitwise equality. Integers and bools
// measure both distances as the difference of their values; +0 and -0 are
// equal within any tolerance, and two NaNs only with equal_nan.
struct Tolerance {
  double atol = 0;
  double rtol = 0;
  uint64_t max_ulp = 0;
  bool equal_nan = false;
};

// Buckets of the ULP histogram: distance 0 (bits differ, values equal, as
// +0 against -0), 1, 2-15, 16-255, 256-65535, and 65536 or more.
inline constexpr size_t kUlpBuckets = 6;
std::string_view ulp_bucket_name(size_t bucket);

// How two tensors of one dtype and shape differ, element by element.
struct TensorDiff {
  uint64_t elements = 0;
  // Elements whose bits differ, and of those the ones outside the tolerance.
  uint64_t bitwise_differing = 0;
  uint64_t differing = 0;
  // Pairs of NaNs whose bits differ, and pairs with exactly one NaN.
  uint64_t nan_payload = 0;
  uint64_t nan_mismatch = 0;
  // Over bitwise-differing pairs with no NaN. max_rel is |a - b| / |b|, as
  // the tolerance reads it, infinite when b is 0 and a is not. An infinity
  // against anything else makes max_abs and max_rel infinite.
  double max_abs = 0;
  double max_rel = 0;
  uint64_t max_ulp = 0;
  std::array<uint64_t, kUlpBuckets> ulp_histogram{};
  // Logical coordinates of the first element outside the tolerance, or,
  // when every element is within it, of the first whose bits differ; empty
  // when the bits agree everywhere. "First" is in storage order. The values
  // are printed with their bit patterns: "1.0000001 [0x3f800001]".
  bool has_first = false;
  std::vector<uint64_t> first_index;
  std::string first_a;
  std::string first_b;
};

// Compares two tensors of the same dtype and shape. Their memory orders may
// differ when both streams lie in memory (ByteStream::whole) or when the
// shape makes the orders the same sequence; otherwise the call fails.
Result<TensorDiff> compare_tensors(const TensorLayout& layout_a, ByteStream& a,
                                   const TensorLayout& layout_b, ByteStream& b,
                                   const Tolerance& tolerance);

// Exact value of an 8-bit float code, NaN for its NaN codes.
double f8_to_double(DType dtype, uint8_t bits);

}  // namespace memdet::compare
