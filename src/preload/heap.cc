// Active-mode allocation. With heap= or heap_random=, every block carries a
// 16-byte header just before the pointer handed out, so the pointer can sit
// at any 16-byte class inside a slightly larger block from the lower
// allocator. Ordinary blocks (malloc, calloc, realloc, new, alignment up to
// 16) ask the lower allocator for 64 bytes more than requested, the same
// 64 whatever the class, so a size keeps mapping to one size class of the
// lower allocator:
//
//   raw (lower malloc(size + 64), 16-aligned)   p = raw + distance
//   |<- slack ->|<- Header (16 B) ->|<-- size bytes ... -->|
//
// distance = 16 + ((class - raw - 16) mod 64), between 16 and 64. A lower
// allocator that hands out blocks only 8-aligned gets a second request with
// 80 bytes of slack when the first falls short.
//
// Aligned blocks (alignment above 16) and hugepage blocks have a Far record
// before the header, holding raw and the alignment:
//
//   |<- slack ->|<- Far (16 B) ->|<- Header ->|<-- size ... -->|
//   p = align_up(raw + 32, B) + offset
//
// B is 64, or the alignment when larger, or 2 MiB for hugepages=huge blocks
// of 2 MiB or more; offset is the class rounded down to the alignment, and
// 0 for alignments of 64 and more.
//
// hugepages=hugetlb-* blocks (the pool's page size or more) are private
// MAP_HUGETLB mappings of their own, whole pool pages. Without a class
// offset p is the mapping's start, the mapping is size rounded up to the
// page, and a fixed table (PoolSlot) holds p and the size: only pointers
// on a pool page boundary are looked up there. With an offset (heap=,
// heap_random=) the block carries a header instead:
//
//   map (page-aligned)                   p = map + lead
//   |<- lead - 16 ->|<- Header (16 B) ->|<-- size bytes ... -->|<- to the page end ->|
//
// lead is 64 (or the alignment, up to kHugetlbMaxAlignment) plus the
// offset, so p keeps its class; the mapping's length is lead + size
// rounded up to the page. The header's tag is p xor kHugetlbMagic, which
// no other block has. As lead is at least 64 and below 4 KiB, the header
// lies in p's own small page: any pointer whose offset in its 4 KiB page
// is 16 or more can be tested by reading the 16 bytes before it, without
// touching memory that may not be mapped. An empty pool makes mmap fail
// (private hugetlb mappings reserve their pages when mapped, so there is
// no SIGBUS later): the block then takes the ordinary path and is counted
// as a fallback.
#include "preload/heap.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "preload/counters.h"
#include "preload/prim.h"
#include "preload/shim.h"

namespace memdet::preload {
namespace {

constexpr size_t kHeaderSize = 16;
constexpr size_t kFarSize = 16;
constexpr size_t kHugePage = 2 * 1024 * 1024;
constexpr size_t kPage = 4096;
constexpr size_t kSlack = 64;      // ordinary block, raw 16-aligned
constexpr size_t kWideSlack = 80;  // ordinary block, raw 8-aligned
// Sizes beyond 2^48 cannot be mapped on x86-64; the header keeps 48 bits.
constexpr size_t kMaxSize = (static_cast<size_t>(1) << 48) - 1;
constexpr uintptr_t kMagic = 0x6d656d6465742121ULL;
constexpr uintptr_t kHugetlbMagic = 0x6875676574626c21ULL;
// Larger alignments would put the header in the small page before p.
constexpr size_t kHugetlbMaxAlignment = 2048;
constexpr size_t kHugetlbLead = 64;

// word: the requested size (for realloc's copy and fill) << 16 | distance
// from raw to p, 0 for a block with a Far record.
struct Header {
  uint64_t word;
  uintptr_t tag;  // the pointer xor kMagic: tells our blocks from foreign ones
};
static_assert(sizeof(Header) == kHeaderSize);

struct Far {
  uintptr_t raw;
  uint32_t alignment;  // log2 of the requested alignment, 0 for the default
  uint32_t huge;       // placed on a 2 MiB boundary
};
static_assert(sizeof(Far) == kFarSize);

// What start_heap decides once, so the fast paths read one small struct.
struct Plan {
  bool shaped = false;      // headers in front of blocks
  bool random = false;      // heap_random
  size_t base_class = 0;    // heap=, or 0
  size_t fast_limit = 0;    // larger malloc sizes take the general path
  int uninit = -1;          // uninit=, here beside the rest
  size_t hugetlb_page = 0;  // hugepages=hugetlb-*: the pool's page size; 0: off
  // Nothing to perturb (fingerprint= or trace_threads= alone): malloc and
  // free go straight to the lower allocator, counted.
  bool plain = false;
};
Plan g_plan;

int g_mlock_result = -1;

struct HugetlbCounters {
  std::atomic<uint64_t> mapped{0};
  std::atomic<uint64_t> fallbacks{0};
  std::atomic<long> peak_kb{-1};
};
HugetlbCounters g_hugetlb;

// Built with -fno-builtin: the __builtin_ forms keep these copies inline.
Header read_header(const void* pointer) {
  Header header;
  __builtin_memcpy(&header, static_cast<const char*>(pointer) - kHeaderSize, sizeof header);
  return header;
}

void write_header(char* pointer, size_t size, size_t distance) {
  Header header = {static_cast<uint64_t>(size) << 16 | distance,
                   reinterpret_cast<uintptr_t>(pointer) ^ kMagic};
  __builtin_memcpy(pointer - kHeaderSize, &header, sizeof header);
}

Far read_far(const void* pointer) {
  Far far;
  __builtin_memcpy(&far, static_cast<const char*>(pointer) - kHeaderSize - kFarSize, sizeof far);
  return far;
}

size_t header_size(const Header& header) { return static_cast<size_t>(header.word >> 16); }
size_t header_distance(const Header& header) { return static_cast<size_t>(header.word & 0xffff); }

// A pointer that reached the shim without passing through it (none should
// once the mode is set) fails this check and goes to the lower allocator
// untouched.
bool is_ours(const void* pointer) {
  uintptr_t tag;
  __builtin_memcpy(&tag, static_cast<const char*>(pointer) - sizeof tag, sizeof tag);
  return tag == (reinterpret_cast<uintptr_t>(pointer) ^ kMagic);
}

char* raw_of(const void* pointer, const Header& header) {
  size_t distance = header_distance(header);
  if (distance != 0) {
    return const_cast<char*>(static_cast<const char*>(pointer)) - distance;
  }
  return reinterpret_cast<char*>(read_far(pointer).raw);
}

char* align_up(char* pointer, size_t alignment) {
  auto value = reinterpret_cast<uintptr_t>(pointer);
  return reinterpret_cast<char*>((value + alignment - 1) & ~(alignment - 1));
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

__attribute__((noinline)) uint64_t refill_random_bits() {
  uint64_t count = t_self.refills++;
  uint64_t bits = mix64(g_config.seed ^ mix64(t_self.ordinal_hash + count * 0x9e3779b97f4a7c15ULL));
  // 62 random bits below a marker: after 31 draws of two bits only the
  // marker is left, at bit 0.
  return bits >> 2 | static_cast<uint64_t>(1) << 62;
}

// The class of the next block: heap=, plus for heap_random a seeded step of
// 0, 16, 32 or 48. The n-th step of a thread depends only on the seed, the
// thread's ordinal and n.
size_t next_class() {
  if (!g_plan.random) {
    return g_plan.base_class;
  }
  uint64_t bits = t_self.random_bits;
  if (MEMDET_UNLIKELY(bits <= 1)) {
    bits = refill_random_bits();
  }
  t_self.random_bits = bits >> 2;
  return (g_plan.base_class + static_cast<size_t>(bits & 3) * 16) & 63;
}

size_t ordinary_distance(const char* raw, size_t target) {
  auto base = reinterpret_cast<uintptr_t>(raw) + kHeaderSize;
  return kHeaderSize + ((target - base) & 63);
}

// An ordinary block of class `target`: lower malloc or calloc with the
// fixed slack, header written. Null when the lower allocator fails.
__attribute__((always_inline)) inline char* allocate_ordinary(size_t size, size_t target,
                                                              Fill fill) {
  size_t slack = kSlack;
  for (;;) {
    auto* raw = static_cast<char*>(fill == Fill::kZero ? g_lower.calloc(1, size + slack)
                                                       : g_lower.malloc(size + slack));
    if (MEMDET_UNLIKELY(raw == nullptr)) {
      return nullptr;
    }
    size_t distance = ordinary_distance(raw, target);
    if (MEMDET_LIKELY(distance <= slack)) {
      char* pointer = raw + distance;
      write_header(pointer, size, distance);
      return pointer;
    }
    // Only an allocator that aligns to 8 gets here, and only once.
    g_lower.free(raw);
    slack = kWideSlack;
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
  if (size > kMaxSize) {
    return nullptr;
  }
  size_t target = next_class();
  bool huge = wants_huge(size);
  if (alignment <= 16 && !huge) {
    return allocate_ordinary(size, target, fill);
  }

  size_t offset = target;
  if (alignment >= 64) {
    offset = 0;
  } else if (alignment > 16) {
    offset -= offset % alignment;
  }
  size_t block = alignment > 64 ? alignment : 64;
  if (huge && block < kHugePage) {
    block = kHugePage;
  }
  size_t extra = block + kHeaderSize + kFarSize + offset;
  if (size > SIZE_MAX - extra) {
    return nullptr;
  }
  void* raw = fill == Fill::kZero ? g_lower.calloc(1, size + extra) : g_lower.malloc(size + extra);
  if (raw == nullptr) {
    return nullptr;
  }
  char* pointer = align_up(static_cast<char*>(raw) + kHeaderSize + kFarSize, block) + offset;
  Far far = {reinterpret_cast<uintptr_t>(raw),
             alignment <= 16 ? 0 : static_cast<uint32_t>(__builtin_ctzll(alignment)),
             huge ? 1u : 0u};
  __builtin_memcpy(pointer - kHeaderSize - kFarSize, &far, sizeof far);
  write_header(pointer, size, 0);
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

// A request aligned to more than 16 bytes can only move by multiples of
// its alignment, so it may sit outside the class: counted apart.
void count(void* pointer, size_t alignment) {
  count_allocation(class_bin(pointer), alignment > 16);
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
  if (size >= kHugePage &&
      (g_config.hugepages == Hugepages::kHuge || g_config.hugepages == Hugepages::kSmall)) {
    advise(moved, moved + size,
           g_config.hugepages == Hugepages::kHuge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  }
  count(moved, 0);
  return moved;
}

void* reallocate_shaped(void* pointer, size_t size) {
  Header old = read_header(pointer);
  size_t old_size = header_size(old);
  size_t old_distance = header_distance(old);
  auto* current = static_cast<char*>(pointer);
  char* raw = raw_of(pointer, old);
  size_t alignment = 0;
  bool old_huge = false;
  if (old_distance == 0) {
    Far far = read_far(pointer);
    alignment = far.alignment == 0 ? 0 : static_cast<size_t>(1) << far.alignment;
    old_huge = far.huge != 0;
  }
  if (size > kMaxSize) {
    return nullptr;
  }
  bool huge = wants_huge(size);
  size_t raw_usable = lower_usable(raw);
  size_t usable = raw_usable != 0 ? raw_usable - static_cast<size_t>(current - raw) : old_size;

  // Room in the block already: the pointer stays.
  if (size <= usable && (!huge || old_huge)) {
    write_header(current, size, old_distance);
    if (size > old_size && g_config.uninit >= 0) {
      std::memset(current + old_size, g_config.uninit, size - old_size);
    }
    count(current, alignment);
    return current;
  }

  // An ordinary block: let the lower realloc grow it (in place, or by
  // mremap for large ones) with room for any class, then move the data to
  // the new class. Copying into a fresh block every time would make growth
  // by small steps quadratic. The wide slack covers any old distance.
  if (old_distance != 0 && !huge) {
    auto* grown = static_cast<char*>(g_lower.realloc(raw, size + kWideSlack));
    if (grown == nullptr) {
      return nullptr;
    }
    size_t distance = ordinary_distance(grown, next_class());
    char* moved = grown + distance;
    std::memmove(moved, grown + old_distance, old_size < size ? old_size : size);
    write_header(moved, size, distance);
    if (size > old_size && g_config.uninit >= 0) {
      std::memset(moved + old_size, g_config.uninit, size - old_size);
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
  std::memcpy(fresh, current, old_size < size ? old_size : size);
  heap_free(pointer);
  return fresh;
}

// --- hugetlb blocks ---

// Page-aligned pool blocks have no header: this table holds their
// addresses and sizes. Open addressing, lock-free: a slot goes from empty
// (0) to an address, and back to kTombstone when the block is freed, never
// to empty again, so a lookup that meets an empty slot has seen every slot
// its key could be in. Only the owner of a block looks it up or frees it,
// so an entry never changes under its own lookup.
struct PoolSlot {
  std::atomic<uintptr_t> address{0};
  std::atomic<size_t> size{0};
};
constexpr size_t kPoolSlots = 1024;
constexpr uintptr_t kTombstone = 1;
PoolSlot g_pool_slots[kPoolSlots];

size_t first_slot(uintptr_t address) { return static_cast<size_t>(mix64(address) % kPoolSlots); }

PoolSlot* claim_slot(uintptr_t address, size_t size) {
  size_t start = first_slot(address);
  for (size_t i = 0; i < kPoolSlots; ++i) {
    PoolSlot& slot = g_pool_slots[(start + i) % kPoolSlots];
    uintptr_t seen = slot.address.load(std::memory_order_relaxed);
    while (seen == 0 || seen == kTombstone) {
      if (slot.address.compare_exchange_weak(seen, address, std::memory_order_acq_rel)) {
        slot.size.store(size, std::memory_order_release);
        return &slot;
      }
    }
  }
  return nullptr;
}

PoolSlot* find_slot(uintptr_t address) {
  size_t start = first_slot(address);
  for (size_t i = 0; i < kPoolSlots; ++i) {
    PoolSlot& slot = g_pool_slots[(start + i) % kPoolSlots];
    uintptr_t seen = slot.address.load(std::memory_order_acquire);
    if (seen == address) {
      return &slot;
    }
    if (seen == 0) {
      return nullptr;
    }
  }
  return nullptr;
}

// A pool block as its header or its table entry describes it.
struct PoolBlock {
  char* map;
  size_t lead;     // p - map; 0 for a block in the table
  size_t size;     // the size asked for
  PoolSlot* slot;  // lead 0: its entry
};

bool wants_hugetlb(size_t size, size_t alignment) {
  return g_plan.hugetlb_page != 0 && size >= g_plan.hugetlb_page &&
         alignment <= kHugetlbMaxAlignment;
}

bool find_pool_block(const void* pointer, PoolBlock& block) {
  auto address = reinterpret_cast<uintptr_t>(pointer);
  char* data = const_cast<char*>(static_cast<const char*>(pointer));
  if ((address & (g_plan.hugetlb_page - 1)) == 0) {
    PoolSlot* slot = find_slot(address);
    if (slot == nullptr) {
      return false;
    }
    block = {data, 0, slot->size.load(std::memory_order_acquire), slot};
    return true;
  }
  if ((address & (kPage - 1)) < kHeaderSize) {
    return false;
  }
  uintptr_t tag;
  __builtin_memcpy(&tag, data - sizeof tag, sizeof tag);
  if (tag != (address ^ kHugetlbMagic)) {
    return false;
  }
  Header header = read_header(pointer);
  block = {data - header_distance(header), header_distance(header), header_size(header), nullptr};
  return true;
}

void write_hugetlb_header(char* pointer, size_t size, size_t lead) {
  Header header = {static_cast<uint64_t>(size) << 16 | lead,
                   reinterpret_cast<uintptr_t>(pointer) ^ kHugetlbMagic};
  __builtin_memcpy(pointer - kHeaderSize, &header, sizeof header);
}

// The mapping's length for a block of `size` bytes at `lead`; 0 when it
// would overflow.
size_t hugetlb_length(size_t size, size_t lead) {
  size_t page = g_plan.hugetlb_page;
  if (size > SIZE_MAX - lead - page) {
    return 0;
  }
  return (lead + size + page - 1) & ~(page - 1);
}

size_t block_length(const PoolBlock& block) { return hugetlb_length(block.size, block.lead); }

int hugetlb_flags() {
  return MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
         static_cast<int>(g_config.hugetlb_shift << MAP_HUGE_SHIFT);
}

void note_peak(std::atomic<long>& peak, long kb) {
  long seen = peak.load(std::memory_order_relaxed);
  while (kb > seen && !peak.compare_exchange_weak(seen, kb, std::memory_order_relaxed)) {
  }
}

// Pool pages go back to the pool: the process's hugetlb use is read first,
// so a program that frees its blocks before exit still shows it.
void unmap_hugetlb(void* begin, size_t length) {
  char text[4096];
  if (prim::read_file("/proc/self/smaps_rollup", text, sizeof text) > 0) {
    long kb = hugetlb_kb(text);
    if (kb >= 0) {
      note_peak(g_hugetlb.peak_kb, kb);
    }
  }
  ::munmap(begin, length);
}

// A block from the pool, or null when the pool has no page for it. Without
// a class offset the block starts on its first page and takes only the
// pages its size needs (a block of exactly one page takes one); with one,
// the header comes first.
char* allocate_hugetlb(size_t size, size_t alignment) {
  if (size > kMaxSize) {
    return nullptr;
  }
  size_t offset = 0;
  if (g_plan.shaped && alignment < 64) {
    offset = next_class();
    if (alignment > 16) {
      offset -= offset % alignment;
    }
  }
  if (offset == 0) {
    size_t length = hugetlb_length(size, 0);
    void* map = length == 0
                    ? MAP_FAILED
                    : ::mmap(nullptr, length, PROT_READ | PROT_WRITE, hugetlb_flags(), -1, 0);
    if (map == MAP_FAILED) {
      return nullptr;
    }
    if (claim_slot(reinterpret_cast<uintptr_t>(map), size) != nullptr) {
      g_hugetlb.mapped.fetch_add(1, std::memory_order_relaxed);
      return static_cast<char*>(map);
    }
    ::munmap(map, length);  // the table is full: a block with a header instead
  }

  size_t lead = (alignment > kHugetlbLead ? alignment : kHugetlbLead) + offset;
  size_t length = hugetlb_length(size, lead);
  if (length == 0) {
    return nullptr;
  }
  void* map = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, hugetlb_flags(), -1, 0);
  if (map == MAP_FAILED) {
    return nullptr;
  }
  char* pointer = static_cast<char*>(map) + lead;
  write_hugetlb_header(pointer, size, lead);
  g_hugetlb.mapped.fetch_add(1, std::memory_order_relaxed);
  return pointer;
}

void free_hugetlb(const PoolBlock& block) {
  if (block.slot != nullptr) {
    // Before the unmap: the address may be mapped again at once.
    block.slot->address.store(kTombstone, std::memory_order_release);
  }
  unmap_hugetlb(block.map, block_length(block));
}

void fill_tail(char* pointer, size_t old_size, size_t size) {
  if (size > old_size && g_config.uninit >= 0) {
    std::memset(pointer + old_size, g_config.uninit, size - old_size);
  }
}

// realloc of a pool block. It stays in its mapping while the size needs the
// same pages, gives whole pages back when it shrinks, and grows by mremap
// (which copies no data; a block in the table only in place, as its entry
// is found by address); a size below the page size, or a growth mremap
// refuses, moves it to a fresh block.
void* reallocate_hugetlb(void* pointer, const PoolBlock& block, size_t size) {
  auto* data = static_cast<char*>(pointer);
  size_t old_length = block_length(block);
  size_t alignment =
      block.lead > kHugetlbLead && (block.lead & (block.lead - 1)) == 0 ? block.lead : 0;

  if (size >= g_plan.hugetlb_page && size <= kMaxSize) {
    size_t length = hugetlb_length(size, block.lead);
    void* moved = block.map;
    if (length < old_length) {
      unmap_hugetlb(block.map + length, old_length - length);
    } else if (length > old_length) {
      moved = ::mremap(block.map, old_length, length, block.slot != nullptr ? 0 : MREMAP_MAYMOVE);
    }
    if (moved != MAP_FAILED) {
      char* fresh = static_cast<char*>(moved) + block.lead;
      if (block.slot != nullptr) {
        block.slot->size.store(size, std::memory_order_release);
      } else {
        write_hugetlb_header(fresh, size, block.lead);
      }
      fill_tail(fresh, block.size, size);
      count(fresh, alignment);
      return fresh;
    }
  }

  void* fresh = heap_allocate(size, alignment, Fill::kUninit);
  if (fresh == nullptr) {
    return nullptr;
  }
  std::memcpy(fresh, data, block.size < size ? block.size : size);
  free_hugetlb(block);
  return fresh;
}

// A block of the lower allocator (or a shaped one) that grows to the page
// size moves into the pool, as a fresh allocation of that size would.
// Null when it stays where it is: its size is unknown, or the pool is
// empty (counted as a fallback).
void* reallocate_into_hugetlb(void* pointer, size_t size) {
  size_t old_size =
      g_plan.shaped && is_ours(pointer) ? header_size(read_header(pointer)) : lower_usable(pointer);
  if (old_size == 0) {
    return nullptr;
  }
  char* fresh = allocate_hugetlb(size, 0);
  if (fresh == nullptr) {
    g_hugetlb.fallbacks.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  std::memcpy(fresh, pointer, old_size < size ? old_size : size);
  heap_free(pointer);
  fill_tail(fresh, old_size, size);
  count(fresh, 0);
  return fresh;
}

}  // namespace

void start_heap() {
  g_plan.shaped = g_config.shapes_heap();
  g_plan.random = g_config.heap_random;
  g_plan.base_class = g_config.heap_class > 0 ? static_cast<size_t>(g_config.heap_class) : 0;
  // hugepages= changes what happens to blocks of 2 MiB and more.
  g_plan.fast_limit = g_config.hugepages == Hugepages::kUnset ? kMaxSize : kHugePage - 1;
  g_plan.uninit = g_config.uninit;
  if (g_config.hugepages == Hugepages::kHugetlb) {
    g_plan.hugetlb_page = static_cast<size_t>(1) << g_config.hugetlb_shift;
  }
  g_plan.plain = !g_plan.shaped && g_config.hugepages == Hugepages::kUnset && g_plan.uninit < 0;
  if (g_config.mlock) {
    g_mlock_result = ::mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : errno;
  }
}

void heap_after_fork_child() {
  if (g_config.mlock) {
    g_mlock_result = ::mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : errno;
  }
  g_hugetlb.mapped.store(0, std::memory_order_relaxed);
  g_hugetlb.fallbacks.store(0, std::memory_order_relaxed);
  g_hugetlb.peak_kb.store(-1, std::memory_order_relaxed);
}

void* heap_malloc(size_t size) {
  if (g_plan.plain) {
    void* pointer = g_lower.malloc(size);
    if (MEMDET_LIKELY(pointer != nullptr)) {
      count_allocation(class_bin(pointer), false);
    }
    return pointer;  // errno from the lower malloc
  }
  if (MEMDET_UNLIKELY(!g_plan.shaped || size > g_plan.fast_limit)) {
    void* pointer = heap_allocate(size, 0, Fill::kUninit);
    if (pointer == nullptr) {
      errno = ENOMEM;
    }
    return pointer;
  }
  size_t target = next_class();
  char* pointer = allocate_ordinary(size, target, Fill::kUninit);
  if (MEMDET_UNLIKELY(pointer == nullptr)) {
    return nullptr;  // errno from the lower malloc
  }
  if (MEMDET_UNLIKELY(g_plan.uninit >= 0)) {
    std::memset(pointer, g_plan.uninit, size);
  }
  count_allocation(static_cast<unsigned>(target / 16), false);
  return pointer;
}

void* heap_allocate(size_t size, size_t alignment, Fill fill) {
  if (MEMDET_UNLIKELY(wants_hugetlb(size, alignment))) {
    char* block = allocate_hugetlb(size, alignment);
    if (block != nullptr) {
      // A fresh mapping is zero: calloc needs nothing more.
      if (fill == Fill::kUninit && g_config.uninit >= 0) {
        std::memset(block, g_config.uninit, size);
      }
      count(block, alignment);
      return block;
    }
    g_hugetlb.fallbacks.fetch_add(1, std::memory_order_relaxed);
  }
  void* pointer = g_plan.shaped ? allocate_shaped(size, alignment, fill)
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
  if (MEMDET_UNLIKELY(g_plan.hugetlb_page != 0)) {
    PoolBlock block;
    if (find_pool_block(pointer, block)) {
      return reallocate_hugetlb(pointer, block, size);
    }
    if (wants_hugetlb(size, 0)) {
      if (void* moved = reallocate_into_hugetlb(pointer, size)) {
        return moved;
      }
    }
  }
  if (!g_plan.shaped) {
    return reallocate_plain(pointer, size);
  }
  if (!is_ours(pointer)) {
    return g_lower.realloc(pointer, size);
  }
  return reallocate_shaped(pointer, size);
}

// Reads AnonHugePages before a block of 2 MiB or more goes back, keeping
// the largest value: large frees are rare, so the read costs little.
void sample_huge_pages(void* block) {
  if (g_config.hugepages != Hugepages::kHuge || lower_usable(block) < kHugePage) {
    return;
  }
  char text[4096];
  if (prim::read_file("/proc/self/smaps_rollup", text, sizeof text) <= 0) {
    return;
  }
  long kb = prim::find_number_field(text, "AnonHugePages:");
  long seen = g_counters.huge_peak_kb.load(std::memory_order_relaxed);
  while (kb > seen &&
         !g_counters.huge_peak_kb.compare_exchange_weak(seen, kb, std::memory_order_relaxed)) {
  }
}

void heap_free(void* pointer) {
  if (pointer == nullptr || in_bootstrap(pointer)) {
    return;
  }
  if (g_plan.plain) {
    g_lower.free(pointer);
    return;
  }
  PoolBlock block;
  if (MEMDET_UNLIKELY(g_plan.hugetlb_page != 0) && find_pool_block(pointer, block)) {
    free_hugetlb(block);
    return;
  }
  if (g_plan.shaped && is_ours(pointer)) {
    Header header = read_header(pointer);
    char* raw = raw_of(pointer, header);
    // Cleared so that a second free of the same pointer reaches the lower
    // allocator's own double-free check instead of freeing `raw` again.
    uintptr_t cleared = 0;
    __builtin_memcpy(static_cast<char*>(pointer) - sizeof cleared, &cleared, sizeof cleared);
    sample_huge_pages(raw);
    g_lower.free(raw);
    return;
  }
  sample_huge_pages(pointer);
  g_lower.free(pointer);
}

size_t heap_usable_size(void* pointer) {
  if (pointer == nullptr) {
    return 0;
  }
  if (in_bootstrap(pointer)) {
    return bootstrap_size(pointer);
  }
  PoolBlock block;
  if (g_plan.hugetlb_page != 0 && find_pool_block(pointer, block)) {
    return block_length(block) - block.lead;
  }
  if (g_plan.shaped && is_ours(pointer)) {
    Header header = read_header(pointer);
    char* raw = raw_of(pointer, header);
    size_t raw_usable = lower_usable(raw);
    if (raw_usable == 0) {
      return header_size(header);
    }
    return raw_usable - static_cast<size_t>(static_cast<char*>(pointer) - raw);
  }
  return lower_usable(pointer);
}

int heap_mlock_result() { return g_mlock_result; }

HugetlbCounts heap_hugetlb_counts() {
  return {g_hugetlb.mapped.load(std::memory_order_relaxed),
          g_hugetlb.fallbacks.load(std::memory_order_relaxed),
          g_hugetlb.peak_kb.load(std::memory_order_relaxed)};
}

long hugetlb_kb(const char* rollup) {
  long shared = prim::find_number_field(rollup, "Shared_Hugetlb:");
  long own = prim::find_number_field(rollup, "Private_Hugetlb:");
  if (shared < 0 && own < 0) {
    return -1;
  }
  return (shared > 0 ? shared : 0) + (own > 0 ? own : 0);
}

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
