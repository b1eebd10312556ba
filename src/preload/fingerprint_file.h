// The live fingerprint file, <dir>/fingerprint.<stem>.live: a fixed-size
// record that the preload library maps shared and updates in place, so that
// a process killed by SIGKILL still leaves its last running digests. memdet
// reads it with the same layout (src/measure/fingerprint.cc). Plain data, no
// dependencies: both sides include it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memdet::preload {

inline constexpr char kLiveMagic[8] = {'m', 'e', 'm', 'd', 'e', 't', 'f', 'p'};
inline constexpr uint32_t kLiveVersion = 1;
inline constexpr size_t kLiveThreads = 1024;
inline constexpr size_t kLiveOrdinalSize = 48;

// How the process left, as far as the library saw it. kRunning in a file
// without a full record: it was killed by a signal it could not catch.
enum class LiveState : uint32_t {
  kRunning = 0,
  kExit = 1,            // exit() or a return from main: the destructor ran
  kUnderscoreExit = 2,  // _exit or _Exit
  kExec = 3,            // an exec call; the new image writes a file of its own
  kSignal = 4,          // a fatal signal, in LiveHeader::signal
};

struct LiveHeader {
  char magic[8];
  uint32_t version;
  uint32_t state;  // LiveState
  int32_t pid;
  int32_t ppid;
  uint32_t image;              // how many earlier images of this pid left a file (exec)
  uint32_t signal;             // kSignal: the signal number
  uint64_t threads;            // slots in use
  uint64_t untracked_threads;  // threads beyond kLiveThreads, not digested
  uint64_t pad[2];
  // Written by every thread without a lock: the order of allocations across
  // threads depends on timing, and concurrent updates may overwrite each
  // other, so equal values mean equal interleavings only where no two
  // threads allocated at once.
  alignas(64) uint64_t global_digest;
  uint64_t global_count;
};

// One thread, by creation ordinal; written only by that thread.
struct alignas(64) LiveThread {
  char ordinal[kLiveOrdinalSize];
  uint64_t count;           // allocations so far
  uint64_t size_digest;     // over (kind, size) in order
  uint64_t address_digest;  // over (kind, size, address) in order
};

struct LiveFile {
  LiveHeader header;
  LiveThread threads[kLiveThreads];
};

// The running digest: one multiply and one xorshift per value, in order.
inline uint64_t digest_step(uint64_t digest, uint64_t value) {
  digest = (digest ^ value) * 0x9e3779b97f4a7c15ULL;
  return digest ^ (digest >> 29);
}

// What is digested for one allocation: its size and kind, and its address.
enum class AllocKind : uint8_t { kMalloc = 1, kCalloc = 2, kRealloc = 3, kAligned = 4, kNew = 5 };

inline uint64_t size_word(size_t size, AllocKind kind) {
  return static_cast<uint64_t>(size) << 4 | static_cast<uint64_t>(kind);
}

inline uint64_t address_word(uint64_t size_word, const void* address) {
  return size_word ^ (reinterpret_cast<uintptr_t>(address) * 0xff51afd7ed558ccdULL);
}

}  // namespace memdet::preload
