// What the file-format fuzz targets share: the input written to a file of
// the given suffix, then compared with itself as `memdet diff` would, which
// opens, parses, maps and streams every tensor the reader claims it holds.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "compare/tensor_diff.h"

namespace memdet::fuzz {

inline void diff_with_itself(const uint8_t* data, size_t size, const char* suffix) {
  static const std::string path =
      "/tmp/memdet-fuzz-" + std::to_string(::getpid()) + std::string(suffix);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return;
  if (size > 0) std::fwrite(data, 1, size, file);
  std::fclose(file);
  compare::Tolerance tolerance;
  tolerance.max_ulp = 1;
  auto report = compare::diff_paths(path, path, tolerance);
  if (report && report->verdict == compare::Verdict::kDiffer) {
    // A file compared with itself cannot differ, NaN payloads aside: those
    // compare bitwise and so still agree.
    std::fprintf(stderr, "%s differs from itself\n", path.c_str());
    __builtin_trap();
  }
}

}  // namespace memdet::fuzz
