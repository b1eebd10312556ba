// fingerprint=: the memory-layout fingerprint of CONTRACT.md. Every
// allocation through the hooks updates its thread's running digests in the
// shared live file (a few multiplies, no lock, no allocation); the first
// allocations of each thread, those at or above fp_threshold and the
// largest live blocks are kept in fixed buffers. The full record (callers
// resolved, the virtual layout, NUMA and physical placement) is written
// when the process leaves.
#pragma once

#include <cstddef>
#include <cstdint>

#include "preload/fingerprint_file.h"
#include "preload/shim.h"

#pragma GCC visibility push(hidden)

namespace memdet::preload {

inline constexpr size_t kFirstEntries = 1024;  // kept per thread, from its first allocation
inline constexpr size_t kFirstThreads = 64;    // threads (by slot) that keep them
inline constexpr size_t kCheckpoints = 48;     // digests after 1, 2, 4, ... allocations

extern bool g_fingerprinting;  // set once, at start, when the live file is mapped
extern LiveFile* g_live;
// Allocations of this size or more take the rare path: fp_threshold while
// the buffer of large entries has room, then the size of the blocks whose
// physical placement is sampled.
extern size_t g_rare_size;
// Frees inside [g_tracked_low, g_tracked_low + g_tracked_span) may release
// one of the largest live blocks.
extern uintptr_t g_tracked_low;
extern uintptr_t g_tracked_span;

// Called once from start() in active mode with fingerprint= set: maps the
// live file, installs the fatal-signal handlers and the fork handler.
void start_fingerprint();

// The calling thread's slot in the live file (or a sink once all are
// taken), set in t_self.
LiveThread* attach_fingerprint_thread();

// The rare path: first entries, checkpoints, large entries.
void note_rare(LiveThread* thread, uint64_t index, const void* pointer, size_t size, uint64_t word,
               const void* caller);

// A block that may be a tracked large one is going back: its pages are
// sampled first.
void release_tracked(const void* pointer);

inline void fingerprint_note(const void* pointer, size_t size, AllocKind kind, const void* caller) {
  if (MEMDET_LIKELY(!g_fingerprinting) || pointer == nullptr) {
    return;
  }
  LiveThread* thread = t_self.fingerprint;
  if (MEMDET_UNLIKELY(thread == nullptr)) {
    thread = attach_fingerprint_thread();
  }
  uint64_t word = size_word(size, kind);
  uint64_t index = thread->count;
  thread->size_digest = digest_step(thread->size_digest, word);
  thread->address_digest = digest_step(thread->address_digest, address_word(word, pointer));
  thread->count = index + 1;
  // Relaxed loads and stores, not read-modify-writes: no locked
  // instruction, and a race loses an update (see LiveHeader).
  LiveHeader& header = g_live->header;
  __atomic_store_n(&header.global_digest,
                   digest_step(__atomic_load_n(&header.global_digest, __ATOMIC_RELAXED), word),
                   __ATOMIC_RELAXED);
  __atomic_store_n(&header.global_count,
                   __atomic_load_n(&header.global_count, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
  // index < kFirstEntries, or index + 1 a power of two (a checkpoint).
  if (MEMDET_UNLIKELY(index < kFirstEntries || ((index + 1) & index) == 0 || size >= g_rare_size)) {
    note_rare(thread, index, pointer, size, word, caller);
  }
}

inline void fingerprint_free(const void* pointer) {
  uintptr_t low = __atomic_load_n(&g_tracked_low, __ATOMIC_RELAXED);
  if (MEMDET_UNLIKELY(reinterpret_cast<uintptr_t>(pointer) - low <
                      __atomic_load_n(&g_tracked_span, __ATOMIC_RELAXED))) {
    release_tracked(pointer);
  }
}

// Writes <dir>/fingerprint.<stem>.txt and marks the live file with how the
// process left. Safe in a signal handler: system calls and fixed buffers
// only. A second call while one is writing returns at once.
void write_fingerprint(LiveState state, int signal);

// An exec call failed: the process goes on, and so does its fingerprint.
void fingerprint_exec_failed();

}  // namespace memdet::preload

#pragma GCC visibility pop
