// The controls `run` and `check` apply to a workload: what is requested,
// how it reaches the child, and how it is verified from the child's side.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "launch/cpu_list.h"

namespace memdet::launch {

struct Controls {
  // personality(ADDR_NO_RANDOMIZE) in the child before exec.
  bool aslr_off = false;
  // sched_setaffinity in the child before exec.
  std::optional<CpuSet> cpus;
  // prctl(PR_SET_THP_DISABLE) in the child before exec; exec keeps it.
  bool thp_disable = false;
  // set_mempolicy in the child before exec: MPOL_BIND or MPOL_INTERLEAVE
  // over these nodes; empty: the policy memdet has.
  enum class MemPolicy { kDefault, kBind, kInterleave } mem_policy = MemPolicy::kDefault;
  std::vector<int> mem_nodes;

  bool any() const { return aslr_off || cpus || thp_disable || mem_policy != MemPolicy::kDefault; }
};

// What /proc says about the child at one moment.
struct ProcSnapshot {
  bool valid = false;
  std::string error;  // why it could not be read, when !valid
  unsigned long personality = 0;
  std::string cpus_allowed_list;

  // Read only at the exec stop, where the new program exists but has run
  // nothing yet.
  bool at_exec = false;
  unsigned long start_stack = 0;     // field 28 of stat
  int thp_enabled = -1;              // THP_enabled of status; -1: the kernel has none
  std::string numa_policy;           // policy column of the first numa_maps line
  std::vector<std::string> environ;  // what the program really received
};

enum class CheckState {
  kVerified,       // the child's /proc shows the requested value
  kDiffers,        // the child's /proc shows something else
  kNotObservable,  // set, but nothing outside the program shows its effect
  kUnread,         // /proc could not be read at that moment
};

const char* check_state_name(CheckState state);

// One control's request and what the child showed for it.
struct ControlCheck {
  std::string name;       // "aslr", "cpus", "threads", "env"
  std::string requested;  // "off", "0-1", "OMP_NUM_THREADS=2 ..."
  CheckState at_start = CheckState::kUnread;
  std::string observed_start;
  CheckState at_exit = CheckState::kUnread;
  std::string observed_exit;
};

// The variables `--env-preset deterministic` sets, with their real values.
// Commonly quoted knobs such as CUDNN_DETERMINISTIC are absent on purpose: no
// library reads them.
std::vector<std::pair<std::string, std::string>> deterministic_env();

// Compares what the child showed with what was asked, for the CPU set; the
// factors (src/factors/) judge the rest.
std::vector<ControlCheck> verify_controls(const Controls& controls, const ProcSnapshot& start,
                                          const ProcSnapshot& exit);

// Reads /proc/<pid>/personality and the Cpus_allowed_list of its status;
// with `at_exec`, also startstack, THP_enabled, the NUMA policy and the
// environment.
ProcSnapshot snapshot_process(int pid, bool at_exec = false);

// One short line: what was applied and what was verified.
std::string summarize_checks(const std::vector<ControlCheck>& checks);

}  // namespace memdet::launch
