// The per-allocation counts behind the report (allocations, mod64,
// aligned_requests), kept per thread: counting an allocation writes a cache
// line that only the counting thread writes, with no locked instruction.
//
// Each thread takes a slot from a fixed pool at its first counted
// allocation and gives it back at exit (its thread-specific-data
// destructor). A slot's counts are never cleared while the process runs: a
// thread that takes a used slot adds to what is there, so the report's sum
// over all slots ever handed out is exact for the threads that are running
// and for those that have exited. With every slot taken, a thread counts
// into one shared set of atomic counters instead.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "preload/shim.h"

#pragma GCC visibility push(hidden)

namespace memdet::preload {

inline constexpr size_t kClassBins = 5;  // p % 64 == 0, 16, 32, 48, other

struct alignas(64) CounterSlot {
  std::atomic<uint64_t> classes[kClassBins];
  std::atomic<uint64_t> aligned_requests;
  std::atomic<uint32_t> next_free;  // free list: index + 1 of the next free slot, 0 ends it
};

struct CountTotals {
  uint64_t classes[kClassBins];
  uint64_t aligned_requests;
};

// The bin of a pointer: its 16-byte class, or "other".
inline unsigned class_bin(const void* pointer) {
  auto remainder = static_cast<unsigned>(reinterpret_cast<uintptr_t>(pointer) % 64);
  return remainder % 16 == 0 ? remainder / 16 : 4;
}

// Only the owning thread writes its slot: a plain load and store, which
// the report may read at any moment (a relaxed atomic never tears).
inline void bump(std::atomic<uint64_t>& counter) {
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// For a thread without a slot: takes one (arming the thread's exit hook),
// or counts into the shared counters when the pool is used up.
void count_without_slot(unsigned bin, bool aligned);

// One allocation in class bin `bin` (class_bin); `aligned` for requests
// with alignment above 16, which the class cannot always move.
inline void count_allocation(unsigned bin, bool aligned) {
  CounterSlot* slot = t_self.counters;
  if (MEMDET_UNLIKELY(slot == nullptr)) {
    count_without_slot(bin, aligned);
    return;
  }
  bump(slot->classes[bin]);
  if (MEMDET_UNLIKELY(aligned)) {
    bump(slot->aligned_requests);
  }
}

// At thread exit: the calling thread's slot goes back to the pool, its
// counts kept.
void release_counter_slot();

// The sums over every slot and the shared counters.
CountTotals sum_counters();

// In a forked child, where only the calling thread lives on: every count
// back to zero and every slot free.
void reset_slots_after_fork();

}  // namespace memdet::preload

#pragma GCC visibility pop
