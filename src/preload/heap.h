// The heap perturbations of active mode: offset classes, seeded offsets,
// uninitialised fill, hugepage advice, hugetlb backing and mlock.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memdet::preload {

enum class Fill {
  kUninit,  // fresh memory: filled with the uninit= byte when that is set
  kZero,    // calloc: zero, never filled
};

// Called once from start() in active mode: mlockall when asked.
void start_heap();

// In a forked child: re-applies mlockall (memory locks are not inherited)
// and starts the hugetlb counts from zero.
void heap_after_fork_child();

// Active-mode allocation. `alignment` 0 means malloc's alignment; otherwise a
// power of two at least sizeof(void*). Returns null on failure without
// setting errno (callers set the errno or return code their API uses).
void* heap_allocate(size_t size, size_t alignment, Fill fill);
// malloc's active path: heap_allocate(size, 0, kUninit) with errno set on
// failure, and a short path for the usual case of heap offsets alone.
void* heap_malloc(size_t size);
void* heap_reallocate(void* pointer, size_t size);
void heap_free(void* pointer);
size_t heap_usable_size(void* pointer);

// For the report: mlockall's result (0 or an errno value; -1 when not
// asked) and whether a freed-then-reallocated block comes back filled.
int heap_mlock_result();
bool heap_uninit_probe();

// hugepages=hugetlb-*: blocks mapped from the pool, blocks that asked for it
// and got ordinary memory because it had no free page, and the most
// Private_Hugetlb + Shared_Hugetlb (kB) seen just before a pool block was
// unmapped (-1: none was).
struct HugetlbCounts {
  uint64_t mapped;
  uint64_t fallbacks;
  long peak_kb;
};
HugetlbCounts heap_hugetlb_counts();

// Private_Hugetlb + Shared_Hugetlb of a /proc/self/smaps_rollup text, in
// kB, or -1 when neither field is there.
long hugetlb_kb(const char* rollup);

}  // namespace memdet::preload
