#include "report/check_json.h"

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>

#include "compare/finding_report.h"
#include "core/sys.h"
#include "report/check_terminal.h"

namespace memdet::report {
namespace {

using nlohmann::json;

const char* verdict_name(protocol::Verdict verdict) {
  switch (verdict) {
    case protocol::Verdict::kNoDifferenceSeen:
      return "no_difference_seen";
    case protocol::Verdict::kWithinTolerance:
      return "equal_within_tolerance";
    case protocol::Verdict::kDiffers:
      return "differs";
    case protocol::Verdict::kTooFewRuns:
      return "too_few_runs";
  }
  return "unknown";
}

const char* comparison_kind(protocol::ArtifactComparison::Kind kind) {
  switch (kind) {
    case protocol::ArtifactComparison::Kind::kSame:
      return "same";
    case protocol::ArtifactComparison::Kind::kDigestDiffers:
      return "digest_differs";
    case protocol::ArtifactComparison::Kind::kNumeric:
      return "numeric";
    case protocol::ArtifactComparison::Kind::kText:
      return "text";
    case protocol::ArtifactComparison::Kind::kTrace:
      return "trace";
    case protocol::ArtifactComparison::Kind::kMissing:
      return "missing";
  }
  return "unknown";
}

json snapshot_json(const launch::ProcSnapshot& snapshot) {
  if (!snapshot.valid) {
    return {{"read", false}, {"error", snapshot.error}};
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%08lx", snapshot.personality);
  return {{"read", true}, {"personality", hex}, {"cpus_allowed_list", snapshot.cpus_allowed_list}};
}

}  // namespace

json host_json(const host::HostInfo& info) {
  return {{"hostname", info.hostname},
          {"kernel", info.kernel},
          {"machine", info.machine},
          {"cpu_model", info.cpu_model},
          {"vector_extensions", info.vector_extensions},
          {"online_cpus", info.online_cpus},
          {"libc", info.libc}};
}

namespace {

json loaded_json(const host::LoadedLibraries& loaded) {
  json blas = json::array();
  for (const host::LoadedLibrary& library : loaded.blas) {
    blas.push_back({{"loaded_as", library.loaded_as}, {"resolved", library.resolved}});
  }
  json objects = json::array();
  for (const host::LoadedLibrary& library : loaded.objects) {
    objects.push_back(library.resolved);
  }
  json document = {{"recorded", loaded.recorded},
                   {"blas", loaded.blas_name},
                   {"blas_objects", blas},
                   {"allocator", loaded.allocator},
                   {"processes", loaded.processes},
                   {"programs", loaded.programs},
                   {"objects", objects}};
  if (!loaded.allocator_path.empty()) {
    document["allocator_path"] = loaded.allocator_path;
  }
  if (!loaded.note.empty()) {
    document["note"] = loaded.note;
  }
  return document;
}

json numeric_json(const compare::NumericDiff& diff) {
  return {{"dtype", diff.dtype},
          {"has_ulp", diff.has_ulp},
          {"elements", diff.elements},
          {"differing", diff.differing},
          {"max_abs", compare::json_number(diff.max_abs)},
          {"max_rel", compare::json_number(diff.max_rel)},
          {"max_ulp", diff.max_ulp},
          {"first_index", diff.first_index},
          {"first_reference", diff.first_a},
          {"first_other", diff.first_b},
          {"nan_mismatch", diff.nan_mismatch}};
}

}  // namespace

json text_json(const compare::TextDiff& diff) {
  json document = {
      {"lines_reference", diff.lines_a},
      {"lines_other", diff.lines_b},
      {"differing_lines", diff.differing_lines},
      {"extra_lines", diff.extra_lines},
      {"final_newline_differs", diff.final_newline_differs},
      {"first_line", diff.first_line},
      {"first_text_reference", diff.first_text_a},
      {"first_text_other", diff.first_text_b},
      {"first_step", diff.first_step ? json(*diff.first_step) : json(nullptr)},
      {"first_number_line", diff.first_number_line},
      {"first_number_step", diff.first_number_step ? json(*diff.first_number_step) : json(nullptr)},
      {"token_count_lines", diff.token_count_lines},
      {"first_token_count_line", diff.first_token_count_line},
      {"numbers_compared", diff.numbers_compared},
      {"numbers_differing", diff.numbers_differing},
      {"max_abs", compare::json_number(diff.max_abs)},
      {"max_rel", compare::json_number(diff.max_rel)},
      {"dtype", diff.dtype},
      {"dtype_inferred", diff.dtype_inferred},
      {"ulp_numbers", diff.ulp_numbers},
      {"max_ulp", diff.max_ulp},
      {"digit_numbers", diff.digit_numbers},
      {"max_digit_units", diff.max_digit_units},
      {"integer_numbers", diff.integer_numbers},
      {"max_integer_difference", diff.max_integer_difference},
      {"wide_integer_numbers", diff.wide_integer_numbers},
      {"nan_mismatch", diff.nan_mismatch},
      {"inf_mismatch", diff.inf_mismatch},
      {"text_tokens_differing", diff.text_tokens_differing}};
  json growth = json::array();
  for (const compare::TextStepRow& row : diff.growth) {
    growth.push_back({{"step", row.step},
                      {"ordinal", row.ordinal},
                      {"numbers_differing", row.numbers_differing},
                      {"max_abs", compare::json_number(row.max_abs)}});
  }
  document["growth"] = growth;
  document["step_matched"] = diff.step_matched;
  return document;
}

json launch_json(const launch::LaunchResult& result) {
  json checks = json::array();
  for (const launch::ControlCheck& check : result.checks) {
    checks.push_back({{"control", check.name},
                      {"requested", check.requested},
                      {"at_start", launch::check_state_name(check.at_start)},
                      {"observed_start", check.observed_start},
                      {"at_exit", launch::check_state_name(check.at_exit)},
                      {"observed_exit", check.observed_exit}});
  }
  json left = json::array();
  for (const launch::LeftBehind& process : result.left_behind) {
    left.push_back({{"pid", process.pid}, {"command", process.command}});
  }
  json document = {{"outcome", launch::outcome_name(result.outcome)},
                   {"exit_code", result.exit_code},
                   {"signal", result.signal},
                   {"status", result.run_exit_status()},
                   {"pid", result.pid},
                   {"wall_seconds", result.wall_seconds},
                   {"user_seconds", result.user_seconds},
                   {"system_seconds", result.system_seconds},
                   {"max_rss_kib", result.max_rss_kib},
                   {"at_start", snapshot_json(result.at_start)},
                   {"at_exit", snapshot_json(result.at_exit)},
                   {"controls", checks},
                   {"left_behind", left}};
  if (!result.message.empty()) {
    document["message"] = result.message;
  }
  if (result.interrupted_by != 0) {
    document["interrupted_by"] = result.interrupted_by;
  }
  return document;
}

json counters_json(const launch::LaunchResult& result) {
  json rusage = {{"minor_faults", result.minor_faults},
                 {"major_faults", result.major_faults},
                 {"voluntary_switches", result.voluntary_switches},
                 {"involuntary_switches", result.involuntary_switches}};
  const measure::CounterReadings& readings = result.counters;
  if (!readings.measured) {
    return {{"measured", false}, {"rusage", rusage}};
  }
  json events = json::object();
  for (const measure::CounterValue& counter : readings.counters) {
    if (!counter.supported) {
      events[counter.name] = {{"supported", false}, {"reason", counter.reason}};
      // What the kernel's rusage holds in its place.
      if (counter.name == "context-switches") {
        events[counter.name]["fallback"] = "rusage voluntary_switches + involuntary_switches";
      } else if (counter.name == "minor-faults" || counter.name == "page-faults") {
        events[counter.name]["fallback"] = "rusage minor_faults";
      } else if (counter.name == "major-faults") {
        events[counter.name]["fallback"] = "rusage major_faults";
      }
      continue;
    }
    json entry = {{"supported", true}, {"value", counter.raw}};
    if (!counter.unit.empty()) {
      entry["unit"] = counter.unit;
    }
    if (counter.multiplexed()) {
      // The count covers part of the run; the value is scaled to all of it.
      entry["value"] = static_cast<uint64_t>(std::llround(counter.value()));
      entry["multiplexed"] = true;
      entry["raw"] = counter.raw;
      entry["enabled_ns"] = counter.enabled_ns;
      entry["running_ns"] = counter.running_ns;
    }
    events[counter.name] = entry;
  }
  json vmstat = {{"scope", "system-wide"}};
  if (!readings.vmstat_error.empty()) {
    vmstat["error"] = readings.vmstat_error;
  } else {
    json deltas = json::object();
    for (const measure::VmstatDelta& delta : readings.vmstat) {
      deltas[delta.name] = delta.delta();
    }
    vmstat["delta"] = deltas;
  }
  return {{"measured", true},
          {"scope", readings.user_space_only ? "user space only" : "user and kernel"},
          {"events", events},
          {"rusage", rusage},
          {"vmstat", vmstat}};
}

json counter_summary_json(const protocol::CheckReport& report) {
  const measure::CounterRule& rule = report.options.counter_rule;
  json summaries = json::array();
  for (const measure::CounterSummary& summary : report.counters) {
    json entry = {{"name", summary.name},
                  {"cold_run", summary.cold_run},
                  {"cold", summary.cold ? json(*summary.cold) : json(nullptr)},
                  {"runs", summary.runs},
                  {"count", summary.warm.count},
                  {"mean", summary.warm.count > 0 ? json(summary.warm.mean) : json(nullptr)},
                  {"cv", summary.warm.cv ? json(*summary.warm.cv) : json(nullptr)},
                  {"flagged", summary.flagged}};
    if (!summary.unit.empty()) {
      entry["unit"] = summary.unit;
    }
    if (auto uncertainty = measure::cv_relative_uncertainty(summary.warm.count)) {
      entry["cv_relative_uncertainty"] = *uncertainty;
    }
    summaries.push_back(entry);
  }
  json document = {{"rule", rule.text()},
                   {"rule_label", rule.label()},
                   {"summaries", summaries},
                   {"timing_varied_results_did_not", report.timing_varied_results_did_not()}};
  if (rule.kind == measure::CounterRule::Kind::kFixed) {
    document["threshold_cv"] = rule.threshold;
  }
  return document;
}

json program_json(const host::ProgramRecord& program) {
  json document = {{"executable", program.executable}, {"digest", program.digest}};
  if (!program.interpreter.empty()) {
    document["interpreter"] = program.interpreter;
  }
  if (!program.script.empty()) {
    document["script"] = program.script;
    document["script_digest"] = program.script_digest;
  }
  if (!program.note.empty()) {
    document["note"] = program.note;
  }
  return document;
}

// What the preload library served of the missed-seed sources, each read
// and listing with its caller: null when it served none of them.
json seed_sources_json(const factors::PreloadReport& preload) {
  json sources = json::object();
  auto rows = [&](const char* key, std::vector<const char*> fields) {
    json list = json::array();
    for (const std::vector<std::string>& row : preload.rows_of(key)) {
      json entry = json::object();
      for (size_t i = 0; i < fields.size() && i < row.size(); ++i) {
        entry[fields[i]] = row[i];
      }
      list.push_back(entry);
    }
    return list;
  };
  if (preload.find("entropy") != nullptr) {
    sources["entropy"] = {
        {"reads", preload.number("entropy_reads", 0)},
        {"bytes", preload.number("entropy_bytes", 0)},
        {"first_reads", rows("entropy_read", {"ordinal", "source", "bytes", "thread", "caller"})}};
  }
  if (preload.find("clock") != nullptr) {
    sources["clock"] = {
        {"reads", preload.number("clock_reads", 0)},
        {"deadlines", preload.number("clock_deadlines", 0)},
        {"first_reads", rows("clock_read", {"ordinal", "function", "thread", "caller"})}};
  }
  if (preload.find("fileorder") != nullptr) {
    sources["fileorder"] = {
        {"listings", preload.number("fileorder_listings", 0)},
        {"ordered", preload.number("fileorder_ordered", 0)},
        {"first_listings",
         rows("fileorder_listing", {"ordinal", "api", "entries", "directory", "caller"})},
        {"unseen", rows("fileorder_unseen", {"api", "calls"})}};
  }
  return sources.empty() ? json(nullptr) : sources;
}

json factors_json(const std::vector<factors::FactorRecord>& records) {
  json list = json::array();
  for (const factors::FactorRecord& record : records) {
    json entry = {{"name", record.name},
                  {"mode", factors::mode_name(record.mode)},
                  {"applied", factors::applied_name(record.applied)}};
    if (record.applied == factors::Applied::kApplied) {
      entry["value"] = record.value;
      entry["reference"] = record.reference;
      entry["perturbed"] = record.perturbed;
      entry["seed"] = record.seed;
      entry["verified"] = launch::check_state_name(record.verified);
      entry["observed"] = record.observed;
      entry["measured"] = record.measured;
      entry["replayable"] = record.replayable;
    } else {
      entry["reason"] = record.reason;
    }
    if (!record.note.empty()) {
      entry["note"] = record.note;
    }
    list.push_back(entry);
  }
  return list;
}

json profile_json(const factors::Profile& profile) {
  json entries = json::array();
  for (const factors::ProfileEntry& entry : profile.entries) {
    if (entry.mode == factors::Mode::kFree) {
      continue;
    }
    json item = {{"name", entry.factor->name()},
                 {"mode", factors::mode_name(entry.mode)},
                 {"explicit", entry.explicit_request},
                 {"applied", factors::applied_name(entry.applied)}};
    if (entry.applied == factors::Applied::kApplied) {
      item["reference"] = entry.reference;
      if (!entry.variant.empty()) {
        item["variant"] = entry.variant;
      }
    } else {
      item["reason"] = entry.reason;
    }
    entries.push_back(item);
  }
  return {{"seed", profile.seed}, {"factors", entries}};
}

json run_json(const protocol::RunRecord& run) {
  json artifacts = json::array();
  for (const protocol::ArtifactRecord& artifact : run.artifacts) {
    artifacts.push_back({{"key", artifact.key},
                         {"written", artifact.written},
                         {"kept", artifact.kept.empty() ? json(nullptr) : json(artifact.kept)},
                         {"digest", artifact.digest},
                         {"text", artifact.text},
                         {"bytes", artifact.bytes}});
  }
  return {{"schema", kRunSchema},
          {"index", run.index},
          {"label", run.label},
          {"dir", run.dir},
          {"argv", run.argv},
          {"cwd", run.cwd},
          {"completed", run.completed()},
          {"outcome", run.outcome},
          {"launch", launch_json(run.launch)},
          {"counters", counters_json(run.launch)},
          {"artifacts", artifacts},
          {"missing_artifacts", run.missing},
          {"moved_before_run", run.moved_before},
          {"program", program_json(run.program)},
          {"numeric_environment", run.numeric_env},
          {"loaded", loaded_json(run.loaded)},
          {"perturbed_run", run.perturbed},
          {"phase", run.phase},
          {"factor", run.factor},
          {"factors", factors_json(run.factors.records)},
          {"factor_problems", run.factor_problems},
          {"preload_report", run.preload.present ? json(run.preload.path) : json(nullptr)},
          {"seed_sources", seed_sources_json(run.preload)}};
}

namespace {

// The enum whose name() is `name`, searched over `values`; none when no
// value has that name.
template <typename Enum, size_t N>
std::optional<Enum> enum_named(const std::string& name, const Enum (&values)[N],
                               const char* (*name_of)(Enum)) {
  for (Enum value : values) {
    if (name == name_of(value)) {
      return value;
    }
  }
  return std::nullopt;
}

// Reads a run record's fields; a field of the wrong type throws
// json::type_error, which read_run_json turns into one line.
class RecordReader {
 public:
  explicit RecordReader(std::string& problem) : problem_(problem) {}

  template <typename T>
  T get(const json& object, const char* key, T fallback = T()) {
    auto found = object.find(key);
    if (found == object.end() || found->is_null()) {
      return fallback;
    }
    return found->get<T>();
  }

  template <typename Enum, size_t N>
  Enum named(const json& object, const char* key, const Enum (&values)[N],
             const char* (*name_of)(Enum)) {
    const std::string name = get<std::string>(object, key);
    std::optional<Enum> value = enum_named(name, values, name_of);
    if (!value) {
      problem_ = std::string("\"") + key + "\": unknown value \"" + name + "\"";
      return values[0];
    }
    return *value;
  }

 private:
  std::string& problem_;
};

launch::ProcSnapshot read_snapshot(RecordReader& read, const json& object) {
  launch::ProcSnapshot snapshot;
  snapshot.valid = read.get<bool>(object, "read");
  if (!snapshot.valid) {
    snapshot.error = read.get<std::string>(object, "error");
    return snapshot;
  }
  snapshot.personality =
      std::strtoul(read.get<std::string>(object, "personality").c_str(), nullptr, 16);
  snapshot.cpus_allowed_list = read.get<std::string>(object, "cpus_allowed_list");
  return snapshot;
}

constexpr launch::Outcome kOutcomes[] = {
    launch::Outcome::kExited,  launch::Outcome::kSignaled,      launch::Outcome::kTimedOut,
    launch::Outcome::kStopped, launch::Outcome::kControlFailed, launch::Outcome::kExecFailed};
constexpr launch::CheckState kCheckStates[] = {
    launch::CheckState::kVerified, launch::CheckState::kDiffers, launch::CheckState::kNotObservable,
    launch::CheckState::kUnread};
constexpr factors::Mode kModes[] = {factors::Mode::kFree, factors::Mode::kPin,
                                    factors::Mode::kPerturb};
constexpr factors::Applied kApplied[] = {factors::Applied::kFree, factors::Applied::kApplied,
                                         factors::Applied::kNotApplicable,
                                         factors::Applied::kRefused};

launch::LaunchResult read_launch(RecordReader& read, const json& launched, const json& counted) {
  launch::LaunchResult result;
  result.outcome = read.named(launched, "outcome", kOutcomes, launch::outcome_name);
  result.exit_code = read.get<int>(launched, "exit_code");
  result.signal = read.get<int>(launched, "signal");
  result.pid = read.get<int>(launched, "pid");
  result.wall_seconds = read.get<double>(launched, "wall_seconds");
  result.user_seconds = read.get<double>(launched, "user_seconds");
  result.system_seconds = read.get<double>(launched, "system_seconds");
  result.max_rss_kib = read.get<long>(launched, "max_rss_kib");
  result.at_start = read_snapshot(read, launched.value("at_start", json::object()));
  result.at_exit = read_snapshot(read, launched.value("at_exit", json::object()));
  for (const json& check : launched.value("controls", json::array())) {
    result.checks.push_back({read.get<std::string>(check, "control"),
                             read.get<std::string>(check, "requested"),
                             read.named(check, "at_start", kCheckStates, launch::check_state_name),
                             read.get<std::string>(check, "observed_start"),
                             read.named(check, "at_exit", kCheckStates, launch::check_state_name),
                             read.get<std::string>(check, "observed_exit")});
  }
  for (const json& process : launched.value("left_behind", json::array())) {
    result.left_behind.push_back(
        {read.get<int>(process, "pid"), read.get<std::string>(process, "command")});
  }
  result.message = read.get<std::string>(launched, "message");
  result.interrupted_by = read.get<int>(launched, "interrupted_by");

  const json rusage = counted.value("rusage", json::object());
  result.minor_faults = read.get<long>(rusage, "minor_faults");
  result.major_faults = read.get<long>(rusage, "major_faults");
  result.voluntary_switches = read.get<long>(rusage, "voluntary_switches");
  result.involuntary_switches = read.get<long>(rusage, "involuntary_switches");
  measure::CounterReadings& readings = result.counters;
  readings.measured = read.get<bool>(counted, "measured");
  if (!readings.measured) {
    return result;
  }
  readings.user_space_only = read.get<std::string>(counted, "scope") == "user space only";
  const json events = counted.value("events", json::object());
  for (const auto& [name, entry] : events.items()) {
    measure::CounterValue counter;
    counter.name = name;
    counter.supported = read.get<bool>(entry, "supported");
    counter.reason = read.get<std::string>(entry, "reason");
    counter.unit = read.get<std::string>(entry, "unit");
    if (read.get<bool>(entry, "multiplexed")) {
      counter.raw = read.get<uint64_t>(entry, "raw");
      counter.enabled_ns = read.get<uint64_t>(entry, "enabled_ns");
      counter.running_ns = read.get<uint64_t>(entry, "running_ns");
    } else {
      counter.raw = read.get<uint64_t>(entry, "value");
    }
    readings.counters.push_back(counter);
  }
  const json vmstat = counted.value("vmstat", json::object());
  readings.vmstat_error = read.get<std::string>(vmstat, "error");
  const json deltas = vmstat.value("delta", json::object());
  for (const auto& [name, delta] : deltas.items()) {
    readings.vmstat.push_back({name, 0, delta.get<uint64_t>()});
  }
  return result;
}

host::LoadedLibraries read_loaded(RecordReader& read, const json& object) {
  host::LoadedLibraries loaded;
  loaded.recorded = read.get<bool>(object, "recorded");
  loaded.note = read.get<std::string>(object, "note");
  loaded.processes = read.get<int>(object, "processes");
  loaded.programs = read.get<std::vector<std::string>>(object, "programs");
  // The record keeps each object's resolved path only.
  for (const json& path : object.value("objects", json::array())) {
    loaded.objects.push_back({path.get<std::string>(), path.get<std::string>()});
  }
  for (const json& library : object.value("blas_objects", json::array())) {
    loaded.blas.push_back(
        {read.get<std::string>(library, "loaded_as"), read.get<std::string>(library, "resolved")});
  }
  loaded.blas_name = read.get<std::string>(object, "blas");
  loaded.allocator = read.get<std::string>(object, "allocator");
  loaded.allocator_path = read.get<std::string>(object, "allocator_path");
  return loaded;
}

std::vector<factors::FactorRecord> read_factors(RecordReader& read, const json& list) {
  std::vector<factors::FactorRecord> records;
  for (const json& entry : list) {
    factors::FactorRecord record;
    record.name = read.get<std::string>(entry, "name");
    record.mode = read.named(entry, "mode", kModes, factors::mode_name);
    record.applied = read.named(entry, "applied", kApplied, factors::applied_name);
    if (record.applied == factors::Applied::kApplied) {
      record.value = read.get<std::string>(entry, "value");
      record.reference = read.get<std::string>(entry, "reference");
      record.perturbed = read.get<bool>(entry, "perturbed");
      record.seed = read.get<uint64_t>(entry, "seed");
      record.verified = read.named(entry, "verified", kCheckStates, launch::check_state_name);
      record.observed = read.get<std::string>(entry, "observed");
      record.measured = read.get<std::string>(entry, "measured");
      record.replayable = read.get<bool>(entry, "replayable", true);
    } else {
      record.reason = read.get<std::string>(entry, "reason");
    }
    record.note = read.get<std::string>(entry, "note");
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace

Result<protocol::RunRecord> read_run_json(const nlohmann::json& document) {
  if (!document.is_object() || document.value("schema", json()) != kRunSchema) {
    return make_error(std::string("not a run record of schema ") + kRunSchema);
  }
  std::string problem;
  RecordReader read(problem);
  protocol::RunRecord run;
  try {
    run.index = read.get<int>(document, "index");
    run.label = read.get<std::string>(document, "label");
    run.dir = read.get<std::string>(document, "dir");
    run.argv = read.get<std::vector<std::string>>(document, "argv");
    run.cwd = read.get<std::string>(document, "cwd");
    run.outcome = read.get<int>(document, "outcome", -1);
    run.launch = read_launch(read, document.value("launch", json::object()),
                             document.value("counters", json::object()));
    for (const json& entry : document.value("artifacts", json::array())) {
      protocol::ArtifactRecord artifact;
      artifact.key = read.get<std::string>(entry, "key");
      artifact.written = read.get<std::string>(entry, "written");
      artifact.kept = read.get<std::string>(entry, "kept");
      artifact.digest = read.get<std::string>(entry, "digest");
      artifact.text = read.get<bool>(entry, "text");
      artifact.bytes = read.get<uint64_t>(entry, "bytes");
      run.artifacts.push_back(std::move(artifact));
    }
    run.missing = read.get<std::vector<std::string>>(document, "missing_artifacts");
    run.moved_before = read.get<std::vector<std::string>>(document, "moved_before_run");
    const json program = document.value("program", json::object());
    run.program.executable = read.get<std::string>(program, "executable");
    run.program.digest = read.get<std::string>(program, "digest");
    run.program.interpreter = read.get<std::string>(program, "interpreter");
    run.program.script = read.get<std::string>(program, "script");
    run.program.script_digest = read.get<std::string>(program, "script_digest");
    run.program.note = read.get<std::string>(program, "note");
    run.numeric_env = read.get<std::vector<std::string>>(document, "numeric_environment");
    run.loaded = read_loaded(read, document.value("loaded", json::object()));
    run.perturbed = read.get<int>(document, "perturbed_run");
    run.phase = read.get<std::string>(document, "phase");
    run.factor = read.get<std::string>(document, "factor");
    run.factors.records = read_factors(read, document.value("factors", json::array()));
    run.factor_problems = read.get<std::vector<std::string>>(document, "factor_problems");
    // The preload library's reports stay in the run directory; the record
    // names only the launched process's.
    const std::string preload = read.get<std::string>(document, "preload_report");
    if (!preload.empty()) {
      const std::string prefix = preload.substr(0, preload.rfind('.'));
      run.preload = factors::read_preload_report(prefix, run.launch.pid);
      run.descendant_preloads = factors::read_descendant_reports(prefix, run.launch.pid);
    }
  } catch (const json::exception& error) {
    problem = error.what();
  }
  if (!problem.empty()) {
    return make_error("run record " + std::to_string(run.index) + ": " + problem);
  }
  return run;
}

json check_json(const protocol::CheckReport& report) {
  json runs = json::array();
  for (const protocol::RunRecord& run : report.runs) {
    runs.push_back(run_json(run));
  }
  json outcomes = json::array();
  for (size_t i = 0; i < report.outcomes.size(); ++i) {
    const protocol::OutcomeGroup& group = report.outcomes[i];
    json comparisons = json::array();
    for (const protocol::ArtifactComparison& comparison : group.vs_reference) {
      json entry = {{"key", comparison.key}, {"kind", comparison_kind(comparison.kind)}};
      if (comparison.numeric) {
        entry["numeric"] = numeric_json(*comparison.numeric);
      }
      if (comparison.text) {
        entry["text"] = text_json(*comparison.text);
      }
      if (comparison.trace) {
        entry["trace"] = compare::trace_diff_json(*comparison.trace);
      }
      if (!comparison.note.empty()) {
        entry["note"] = comparison.note;
      }
      if (protocol::has_tolerance(report.options.tolerance)) {
        entry["tolerance_checked"] = comparison.tolerance_checked;
        entry["within_tolerance"] = comparison.within_tolerance;
      }
      comparisons.push_back(entry);
    }
    outcomes.push_back(
        {{"id", i},
         {"signature", group.signature},
         {"runs", group.runs},
         {"reference", static_cast<int>(i) == report.reference},
         {"vs_reference", comparisons},
         {"within_tolerance", group.within_tolerance},
         {"fingerprint",
          group.fingerprint_json.empty() ? json(nullptr) : json::parse(group.fingerprint_json)}});
  }

  const protocol::CheckOptions& options = report.options;
  json controls = {{"cpus", options.controls.cpus
                                ? json(launch::format_cpu_list(*options.controls.cpus))
                                : json(nullptr)}};

  json verdict = {
      {"verdict", verdict_name(report.verdict)}, {"completed_runs", report.completed_runs},
      {"failed_runs", report.failed_runs},       {"distinct_outcomes", report.outcomes.size()},
      {"stopped_early", report.stopped_early},   {"exit_status", report.exit_status()}};
  if (report.verdict == protocol::Verdict::kNoDifferenceSeen) {
    verdict["difference_probability_below"] = report.difference_bound();
    verdict["confidence"] = 0.95;
    verdict["runs_for_10_percent"] = protocol::runs_for_bound(0.10);
    verdict["runs_for_5_percent"] = protocol::runs_for_bound(0.05);
  }
  if (report.interrupted_by != 0) {
    verdict["interrupted_by"] = report.interrupted_by;
  }
  if (!report.input_error.empty()) {
    verdict["input_error"] = report.input_error;
  }
  verdict["text"] = printed([&](std::FILE* out) { print_check_verdict(report, out); });

  return {
      {"schema", kCheckSchema},
      {"campaign_dir", report.campaign_dir},
      {"started_unix", report.started_unix},
      {"host", host_json(report.host)},
      {"command", report.command},
      {"executable", report.executable},
      {"runs_requested", options.runs},
      {"artifact_patterns", options.artifact_patterns},
      {"stdout_compared", options.include_stdout},
      {"masks", options.masks},
      {"step_regex", options.step_regex},
      {"dtype", options.dtype},
      {"tolerance",
       {{"atol", options.tolerance.atol},
        {"rtol", options.tolerance.rtol},
        {"max_ulp", options.tolerance.max_ulp},
        {"equal_nan", options.tolerance.equal_nan}}},
      {"keep", options.keep == protocol::CheckOptions::Keep::kAll    ? "all"
               : options.keep == protocol::CheckOptions::Keep::kNone ? "none"
                                                                     : "diverged"},
      {"timeout_seconds", options.timeout_seconds ? json(*options.timeout_seconds) : json(nullptr)},
      {"controls", controls},
      {"profile", profile_json(options.profile)},
      {"result", verdict},
      {"counters", counter_summary_json(report)},
      {"outcomes", outcomes},
      {"runs", runs}};
}

void write_run_record(const protocol::RunRecord& run) {
  // A record that cannot be written is reported by the campaign's own
  // check.json write; the run itself has already happened.
  write_json(run_json(run), run.dir + "/record.json");
}

Status write_json(const nlohmann::json& document, const std::string& path) {
  std::string text = document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (path == "-") {
    std::cout << text << std::flush;
    return {};
  }
  // A FIFO, a device or a link is written through, never replaced: as
  // root, renaming over /dev/null would break the machine.
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out || !(out << text) || !out.flush()) {
      return make_error(path + ": cannot write: " + sys::errno_text(errno));
    }
    return {};
  }
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      return make_error(path + ": cannot write: " + sys::errno_text(errno));
    }
    out << text;
    if (!out.flush()) {
      return make_error(path + ": cannot write: " + sys::errno_text(errno));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    return make_error(path + ": cannot write: " + sys::errno_text(errno));
  }
  return {};
}

}  // namespace memdet::report
