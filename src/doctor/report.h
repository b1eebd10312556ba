// `memdet doctor`'s findings over one machine, and its two renderings: a
// line per fact and per finding for people, one JSON document for scripts.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "doctor/facts.h"
#include "doctor/findings.h"

namespace memdet::doctor {

struct Report {
  Facts facts;
  std::vector<Finding> findings;
};

// Reads the machine and judges it.
Report examine(const MachineRoot& root, const Options& options);

// The environment variables that steer numerics, placement or the GPU
// stack, in name order; the rest (tokens, paths) stays out of reports.
std::vector<std::pair<std::string, std::string>> relevant_variables(const Facts& facts);

std::string render_text(const Report& report);
nlohmann::json render_json(const Report& report);
// render_json as text ending in a newline. A saved machine's files and its
// folder's name may hold any bytes; those that are not UTF-8 become U+FFFD.
std::string render_json_text(const Report& report);

}  // namespace memdet::doctor
