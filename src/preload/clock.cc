// clock=: the wall clock the workload reads is virtual (CONTRACT.md,
// "Clock"). Every public wall-clock function is interposed itself, since
// glibc's do not call one another through the PLT: clock_gettime,
// gettimeofday, time, timespec_get, ftime and libstdc++'s
// std::chrono::system_clock::now. The sleeping and waiting functions are
// interposed too: in counter mode the time a thread spends in them moves its
// virtual clock, and absolute wall-clock deadlines are converted to real
// ones, or a program that waits until "now + 0.3 s" would wait for years.
//
// The read path is a load and a compare when the clock is off; in counter
// mode it adds a thread-local add, one atomic increment for the ordinal and
// no system call.
#include "preload/clock.h"

#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "preload/caller.h"
#include "preload/shim.h"

// <sys/timeb.h> marks ftime deprecated; its layout is fixed by the ABI.
struct timeb {
  time_t time;
  unsigned short millitm;
  short timezone;
  short dstflag;
};

namespace memdet::preload {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr int64_t kNanosPerRead = 1000;  // counter mode: 1 µs per read
constexpr size_t kRecordedReads = 256;
constexpr size_t kCallerSize = 256;
constexpr int kMaxTimerFds = 65536;

// kUnknown until the first hooked call has seen start() decide; the hooks
// pass straight through in kPassive (which covers active mode without
// clock=).
enum class State : int { kUnknown, kPassive, kCounter, kShift };

enum class Function : uint8_t {
  kClockGettime,
  kGettimeofday,
  kTime,
  kTimespecGet,
  kFtime,
  kSystemClockNow,
};

const char* const kFunctionNames[] = {"clock_gettime", "gettimeofday", "time",
                                      "timespec_get",  "ftime",        "system_clock::now"};

// The definitions beneath the shim, all resolved before the state leaves
// kUnknown.
struct Next {
  int (*clock_gettime)(clockid_t, timespec*) = nullptr;
  int (*gettimeofday)(timeval*, void*) = nullptr;
  time_t (*time)(time_t*) = nullptr;
  int (*timespec_get)(timespec*, int) = nullptr;
  int (*ftime)(timeb*) = nullptr;
  int (*nanosleep)(const timespec*, timespec*) = nullptr;
  int (*clock_nanosleep)(clockid_t, int, const timespec*, timespec*) = nullptr;
  int (*usleep)(useconds_t) = nullptr;
  unsigned (*sleep)(unsigned) = nullptr;
  int (*poll)(pollfd*, nfds_t, int) = nullptr;
  int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*) = nullptr;
  int (*select)(int, fd_set*, fd_set*, fd_set*, timeval*) = nullptr;
  int (*pselect)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*) = nullptr;
  int (*epoll_wait)(int, epoll_event*, int, int) = nullptr;
  int (*cond_timedwait)(pthread_cond_t*, pthread_mutex_t*, const timespec*) = nullptr;
  int (*cond_clockwait)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*) = nullptr;
  int (*sem_timedwait)(sem_t*, const timespec*) = nullptr;
  int (*sem_clockwait)(sem_t*, clockid_t, const timespec*) = nullptr;
  int (*timerfd_create)(int, int) = nullptr;
  int (*timerfd_settime)(int, int, const itimerspec*, itimerspec*) = nullptr;
};

struct Read {
  std::atomic<bool> ready;
  Function function;
  uint64_t ordinal;
  char thread[kOrdinalSize];
  char caller[kCallerSize];
};

Next g_next;
std::atomic<State> g_state{State::kUnknown};
std::atomic<bool> g_resolved{false};

int64_t g_epoch_ns = 0;
int64_t g_window_shift_ns = 0;
int64_t g_monotonic_start_ns = 0;  // shift mode: CLOCK_MONOTONIC at start
bool g_forked = false;             // a forked child is not the image memdet launched

std::atomic<uint64_t> g_reads{0};
std::atomic<uint64_t> g_deadlines{0};
std::atomic<uint64_t> g_windowed{0};
Read g_recorded[kRecordedReads];

// Which descriptors timerfd_create made on a wall clock, by descriptor. A
// number reused for another timerfd is overwritten when that one is made;
// one reused for anything else makes timerfd_settime fail by itself.
std::atomic<bool> g_realtime_timerfd[kMaxTimerFds];

// Counter mode: how far the thread's clock has moved from the epoch. Zero
// in a fresh thread, so every thread starts at the epoch; fork copies it.
__thread int64_t t_elapsed_ns __attribute__((tls_model("initial-exec"))) = 0;

template <typename Pointer>
void find(Pointer& pointer, const char* name) {
  pointer = reinterpret_cast<Pointer>(::dlsym(RTLD_NEXT, name));
}

void resolve_next() {
  if (g_resolved.load(std::memory_order_acquire)) {
    return;
  }
  Next& next = g_next;
  find(next.clock_gettime, "clock_gettime");
  find(next.gettimeofday, "gettimeofday");
  find(next.time, "time");
  find(next.timespec_get, "timespec_get");
  find(next.ftime, "ftime");
  find(next.nanosleep, "nanosleep");
  find(next.clock_nanosleep, "clock_nanosleep");
  find(next.usleep, "usleep");
  find(next.sleep, "sleep");
  find(next.poll, "poll");
  find(next.ppoll, "ppoll");
  find(next.select, "select");
  find(next.pselect, "pselect");
  find(next.epoll_wait, "epoll_wait");
  // Plain dlsym may hand back the compatibility version of the condition
  // variable functions (the pre-2.3.2 layout), which corrupts a new one.
  next.cond_timedwait = reinterpret_cast<decltype(next.cond_timedwait)>(
      ::dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2"));
  if (next.cond_timedwait == nullptr) {
    find(next.cond_timedwait, "pthread_cond_timedwait");
  }
  find(next.cond_clockwait, "pthread_cond_clockwait");
  find(next.sem_timedwait, "sem_timedwait");
  find(next.sem_clockwait, "sem_clockwait");
  find(next.timerfd_create, "timerfd_create");
  find(next.timerfd_settime, "timerfd_settime");
  g_resolved.store(true, std::memory_order_release);
}

// The real time of `id`, never through the shim's own hooks.
int64_t real_ns(clockid_t id) {
  timespec now{};
  if (g_next.clock_gettime != nullptr) {
    g_next.clock_gettime(id, &now);
  } else {
    ::syscall(SYS_clock_gettime, id, &now);
  }
  return static_cast<int64_t>(now.tv_sec) * kNanosPerSecond + now.tv_nsec;
}

timespec split(int64_t ns) {
  int64_t seconds = ns / kNanosPerSecond;
  int64_t rest = ns % kNanosPerSecond;
  if (rest < 0) {
    seconds -= 1;
    rest += kNanosPerSecond;
  }
  return timespec{static_cast<time_t>(seconds), static_cast<long>(rest)};
}

__attribute__((noinline)) State decide() {
  if (start() == Start::kBootstrap) {
    return State::kUnknown;  // this once, the real clock
  }
  resolve_next();
  State state = State::kPassive;
  if (is_active() && g_config.clock == ClockMode::kCounter) {
    state = State::kCounter;
  } else if (is_active() && g_config.clock == ClockMode::kShift) {
    state = State::kShift;
  }
  g_state.store(state, std::memory_order_release);
  return state;
}

// The state, decided at the first call. kUnknown only while start() is
// under way; the next functions are resolved whatever it returns.
inline State state() {
  State state = g_state.load(std::memory_order_acquire);
  if (MEMDET_LIKELY(state != State::kUnknown)) {
    return state;
  }
  state = decide();
  if (state == State::kUnknown) {
    resolve_next();
  }
  return state;
}

inline bool is_wall(clockid_t id) {
  return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

// The calling thread's virtual now, not counted as a read.
int64_t virtual_now_ns(State state) {
  if (state == State::kCounter) {
    return g_epoch_ns + t_elapsed_ns;
  }
  return g_epoch_ns + real_ns(CLOCK_MONOTONIC) - g_monotonic_start_ns;
}

__attribute__((noinline)) void record(uint64_t ordinal, Function function, const void* caller) {
  Read& read = g_recorded[ordinal - 1];
  read.ordinal = ordinal;
  read.function = function;
  std::memcpy(read.thread, t_self.ordinal, kOrdinalSize);
  describe_caller(caller, read.caller, sizeof read.caller);
  read.ready.store(true, std::memory_order_release);
}

// One wall-clock read in counter or shift mode, in nanoseconds since 1970.
int64_t virtual_read(State state, Function function, const void* caller) {
  int64_t ns = 0;
  if (state == State::kCounter) {
    ns = g_epoch_ns + t_elapsed_ns;
    t_elapsed_ns += kNanosPerRead;
  } else {
    ns = virtual_now_ns(state);
  }

  uint64_t ordinal = g_reads.fetch_add(1, std::memory_order_relaxed) + 1;
  if (MEMDET_UNLIKELY(ordinal <= kRecordedReads)) {
    record(ordinal, function, caller);
  }
  if (MEMDET_UNLIKELY(ordinal >= g_config.clock_window_low &&
                      ordinal <= g_config.clock_window_high && launched_lineage(g_config.lineage) &&
                      !g_forked)) {
    ns += g_window_shift_ns;
    g_windowed.fetch_add(1, std::memory_order_relaxed);
  }
  return ns;
}

// Nanoseconds in a timespec, saturated to what an int64 holds.
int64_t saturated_ns(const timespec& value) {
  constexpr int64_t kLimit = INT64_MAX / kNanosPerSecond - 1;
  if (value.tv_sec > kLimit) {
    return INT64_MAX;
  }
  if (value.tv_sec < -kLimit) {
    return INT64_MIN;
  }
  return static_cast<int64_t>(value.tv_sec) * kNanosPerSecond + value.tv_nsec;
}

int64_t saturated_sum(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? INT64_MAX : INT64_MIN;
  }
  return sum;
}

// A virtual absolute deadline on a wall clock, as nanoseconds from the
// thread's virtual now; false when the time is not a valid timespec (the
// call then gets it as it is, and fails as it would have).
bool deadline_delta(State state, const timespec* deadline, int64_t* delta) {
  if (deadline == nullptr || deadline->tv_nsec < 0 || deadline->tv_nsec >= kNanosPerSecond) {
    return false;
  }
  *delta = saturated_sum(saturated_ns(*deadline), -virtual_now_ns(state));
  g_deadlines.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// `now` (real nanoseconds on some clock) plus `delta`, never before 0.
timespec shifted(int64_t now, int64_t delta) {
  int64_t target = saturated_sum(now, delta);
  return split(target < 0 ? 0 : target);
}

// Counter mode: the thread's clock moves by what the program asked for,
// never by what the machine took, so that pinned runs repeat: a sleep that
// ran its course moves it by the time requested; a wait or poll that timed
// out moves it to its deadline, or by its timeout; a call that returned
// early (an event, a signal) moves it not at all.
class Elapsed {
 public:
  explicit Elapsed(State state) : counting_(state == State::kCounter) {}
  Elapsed(const Elapsed&) = delete;
  Elapsed& operator=(const Elapsed&) = delete;

  ~Elapsed() {
    if (!counting_) {
      return;
    }
    t_elapsed_ns = saturated_sum(t_elapsed_ns, slept_ns_);
    if (reached_ && t_elapsed_ns < reached_ns_) {
      t_elapsed_ns = reached_ns_;
    }
  }

  // The call ran for `ns` as asked (a relative sleep or timeout).
  void slept(int64_t ns) {
    if (ns > 0) {
      slept_ns_ = ns;
    }
  }
  void slept(const timespec* duration) {
    if (duration != nullptr && duration->tv_nsec >= 0 && duration->tv_nsec < kNanosPerSecond) {
      slept(saturated_ns(*duration));
    }
  }

  // It waited until the real CLOCK_MONOTONIC deadline `deadline`: the time
  // asked for is that deadline less the real now at the call. The program
  // took its now a moment before, so the difference falls a little short;
  // it is rounded up to a multiple of 100 us, which recovers sleeps of
  // whole multiples of that (Python's time.sleep(0.05)) exactly.
  void slept_until_monotonic(const timespec* deadline, int64_t called_ns) {
    if (deadline == nullptr || deadline->tv_nsec < 0 || deadline->tv_nsec >= kNanosPerSecond) {
      return;
    }
    constexpr int64_t kGrid = 100 * 1000;
    int64_t asked = saturated_sum(saturated_ns(*deadline), -called_ns);
    if (asked > 0) {
      slept(asked + (kGrid - asked % kGrid) % kGrid);
    }
  }

  // The virtual deadline `deadline` was reached (the call timed out).
  void reached(const timespec* deadline) {
    reached_ = true;
    reached_ns_ = saturated_sum(saturated_ns(*deadline), -g_epoch_ns);
  }

 private:
  bool counting_;
  bool reached_ = false;
  int64_t slept_ns_ = 0;
  int64_t reached_ns_ = 0;
};

inline bool counting(State state) { return state == State::kCounter; }
inline bool converting(State state) { return state == State::kCounter || state == State::kShift; }

// glibc keeps a condition variable's clock in bit 1 of __wrefs
// (__PTHREAD_COND_CLOCK_MONOTONIC_MASK, nptl/pthread_cond_common.c), set
// by pthread_condattr_setclock at pthread_cond_init.
bool waits_on_realtime(const pthread_cond_t* cond) {
  unsigned wrefs = __atomic_load_n(&cond->__data.__wrefs, __ATOMIC_RELAXED);
  return (wrefs & 2) == 0;
}

}  // namespace

void start_clock() {
  resolve_next();
  g_epoch_ns = g_config.clock_epoch * kNanosPerSecond + g_config.clock_epoch_ns;
  g_window_shift_ns = (g_config.clock_window_epoch - g_config.clock_epoch) * kNanosPerSecond +
                      static_cast<int64_t>(g_config.clock_window_epoch_ns) -
                      static_cast<int64_t>(g_config.clock_epoch_ns);
  g_monotonic_start_ns = real_ns(CLOCK_MONOTONIC);
  ::pthread_atfork(nullptr, nullptr, [] {
    g_forked = true;
    g_reads.store(0, std::memory_order_relaxed);
    g_deadlines.store(0, std::memory_order_relaxed);
    g_windowed.store(0, std::memory_order_relaxed);
    for (Read& read : g_recorded) {
      read.ready.store(false, std::memory_order_relaxed);
    }
  });
  State state = g_config.clock == ClockMode::kCounter ? State::kCounter : State::kShift;
  g_state.store(state, std::memory_order_release);
}

void write_clock_report(prim::Writer& out) {
  if (g_config.clock == ClockMode::kUnset) {
    return;
  }
  out.text("clock")
      .tab()
      .text(g_config.clock == ClockMode::kCounter ? "counter" : "shift")
      .tab()
      .signed_number(g_config.clock_epoch)
      .tab()
      .number(g_config.clock_epoch_ns)
      .end();
  uint64_t reads = g_reads.load(std::memory_order_relaxed);
  out.text("clock_reads").tab().number(reads).end();
  for (const Read& read : g_recorded) {
    if (!read.ready.load(std::memory_order_acquire)) {
      continue;
    }
    out.text("clock_read")
        .tab()
        .number(read.ordinal)
        .tab()
        .text(kFunctionNames[static_cast<int>(read.function)])
        .tab()
        .text(read.thread)
        .tab()
        .text(read.caller)
        .end();
  }
  out.text("clock_deadlines").tab().number(g_deadlines.load(std::memory_order_relaxed)).end();
  out.text("clock_windowed").tab().number(g_windowed.load(std::memory_order_relaxed)).end();
}

}  // namespace memdet::preload

using memdet::preload::Elapsed;
using memdet::preload::Function;
using memdet::preload::g_next;
using memdet::preload::State;

namespace {

using memdet::preload::converting;
using memdet::preload::counting;
using memdet::preload::deadline_delta;
using memdet::preload::real_ns;
using memdet::preload::shifted;
using memdet::preload::split;
using memdet::preload::virtual_read;

// While start() is under way on this thread: the kernel's clock.
int raw_clock_gettime(clockid_t id, timespec* now) {
  return static_cast<int>(::syscall(SYS_clock_gettime, id, now));
}

// Converts a virtual wall-clock deadline into the real one on `real_clock`,
// or leaves it as it is when it is not valid. Returns the deadline to pass.
const timespec* convert(State state, const timespec* deadline, clockid_t real_clock,
                        timespec* converted) {
  int64_t delta = 0;
  if (!deadline_delta(state, deadline, &delta)) {
    return deadline;
  }
  *converted = shifted(real_ns(real_clock), delta);
  return converted;
}

}  // namespace

// Reads.

MEMDET_EXPORT int clock_gettime(clockid_t id, timespec* now) noexcept {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(state == State::kPassive)) {
    return g_next.clock_gettime(id, now);
  }
  if (state == State::kUnknown) {
    return raw_clock_gettime(id, now);
  }
  if (!memdet::preload::is_wall(id)) {
    return g_next.clock_gettime(id, now);
  }
  *now = split(virtual_read(state, Function::kClockGettime, __builtin_return_address(0)));
  return 0;
}

MEMDET_EXPORT int gettimeofday(timeval* now, void* zone) noexcept {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(state == State::kPassive)) {
    return g_next.gettimeofday(now, zone);
  }
  if (state == State::kUnknown) {
    return static_cast<int>(::syscall(SYS_gettimeofday, now, zone));
  }
  if (zone != nullptr) {
    timeval ignored;
    g_next.gettimeofday(&ignored, zone);
  }
  timespec value = split(virtual_read(state, Function::kGettimeofday, __builtin_return_address(0)));
  now->tv_sec = value.tv_sec;
  now->tv_usec = value.tv_nsec / 1000;
  return 0;
}

MEMDET_EXPORT time_t time(time_t* out) noexcept {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(state == State::kPassive)) {
    return g_next.time(out);
  }
  time_t seconds = 0;
  if (state == State::kUnknown) {
    timespec now{};
    raw_clock_gettime(CLOCK_REALTIME, &now);
    seconds = now.tv_sec;
  } else {
    seconds = split(virtual_read(state, Function::kTime, __builtin_return_address(0))).tv_sec;
  }
  if (out != nullptr) {
    *out = seconds;
  }
  return seconds;
}

MEMDET_EXPORT int timespec_get(timespec* now, int base) noexcept {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(state == State::kPassive) || (state != State::kUnknown && base != TIME_UTC)) {
    return g_next.timespec_get(now, base);
  }
  if (state == State::kUnknown) {
    if (base != TIME_UTC) {
      return 0;  // the only base glibc 2.36 knows
    }
    raw_clock_gettime(CLOCK_REALTIME, now);
    return base;
  }
  *now = split(virtual_read(state, Function::kTimespecGet, __builtin_return_address(0)));
  return base;
}

extern "C" MEMDET_EXPORT int ftime(timeb* now) noexcept {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(state == State::kPassive)) {
    return g_next.ftime(now);
  }
  timespec value{};
  if (state == State::kUnknown) {
    raw_clock_gettime(CLOCK_REALTIME, &value);
  } else {
    value = split(virtual_read(state, Function::kFtime, __builtin_return_address(0)));
  }
  // glibc's ftime reports no zone either (time/ftime.c, since 2.31).
  now->time = value.tv_sec;
  now->millitm = static_cast<unsigned short>(value.tv_nsec / 1000000);
  now->timezone = 0;
  now->dstflag = 0;
  return 0;
}

// std::chrono::system_clock::now() (libstdc++'s new ABI, GLIBCXX_3.4.19):
// the time_point is one int64 of nanoseconds, returned in a register.
// Passive, it reads the clock as libstdc++ does, through the real
// clock_gettime.
extern "C" MEMDET_EXPORT int64_t memdet_system_clock_now() noexcept
    __asm__("_ZNSt6chrono3_V212system_clock3nowEv");
extern "C" int64_t memdet_system_clock_now() noexcept {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(state == State::kPassive) || state == State::kUnknown) {
    return real_ns(CLOCK_REALTIME);
  }
  return virtual_read(state, Function::kSystemClockNow, __builtin_return_address(0));
}

// Sleeps: in counter mode the time spent moves the thread's clock.

MEMDET_EXPORT int nanosleep(const timespec* request, timespec* remaining) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.nanosleep(request, remaining);
  }
  Elapsed elapsed(state);
  int result = g_next.nanosleep(request, remaining);
  if (result == 0) {
    elapsed.slept(request);
  }
  return result;
}

MEMDET_EXPORT int clock_nanosleep(clockid_t id, int flags, const timespec* request,
                                  timespec* remaining) {
  State state = memdet::preload::state();
  bool absolute_wall = (flags & TIMER_ABSTIME) != 0 && (id == CLOCK_REALTIME || id == CLOCK_TAI);
  if (MEMDET_LIKELY(!converting(state)) || (!counting(state) && !absolute_wall)) {
    return g_next.clock_nanosleep(id, flags, request, remaining);
  }
  Elapsed elapsed(state);
  if (!absolute_wall) {
    const bool absolute = (flags & TIMER_ABSTIME) != 0;
    const int64_t called_ns = absolute ? real_ns(id) : 0;
    int result = g_next.clock_nanosleep(id, flags, request, remaining);
    if (result == 0 && !absolute) {
      elapsed.slept(request);
    } else if (result == 0) {
      elapsed.slept_until_monotonic(request, called_ns);
    }
    return result;
  }
  // The deadline on CLOCK_MONOTONIC, which no change of the real wall clock
  // moves.
  timespec converted;
  const timespec* deadline = convert(state, request, CLOCK_MONOTONIC, &converted);
  int result = g_next.clock_nanosleep(deadline == request ? id : CLOCK_MONOTONIC, flags, deadline,
                                      remaining);
  if (result == 0 && deadline != request) {
    elapsed.reached(request);
  }
  return result;
}

MEMDET_EXPORT int usleep(useconds_t micros) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.usleep(micros);
  }
  Elapsed elapsed(state);
  int result = g_next.usleep(micros);
  if (result == 0) {
    elapsed.slept(static_cast<int64_t>(micros) * 1000);
  }
  return result;
}

MEMDET_EXPORT unsigned sleep(unsigned seconds) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.sleep(seconds);
  }
  Elapsed elapsed(state);
  unsigned left = g_next.sleep(seconds);
  if (left == 0) {
    elapsed.slept(static_cast<int64_t>(seconds) * memdet::preload::kNanosPerSecond);
  }
  return left;
}

MEMDET_EXPORT int poll(pollfd* fds, nfds_t count, int timeout) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.poll(fds, count, timeout);
  }
  Elapsed elapsed(state);
  int result = g_next.poll(fds, count, timeout);
  if (result == 0 && timeout > 0) {
    elapsed.slept(static_cast<int64_t>(timeout) * 1000 * 1000);
  }
  return result;
}

MEMDET_EXPORT int ppoll(pollfd* fds, nfds_t count, const timespec* timeout, const sigset_t* mask) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.ppoll(fds, count, timeout, mask);
  }
  Elapsed elapsed(state);
  int result = g_next.ppoll(fds, count, timeout, mask);
  if (result == 0) {
    elapsed.slept(timeout);
  }
  return result;
}

MEMDET_EXPORT int select(int count, fd_set* readable, fd_set* writable, fd_set* exceptional,
                         timeval* timeout) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.select(count, readable, writable, exceptional, timeout);
  }
  Elapsed elapsed(state);
  // Linux writes the time left into *timeout: read the request first.
  int64_t asked = timeout != nullptr
                      ? static_cast<int64_t>(timeout->tv_sec) * memdet::preload::kNanosPerSecond +
                            static_cast<int64_t>(timeout->tv_usec) * 1000
                      : 0;
  int result = g_next.select(count, readable, writable, exceptional, timeout);
  if (result == 0) {
    elapsed.slept(asked);
  }
  return result;
}

MEMDET_EXPORT int pselect(int count, fd_set* readable, fd_set* writable, fd_set* exceptional,
                          const timespec* timeout, const sigset_t* mask) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.pselect(count, readable, writable, exceptional, timeout, mask);
  }
  Elapsed elapsed(state);
  int result = g_next.pselect(count, readable, writable, exceptional, timeout, mask);
  if (result == 0) {
    elapsed.slept(timeout);
  }
  return result;
}

MEMDET_EXPORT int epoll_wait(int epoll, epoll_event* events, int capacity, int timeout) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!counting(state))) {
    return g_next.epoll_wait(epoll, events, capacity, timeout);
  }
  Elapsed elapsed(state);
  int result = g_next.epoll_wait(epoll, events, capacity, timeout);
  if (result == 0 && timeout > 0) {
    elapsed.slept(static_cast<int64_t>(timeout) * 1000 * 1000);
  }
  return result;
}

// Absolute wall-clock deadlines: the real deadline as far from the real now
// as the virtual one is from the thread's virtual now. In counter mode the
// time spent waiting moves the thread's clock, and a wait that timed out
// leaves it at the deadline at least, so that a loop that reads the clock
// after it sees the deadline passed.

MEMDET_EXPORT int pthread_cond_timedwait(pthread_cond_t* cond, pthread_mutex_t* mutex,
                                         const timespec* deadline) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!converting(state)) || !memdet::preload::waits_on_realtime(cond)) {
    return g_next.cond_timedwait(cond, mutex, deadline);
  }
  Elapsed elapsed(state);
  timespec converted;
  const timespec* real = convert(state, deadline, CLOCK_REALTIME, &converted);
  int result = g_next.cond_timedwait(cond, mutex, real);
  if (result == ETIMEDOUT && real != deadline) {
    elapsed.reached(deadline);
  }
  return result;
}

MEMDET_EXPORT int pthread_cond_clockwait(pthread_cond_t* cond, pthread_mutex_t* mutex, clockid_t id,
                                         const timespec* deadline) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!converting(state)) || id != CLOCK_REALTIME) {
    return g_next.cond_clockwait(cond, mutex, id, deadline);
  }
  Elapsed elapsed(state);
  timespec converted;
  const timespec* real = convert(state, deadline, CLOCK_MONOTONIC, &converted);
  int result = g_next.cond_clockwait(cond, mutex, real == deadline ? id : CLOCK_MONOTONIC, real);
  if (result == ETIMEDOUT && real != deadline) {
    elapsed.reached(deadline);
  }
  return result;
}

MEMDET_EXPORT int sem_timedwait(sem_t* semaphore, const timespec* deadline) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!converting(state))) {
    return g_next.sem_timedwait(semaphore, deadline);
  }
  Elapsed elapsed(state);
  timespec converted;
  const timespec* real = convert(state, deadline, CLOCK_REALTIME, &converted);
  int result = g_next.sem_timedwait(semaphore, real);
  if (result != 0 && errno == ETIMEDOUT && real != deadline) {
    elapsed.reached(deadline);
  }
  return result;
}

MEMDET_EXPORT int sem_clockwait(sem_t* semaphore, clockid_t id, const timespec* deadline) {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!converting(state)) || id != CLOCK_REALTIME) {
    return g_next.sem_clockwait(semaphore, id, deadline);
  }
  Elapsed elapsed(state);
  timespec converted;
  const timespec* real = convert(state, deadline, CLOCK_MONOTONIC, &converted);
  int result = g_next.sem_clockwait(semaphore, real == deadline ? id : CLOCK_MONOTONIC, real);
  if (result != 0 && errno == ETIMEDOUT && real != deadline) {
    elapsed.reached(deadline);
  }
  return result;
}

MEMDET_EXPORT int timerfd_create(int id, int flags) noexcept {
  State state = memdet::preload::state();
  int fd = g_next.timerfd_create(id, flags);
  if (converting(state) && fd >= 0 && fd < memdet::preload::kMaxTimerFds) {
    bool wall = id == CLOCK_REALTIME || id == CLOCK_REALTIME_ALARM;
    memdet::preload::g_realtime_timerfd[fd].store(wall, std::memory_order_relaxed);
  }
  return fd;
}

MEMDET_EXPORT int timerfd_settime(int fd, int flags, const itimerspec* value,
                                  itimerspec* old) noexcept {
  State state = memdet::preload::state();
  if (MEMDET_LIKELY(!converting(state)) || (flags & TFD_TIMER_ABSTIME) == 0 || value == nullptr ||
      fd < 0 || fd >= memdet::preload::kMaxTimerFds ||
      !memdet::preload::g_realtime_timerfd[fd].load(std::memory_order_relaxed) ||
      (value->it_value.tv_sec == 0 && value->it_value.tv_nsec == 0)) {
    return g_next.timerfd_settime(fd, flags, value, old);  // a zero it_value disarms
  }
  itimerspec converted = *value;
  convert(state, &value->it_value, CLOCK_REALTIME, &converted.it_value);
  return g_next.timerfd_settime(fd, flags, &converted, old);
}
