// Helpers the factors share for reading the exec stop and the preload report.
#pragma once

#include <string>

#include "factors/factor.h"

namespace memdet::factors {

// True when the exec stop was read; otherwise marks the record unread with
// the reason.
bool exec_stop_read(const Observation& seen, FactorRecord& record);

// True when the preload library's report was read; otherwise marks the
// record unread with the reason.
bool preload_report_read(const Observation& seen, FactorRecord& record);

// A count the preload library reports, summed over the launched process
// and the processes it started; `processes` gets how many of those (the
// launched one left out) counted any.
long long count_in_all(const Observation& seen, const std::string& key, int* processes);

}  // namespace memdet::factors
