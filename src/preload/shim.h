// State shared by the parts of the preload library. The rules that every
// file here follows are at the top of hooks.cc.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "preload/config.h"
#include "preload/ordinal.h"

#define MEMDET_EXPORT __attribute__((visibility("default")))
#define MEMDET_LIKELY(condition) __builtin_expect(!!(condition), 1)
#define MEMDET_UNLIKELY(condition) __builtin_expect(!!(condition), 0)

// Declarations too, not only definitions, so the compiler addresses the
// shared state directly rather than through the GOT.
#pragma GCC visibility push(hidden)

namespace memdet::preload {

// The allocator and libc functions beneath the shim, found with
// dlsym(RTLD_NEXT) at the first hooked call. The allocator functions must
// all come from one library: freeing one allocator's block with another's
// free crashes.
struct Lower {
  // Required.
  void* (*malloc)(size_t) = nullptr;
  void (*free)(void*) = nullptr;
  void* (*calloc)(size_t, size_t) = nullptr;
  void* (*realloc)(void*, size_t) = nullptr;
  int (*posix_memalign)(void**, size_t, size_t) = nullptr;
  int (*pthread_create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*) = nullptr;
  // Optional: without it, realloc cannot tell how much of a block is new.
  size_t (*malloc_usable_size)(void*) = nullptr;
  // Optional, jemalloc only: read for the report's jemalloc_opt line.
  int (*mallctl)(const char*, void*, size_t*, void*, size_t) = nullptr;

  const char* library = nullptr;  // where malloc was found (dladdr)
  bool consistent = false;        // every allocator function from that library
};

enum class Mode : int { kUnset, kStarting, kPassive, kActive };

extern Lower g_lower;
extern Config g_config;
extern std::atomic<Mode> g_mode;
// What the allocation hooks do: active only when a feature works through
// them (heap offsets, fill, huge pages, the fingerprint); the missed-seed
// sources alone leave allocation at the passive cost. Set with g_mode.
extern std::atomic<Mode> g_alloc_mode;

inline Mode current_mode() { return g_mode.load(std::memory_order_acquire); }
inline bool is_passive() { return g_mode.load(std::memory_order_acquire) == Mode::kPassive; }
inline bool is_active() { return g_mode.load(std::memory_order_acquire) == Mode::kActive; }
inline Mode alloc_mode() { return g_alloc_mode.load(std::memory_order_acquire); }
inline bool alloc_passive() {
  return g_alloc_mode.load(std::memory_order_acquire) == Mode::kPassive;
}

enum class Start {
  kReady,      // g_lower is resolved; the mode is passive or active
  kBootstrap,  // resolution is under way: serve the call from the bootstrap buffer
};

// Decides passive or active, once, at the first hooked call. A call made
// while that is under way (dlsym allocating on this thread, or another
// thread arriving meanwhile) gets kBootstrap instead of waiting: waiting
// could deadlock on the dynamic linker's lock, which dlsym holds.
Start start();

// What dlsym and early callers allocate before the lower allocator is known:
// a static buffer that is never reused, so it is already zero.
void* bootstrap_allocate(size_t size, size_t alignment);
size_t bootstrap_size(const void* pointer);

extern char g_bootstrap[];
inline constexpr size_t kBootstrapSize = 256 * 1024;

inline bool in_bootstrap(const void* pointer) {
  return static_cast<size_t>(static_cast<const char*>(pointer) - g_bootstrap) < kBootstrapSize;
}

// A thread's place in the creation tree, its stream of seeded offsets and
// its counter slot. Initial-exec TLS: reading it never calls into the
// dynamic linker, which may allocate. The fields every active allocation
// touches come first.
struct ThreadRecord;
struct CounterSlot;
struct LiveThread;

struct ThreadSelf {
  // Unused seeded bits, two per allocation, above a marker bit; 0 or 1:
  // empty. Refilled from (seed, ordinal_hash, refills).
  uint64_t random_bits;
  CounterSlot* counters;  // null until the thread's first counted allocation
  uint64_t refills;
  uint64_t ordinal_hash;
  ThreadRecord* record;
  int slot;  // index into cpus=; -1 for a thread not created through the shim
  unsigned children;
  bool starting;  // inside start() on this thread
  // Inside a lower function that may call back into the shim: tcmalloc's
  // malloc_usable_size allocates with operator new on first use. Calls
  // arriving meanwhile skip the extras that would call it again.
  bool in_lower;
  char ordinal[kOrdinalSize];
  // fingerprint=: the thread's running digests, in the shared live file;
  // null until its first allocation.
  LiveThread* fingerprint;
};

extern __thread ThreadSelf t_self __attribute__((tls_model("initial-exec")));

// The rare counters behind the report, reset in a forked child. The
// per-allocation ones are per thread (counters.h).
struct Counters {
  std::atomic<uint64_t> huge_aligned{0};
  // The most AnonHugePages (kB) seen just before a large block was freed:
  // a program that frees its arrays before exit (Python does) shows none
  // at the report.
  std::atomic<long> huge_peak_kb{-1};
  std::atomic<uint64_t> madvise_suppressed{0};
  std::atomic<uint64_t> threads_created{0};
};
extern Counters g_counters;

void reset_counters();

}  // namespace memdet::preload

#pragma GCC visibility pop
