// Active-mode allocation. With heap= or heap_random=, every block carries a
// header just before the pointer handed out, so the pointer can sit at any
// offset inside a larger block from the lower allocator:
//
//   raw (from the lower malloc)         p = align_up(raw + 32, B) + offset
//   |<-- slack -->|<- Header (32 B) ->|<-- size bytes ... -->|
//
// B is 64 for ordinary requests, the requested alignment when that is
// larger, and 2 MiB for hugepages=huge blocks of 2 MiB or more. offset is
// the heap class plus the seeded 16-byte steps, rounded down to the
// requested alignment; it is 0 for alignments of 64 and more.
#include "preload/heap.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "preload/shim.h"

namespace memdet::preload {
namespace {

constexpr size_t kHeaderSize = 32;
constexpr size_t kHugePage = 2 * 1024 * 1024;
constexpr size_t kPage = 4096;
constexpr size_t kMaxOffset = 48 + 15 * 16;  // class plus the largest seeded step
// The slack a block of default alignment needs for any offset; realloc asks
// for it so the data can move to a new offset inside the grown block. Raw
// pointers are assumed 8-aligned, the weakest any allocator gives 80 bytes.
constexpr size_t kDefaultSlack = 64 + kHeaderSize + kMaxOffset;
constexpr uintptr_t kMagic = 0x6d656d6465742121ULL;

struct Header {
  uintptr_t raw;
  size_t size;         // as requested, for realloc's copy and fill
  uint32_t alignment;  // log2 of the requested alignment, 0 for the default
  uint32_t huge;       // placed on a 2 MiB boundary
  uintptr_t tag;       // the pointer xor kMagic: tells our blocks from foreign ones
};
static_assert(sizeof(Header) == kHeaderSize);

int g_mlock_result = -1;

char* align_up(char* pointer, size_t alignment) {
  auto value = reinterpret_cast<uintptr_t>(pointer);
  return reinterpret_cast<char*>((value + alignment - 1) & ~(alignment - 1));
}

Header* header_of(void* pointer) {
  return reinterpret_cast<Header*>(static_cast<char*>(pointer) - kHeaderSize);
}

// A pointer that reached the shim without passing through it (none should
// once the mode is set) fails this check and goes to the lower allocator
// untouched.
bool is_ours(void* pointer, const Header* header) {
  return header->tag == (reinterpret_cast<uintptr_t>(pointer) ^ kMagic);
}

void place_header(char* pointer, char* raw, size_t size, size_t alignment, bool huge) {
  Header header;
  header.raw = reinterpret_cast<uintptr_t>(raw);
  header.size = size;
  header.alignment = alignment == 0 ? 0 : static_cast<uint32_t>(__builtin_ctzll(alignment));
  header.huge = huge ? 1 : 0;
  header.tag = reinterpret_cast<uintptr_t>(pointer) ^ kMagic;
  std::memcpy(pointer - kHeaderSize, &header, sizeof header);
}

// madvise on the whole pages inside [begin, end). The system call, not the
// madvise symbol: that one is ours and may suppress the advice.
void advise(void* begin, void* end, int advice) {
  char* first = align_up(static_cast<char*>(begin), kPage);
  auto last = reinterpret_cast<uintptr_t>(end) & ~(kPage - 1);
  if (last > reinterpret_cast<uintptr_t>(first)) {
    ::syscall(SYS_madvise, first, last - reinterpret_cast<uintptr_t>(first), advice);
  }
}

// The offset inside the block: the class, plus for heap_random a step that
// depends only on the seed, this thread's ordinal and its allocation count.
size_t draw_offset(size_t alignment) {
  size_t offset = g_config.heap_class > 0 ? static_cast<size_t>(g_config.heap_class) : 0;
  if (g_config.heap_random) {
    uint64_t count = t_self.allocations++;
    uint64_t bits =
        mix64(g_config.seed ^ mix64(t_self.ordinal_hash + count * 0x9e3779b97f4a7c15ULL));
    offset += static_cast<size_t>(bits >> 60) * 16;
  }
  if (alignment >= 64) {
    return 0;
  }
  if (alignment > 16) {
    offset -= offset % alignment;
  }
  return offset;
}

void count(void* pointer, size_t alignment) {
  uint64_t index = g_counters.allocations.fetch_add(1, std::memory_order_relaxed);
  if (index < kHistogramLimit) {
    auto remainder = static_cast<unsigned>(reinterpret_cast<uintptr_t>(pointer) % 64);
    unsigned bin = remainder % 16 == 0 ? remainder / 16 : 4;
    g_counters.histogram[bin].fetch_add(1, std::memory_order_relaxed);
  }
  if (alignment >= 64) {
    g_counters.aligned_requests.fetch_add(1, std::memory_order_relaxed);
  }
}

// The lower malloc_usable_size, under the re-entry guard. Returns 0 when
// there is none, or when called from inside itself.
size_t lower_usable(void* pointer) {
  if (g_lower.malloc_usable_size == nullptr || t_self.in_lower) {
    return 0;
  }
  t_self.in_lower = true;
  size_t usable = g_lower.malloc_usable_size(pointer);
  t_self.in_lower = false;
  return usable;
}

bool wants_huge(size_t size) { return g_config.hugepages == Hugepages::kHuge && size >= kHugePage; }

void* allocate_shaped(size_t size, size_t alignment, Fill fill) {
  size_t offset = draw_offset(alignment);
  size_t block = alignment > 64 ? alignment : 64;
  bool huge = wants_huge(size);
  if (huge && block < kHugePage) {
    block = kHugePage;
  }
  size_t extra = block + kHeaderSize + offset;
  if (size > SIZE_MAX - extra) {
    return nullptr;
  }

  void* raw = fill == Fill::kZero ? g_lower.calloc(1, size + extra) : g_lower.malloc(size + extra);
  if (raw == nullptr) {
    return nullptr;
  }
  char* pointer = align_up(static_cast<char*>(raw) + kHeaderSize, block) + offset;
  place_header(pointer, static_cast<char*>(raw), size, alignment, huge);
  if (huge) {
    advise(pointer - offset, pointer + size, MADV_HUGEPAGE);
    g_counters.huge_aligned.fetch_add(1, std::memory_order_relaxed);
  }
  return pointer;
}

void* allocate_plain(size_t size, size_t alignment, Fill fill) {
  void* pointer = nullptr;
  if (wants_huge(size) && fill != Fill::kZero) {
    size_t block = alignment > kHugePage ? alignment : kHugePage;
    if (g_lower.posix_memalign(&pointer, block, size) != 0) {
      return nullptr;
    }
    advise(pointer, static_cast<char*>(pointer) + size, MADV_HUGEPAGE);
    g_counters.huge_aligned.fetch_add(1, std::memory_order_relaxed);
    return pointer;
  }

  if (fill == Fill::kZero) {
    // calloc cannot be aligned without touching the pages to zero them:
    // advise the whole 2 MiB ranges inside the block instead.
    pointer = g_lower.calloc(1, size);
    if (pointer != nullptr && wants_huge(size)) {
      advise(pointer, static_cast<char*>(pointer) + size, MADV_HUGEPAGE);
    }
  } else if (alignment == 0) {
    pointer = g_lower.malloc(size);
  } else if (g_lower.posix_memalign(&pointer, alignment, size) != 0) {
    pointer = nullptr;
  }
  return pointer;
}

void finish(void* pointer, size_t size, size_t alignment, Fill fill) {
  if (g_config.hugepages == Hugepages::kSmall && size >= kHugePage) {
    advise(pointer, static_cast<char*>(pointer) + size, MADV_NOHUGEPAGE);
  }
  if (fill == Fill::kUninit && g_config.uninit >= 0) {
    // Without a header, realloc later knows only the usable size, so the
    // allocator's slack past `size` is filled too.
    size_t filled = g_config.shapes_heap() ? size : lower_usable(pointer);
    if (filled < size) {
      filled = size;
    }
    std::memset(pointer, g_config.uninit, filled);
  }
  count(pointer, alignment);
}

void* reallocate_plain(void* pointer, size_t size) {
  size_t old_usable = SIZE_MAX;
  if (g_config.uninit >= 0) {
    old_usable = lower_usable(pointer);
    if (old_usable == 0) {
      old_usable = SIZE_MAX;  // unknown: fill nothing rather than guess
    }
  }
  auto* moved = static_cast<char*>(g_lower.realloc(pointer, size));
  if (moved == nullptr) {
    return nullptr;
  }
  if (size > old_usable) {
    std::memset(moved + old_usable, g_config.uninit, size - old_usable);
  }
  if (size >= kHugePage && g_config.hugepages != Hugepages::kUnset) {
    advise(moved, moved + size,
           g_config.hugepages == Hugepages::kHuge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  }
  count(moved, 0);
  return moved;
}

void* reallocate_shaped(void* pointer, Header* header, size_t size) {
  Header old = *header;
  auto* raw = reinterpret_cast<char*>(old.raw);
  auto* current = static_cast<char*>(pointer);
  size_t alignment = old.alignment == 0 ? 0 : static_cast<size_t>(1) << old.alignment;
  bool huge = wants_huge(size);
  size_t raw_usable = lower_usable(raw);
  size_t usable = raw_usable != 0 ? raw_usable - static_cast<size_t>(current - raw) : old.size;

  // Room in the block already: the pointer stays.
  if (size <= usable && (!huge || old.huge != 0)) {
    header->size = size;
    if (size > old.size && g_config.uninit >= 0) {
      std::memset(current + old.size, g_config.uninit, size - old.size);
    }
    count(current, alignment);
    return current;
  }

  // An ordinary block: let the lower realloc grow it (in place, or by
  // mremap for large ones) with room for any offset, then move the data to
  // the new offset. Copying into a fresh block every time would make
  // growth by small steps quadratic.
  if (alignment == 0 && old.huge == 0 && !huge) {
    if (size > SIZE_MAX - kDefaultSlack) {
      return nullptr;
    }
    size_t old_offset = static_cast<size_t>(current - raw);
    auto* grown = static_cast<char*>(g_lower.realloc(raw, size + kDefaultSlack));
    if (grown == nullptr) {
      return nullptr;
    }
    char* moved = align_up(grown + kHeaderSize, 64) + draw_offset(0);
    std::memmove(moved, grown + old_offset, old.size < size ? old.size : size);
    place_header(moved, grown, size, 0, false);
    if (size > old.size && g_config.uninit >= 0) {
      std::memset(moved + old.size, g_config.uninit, size - old.size);
    }
    if (size >= kHugePage && g_config.hugepages == Hugepages::kSmall) {
      advise(moved, moved + size, MADV_NOHUGEPAGE);
    }
    count(moved, 0);
    return moved;
  }

  // Over-aligned, or crossing into hugepage placement: a new block.
  void* fresh = heap_allocate(size, alignment, Fill::kUninit);
  if (fresh == nullptr) {
    return nullptr;
  }
  std::memcpy(fresh, current, old.size < size ? old.size : size);
  heap_free(pointer);
  return fresh;
}

}  // namespace

void start_heap() {
  if (g_config.mlock) {
    g_mlock_result = ::mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : errno;
  }
}

void heap_after_fork_child() { start_heap(); }

void* heap_allocate(size_t size, size_t alignment, Fill fill) {
  void* pointer = g_config.shapes_heap() ? allocate_shaped(size, alignment, fill)
                                         : allocate_plain(size, alignment, fill);
  if (pointer != nullptr) {
    finish(pointer, size, alignment, fill);
  }
  return pointer;
}

void* heap_reallocate(void* pointer, size_t size) {
  if (pointer == nullptr) {
    return heap_allocate(size, 0, Fill::kUninit);
  }
  if (in_bootstrap(pointer)) {
    void* fresh = heap_allocate(size, 0, Fill::kUninit);
    size_t old_size = bootstrap_size(pointer);
    if (fresh != nullptr) {
      std::memcpy(fresh, pointer, old_size < size ? old_size : size);
    }
    return fresh;
  }
  if (size == 0) {
    // glibc's and jemalloc's default: free, and return null.
    heap_free(pointer);
    return nullptr;
  }
  if (!g_config.shapes_heap()) {
    return reallocate_plain(pointer, size);
  }
  Header* header = header_of(pointer);
  if (!is_ours(pointer, header)) {
    return g_lower.realloc(pointer, size);
  }
  return reallocate_shaped(pointer, header, size);
}

void heap_free(void* pointer) {
  if (pointer == nullptr || in_bootstrap(pointer)) {
    return;
  }
  if (g_config.shapes_heap()) {
    Header* header = header_of(pointer);
    if (is_ours(pointer, header)) {
      // Cleared so that a second free of the same pointer reaches the lower
      // allocator's own double-free check instead of freeing `raw` again.
      header->tag = 0;
      g_lower.free(reinterpret_cast<void*>(header->raw));
      return;
    }
  }
  g_lower.free(pointer);
}

size_t heap_usable_size(void* pointer) {
  if (pointer == nullptr) {
    return 0;
  }
  if (in_bootstrap(pointer)) {
    return bootstrap_size(pointer);
  }
  if (g_config.shapes_heap()) {
    Header* header = header_of(pointer);
    if (is_ours(pointer, header)) {
      auto* raw = reinterpret_cast<char*>(header->raw);
      size_t raw_usable = lower_usable(raw);
      if (raw_usable == 0) {
        return header->size;
      }
      return raw_usable - static_cast<size_t>(static_cast<char*>(pointer) - raw);
    }
  }
  return lower_usable(pointer);
}

int heap_mlock_result() { return g_mlock_result; }

bool heap_uninit_probe() {
  constexpr size_t kProbeSize = 256;
  auto* first = static_cast<unsigned char*>(heap_allocate(kProbeSize, 0, Fill::kUninit));
  if (first == nullptr) {
    return false;
  }
  std::memset(first, 0, kProbeSize);
  heap_free(first);

  auto* second = static_cast<unsigned char*>(heap_allocate(kProbeSize, 0, Fill::kUninit));
  if (second == nullptr) {
    return false;
  }
  bool filled = true;
  for (size_t i = 0; i < kProbeSize; ++i) {
    filled = filled && second[i] == static_cast<unsigned char>(g_config.uninit);
  }
  heap_free(second);
  return filled;
}

}  // namespace memdet::preload
