#include "compare/tensor_diff.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include "compare/mapped_file.h"
#include "compare/npy.h"
#include "compare/npz.h"
#include "compare/safetensors.h"

namespace memdet::compare {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kNpyMagic = "\x93NUMPY";
constexpr std::string_view kZipMagic = "PK\x03\x04";
constexpr std::string_view kEmptyZipMagic = "PK\x05\x06";

bool ends_with(const std::string& text, std::string_view suffix) { return text.ends_with(suffix); }

// Every byte a tensor file holds comes from a read-only file mapping, so the
// pages a comparison has passed can be handed back.
std::function<Result<std::unique_ptr<ByteStream>>()> memory_opener(std::string_view bytes) {
  return [bytes]() -> Result<std::unique_ptr<ByteStream>> {
    return std::unique_ptr<ByteStream>(std::make_unique<MemoryStream>(bytes, PageRelease::kBehind));
  };
}

// The whole file as one byte tensor.
TensorSource bytes_source(std::string name, std::string label, std::string_view bytes) {
  TensorSource source;
  source.name = std::move(name);
  source.layout.dtype = DType::kU8;
  source.layout.shape = {bytes.size()};
  source.layout.elements = bytes.size();
  source.dtype_label = std::move(label);
  source.bytes_only = true;
  source.open = memory_opener(bytes);
  return source;
}

// The dtype an .npy header names, when it is one compared element by element.
std::optional<DType> npy_dtype(const NpyHeader& header) {
  if (header.descr == "bfloat16") return DType::kBF16;
  const size_t size = header.item_size;
  const auto by_size = [size](DType one, DType two, DType four,
                              DType eight) -> std::optional<DType> {
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
    case 'b':
      return DType::kBool;
    case 'i':
      return by_size(DType::kI8, DType::kI16, DType::kI32, DType::kI64);
    case 'u':
      return by_size(DType::kU8, DType::kU16, DType::kU32, DType::kU64);
    case 'f':
      if (size == 2) return DType::kF16;
      if (size == 4) return DType::kF32;
      if (size == 8) return DType::kF64;
      return std::nullopt;
    case 'c':
      if (size == 8) return DType::kC64;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace

TensorSource npy_source(std::string name, const NpyHeader& header) {
  TensorSource source;
  source.name = std::move(name);
  const std::optional<DType> dtype = npy_dtype(header);
  if (!dtype) {
    source.layout.dtype = DType::kU8;
    source.layout.shape = {header.data_bytes};
    source.layout.elements = header.data_bytes;
    source.dtype_label = header.descr;
    source.bytes_only = true;
    return source;
  }
  source.layout.dtype = *dtype;
  source.layout.shape = header.shape;
  source.layout.elements = header.element_count;
  source.layout.fortran_order = header.fortran_order;
  source.layout.big_endian = header.byte_order == '>';
  source.dtype_label = std::string(dtype_name(*dtype));
  return source;
}

Result<TensorSource> npy_tensor(std::string name, std::string_view bytes) {
  auto header = parse_npy_header(bytes, bytes.size());
  if (!header) return header.error();
  TensorSource source = npy_source(std::move(name), *header);
  source.open = memory_opener(bytes.substr(header->data_offset, header->data_bytes));
  return source;
}

Result<TensorSet> open_tensor_file(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return make_error(path + ": " + mapped.error().message);
  const std::string_view bytes = (*mapped)->bytes();
  TensorSet set;
  set.keep_alive.push_back(*mapped);

  if (bytes.starts_with(kNpyMagic) || ends_with(path, ".npy")) {
    auto tensor = npy_tensor("", bytes);
    if (!tensor) return make_error(path + ": " + tensor.error().message);
    set.tensors.push_back(std::move(*tensor));
    return set;
  }
  if (bytes.starts_with(kZipMagic) || bytes.starts_with(kEmptyZipMagic) ||
      ends_with(path, ".npz")) {
    return open_npz(path, std::move(*mapped));
  }
  if (ends_with(path, ".safetensors")) {
    auto contents = parse_safetensors(bytes);
    if (!contents) return make_error(path + ": " + contents.error().message);
    for (const SafetensorsEntry& entry : contents->entries) {
      TensorSource source;
      source.name = entry.name;
      source.layout = entry.layout;
      source.dtype_label = std::string(dtype_name(entry.layout.dtype));
      source.open =
          memory_opener(bytes.substr(contents->data_start + entry.begin, entry.end - entry.begin));
      set.tensors.push_back(std::move(source));
    }
    return set;
  }
  set.tensors.push_back(bytes_source("", "bytes", bytes));
  return set;
}

namespace {

FindingKind kind_of(const TensorDiff& diff) {
  if (diff.differing > 0) return FindingKind::kDiffers;
  if (diff.bitwise_differing > 0) return FindingKind::kWithinTolerance;
  return FindingKind::kIdentical;
}

TensorFinding describe(const std::string& file, const TensorSource* a, const TensorSource* b) {
  TensorFinding finding;
  finding.file = file;
  const TensorSource& either = a != nullptr ? *a : *b;
  finding.tensor = either.name;
  finding.bytes_only = either.bytes_only;
  if (a != nullptr) {
    finding.dtype_a = a->dtype_label;
    finding.shape_a = a->layout.shape;
  }
  if (b != nullptr) {
    finding.dtype_b = b->dtype_label;
    finding.shape_b = b->layout.shape;
  }
  return finding;
}

Status compare_pair(const std::string& file, const TensorSource& a, const TensorSource& b,
                    const Tolerance& tolerance, std::vector<TensorFinding>& findings) {
  TensorFinding finding = describe(file, &a, &b);
  if (a.dtype_label != b.dtype_label || a.bytes_only != b.bytes_only ||
      a.layout.dtype != b.layout.dtype) {
    finding.kind = FindingKind::kDtypeMismatch;
  } else if (a.layout.shape != b.layout.shape) {
    finding.kind = FindingKind::kShapeMismatch;
  } else {
    auto stream_a = a.open();
    if (!stream_a) return stream_a.error();
    auto stream_b = b.open();
    if (!stream_b) return stream_b.error();
    auto diff = compare_tensors(a.layout, **stream_a, b.layout, **stream_b, tolerance);
    if (!diff) return diff.error();
    finding.diff = std::move(*diff);
    finding.kind = kind_of(finding.diff);
  }
  findings.push_back(std::move(finding));
  return {};
}

// Pairs the tensors of two files by name: A's in A's order, then those
// only B has, in B's order.
Status diff_files(const std::string& file, const std::string& path_a, const std::string& path_b,
                  const Tolerance& tolerance, std::vector<TensorFinding>& findings) {
  auto set_a = open_tensor_file(path_a);
  if (!set_a) return set_a.error();
  auto set_b = open_tensor_file(path_b);
  if (!set_b) return set_b.error();

  std::map<std::string, const TensorSource*> by_name_b;
  for (const TensorSource& source : set_b->tensors) by_name_b[source.name] = &source;
  std::set<std::string> names_a;
  for (const TensorSource& a : set_a->tensors) {
    names_a.insert(a.name);
    const auto partner = by_name_b.find(a.name);
    if (partner == by_name_b.end()) {
      TensorFinding finding = describe(file, &a, nullptr);
      finding.kind = FindingKind::kOnlyInA;
      findings.push_back(std::move(finding));
      continue;
    }
    const std::string where = file.empty() ? path_a : file;
    if (Status compared = compare_pair(file, a, *partner->second, tolerance, findings); !compared) {
      return make_error(where + (a.name.empty() ? "" : ": tensor '" + a.name + "'") + ": " +
                        compared.error().message);
    }
  }
  for (const TensorSource& b : set_b->tensors) {
    if (names_a.count(b.name) != 0) continue;
    TensorFinding finding = describe(file, nullptr, &b);
    finding.kind = FindingKind::kOnlyInB;
    findings.push_back(std::move(finding));
  }
  return {};
}

// The regular files under root, by path relative to it, in sorted order.
// Links are followed, to files and to folders, but a file is named by where
// it is in the folder, not by where its link leads; a loop of links ends
// the listing with an error.
Result<std::vector<std::string>> list_files(const std::string& root) {
  std::vector<std::string> files;
  std::error_code error;
  fs::recursive_directory_iterator it(root, fs::directory_options::follow_directory_symlink, error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error)) {
      files.push_back(it->path().lexically_relative(root).string());
    }
  }
  if (error) return make_error(root + ": cannot list: " + error.message());
  std::sort(files.begin(), files.end());
  return files;
}

TensorFinding lone_file(const std::string& file, FindingKind kind) {
  TensorFinding finding;
  finding.file = file;
  finding.kind = kind;
  return finding;
}

Verdict verdict_of(const std::vector<TensorFinding>& findings) {
  Verdict verdict = Verdict::kIdentical;
  for (const TensorFinding& finding : findings) {
    if (finding.kind == FindingKind::kWithinTolerance) verdict = Verdict::kWithinTolerance;
    if (finding.kind != FindingKind::kIdentical && finding.kind != FindingKind::kWithinTolerance) {
      return Verdict::kDiffer;
    }
  }
  return verdict;
}

}  // namespace

Result<DiffReport> diff_paths(const std::string& path_a, const std::string& path_b,
                              const Tolerance& tolerance) {
  DiffReport report;
  report.path_a = path_a;
  report.path_b = path_b;
  report.tolerance = tolerance;

  std::error_code error;
  const bool dir_a = fs::is_directory(path_a, error);
  const bool dir_b = fs::is_directory(path_b, error);
  if (dir_a != dir_b) {
    return make_error((dir_a ? path_a : path_b) + " is a folder but " + (dir_a ? path_b : path_a) +
                      " is not; give two files or two folders");
  }

  if (!dir_a) {
    if (Status done = diff_files("", path_a, path_b, tolerance, report.findings); !done) {
      return done.error();
    }
  } else {
    auto files_a = list_files(path_a);
    if (!files_a) return files_a.error();
    auto files_b = list_files(path_b);
    if (!files_b) return files_b.error();
    const std::set<std::string> in_b(files_b->begin(), files_b->end());
    const std::set<std::string> in_a(files_a->begin(), files_a->end());
    for (const std::string& file : *files_a) {
      if (in_b.count(file) == 0) {
        report.findings.push_back(lone_file(file, FindingKind::kOnlyInA));
        continue;
      }
      const std::string a = (fs::path(path_a) / file).string();
      const std::string b = (fs::path(path_b) / file).string();
      if (Status done = diff_files(file, a, b, tolerance, report.findings); !done) {
        return done.error();
      }
    }
    for (const std::string& file : *files_b) {
      if (in_a.count(file) == 0) report.findings.push_back(lone_file(file, FindingKind::kOnlyInB));
    }
  }

  report.verdict = verdict_of(report.findings);
  return report;
}

}  // namespace memdet::compare
