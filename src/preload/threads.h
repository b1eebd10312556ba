// Threads created through pthread_create: their ordinals, CPU slots, the
// creation log, and the fork handler that undoes a pin in the child. And
// the thread counts a program sets at run time, over the environment.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

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

// The run-time setters of a thread count that the hooks interpose:
// torch.set_num_threads calls omp_set_num_threads, and so does torch's own
// start-up, with the count OMP_NUM_THREADS gives.
enum class CountSetter : uint8_t { kOmp, kOpenblas, kGoto, kMkl };
inline constexpr size_t kCountSetters = 4;

// The function's name, as the report writes it.
const char* count_setter_name(CountSetter setter);

// A setter hook: records the call (in active mode) and forwards it to the
// next definition, found with dlsym(RTLD_NEXT) at the first call. A setter
// called from inside another (OpenBLAS's openblas_set_num_threads calls
// goto_set_num_threads through its PLT) is forwarded but not recorded: the
// program made one call. Without a next definition the call is recorded
// and dropped.
void set_thread_count(CountSetter setter, int count);

// What the program set, over all its threads. A forked child keeps its
// parent's: the count set is inherited along with the library's state.
struct CountSetting {
  uint64_t calls = 0;
  CountSetter last_setter = CountSetter::kOmp;  // meaningful when calls > 0
  int last = 0;
  int low = 0;  // the smallest and largest count set
  int high = 0;
};
CountSetting thread_count_setting();

}  // namespace memdet::preload
