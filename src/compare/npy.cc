#include "compare/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "compare/byteswap.h"
#include "compare/ulp.h"

namespace memdet::compare {

namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
// Magic, two version bytes, and the header length: 2 bytes in version 1.0,
// 4 in versions 2.0 and 3.0.
constexpr size_t kPreambleMax = 12;
// numpy's np.load refuses headers over 10000 bytes; a header holding a
// plain dtype and 64 dimensions needs under 2000. The cap bounds what a
// lying length field can make read_npy_header allocate.
constexpr uint64_t kMaxHeaderLength = 1 << 20;
// numpy 1.x allows 32 dimensions, numpy 2 allows 64.
constexpr size_t kMaxDimensions = 64;
constexpr size_t kArrayAlign = 64;
// np.save pads the header so that the first dimension can later grow to
// this many digits in place; matching it keeps our files identical to
// numpy's.
constexpr size_t kGrowthAxisMaxDigits = 21;
constexpr size_t kChunkBytes = 1 << 20;
constexpr std::string_view kBfloat16Descr = "bfloat16";

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&&) = delete;
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // Closes now so that the caller sees the error close reports, which for
  // a written file can be the first sign that the data did not reach disk.
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Error errno_error(std::string_view what) {
  return make_error(std::string(what) + ": " + std::strerror(errno));
}

Error malformed(std::string_view what) {
  return make_error("malformed header: " + std::string(what));
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

uint64_t load_le(std::string_view bytes, size_t offset, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    value |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

struct Preamble {
  uint64_t header_start = 0;
  uint64_t header_length = 0;
};

// Reads magic, version and header length, and checks that the header they
// announce fits in the file. Needs only the first kPreambleMax bytes.
Result<Preamble> parse_preamble(std::string_view file_start, uint64_t file_size) {
  const std::string_view bytes =
      file_start.substr(0, std::min<uint64_t>(file_start.size(), file_size));

  const auto truncated = [&](size_t need) {
    if (bytes.size() == file_size) {
      return make_error("truncated header: file is " + std::to_string(file_size) + " bytes");
    }
    return make_error("truncated header: needs " + std::to_string(need) + " bytes, have " +
                      std::to_string(bytes.size()));
  };

  const size_t magic_seen = std::min(bytes.size(), kMagic.size());
  if (bytes.substr(0, magic_seen) != kMagic.substr(0, magic_seen)) {
    return make_error("not an npy file (bad magic)");
  }
  if (bytes.size() < kMagic.size() + 2) return truncated(kMagic.size() + 2);

  const auto major = static_cast<unsigned char>(bytes[6]);
  const auto minor = static_cast<unsigned char>(bytes[7]);
  size_t length_width = 0;
  if (major == 1 && minor == 0) {
    length_width = 2;
  } else if ((major == 2 || major == 3) && minor == 0) {
    length_width = 4;
  } else {
    return make_error("unsupported npy version " + std::to_string(major) + "." +
                      std::to_string(minor));
  }

  Preamble preamble;
  preamble.header_start = kMagic.size() + 2 + length_width;
  if (bytes.size() < preamble.header_start) return truncated(preamble.header_start);
  preamble.header_length = load_le(bytes, kMagic.size() + 2, length_width);

  if (preamble.header_length > file_size - preamble.header_start) {
    return make_error("header length " + std::to_string(preamble.header_length) +
                      " runs past the end of the file (" + std::to_string(file_size) + " bytes)");
  }
  if (preamble.header_length > kMaxHeaderLength) {
    return make_error("header length " + std::to_string(preamble.header_length) +
                      " is implausibly large");
  }
  return preamble;
}

// Reads the header dictionary numpy writes with repr(): a Python literal
// such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
// Only the subset of Python syntax those three values can take is accepted.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  Status parse(NpyHeader& header) {
    skip_space();
    if (!consume('{')) return malformed("does not start with '{'");

    bool have_descr = false;
    bool have_order = false;
    bool have_shape = false;
    while (true) {
      skip_space();
      if (at_end()) return malformed("missing closing brace");
      if (consume('}')) break;

      auto key = parse_string();
      if (!key) return key.error();
      skip_space();
      if (!consume(':')) return malformed("expected ':' after key " + quoted(*key));
      skip_space();

      Status value_status;
      if (*key == "descr") {
        value_status = parse_descr_value(header, have_descr);
      } else if (*key == "fortran_order") {
        value_status = parse_order_value(header, have_order);
      } else if (*key == "shape") {
        value_status = parse_shape_value(header, have_shape);
      } else {
        return malformed("unexpected key " + quoted(*key));
      }
      if (!value_status) return value_status;

      skip_space();
      if (consume(',')) continue;
      if (consume('}')) break;
      if (at_end()) return malformed("missing closing brace");
      return malformed("expected ',' or '}' after the value of " + quoted(*key));
    }

    skip_space();
    if (!at_end()) return malformed("unexpected text after the closing brace");
    if (!have_descr) return malformed("no 'descr' key");
    if (!have_order) return malformed("no 'fortran_order' key");
    if (!have_shape) return malformed("no 'shape' key");
    return {};
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  bool consume(char c) {
    if (at_end() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  void skip_space() {
    while (!at_end() && is_space(text_[pos_])) ++pos_;
  }

  static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  }

  Result<std::string> parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') return malformed("expected a quoted string");
    ++pos_;

    const size_t start = pos_;
    while (!at_end() && text_[pos_] != quote) {
      // No key or dtype name needs escapes, so a backslash means the text
      // is not what numpy writes.
      if (text_[pos_] == '\\' || text_[pos_] == '\n') {
        return malformed("escape or line break inside a string");
      }
      ++pos_;
    }
    if (at_end()) return malformed("unterminated string");
    std::string value(text_.substr(start, pos_ - start));
    ++pos_;
    return value;
  }

  Status parse_descr_value(NpyHeader& header, bool& seen) {
    if (seen) return malformed("duplicate key 'descr'");
    seen = true;
    if (peek() == '[') return make_error("structured dtypes are not supported");

    auto descr = parse_string();
    if (!descr) return malformed("'descr' is not a string");
    header.descr = std::move(*descr);
    return parse_descr(header);
  }

  Status parse_order_value(NpyHeader& header, bool& seen) {
    if (seen) return malformed("duplicate key 'fortran_order'");
    seen = true;

    const std::string_view rest = text_.substr(pos_);
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const std::string_view name = word;
      const bool ends = rest.size() == name.size() ||
                        (rest.size() > name.size() && !is_name_char(rest[name.size()]));
      if (rest.starts_with(name) && ends) {
        header.fortran_order = value;
        pos_ += name.size();
        return {};
      }
    }
    return malformed("'fortran_order' is not True or False");
  }

  Status parse_shape_value(NpyHeader& header, bool& seen) {
    if (seen) return malformed("duplicate key 'shape'");
    seen = true;
    if (!consume('(')) return malformed("'shape' is not a tuple");

    header.shape.clear();
    bool trailing_comma = false;
    skip_space();
    while (!consume(')')) {
      if (at_end()) return malformed("unterminated shape");
      if (header.shape.size() == kMaxDimensions) {
        return make_error("shape has more than " + std::to_string(kMaxDimensions) + " dimensions");
      }

      auto dimension = parse_dimension();
      if (!dimension) return dimension.error();
      header.shape.push_back(*dimension);

      skip_space();
      trailing_comma = consume(',');
      skip_space();
      if (!trailing_comma && peek() != ')') return malformed("expected ',' or ')' in shape");
    }
    // In Python "(5)" is the integer 5, not a tuple, and numpy cannot load
    // a file that says so.
    if (header.shape.size() == 1 && !trailing_comma) return malformed("'shape' is not a tuple");
    return {};
  }

  Result<uint64_t> parse_dimension() {
    if (peek() == '-') return make_error("negative dimension in shape");
    if (peek() < '0' || peek() > '9') return malformed("expected a dimension in shape");

    uint64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const auto digit = static_cast<uint64_t>(peek() - '0');
      if (!checked_mul(value, 10, value) || __builtin_add_overflow(value, digit, &value)) {
        return make_error("dimension in shape does not fit in 64 bits");
      }
      ++pos_;
    }
    // Python 2 wrote long integers with an L suffix, and numpy still reads
    // version 1.0 files that carry it.
    if (peek() == 'L') ++pos_;
    return value;
  }

  static bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }

  // Splits a descr such as "<f4", "|b1", "<U8" or "<M8[ns]" into byte
  // order, kind and item size, accepting only the fixed-size dtypes whose
  // size numpy defines.
  static Status parse_descr(NpyHeader& header) {
    const std::string_view descr = header.descr;
    const auto unsupported = [&] { return make_error("unsupported dtype " + quoted(descr)); };
    if (descr.empty()) return unsupported();

    // numpy cannot load this descr, but it is what saving ml_dtypes'
    // bfloat16 by str(array.dtype) gives, the workaround its users share for
    // np.save losing the type. The data comes from tofile() on the host,
    // little-endian on every machine that trains in bfloat16.
    if (descr == kBfloat16Descr) {
      header.byte_order = '<';
      header.kind = 'V';
      header.item_size = 2;
      return {};
    }

    const char order = descr[0];
    if (order == '=')
      return make_error("dtype " + quoted(descr) + " has host-dependent byte order");
    if (order != '<' && order != '>' && order != '|') {
      return make_error("dtype " + quoted(descr) + " has no byte order");
    }
    if (descr.size() < 2) return unsupported();
    const char kind = descr[1];
    if (kind == 'O') return make_error("object arrays are not supported");

    size_t pos = 2;
    uint64_t size = 0;
    const size_t digits_start = pos;
    while (pos < descr.size() && descr[pos] >= '0' && descr[pos] <= '9') {
      size = size * 10 + static_cast<uint64_t>(descr[pos] - '0');
      if (size > (uint64_t{1} << 31)) return unsupported();
      ++pos;
    }
    if (pos == digits_start || size == 0) return unsupported();

    const std::string_view suffix = descr.substr(pos);
    const bool dated = kind == 'M' || kind == 'm';
    if (dated && !suffix.empty()) {
      const bool bracketed = suffix.size() > 2 && suffix.front() == '[' && suffix.back() == ']';
      const std::string_view unit = bracketed ? suffix.substr(1, suffix.size() - 2) : "";
      const bool letters = std::all_of(unit.begin(), unit.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      });
      if (!bracketed || !letters) return unsupported();
    } else if (!suffix.empty()) {
      return unsupported();
    }

    const auto one_of = [size](std::initializer_list<uint64_t> sizes) {
      return std::find(sizes.begin(), sizes.end(), size) != sizes.end();
    };
    bool numeric = true;
    switch (kind) {
      case 'b':
        if (size != 1) return unsupported();
        break;
      case 'i':
      case 'u':
        if (!one_of({1, 2, 4, 8})) return unsupported();
        break;
      case 'f':
        if (!one_of({2, 4, 8, 12, 16})) return unsupported();
        break;
      case 'c':
        if (!one_of({8, 16, 24, 32})) return unsupported();
        break;
      case 'M':
      case 'm':
        if (size != 8) return unsupported();
        break;
      case 'U':
        // The size counts UCS-4 characters, not bytes.
        size *= 4;
        numeric = false;
        break;
      case 'S':
      case 'V':
        numeric = false;
        break;
      default:
        return unsupported();
    }
    if (numeric && size > 1 && order == '|') {
      return make_error("dtype " + quoted(descr) + " has no byte order");
    }

    header.byte_order = order;
    header.kind = kind;
    header.item_size = static_cast<size_t>(size);
    return {};
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// Reads up to size bytes at offset, short only at end of file.
Result<size_t> pread_full(int fd, char* buffer, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, buffer + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("cannot read");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// Writes all of buffer, or returns false with errno saying why not.
bool write_full(int fd, const char* buffer, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, buffer + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    // write(2) returns 0 only for a zero-byte request; the guard keeps a
    // misbehaving file system from spinning this loop.
    if (n == 0) {
      errno = EIO;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

Error shrank() { return make_error("file shrank while being read"); }

struct OpenFile {
  ScopedFd fd;
  uint64_t size = 0;
};

// Opens a regular file for reading and takes its size from the descriptor,
// so what is read later is the file that was measured.
Result<OpenFile> open_regular(const std::string& path) {
  // O_NONBLOCK: a FIFO in the artifact's place must not stall the open.
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return errno_error("cannot open");

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("cannot stat");
  if (!S_ISREG(st.st_mode)) return make_error("not a regular file");
  return OpenFile{std::move(fd), static_cast<uint64_t>(st.st_size)};
}

struct OpenNpy {
  ScopedFd fd;
  NpyHeader header;
};

// Opens the file and parses its header; the descriptor stays open so the
// data read later comes from the file whose header was checked.
Result<OpenNpy> open_npy(const std::string& path) {
  auto file = open_regular(path);
  if (!file) return file.error();
  ScopedFd fd = std::move(file->fd);
  const uint64_t file_size = file->size;

  std::string start(std::min<uint64_t>(file_size, kPreambleMax), '\0');
  auto got = pread_full(fd.get(), start.data(), start.size(), 0);
  if (!got) return got.error();
  if (*got < start.size()) return shrank();

  // The preamble bounds the header by the file size and kMaxHeaderLength,
  // so the read below cannot be made to allocate without limit.
  auto preamble = parse_preamble(start, file_size);
  if (!preamble) return preamble.error();
  const uint64_t header_end = preamble->header_start + preamble->header_length;
  if (header_end > start.size()) {
    const size_t have = start.size();
    start.resize(header_end);
    got = pread_full(fd.get(), start.data() + have, start.size() - have, have);
    if (!got) return got.error();
    if (*got < start.size() - have) return shrank();
  }

  auto header = parse_npy_header(start, file_size);
  if (!header) return header.error();
  return OpenNpy{std::move(fd), std::move(*header)};
}

std::string shape_repr(const std::vector<uint64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

// The element types compared as numbers.
enum class ElementType {
  kF16,
  kBF16,
  kF32,
  kF64,
  kI8,
  kI16,
  kI32,
  kI64,
  kU8,
  kU16,
  kU32,
  kU64,
  kBool
};

// How a file's elements are stored: their type and whether their bytes are
// in the opposite order to the host's.
struct Encoding {
  ElementType type;
  bool swapped;
};

bool host_is_big_endian() { return std::endian::native == std::endian::big; }

ElementType raw_element_type(RawDtype dtype) {
  switch (dtype) {
    case RawDtype::kF16:
      return ElementType::kF16;
    case RawDtype::kBF16:
      return ElementType::kBF16;
    case RawDtype::kF32:
      return ElementType::kF32;
    case RawDtype::kF64:
      break;
  }
  return ElementType::kF64;
}

// Which element type a header's descr stands for, if any compared here.
std::optional<ElementType> element_type(const NpyHeader& header, const CompareOptions& options) {
  if (header.descr == kBfloat16Descr) return ElementType::kBF16;

  const size_t size = header.item_size;
  const auto pick = [size](ElementType one, ElementType two, ElementType four,
                           ElementType eight) -> std::optional<ElementType> {
    switch (size) {
      case 1:
        return one;
      case 2:
        return two;
      case 4:
        return four;
      case 8:
        return eight;
      default:
        return std::nullopt;
    }
  };
  switch (header.kind) {
    case 'f':
      // 'f1' does not parse, and 12- and 16-byte long doubles are x87 or
      // quad formats this does not decode.
      if (size == 2) return ElementType::kF16;
      if (size == 4) return ElementType::kF32;
      if (size == 8) return ElementType::kF64;
      return std::nullopt;
    case 'i':
      return pick(ElementType::kI8, ElementType::kI16, ElementType::kI32, ElementType::kI64);
    case 'u':
      return pick(ElementType::kU8, ElementType::kU16, ElementType::kU32, ElementType::kU64);
    case 'b':
      return ElementType::kBool;
    case 'V':
      if (options.dtype && raw_dtype_size(*options.dtype) == size) {
        return raw_element_type(*options.dtype);
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::optional<Encoding> encoding(const NpyHeader& header, const CompareOptions& options) {
  const std::optional<ElementType> type = element_type(header, options);
  if (!type) return std::nullopt;
  const bool big = header.byte_order == '>';
  const bool swapped = header.item_size > 1 && big != host_is_big_endian();
  return Encoding{*type, swapped};
}

// With at most one dimension above 1, C and Fortran order put the elements
// in the same sequence.
bool order_is_immaterial(const std::vector<uint64_t>& shape) {
  return std::count_if(shape.begin(), shape.end(), [](uint64_t d) { return d > 1; }) <= 1;
}

// The position in the array of the element at offset flat in storage
// order: the last index varies fastest in C order, the first in Fortran.
std::vector<uint64_t> storage_index(uint64_t flat, const std::vector<uint64_t>& shape,
                                    bool fortran_order) {
  std::vector<uint64_t> index(shape.size(), 0);
  for (size_t step = 0; step < shape.size(); ++step) {
    const size_t axis = fortran_order ? step : shape.size() - 1 - step;
    index[axis] = flat % shape[axis];
    flat /= shape[axis];
  }
  return index;
}

// Copies n elements out of a chunk buffer, which carries no alignment
// promise, so they are not read through a cast pointer; and puts them in
// host byte order.
template <typename Bits>
void load_block(Bits* block, const char* bytes, uint64_t n, bool swapped) {
  std::memcpy(block, bytes, n * sizeof(Bits));
  if (swapped) {
    for (uint64_t i = 0; i < n; ++i) block[i] = byteswap(block[i]);
  }
}

// Bit layout and widening of each floating-point format. The magnitudes of
// one sign are ordered like their bit patterns in all four, which is what
// the ULP arithmetic below relies on.
struct F16Format {
  using Bits = uint16_t;
  static constexpr Bits kExponent = 0x7c00;
  static constexpr const char* kName = "float16";
  static double value(Bits bits) { return f16_to_double(bits); }
};

struct BF16Format {
  using Bits = uint16_t;
  static constexpr Bits kExponent = 0x7f80;
  static constexpr const char* kName = "bfloat16";
  static double value(Bits bits) { return bf16_to_double(bits); }
};

struct F32Format {
  using Bits = uint32_t;
  static constexpr Bits kExponent = std::bit_cast<Bits>(std::numeric_limits<float>::infinity());
  static constexpr const char* kName = "float32";
  static double value(Bits bits) { return static_cast<double>(std::bit_cast<float>(bits)); }
};

struct F64Format {
  using Bits = uint64_t;
  static constexpr Bits kExponent = std::bit_cast<Bits>(std::numeric_limits<double>::infinity());
  static constexpr const char* kName = "float64";
  static double value(Bits bits) { return std::bit_cast<double>(bits); }
};

// What every accumulator shares: the stream cut into blocks in host byte
// order, and the first differing element. Derived supplies add_block(n,
// flat), which folds block_a_[0..n) against block_b_[0..n), and
// add_differing(a, b, flat) for one pair whose bits differ.
template <typename Derived, typename BitsT>
class BlockAccumulator {
 public:
  using Bits = BitsT;

  BlockAccumulator(NumericDiff& diff, bool swapped_a, bool swapped_b)
      : diff_(diff), swapped_a_(swapped_a), swapped_b_(swapped_b) {}

  void add(const char* a, const char* b, uint64_t count, uint64_t first_flat) {
    for (uint64_t start = 0; start < count; start += kBlock) {
      const uint64_t n = std::min(kBlock, count - start);
      load_block(block_a_, a + start * sizeof(Bits), n, swapped_a_);
      load_block(block_b_, b + start * sizeof(Bits), n, swapped_b_);
      static_cast<Derived*>(this)->add_block(n, first_flat + start);
    }
    diff_.elements += count;
  }

  bool found_first() const { return have_first_; }
  uint64_t first_flat() const { return first_flat_; }

 protected:
  static constexpr uint64_t kBlock = 1024;

  // The element-by-element path over the current block.
  void add_each_differing(uint64_t n, uint64_t flat) {
    for (uint64_t i = 0; i < n; ++i) {
      if (block_a_[i] != block_b_[i]) {
        static_cast<Derived*>(this)->add_differing(block_a_[i], block_b_[i], flat + i);
      }
    }
  }

  void note_first(uint64_t flat, double a, double b) {
    if (!have_first_) {
      have_first_ = true;
      first_flat_ = flat;
      diff_.first_a = a;
      diff_.first_b = b;
    }
  }

  NumericDiff& diff_;
  Bits block_a_[kBlock];
  Bits block_b_[kBlock];

 private:
  const bool swapped_a_;
  const bool swapped_b_;
  bool have_first_ = false;
  uint64_t first_flat_ = 0;
};

// Folds element pairs of one floating-point format into a NumericDiff.
template <typename Format>
class FloatAccumulator : public BlockAccumulator<FloatAccumulator<Format>, typename Format::Bits> {
  using Base = BlockAccumulator<FloatAccumulator<Format>, typename Format::Bits>;
  friend Base;

 public:
  using Bits = typename Format::Bits;
  static constexpr const char* kName = Format::kName;
  static constexpr bool kHasUlp = true;

  using Base::Base;

 private:
  using Base::block_a_;
  using Base::block_b_;
  using Base::diff_;

  void add_block(uint64_t n, uint64_t flat) {
    if (!add_finite_block(n, flat)) this->add_each_differing(n, flat);
  }

  static constexpr Bits kSign = static_cast<Bits>(Bits{1} << (sizeof(Bits) * 8 - 1));
  static constexpr Bits kMagnitude = static_cast<Bits>(~kSign);
  static constexpr Bits kExponent = Format::kExponent;

  // Steps between two non-NaN values: a difference of magnitudes on one
  // side of zero and a sum across it, so +0 and -0 are 0 apart.
  static uint64_t ulp(Bits a, Bits b) {
    const uint64_t magnitude_a = a & kMagnitude;
    const uint64_t magnitude_b = b & kMagnitude;
    const bool same_sign = ((a ^ b) & kSign) == 0;
    const uint64_t apart =
        magnitude_a > magnitude_b ? magnitude_a - magnitude_b : magnitude_b - magnitude_a;
    return same_sign ? apart : magnitude_a + magnitude_b;
  }

  // The common case, a block of finite values, in loops without branches
  // so the compiler can vectorise them. Returns false, having changed
  // nothing, when the block holds a NaN or an infinity or its differences
  // overflow; the element-by-element path then takes the block.
  bool add_finite_block(uint64_t n, uint64_t flat) {
    uint64_t differing = 0;
    Bits special = 0;
    for (uint64_t i = 0; i < n; ++i) {
      differing += block_a_[i] != block_b_[i];
      const Bits exponent_a = block_a_[i] & kExponent;
      const Bits exponent_b = block_b_[i] & kExponent;
      special |=
          static_cast<Bits>(exponent_a == kExponent) | static_cast<Bits>(exponent_b == kExponent);
    }
    if (differing == 0) return true;
    if (special != 0) return false;

    double max_abs = 0;
    double max_rel = 0;
    uint64_t max_ulp = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const double x = Format::value(block_a_[i]);
      const double y = Format::value(block_b_[i]);
      const double abs_diff = std::fabs(x - y);
      const double scale = std::max(std::fabs(x), std::fabs(y));
      const double rel_diff = scale > 0 ? abs_diff / scale : 0.0;
      max_abs = std::max(max_abs, abs_diff);
      max_rel = std::max(max_rel, rel_diff);
      max_ulp = std::max(max_ulp, ulp(block_a_[i], block_b_[i]));
    }
    if (std::isinf(max_abs)) return false;

    if (!this->found_first()) {
      uint64_t i = 0;
      while (block_a_[i] == block_b_[i]) ++i;
      this->note_first(flat + i, Format::value(block_a_[i]), Format::value(block_b_[i]));
    }
    diff_.differing += differing;
    diff_.max_abs = std::max(diff_.max_abs, max_abs);
    diff_.max_rel = std::max(diff_.max_rel, max_rel);
    diff_.max_ulp = std::max(diff_.max_ulp, max_ulp);
    return true;
  }

  void add_differing(Bits a_bits, Bits b_bits, uint64_t flat) {
    const double a = Format::value(a_bits);
    const double b = Format::value(b_bits);
    ++diff_.differing;
    this->note_first(flat, a, b);

    const bool a_nan = (a_bits & kMagnitude) > kExponent;
    const bool b_nan = (b_bits & kMagnitude) > kExponent;
    if (a_nan || b_nan) {
      if (a_nan != b_nan) ++diff_.nan_mismatch;
      return;
    }

    double abs_diff = 0;
    double rel_diff = 0;
    if ((a_bits & kMagnitude) == kExponent || (b_bits & kMagnitude) == kExponent) {
      if (a != b) abs_diff = rel_diff = std::numeric_limits<double>::infinity();
    } else if (a != b) {
      const double scale = std::max(std::fabs(a), std::fabs(b));
      abs_diff = std::fabs(a - b);
      // Far apart doubles of opposite sign overflow |a - b|; scaling first
      // keeps the relative difference finite.
      rel_diff = std::isinf(abs_diff) ? std::fabs(a / scale - b / scale) : abs_diff / scale;
    }
    diff_.max_abs = std::max(diff_.max_abs, abs_diff);
    diff_.max_rel = std::max(diff_.max_rel, rel_diff);
    diff_.max_ulp = std::max(diff_.max_ulp, ulp(a_bits, b_bits));
  }
};

template <typename Int>
constexpr const char* integer_name() {
  constexpr bool kSigned = std::is_signed_v<Int>;
  switch (sizeof(Int)) {
    case 1:
      return kSigned ? "int8" : "uint8";
    case 2:
      return kSigned ? "int16" : "uint16";
    case 4:
      return kSigned ? "int32" : "uint32";
    default:
      return kSigned ? "int64" : "uint64";
  }
}

// Folds element pairs of one integer type, or of bools, into a NumericDiff.
// Differences are taken exactly in 64 bits before they become doubles, so
// INT64_MIN against INT64_MAX does not overflow.
template <typename Int, bool kIsBool = false>
class IntegerAccumulator
    : public BlockAccumulator<IntegerAccumulator<Int, kIsBool>, std::make_unsigned_t<Int>> {
  using Base = BlockAccumulator<IntegerAccumulator<Int, kIsBool>, std::make_unsigned_t<Int>>;
  friend Base;

 public:
  using Bits = std::make_unsigned_t<Int>;
  static constexpr const char* kName = kIsBool ? "bool" : integer_name<Int>();
  static constexpr bool kHasUlp = false;

  using Base::Base;

 private:
  using Base::diff_;

  void add_block(uint64_t n, uint64_t flat) { this->add_each_differing(n, flat); }

  // numpy writes True as 1, but reads any nonzero byte as True; the bytes
  // still count as differing, like +0 against -0.
  static Int value(Bits bits) {
    if constexpr (kIsBool) {
      return static_cast<Int>(bits != 0);
    } else {
      return static_cast<Int>(bits);
    }
  }

  void add_differing(Bits a_bits, Bits b_bits, uint64_t flat) {
    const Int a = value(a_bits);
    const Int b = value(b_bits);
    ++diff_.differing;
    this->note_first(flat, static_cast<double>(a), static_cast<double>(b));
    if (a == b) return;

    // Modulo 2^64 the difference of the widened values is exact, and the
    // larger minus the smaller is its true size.
    const auto wide_a = static_cast<uint64_t>(a);
    const auto wide_b = static_cast<uint64_t>(b);
    const double abs_diff = static_cast<double>(a > b ? wide_a - wide_b : wide_b - wide_a);
    const double scale =
        std::max(std::fabs(static_cast<double>(a)), std::fabs(static_cast<double>(b)));
    diff_.max_abs = std::max(diff_.max_abs, abs_diff);
    diff_.max_rel = std::max(diff_.max_rel, abs_diff / scale);
  }
};

// Where one file's elements start, and how they are stored.
struct DataSource {
  const std::string& path;
  int fd;
  uint64_t offset;
  bool swapped;
};

Status read_chunk(const DataSource& source, std::vector<char>& buffer, size_t bytes,
                  uint64_t offset) {
  auto got = pread_full(source.fd, buffer.data(), bytes, source.offset + offset);
  if (!got) return make_error(source.path + ": " + got.error().message);
  if (*got < bytes) return make_error(source.path + ": " + shrank().message);
  return {};
}

// Streams count element pairs through an Accumulator, and gives the
// storage-order offset of the first differing pair, if any.
template <typename Accumulator>
Result<std::optional<uint64_t>> diff_stream(const DataSource& a, const DataSource& b,
                                            uint64_t count, NumericDiff& diff) {
  using Bits = typename Accumulator::Bits;
  const uint64_t chunk_elements = kChunkBytes / sizeof(Bits);
  std::vector<char> buffer_a(kChunkBytes);
  std::vector<char> buffer_b(kChunkBytes);
  Accumulator accumulator(diff, a.swapped, b.swapped);
  diff.dtype = Accumulator::kName;
  diff.has_ulp = Accumulator::kHasUlp;
  // Equal bytes mean equal elements only when both files order them alike.
  const bool same_bytes_same_values = a.swapped == b.swapped;

  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min(chunk_elements, count - done);
    const size_t bytes = static_cast<size_t>(n * sizeof(Bits));
    const uint64_t offset = done * sizeof(Bits);

    if (Status read = read_chunk(a, buffer_a, bytes, offset); !read) return read.error();
    if (Status read = read_chunk(b, buffer_b, bytes, offset); !read) return read.error();

    // Runs that agree are the common case; memcmp settles a whole chunk of
    // them at memory speed.
    if (same_bytes_same_values && std::memcmp(buffer_a.data(), buffer_b.data(), bytes) == 0) {
      diff.elements += n;
    } else {
      accumulator.add(buffer_a.data(), buffer_b.data(), n, done);
    }
    done += n;
  }

  if (!accumulator.found_first()) return std::optional<uint64_t>();
  return std::optional<uint64_t>(accumulator.first_flat());
}

Result<std::optional<uint64_t>> diff_elements(ElementType type, const DataSource& a,
                                              const DataSource& b, uint64_t count,
                                              NumericDiff& diff) {
  switch (type) {
    case ElementType::kF16:
      return diff_stream<FloatAccumulator<F16Format>>(a, b, count, diff);
    case ElementType::kBF16:
      return diff_stream<FloatAccumulator<BF16Format>>(a, b, count, diff);
    case ElementType::kF32:
      return diff_stream<FloatAccumulator<F32Format>>(a, b, count, diff);
    case ElementType::kF64:
      return diff_stream<FloatAccumulator<F64Format>>(a, b, count, diff);
    case ElementType::kI8:
      return diff_stream<IntegerAccumulator<int8_t>>(a, b, count, diff);
    case ElementType::kI16:
      return diff_stream<IntegerAccumulator<int16_t>>(a, b, count, diff);
    case ElementType::kI32:
      return diff_stream<IntegerAccumulator<int32_t>>(a, b, count, diff);
    case ElementType::kI64:
      return diff_stream<IntegerAccumulator<int64_t>>(a, b, count, diff);
    case ElementType::kU8:
      return diff_stream<IntegerAccumulator<uint8_t>>(a, b, count, diff);
    case ElementType::kU16:
      return diff_stream<IntegerAccumulator<uint16_t>>(a, b, count, diff);
    case ElementType::kU32:
      return diff_stream<IntegerAccumulator<uint32_t>>(a, b, count, diff);
    case ElementType::kU64:
      return diff_stream<IntegerAccumulator<uint64_t>>(a, b, count, diff);
    case ElementType::kBool:
      break;
  }
  return diff_stream<IntegerAccumulator<uint8_t, true>>(a, b, count, diff);
}

}  // namespace

Result<NpyHeader> parse_npy_header(std::string_view file_start, uint64_t file_size) {
  auto preamble = parse_preamble(file_start, file_size);
  if (!preamble) return preamble.error();
  const uint64_t header_end = preamble->header_start + preamble->header_length;
  if (file_start.size() < header_end) {
    return make_error("truncated header: needs " + std::to_string(header_end) + " bytes, have " +
                      std::to_string(file_start.size()));
  }

  NpyHeader header;
  const std::string_view text = file_start.substr(preamble->header_start, preamble->header_length);
  if (Status parsed = HeaderParser(text).parse(header); !parsed) return parsed.error();

  // A zero dimension makes the array empty whatever the others say, even
  // if their product alone would overflow.
  const bool empty = std::find(header.shape.begin(), header.shape.end(), 0) != header.shape.end();
  header.element_count = empty ? 0 : 1;
  for (uint64_t dimension : header.shape) {
    if (!empty && !checked_mul(header.element_count, dimension, header.element_count)) {
      return make_error("shape " + shape_repr(header.shape) +
                        " has more elements than fit in 64 bits");
    }
  }
  if (!checked_mul(header.element_count, header.item_size, header.data_bytes)) {
    return make_error("shape " + shape_repr(header.shape) + " of " + header.descr +
                      " has more bytes than fit in 64 bits");
  }

  header.data_offset = header_end;
  const uint64_t file_data = file_size - header_end;
  if (file_data != header.data_bytes) {
    return make_error("header says " + std::to_string(header.data_bytes) +
                      " bytes of data, file has " + std::to_string(file_data));
  }
  return header;
}

Result<NpyHeader> read_npy_header(const std::string& path) {
  auto file = open_npy(path);
  if (!file) return file.error();
  return std::move(file->header);
}

Status write_npy_f32(const std::string& path, const float* data,
                     const std::vector<uint64_t>& shape) {
  uint64_t count = 1;
  for (uint64_t dimension : shape) {
    if (!checked_mul(count, dimension, count)) {
      return make_error("shape " + shape_repr(shape) + " has more elements than fit in 64 bits");
    }
  }
  if (count > 0 && data == nullptr) return make_error("no data for shape " + shape_repr(shape));

  // The same text, key order and padding as numpy's _write_array_header.
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_repr(shape) + ", }";
  if (!shape.empty()) {
    header.append(kGrowthAxisMaxDigits - std::to_string(shape[0]).size(), ' ');
  }
  const size_t preamble_size = kMagic.size() + 2 + 2;
  const size_t unpadded = header.size() + 1;
  const size_t padding = kArrayAlign - (preamble_size + unpadded) % kArrayAlign;
  header.append(padding, ' ');
  header += '\n';
  if (header.size() > std::numeric_limits<uint16_t>::max()) {
    return make_error("shape " + shape_repr(shape) + " is too long for a version 1.0 header");
  }

  std::string preamble(kMagic);
  preamble += '\x01';
  preamble += '\x00';
  preamble += static_cast<char>(header.size() & 0xff);
  preamble += static_cast<char>(header.size() >> 8);

  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return errno_error("cannot create " + path);
  // A half-written file would later read as a lying one; better none.
  const auto fail = [&] {
    Error error = errno_error("cannot write " + path);
    ::unlink(path.c_str());
    return error;
  };

  if (!write_full(fd.get(), preamble.data(), preamble.size()) ||
      !write_full(fd.get(), header.data(), header.size())) {
    return fail();
  }

  // Bytes are placed one by one so the file is little-endian on any host.
  std::vector<char> chunk(kChunkBytes);
  for (uint64_t done = 0; done < count;) {
    const uint64_t n = std::min<uint64_t>(kChunkBytes / 4, count - done);
    for (uint64_t i = 0; i < n; ++i) {
      const auto bits = std::bit_cast<uint32_t>(data[done + i]);
      for (size_t byte = 0; byte < 4; ++byte) {
        chunk[i * 4 + byte] = static_cast<char>((bits >> (8 * byte)) & 0xff);
      }
    }
    if (!write_full(fd.get(), chunk.data(), static_cast<size_t>(n * 4))) return fail();
    done += n;
  }

  if (fd.close() != 0) return fail();
  return {};
}

Result<RawDtype> parse_raw_dtype(std::string_view name) {
  for (RawDtype dtype : {RawDtype::kF16, RawDtype::kBF16, RawDtype::kF32, RawDtype::kF64}) {
    if (name == raw_dtype_name(dtype)) return dtype;
  }
  return make_error("unknown dtype " + quoted(name) + ": expected f16, bf16, f32 or f64");
}

std::string_view raw_dtype_name(RawDtype dtype) {
  switch (dtype) {
    case RawDtype::kF16:
      return "f16";
    case RawDtype::kBF16:
      return "bf16";
    case RawDtype::kF32:
      return "f32";
    case RawDtype::kF64:
      break;
  }
  return "f64";
}

size_t raw_dtype_size(RawDtype dtype) {
  switch (dtype) {
    case RawDtype::kF16:
    case RawDtype::kBF16:
      return 2;
    case RawDtype::kF32:
      return 4;
    case RawDtype::kF64:
      break;
  }
  return 8;
}

Result<std::optional<NumericDiff>> compare_npy(const std::string& path_a, const std::string& path_b,
                                               const CompareOptions& options) {
  auto a = open_npy(path_a);
  if (!a) return make_error(path_a + ": " + a.error().message);
  auto b = open_npy(path_b);
  if (!b) return make_error(path_b + ": " + b.error().message);

  const NpyHeader& header_a = a->header;
  const NpyHeader& header_b = b->header;
  const std::optional<Encoding> encoding_a = encoding(header_a, options);
  const std::optional<Encoding> encoding_b = encoding(header_b, options);
  const bool comparable =
      encoding_a && encoding_b && encoding_a->type == encoding_b->type &&
      header_a.shape == header_b.shape &&
      (header_a.fortran_order == header_b.fortran_order || order_is_immaterial(header_a.shape));
  if (!comparable) return std::optional<NumericDiff>();

  NumericDiff diff;
  const DataSource source_a{path_a, a->fd.get(), header_a.data_offset, encoding_a->swapped};
  const DataSource source_b{path_b, b->fd.get(), header_b.data_offset, encoding_b->swapped};
  auto first = diff_elements(encoding_a->type, source_a, source_b, header_a.element_count, diff);
  if (!first) return first.error();
  if (*first) diff.first_index = storage_index(**first, header_a.shape, header_a.fortran_order);
  return std::optional<NumericDiff>(std::move(diff));
}

Result<NumericDiff> compare_raw(const std::string& path_a, const std::string& path_b,
                                RawDtype dtype) {
  auto a = open_regular(path_a);
  if (!a) return make_error(path_a + ": " + a.error().message);
  auto b = open_regular(path_b);
  if (!b) return make_error(path_b + ": " + b.error().message);

  const size_t item_size = raw_dtype_size(dtype);
  for (const auto& [path, file] : {std::pair{&path_a, &*a}, std::pair{&path_b, &*b}}) {
    if (file->size % item_size != 0) {
      return make_error(*path + ": " + std::to_string(file->size) +
                        " bytes is not a whole number of " + std::to_string(item_size) + "-byte " +
                        std::string(raw_dtype_name(dtype)) + " values");
    }
  }
  if (a->size != b->size) {
    return make_error(path_b + ": " + std::to_string(b->size) + " bytes, but " + path_a + " has " +
                      std::to_string(a->size) + "; raw files of different sizes " +
                      "cannot be compared element by element");
  }

  NumericDiff diff;
  const bool swapped = host_is_big_endian();
  const DataSource source_a{path_a, a->fd.get(), 0, swapped};
  const DataSource source_b{path_b, b->fd.get(), 0, swapped};
  auto first =
      diff_elements(raw_element_type(dtype), source_a, source_b, a->size / item_size, diff);
  if (!first) return first.error();
  if (*first) diff.first_index = {**first};
  return diff;
}

}  // namespace memdet::compare
