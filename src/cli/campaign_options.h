// The options `check` and `isolate` share: which files the runs write and
// how they are compared, where the records go, and how each run is
// launched and measured.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "cli/tolerance_options.h"
#include "protocol/check.h"

namespace memdet::cli {

struct CampaignOptions {
  std::vector<std::string> artifacts;
  bool no_stdout = false;
  std::vector<std::string> masks;
  std::string step_regex;
  std::string dtype;
  ToleranceOptions tolerance;
  std::string keep = "diverged";
  std::string out_dir;
  double timeout = 0;
  bool no_counters = false;
  bool fingerprint = false;
  uint64_t fingerprint_threshold = 64 * 1024;
  std::string json_path;
  std::string html_path;
  std::vector<std::string> command;
};

// Registers the options; `kind` names the campaign directory's default
// (.memdet/KIND-TIME). The command, after --, is registered last by the
// caller with add_command_option.
void add_campaign_options(CLI::App& app, CampaignOptions& options, const std::string& kind);
void add_command_option(CLI::App& app, CampaignOptions& options);

// Writes the page `memdet report --html` writes for the campaign document
// (check.json's or isolate.json's), stored at `source`. Throws a usage
// error when the file cannot be written.
void write_campaign_html(const nlohmann::json& document, const std::string& source,
                         const std::string& path);

// Puts them into `check`. Throws a usage error when nothing would be
// compared or --json FILE cannot be written.
void apply_campaign_options(const CampaignOptions& cli, protocol::CheckOptions& check);

}  // namespace memdet::cli
