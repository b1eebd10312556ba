// Reads the wall clock through each public function and waits on wall-clock
// deadlines, for tests/preload/clock.sh.
//   probe_clock read FUNCTION N   N reads, one per line, in nanoseconds since 1970
//   probe_clock pace              two clock_gettime reads 0.2 s of nanosleep apart
//   probe_clock monotonic         CLOCK_MONOTONIC through libc against the kernel's
//   probe_clock threads N         the first read of N threads, one per line
//   probe_clock fork              reads before and after fork, in parent and child
//   probe_clock bench N           the mean cost of N clock_gettime(CLOCK_REALTIME) reads
//   probe_clock WAIT              waits until the wall clock's now + 0.3 s, prints
//                                 the real seconds it took; WAIT is one of
//                                 sleep_until, cond, clockwait, cv, sem, sem_clock,
//                                 nanosleep_abs, timerfd, or cond_monotonic (a
//                                 condition variable on CLOCK_MONOTONIC, whose
//                                 deadline is not a wall-clock one)
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <sys/timeb.h>

namespace {

constexpr int64_t kNanos = 1000000000;

int64_t nanos(const timespec& value) { return int64_t{value.tv_sec} * kNanos + value.tv_nsec; }

int64_t read_clock(clockid_t id) {
  timespec now{};
  clock_gettime(id, &now);
  return nanos(now);
}

// One read through `function`, or -1 for an unknown name.
int64_t read_with(const char* function) {
  if (std::strcmp(function, "clock_gettime") == 0) {
    return read_clock(CLOCK_REALTIME);
  }
  if (std::strcmp(function, "clock_gettime_coarse") == 0) {
    return read_clock(CLOCK_REALTIME_COARSE);
  }
  if (std::strcmp(function, "clock_gettime_tai") == 0) {
    return read_clock(CLOCK_TAI);
  }
  if (std::strcmp(function, "gettimeofday") == 0) {
    timeval now{};
    gettimeofday(&now, nullptr);
    return int64_t{now.tv_sec} * kNanos + int64_t{now.tv_usec} * 1000;
  }
  if (std::strcmp(function, "time") == 0) {
    return int64_t{time(nullptr)} * kNanos;
  }
  if (std::strcmp(function, "timespec_get") == 0) {
    timespec now{};
    timespec_get(&now, TIME_UTC);
    return nanos(now);
  }
  if (std::strcmp(function, "ftime") == 0) {
    timeb now{};
    ftime(&now);
    return int64_t{now.time} * kNanos + int64_t{now.millitm} * 1000000;
  }
  if (std::strcmp(function, "system_clock") == 0) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  return -1;
}

timespec wall_deadline(int64_t ahead) {
  int64_t target = read_clock(CLOCK_REALTIME) + ahead;
  return timespec{static_cast<time_t>(target / kNanos), static_cast<long>(target % kNanos)};
}

// Waits until 0.3 s past the wall clock's now with `how`; false for an
// unknown name.
bool wait_with(const char* how) {
  constexpr int64_t kAhead = 300000000;
  if (std::strcmp(how, "sleep_until") == 0) {
    std::this_thread::sleep_until(std::chrono::system_clock::now() +
                                  std::chrono::milliseconds(300));
    return true;
  }
  if (std::strcmp(how, "cv") == 0) {
    std::mutex mutex;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lock(mutex);
    auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(300);
    while (cv.wait_until(lock, deadline) != std::cv_status::timeout) {
    }
    return true;
  }
  if (std::strcmp(how, "cond") == 0 || std::strcmp(how, "clockwait") == 0) {
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    pthread_mutex_lock(&mutex);
    timespec deadline = wall_deadline(kAhead);
    int result = 0;
    do {
      result = how[1] == 'o' ? pthread_cond_timedwait(&cond, &mutex, &deadline)
                             : pthread_cond_clockwait(&cond, &mutex, CLOCK_REALTIME, &deadline);
    } while (result == 0);
    pthread_mutex_unlock(&mutex);
    return true;
  }
  if (std::strcmp(how, "cond_monotonic") == 0) {
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_t cond;
    pthread_cond_init(&cond, &attributes);
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mutex);
    int64_t target = read_clock(CLOCK_MONOTONIC) + kAhead;
    timespec deadline{static_cast<time_t>(target / kNanos), static_cast<long>(target % kNanos)};
    while (pthread_cond_timedwait(&cond, &mutex, &deadline) == 0) {
    }
    pthread_mutex_unlock(&mutex);
    pthread_cond_destroy(&cond);
    return true;
  }
  if (std::strcmp(how, "sem") == 0 || std::strcmp(how, "sem_clock") == 0) {
    sem_t semaphore;
    sem_init(&semaphore, 0, 0);
    timespec deadline = wall_deadline(kAhead);
    if (how[3] == '\0') {
      while (sem_timedwait(&semaphore, &deadline) == 0 || errno == EINTR) {
      }
    } else {
      while (sem_clockwait(&semaphore, CLOCK_REALTIME, &deadline) == 0 || errno == EINTR) {
      }
    }
    return true;
  }
  if (std::strcmp(how, "nanosleep_abs") == 0) {
    timespec deadline = wall_deadline(kAhead);
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &deadline, nullptr) == EINTR) {
    }
    return true;
  }
  if (std::strcmp(how, "timerfd") == 0) {
    int fd = timerfd_create(CLOCK_REALTIME, 0);
    itimerspec value{};
    value.it_value = wall_deadline(kAhead);
    if (fd < 0 || timerfd_settime(fd, TFD_TIMER_ABSTIME, &value, nullptr) != 0) {
      std::perror("timerfd");
      std::exit(1);
    }
    uint64_t expirations = 0;
    if (read(fd, &expirations, sizeof expirations) != sizeof expirations) {
      std::perror("timerfd read");
      std::exit(1);
    }
    close(fd);
    return true;
  }
  return false;
}

void* first_read(void* out) {
  *static_cast<int64_t*>(out) = read_clock(CLOCK_REALTIME);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: probe_clock read FUNCTION N | pace | monotonic | threads N | "
                 "fork | bench N | WAIT\n");
    return 2;
  }
  const char* command = argv[1];

  if (std::strcmp(command, "read") == 0 && argc == 4) {
    int count = std::atoi(argv[3]);
    std::vector<int64_t> values;
    for (int i = 0; i < count; ++i) {
      values.push_back(read_with(argv[2]));
    }
    if (values.empty() || values[0] < 0) {
      std::fprintf(stderr, "unknown function %s\n", argv[2]);
      return 2;
    }
    for (int64_t value : values) {
      std::printf("%lld\n", static_cast<long long>(value));
    }
    return 0;
  }

  if (std::strcmp(command, "pace") == 0) {
    int64_t before = read_clock(CLOCK_REALTIME);
    timespec pause{0, 200000000};
    nanosleep(&pause, nullptr);
    int64_t after = read_clock(CLOCK_REALTIME);
    std::printf("before %lld\nafter %lld\nmoved_ms %lld\n", static_cast<long long>(before),
                static_cast<long long>(after), static_cast<long long>((after - before) / 1000000));
    return 0;
  }

  if (std::strcmp(command, "monotonic") == 0) {
    int64_t through_libc = read_clock(CLOCK_MONOTONIC);
    timespec kernel{};
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &kernel);
    int64_t cpu = read_clock(CLOCK_PROCESS_CPUTIME_ID);
    std::printf("monotonic_gap_us %lld\ncpu_ns_positive %d\n",
                static_cast<long long>((nanos(kernel) - through_libc) / 1000), cpu > 0 ? 1 : 0);
    return 0;
  }

  if (std::strcmp(command, "threads") == 0 && argc == 3) {
    int count = std::atoi(argv[2]);
    for (int i = 0; i < 5; ++i) {
      read_clock(CLOCK_REALTIME);  // the main thread's clock moves on
    }
    std::vector<int64_t> values(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
      pthread_t thread;
      pthread_create(&thread, nullptr, first_read, &values[static_cast<size_t>(i)]);
      pthread_join(thread, nullptr);
    }
    for (int64_t value : values) {
      std::printf("%lld\n", static_cast<long long>(value));
    }
    return 0;
  }

  if (std::strcmp(command, "bench") == 0 && argc == 3) {
    long count = std::atol(argv[2]);
    int64_t sum = 0;
    int64_t start = read_clock(CLOCK_MONOTONIC);
    for (long i = 0; i < count; ++i) {
      sum += read_clock(CLOCK_REALTIME) & 1;
    }
    int64_t spent = read_clock(CLOCK_MONOTONIC) - start;
    std::printf("ns_per_read %.1f (%lld)\n",
                static_cast<double>(spent) / static_cast<double>(count),
                static_cast<long long>(sum));
    return 0;
  }

  if (std::strcmp(command, "fork") == 0) {
    int64_t before = read_clock(CLOCK_REALTIME);
    std::fflush(stdout);
    pid_t child = fork();
    int64_t after = read_clock(CLOCK_REALTIME);
    std::printf("%s before %lld after %lld\n", child == 0 ? "child" : "parent",
                static_cast<long long>(before), static_cast<long long>(after));
    if (child == 0) {
      std::fflush(stdout);
      _exit(0);
    }
    waitpid(child, nullptr, 0);
    return 0;
  }

  int64_t start = read_clock(CLOCK_MONOTONIC);
  if (!wait_with(command)) {
    std::fprintf(stderr, "unknown command %s\n", command);
    return 2;
  }
  std::printf("elapsed %.3f\n", static_cast<double>(read_clock(CLOCK_MONOTONIC) - start) / 1e9);
  return 0;
}

#pragma GCC diagnostic pop
