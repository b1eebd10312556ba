#include "launch/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>

#include "core/sys.h"

namespace memdet::launch {
namespace {

using sys::ScopedFd;

// What the child reports on its pipe before exec.
enum class Stage : int32_t {
  kReady = 0,
  kSetup = 1,
  kAslr = 2,
  kCpus = 3,
  kChdir = 4,
  kExec = 5,
  kThp = 6,
  kMemPolicy = 7,
  kTraceRefused = 8,  // not fatal: the exec stop is skipped
};

struct Report {
  Stage stage;
  int32_t error;
};

// The parent turns signals into bytes on this pipe and handles them in its
// poll loop, so nothing but write(2) runs in signal context.
int g_signal_pipe = -1;

void on_signal(int signal_number) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(signal_number);
  [[maybe_unused]] ssize_t ignored = ::write(g_signal_pipe, &byte, 1);
  errno = saved;
}

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP};

class SignalRouting {
 public:
  explicit SignalRouting(int pipe_write) {
    g_signal_pipe = pipe_write;
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int signal_number : kForwarded) {
      ::sigaction(signal_number, &action, &saved_[signal_number]);
    }
    // No SA_NOCLDSTOP: a workload stopped by SIGTTIN must wake the loop too.
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGCHLD, &action, &saved_[SIGCHLD]);
  }
  SignalRouting(const SignalRouting&) = delete;
  SignalRouting& operator=(const SignalRouting&) = delete;
  ~SignalRouting() {
    for (auto& [signal_number, action] : saved_) {
      ::sigaction(signal_number, &action, nullptr);
    }
    g_signal_pipe = -1;
  }

 private:
  std::map<int, struct sigaction> saved_;
};

// Everything the child needs, laid out before fork: after fork the child
// only makes system calls, because another thread of memdet may have held
// the allocator's lock at the moment of the fork.
struct ChildPlan {
  const char* executable;
  std::vector<char*> argv;
  std::vector<char*> envp;
  const char* working_dir;
  bool aslr_off;
  bool set_cpus;
  cpu_set_t cpus;
  bool thp_disable;
  int mem_policy;  // MPOL_* for set_mempolicy; -1: leave it
  unsigned long mem_nodes[16];
  bool stop_at_exec;
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  int report_fd;
  int go_fd;
  pid_t parent;
};

[[noreturn]] void child_fail(int report_fd, Stage stage, int error, int status) {
  Report report{stage, error};
  [[maybe_unused]] ssize_t ignored = ::write(report_fd, &report, sizeof report);
  ::_exit(status);
}

[[noreturn]] void run_child(const ChildPlan& plan) {
  ::setpgid(0, 0);

  // If memdet itself is killed (SIGKILL leaves it no chance to clean up),
  // the workload goes with it instead of running on unobserved. The parent
  // may have died before this line: then go at once.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != plan.parent) {
    ::_exit(125);
  }

  // The workload starts with default dispositions and nothing blocked,
  // whatever memdet itself had.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int signal_number = 1; signal_number < NSIG; ++signal_number) {
    ::sigaction(signal_number, &default_action, nullptr);
  }
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  auto redirect = [&](int from, int to) {
    if (from >= 0 && from != to && ::dup2(from, to) < 0) {
      child_fail(plan.report_fd, Stage::kSetup, errno, 125);
    }
  };
  redirect(plan.stdin_fd, STDIN_FILENO);
  redirect(plan.stdout_fd, STDOUT_FILENO);
  redirect(plan.stderr_fd, STDERR_FILENO);

  if (plan.working_dir != nullptr && ::chdir(plan.working_dir) != 0) {
    child_fail(plan.report_fd, Stage::kChdir, errno, 125);
  }

  if (plan.aslr_off) {
    long current = ::syscall(SYS_personality, 0xffffffffUL);
    if (current < 0 ||
        ::syscall(SYS_personality, static_cast<unsigned long>(current) | ADDR_NO_RANDOMIZE) < 0) {
      child_fail(plan.report_fd, Stage::kAslr, errno, 125);
    }
  }

  if (plan.set_cpus && ::sched_setaffinity(0, sizeof plan.cpus, &plan.cpus) != 0) {
    child_fail(plan.report_fd, Stage::kCpus, errno, 125);
  }

  if (plan.thp_disable && ::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
    child_fail(plan.report_fd, Stage::kThp, errno, 125);
  }

  if (plan.mem_policy >= 0 && ::syscall(SYS_set_mempolicy, plan.mem_policy, plan.mem_nodes,
                                        sizeof plan.mem_nodes * 8 + 1) != 0) {
    child_fail(plan.report_fd, Stage::kMemPolicy, errno, 125);
  }

  // Ready: the parent now reads /proc, then lets the child go on to exec.
  Report ready{Stage::kReady, 0};
  if (::write(plan.report_fd, &ready, sizeof ready) != sizeof ready) {
    ::_exit(125);
  }
  char go = 0;
  ssize_t got = 0;
  do {
    got = ::read(plan.go_fd, &go, 1);
  } while (got < 0 && errno == EINTR);
  if (got != 1) {
    ::_exit(125);
  }

  // The kernel stops a traced child right after a successful execve: the
  // parent reads the new program's /proc there and detaches.
  if (plan.stop_at_exec && ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) {
    Report refused{Stage::kTraceRefused, errno};
    [[maybe_unused]] ssize_t ignored = ::write(plan.report_fd, &refused, sizeof refused);
  }

  ::execve(plan.executable, plan.argv.data(), plan.envp.data());
  int error = errno;
  child_fail(plan.report_fd, Stage::kExec, error, error == ENOENT ? 127 : 126);
}

// Reads one report; false on EOF (the pipe closed at exec or at exit).
bool read_report(int fd, Report& report) {
  size_t have = 0;
  char* bytes = reinterpret_cast<char*>(&report);
  while (have < sizeof report) {
    ssize_t got = ::read(fd, bytes + have, sizeof report - have);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return false;
    }
    have += static_cast<size_t>(got);
  }
  return true;
}

std::string stage_text(Stage stage) {
  switch (stage) {
    case Stage::kSetup:
      return "redirecting the workload's standard streams failed";
    case Stage::kAslr:
      return "the kernel refused personality(ADDR_NO_RANDOMIZE) (a seccomp filter or a "
             "container may forbid it)";
    case Stage::kCpus:
      return "sched_setaffinity refused the CPU list";
    case Stage::kChdir:
      return "cannot enter the working directory";
    case Stage::kExec:
      return "cannot execute";
    case Stage::kThp:
      return "prctl(PR_SET_THP_DISABLE) was refused";
    case Stage::kMemPolicy:
      return "set_mempolicy refused the NUMA policy";
    case Stage::kTraceRefused:
    case Stage::kReady:
      break;
  }
  return "child setup failed";
}

// A process of ours found in /proc: in the workload's group or adopted by us.
struct Remnant {
  int pid;
  char state;
  std::string command;
};

std::vector<Remnant> find_remnants(int group, const std::vector<int>& spare) {
  std::vector<Remnant> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return found;
  }
  const int self = ::getpid();
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self ||
        std::find(spare.begin(), spare.end(), static_cast<int>(pid)) != spare.end()) {
      continue;
    }
    auto stat = sys::read_small_file("/proc/" + std::string(entry->d_name) + "/stat");
    if (!stat) {
      continue;
    }
    // The command name sits in parentheses and may itself hold ") ", so the
    // fields start after the last parenthesis.
    size_t open = stat->find('(');
    size_t close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= stat->size()) {
      continue;
    }
    char state = (*stat)[close + 2];
    int ppid = 0;
    int pgrp = 0;
    if (std::sscanf(stat->c_str() + close + 3, "%d %d", &ppid, &pgrp) != 2) {
      continue;
    }
    if (ppid == self || pgrp == group) {
      found.push_back({static_cast<int>(pid), state, stat->substr(open + 1, close - open - 1)});
    }
  }
  ::closedir(proc);
  return found;
}

// True when the workload's group is empty and memdet has no child left:
// then nothing can remain, and the scan of all of /proc is skipped. An
// orphan is reparented before its parent becomes a zombie, so a live
// descendant is always either in the group or among our children.
bool nothing_left(int group, const std::vector<int>& spare) {
  if (::kill(-group, 0) == 0 || errno != ESRCH) {
    return false;
  }
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) {
    return false;
  }
  bool none = true;
  while (dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    auto children =
        sys::read_small_file("/proc/self/task/" + std::string(entry->d_name) + "/children");
    if (!children) {
      none = false;
      break;
    }
    char* cursor = children->data();
    for (;;) {
      char* end = nullptr;
      long pid = std::strtol(cursor, &end, 10);
      if (end == cursor) {
        break;
      }
      if (std::find(spare.begin(), spare.end(), static_cast<int>(pid)) == spare.end()) {
        none = false;
      }
      cursor = end;
    }
    if (!none) {
      break;
    }
  }
  ::closedir(tasks);
  return none;
}

void reap_adopted() {
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

// After the leader is gone: SIGTERM what is left of its group and of the
// processes we adopted as subreaper, SIGKILL what outlives a grace period,
// and reap it all. A leftover that holds an output pipe would otherwise
// keep memdet waiting forever.
std::vector<LeftBehind> clean_up_descendants(int group, bool kill_at_once,
                                             const std::vector<int>& spare) {
  reap_adopted();
  if (nothing_left(group, spare)) {
    return {};
  }

  std::map<int, std::string> seen;
  const double grace_seconds = kill_at_once ? 0.0 : 1.0;
  const double kill_at = sys::monotonic_seconds() + grace_seconds;
  const double give_up_at = kill_at + 5.0;
  bool killing = kill_at_once;

  // Note what is there before signalling: a process that dies of the first
  // signal was still left behind.
  for (const Remnant& remnant : find_remnants(group, spare)) {
    if (remnant.state != 'Z') {
      seen.emplace(remnant.pid, remnant.command);
    }
  }
  ::kill(-group, killing ? SIGKILL : SIGTERM);
  for (const auto& [pid, command] : seen) {
    ::kill(pid, killing ? SIGKILL : SIGTERM);
  }
  for (;;) {
    reap_adopted();
    std::vector<Remnant> remnants = find_remnants(group, spare);
    bool any_alive = false;
    for (const Remnant& remnant : remnants) {
      if (remnant.state == 'Z') {
        continue;
      }
      any_alive = true;
      if (seen.emplace(remnant.pid, remnant.command).second || killing) {
        ::kill(remnant.pid, killing ? SIGKILL : SIGTERM);
      }
    }
    if (!any_alive) {
      break;
    }
    double now = sys::monotonic_seconds();
    if (!killing && now >= kill_at) {
      killing = true;
      ::kill(-group, SIGKILL);
      continue;
    }
    if (now >= give_up_at) {
      break;
    }
    ::usleep(10 * 1000);
  }
  reap_adopted();

  std::vector<LeftBehind> left;
  for (const auto& [pid, command] : seen) {
    left.push_back({pid, command});
  }
  return left;
}

struct StreamPlumbing {
  ScopedFd child_end;  // what the child dup2s onto its stream
  ScopedFd file;       // kTee: the capture file
  ScopedFd pipe_read;  // kTee: what the parent pumps
  int echo_fd = -1;

  // When poll saw the pipe ready: copies what arrived to the capture file
  // and to memdet's own stream, and closes the pipe at EOF.
  void pump(short revents) {
    if (revents == 0) {
      return;
    }
    char buffer[65536];
    ssize_t got = ::read(pipe_read.get(), buffer, sizeof buffer);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
      return;
    }
    if (got <= 0) {
      pipe_read.reset();
      return;
    }
    sys::write_all(file.get(), buffer, static_cast<size_t>(got));
    sys::write_all(echo_fd, buffer, static_cast<size_t>(got));
  }
};

Result<StreamPlumbing> plumb(const OutputSpec& spec, int echo_fd) {
  StreamPlumbing plumbing;
  plumbing.echo_fd = echo_fd;
  if (spec.mode == OutputSpec::Mode::kInherit) {
    return plumbing;
  }
  ScopedFd file(::open(spec.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!file.valid()) {
    return make_error(spec.path + ": " + sys::errno_text(errno));
  }
  if (spec.mode == OutputSpec::Mode::kFile) {
    plumbing.child_end = std::move(file);
    return plumbing;
  }
  auto pipe = sys::make_pipe();
  if (!pipe) {
    return pipe.error();
  }
  plumbing.file = std::move(file);
  plumbing.pipe_read = std::move(pipe->read);
  plumbing.child_end = std::move(pipe->write);
  ::fcntl(plumbing.pipe_read.get(), F_SETFL, O_NONBLOCK);
  return plumbing;
}

double timeval_seconds(const timeval& value) {
  return static_cast<double>(value.tv_sec) + static_cast<double>(value.tv_usec) * 1e-6;
}

class TerminalHandover {
 public:
  TerminalHandover() = default;
  TerminalHandover(const TerminalHandover&) = delete;
  TerminalHandover& operator=(const TerminalHandover&) = delete;

  void give_to(int group) {
    if (!::isatty(STDIN_FILENO) || ::tcgetpgrp(STDIN_FILENO) != ::getpgrp()) {
      return;
    }
    // tcsetpgrp from what becomes a background group raises SIGTTOU.
    ::signal(SIGTTOU, SIG_IGN);
    if (::tcsetpgrp(STDIN_FILENO, group) == 0) {
      handed_ = true;
    }
  }
  ~TerminalHandover() {
    if (handed_) {
      ::tcsetpgrp(STDIN_FILENO, ::getpgrp());
      ::signal(SIGTTOU, SIG_DFL);
    }
  }

 private:
  bool handed_ = false;
};

// The child is traced and has called execve: wait for the trap the kernel
// raises after a successful exec, read /proc while the new program has run
// nothing, and let it go. Any other stop or an exit is left for the main
// loop (WNOWAIT), with the signal that stopped it passed on.
void stop_at_exec(pid_t pid, LaunchResult& result) {
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WSTOPPED | WNOWAIT) != 0) {
      if (errno == EINTR) {
        continue;
      }
      result.exec_stop_note = "waiting for the exec stop: " + sys::errno_text(errno);
      return;
    }
    if (info.si_code != CLD_TRAPPED) {
      result.exec_stop_note = "the workload ended before its exec stop";
      return;
    }
    int status = 0;
    ::waitpid(pid, &status, __WALL);
    if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP) {
      result.at_start = snapshot_process(pid, true);
      ::ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
      return;
    }
    // A signal arrived before the exec trap: deliver it and keep waiting.
    int pending = WIFSTOPPED(status) ? WSTOPSIG(status) : 0;
    ::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(pending)));
  }
}

}  // namespace

size_t exec_footprint(const std::string& executable, const std::vector<std::string>& argv,
                      const std::vector<std::string>& env) {
  size_t bytes = executable.size() + 1;
  for (const std::string& arg : argv) {
    bytes += arg.size() + 1;
  }
  for (const std::string& entry : env) {
    bytes += entry.size() + 1;
  }
  return bytes;
}

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kExited:
      return "exited";
    case Outcome::kSignaled:
      return "killed by signal";
    case Outcome::kTimedOut:
      return "timed out";
    case Outcome::kStopped:
      return "stopped";
    case Outcome::kControlFailed:
      return "control failed";
    case Outcome::kExecFailed:
      return "cannot execute";
  }
  return "unknown";
}

int LaunchResult::run_exit_status() const {
  switch (outcome) {
    case Outcome::kExited:
      return exit_code;
    case Outcome::kSignaled:
    case Outcome::kStopped:
      return 128 + signal;
    case Outcome::kTimedOut:
      return 124;
    case Outcome::kControlFailed:
      return 125;
    case Outcome::kExecFailed:
      return exec_errno == ENOENT ? 127 : 126;
  }
  return 125;
}

std::optional<ResolveError> resolve_executable(const std::string& name, std::string& path_out,
                                               const std::string& search_override) {
  if (name.empty()) {
    return ResolveError{127, "the command is empty"};
  }
  auto check = [](const std::string& candidate) -> int {
    struct stat info {};
    if (::stat(candidate.c_str(), &info) != 0) {
      return 127;
    }
    if (!S_ISREG(info.st_mode) || ::access(candidate.c_str(), X_OK) != 0) {
      return 126;
    }
    return 0;
  };

  if (name.find('/') != std::string::npos) {
    int status = check(name);
    if (status == 127) {
      return ResolveError{127, name + ": no such file"};
    }
    if (status == 126) {
      return ResolveError{126, name + ": not an executable file"};
    }
    path_out = name;
    return std::nullopt;
  }

  const char* path_env = std::getenv("PATH");
  std::string search = !search_override.empty() ? search_override
                       : path_env != nullptr    ? path_env
                                                : "/usr/local/bin:/usr/bin:/bin";
  bool found_unexecutable = false;
  size_t begin = 0;
  while (begin <= search.size()) {
    size_t end = search.find(':', begin);
    if (end == std::string::npos) {
      end = search.size();
    }
    std::string dir = search.substr(begin, end - begin);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    int status = check(candidate);
    if (status == 0) {
      path_out = candidate;
      return std::nullopt;
    }
    found_unexecutable = found_unexecutable || status == 126;
    begin = end + 1;
  }
  if (found_unexecutable) {
    return ResolveError{126, name + ": found in PATH but not executable"};
  }
  return ResolveError{127, name + ": command not found in PATH"};
}

Result<LaunchResult> launch(const LaunchSpec& spec) {
  LaunchResult result;

  // A grandchild that calls setsid leaves the workload's group; as subreaper
  // memdet still inherits it when its parent dies, and can end it.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  auto report_pipe = sys::make_pipe();
  auto go_pipe = sys::make_pipe();
  auto signal_pipe = sys::make_pipe();
  if (!report_pipe || !go_pipe || !signal_pipe) {
    return make_error("cannot create a pipe: " + sys::errno_text(errno));
  }
  ::fcntl(signal_pipe->read.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(signal_pipe->write.get(), F_SETFL, O_NONBLOCK);

  ScopedFd null_input;
  if (spec.stdin_mode == StdinMode::kNull) {
    null_input.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_input.valid()) {
      return make_error("/dev/null: " + sys::errno_text(errno));
    }
  }
  auto out =
      plumb(spec.stdout_spec, spec.stdout_spec.echo_to_stderr ? STDERR_FILENO : STDOUT_FILENO);
  if (!out) {
    return out.error();
  }
  auto err = plumb(spec.stderr_spec, STDERR_FILENO);
  if (!err) {
    return err.error();
  }

  std::vector<std::string> argv_storage = spec.argv;
  std::vector<std::string> env_storage = spec.env;
  ChildPlan plan{};
  plan.executable = spec.executable.c_str();
  for (std::string& arg : argv_storage) {
    plan.argv.push_back(arg.data());
  }
  plan.argv.push_back(nullptr);
  for (std::string& entry : env_storage) {
    plan.envp.push_back(entry.data());
  }
  plan.envp.push_back(nullptr);
  plan.working_dir = spec.working_dir.empty() ? nullptr : spec.working_dir.c_str();
  plan.aslr_off = spec.controls.aslr_off;
  plan.set_cpus = spec.controls.cpus.has_value();
  CPU_ZERO(&plan.cpus);
  if (spec.controls.cpus) {
    for (int cpu : *spec.controls.cpus) {
      CPU_SET(cpu, &plan.cpus);
    }
  }
  plan.thp_disable = spec.controls.thp_disable;
  plan.mem_policy = -1;
  if (spec.controls.mem_policy != Controls::MemPolicy::kDefault) {
    // The values of MPOL_BIND and MPOL_INTERLEAVE in <linux/mempolicy.h>.
    plan.mem_policy = spec.controls.mem_policy == Controls::MemPolicy::kBind ? 2 : 3;
    for (int node : spec.controls.mem_nodes) {
      if (node >= 0 && node < static_cast<int>(sizeof plan.mem_nodes * 8)) {
        plan.mem_nodes[node / 64] |= 1UL << (node % 64);
      }
    }
  }
  plan.stop_at_exec = spec.stop_at_exec;
  plan.stdin_fd = null_input.valid() ? null_input.get() : -1;
  plan.stdout_fd = out->child_end.valid() ? out->child_end.get() : -1;
  plan.stderr_fd = err->child_end.valid() ? err->child_end.get() : -1;
  plan.report_fd = report_pipe->write.get();
  plan.go_fd = go_pipe->read.get();
  plan.parent = ::getpid();

  SignalRouting routing(signal_pipe->write.get());
  pid_t pid = ::fork();
  if (pid < 0) {
    return make_error("fork: " + sys::errno_text(errno));
  }
  if (pid == 0) {
    run_child(plan);
  }
  result.pid = pid;
  // Both sides set the group, so neither the terminal handover nor a signal
  // sent to the group can race the child's own setpgid.
  ::setpgid(pid, pid);
  report_pipe->write.reset();
  go_pipe->read.reset();
  out->child_end.reset();
  err->child_end.reset();

  TerminalHandover terminal;
  if (spec.stdin_mode == StdinMode::kTerminal) {
    terminal.give_to(pid);
  }

  auto reap_now = [&](int& status) {
    rusage usage{};
    while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
  };

  // Handshake: the child has applied its controls and waits; what /proc
  // shows now is the state exec will start from.
  Report report{};
  if (!read_report(report_pipe->read.get(), report)) {
    int status = 0;
    reap_now(status);
    return make_error("the workload's child process ended before it was ready");
  }
  if (report.stage != Stage::kReady) {
    int status = 0;
    reap_now(status);
    result.outcome = Outcome::kControlFailed;
    result.message = stage_text(report.stage) + ": " + sys::errno_text(report.error);
    return result;
  }

  result.at_ready = snapshot_process(pid);
  result.at_start = result.at_ready;
  std::vector<ControlCheck> early = verify_controls(spec.controls, result.at_ready, {});
  for (const ControlCheck& check : early) {
    if (check.at_start == CheckState::kDiffers || check.at_start == CheckState::kUnread) {
      ::kill(pid, SIGKILL);
      int status = 0;
      reap_now(status);
      result.outcome = Outcome::kControlFailed;
      result.checks = early;
      result.message = "asked for " + check.name + " " + check.requested + ", the child shows " +
                       check.observed_start;
      if (check.name == "cpus") {
        result.message += " (the kernel drops CPUs that do not exist or are not allowed)";
      }
      return result;
    }
  }

  // The counters attach to the waiting child and start at its execve; the
  // vmstat snapshot is taken as close to that as memdet can.
  measure::CounterSet counters;
  measure::VmstatSnapshot vmstat_before;
  std::string vmstat_error;
  if (spec.measure_counters) {
    counters = measure::CounterSet::open(
        pid, measure::plan_events(measure::default_events(), measure::read_privilege()));
    auto snapshot = measure::read_vmstat();
    if (snapshot) {
      vmstat_before = std::move(*snapshot);
    } else {
      vmstat_error = snapshot.error().message;
    }
  }

  const double started = sys::monotonic_seconds();
  char go = 1;
  sys::write_all(go_pipe->write.get(), &go, 1);
  go_pipe->write.reset();
  bool traced = spec.stop_at_exec;
  bool exec_failed = false;
  while (read_report(report_pipe->read.get(), report)) {
    if (report.stage == Stage::kTraceRefused) {
      traced = false;
      result.exec_stop_note = "ptrace(PTRACE_TRACEME) refused: " + sys::errno_text(report.error);
      continue;
    }
    exec_failed = true;
    break;
  }
  if (exec_failed) {
    int status = 0;
    reap_now(status);
    result.outcome = Outcome::kExecFailed;
    result.exec_errno = report.error;
    result.message = spec.executable + ": cannot execute: " + sys::errno_text(report.error);
    return result;
  }

  if (traced) {
    stop_at_exec(pid, result);
  }

  const bool has_deadline = spec.timeout_seconds.has_value();
  const double deadline = has_deadline ? started + *spec.timeout_seconds : 0.0;
  bool timed_out = false;
  bool stopped = false;
  int status = 0;
  rusage usage{};
  double interrupt_kill_at = 0.0;
  bool interrupt_killed = false;

  for (;;) {
    // The leader may be done already; WNOWAIT keeps it a zombie so /proc
    // still answers for it.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WSTOPPED | WNOHANG | WNOWAIT) ==
            0 &&
        info.si_pid == pid) {
      if (info.si_code == CLD_STOPPED) {
        if (!stopped) {
          stopped = true;
          result.signal = info.si_status;
          ::kill(-pid, SIGKILL);
        }
      } else {
        result.at_exit = snapshot_process(pid);
        while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
        }
        break;
      }
    }

    int wait_ms = 250;
    if (has_deadline && !timed_out) {
      double left = deadline - sys::monotonic_seconds();
      if (left <= 0) {
        timed_out = true;
        ::kill(-pid, SIGKILL);
        continue;
      }
      // In double first: a deadline days away would overflow an int.
      wait_ms = static_cast<int>(std::min(static_cast<double>(wait_ms), left * 1000.0 + 1.0));
    }
    if (result.interrupted_by != 0 && !interrupt_killed) {
      double left = interrupt_kill_at - sys::monotonic_seconds();
      if (left <= 0) {
        interrupt_killed = true;
        ::kill(-pid, SIGKILL);
        continue;
      }
      wait_ms = static_cast<int>(std::min(static_cast<double>(wait_ms), left * 1000.0 + 1.0));
    }

    pollfd fds[3] = {{signal_pipe->read.get(), POLLIN, 0},
                     {out->pipe_read.get(), POLLIN, 0},
                     {err->pipe_read.get(), POLLIN, 0}};
    ::poll(fds, 3, wait_ms);
    out->pump(fds[1].revents);
    err->pump(fds[2].revents);
    unsigned char signals[64];
    ssize_t got = ::read(signal_pipe->read.get(), signals, sizeof signals);
    for (ssize_t i = 0; i < got; ++i) {
      int signal_number = signals[i];
      if (signal_number != SIGCHLD) {
        // The first interrupt is passed on; a second one, or the end of the
        // grace period, ends a workload that ignored it.
        ::kill(-pid, result.interrupted_by != 0 ? SIGKILL : signal_number);
        if (result.interrupted_by == 0) {
          interrupt_kill_at = sys::monotonic_seconds() + spec.interrupt_grace_seconds;
        }
        result.interrupted_by = signal_number;
      }
    }
  }
  result.wall_seconds = sys::monotonic_seconds() - started;
  result.user_seconds = timeval_seconds(usage.ru_utime);
  result.system_seconds = timeval_seconds(usage.ru_stime);
  result.max_rss_kib = usage.ru_maxrss;
  result.minor_faults = usage.ru_minflt;
  result.major_faults = usage.ru_majflt;
  result.voluntary_switches = usage.ru_nvcsw;
  result.involuntary_switches = usage.ru_nivcsw;

  result.left_behind = clean_up_descendants(pid, timed_out || stopped, spec.spare_children);

  // Everything the workload started has exited now, and an inherited
  // counter folds a child's counts into its parent's when the child exits.
  if (spec.measure_counters) {
    result.counters = counters.read();
    auto vmstat_after = measure::read_vmstat();
    if (!vmstat_error.empty() || !vmstat_after) {
      result.counters.vmstat_error =
          !vmstat_error.empty() ? vmstat_error : vmstat_after.error().message;
    } else {
      result.counters.vmstat = measure::vmstat_deltas(vmstat_before, *vmstat_after);
    }
  }

  // Every writer is gone now, so the pipes reach EOF.
  const double drain_until = sys::monotonic_seconds() + 2.0;
  while ((out->pipe_read.valid() || err->pipe_read.valid()) &&
         sys::monotonic_seconds() < drain_until) {
    pollfd fds[2] = {{out->pipe_read.get(), POLLIN, 0}, {err->pipe_read.get(), POLLIN, 0}};
    ::poll(fds, 2, 100);
    out->pump(fds[0].revents);
    err->pump(fds[1].revents);
  }

  if (timed_out) {
    result.outcome = Outcome::kTimedOut;
  } else if (stopped) {
    result.outcome = Outcome::kStopped;
  } else if (WIFSIGNALED(status)) {
    result.outcome = Outcome::kSignaled;
    result.signal = WTERMSIG(status);
  } else {
    result.outcome = Outcome::kExited;
    result.exit_code = WEXITSTATUS(status);
  }
  result.checks = verify_controls(spec.controls, result.at_start, result.at_exit);
  return result;
}

}  // namespace memdet::launch
