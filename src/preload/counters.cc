#include "preload/counters.h"

#include "preload/threads.h"

namespace memdet::preload {
namespace {

// More than the thread log holds; 256 KiB of zero pages until used.
constexpr uint32_t kSlots = 4096;

CounterSlot g_slots[kSlots];
// Slots below this index have been handed out at least once.
std::atomic<uint32_t> g_slots_used{0};
// The free list's head: a change count in the high half (so that a pop
// racing with a pop and a push of the same slot fails its exchange) and
// the index + 1 of the first free slot in the low half.
std::atomic<uint64_t> g_free_head{0};
CounterSlot g_shared;  // atomic updates: for threads that found no slot

CounterSlot* take_slot() {
  uint64_t head = g_free_head.load(std::memory_order_acquire);
  while (static_cast<uint32_t>(head) != 0) {
    CounterSlot* slot = &g_slots[static_cast<uint32_t>(head) - 1];
    uint64_t next = ((head >> 32) + 1) << 32 | slot->next_free.load(std::memory_order_relaxed);
    if (g_free_head.compare_exchange_weak(head, next, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
      return slot;
    }
  }
  uint32_t index = g_slots_used.load(std::memory_order_relaxed);
  while (index < kSlots) {
    if (g_slots_used.compare_exchange_weak(index, index + 1, std::memory_order_relaxed)) {
      return &g_slots[index];
    }
  }
  return nullptr;
}

}  // namespace

void count_without_slot(unsigned bin, bool aligned) {
  CounterSlot* slot = take_slot();
  if (slot == nullptr) {
    g_shared.classes[bin].fetch_add(1, std::memory_order_relaxed);
    if (aligned) {
      g_shared.aligned_requests.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  // Set before arming the exit hook: pthread_setspecific may allocate,
  // and that allocation must find the slot.
  t_self.counters = slot;
  arm_thread_exit();
  bump(slot->classes[bin]);
  if (aligned) {
    bump(slot->aligned_requests);
  }
}

void release_counter_slot() {
  CounterSlot* slot = t_self.counters;
  if (slot == nullptr) {
    return;
  }
  t_self.counters = nullptr;
  auto index = static_cast<uint32_t>(slot - g_slots);
  uint64_t head = g_free_head.load(std::memory_order_relaxed);
  uint64_t next = 0;
  do {
    slot->next_free.store(static_cast<uint32_t>(head), std::memory_order_relaxed);
    next = ((head >> 32) + 1) << 32 | (index + 1);
  } while (!g_free_head.compare_exchange_weak(head, next, std::memory_order_release,
                                              std::memory_order_relaxed));
}

CountTotals sum_counters() {
  CountTotals totals = {};
  uint32_t used = g_slots_used.load(std::memory_order_acquire);
  auto add = [&](const CounterSlot& slot) {
    for (size_t bin = 0; bin < kClassBins; ++bin) {
      totals.classes[bin] += slot.classes[bin].load(std::memory_order_relaxed);
    }
    totals.aligned_requests += slot.aligned_requests.load(std::memory_order_relaxed);
  };
  for (uint32_t i = 0; i < used && i < kSlots; ++i) {
    add(g_slots[i]);
  }
  add(g_shared);
  return totals;
}

void reset_slots_after_fork() {
  uint32_t used = g_slots_used.load(std::memory_order_relaxed);
  auto clear = [](CounterSlot& slot) {
    for (auto& bin : slot.classes) {
      bin.store(0, std::memory_order_relaxed);
    }
    slot.aligned_requests.store(0, std::memory_order_relaxed);
  };
  for (uint32_t i = 0; i < used && i < kSlots; ++i) {
    clear(g_slots[i]);
  }
  clear(g_shared);
  g_free_head.store(0, std::memory_order_relaxed);
  g_slots_used.store(0, std::memory_order_relaxed);
  // The thread's exit hook stays armed; it takes a slot again when it next
  // allocates.
  t_self.counters = nullptr;
}

}  // namespace memdet::preload
