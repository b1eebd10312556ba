// The floor `memdet diff` is measured against: both files read once, in
// step, through the same mapping and page release memdet's comparison
// uses, with no work per element beyond touching it. Prints the seconds
// taken, the GB/s and a checksum (so the reads cannot be optimised away).
//
// Usage: bench_mapped_read A B
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "compare/mapped_file.h"
#include "compare/tensor.h"
#include "core/sys.h"

namespace {

// Folds every 8-byte word of a chunk into one value; memcpy is the
// unaligned load, as mapped data need not be aligned.
uint64_t fold(std::string_view chunk) {
  uint64_t sum = 0;
  size_t i = 0;
  for (; i + 8 <= chunk.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, chunk.data() + i, 8);
    sum ^= word;
  }
  for (; i < chunk.size(); ++i) {
    sum += static_cast<unsigned char>(chunk[i]);
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s A B\n", argv[0]);
    return 2;
  }
  const double started = memdet::sys::monotonic_seconds();
  auto a = memdet::compare::MappedFile::open(argv[1]);
  auto b = memdet::compare::MappedFile::open(argv[2]);
  if (!a || !b) {
    std::fprintf(stderr, "cannot map %s\n", !a ? argv[1] : argv[2]);
    return 2;
  }
  memdet::compare::MemoryStream stream_a((*a)->bytes(), memdet::compare::PageRelease::kBehind);
  memdet::compare::MemoryStream stream_b((*b)->bytes(), memdet::compare::PageRelease::kBehind);
  constexpr size_t kChunk = 1 << 20;
  uint64_t sum = 0;
  uint64_t bytes = 0;
  for (;;) {
    auto chunk_a = stream_a.next(kChunk);
    auto chunk_b = stream_b.next(kChunk);
    if (!chunk_a || !chunk_b || (chunk_a->empty() && chunk_b->empty())) {
      break;
    }
    sum ^= fold(*chunk_a) ^ fold(*chunk_b);
    bytes += chunk_a->size() + chunk_b->size();
  }
  const double seconds = memdet::sys::monotonic_seconds() - started;
  std::printf("%.6f s  %.2f GB/s  checksum %016llx\n", seconds,
              static_cast<double>(bytes) / seconds / 1e9, static_cast<unsigned long long>(sum));
  return 0;
}
