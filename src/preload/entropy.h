// entropy=: OS entropy served from a seeded stream (CONTRACT.md, "Entropy").
#pragma once

#include <cstddef>

#include "preload/prim.h"

namespace memdet::preload {

// Called once from start() in active mode when entropy= is set.
void start_entropy();

// The report's entropy lines; nothing when entropy= is not set.
void write_entropy_report(prim::Writer& out);

// The environment an exec passes on. With entropy= active, a copy of
// `envp` whose MEMDET_PRELOAD has its `lineage=` digits rewritten, in
// place and at the same width, to mix(lineage, this process's exec count),
// so the new image draws a stream of its own; otherwise `envp` itself.
// The copy lives on the stack (an mmap'd block for a large environment):
// no allocation through the hooks, and nothing leaks from a vfork child.
class ExecEnvironment {
 public:
  // `spawned`: the environment of a new process (posix_spawn, system,
  // popen), which is no longer the process memdet launched; otherwise the
  // image that replaces this one.
  explicit ExecEnvironment(char* const* envp, bool spawned = false);
  ~ExecEnvironment();
  ExecEnvironment(const ExecEnvironment&) = delete;
  ExecEnvironment& operator=(const ExecEnvironment&) = delete;

  char* const* get() const { return envp_; }

 private:
  static constexpr size_t kInlineEntries = 256;
  static constexpr size_t kEntrySize = 4096 + 64;

  char* const* envp_;
  void* mapped_ = nullptr;
  size_t mapped_size_ = 0;
  char* entries_[kInlineEntries];
  char entry_[kEntrySize];
};

}  // namespace memdet::preload
