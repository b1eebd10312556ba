// Which shared objects a run really loaded, as the LD_AUDIT library wrote
// them down, and the two that decide numerics most often: the BLAS and the
// allocator.
#pragma once

#include <string>
#include <vector>

namespace memdet::host {

struct LoadedLibrary {
  std::string loaded_as;  // the path the dynamic linker opened
  std::string resolved;   // after following links (Debian's alternatives)
};

struct LoadedLibraries {
  bool recorded = false;  // false: no list was written (see `note`)
  std::string note;
  int processes = 0;                   // distinct pids that wrote lines
  std::vector<std::string> programs;   // executables the audit library ran in
  std::vector<LoadedLibrary> objects;  // unique, in load order
  std::vector<LoadedLibrary> blas;     // every BLAS-like object loaded
  std::string blas_name;               // "OpenBLAS (pthread)", "reference BLAS", "none loaded", ...
  std::string allocator;               // "glibc malloc", "jemalloc", "tcmalloc", "mimalloc"
  std::string allocator_path;
};

// Parses the "pid<TAB>path" lines of `path`. A missing file means the
// program loaded no audit library: static, setuid, or not dynamically
// linked.
LoadedLibraries read_loaded_libraries(const std::string& path);

// Marks the record as not recorded when the audit library never ran inside
// `program` (resolved path): a wrapper dropped LD_AUDIT before it started,
// and the objects listed are the wrapper's.
void require_program(LoadedLibraries& loaded, const std::string& program);

// The name a person would give the BLAS at `resolved`.
std::string describe_blas(const std::string& resolved);

// The path to the audit library that ships beside the memdet binary, or
// empty when it is not there.
std::string audit_library_path();

}  // namespace memdet::host
