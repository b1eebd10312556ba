// The JSON form of an isolate campaign (schema memdet.isolate/1): the
// verdict, the findings per factor, and the whole campaign as check writes
// it, so every run and every comparison is there.
#pragma once

#include <nlohmann/json.hpp>

#include "protocol/isolate.h"

namespace memdet::report {

inline constexpr const char* kIsolateSchema = "memdet.isolate/1";

nlohmann::json isolate_json(const protocol::IsolateReport& report);

}  // namespace memdet::report
