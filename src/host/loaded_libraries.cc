#include "host/loaded_libraries.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include "core/text.h"

namespace memdet::host {
namespace {

bool is_blas(std::string_view name) {
  for (const char* prefix : {"libblas.so", "libopenblas", "libmkl_rt", "libblis", "libflexiblas",
                             "libcblas.so", "libscipy_openblas"}) {
    if (name.starts_with(prefix)) {
      return true;
    }
  }
  return false;
}

std::string allocator_of(std::string_view name) {
  for (const char* allocator : {"jemalloc", "tcmalloc", "mimalloc"}) {
    if (name.starts_with(std::string("lib") + allocator)) {
      return allocator;
    }
  }
  return {};
}

std::string resolve(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return path;
  }
  return resolved;
}

}  // namespace

std::string describe_blas(const std::string& resolved) {
  // The first part of the resolved path that matches names it; the
  // OpenBLAS builds come before plain "openblas".
  static const std::pair<const char*, const char*> kKnown[] = {
      {"openblas-pthread", "OpenBLAS (pthread)"},
      {"openblas-openmp", "OpenBLAS (OpenMP)"},
      {"openblas-serial", "OpenBLAS (serial)"},
      {"openblas", "OpenBLAS"},
      {"mkl", "Intel MKL"},
      {"blis", "BLIS"},
      {"flexiblas", "FlexiBLAS"},
      {"/blas/", "reference BLAS"},
  };
  for (const auto& [part, name] : kKnown) {
    if (resolved.find(part) != std::string::npos) {
      return name;
    }
  }
  return "unknown BLAS";
}

LoadedLibraries read_loaded_libraries(const std::string& path) {
  LoadedLibraries loaded;
  std::ifstream in(path);
  if (!in) {
    loaded.note =
        "no list of loaded objects: the program did not load memdet's audit library "
        "(a static or setuid program, or LD_AUDIT refused)";
    loaded.blas_name = "not recorded";
    loaded.allocator = "not recorded";
    return loaded;
  }
  loaded.recorded = true;

  std::set<std::string> pids;
  std::set<std::string> seen;
  std::string line;
  while (std::getline(in, line)) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      continue;
    }
    pids.insert(line.substr(0, tab));
    std::string object = line.substr(tab + 1);
    if (!object.empty() && object[0] == '!') {
      std::string program = resolve(object.substr(1));
      if (std::find(loaded.programs.begin(), loaded.programs.end(), program) ==
          loaded.programs.end()) {
        loaded.programs.push_back(program);
      }
      continue;
    }
    if (!seen.insert(object).second) {
      continue;
    }
    LoadedLibrary library{object, resolve(object)};
    loaded.objects.push_back(library);

    std::string_view name = base_name(object);
    if (is_blas(name)) {
      loaded.blas.push_back(library);
    }
    std::string allocator = allocator_of(name);
    if (!allocator.empty() && loaded.allocator.empty()) {
      loaded.allocator = allocator;
      loaded.allocator_path = library.resolved;
    }
  }
  loaded.processes = static_cast<int>(pids.size());

  // libblas.so.3 is what programs link; it names the implementation once
  // its links are followed. A second object such as libopenblas.so.0 is
  // the same library under its own name.
  loaded.blas_name = "none loaded";
  for (const LoadedLibrary& library : loaded.blas) {
    if (base_name(library.loaded_as).starts_with("libblas.so") ||
        loaded.blas_name == "none loaded") {
      loaded.blas_name = describe_blas(library.resolved);
    }
  }
  if (loaded.allocator.empty()) {
    loaded.allocator = "glibc malloc";
  }
  return loaded;
}

void require_program(LoadedLibraries& loaded, const std::string& program) {
  if (!loaded.recorded) {
    return;
  }
  std::string wanted = resolve(program);
  if (std::find(loaded.programs.begin(), loaded.programs.end(), wanted) != loaded.programs.end()) {
    return;
  }
  loaded = LoadedLibraries{};
  loaded.note = "the audit library never ran in " + wanted +
                ": something between memdet and it dropped LD_AUDIT (env -i?)";
  loaded.blas_name = "not recorded";
  loaded.allocator = "not recorded";
}

std::string audit_library_path() {
  std::error_code code;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", code);
  if (code) {
    return {};
  }
  for (const char* relative : {"libmemdet-audit.so", "../lib/memdet/libmemdet-audit.so"}) {
    std::filesystem::path candidate = self.parent_path() / relative;
    if (std::filesystem::exists(candidate, code)) {
      return std::filesystem::weakly_canonical(candidate, code).string();
    }
  }
  return {};
}

}  // namespace memdet::host
