// The first hooked call: find the functions beneath the shim, read
// MEMDET_PRELOAD, and switch to passive or active.
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "preload/clock.h"
#include "preload/counters.h"
#include "preload/entropy.h"
#include "preload/fileorder.h"
#include "preload/fingerprint.h"
#include "preload/heap.h"
#include "preload/prim.h"
#include "preload/shim.h"
#include "preload/threads.h"

extern char** environ;

namespace memdet::preload {

using prim::die;
using prim::starts_with;
using prim::warn;

Lower g_lower;
Config g_config;
std::atomic<Mode> g_mode{Mode::kUnset};
std::atomic<Mode> g_alloc_mode{Mode::kUnset};
Counters g_counters;
__thread ThreadSelf t_self __attribute__((tls_model("initial-exec"))) = {
    0, nullptr, 0, kMainOrdinalHash, nullptr, -1, 0, false, false, "0", nullptr};

alignas(64) char g_bootstrap[kBootstrapSize];

namespace {

std::atomic<size_t> g_bootstrap_used{0};
char g_variable[kMaxValue + 1];

// Every bootstrap block starts with its size, 16 bytes before the pointer.
constexpr size_t kBootstrapHeader = 16;

template <typename Function>
Function find_next(const char* name) {
  return reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name));
}

void* base_of(const void* function) {
  Dl_info info;
  if (function == nullptr || ::dladdr(function, &info) == 0) {
    return nullptr;
  }
  return info.dli_fbase;
}

void resolve_lower() {
  Lower& lower = g_lower;
  lower.malloc = find_next<decltype(lower.malloc)>("malloc");
  lower.free = find_next<decltype(lower.free)>("free");
  lower.calloc = find_next<decltype(lower.calloc)>("calloc");
  lower.realloc = find_next<decltype(lower.realloc)>("realloc");
  lower.posix_memalign = find_next<decltype(lower.posix_memalign)>("posix_memalign");
  lower.pthread_create = find_next<decltype(lower.pthread_create)>("pthread_create");
  lower.malloc_usable_size = find_next<decltype(lower.malloc_usable_size)>("malloc_usable_size");
  if (lower.malloc == nullptr || lower.free == nullptr || lower.calloc == nullptr ||
      lower.realloc == nullptr || lower.posix_memalign == nullptr ||
      lower.pthread_create == nullptr) {
    die("a required function (malloc, free, calloc, realloc, posix_memalign, pthread_create) "
        "is missing beneath the shim");
  }

  // One library must provide the whole allocator; a function it lacks
  // would otherwise come from libc's allocator further down.
  void* base = base_of(reinterpret_cast<void*>(lower.malloc));
  const void* functions[] = {
      reinterpret_cast<void*>(lower.free), reinterpret_cast<void*>(lower.calloc),
      reinterpret_cast<void*>(lower.realloc), reinterpret_cast<void*>(lower.posix_memalign),
      reinterpret_cast<void*>(lower.malloc_usable_size)};
  lower.consistent = base != nullptr;
  for (const void* function : functions) {
    if (function != nullptr && base_of(function) != base) {
      lower.consistent = false;
    }
  }
  Dl_info info;
  if (::dladdr(reinterpret_cast<void*>(lower.malloc), &info) != 0) {
    lower.library = info.dli_fname;
  }

  auto mallctl = find_next<decltype(lower.mallctl)>("mallctl");
  if (mallctl != nullptr && base_of(reinterpret_cast<void*>(mallctl)) == base) {
    lower.mallctl = mallctl;
  }
}

// MEMDET_PRELOAD from environ, or, when a call comes before libc has set
// environ, from the environment the kernel gave the process.
const char* read_variable() {
  static const char kName[] = "MEMDET_PRELOAD=";
  if (environ != nullptr) {
    for (char** entry = environ; *entry != nullptr; ++entry) {
      if (starts_with(*entry, kName)) {
        return *entry + sizeof kName - 1;
      }
    }
    return nullptr;
  }

  // /proc/self/environ: NUL-separated; scan it through a small buffer.
  int fd = ::open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return nullptr;
  }
  char chunk[4096];
  size_t matched = 0;    // bytes of kName matched at the start of an entry
  bool at_entry = true;  // the next byte starts an entry
  bool copying = false;
  size_t copied = 0;
  const char* found = nullptr;
  for (ssize_t got; (got = ::read(fd, chunk, sizeof chunk)) > 0 && found == nullptr;) {
    for (ssize_t i = 0; i < got && found == nullptr; ++i) {
      char c = chunk[i];
      if (copying) {
        if (c == '\0' || copied == kMaxValue) {
          g_variable[copied] = '\0';
          found = g_variable;
        } else {
          g_variable[copied++] = c;
        }
      } else if (c == '\0') {
        at_entry = true;
        matched = 0;
      } else if (at_entry && c == kName[matched]) {
        if (++matched == sizeof kName - 1) {
          copying = true;
        }
      } else {
        at_entry = false;
      }
    }
  }
  if (copying && found == nullptr) {
    g_variable[copied] = '\0';
    found = g_variable;
  }
  ::close(fd);
  return found;
}

bool read_config() {
  const char* text = read_variable();
  if (text != nullptr && std::strlen(text) > kMaxValue) {
    warn("memdet preload: MEMDET_PRELOAD is too long; staying passive");
    return false;
  }
  char error[256];
  switch (parse_config(text, g_config, error, sizeof error)) {
    case ParseOutcome::kPassive:
      return false;
    case ParseOutcome::kError:
      // The half-parsed fields stay in g_config, unread: passive mode never
      // looks at it.
      warn(error);
      return false;
    case ParseOutcome::kActive:
      return true;
  }
  return false;
}

}  // namespace

Start start() {
  Mode mode = g_mode.load(std::memory_order_acquire);
  if (MEMDET_LIKELY(mode == Mode::kPassive || mode == Mode::kActive)) {
    return Start::kReady;
  }
  if (t_self.starting) {
    return Start::kBootstrap;
  }
  Mode expected = Mode::kUnset;
  if (!g_mode.compare_exchange_strong(expected, Mode::kStarting, std::memory_order_acq_rel)) {
    return expected == Mode::kStarting ? Start::kBootstrap : Start::kReady;
  }

  int saved_errno = errno;
  t_self.starting = true;
  resolve_lower();
  bool active = read_config();
  if (active) {
    start_heap();
    start_threads();
    if (g_config.fingerprints()) {
      start_fingerprint();
    }
    if (g_config.entropy) {
      start_entropy();
    }
    if (g_config.clock != ClockMode::kUnset) {
      start_clock();
    }
    if (g_config.fileorder != FileOrder::kUnset) {
      start_fileorder();
    }
  }
  t_self.starting = false;
  errno = saved_errno;
  g_alloc_mode.store(active && g_config.shapes_allocation() ? Mode::kActive : Mode::kPassive,
                     std::memory_order_release);
  g_mode.store(active ? Mode::kActive : Mode::kPassive, std::memory_order_release);
  return Start::kReady;
}

void* bootstrap_allocate(size_t size, size_t alignment) {
  if (alignment < kBootstrapHeader) {
    alignment = kBootstrapHeader;
  }
  if (size > kBootstrapSize) {
    die("bootstrap buffer exhausted while the lower allocator was being resolved");
  }
  size_t need = (size + kBootstrapHeader + alignment + 15) & ~static_cast<size_t>(15);
  size_t offset = g_bootstrap_used.fetch_add(need, std::memory_order_relaxed);
  if (offset + need > kBootstrapSize) {
    die("bootstrap buffer exhausted while the lower allocator was being resolved");
  }
  uintptr_t start = reinterpret_cast<uintptr_t>(g_bootstrap + offset) + kBootstrapHeader;
  uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  auto* pointer = reinterpret_cast<char*>(aligned);
  std::memcpy(pointer - sizeof size, &size, sizeof size);
  return pointer;
}

size_t bootstrap_size(const void* pointer) {
  size_t size = 0;
  std::memcpy(&size, static_cast<const char*>(pointer) - sizeof size, sizeof size);
  return size;
}

void reset_counters() {
  reset_slots_after_fork();
  g_counters.huge_aligned.store(0, std::memory_order_relaxed);
  g_counters.madvise_suppressed.store(0, std::memory_order_relaxed);
  g_counters.threads_created.store(0, std::memory_order_relaxed);
}

}  // namespace memdet::preload
