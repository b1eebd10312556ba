// Large blocks for the hugetlb tests, each touched before it is judged:
//   probe_hugetlb keep MIB [SECONDS]  malloc MIB MiB, touch it, print the
//                                     process's hugetlb use, keep the block
//                                     (sleeping SECONDS first) to exit
//   probe_hugetlb cycle MIB           malloc, calloc, posix_memalign and
//                                     realloc through growth, shrinking and
//                                     a move below the page size, checking
//                                     the data at each step; frees all
//                                     before exit, as Python does
// Prints "hugetlb_kB <kB>" (Private_Hugetlb + Shared_Hugetlb from
// /proc/self/smaps_rollup while the blocks are held), then "ok", or
// "bad <what>" and exits 1.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

constexpr size_t kMiB = 1u << 20;

long hugetlb_kb() {
  std::FILE* file = std::fopen("/proc/self/smaps_rollup", "r");
  if (file == nullptr) {
    return -1;
  }
  char line[256];
  long total = 0;
  long kb = 0;
  while (std::fgets(line, sizeof line, file) != nullptr) {
    if (std::sscanf(line, "Private_Hugetlb: %ld kB", &kb) == 1 ||
        std::sscanf(line, "Shared_Hugetlb: %ld kB", &kb) == 1) {
      total += kb;
    }
  }
  std::fclose(file);
  return total;
}

int bad(const char* what) {
  std::printf("bad %s\n", what);
  return 1;
}

void fill(unsigned char* block, size_t size, unsigned char seed) {
  for (size_t at = 0; at < size; at += 4096) {
    block[at] = static_cast<unsigned char>(seed + at / 4096);
  }
}

bool holds(const unsigned char* block, size_t size, unsigned char seed) {
  for (size_t at = 0; at < size; at += 4096) {
    if (block[at] != static_cast<unsigned char>(seed + at / 4096)) {
      return false;
    }
  }
  return true;
}

int keep(size_t size, unsigned seconds) {
  auto* block = static_cast<unsigned char*>(std::malloc(size));
  if (block == nullptr) {
    return bad("malloc");
  }
  fill(block, size, 3);
  if (malloc_usable_size(block) < size) {
    return bad("malloc_usable_size");
  }
  std::printf("hugetlb_kB %ld\n", hugetlb_kb());
  std::fflush(stdout);
  if (seconds > 0) {
    ::sleep(seconds);
  }
  std::printf("ok\n");
  return 0;
}

int cycle(size_t size) {
  auto* block = static_cast<unsigned char*>(std::malloc(size));
  auto* zeroed = static_cast<unsigned char*>(std::calloc(1, size));
  void* aligned_raw = nullptr;
  if (block == nullptr || zeroed == nullptr || posix_memalign(&aligned_raw, 64, size) != 0) {
    return bad("allocation");
  }
  auto* aligned = static_cast<unsigned char*>(aligned_raw);
  if (reinterpret_cast<uintptr_t>(aligned) % 64 != 0) {
    return bad("posix_memalign alignment");
  }
  for (size_t at = 0; at < size; at += 4096) {
    if (zeroed[at] != 0) {
      return bad("calloc not zero");
    }
  }
  fill(block, size, 1);
  fill(zeroed, size, 2);
  fill(aligned, size, 4);
  std::printf("hugetlb_kB %ld\n", hugetlb_kb());

  // Growth to three times the size, a shrink back, then a move below the
  // page size: the data survives each.
  auto* grown = static_cast<unsigned char*>(std::realloc(block, 3 * size));
  if (grown == nullptr || !holds(grown, size, 1) || malloc_usable_size(grown) < 3 * size) {
    return bad("realloc growth");
  }
  fill(grown, 3 * size, 5);
  auto* shrunk = static_cast<unsigned char*>(std::realloc(grown, size));
  if (shrunk == nullptr || !holds(shrunk, size, 5)) {
    return bad("realloc shrink");
  }
  auto* small = static_cast<unsigned char*>(std::realloc(shrunk, 4096));
  if (small == nullptr || !holds(small, 4096, 5)) {
    return bad("realloc below the page size");
  }
  // And a small block growing past the page size.
  auto* rising = static_cast<unsigned char*>(std::realloc(small, 2 * size));
  if (rising == nullptr || !holds(rising, 4096, 5)) {
    return bad("realloc from small to large");
  }
  if (!holds(zeroed, size, 2) || !holds(aligned, size, 4)) {
    return bad("a neighbour block changed");
  }
  std::free(rising);
  std::free(zeroed);
  std::free(aligned);
  std::printf("ok\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view mode = argc > 1 ? argv[1] : "";
  long mib = argc > 2 ? std::atol(argv[2]) : 0;
  if ((mode != "keep" && mode != "cycle") || mib <= 0) {
    std::fprintf(stderr, "usage: probe_hugetlb keep|cycle MIB [SECONDS]\n");
    return 2;
  }
  size_t size = static_cast<size_t>(mib) * kMiB;
  if (mode == "keep") {
    return keep(size, argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 0);
  }
  return cycle(size);
}
