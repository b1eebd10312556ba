#include "factors/exec_stop.h"

namespace memdet::factors {

bool exec_stop_read(const Observation& seen, FactorRecord& record) {
  const launch::ProcSnapshot& start = seen.launch->at_start;
  if (start.valid && start.at_exec) {
    return true;
  }
  record.verified = launch::CheckState::kUnread;
  record.observed = !start.valid ? start.error
                    : seen.launch->exec_stop_note.empty()
                        ? "no exec stop"
                        : "no exec stop: " + seen.launch->exec_stop_note;
  return false;
}

bool preload_report_read(const Observation& seen, FactorRecord& record) {
  if (seen.preload != nullptr && seen.preload->present) {
    return true;
  }
  record.verified = launch::CheckState::kUnread;
  const launch::LaunchResult* launch = seen.launch;
  if (seen.preload == nullptr) {
    record.observed = "the preload library was not loaded";
  } else if (launch != nullptr && (launch->outcome == launch::Outcome::kTimedOut ||
                                   launch->outcome == launch::Outcome::kSignaled)) {
    record.observed = "the workload was killed before the preload library could report";
  } else {
    record.observed = seen.preload->error;
  }
  return false;
}

long long count_in_all(const Observation& seen, const std::string& key, int* processes) {
  long long total = seen.preload != nullptr ? seen.preload->number(key, 0) : 0;
  *processes = 0;
  if (seen.descendants != nullptr) {
    for (const PreloadReport& report : *seen.descendants) {
      long long count = report.number(key, 0);
      if (count > 0) {
        total += count;
        ++*processes;
      }
    }
  }
  return total;
}

}  // namespace memdet::factors
