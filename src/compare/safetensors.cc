#include "compare/safetensors.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "compare/strict_json.h"

namespace memdet::compare {

namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";
// The top object, a tensor's object, and its shape or offsets list: no
// valid header nests deeper, so anything that does is refused before it
// can cost memory.
constexpr int kMaxDepth = 3;

struct DtypeSpelling {
  std::string_view name;
  DType dtype;
};

constexpr DtypeSpelling kDtypes[] = {
    {"BOOL", DType::kBool},      {"U8", DType::kU8},
    {"U16", DType::kU16},        {"U32", DType::kU32},
    {"U64", DType::kU64},        {"I8", DType::kI8},
    {"I16", DType::kI16},        {"I32", DType::kI32},
    {"I64", DType::kI64},        {"F16", DType::kF16},
    {"BF16", DType::kBF16},      {"F32", DType::kF32},
    {"F64", DType::kF64},        {"C64", DType::kC64},
    {"F8_E4M3", DType::kF8E4M3}, {"F8_E4M3FNUZ", DType::kF8E4M3Fnuz},
    {"F8_E5M2", DType::kF8E5M2}, {"F8_E5M2FNUZ", DType::kF8E5M2Fnuz},
    {"F8_E8M0", DType::kF8E8M0},
};

// Types the format defines whose elements are not whole bytes.
constexpr std::string_view kSubByteDtypes[] = {"F4", "F6_E2M3", "F6_E3M2"};

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

// Parses the header, refusing duplicate keys at any level (nlohmann keeps
// the last one silently) and nesting deeper than the format uses.
Result<json> parse_header(std::string_view text) {
  StrictJsonError error;
  auto parsed = parse_strict_json(text, kMaxDepth, error);
  if (parsed) return parsed;
  switch (error.kind) {
    case StrictJsonError::Kind::kDuplicateKey:
      return make_error("duplicate key " + in_quotes(error.detail) + " in the header");
    case StrictJsonError::Kind::kTooDeep:
      return make_error("header nests deeper than the format allows");
    case StrictJsonError::Kind::kInvalid:
      break;
  }
  return make_error("header is not valid JSON: " + error.detail);
}

Result<DType> parse_dtype(const std::string& name) {
  for (const DtypeSpelling& spelling : kDtypes) {
    if (spelling.name == name) return spelling.dtype;
  }
  for (std::string_view sub_byte : kSubByteDtypes) {
    if (sub_byte == name) {
      return make_error("dtype " + name + " packs elements below a byte, which is not supported");
    }
  }
  return make_error("unknown dtype " + in_quotes(name));
}

Result<uint64_t> unsigned_value(const json& value, std::string_view what) {
  if (!value.is_number_unsigned()) {
    return make_error(std::string(what) + " " + value.dump() +
                      " is not a non-negative integer of at most 64 bits");
  }
  return value.get<uint64_t>();
}

Result<SafetensorsEntry> parse_entry(const std::string& name, const json& value) {
  const auto refuse = [&name](const std::string& problem) {
    return make_error("tensor " + in_quotes(name) + ": " + problem);
  };
  if (!value.is_object()) return refuse("not an object");
  for (const auto& [key, ignored] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return refuse("unexpected key " + in_quotes(key));
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) return refuse(std::string("no '") + key + "'");
  }

  SafetensorsEntry entry;
  entry.name = name;
  const json& dtype = value["dtype"];
  if (!dtype.is_string()) return refuse("dtype is not a string");
  auto parsed_dtype = parse_dtype(dtype.get<std::string>());
  if (!parsed_dtype) return refuse(parsed_dtype.error().message);
  entry.layout.dtype = *parsed_dtype;

  const json& shape = value["shape"];
  if (!shape.is_array()) return refuse("shape is not a list");
  for (const json& dimension : shape) {
    auto size = unsigned_value(dimension, "dimension");
    if (!size) return refuse(size.error().message);
    entry.layout.shape.push_back(*size);
  }
  // A zero dimension empties the tensor whatever the others say.
  const auto& dims = entry.layout.shape;
  const bool empty = std::find(dims.begin(), dims.end(), 0) != dims.end();
  uint64_t elements = empty ? 0 : 1;
  for (uint64_t dimension : dims) {
    if (!empty && __builtin_mul_overflow(elements, dimension, &elements)) {
      return refuse("shape " + shape_text(dims) + " has more elements than fit in 64 bits");
    }
  }
  entry.layout.elements = elements;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(elements, dtype_size(entry.layout.dtype), &bytes)) {
    return refuse("shape " + shape_text(dims) + " has more bytes than fit in 64 bits");
  }

  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    return refuse("data_offsets is not a list of two offsets");
  }
  auto begin = unsigned_value(offsets[0], "offset");
  if (!begin) return refuse(begin.error().message);
  auto end = unsigned_value(offsets[1], "offset");
  if (!end) return refuse(end.error().message);
  entry.begin = *begin;
  entry.end = *end;
  const std::string range =
      "[" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
  if (entry.end < entry.begin) return refuse("data_offsets " + range + " end before they begin");
  if (entry.end - entry.begin != bytes) {
    return refuse("data_offsets " + range + " hold " + std::to_string(entry.end - entry.begin) +
                  " bytes, but shape " + shape_text(dims) + " of " + dtype.get<std::string>() +
                  " needs " + std::to_string(bytes));
  }
  return entry;
}

Status parse_metadata(const json& value, std::map<std::string, std::string>& metadata) {
  if (!value.is_object()) return make_error("__metadata__ is not an object");
  for (const auto& [key, text] : value.items()) {
    if (!text.is_string()) {
      return make_error("__metadata__ value of " + in_quotes(key) + " is not a string");
    }
    metadata[key] = text.get<std::string>();
  }
  return {};
}

// Sorted by offset, the entries must tile the data exactly.
Status check_tiling(const std::vector<SafetensorsEntry>& entries, uint64_t data_size) {
  uint64_t expected = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& entry : entries) {
    if (entry.end > data_size) {
      return make_error("tensor " + in_quotes(entry.name) + " ends at byte " +
                        std::to_string(entry.end) + ", past the end of the data (" +
                        std::to_string(data_size) + " bytes)");
    }
    if (entry.begin < expected) {
      return make_error("tensors " + in_quotes(previous->name) + " and " + in_quotes(entry.name) +
                        " overlap: " + in_quotes(entry.name) + " starts at byte " +
                        std::to_string(entry.begin) + ", before " + in_quotes(previous->name) +
                        " ends at " + std::to_string(expected));
    }
    if (entry.begin > expected) {
      return make_error("hole of " + std::to_string(entry.begin - expected) +
                        " bytes before tensor " + in_quotes(entry.name) + ": bytes " +
                        std::to_string(expected) + " to " + std::to_string(entry.begin) +
                        " belong to no tensor");
    }
    expected = entry.end;
    previous = &entry;
  }
  if (expected < data_size) {
    return make_error(std::to_string(data_size - expected) +
                      " trailing bytes after the last tensor");
  }
  return {};
}

}  // namespace

Result<SafetensorsFile> parse_safetensors(std::string_view bytes) {
  if (bytes.size() < 8) {
    return make_error("truncated: " + std::to_string(bytes.size()) +
                      " bytes, too short for the 8-byte header length");
  }
  uint64_t header_length = 0;
  for (size_t i = 0; i < 8; ++i) {
    header_length |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  if (header_length > kSafetensorsMaxHeader) {
    return make_error("header length " + std::to_string(header_length) +
                      " is over the format's limit of " + std::to_string(kSafetensorsMaxHeader) +
                      " bytes");
  }
  if (header_length > bytes.size() - 8) {
    return make_error("truncated: header length " + std::to_string(header_length) +
                      " runs past the end of the file (" + std::to_string(bytes.size()) +
                      " bytes)");
  }

  auto header = parse_header(bytes.substr(8, header_length));
  if (!header) return header.error();
  if (!header->is_object()) return make_error("header is not a JSON object");

  SafetensorsFile file;
  file.data_start = 8 + header_length;
  for (const auto& [key, value] : header->items()) {
    if (key == kMetadataKey) {
      if (Status parsed = parse_metadata(value, file.metadata); !parsed) return parsed.error();
      continue;
    }
    auto entry = parse_entry(key, value);
    if (!entry) return entry.error();
    file.entries.push_back(std::move(*entry));
  }

  std::sort(file.entries.begin(), file.entries.end(),
            [](const SafetensorsEntry& x, const SafetensorsEntry& y) {
              return std::tie(x.begin, x.end, x.name) < std::tie(y.begin, y.end, y.name);
            });
  if (Status tiled = check_tiling(file.entries, bytes.size() - file.data_start); !tiled) {
    return tiled.error();
  }
  return file;
}

std::string_view OpenSafetensors::data(const SafetensorsEntry& entry) const {
  return file->bytes().substr(contents.data_start + entry.begin, entry.end - entry.begin);
}

Result<OpenSafetensors> open_safetensors(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file) return make_error(path + ": " + file.error().message);
  auto contents = parse_safetensors((*file)->bytes());
  if (!contents) return make_error(path + ": " + contents.error().message);
  return OpenSafetensors{std::move(*file), std::move(*contents)};
}

std::string_view safetensors_dtype_name(DType dtype) {
  for (const DtypeSpelling& spelling : kDtypes) {
    if (spelling.dtype == dtype) return spelling.name;
  }
  return "";
}

}  // namespace memdet::compare
