// A thread's ordinal is its path in the creation tree: the main thread is
// "0", its first child "0.1", that child's second child "0.1.2". Ordinals,
// unlike thread ids, are the same in every run of a program whose threads
// create threads in the same order, so pinning and seeded offsets key on
// them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace memdet::preload {

inline constexpr size_t kOrdinalSize = 48;

// The main thread's ordinal "0", hashed; children derive theirs from it.
inline constexpr uint64_t kMainOrdinalHash = 0x6a09e667f3bcc908ULL;

// splitmix64's finaliser: a cheap, well-mixed 64-bit hash.
inline uint64_t mix64(uint64_t value) {
  value ^= value >> 30;
  value *= 0xbf58476d1ce4e5b9ULL;
  value ^= value >> 27;
  value *= 0x94d049bb133111ebULL;
  value ^= value >> 31;
  return value;
}

// The slot rule of CONTRACT.md: the main thread (creator_slot -1) has slot
// count-1, and a child's slot is its creator's plus its child index (from
// 1), modulo count. The main thread's children so get 0, 1, 2, ...
inline size_t child_slot(int creator_slot, unsigned child_index, size_t count) {
  size_t creator = creator_slot < 0 ? count - 1 : static_cast<size_t>(creator_slot);
  return (creator + child_index) % count;
}

inline uint64_t child_ordinal_hash(uint64_t parent_hash, unsigned index) {
  return mix64(parent_hash ^ (0x9e3779b97f4a7c15ULL * (index + 1ULL)));
}

// Writes `parent` + "." + index into `out` (kOrdinalSize bytes). An ordinal
// too deep to fit keeps its first part and ends in "+", and so do all its
// descendants: the log then shows where the tree was cut.
void child_ordinal(const char* parent, unsigned index, char* out);

}  // namespace memdet::preload
