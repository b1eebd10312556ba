#include "launch/controls.h"

#include <sys/personality.h>

#include <cstdlib>

#include "core/sys.h"

namespace memdet::launch {
namespace {

void judge(const ProcSnapshot& snapshot, CheckState& state, std::string& observed, bool matches,
           const std::string& description) {
  if (!snapshot.valid) {
    state = CheckState::kUnread;
    observed = snapshot.error;
    return;
  }
  state = matches ? CheckState::kVerified : CheckState::kDiffers;
  observed = description;
}

}  // namespace

const char* check_state_name(CheckState state) {
  switch (state) {
    case CheckState::kVerified:
      return "verified";
    case CheckState::kDiffers:
      return "differs";
    case CheckState::kNotObservable:
      return "set; effect not observable from outside";
    case CheckState::kUnread:
      return "not read";
  }
  return "unknown";
}

std::vector<std::pair<std::string, std::string>> deterministic_env() {
  return {
      {"CUBLAS_WORKSPACE_CONFIG", ":4096:8"},
      {"PYTHONHASHSEED", "0"},
      {"TF_DETERMINISTIC_OPS", "1"},
      {"NCCL_ALGO", "Ring"},
      {"NCCL_PROTO", "Simple"},
      {"MKL_CBWR", "COMPATIBLE"},
      {"KMP_DETERMINISTIC_REDUCTION", "true"},
      {"OMP_DYNAMIC", "false"},
  };
}

namespace {

std::string status_field(const std::string& status, const std::string& name) {
  const std::string key = "\n" + name + ":";
  size_t at = status.find(key);
  if (at == std::string::npos) {
    return {};
  }
  size_t begin = status.find_first_not_of(" \t", at + key.size());
  size_t end = status.find('\n', begin);
  return status.substr(begin, end - begin);
}

void read_exec_state(const std::string& base, const std::string& status, ProcSnapshot& snapshot) {
  snapshot.at_exec = true;
  std::string thp = status_field(status, "THP_enabled");
  snapshot.thp_enabled = thp.empty() ? -1 : std::atoi(thp.c_str());

  if (auto stat = sys::read_small_file(base + "/stat")) {
    // Fields after the command name, which may hold spaces and parentheses;
    // startstack is field 28, the 26th after the name.
    size_t close = stat->rfind(')');
    if (close != std::string::npos) {
      const char* cursor = stat->c_str() + close + 1;
      for (int field = 3; field < 28 && *cursor != '\0'; ++field) {
        while (*cursor == ' ') ++cursor;
        while (*cursor != ' ' && *cursor != '\0') ++cursor;
      }
      snapshot.start_stack = std::strtoul(cursor, nullptr, 10);
    }
  }
  if (auto maps = sys::read_small_file(base + "/numa_maps")) {
    size_t space = maps->find(' ');
    size_t end = maps->find_first_of(" \n", space + 1);
    if (space != std::string::npos) {
      snapshot.numa_policy = maps->substr(space + 1, end - space - 1);
    }
  }
  if (auto environ_text = sys::read_small_file(base + "/environ")) {
    size_t begin = 0;
    while (begin < environ_text->size()) {
      size_t end = environ_text->find('\0', begin);
      if (end == std::string::npos) {
        end = environ_text->size();
      }
      snapshot.environ.push_back(environ_text->substr(begin, end - begin));
      begin = end + 1;
    }
  }
}

}  // namespace

ProcSnapshot snapshot_process(int pid, bool at_exec) {
  ProcSnapshot snapshot;
  std::string base = "/proc/" + std::to_string(pid);

  auto personality_text = sys::read_small_file(base + "/personality");
  if (!personality_text) {
    snapshot.error = personality_text.error().message;
    return snapshot;
  }
  snapshot.personality = std::strtoul(personality_text->c_str(), nullptr, 16);

  auto status = sys::read_small_file(base + "/status");
  if (!status) {
    snapshot.error = status.error().message;
    return snapshot;
  }
  snapshot.cpus_allowed_list = status_field(*status, "Cpus_allowed_list");
  if (snapshot.cpus_allowed_list.empty()) {
    snapshot.error = base + "/status has no Cpus_allowed_list";
    return snapshot;
  }
  if (at_exec) {
    read_exec_state(base, *status, snapshot);
  }
  snapshot.valid = true;
  return snapshot;
}

std::vector<ControlCheck> verify_controls(const Controls& controls, const ProcSnapshot& start,
                                          const ProcSnapshot& exit) {
  std::vector<ControlCheck> checks;

  if (controls.cpus) {
    ControlCheck check;
    check.name = "cpus";
    check.requested = format_cpu_list(*controls.cpus);
    auto matches = [&](const ProcSnapshot& snapshot) {
      auto seen = parse_cpu_list(snapshot.cpus_allowed_list);
      return seen && *seen == *controls.cpus;
    };
    judge(start, check.at_start, check.observed_start, matches(start),
          "Cpus_allowed_list " + start.cpus_allowed_list);
    judge(exit, check.at_exit, check.observed_exit, matches(exit),
          "Cpus_allowed_list " + exit.cpus_allowed_list);
    checks.push_back(check);
  }

  return checks;
}

std::string summarize_checks(const std::vector<ControlCheck>& checks) {
  if (checks.empty()) {
    return "no controls applied";
  }
  std::string line;
  for (const ControlCheck& check : checks) {
    if (!line.empty()) {
      line += "; ";
    }
    line += check.name + " " + check.requested;
    if (check.at_start == CheckState::kNotObservable) {
      line += ": set, effect not observable from outside";
      continue;
    }
    line += std::string(": at start ") + check_state_name(check.at_start);
    if (check.at_start == CheckState::kDiffers) {
      line += " (" + check.observed_start + ")";
    }
    line += std::string(", at exit ") + check_state_name(check.at_exit);
    if (check.at_exit != CheckState::kVerified && !check.observed_exit.empty()) {
      line += " (" + check.observed_exit + ")";
    }
  }
  return line;
}

}  // namespace memdet::launch
