#include "compare/tensor.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

#include <sys/mman.h>
#include <unistd.h>

#include "compare/byteswap.h"
#include "compare/ulp.h"

namespace memdet::compare {

namespace {

// Bytes read per step from each stream: large enough that the memcmp that
// settles equal runs dominates, small enough to stay in cache.
constexpr size_t kChunkBytes = 1 << 20;
// How much a releasing MemoryStream reads between two releases.
constexpr size_t kReleaseWindow = size_t{64} << 20;

// Loads one element from bytes that carry no alignment promise.
template <typename Bits>
Bits load(const char* bytes, bool swapped) {
  Bits bits;
  std::memcpy(&bits, bytes, sizeof(Bits));
  return swapped ? byteswap(bits) : bits;
}

std::string shortest(double value) {
  if (std::isnan(value)) return "nan";
  char text[64];
  const auto end = std::to_chars(text, text + sizeof(text), value).ptr;
  return std::string(text, end);
}

std::string shortest(float value) {
  if (std::isnan(value)) return "nan";
  char text[64];
  const auto end = std::to_chars(text, text + sizeof(text), value).ptr;
  return std::string(text, end);
}

template <typename Bits>
std::string hex_bits(Bits bits) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%0*llx", static_cast<int>(sizeof(Bits) * 2),
                static_cast<unsigned long long>(bits));
  return text;
}

// What one pair of non-NaN elements whose bits differ measures.
struct Measure {
  double abs = 0;
  double rel = 0;
  uint64_t ulp = 0;
  double b_magnitude = 0;  // |b|, which the relative tolerance scales
};

Measure measure_values(double a, double b, uint64_t ulp) {
  Measure m;
  m.ulp = ulp;
  m.b_magnitude = std::fabs(b);
  if (a == b) return m;
  m.abs =
      std::isinf(a) || std::isinf(b) ? std::numeric_limits<double>::infinity() : std::fabs(a - b);
  m.rel = m.b_magnitude == 0 ? std::numeric_limits<double>::infinity() : m.abs / m.b_magnitude;
  return m;
}

// Steps between two sign-magnitude codes: a difference of magnitudes on one
// side of zero and a sum across it, so +0 and -0 are 0 apart. For the 8-bit
// formats this is the distance between the signed indices -(b & 0x7F) and
// b & 0x7F, which are monotone over every non-NaN code.
template <typename Bits>
uint64_t sign_magnitude_ulp(Bits a, Bits b) {
  constexpr Bits kSign = static_cast<Bits>(Bits{1} << (sizeof(Bits) * 8 - 1));
  const uint64_t magnitude_a = a & static_cast<Bits>(~kSign);
  const uint64_t magnitude_b = b & static_cast<Bits>(~kSign);
  if (((a ^ b) & kSign) != 0) return magnitude_a + magnitude_b;
  return magnitude_a > magnitude_b ? magnitude_a - magnitude_b : magnitude_b - magnitude_a;
}

// An IEEE 754 binary format, or bfloat16: NaN is an all-ones exponent with
// a nonzero mantissa.
template <typename BitsT, BitsT kExponent, double (*kValue)(BitsT)>
struct IeeeCodec {
  using Bits = BitsT;
  static constexpr Bits kMagnitude = static_cast<Bits>(~(Bits{1} << (sizeof(Bits) * 8 - 1)));

  static Bits load_one(const char* bytes, bool swapped) { return load<Bits>(bytes, swapped); }
  static bool is_nan(Bits bits) { return (bits & kMagnitude) > kExponent; }
  static Measure measure(Bits a, Bits b) {
    return measure_values(kValue(a), kValue(b), sign_magnitude_ulp(a, b));
  }
  static std::string show(Bits bits) {
    if constexpr (sizeof(Bits) == 4) {
      return shortest(std::bit_cast<float>(bits)) + " [" + hex_bits(bits) + "]";
    } else {
      return shortest(kValue(bits)) + " [" + hex_bits(bits) + "]";
    }
  }
};

double f32_value(uint32_t bits) { return static_cast<double>(std::bit_cast<float>(bits)); }
double f64_value(uint64_t bits) { return std::bit_cast<double>(bits); }

using F16Codec = IeeeCodec<uint16_t, 0x7c00, f16_to_double>;
using BF16Codec = IeeeCodec<uint16_t, 0x7f80, bf16_to_double>;
using F32Codec = IeeeCodec<uint32_t, 0x7f800000u, f32_value>;
using F64Codec = IeeeCodec<uint64_t, 0x7ff0000000000000ull, f64_value>;

template <DType kType>
struct F8Codec {
  using Bits = uint8_t;
  static Bits load_one(const char* bytes, bool) { return static_cast<Bits>(*bytes); }
  static bool is_nan(Bits bits) { return std::isnan(f8_to_double(kType, bits)); }
  static Measure measure(Bits a, Bits b) {
    // E8M0 has no sign bit: its codes are ordered as unsigned numbers.
    const uint64_t ulp = kType == DType::kF8E8M0 ? static_cast<uint64_t>(a > b ? a - b : b - a)
                                                 : sign_magnitude_ulp(a, b);
    return measure_values(f8_to_double(kType, a), f8_to_double(kType, b), ulp);
  }
  static std::string show(Bits bits) {
    return shortest(f8_to_double(kType, bits)) + " [" + hex_bits(bits) + "]";
  }
};

// Two float32, real then imaginary; each half is swapped on its own. The
// distance between two complex numbers is the modulus of their difference,
// and their ULP distance the larger of the two parts'.
struct C64Codec {
  using Bits = uint64_t;
  static uint32_t real(Bits bits) { return static_cast<uint32_t>(bits); }
  static uint32_t imag(Bits bits) { return static_cast<uint32_t>(bits >> 32); }

  static Bits load_one(const char* bytes, bool swapped) {
    const uint64_t re = load<uint32_t>(bytes, swapped);
    const uint64_t im = load<uint32_t>(bytes + 4, swapped);
    return re | im << 32;
  }
  static bool is_nan(Bits bits) {
    return F32Codec::is_nan(real(bits)) || F32Codec::is_nan(imag(bits));
  }
  static Measure measure(Bits a, Bits b) {
    const double ar = f32_value(real(a));
    const double ai = f32_value(imag(a));
    const double br = f32_value(real(b));
    const double bi = f32_value(imag(b));
    Measure m;
    m.ulp = std::max(sign_magnitude_ulp(real(a), real(b)), sign_magnitude_ulp(imag(a), imag(b)));
    m.b_magnitude = std::hypot(br, bi);
    if (ar == br && ai == bi) return m;
    const bool infinite = std::isinf(ar) || std::isinf(ai) || std::isinf(br) || std::isinf(bi);
    m.abs = infinite ? std::numeric_limits<double>::infinity() : std::hypot(ar - br, ai - bi);
    m.rel = m.b_magnitude == 0 ? std::numeric_limits<double>::infinity() : m.abs / m.b_magnitude;
    return m;
  }
  static std::string show(Bits bits) {
    std::string text = "(";
    text += shortest(std::bit_cast<float>(real(bits)));
    text += ", ";
    text += shortest(std::bit_cast<float>(imag(bits)));
    text += ") [";
    text += hex_bits(bits);
    text += ']';
    return text;
  }
};

// Integers measure every distance as the difference of their values, taken
// exactly in 64 bits, so INT64_MIN against INT64_MAX does not overflow.
template <typename Int>
struct IntegerCodec {
  using Bits = std::make_unsigned_t<Int>;
  static Bits load_one(const char* bytes, bool swapped) { return load<Bits>(bytes, swapped); }
  static bool is_nan(Bits) { return false; }
  static Measure measure(Bits a_bits, Bits b_bits) {
    const auto a = static_cast<Int>(a_bits);
    const auto b = static_cast<Int>(b_bits);
    const auto wide_a = static_cast<uint64_t>(a);
    const auto wide_b = static_cast<uint64_t>(b);
    const uint64_t apart = a > b ? wide_a - wide_b : wide_b - wide_a;
    Measure m = measure_values(static_cast<double>(a), static_cast<double>(b), apart);
    m.abs = static_cast<double>(apart);
    if (m.b_magnitude != 0) m.rel = m.abs / m.b_magnitude;
    return m;
  }
  static std::string show(Bits bits) { return std::to_string(static_cast<Int>(bits)); }
};

// Any nonzero byte reads as true, as numpy and torch read it; 1 against 2
// differs in its bits but not in its value.
struct BoolCodec {
  using Bits = uint8_t;
  static Bits load_one(const char* bytes, bool) { return static_cast<Bits>(*bytes); }
  static bool is_nan(Bits) { return false; }
  static Measure measure(Bits a, Bits b) {
    const bool x = a != 0;
    const bool y = b != 0;
    return measure_values(x, y, x == y ? 0 : 1);
  }
  static std::string show(Bits bits) {
    return std::string(bits != 0 ? "true" : "false") +
           (bits > 1 ? " [" + hex_bits(bits) + "]" : "");
  }
};

size_t ulp_bucket(uint64_t ulp) {
  if (ulp == 0) return 0;
  if (ulp == 1) return 1;
  if (ulp < 16) return 2;
  if (ulp < 256) return 3;
  if (ulp < 65536) return 4;
  return 5;
}

// The logical coordinates of the element at position flat in storage order.
std::vector<uint64_t> logical_index(uint64_t flat, const std::vector<uint64_t>& shape,
                                    bool fortran_order) {
  std::vector<uint64_t> index(shape.size(), 0);
  for (size_t step = 0; step < shape.size(); ++step) {
    const size_t axis = fortran_order ? step : shape.size() - 1 - step;
    index[axis] = flat % shape[axis];
    flat /= shape[axis];
  }
  return index;
}

// With at most one dimension above 1, C and Fortran order put the elements
// in the same sequence.
bool order_is_immaterial(const std::vector<uint64_t>& shape) {
  return std::count_if(shape.begin(), shape.end(), [](uint64_t d) { return d > 1; }) <= 1;
}

bool host_is_big_endian() { return std::endian::native == std::endian::big; }

// Folds pairs of elements whose bits differ into a TensorDiff.
template <typename Codec>
class Folder {
 public:
  using Bits = typename Codec::Bits;

  Folder(TensorDiff& diff, const Tolerance& tolerance) : diff_(diff), tolerance_(tolerance) {}

  void add(Bits a, Bits b, uint64_t flat) {
    ++diff_.bitwise_differing;
    bool within = false;
    const bool nan_a = Codec::is_nan(a);
    const bool nan_b = Codec::is_nan(b);
    if (nan_a && nan_b) {
      ++diff_.nan_payload;
      within = tolerance_.equal_nan;
    } else if (nan_a || nan_b) {
      ++diff_.nan_mismatch;
    } else {
      const Measure m = Codec::measure(a, b);
      diff_.max_abs = std::max(diff_.max_abs, m.abs);
      diff_.max_rel = std::max(diff_.max_rel, m.rel);
      diff_.max_ulp = std::max(diff_.max_ulp, m.ulp);
      ++diff_.ulp_histogram[ulp_bucket(m.ulp)];
      within =
          m.abs <= tolerance_.atol + tolerance_.rtol * m.b_magnitude || m.ulp <= tolerance_.max_ulp;
    }

    if (!within) ++diff_.differing;
    if (!have_any_ || (!within && !have_outside_)) {
      first_flat_ = flat;
      first_a_ = a;
      first_b_ = b;
      have_any_ = true;
      have_outside_ = !within;
    }
  }

  void finish(const TensorLayout& layout) {
    if (!have_any_) return;
    diff_.has_first = true;
    diff_.first_index = logical_index(first_flat_, layout.shape, layout.fortran_order);
    diff_.first_a = Codec::show(first_a_);
    diff_.first_b = Codec::show(first_b_);
  }

 private:
  TensorDiff& diff_;
  const Tolerance& tolerance_;
  bool have_any_ = false;
  bool have_outside_ = false;
  uint64_t first_flat_ = 0;
  Bits first_a_ = 0;
  Bits first_b_ = 0;
};

// Both tensors in the same storage order: two streams read in step, equal
// chunks settled by memcmp.
template <typename Codec>
Status compare_in_step(const TensorLayout& layout_a, ByteStream& a, const TensorLayout& layout_b,
                       ByteStream& b, Folder<Codec>& folder, TensorDiff& diff) {
  const size_t item = dtype_size(layout_a.dtype);
  const size_t chunk = kChunkBytes / item * item;
  const bool swap_a = layout_a.big_endian != host_is_big_endian();
  const bool swap_b = layout_b.big_endian != host_is_big_endian();
  const bool bytes_decide = swap_a == swap_b || item == 1;

  for (uint64_t done = 0; done < layout_a.elements;) {
    const uint64_t n = std::min<uint64_t>(chunk / item, layout_a.elements - done);
    auto bytes_a = a.next(static_cast<size_t>(n * item));
    if (!bytes_a) return bytes_a.error();
    auto bytes_b = b.next(static_cast<size_t>(n * item));
    if (!bytes_b) return bytes_b.error();

    if (!bytes_decide || std::memcmp(bytes_a->data(), bytes_b->data(), bytes_a->size()) != 0) {
      for (uint64_t i = 0; i < n; ++i) {
        const auto x = Codec::load_one(bytes_a->data() + i * item, swap_a);
        const auto y = Codec::load_one(bytes_b->data() + i * item, swap_b);
        if (x != y) folder.add(x, y, done + i);
      }
    }
    done += n;
  }
  diff.elements = layout_a.elements;
  return {};
}

// Storage orders that differ: a walks its own order and b is read at the
// same logical coordinates, which needs b whole in memory.
template <typename Codec>
Status compare_across_orders(const TensorLayout& layout_a, std::string_view a,
                             const TensorLayout& layout_b, std::string_view b,
                             Folder<Codec>& folder, TensorDiff& diff) {
  const size_t item = dtype_size(layout_a.dtype);
  const std::vector<uint64_t>& shape = layout_a.shape;
  const size_t rank = shape.size();
  std::vector<uint64_t> stride_b(rank, 1);
  for (size_t step = 1; step < rank; ++step) {
    const size_t axis = layout_b.fortran_order ? step : rank - 1 - step;
    const size_t previous = layout_b.fortran_order ? step - 1 : rank - step;
    stride_b[axis] = stride_b[previous] * shape[previous];
  }
  const bool swap_a = layout_a.big_endian != host_is_big_endian();
  const bool swap_b = layout_b.big_endian != host_is_big_endian();

  std::vector<uint64_t> index(rank, 0);
  for (uint64_t flat = 0; flat < layout_a.elements; ++flat) {
    uint64_t offset_b = 0;
    for (size_t axis = 0; axis < rank; ++axis) offset_b += index[axis] * stride_b[axis];
    const auto x = Codec::load_one(a.data() + flat * item, swap_a);
    const auto y = Codec::load_one(b.data() + offset_b * item, swap_b);
    if (x != y) folder.add(x, y, flat);

    for (size_t step = 0; step < rank; ++step) {
      const size_t axis = layout_a.fortran_order ? step : rank - 1 - step;
      if (++index[axis] < shape[axis]) break;
      index[axis] = 0;
    }
  }
  diff.elements = layout_a.elements;
  return {};
}

template <typename Codec>
Result<TensorDiff> compare_as(const TensorLayout& layout_a, ByteStream& a,
                              const TensorLayout& layout_b, ByteStream& b,
                              const Tolerance& tolerance) {
  TensorDiff diff;
  Folder<Codec> folder(diff, tolerance);
  Status status;
  if (layout_a.fortran_order == layout_b.fortran_order || order_is_immaterial(layout_a.shape)) {
    status = compare_in_step<Codec>(layout_a, a, layout_b, b, folder, diff);
  } else {
    const size_t bytes = static_cast<size_t>(layout_a.elements * dtype_size(layout_a.dtype));
    const std::string_view whole_a = a.whole();
    const std::string_view whole_b = b.whole();
    if (whole_a.size() != bytes || whole_b.size() != bytes) {
      return make_error(
          "a C-order and a Fortran-order tensor can be compared only when both are stored "
          "uncompressed");
    }
    status = compare_across_orders<Codec>(layout_a, whole_a, layout_b, whole_b, folder, diff);
  }
  if (!status) return status.error();
  folder.finish(layout_a);
  return diff;
}

}  // namespace

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBool:
      return "bool";
    case DType::kU8:
      return "uint8";
    case DType::kU16:
      return "uint16";
    case DType::kU32:
      return "uint32";
    case DType::kU64:
      return "uint64";
    case DType::kI8:
      return "int8";
    case DType::kI16:
      return "int16";
    case DType::kI32:
      return "int32";
    case DType::kI64:
      return "int64";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
    case DType::kF32:
      return "float32";
    case DType::kF64:
      return "float64";
    case DType::kC64:
      return "complex64";
    case DType::kF8E4M3:
      return "float8_e4m3fn";
    case DType::kF8E4M3Fnuz:
      return "float8_e4m3fnuz";
    case DType::kF8E5M2:
      return "float8_e5m2";
    case DType::kF8E5M2Fnuz:
      return "float8_e5m2fnuz";
    case DType::kF8E8M0:
      break;
  }
  return "float8_e8m0fnu";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kU16:
    case DType::kI16:
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kU32:
    case DType::kI32:
    case DType::kF32:
      return 4;
    case DType::kU64:
    case DType::kI64:
    case DType::kF64:
    case DType::kC64:
      return 8;
    default:
      return 1;
  }
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

std::string_view ulp_bucket_name(size_t bucket) {
  static constexpr std::string_view kNames[kUlpBuckets] = {"0",      "1",         "2-15",
                                                           "16-255", "256-65535", ">=65536"};
  return bucket < kUlpBuckets ? kNames[bucket] : "";
}

Result<std::string_view> MemoryStream::next(size_t max) {
  if (release_ == PageRelease::kBehind && offset_ - released_ >= kReleaseWindow) {
    release_before(offset_);
  }
  const size_t n = std::min(max, bytes_.size() - offset_);
  const std::string_view bytes = bytes_.substr(offset_, n);
  offset_ += n;
  return bytes;
}

void MemoryStream::release_before(size_t offset) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto base = reinterpret_cast<uintptr_t>(bytes_.data());
  // Only pages wholly inside what was read: a neighbour's bytes may share
  // the first and the last.
  const uintptr_t begin = (base + released_ + page - 1) / page * page;
  const uintptr_t end = (base + offset) / page * page;
  if (end > begin) {
    // Advice only: on failure the pages simply stay resident.
    (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
  released_ = offset;
}

double f8_to_double(DType dtype, uint8_t bits) {
  constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
  if (dtype == DType::kF8E8M0) {
    return bits == 0xff ? kNan : std::ldexp(1.0, static_cast<int>(bits) - 127);
  }

  int mantissa_bits = 3;
  int bias = 7;
  switch (dtype) {
    case DType::kF8E4M3:
      if ((bits & 0x7f) == 0x7f) return kNan;
      break;
    case DType::kF8E4M3Fnuz:
      if (bits == 0x80) return kNan;
      bias = 8;
      break;
    case DType::kF8E5M2:
      if ((bits & 0x7c) == 0x7c) {
        if ((bits & 0x03) != 0) return kNan;
        return (bits & 0x80) != 0 ? -std::numeric_limits<double>::infinity()
                                  : std::numeric_limits<double>::infinity();
      }
      mantissa_bits = 2;
      bias = 15;
      break;
    case DType::kF8E5M2Fnuz:
      if (bits == 0x80) return kNan;
      mantissa_bits = 2;
      bias = 16;
      break;
    default:
      return kNan;
  }

  const int exponent = (bits & 0x7f) >> mantissa_bits;
  const int mantissa = bits & ((1 << mantissa_bits) - 1);
  const double magnitude =
      exponent == 0 ? std::ldexp(mantissa, 1 - bias - mantissa_bits)
                    : std::ldexp(mantissa + (1 << mantissa_bits), exponent - bias - mantissa_bits);
  return (bits & 0x80) != 0 ? -magnitude : magnitude;
}

Result<TensorDiff> compare_tensors(const TensorLayout& layout_a, ByteStream& a,
                                   const TensorLayout& layout_b, ByteStream& b,
                                   const Tolerance& tolerance) {
  if (layout_a.dtype != layout_b.dtype || layout_a.shape != layout_b.shape ||
      layout_a.elements != layout_b.elements) {
    return make_error("tensors of different dtypes or shapes are not compared element by element");
  }

  switch (layout_a.dtype) {
    case DType::kBool:
      return compare_as<BoolCodec>(layout_a, a, layout_b, b, tolerance);
    case DType::kU8:
      return compare_as<IntegerCodec<uint8_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kU16:
      return compare_as<IntegerCodec<uint16_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kU32:
      return compare_as<IntegerCodec<uint32_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kU64:
      return compare_as<IntegerCodec<uint64_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kI8:
      return compare_as<IntegerCodec<int8_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kI16:
      return compare_as<IntegerCodec<int16_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kI32:
      return compare_as<IntegerCodec<int32_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kI64:
      return compare_as<IntegerCodec<int64_t>>(layout_a, a, layout_b, b, tolerance);
    case DType::kF16:
      return compare_as<F16Codec>(layout_a, a, layout_b, b, tolerance);
    case DType::kBF16:
      return compare_as<BF16Codec>(layout_a, a, layout_b, b, tolerance);
    case DType::kF32:
      return compare_as<F32Codec>(layout_a, a, layout_b, b, tolerance);
    case DType::kF64:
      return compare_as<F64Codec>(layout_a, a, layout_b, b, tolerance);
    case DType::kC64:
      return compare_as<C64Codec>(layout_a, a, layout_b, b, tolerance);
    case DType::kF8E4M3:
      return compare_as<F8Codec<DType::kF8E4M3>>(layout_a, a, layout_b, b, tolerance);
    case DType::kF8E4M3Fnuz:
      return compare_as<F8Codec<DType::kF8E4M3Fnuz>>(layout_a, a, layout_b, b, tolerance);
    case DType::kF8E5M2:
      return compare_as<F8Codec<DType::kF8E5M2>>(layout_a, a, layout_b, b, tolerance);
    case DType::kF8E5M2Fnuz:
      return compare_as<F8Codec<DType::kF8E5M2Fnuz>>(layout_a, a, layout_b, b, tolerance);
    case DType::kF8E8M0:
      break;
  }
  return compare_as<F8Codec<DType::kF8E8M0>>(layout_a, a, layout_b, b, tolerance);
}

}  // namespace memdet::compare
