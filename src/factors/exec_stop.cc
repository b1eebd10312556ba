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
  record.observed =
      seen.preload == nullptr ? "the preload library was not loaded" : seen.preload->error;
  return false;
}

}  // namespace memdet::factors
