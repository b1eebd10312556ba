// Starts one workload and follows it to the end: fork, controls applied in
// the child, a ready handshake so verification cannot race the child, exec,
// signal forwarding, timeout, reaping of everything the workload left behind.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "launch/controls.h"
#include "measure/counters.h"

namespace memdet::launch {

enum class StdinMode {
  kNull,      // /dev/null: a workload that reads input cannot hang on it
  kTerminal,  // memdet's own stdin, and the terminal's foreground if it is one
};

// Where one of the workload's output streams goes.
struct OutputSpec {
  enum class Mode { kInherit, kFile, kTee } mode = Mode::kInherit;
  std::string path;             // for kFile and kTee
  bool echo_to_stderr = false;  // kTee: pass the stream through to stderr
};

struct LaunchSpec {
  std::string executable;         // resolved path given to execve
  std::vector<std::string> argv;  // argv[0] as the user wrote it
  std::vector<std::string> env;   // "NAME=value" entries, exactly as passed
  std::string working_dir;        // empty: memdet's own
  Controls controls;
  // Stop the child right after execve (PTRACE_TRACEME) to read the new
  // program's /proc before it runs.
  bool stop_at_exec = true;
  // Open perf counters on the workload while it waits before exec, and read
  // /proc/vmstat before and after it: LaunchResult::counters.
  bool measure_counters = false;
  std::optional<double> timeout_seconds;
  // After the first SIGINT, SIGTERM or SIGHUP is passed on, the workload has
  // this long to end before it is killed (docker stop's grace), so one
  // signal from a supervisor is enough to stop memdet.
  double interrupt_grace_seconds = 10.0;
  // memdet's own children that live beside the workload (the noise
  // antagonist): never taken for something the workload left behind.
  std::vector<int> spare_children;
  StdinMode stdin_mode = StdinMode::kNull;
  OutputSpec stdout_spec;
  OutputSpec stderr_spec;
};

enum class Outcome {
  kExited,         // the leader exited; see exit_code
  kSignaled,       // the leader died of a signal; see signal
  kTimedOut,       // memdet killed the group at the deadline
  kStopped,        // the leader stopped (SIGTTIN, SIGTTOU, ...) and was killed
  kControlFailed,  // a control could not be applied; nothing was executed
  kExecFailed,     // execve failed; see exec_errno
};

const char* outcome_name(Outcome outcome);

struct LeftBehind {
  int pid = 0;
  std::string command;  // comm from /proc
};

struct LaunchResult {
  Outcome outcome = Outcome::kExited;
  int exit_code = 0;
  int signal = 0;  // kSignaled: the signal; kStopped: the stop signal
  int exec_errno = 0;
  std::string message;     // kControlFailed / kExecFailed: what went wrong
  int interrupted_by = 0;  // SIGINT, SIGTERM or SIGHUP memdet received and forwarded

  int pid = 0;
  double wall_seconds = 0;
  double user_seconds = 0;
  double system_seconds = 0;
  long max_rss_kib = 0;
  // wait4's rusage of the workload and the children it waited for: the
  // counts the kernel keeps whatever perf_event_paranoid says.
  long minor_faults = 0;          // ru_minflt
  long major_faults = 0;          // ru_majflt
  long voluntary_switches = 0;    // ru_nvcsw
  long involuntary_switches = 0;  // ru_nivcsw
  // With LaunchSpec::measure_counters, once the workload reached its exec.
  measure::CounterReadings counters;

  ProcSnapshot at_ready;       // memdet's forked copy, controls applied, before exec
  ProcSnapshot at_start;       // the exec stop; the ready copy when there was none
  std::string exec_stop_note;  // why there was no exec stop
  ProcSnapshot at_exit;
  std::vector<ControlCheck> checks;
  std::vector<LeftBehind> left_behind;

  // The status `memdet run` exits with: the child's, 128+N for a signal, 124
  // for a timeout, 125-127 for memdet's and exec's failures.
  int run_exit_status() const;
  bool succeeded() const { return outcome == Outcome::kExited && exit_code == 0; }
};

// Resolves argv[0] as execvp would, in the parent: a name with a slash is
// taken as a path, otherwise PATH is searched. The error says whether the
// program is missing (127) or not executable (126).
struct ResolveError {
  int status;
  std::string message;
};
// `search` replaces $PATH when not empty.
std::optional<ResolveError> resolve_executable(const std::string& name, std::string& path_out,
                                               const std::string& search = "");

// Total bytes the kernel copies onto a new process's stack for these
// strings: every argv and environment entry with its terminating NUL, plus
// the executable path.
size_t exec_footprint(const std::string& executable, const std::vector<std::string>& argv,
                      const std::vector<std::string>& env);

// Runs the workload to completion. Fails only when memdet itself cannot set
// up the launch (no pipe, no fork, an output file that cannot be opened);
// everything the workload does is in the result.
Result<LaunchResult> launch(const LaunchSpec& spec);

}  // namespace memdet::launch
