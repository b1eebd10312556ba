// `memdet diff` over whole artifacts: two tensor files, or two folders of
// them paired by relative path. Tensors are paired by name (a safetensors
// key, an npz member; an .npy file is one unnamed tensor), then their dtype
// and shape are checked, and only tensors that agree on both are compared
// element by element.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "compare/npy.h"
#include "compare/tensor.h"
#include "core/result.h"

namespace memdet::compare {

// One tensor a file holds, with what opens its bytes.
struct TensorSource {
  std::string name;
  TensorLayout layout;
  // The dtype as the report names it; for bytes_only, the file's own word.
  std::string dtype_label;
  // Compared as bytes, without numeric figures: files of no tensor format
  // inside a folder, and .npy arrays of strings, dates or records.
  bool bytes_only = false;
  std::function<Result<std::unique_ptr<ByteStream>>()> open;
};

// What one file holds, in the order its tensors are reported: offset order
// in a safetensors file, member order in an npz.
struct TensorSet {
  std::vector<TensorSource> tensors;
  std::vector<std::shared_ptr<const void>> keep_alive;  // what the streams read from
};

// The tensor an .npy header describes, with no way to open it yet.
// Arrays of no dtype compared element by element become bytes_only.
TensorSource npy_source(std::string name, const NpyHeader& header);

// The one tensor of an .npy file held whole in bytes. Arrays of no dtype
// compared element by element become bytes_only. Errors leave naming the
// file to the caller.
Result<TensorSource> npy_tensor(std::string name, std::string_view bytes);

// Opens path as .npy or .npz when its magic says so, as safetensors when its
// name ends in .safetensors, and otherwise as plain bytes. A file whose name
// promises a format its bytes do not hold is an error. Errors start with
// the path.
Result<TensorSet> open_tensor_file(const std::string& path);

enum class FindingKind {
  kIdentical,
  kWithinTolerance,
  kDiffers,
  kDtypeMismatch,
  kShapeMismatch,
  kOnlyInA,
  kOnlyInB,
};

// One tensor of A and its partner in B, or a tensor or file one side lacks.
struct TensorFinding {
  std::string file;    // path relative to the two folders; empty for two files
  std::string tensor;  // empty for an .npy file and for plain files
  FindingKind kind = FindingKind::kIdentical;
  bool bytes_only = false;
  std::string dtype_a;
  std::string dtype_b;
  std::vector<uint64_t> shape_a;
  std::vector<uint64_t> shape_b;
  TensorDiff diff;
};

enum class Verdict { kIdentical, kWithinTolerance, kDiffer };

struct DiffReport {
  std::string path_a;
  std::string path_b;
  Tolerance tolerance;
  std::vector<TensorFinding> findings;  // every pair, in report order
  Verdict verdict = Verdict::kIdentical;
};

// Compares two files, or two folders file by file. An unreadable or lying
// file is an error naming it; what differs is a finding.
Result<DiffReport> diff_paths(const std::string& path_a, const std::string& path_b,
                              const Tolerance& tolerance);

}  // namespace memdet::compare
