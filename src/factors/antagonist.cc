#include "factors/antagonist.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace memdet::factors {
namespace {

// Together the copiers stream over at least this much, and over at least
// four times the largest cache, so that nearly every access goes to DRAM.
constexpr size_t kMinTotalBytes = size_t{256} << 20;
constexpr size_t kMinWorkerBytes = size_t{32} << 20;
constexpr size_t kChunkBytes = size_t{1} << 20;
// Full speed is the fastest of a few passes over the whole buffer, timed in
// the copier's own CPU time: a pass in which it was preempted would run
// slow by the wall clock, and a pass shorter than the buffer would run
// partly in the last-level cache (measured: 25 GB/s against 8 sustained).
constexpr int kCalibrationPasses = 3;
constexpr double kReadySeconds = 10.0;
constexpr double kReportSeconds = 5.0;
constexpr double kGraceSeconds = 1.0;

// glibc 2.36 declares pidfd_open and pidfd_send_signal without C linkage
// (fixed in 2.37), so they are called through syscall(2).
int open_pidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// The idtype of waitid for a pidfd (P_PIDFD in <linux/wait.h>, Linux 5.4),
// which glibc's idtype_t does not name.
constexpr int kWaitPidfd = 3;

// What a child writes to its report pipe: once when it is ready (or could
// not get ready), once when it stops. One write of fewer than PIPE_BUF
// bytes, so it arrives whole.
struct Message {
  enum Kind : int32_t { kReady = 1, kFailed = 2, kDone = 3 };
  int32_t kind = 0;
  int32_t error = 0;  // kFailed: errno
  int32_t stage = 0;  // kFailed: which step, see stage_name
  int32_t unused = 0;
  uint64_t bytes = 0;          // kDone: bytes read plus bytes written
  double seconds = 0;          // kDone: from ready to stop
  double full_per_second = 0;  // kDone: bytes the calibration moved a second
};

enum Stage : int32_t { kAffinity = 1, kMemory = 2 };

const char* stage_name(int32_t stage) {
  return stage == kAffinity ? "sched_setaffinity" : stage == kMemory ? "mmap" : "setup";
}

// Laid out before fork: the child only reads it.
struct WorkerPlan {
  int cpu;
  int report_fd;
  pid_t parent;
  size_t bytes;  // both halves of the buffer
  int duty_percent;
};

volatile sig_atomic_t g_stop_requested = 0;

void request_stop(int) { g_stop_requested = 1; }

int64_t now_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// Copies one chunk through the buffer and moves the offset on.
void copy_chunk(char* source, char* target, size_t half, size_t& offset) {
  std::memcpy(target + offset, source + offset, kChunkBytes);
  // The copy's result is never read: keep the compiler from dropping it.
  asm volatile("" : : "r"(target) : "memory");
  offset += kChunkBytes;
  if (offset + kChunkBytes > half) {
    offset = 0;
  }
}

int64_t cpu_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// Bytes a nanosecond at full speed, read plus written.
double calibrate(char* source, char* target, size_t half, size_t& offset) {
  const size_t chunks = half / kChunkBytes;
  double fastest = 0;
  for (int pass = 0; pass < kCalibrationPasses; ++pass) {
    int64_t began = cpu_ns();
    for (size_t chunk = 0; chunk < chunks; ++chunk) {
      copy_chunk(source, target, half, offset);
    }
    int64_t took = std::max<int64_t>(1, cpu_ns() - began);
    fastest = std::max(fastest,
                       2.0 * static_cast<double>(chunks * kChunkBytes) / static_cast<double>(took));
  }
  return fastest;
}

void send(int fd, const Message& message) {
  [[maybe_unused]] ssize_t ignored = ::write(fd, &message, sizeof message);
}

[[noreturn]] void fail(const WorkerPlan& plan, Stage stage) {
  Message message;
  message.kind = Message::kFailed;
  message.error = errno;
  message.stage = stage;
  send(plan.report_fd, message);
  ::_exit(1);
}

[[noreturn]] void run_worker(const WorkerPlan& plan) {
  // Gone with memdet, even when memdet is killed with no chance to stop
  // it; and if memdet died before this line, gone at once.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != plan.parent) {
    ::_exit(1);
  }
  // Named in ps and in the launcher's list of leftovers; fork kept
  // memdet's name.
  ::prctl(PR_SET_NAME, "memdet-noise");
  // Its own group: a Ctrl-C at the terminal, or a signal memdet sends to
  // the workload's group, is not meant for it.
  ::setpgid(0, 0);

  // memdet's own handlers would write to memdet's signal pipe.
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    ::sigaction(signal_number, &action, nullptr);
  }
  action.sa_handler = request_stop;
  ::sigaction(SIGTERM, &action, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // No inherited descriptor stays open here: a pipe's write end held by
  // the antagonist would keep its reader waiting for an end of file.
  unsigned report = static_cast<unsigned>(plan.report_fd);
  if (report > 3) {
    ::close_range(3, report - 1, 0);
  }
  ::close_range(report + 1, ~0U, 0);

  cpu_set_t mask;
  CPU_ZERO(&mask);
  CPU_SET(plan.cpu, &mask);
  if (::sched_setaffinity(0, sizeof mask, &mask) != 0) {
    fail(plan, kAffinity);
  }
  // Allocated and touched after pinning, so first touch puts the pages on
  // the noise CPU's node.
  void* mapped = ::mmap(nullptr, plan.bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mapped == MAP_FAILED) {
    fail(plan, kMemory);
  }
  char* source = static_cast<char*>(mapped);
  size_t half = plan.bytes / 2;
  char* target = source + half;
  std::memset(source, 0x5a, plan.bytes);
  size_t offset = 0;
  const double full_per_ns = calibrate(source, target, half, offset);

  Message ready;
  ready.kind = Message::kReady;
  send(plan.report_fd, ready);

  const int64_t started = now_ns();
  Pacer pacer(full_per_ns, plan.duty_percent, started);
  uint64_t moved = 0;
  while (g_stop_requested == 0) {
    copy_chunk(source, target, half, offset);
    moved += 2 * kChunkBytes;
    int64_t wait = pacer.wait_ns(moved, now_ns());
    if (wait > 0) {
      timespec pause{static_cast<time_t>(wait / 1'000'000'000),
                     static_cast<long>(wait % 1'000'000'000)};
      ::nanosleep(&pause, nullptr);  // SIGTERM cuts it short
    }
  }

  Message done;
  done.kind = Message::kDone;
  done.bytes = moved;
  done.seconds = static_cast<double>(now_ns() - started) / 1e9;
  done.full_per_second = full_per_ns * 1e9;
  send(plan.report_fd, done);
  ::_exit(0);
}

// The largest cache of `cpu` that sysfs lists, in bytes; 0 when unknown.
size_t largest_cache(int cpu) {
  size_t largest = 0;
  for (int index = 0; index < 8; ++index) {
    std::string path = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cache/index" +
                       std::to_string(index) + "/size";
    auto text = sys::read_small_file(path);
    if (!text) {
      break;
    }
    char* end = nullptr;
    unsigned long long size = std::strtoull(text->c_str(), &end, 10);
    if (*end == 'K') {
      size <<= 10;
    } else if (*end == 'M') {
      size <<= 20;
    }
    largest = std::max(largest, static_cast<size_t>(size));
  }
  return largest;
}

// Waits for one whole message; false at end of file, on error or after
// `seconds`.
bool receive(int fd, Message& message, double seconds) {
  const double deadline = sys::monotonic_seconds() + seconds;
  for (;;) {
    double left = deadline - sys::monotonic_seconds();
    if (left <= 0) {
      return false;
    }
    pollfd ready{fd, POLLIN, 0};
    int got = ::poll(&ready, 1, static_cast<int>(left * 1000) + 1);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return false;
    }
    ssize_t size = ::read(fd, &message, sizeof message);
    if (size < 0 && errno == EINTR) {
      continue;
    }
    return size == static_cast<ssize_t>(sizeof message);
  }
}

// True once the process behind `pidfd` has exited (or was already reaped).
bool exited_within(int pidfd, double seconds) {
  const double deadline = sys::monotonic_seconds() + seconds;
  for (;;) {
    double left = deadline - sys::monotonic_seconds();
    pollfd ready{pidfd, POLLIN, 0};
    int got = ::poll(&ready, 1, left > 0 ? static_cast<int>(left * 1000) + 1 : 0);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    return got > 0;
  }
}

void signal_worker(int pidfd, int signal_number) {
  // ESRCH: it has exited already, which is what was wanted.
  ::syscall(SYS_pidfd_send_signal, pidfd, signal_number, nullptr, 0);
}

// Kills and reaps. The launcher's sweep of adopted children may have
// reaped it first: then waitid fails with ECHILD, and there is nothing left
// to do.
void end_worker(int pidfd) {
  signal_worker(pidfd, SIGTERM);
  if (!exited_within(pidfd, kGraceSeconds)) {
    signal_worker(pidfd, SIGKILL);
    exited_within(pidfd, kReportSeconds);
  }
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(kWaitPidfd), static_cast<id_t>(pidfd), &info, WEXITED) !=
             0 &&
         errno == EINTR) {
  }
}

}  // namespace

Pacer::Pacer(double full_bytes_per_ns, int duty_percent, int64_t start_ns)
    : paced_bytes_per_ns_(duty_percent < 100 ? full_bytes_per_ns * duty_percent / 100.0 : 0),
      origin_ns_(start_ns) {}

int64_t Pacer::wait_ns(uint64_t moved, int64_t now_ns) {
  if (paced_bytes_per_ns_ <= 0) {
    return 0;
  }
  // When the bytes moved so far are due at the paced rate.
  int64_t due = origin_ns_ + static_cast<int64_t>(static_cast<double>(moved) / paced_bytes_per_ns_);
  if (now_ns - due > kMaxDebtNs) {
    origin_ns_ += now_ns - due - kMaxDebtNs;
    return 0;
  }
  int64_t wait = due - now_ns;
  return wait >= kMinSleepNs ? wait : 0;
}

Result<int> antagonist_duty_percent(const std::string& intensity) {
  if (intensity == "stream") {
    return 100;
  }
  const std::string digits = intensity.size() > 6 ? intensity.substr(6) : "";
  if (intensity.rfind("stream", 0) == 0 && !digits.empty() && digits.size() <= 3 &&
      digits.find_first_not_of("0123456789") == std::string::npos && digits[0] != '0') {
    int duty = std::atoi(digits.c_str());
    if (duty >= 1 && duty <= 100) {
      return duty;
    }
  }
  return make_error("unknown intensity '" + intensity +
                    "' (stream, or streamN for N % of the time, such as stream50)");
}

Result<Antagonist> Antagonist::start(const launch::CpuSet& cpus, const std::string& intensity) {
  auto duty = antagonist_duty_percent(intensity);
  if (!duty) {
    return duty.error();
  }
  if (cpus.empty()) {
    return make_error("the antagonist needs at least one CPU");
  }
  size_t total = std::max(kMinTotalBytes, 4 * largest_cache(*cpus.begin()));
  size_t per_worker = std::max(kMinWorkerBytes, total / cpus.size());
  per_worker -= per_worker % (2 * kChunkBytes);

  Antagonist antagonist;
  antagonist.duty_percent_ = *duty;
  for (int cpu : cpus) {
    auto pipe = sys::make_pipe();
    if (!pipe) {
      return pipe.error();
    }
    WorkerPlan plan{cpu, pipe->write.get(), ::getpid(), per_worker, *duty};
    pid_t pid = ::fork();
    if (pid < 0) {
      return make_error("fork: " + sys::errno_text(errno));
    }
    if (pid == 0) {
      run_worker(plan);
    }
    Worker worker;
    worker.cpu = cpu;
    worker.pid = pid;
    worker.pidfd.reset(open_pidfd(pid));
    worker.report = std::move(pipe->read);
    if (!worker.pidfd.valid()) {
      int error = errno;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      return make_error("pidfd_open: " + sys::errno_text(error) + " (needs Linux 5.3)");
    }
    antagonist.workers_.push_back(std::move(worker));
  }

  for (const Worker& worker : antagonist.workers_) {
    Message message;
    if (!receive(worker.report.get(), message, kReadySeconds)) {
      return make_error("antagonist on CPU " + std::to_string(worker.cpu) + " did not get ready");
    }
    if (message.kind == Message::kFailed) {
      return make_error("antagonist on CPU " + std::to_string(worker.cpu) + ": " +
                        stage_name(message.stage) + ": " + sys::errno_text(message.error));
    }
  }
  return antagonist;
}

Antagonist::Antagonist(Antagonist&& other) noexcept
    : workers_(std::exchange(other.workers_, {})), duty_percent_(other.duty_percent_) {}

Antagonist& Antagonist::operator=(Antagonist&& other) noexcept {
  if (this != &other) {
    if (running()) {
      stop();
    }
    workers_ = std::exchange(other.workers_, {});
    duty_percent_ = other.duty_percent_;
  }
  return *this;
}

Antagonist::~Antagonist() {
  if (running()) {
    stop();
  }
}

std::vector<int> Antagonist::pids() const {
  std::vector<int> pids;
  for (const Worker& worker : workers_) {
    pids.push_back(worker.pid);
  }
  return pids;
}

Result<AntagonistRate> Antagonist::stop() {
  if (!running()) {
    return make_error("the antagonist is not running");
  }
  std::vector<Worker> workers = std::exchange(workers_, {});

  // All are asked at once, so that none streams on alone while another
  // writes its report.
  for (const Worker& worker : workers) {
    signal_worker(worker.pidfd.get(), SIGTERM);
  }
  AntagonistRate rate;
  rate.duty_percent = duty_percent_;
  std::string silent;
  for (const Worker& worker : workers) {
    Message message;
    bool reported = false;
    while (receive(worker.report.get(), message, kReportSeconds)) {
      if (message.kind == Message::kDone) {
        reported = true;
        break;
      }
    }
    if (reported && message.seconds > 0) {
      rate.gbps += static_cast<double>(message.bytes) / message.seconds / 1e9;
      rate.full_gbps += message.full_per_second / 1e9;
    } else if (!reported) {
      silent += (silent.empty() ? "" : ",") + std::to_string(worker.cpu);
    }
  }
  for (const Worker& worker : workers) {
    end_worker(worker.pidfd.get());
  }

  if (!silent.empty()) {
    return make_error("the antagonist on CPU " + silent +
                      " ended without reporting (killed from outside?)");
  }
  return rate;
}

RunNoise::RunNoise(const RunFactors& run) {
  for (const FactorRecord& record : run.records) {
    std::optional<AntagonistPlan> plan = antagonist_for(record);
    if (!plan) {
      continue;
    }
    asked_ = true;
    auto started = Antagonist::start(plan->cpus, plan->intensity);
    if (started) {
      antagonist_ = std::move(*started);
    } else {
      outcome_ = Result<AntagonistRate>(started.error());
    }
  }
}

std::vector<int> RunNoise::pids() const {
  return antagonist_ ? antagonist_->pids() : std::vector<int>{};
}

void RunNoise::stop() {
  if (antagonist_ && antagonist_->running()) {
    outcome_ = antagonist_->stop();
  }
}

void RunNoise::record(RunFactors& run) const {
  if (!asked_ || !outcome_) {
    return;
  }
  for (FactorRecord& record : run.records) {
    if (antagonist_for(record)) {
      record_antagonist(*outcome_, record);
    }
  }
}

}  // namespace memdet::factors
