// A 64 MiB allocation, touched and kept to exit, for the hugepage tests:
//   probe_huge malloc    plain malloc
//   probe_huge advise    malloc, then madvise(MADV_HUGEPAGE) as numpy does
//   probe_huge control   an mmap the probe aligns and advises itself: shows
//                        whether the kernel gives huge pages at all
// Prints "AnonHugePages <kB>" from /proc/self/smaps_rollup before exit.
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

constexpr size_t kSize = 64u << 20;
constexpr uintptr_t kHuge = 2u << 20;

long anon_huge_kb() {
  std::FILE* file = std::fopen("/proc/self/smaps_rollup", "r");
  if (file == nullptr) {
    return -1;
  }
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, file) != nullptr) {
    if (std::sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) {
      break;
    }
  }
  std::fclose(file);
  return kb;
}

char* aligned_inside(char* begin) {
  return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(begin) + kHuge - 1) & ~(kHuge - 1));
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  char* block = nullptr;
  if (mode == "malloc" || mode == "advise") {
    block = static_cast<char*>(std::malloc(kSize));
    if (mode == "advise") {
      char* start = aligned_inside(block);
      ::madvise(start, static_cast<size_t>(block + kSize - start) & ~(kHuge - 1), MADV_HUGEPAGE);
    }
  } else if (mode == "control") {
    void* map =
        ::mmap(nullptr, kSize + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
      return 1;
    }
    block = aligned_inside(static_cast<char*>(map));
    ::madvise(block, kSize, MADV_HUGEPAGE);
  } else {
    std::fprintf(stderr, "usage: probe_huge malloc|advise|control\n");
    return 2;
  }
  if (block == nullptr) {
    return 1;
  }
  for (size_t at = 0; at < kSize; at += 4096) {
    block[at] = 1;
  }
  std::printf("AnonHugePages %ld\n", anon_huge_kb());
  return 0;
}
