// libmemdet_preload.so: loaded first with LD_PRELOAD, it sits between the
// workload and its allocator and perturbs or pins what memdet asks for
// (CONTRACT.md). With MEMDET_PRELOAD absent or blank every hook passes
// straight through.
//
// Rules for all code in src/preload, because it runs inside malloc, inside
// the dynamic linker's calls and inside freshly forked children:
// - Never allocate through the hooked functions while inside a hook: the
//   call would re-enter the shim, recurse, or hand out a block the caller's
//   free cannot take back. Use the lower allocator (g_lower) directly, or
//   fixed buffers.
// - Never take a lock that can re-enter: a hook may be called while any
//   lock in the process is held, including the one dlsym holds. Atomics
//   only; a call during start-up is served from the bootstrap buffer, never
//   made to wait.
// - Never throw: the library is built with -fno-exceptions and its callers
//   are C code that cannot unwind.
// - Never use stdio: it allocates and locks. Output is write(2) on fd 2 and
//   on the report file.
// - Built with -fno-builtin, so the compiler cannot turn a loop or a
//   malloc+memset here back into a call of a hooked function.
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "preload/entropy.h"
#include "preload/fingerprint.h"
#include "preload/heap.h"
#include "preload/prim.h"
#include "preload/report.h"
#include "preload/shim.h"
#include "preload/threads.h"

extern char** environ;

using memdet::preload::alloc_mode;
using memdet::preload::alloc_passive;
using memdet::preload::AllocKind;
using memdet::preload::Fill;
using memdet::preload::fingerprint_free;
using memdet::preload::fingerprint_note;
using memdet::preload::g_lower;
using memdet::preload::is_passive;
using memdet::preload::Mode;
using memdet::preload::Start;

namespace {

// The hooks test the mode once: passive goes straight to the lower
// allocator, active straight to heap.cc. Every other call (the mode not yet
// decided) starts here, and the first one decides it. Kept out of line so
// the passive fast paths stay a load, a compare and a jump.
__attribute__((noinline)) void* allocate_slow(size_t size, size_t alignment, Fill fill) {
  if (memdet::preload::start() == Start::kBootstrap) {
    return memdet::preload::bootstrap_allocate(size, alignment);
  }
  void* pointer = nullptr;
  if (alloc_passive()) {
    if (fill == Fill::kZero) {
      pointer = g_lower.calloc(1, size);
    } else if (alignment == 0) {
      pointer = g_lower.malloc(size);
    } else {
      int result = g_lower.posix_memalign(&pointer, alignment, size);
      if (result != 0) {
        errno = result;
        return nullptr;
      }
    }
    return pointer;
  }
  pointer = memdet::preload::heap_allocate(size, alignment, fill);
  if (pointer == nullptr) {
    errno = ENOMEM;
  }
  return pointer;
}

__attribute__((noinline)) void free_slow(void* pointer) {
  if (pointer == nullptr || memdet::preload::in_bootstrap(pointer)) {
    return;
  }
  if (memdet::preload::start() == Start::kBootstrap) {
    return;  // cannot be ours to free yet: nothing was handed out but bootstrap
  }
  if (alloc_passive()) {
    g_lower.free(pointer);
  } else {
    memdet::preload::heap_free(pointer);
  }
}

__attribute__((noinline)) void* reallocate_slow(void* pointer, size_t size) {
  using memdet::preload::bootstrap_size;
  using memdet::preload::in_bootstrap;
  if (memdet::preload::start() == Start::kBootstrap || (alloc_passive() && in_bootstrap(pointer))) {
    // Out of the bootstrap buffer, into a fresh block.
    if (pointer != nullptr && size == 0) {
      return nullptr;
    }
    void* fresh = allocate_slow(size, 0, Fill::kUninit);
    if (fresh != nullptr && pointer != nullptr) {
      size_t old_size = in_bootstrap(pointer) ? bootstrap_size(pointer) : size;
      std::memcpy(fresh, pointer, old_size < size ? old_size : size);
    }
    return fresh;
  }
  if (alloc_passive()) {
    return g_lower.realloc(pointer, size);
  }
  void* moved = memdet::preload::heap_reallocate(pointer, size);
  if (moved == nullptr && size != 0) {
    errno = ENOMEM;
  }
  return moved;
}

bool valid_alignment(size_t alignment) {
  return alignment >= sizeof(void*) && (alignment & (alignment - 1)) == 0;
}

// memalign and aligned_alloc as glibc 2.36 has them: an alignment that is not
// a power of two is rounded up to one.
size_t round_alignment(size_t alignment) {
  size_t rounded = sizeof(void*);
  while (rounded < alignment && rounded < (SIZE_MAX >> 1) + 1) {
    rounded <<= 1;
  }
  return rounded;
}

void* allocate_aligned(size_t alignment, size_t size, const void* caller) {
  if (MEMDET_LIKELY(alloc_passive())) {
    void* pointer = nullptr;
    int result = g_lower.posix_memalign(&pointer, alignment, size);
    if (result != 0) {
      errno = result;
      return nullptr;
    }
    return pointer;
  }
  void* pointer = allocate_slow(size, alignment, Fill::kUninit);
  fingerprint_note(pointer, size, AllocKind::kAligned, caller);
  return pointer;
}

size_t page_size() { return static_cast<size_t>(::getpagesize()); }

// operator new's failure path: the installed new_handler, if any, gets its
// chance; without one, a throwing new cannot throw here (no exceptions), so
// it says so and aborts.
enum class OnFailure { kAbort, kReturnNull };

__attribute__((noinline)) void* new_slow(size_t size, size_t alignment, OnFailure on_failure,
                                         const void* caller) {
  using Getter = void (*(*)())();
  for (;;) {
    void* pointer = alignment == 0 ? allocate_slow(size, 0, Fill::kUninit)
                                   : allocate_slow(size, alignment, Fill::kUninit);
    if (pointer != nullptr) {
      fingerprint_note(pointer, size, alignment == 0 ? AllocKind::kNew : AllocKind::kAligned,
                       caller);
      return pointer;
    }
    if (on_failure == OnFailure::kReturnNull) {
      return nullptr;
    }
    // Looked up now, not at start: libstdc++ may arrive later with dlopen.
    auto get_handler = reinterpret_cast<Getter>(::dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv"));
    void (*handler)() = get_handler != nullptr ? get_handler() : nullptr;
    if (handler == nullptr) {
      memdet::preload::prim::die("operator new: out of memory");
    }
    handler();
  }
}

inline void* new_fast(size_t size, const void* caller) {
  if (size == 0) {
    size = 1;
  }
  Mode mode = alloc_mode();
  void* pointer = nullptr;
  if (MEMDET_LIKELY(mode == Mode::kPassive)) {
    pointer = g_lower.malloc(size);
  } else if (MEMDET_LIKELY(mode == Mode::kActive)) {
    pointer = memdet::preload::heap_malloc(size);
    fingerprint_note(pointer, size, AllocKind::kNew, caller);
  }
  if (MEMDET_LIKELY(pointer != nullptr)) {
    return pointer;
  }
  return new_slow(size, 0, OnFailure::kAbort, caller);
}

inline void* new_nothrow(size_t size, const void* caller) {
  return new_slow(size == 0 ? 1 : size, 0, OnFailure::kReturnNull, caller);
}

inline void* new_aligned(size_t size, std::align_val_t alignment, OnFailure on_failure,
                         const void* caller) {
  auto value = static_cast<size_t>(alignment);
  return new_slow(size == 0 ? 1 : size, value < sizeof(void*) ? sizeof(void*) : value, on_failure,
                  caller);
}

inline void delete_fast(void* pointer) {
  Mode mode = alloc_mode();
  if (MEMDET_LIKELY(mode == Mode::kPassive && !memdet::preload::in_bootstrap(pointer))) {
    g_lower.free(pointer);
    return;
  }
  if (MEMDET_LIKELY(mode == Mode::kActive)) {
    fingerprint_free(pointer);
    memdet::preload::heap_free(pointer);
    return;
  }
  free_slow(pointer);
}

// Whether start() is done: the mode decided at the first hooked call also
// covers a process that never allocates.
__attribute__((constructor)) void at_load() { memdet::preload::start(); }

__attribute__((destructor)) void at_unload() {
  memdet::preload::write_report();
  memdet::preload::write_fingerprint(memdet::preload::LiveState::kExit, 0);
}

// The exec functions that must pass on through the dynamic linker (they
// search PATH or take a descriptor), looked up at their first call.
template <typename Function>
Function next_exec(std::atomic<void*>& cache, const char* name) {
  void* next = cache.load(std::memory_order_acquire);
  if (next == nullptr) {
    next = ::dlsym(RTLD_NEXT, name);
    cache.store(next, std::memory_order_release);
  }
  return reinterpret_cast<Function>(next);
}

std::atomic<void*> g_next_execvpe{nullptr};
std::atomic<void*> g_next_fexecve{nullptr};

// The image is about to be replaced: its fingerprint is written now, and
// taken back to running if the exec fails.
void before_exec() { memdet::preload::write_fingerprint(memdet::preload::LiveState::kExec, 0); }

int after_exec(int result) {
  int saved = errno;
  memdet::preload::fingerprint_exec_failed();
  errno = saved;
  return result;
}

}  // namespace

extern "C" {

MEMDET_EXPORT void* malloc(size_t size) noexcept {
  Mode mode = alloc_mode();
  if (MEMDET_LIKELY(mode == Mode::kPassive)) {
    return g_lower.malloc(size);
  }
  void* pointer = MEMDET_LIKELY(mode == Mode::kActive) ? memdet::preload::heap_malloc(size)
                                                       : allocate_slow(size, 0, Fill::kUninit);
  fingerprint_note(pointer, size, AllocKind::kMalloc, __builtin_return_address(0));
  return pointer;
}

MEMDET_EXPORT void free(void* pointer) noexcept { delete_fast(pointer); }

MEMDET_EXPORT void* calloc(size_t count, size_t size) noexcept {
  if (MEMDET_LIKELY(alloc_passive())) {
    return g_lower.calloc(count, size);
  }
  size_t total = 0;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  void* pointer = allocate_slow(total, 0, Fill::kZero);
  fingerprint_note(pointer, total, AllocKind::kCalloc, __builtin_return_address(0));
  return pointer;
}

MEMDET_EXPORT void* realloc(void* pointer, size_t size) noexcept {
  Mode mode = alloc_mode();
  if (MEMDET_LIKELY(mode == Mode::kPassive && !memdet::preload::in_bootstrap(pointer))) {
    return g_lower.realloc(pointer, size);
  }
  void* moved = nullptr;
  if (MEMDET_LIKELY(mode == Mode::kActive)) {
    fingerprint_free(pointer);
    moved = memdet::preload::heap_reallocate(pointer, size);
    if (moved == nullptr && size != 0) {
      errno = ENOMEM;
    }
  } else {
    moved = reallocate_slow(pointer, size);
  }
  if (size != 0) {
    fingerprint_note(moved, size, AllocKind::kRealloc, __builtin_return_address(0));
  }
  return moved;
}

MEMDET_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  if (!valid_alignment(alignment)) {
    return EINVAL;
  }
  if (MEMDET_LIKELY(alloc_passive())) {
    return g_lower.posix_memalign(out, alignment, size);
  }
  int saved = errno;
  void* pointer = allocate_slow(size, alignment, Fill::kUninit);
  if (pointer == nullptr) {
    int result = errno == 0 ? ENOMEM : errno;
    errno = saved;
    return result;
  }
  errno = saved;
  *out = pointer;
  fingerprint_note(pointer, size, AllocKind::kAligned, __builtin_return_address(0));
  return 0;
}

MEMDET_EXPORT void* aligned_alloc(size_t alignment, size_t size) noexcept {
  return allocate_aligned(round_alignment(alignment), size, __builtin_return_address(0));
}

MEMDET_EXPORT void* memalign(size_t alignment, size_t size) noexcept {
  return allocate_aligned(round_alignment(alignment), size, __builtin_return_address(0));
}

MEMDET_EXPORT void* valloc(size_t size) noexcept {
  return allocate_aligned(page_size(), size, __builtin_return_address(0));
}

// jemalloc has no pvalloc; built here on posix_memalign, it works over any
// lower allocator.
MEMDET_EXPORT void* pvalloc(size_t size) noexcept {
  size_t page = page_size();
  size_t rounded = size == 0 ? page : (size + page - 1) & ~(page - 1);
  if (rounded < size) {
    errno = ENOMEM;
    return nullptr;
  }
  return allocate_aligned(page, rounded, __builtin_return_address(0));
}

MEMDET_EXPORT size_t malloc_usable_size(void* pointer) noexcept {
  if (MEMDET_LIKELY(alloc_passive() && !memdet::preload::in_bootstrap(pointer))) {
    return g_lower.malloc_usable_size != nullptr ? g_lower.malloc_usable_size(pointer) : 0;
  }
  if (memdet::preload::start() == Start::kBootstrap && !memdet::preload::in_bootstrap(pointer)) {
    return 0;
  }
  return memdet::preload::heap_usable_size(pointer);
}

// numpy advises MADV_HUGEPAGE on its large arrays itself; hugepages=small
// must win over that.
MEMDET_EXPORT int madvise(void* address, size_t length, int advice) noexcept {
  if (advice == MADV_HUGEPAGE && !alloc_passive() && memdet::preload::start() == Start::kReady &&
      memdet::preload::is_active() &&
      memdet::preload::g_config.hugepages == memdet::preload::Hugepages::kSmall) {
    memdet::preload::g_counters.madvise_suppressed.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  return static_cast<int>(::syscall(SYS_madvise, address, length, advice));
}

MEMDET_EXPORT int pthread_create(pthread_t* thread, const pthread_attr_t* attributes,
                                 void* (*routine)(void*), void* argument) noexcept {
  if (memdet::preload::start() == Start::kBootstrap) {
    // Only the dynamic linker's own start-up runs before the lower
    // functions are known, and it creates no threads.
    return EAGAIN;
  }
  if (is_passive()) {
    return g_lower.pthread_create(thread, attributes, routine, argument);
  }
  return memdet::preload::create_thread(thread, attributes, routine, argument);
}

// Thread counts a program sets at run time, recorded for the report and
// passed on. Defining them here also makes them resolve for a program that
// loads no library of its own defining them: the call is then recorded and
// dropped.
MEMDET_EXPORT void omp_set_num_threads(int count) noexcept {
  memdet::preload::set_thread_count(memdet::preload::CountSetter::kOmp, count);
}

MEMDET_EXPORT void openblas_set_num_threads(int count) noexcept {
  memdet::preload::set_thread_count(memdet::preload::CountSetter::kOpenblas, count);
}

MEMDET_EXPORT void goto_set_num_threads(int count) noexcept {
  memdet::preload::set_thread_count(memdet::preload::CountSetter::kGoto, count);
}

MEMDET_EXPORT void mkl_set_num_threads(int count) noexcept {
  memdet::preload::set_thread_count(memdet::preload::CountSetter::kMkl, count);
}

// A program that leaves through _exit (Python's os._exit, a forked worker)
// runs no destructors, so the report is written here before the process
// ends, by the system call _exit itself makes.
MEMDET_EXPORT void _exit(int status) noexcept {
  memdet::preload::write_report();
  memdet::preload::write_fingerprint(memdet::preload::LiveState::kUnderscoreExit, 0);
  for (;;) {
    ::syscall(SYS_exit_group, status);
  }
}

MEMDET_EXPORT void _Exit(int status) noexcept { _exit(status); }

// fingerprint=: an exec ends the image, which runs no destructor. entropy=:
// the new image gets its own lineage through the environment passed on.
// execve and execv go straight to the system call; glibc's other exec
// functions call its internal execve, not this one, so they are interposed
// too, and execvp passes its environment on through execvpe.
MEMDET_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  before_exec();
  memdet::preload::ExecEnvironment environment(envp);
  return after_exec(static_cast<int>(::syscall(SYS_execve, path, argv, environment.get())));
}

MEMDET_EXPORT int execv(const char* path, char* const argv[]) noexcept {
  before_exec();
  memdet::preload::ExecEnvironment environment(environ);
  return after_exec(static_cast<int>(::syscall(SYS_execve, path, argv, environment.get())));
}

MEMDET_EXPORT int execvp(const char* file, char* const argv[]) noexcept {
  using Function = int (*)(const char*, char* const[], char* const[]);
  auto next = next_exec<Function>(g_next_execvpe, "execvpe");
  before_exec();
  memdet::preload::ExecEnvironment environment(environ);
  return after_exec(next != nullptr ? next(file, argv, environment.get()) : (errno = ENOSYS, -1));
}

MEMDET_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  using Function = int (*)(const char*, char* const[], char* const[]);
  auto next = next_exec<Function>(g_next_execvpe, "execvpe");
  before_exec();
  memdet::preload::ExecEnvironment environment(envp);
  return after_exec(next != nullptr ? next(file, argv, environment.get()) : (errno = ENOSYS, -1));
}

MEMDET_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) noexcept {
  using Function = int (*)(int, char* const[], char* const[]);
  auto next = next_exec<Function>(g_next_fexecve, "fexecve");
  before_exec();
  memdet::preload::ExecEnvironment environment(envp);
  return after_exec(next != nullptr ? next(fd, argv, environment.get()) : (errno = ENOSYS, -1));
}

}  // extern "C"

// C++ allocation: jemalloc and tcmalloc export their own operator new, so
// without these `new` would bypass the shim. Deletes ignore the size and
// alignment hints: free() finds both from the block.
MEMDET_EXPORT void* operator new(size_t size) {
  return new_fast(size, __builtin_return_address(0));
}
MEMDET_EXPORT void* operator new[](size_t size) {
  return new_fast(size, __builtin_return_address(0));
}
MEMDET_EXPORT void* operator new(size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow(size, __builtin_return_address(0));
}
MEMDET_EXPORT void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow(size, __builtin_return_address(0));
}
MEMDET_EXPORT void* operator new(size_t size, std::align_val_t alignment) {
  return new_aligned(size, alignment, OnFailure::kAbort, __builtin_return_address(0));
}
MEMDET_EXPORT void* operator new[](size_t size, std::align_val_t alignment) {
  return new_aligned(size, alignment, OnFailure::kAbort, __builtin_return_address(0));
}
MEMDET_EXPORT void* operator new(size_t size, std::align_val_t alignment,
                                 const std::nothrow_t&) noexcept {
  return new_aligned(size, alignment, OnFailure::kReturnNull, __builtin_return_address(0));
}
MEMDET_EXPORT void* operator new[](size_t size, std::align_val_t alignment,
                                   const std::nothrow_t&) noexcept {
  return new_aligned(size, alignment, OnFailure::kReturnNull, __builtin_return_address(0));
}

MEMDET_EXPORT void operator delete(void* pointer) noexcept { delete_fast(pointer); }
MEMDET_EXPORT void operator delete[](void* pointer) noexcept { delete_fast(pointer); }
MEMDET_EXPORT void operator delete(void* pointer, const std::nothrow_t&) noexcept {
  delete_fast(pointer);
}
MEMDET_EXPORT void operator delete[](void* pointer, const std::nothrow_t&) noexcept {
  delete_fast(pointer);
}
MEMDET_EXPORT void operator delete(void* pointer, size_t) noexcept { delete_fast(pointer); }
MEMDET_EXPORT void operator delete[](void* pointer, size_t) noexcept { delete_fast(pointer); }
MEMDET_EXPORT void operator delete(void* pointer, std::align_val_t) noexcept {
  delete_fast(pointer);
}
MEMDET_EXPORT void operator delete[](void* pointer, std::align_val_t) noexcept {
  delete_fast(pointer);
}
MEMDET_EXPORT void operator delete(void* pointer, std::align_val_t,
                                   const std::nothrow_t&) noexcept {
  delete_fast(pointer);
}
MEMDET_EXPORT void operator delete[](void* pointer, std::align_val_t,
                                     const std::nothrow_t&) noexcept {
  delete_fast(pointer);
}
MEMDET_EXPORT void operator delete(void* pointer, size_t, std::align_val_t) noexcept {
  delete_fast(pointer);
}
MEMDET_EXPORT void operator delete[](void* pointer, size_t, std::align_val_t) noexcept {
  delete_fast(pointer);
}
