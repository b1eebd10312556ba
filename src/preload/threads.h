// Threads created through pthread_create: their ordinals, CPU slots, the
// creation log, and the fork handler that undoes a pin in the child.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>

#include "preload/ordinal.h"
#include "preload/shim.h"

namespace memdet::preload {

inline constexpr size_t kMaxThreadRecords = 4096;

// One line of the report's thread log.
struct ThreadRecord {
  char ordinal[kOrdinalSize];
  std::atomic<pid_t> tid;
  int assigned_cpu;           // -1 when not pinned
  std::atomic<int> last_cpu;  // -1 until the thread has run
  bool collision;             // its slot was held by a live thread
  std::atomic<bool> exited;
};

// The log; entries below thread_record_count() are complete enough to
// print (a thread still starting shows tid 0).
ThreadRecord* thread_records();
size_t thread_record_count();

// Called once from start() in active mode: records the CPU mask (after
// restoring free_cpus=), registers the fork handler and the thread-exit key.
void start_threads();

// Arms the calling thread's exit hook (a thread-specific-data destructor
// that closes its log record, frees its CPU slot and gives back its counter
// slot). May allocate, once per thread, for a key past the first block.
void arm_thread_exit();

// The mask the process had at start, restored in forked children.
const cpu_set_t& initial_cpu_mask();

// The pthread_create hook's active path.
int create_thread(pthread_t* thread, const pthread_attr_t* attributes, void* (*routine)(void*),
                  void* argument);

}  // namespace memdet::preload
