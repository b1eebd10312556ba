#include "preload/threads.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "preload/counters.h"
#include "preload/heap.h"
#include "preload/prim.h"

namespace memdet::preload {
namespace {

ThreadRecord g_records[kMaxThreadRecords];
std::atomic<size_t> g_record_count{0};

// How many live threads hold each slot of cpus=.
std::atomic<int> g_slot_holders[kMaxPinCpus];

cpu_set_t g_initial_mask;
pthread_key_t g_exit_key;
bool g_have_exit_key = false;

const char* const kCountSetterNames[kCountSetters] = {
    "omp_set_num_threads", "openblas_set_num_threads", "goto_set_num_threads",
    "mkl_set_num_threads"};

using CountFunction = void (*)(int);
std::atomic<CountFunction> g_next_setters[kCountSetters];

std::atomic<uint64_t> g_count_calls{0};
// The last call as (setter << 32) | (uint32_t)count, one word so that the
// pair is never torn between two threads' calls.
std::atomic<uint64_t> g_count_last{0};
std::atomic<int> g_count_low{INT_MAX};
std::atomic<int> g_count_high{INT_MIN};

__thread bool t_in_count_setter __attribute__((tls_model("initial-exec"))) = false;

void record_count(CountSetter setter, int count) {
  g_count_last.store((static_cast<uint64_t>(setter) << 32) | static_cast<uint32_t>(count),
                     std::memory_order_relaxed);
  int low = g_count_low.load(std::memory_order_relaxed);
  while (count < low && !g_count_low.compare_exchange_weak(low, count, std::memory_order_relaxed)) {
  }
  int high = g_count_high.load(std::memory_order_relaxed);
  while (count > high &&
         !g_count_high.compare_exchange_weak(high, count, std::memory_order_relaxed)) {
  }
  // Last, so that a reader that sees the call sees its value.
  g_count_calls.fetch_add(1, std::memory_order_release);
}

// Not cached while absent: the library may be loaded later with dlopen.
CountFunction next_setter(CountSetter setter) {
  auto index = static_cast<size_t>(setter);
  CountFunction next = g_next_setters[index].load(std::memory_order_acquire);
  if (next == nullptr) {
    next = reinterpret_cast<CountFunction>(::dlsym(RTLD_NEXT, kCountSetterNames[index]));
    g_next_setters[index].store(next, std::memory_order_release);
  }
  return next;
}

// What the creating thread hands to the trampoline. Allocated from the
// lower allocator directly, never through the hooks.
struct StartBlock {
  void* (*routine)(void*);
  void* argument;
  ThreadRecord* record;
  uint64_t ordinal_hash;
  int slot;
  char ordinal[kOrdinalSize];
};

// Thread-specific data destructors run when the thread returns from its
// routine and when it calls pthread_exit, so this sees every exit. A later
// destructor of another key that allocates takes a slot again and re-arms
// the key; glibc then runs this again (up to PTHREAD_DESTRUCTOR_ITERATIONS
// rounds; a slot still held after those stays taken, its counts kept).
void on_thread_exit(void*) {
  release_counter_slot();
  if (t_self.record != nullptr) {
    t_self.record->last_cpu.store(::sched_getcpu(), std::memory_order_relaxed);
    t_self.record->exited.store(true, std::memory_order_release);
  }
  if (t_self.slot >= 0 && g_config.pin_cpu_count > 0) {
    g_slot_holders[t_self.slot].fetch_sub(1, std::memory_order_relaxed);
  }
}

void* trampoline(void* opaque) {
  StartBlock block;
  std::memcpy(&block, opaque, sizeof block);
  g_lower.free(opaque);

  t_self.random_bits = 0;
  t_self.refills = 0;
  t_self.ordinal_hash = block.ordinal_hash;
  t_self.record = block.record;
  t_self.slot = block.slot;
  t_self.children = 0;
  std::memcpy(t_self.ordinal, block.ordinal, kOrdinalSize);

  int assigned = -1;
  if (g_config.pin_cpu_count > 0) {
    int cpu = g_config.pin_cpus[block.slot];
    cpu_set_t mask;
    CPU_ZERO(&mask);
    CPU_SET(static_cast<size_t>(cpu), &mask);
    if (::sched_setaffinity(0, sizeof mask, &mask) == 0) {
      assigned = cpu;
    }
  }
  if (block.record != nullptr) {
    block.record->assigned_cpu = assigned;
    block.record->last_cpu.store(::sched_getcpu(), std::memory_order_relaxed);
    block.record->tid.store(prim::thread_id(), std::memory_order_release);
  }
  arm_thread_exit();
  return block.routine(block.argument);
}

void after_fork_in_child() {
  // Only the forking thread lives on; the child is a process of its own,
  // with its own report.
  ::sched_setaffinity(0, sizeof g_initial_mask, &g_initial_mask);
  reset_counters();
  g_record_count.store(0, std::memory_order_relaxed);
  for (auto& holders : g_slot_holders) {
    holders.store(0, std::memory_order_relaxed);
  }
  t_self.record = nullptr;
  t_self.slot = -1;
  heap_after_fork_child();
}

}  // namespace

ThreadRecord* thread_records() { return g_records; }

size_t thread_record_count() {
  size_t count = g_record_count.load(std::memory_order_acquire);
  return count < kMaxThreadRecords ? count : kMaxThreadRecords;
}

const cpu_set_t& initial_cpu_mask() { return g_initial_mask; }

void arm_thread_exit() {
  if (g_have_exit_key) {
    // Any non-null value: the destructor reads t_self.
    ::pthread_setspecific(g_exit_key, &g_exit_key);
  }
}

void start_threads() {
  if (g_config.has_free_cpus) {
    cpu_set_t current;
    if (::sched_getaffinity(0, sizeof current, &current) == 0 &&
        !CPU_EQUAL(&current, &g_config.free_cpus)) {
      // An exec'd child of a pinned thread inherits the pin.
      ::sched_setaffinity(0, sizeof g_config.free_cpus, &g_config.free_cpus);
    }
  }
  if (::sched_getaffinity(0, sizeof g_initial_mask, &g_initial_mask) != 0) {
    CPU_ZERO(&g_initial_mask);
  }
  ::pthread_atfork(nullptr, nullptr, after_fork_in_child);
  // Every active mode counts allocations per thread, so every thread that
  // takes a counter slot needs the exit hook.
  g_have_exit_key = ::pthread_key_create(&g_exit_key, on_thread_exit) == 0;
}

const char* count_setter_name(CountSetter setter) {
  return kCountSetterNames[static_cast<size_t>(setter)];
}

void set_thread_count(CountSetter setter, int count) {
  bool outermost = !t_in_count_setter;
  if (outermost && start() == Start::kReady && is_active()) {
    record_count(setter, count);
  }
  CountFunction next = next_setter(setter);
  if (next != nullptr) {
    t_in_count_setter = true;
    next(count);
    t_in_count_setter = !outermost;
  }
}

CountSetting thread_count_setting() {
  CountSetting setting;
  setting.calls = g_count_calls.load(std::memory_order_acquire);
  if (setting.calls == 0) {
    return setting;
  }
  uint64_t last = g_count_last.load(std::memory_order_relaxed);
  setting.last_setter = static_cast<CountSetter>(last >> 32);
  setting.last = static_cast<int>(static_cast<uint32_t>(last));
  setting.low = g_count_low.load(std::memory_order_relaxed);
  setting.high = g_count_high.load(std::memory_order_relaxed);
  return setting;
}

int create_thread(pthread_t* thread, const pthread_attr_t* attributes, void* (*routine)(void*),
                  void* argument) {
  if (!g_config.wraps_threads()) {
    int result = g_lower.pthread_create(thread, attributes, routine, argument);
    if (result == 0) {
      g_counters.threads_created.fetch_add(1, std::memory_order_relaxed);
    }
    return result;
  }

  auto* block = static_cast<StartBlock*>(g_lower.malloc(sizeof(StartBlock)));
  if (block == nullptr) {
    return EAGAIN;
  }
  unsigned index = ++t_self.children;
  block->routine = routine;
  block->argument = argument;
  block->ordinal_hash = child_ordinal_hash(t_self.ordinal_hash, index);
  child_ordinal(t_self.ordinal, index, block->ordinal);
  block->slot = g_config.pin_cpu_count > 0
                    ? static_cast<int>(child_slot(t_self.slot, index, g_config.pin_cpu_count))
                    : -1;
  // The slot is claimed here, in creation order, not when the thread first
  // runs: a later sibling may start running before an earlier one.
  bool collision = false;
  if (block->slot >= 0) {
    collision = g_slot_holders[block->slot].fetch_add(1, std::memory_order_relaxed) > 0;
  }
  block->record = nullptr;
  if (g_config.logs_threads()) {
    size_t slot = g_record_count.fetch_add(1, std::memory_order_acq_rel);
    if (slot < kMaxThreadRecords) {
      ThreadRecord& record = g_records[slot];
      std::memcpy(record.ordinal, block->ordinal, kOrdinalSize);
      record.tid.store(0, std::memory_order_relaxed);
      record.assigned_cpu = -1;
      record.last_cpu.store(-1, std::memory_order_relaxed);
      record.collision = collision;
      record.exited.store(false, std::memory_order_relaxed);
      block->record = &record;
    }
  }

  int result = g_lower.pthread_create(thread, attributes, trampoline, block);
  if (result != 0) {
    // The ordinal is given back so that a retry gets the same one. A record
    // already taken stays, marked as exited with no tid.
    --t_self.children;
    if (block->slot >= 0) {
      g_slot_holders[block->slot].fetch_sub(1, std::memory_order_relaxed);
    }
    if (block->record != nullptr) {
      block->record->exited.store(true, std::memory_order_release);
    }
    g_lower.free(block);
    return result;
  }
  g_counters.threads_created.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

}  // namespace memdet::preload
