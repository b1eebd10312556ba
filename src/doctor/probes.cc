// The probes doctor runs on the live machine. Each tries the call memdet
// would make later, because a setting can allow what a filter refuses:
// Docker's default seccomp profile lets personality() through only for a
// few fixed personas, so ADDR_NO_RANDOMIZE fails with EPERM whatever
// randomize_va_space says.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/sys.h"
#include "core/text.h"
#include "doctor/facts.h"
#include "measure/counters.h"

namespace memdet::doctor {
namespace {

std::string errno_name(int error) {
  const char* name = ::strerrorname_np(error);
  return name != nullptr ? name : "errno " + std::to_string(error);
}

Probe refused(int error) { return {ProbeOutcome::kRefused, errno_name(error)}; }

std::string find_on_path(const std::string& name, const std::string& path_variable) {
  std::stringstream dirs(path_variable);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

}  // namespace

Probe probe_personality() {
  // In a child, so memdet's own persona stays as it was.
  pid_t child = ::fork();
  if (child < 0) {
    return refused(errno);
  }
  if (child == 0) {
    int current = ::personality(0xffffffff);
    if (current == -1 ||
        ::personality(static_cast<unsigned long>(current) | ADDR_NO_RANDOMIZE) == -1) {
      ::_exit(errno & 0xff);
    }
    int now = ::personality(0xffffffff);
    ::_exit(now != -1 && (now & ADDR_NO_RANDOMIZE) != 0 ? 0 : 255);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return {ProbeOutcome::kAllowed, {}};
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 255) {
    return refused(WEXITSTATUS(status));
  }
  return {ProbeOutcome::kRefused, "ignored"};
}

void probe_counters(Facts& facts) {
  // The counters memdet opens on a workload, opened the same way on this
  // process: they wait for an exec that never comes, so they count nothing.
  measure::Privilege privilege = measure::read_privilege();
  auto plan = measure::plan_events(measure::default_events(), privilege);
  measure::CounterReadings readings = measure::CounterSet::open(::getpid(), plan).read();

  for (const measure::CounterValue& counter : readings.counters) {
    Probe probe;
    if (counter.supported) {
      probe.outcome = readings.user_space_only ? ProbeOutcome::kUserOnly : ProbeOutcome::kAllowed;
    } else {
      probe = {ProbeOutcome::kRefused, counter.reason};
    }
    if (counter.name == "task-clock") {
      facts.perf_software = probe;
    } else if (counter.name == "cycles") {
      facts.perf_hardware = probe;
    }
    facts.counters.emplace_back(counter.name, probe);
  }
}

std::optional<std::vector<std::string>> probe_nvidia_smi(const std::string& path_variable) {
  std::string program = find_on_path("nvidia-smi", path_variable);
  if (program.empty()) {
    return std::nullopt;
  }
  auto pipe = sys::make_pipe();
  if (!pipe) {
    return std::vector<std::string>{"could not run: " + pipe.error().message};
  }
  pid_t child = ::fork();
  if (child < 0) {
    return std::vector<std::string>{"could not run: " + sys::errno_text(errno)};
  }
  if (child == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::dup2(pipe->write.get(), STDOUT_FILENO);
    const char* argv[] = {program.c_str(), "-L", nullptr};
    ::execv(program.c_str(), const_cast<char* const*>(argv));
    ::_exit(127);
  }
  pipe->write.reset();

  // A hung driver makes nvidia-smi wait forever; ten seconds is plenty.
  std::string output;
  double deadline = sys::monotonic_seconds() + 10;
  bool timed_out = false;
  for (;;) {
    int left = static_cast<int>((deadline - sys::monotonic_seconds()) * 1000);
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd ready{pipe->read.get(), POLLIN, 0};
    int polled = ::poll(&ready, 1, left);
    if (polled < 0 && errno == EINTR) {
      continue;
    }
    if (polled <= 0) {
      timed_out = polled == 0;
      break;
    }
    char buffer[4096];
    ssize_t got = ::read(pipe->read.get(), buffer, sizeof buffer);
    if (got <= 0 || output.size() > 65536) {
      break;
    }
    output.append(buffer, static_cast<size_t>(got));
  }
  if (timed_out) {
    ::kill(child, SIGKILL);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }

  std::vector<std::string> lines;
  if (timed_out) {
    lines.push_back("did not answer within 10 s");
    return lines;
  }
  std::stringstream stream(output);
  std::string line;
  while (std::getline(stream, line)) {
    if (!trim(line).empty()) {
      lines.emplace_back(trim(line));
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    lines.push_back("failed (" +
                    (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                       : std::string("killed")) +
                    ")");
  }
  return lines;
}

}  // namespace memdet::doctor
