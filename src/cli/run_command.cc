// memdet run [controls] -- CMD ARGS...
//
// One run with the controls applied in the child between fork and exec. It
// prints one line on stderr naming what it applied and verified, and exits
// with the child's status: 128+N for a signal, 124 on timeout, 125 for
// memdet's own failure, 126 or 127 when the command cannot be executed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "core/sys.h"
#include "core/text.h"
#include "factors/antagonist.h"
#include "factors/journal.h"
#include "factors/launch_setup.h"
#include "factors/system_settings.h"
#include "host/program.h"

#include "cli/commands.h"
#include "core/error.h"
#include "launch/launcher.h"
#include "measure/counters.h"
#include "measure/fingerprint.h"
#include "report/check_json.h"
#include "report/check_terminal.h"

extern char** environ;

namespace memdet::cli {
namespace {

struct RunOptions {
  ControlOptions controls;
  double timeout = 0;
  bool stdin_terminal = false;
  bool no_counters = false;
  std::string json_path;
  std::string replay;
  std::string fingerprint_dir;
  uint64_t fingerprint_threshold = 64 * 1024;
  std::vector<std::string> command;
};

constexpr const char* kScratchPrefix = "memdet-run-";

// "PID START_TIME BOOT_ID" of this process, for the owner file.
std::string owner_line() {
  auto owner = factors::current_owner();
  auto boot = factors::current_boot_id();
  if (!owner || !boot) {
    return {};
  }
  return std::to_string(owner->pid) + " " + std::to_string(owner->start_time) + " " + *boot;
}

// A private folder for the preload report, removed with what it holds. It
// names its owner, so a folder left by a memdet killed with SIGKILL is
// removed by the next one.
class ScratchDir {
 public:
  ScratchDir() = default;
  static ScratchDir make() {
    ScratchDir dir;
    std::string pattern =
        std::filesystem::temp_directory_path().string() + "/" + kScratchPrefix + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw CommandError(
          125, "cannot create a scratch folder in " + pattern + ": " + sys::errno_text(errno));
    }
    dir.path_ = pattern;
    std::string owner = owner_line();
    int fd = ::open((pattern + "/owner").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      owner += '\n';
      (void)sys::write_all(fd, owner.data(), owner.size());
      ::close(fd);
    }
    return dir;
  }
  ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScratchDir& operator=(ScratchDir&& other) noexcept {
    std::swap(path_, other.path_);
    return *this;
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Removes the scratch folders of memdets that are gone: this user's, with an
// owner file naming a process that no longer runs (or ran in another boot).
// A folder without one may be another memdet's between mkdtemp and its
// first write, and is left alone.
void remove_stale_scratch() {
  std::error_code code;
  std::filesystem::path temp = std::filesystem::temp_directory_path(code);
  if (code) {
    return;
  }
  auto boot = factors::current_boot_id();
  for (const auto& entry : std::filesystem::directory_iterator(temp, code)) {
    std::string name = entry.path().filename().string();
    struct stat info {};
    if (name.rfind(kScratchPrefix, 0) != 0 || ::lstat(entry.path().c_str(), &info) != 0 ||
        !S_ISDIR(info.st_mode) || info.st_uid != ::geteuid()) {
      continue;
    }
    auto text = sys::read_small_file(entry.path().string() + "/owner");
    if (!text) {
      continue;
    }
    factors::Owner owner;
    char owner_boot[64] = {};
    unsigned long long start = 0;
    if (std::sscanf(text->c_str(), "%d %llu %63s", &owner.pid, &start, owner_boot) != 3) {
      continue;
    }
    owner.start_time = start;
    bool same_boot = boot && *boot == owner_boot;
    if (!same_boot || !factors::owner_alive(owner)) {
      std::filesystem::remove_all(entry.path(), code);
    }
  }
}

// A check run that wrote into its record folder ({run_dir}) would, replayed
// as recorded, write over the evidence. The replay gets a sibling folder
// whose path has the same length ("run-03" becomes "rpl-03", then "rp2-03",
// ...), so argv and the environment keep their sizes and the stack its
// place. Only a folder that exists and that the command names is moved; the
// name is chosen here and the folder made just before the launch, so a
// replay refused on the way creates nothing.
std::string replay_dir_for(const std::string& recorded, const std::vector<std::string>& argv) {
  std::error_code code;
  bool named = false;
  for (const std::string& arg : argv) {
    named = named || arg.find(recorded) != std::string::npos;
  }
  if (!named || recorded.empty() || recorded[0] != '/' ||
      !std::filesystem::is_directory(recorded, code)) {
    return recorded;
  }
  std::filesystem::path path(recorded);
  std::string name = path.filename().string();
  if (name.size() < 3) {
    throw CommandError(125, "--replay: the recorded run folder " + printable(recorded) +
                                " has too short a name for a replay folder beside it");
  }
  static constexpr char kMarks[] = "l23456789abcdefghijkmnopqrstuvwxyz";
  for (const char* mark = kMarks; *mark != '\0'; ++mark) {
    std::string prefix = *mark == 'l' ? std::string("rpl") : std::string("rp") + *mark;
    std::string candidate = (path.parent_path() / (prefix + name.substr(3))).string();
    if (!std::filesystem::exists(std::filesystem::symlink_status(candidate, code))) {
      return candidate;
    }
  }
  throw CommandError(125, "--replay: every replay folder beside " + printable(recorded) +
                              " is taken (rpl-, rp2- ... rpz-); remove some");
}

// Every occurrence of `from` in `text` replaced by `to`.
std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); !from.empty() && at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The command and factor values of a recorded run, for --replay.
struct Replay {
  std::string path;
  std::vector<std::string> argv;
  std::string cwd;
  std::string label;    // a check run's MEMDET_RUN, which the command may read
  std::string run_dir;  // and its MEMDET_RUN_DIR
  std::string program_digest;
  std::string script_digest;
  std::vector<std::pair<std::string, std::string>> values;
  std::map<std::string, std::string> measured;  // by factor
  std::vector<std::string> not_replayable;
};

constexpr size_t kRecordLimit = 64 << 20;

Replay read_replay(const std::string& where) {
  struct stat info {};
  std::string path = where;
  if (::stat(where.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    path = where + "/record.json";
  }
  auto fail = [&](const std::string& problem) {
    throw CommandError(125, "--replay: " + printable(path) + ": " + problem);
  };
  auto text = sys::read_prefix(path, kRecordLimit + 1);
  if (!text) {
    throw CommandError(125, "--replay: " + text.error().message);
  }
  if (text->size() > kRecordLimit) {
    fail("larger than a run record can be (64 MiB)");
  }
  nlohmann::json record = nlohmann::json::parse(*text, nullptr, false);
  if (record.is_discarded() || !record.is_object()) {
    fail("not JSON");
  }
  auto string_at = [&](const nlohmann::json& object, const char* key,
                       const std::string& where_in) -> std::string {
    if (!object.contains(key) || !object[key].is_string()) {
      fail(where_in + std::string(key) + ": missing, or not a string");
    }
    std::string value = object[key].get<std::string>();
    if (value.find('\0') != std::string::npos) {
      fail(where_in + std::string(key) + ": holds a NUL byte");
    }
    return value;
  };
  const std::string schema = record.contains("schema") && record["schema"].is_string()
                                 ? record["schema"].get<std::string>()
                                 : std::string();
  if (schema != report::kRunSchema) {
    fail("not a memdet run record (schema '" + printable(schema) + "', expected " +
         report::kRunSchema + ")");
  }
  Replay replay;
  replay.path = path;
  if (!record.contains("argv") || !record["argv"].is_array() || record["argv"].empty()) {
    fail("argv: missing, empty, or not an array");
  }
  for (const nlohmann::json& arg : record["argv"]) {
    if (!arg.is_string() || arg.get<std::string>().find('\0') != std::string::npos) {
      fail("argv: every element must be a string without NUL bytes");
    }
    // A record is JSON, so bytes that were not UTF-8 were written as U+FFFD:
    // the argument it holds is not the one that ran.
    if (arg.get<std::string>().find("\xEF\xBF\xBD") != std::string::npos) {
      fail("argv[" + std::to_string(replay.argv.size()) +
           "] held bytes that are not UTF-8, which the record cannot keep exactly; this run "
           "cannot be replayed");
    }
    replay.argv.push_back(arg.get<std::string>());
  }
  if (record.contains("cwd")) {
    replay.cwd = string_at(record, "cwd", "");
  }
  if (record.contains("label") && record.contains("dir")) {
    replay.label = string_at(record, "label", "");
    replay.run_dir = string_at(record, "dir", "");
  }
  if (record.contains("program") && record["program"].is_object()) {
    const nlohmann::json& program = record["program"];
    if (program.contains("digest")) {
      replay.program_digest = string_at(program, "digest", "program.");
    }
    if (program.contains("script_digest")) {
      replay.script_digest = string_at(program, "script_digest", "program.");
    }
  }
  if (!record.contains("factors") || !record["factors"].is_array()) {
    fail("factors: missing, or not an array");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < record["factors"].size(); ++i) {
    const nlohmann::json& factor = record["factors"][i];
    const std::string at = "factors[" + std::to_string(i) + "].";
    if (!factor.is_object()) {
      fail(at.substr(0, at.size() - 1) + ": not an object");
    }
    const std::string name = string_at(factor, "name", at);
    if (!seen.insert(name).second) {
      fail("factor " + printable(name) + " is recorded twice");
    }
    const std::string applied = string_at(factor, "applied", at);
    if (applied != "applied" && applied != "not applicable" && applied != "refused" &&
        applied != "free") {
      fail(at + "applied: '" + printable(applied) + "' is not a state memdet records");
    }
    if (applied != "applied") {
      continue;
    }
    replay.values.emplace_back(name, string_at(factor, "value", at));
    replay.measured[name] = factor.contains("measured") ? string_at(factor, "measured", at) : "";
    if (factor.contains("replayable") && !factor["replayable"].is_boolean()) {
      fail(at + "replayable: not true or false");
    }
    if (!factor.value("replayable", true)) {
      replay.not_replayable.push_back(name);
    }
  }
  return replay;
}

// A replay runs where the recorded run ran, and says so when the program or
// its script is not the one recorded.
void check_replayed_program(const Replay& replay, const host::ProgramRecord& program,
                            launch::LaunchSpec& spec) {
  std::error_code code;
  if (!replay.cwd.empty()) {
    if (std::filesystem::is_directory(replay.cwd, code)) {
      spec.working_dir = replay.cwd;
    } else {
      std::fprintf(stderr, "memdet run: the recorded folder %s is gone; replaying here\n",
                   replay.cwd.c_str());
    }
  }
  if (!replay.program_digest.empty() && replay.program_digest != program.digest) {
    std::fprintf(stderr,
                 "memdet run: warning: %s is not the program recorded (digest %s, "
                 "recorded %s)\n",
                 program.executable.c_str(), program.digest.c_str(), replay.program_digest.c_str());
  }
  if (!replay.script_digest.empty() && replay.script_digest != program.script_digest) {
    std::fprintf(stderr, "memdet run: warning: the script %s is not the one recorded\n",
                 program.script.c_str());
  }
}

// One line on stderr: what the launched process left, and how many others.
void print_fingerprint_line(const measure::RunFingerprint& run) {
  if (run.processes.empty()) {
    return;
  }
  const measure::ProcessFingerprint& root = run.processes.front();
  std::string line = "memdet run: fingerprint in " + printable(run.dir) + ": ";
  if (root.source == measure::FingerprintSource::kMissing) {
    line += "the launched process left none";
  } else {
    uint64_t allocations = 0;
    for (const measure::ThreadSequence& thread : root.threads) {
      allocations += thread.count;
    }
    line += std::to_string(allocations) + " allocations in " + std::to_string(root.threads.size()) +
            " threads, left by " +
            (root.source == measure::FingerprintSource::kLiveOnly ? "a kill (running digests only)"
                                                                  : root.end);
  }
  if (run.processes.size() > 1) {
    line += "; " + std::to_string(run.processes.size() - 1) + " more process images";
  }
  for (const std::string& problem : run.problems) {
    line += "; " + printable(problem);
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

int run(const RunOptions& options) {
  if (options.json_path == "-") {
    // The workload writes to memdet's stdout, so JSON there would be mixed
    // with whatever it prints.
    throw CommandError(125,
                       "--json - is not possible with run: the workload's output goes to "
                       "stdout; give --json a file");
  }
  remove_stale_scratch();
  Replay replay;
  std::string replay_dir;    // made just before the launch
  std::string recorded_dir;  // the run folder it stands in for
  if (!options.replay.empty()) {
    if (!options.command.empty()) {
      throw CommandError(125, "--replay runs the recorded command; give no command after --");
    }
    if (!options.controls.pins.empty() || !options.controls.perturbs.empty()) {
      throw CommandError(125,
                         "--replay pins the recorded values; --pin and --perturb cannot "
                         "be added to it");
    }
    replay = read_replay(options.replay);
    if (!replay.run_dir.empty()) {
      std::string into = replay_dir_for(replay.run_dir, replay.argv);
      if (into != replay.run_dir) {
        replay_dir = into;
        for (std::string& arg : replay.argv) {
          arg = replace_all(arg, replay.run_dir, into);
        }
        recorded_dir = replay.run_dir;
        replay.run_dir = into;
      }
    }
    // {run} in a check's command became the run's number, which a replay
    // keeps: what the recorded run wrote under it is written again.
    if (!replay.label.empty()) {
      const std::string& label = replay.label;
      for (const std::string& arg : replay.argv) {
        bool names_label =
            arg.find("/" + label + "/") != std::string::npos || arg.rfind(label + "/", 0) == 0 ||
            (arg.size() > label.size() &&
             arg.compare(arg.size() - label.size() - 1, std::string::npos, "/" + label) == 0);
        if (names_label) {
          std::fprintf(stderr,
                       "memdet run: warning: the replay writes again where run %s wrote (%s); "
                       "copy its files away first to keep them\n",
                       printable(label).c_str(), printable(arg).c_str());
          break;
        }
      }
    }
  } else if (options.command.empty()) {
    throw CommandError(125, "no command given after --");
  }
  const std::vector<std::string>& command = replay.argv.empty() ? options.command : replay.argv;
  if (!options.no_counters) {
    measure::warm_up_perf_events();
  }

  FactorSetup setup = prepare_factors(options.controls, 125, replay.values);
  // Held for the run, undone when this scope ends on any path.
  auto system = factors::SystemSettings::apply(factors::system_writes(setup.profile, setup.host));
  if (!system) {
    throw CommandError(125, system.error().message);
  }
  launch::LaunchSpec spec;
  std::string executable;
  if (auto failure = launch::resolve_executable(command[0], executable)) {
    std::fprintf(stderr, "memdet run: %s\n", failure->message.c_str());
    return failure->status;
  }
  spec.executable = executable;
  spec.argv = command;
  host::ProgramRecord program = host::identify_program(executable, command);
  if (!replay.path.empty()) {
    check_replayed_program(replay, program, spec);
    if (!replay.label.empty()) {
      spec.env.push_back("MEMDET_RUN=" + replay.label);
      spec.env.push_back("MEMDET_RUN_DIR=" + replay.run_dir);
    }
  }
  for (char** entry = environ; *entry != nullptr; ++entry) {
    spec.env.emplace_back(*entry);
  }
  spec.controls = setup.controls;
  spec.measure_counters = !options.no_counters;
  if (options.timeout > 0) {
    spec.timeout_seconds = options.timeout;
  }
  spec.stdin_mode =
      options.stdin_terminal ? launch::StdinMode::kTerminal : launch::StdinMode::kNull;

  // A lone run loads the preload library only when a factor needs it, and
  // takes the first perturbed value of a perturbed factor.
  factors::RunFactors factors =
      factors::plan_run(setup.profile, setup.host, setup.profile.any_perturbed() ? 1 : 0);
  ScratchDir scratch;
  if (factors.plan.needs_preload) {
    scratch = ScratchDir::make();
  }
  factors::PreloadUse use{false, scratch.path() + "/preload"};
  factors::FingerprintUse fingerprint;
  if (!options.fingerprint_dir.empty()) {
    std::error_code code;
    std::string dir = std::filesystem::absolute(options.fingerprint_dir, code).lexically_normal();
    std::filesystem::create_directories(dir, code);
    if (code) {
      throw CommandError(125,
                         "--fingerprint: cannot create " + printable(dir) + ": " + code.message());
    }
    fingerprint = {dir, options.fingerprint_threshold};
  }
  Status finished =
      factors::finish_launch(factors.plan, setup.host, use, fingerprint, spec, factors);
  if (!finished) {
    throw CommandError(125, finished.error().message);
  }
  for (const std::string& factor : replay.not_replayable) {
    std::fprintf(stderr,
                 "memdet run: %s cannot be replayed (the recorded run took it from the kernel); "
                 "what this run gets is recorded as observed\n",
                 factor.c_str());
  }

  factors::RunNoise noise(factors);
  spec.spare_children = noise.pids();
  if (!replay_dir.empty()) {
    if (::mkdir(replay_dir.c_str(), 0755) != 0) {
      throw CommandError(
          125, "--replay: cannot create " + printable(replay_dir) + ": " + sys::errno_text(errno));
    }
    std::fprintf(stderr, "memdet run: the replay writes into %s, not the recorded %s\n",
                 printable(replay_dir).c_str(), printable(recorded_dir).c_str());
  }
  warn_about_weakened_entropy(setup.profile);
  auto result = launch::launch(spec);
  noise.stop();
  if (!replay_dir.empty()) {
    // A stand-in the command wrote nothing into goes again.
    (void)::rmdir(replay_dir.c_str());
  }
  if (!result) {
    throw CommandError(125, result.error().message);
  }
  factors::PreloadReport preload;
  std::vector<factors::PreloadReport> descendants;
  if (factors.plan.needs_preload) {
    preload = factors::read_preload_report(use.report_prefix, result->pid);
    descendants = factors::read_descendant_reports(use.report_prefix, result->pid);
  }
  if (!fingerprint.dir.empty()) {
    print_fingerprint_line(measure::read_run_fingerprint(fingerprint.dir, result->pid));
  }
  factors::Observation seen{&*result, &preload, &spec.argv, &setup.host, &descendants};
  factors::verify_run(setup.profile, seen, factors);
  noise.record(factors);

  // One line: the status, then what each factor and control showed.
  std::string line;
  for (const factors::FactorRecord& record : factors.records) {
    line += (line.empty() ? "" : "; ") + report::describe_factor(record);
  }
  if (!result->checks.empty() || line.empty()) {
    line += (line.empty() ? "" : "; ") + launch::summarize_checks(result->checks);
  }
  // The status line stays one line: a counter the host cannot give is named
  // in it, once, and the run counts as any other.
  for (const std::string& notice : measure::process_notices().take(result->counters)) {
    line += "; " + notice;
  }
  switch (result->outcome) {
    case launch::Outcome::kControlFailed:
    case launch::Outcome::kExecFailed:
      std::fprintf(stderr, "memdet run: %s\n", result->message.c_str());
      break;
    case launch::Outcome::kTimedOut:
      std::fprintf(stderr, "memdet run: timed out after %g s, killed the workload; %s\n",
                   options.timeout, line.c_str());
      break;
    default:
      std::fprintf(stderr, "memdet run: %s; %s\n", report::describe_status(*result).c_str(),
                   line.c_str());
  }
  // A replay is judged against the run it repeats.
  for (const factors::FactorRecord& record : factors.records) {
    auto recorded = replay.measured.find(record.name);
    if (recorded != replay.measured.end() && !recorded->second.empty() &&
        !record.measured.empty() && recorded->second != record.measured) {
      std::fprintf(stderr, "memdet run: %s not reproduced: measured %s, the recorded run %s\n",
                   record.name.c_str(), record.measured.c_str(), recorded->second.c_str());
    }
  }
  for (const launch::LeftBehind& process : result->left_behind) {
    std::fprintf(stderr, "memdet run: pid %d (%s) outlived the workload and was ended\n",
                 process.pid, process.command.c_str());
  }

  if (!options.json_path.empty()) {
    nlohmann::json document = report::launch_json(*result);
    document["schema"] = report::kRunSchema;
    document["argv"] = command;
    document["executable"] = executable;
    std::error_code code;
    document["cwd"] =
        spec.working_dir.empty() ? std::filesystem::current_path(code).string() : spec.working_dir;
    document["program"] = report::program_json(program);
    if (!replay.path.empty()) {
      document["replay_of"] = replay.path;
    }
    document["counters"] = report::counters_json(*result);
    document["factors"] = report::factors_json(factors.records);
    document["seed"] = setup.profile.seed;
    Status written = report::write_json(document, options.json_path);
    if (!written) {
      throw CommandError(125, written.error().message);
    }
  }
  return result->run_exit_status();
}

}  // namespace

Registered add_run_command(CLI::App& parent) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* app = parent.add_subcommand(
      "run", "Run a command once with controls applied, and verify them from the child's side");
  add_control_options(*app, options->controls);
  app->add_option("--timeout", options->timeout,
                  "seconds before the workload's whole process group is killed (exit 124)")
      ->check(timeout_validator());
  app->add_flag("--no-counters", options->no_counters,
                "do not open perf counters on the workload nor read /proc/vmstat around it "
                "(rusage is recorded either way)");
  app->add_flag("--stdin", options->stdin_terminal,
                "give the workload memdet's stdin (and the terminal) instead of /dev/null");
  app->add_option("--json", options->json_path,
                  "write the run record as JSON to FILE (not stdout, which is the workload's)");
  app->add_option("--replay", options->replay,
                  "repeat a recorded run (its directory, or a record.json / --json file) with "
                  "the same command and factor values");
  app->add_option("--fingerprint", options->fingerprint_dir,
                  "have every process of the workload leave its memory-layout fingerprint in "
                  "DIR (created if missing); compare two with memdet diff DIR_A DIR_B")
      ->type_name("DIR");
  app->add_option("--fingerprint-threshold", options->fingerprint_threshold,
                  "with --fingerprint: keep every allocation of at least BYTES with its address "
                  "and caller (default 65536)")
      ->type_name("BYTES");
  app->add_option("command", options->command, "the command to run, after --");
  return {app, [options] { return run(*options); }, 125};
}

}  // namespace memdet::cli
