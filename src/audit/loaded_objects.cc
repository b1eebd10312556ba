// An LD_AUDIT library: the dynamic linker calls it for every object it
// loads into the workload, and it appends the object's path to the file
// named by MEMDET_LOADED_OBJECTS. A zombie has no /proc/<pid>/maps, so this
// is how memdet learns which BLAS and allocator a run really used.
//
// Rules for code here, because it runs inside the dynamic linker's audit
// namespace before the program's own initialisation:
// - no C++ runtime: no allocation, no exceptions, no statics with
//   constructors, no iostreams;
// - only system calls and plain libc functions that need no set-up
//   (getenv, open, write, getpid);
// - never fail the workload: if the file cannot be opened, record nothing.
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {

int g_out = -1;

// Formats a non-negative number into `buffer`; returns its length.
size_t format_number(long value, char* buffer) {
  char digits[24];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && count < sizeof digits);
  for (size_t i = 0; i < count; ++i) {
    buffer[i] = digits[count - 1 - i];
  }
  return count;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) unsigned int la_version(unsigned int version) {
  const char* path = std::getenv("MEMDET_LOADED_OBJECTS");
  if (path != nullptr && path[0] != '\0') {
    g_out = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  // The program itself, marked with '!': memdet checks that the audit
  // reached the program it meant to watch, and not only a wrapper such as
  // `env -i` that dropped LD_AUDIT before exec.
  if (g_out >= 0) {
    char line[4096 + 32];
    size_t length = format_number(static_cast<long>(::getpid()), line);
    line[length++] = '\t';
    line[length++] = '!';
    ssize_t got = ::readlink("/proc/self/exe", line + length, 4096);
    if (got > 0) {
      length += static_cast<size_t>(got);
      line[length++] = '\n';
      [[maybe_unused]] ssize_t ignored = ::write(g_out, line, length);
    }
  }
  // Returning the linker's own version accepts its interface as it is.
  return version <= LAV_CURRENT ? version : LAV_CURRENT;
}

__attribute__((visibility("default"))) unsigned int la_objopen(struct link_map* map, Lmid_t,
                                                               uintptr_t*) {
  if (g_out < 0 || map->l_name == nullptr || map->l_name[0] == '\0') {
    return 0;
  }
  // One write per line, "pid<TAB>path\n", so lines from forked workers
  // appending to the same file never interleave.
  char line[4096 + 32];
  size_t length = format_number(static_cast<long>(::getpid()), line);
  line[length++] = '\t';
  size_t name_length = std::strlen(map->l_name);
  if (name_length > 4096) {
    name_length = 4096;
  }
  std::memcpy(line + length, map->l_name, name_length);
  length += name_length;
  line[length++] = '\n';
  [[maybe_unused]] ssize_t ignored = ::write(g_out, line, length);
  return 0;
}

}  // extern "C"
