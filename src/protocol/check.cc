#include "protocol/check.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "compare/digest.h"
#include "compare/tensor_diff.h"
#include "core/sys.h"
#include "factors/antagonist.h"
#include "factors/launch_setup.h"
#include "measure/fingerprint.h"
#include "protocol/placeholders.h"
#include "report/check_json.h"

extern char** environ;

namespace memdet::protocol {
namespace {

namespace fs = std::filesystem;

bool has_glob_chars(const std::string& text) {
  return text.find_first_of("*?[") != std::string::npos;
}

// The pattern with {run} and {run_dir} replaced, their values escaped so
// that a run directory holding '[' or '*' matches itself.
std::string glob_pattern(const std::string& pattern, const RunRecord& run) {
  auto escape = [](const std::string& text) {
    std::string escaped;
    for (char c : text) {
      if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
        escaped += '\\';
      }
      escaped += c;
    }
    return escaped;
  };
  return substitute(pattern, escape(run.label), escape(run.dir));
}

std::vector<std::string> expand(const std::string& pattern) {
  std::vector<std::string> matches;
  glob_t found{};
  if (::glob(pattern.c_str(), 0, nullptr, &found) == 0) {
    for (size_t i = 0; i < found.gl_pathc; ++i) {
      matches.emplace_back(found.gl_pathv[i]);
    }
  }
  ::globfree(&found);
  std::sort(matches.begin(), matches.end());
  return matches;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t slash = path.find('/', begin);
    if (slash == std::string::npos) {
      slash = path.size();
    }
    parts.push_back(path.substr(begin, slash - begin));
    begin = slash + 1;
  }
  return parts;
}

// The name an artifact has in every run: each literal component of the
// pattern as the user wrote it ({run} and all), each wildcard component as
// matched. A glob never matches across '/', so the two line up.
std::string artifact_key(const std::string& pattern, const std::string& run_dir,
                         const std::string& match) {
  std::string rest_pattern = pattern;
  std::string rest_match = match;
  std::string key;
  const std::string run_dir_token = "{run_dir}";
  if (pattern.rfind(run_dir_token, 0) == 0 && match.rfind(run_dir, 0) == 0) {
    key = run_dir_token;
    rest_pattern = pattern.substr(run_dir_token.size());
    rest_match = match.substr(run_dir.size());
  }
  std::vector<std::string> pattern_parts = split_path(rest_pattern);
  std::vector<std::string> match_parts = split_path(rest_match);
  if (pattern_parts.size() != match_parts.size() ||
      rest_pattern.find(run_dir_token) != std::string::npos) {
    return match;
  }
  for (size_t i = 0; i < pattern_parts.size(); ++i) {
    key += i == 0 ? "" : "/";
    key += has_glob_chars(pattern_parts[i]) ? match_parts[i] : pattern_parts[i];
  }
  return key;
}

// `path`, or `path~2`, `path~3`... when an earlier entry of `used` took it.
std::string unique_path(const std::string& path, std::set<std::string>& used) {
  std::string candidate = path;
  for (int suffix = 2; !used.insert(candidate).second; ++suffix) {
    candidate = path + "~" + std::to_string(suffix);
  }
  return candidate;
}

// A relative path that stays inside the record directory.
std::string contained_path(const std::string& path) {
  std::string safe;
  for (const auto& part : fs::path(path).lexically_normal()) {
    std::string name = part.string();
    if (name == "/" || name.empty() || name == ".") {
      continue;
    }
    if (name == "..") {
      name = "__up__";
    }
    safe += (safe.empty() ? "" : "/") + name;
  }
  return safe.empty() ? "artifact" : safe;
}

Status move_file(const std::string& from, const std::string& to) {
  std::error_code error;
  fs::create_directories(fs::path(to).parent_path(), error);
  if (error) {
    return make_error(to + ": " + error.message());
  }
  fs::rename(from, to, error);
  if (error == std::errc::cross_device_link) {
    error.clear();
    fs::copy(from, to, fs::copy_options::overwrite_existing | fs::copy_options::recursive, error);
    if (!error) {
      fs::remove_all(from, error);
    }
  }
  if (error) {
    return make_error("cannot move " + from + " to " + to + ": " + error.message());
  }
  return {};
}

// The absolute, normalised form of `path`; `path` itself when the working
// directory cannot be read.
std::string absolute_path(const std::string& path) {
  std::error_code code;
  fs::path absolute = fs::absolute(path, code);
  return code ? path : absolute.lexically_normal().string();
}

bool inside(const std::string& path, const std::string& dir) {
  std::error_code code;
  std::string absolute = fs::absolute(path, code).lexically_normal().string();
  if (path.empty() || code) {
    return false;
  }
  std::string base = fs::path(dir).lexically_normal().string();
  return absolute.compare(0, base.size() + 1, base + "/") == 0;
}

bool looks_like_npy(const std::string& path) {
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0) {
    return true;
  }
  auto start = sys::read_prefix(path, 6);
  return start && *start == "\x93NUMPY";
}

// The files a tolerance applies to: .npy and .npz by their magic, and
// safetensors by name, as memdet diff opens them.
bool is_tensor_file(const std::string& path) {
  if (looks_like_npy(path) || fs::path(path).extension() == ".safetensors") {
    return true;
  }
  auto start = sys::read_prefix(path, 4);
  return start && *start == std::string("PK\x03\x04", 4);
}

constexpr const char* kLoadedObjectsFile = "loaded-objects.txt";
// The preload library writes <prefix>.<pid> here.
constexpr const char* kPreloadReportPrefix = "preload";

// The digest of a text file after normalize_text, read a line at a time.
Result<std::string> digest_normalized(const std::string& path, const compare::Masks& masks,
                                      const std::string& run_dir) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(path + ": cannot open");
  }
  compare::Digester digester;
  std::string line;
  while (std::getline(in, line)) {
    if (!in.eof()) {
      line += '\n';
    }
    digester.update(compare::normalize_text(line, masks, run_dir));
  }
  return digester.finish();
}

std::vector<std::string> base_environment(const std::string& label, const std::string& run_dir,
                                          const std::string& audit_library) {
  std::vector<std::string> env;
  std::string user_audit;
  std::string user_tunables;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text = *entry;
    if (text.rfind("MEMDET_RUN=", 0) == 0 || text.rfind("MEMDET_RUN_DIR=", 0) == 0 ||
        text.rfind("MEMDET_LOADED_OBJECTS=", 0) == 0) {
      continue;
    }
    if (!audit_library.empty() && text.rfind("LD_AUDIT=", 0) == 0) {
      user_audit = text.substr(9);
      continue;
    }
    if (!audit_library.empty() && text.rfind("GLIBC_TUNABLES=", 0) == 0) {
      user_tunables = text.substr(15);
      continue;
    }
    env.push_back(text);
  }
  env.push_back("MEMDET_RUN=" + label);
  env.push_back("MEMDET_RUN_DIR=" + run_dir);
  if (!audit_library.empty()) {
    // The user's own audit libraries keep working beside memdet's.
    env.push_back("LD_AUDIT=" + audit_library + (user_audit.empty() ? "" : ":" + user_audit));
    env.push_back("MEMDET_LOADED_OBJECTS=" + run_dir + "/" + kLoadedObjectsFile);
    // An audit library gets a linker namespace with its own libc, whose TLS
    // takes the static TLS surplus; a preloaded jemalloc then fails to load
    // ("cannot allocate memory in static TLS block", measured with glibc
    // 2.36). A larger optional surplus gives it back.
    env.push_back("GLIBC_TUNABLES=" + (user_tunables.empty() ? "" : user_tunables + ":") +
                  "glibc.rtld.optional_static_tls=4096");
  }
  return env;
}

// A campaign killed while it set up its store leaves campaign.db and its
// lock and nothing else: no run was made, so nothing is lost by starting
// again there. Removes those files unless another memdet holds the lock;
// true when the directory held only them.
bool clear_campaign_without_runs(const std::string& dir, std::string& error) {
  static const std::set<std::string> kStoreFiles = {
      "campaign.db", "campaign.db-wal", "campaign.db-shm", "campaign.db-journal", "campaign.lock"};
  std::error_code code;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, code)) {
    if (kStoreFiles.count(entry.path().filename().string()) == 0) {
      return false;
    }
  }
  if (code) {
    return false;
  }
  sys::ScopedFd lock(::open((dir + "/campaign.lock").c_str(), O_RDWR | O_CLOEXEC));
  if (lock.valid() && ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    error = dir + ": another memdet is setting up a campaign there; choose another --out";
    return false;
  }
  for (const std::string& name : kStoreFiles) {
    fs::remove(fs::path(dir) / name, code);
  }
  return true;
}

std::string make_campaign_dir(const std::string& requested, const std::string& report_name,
                              std::string& error) {
  std::error_code code;
  std::string dir = requested;
  if (dir.empty()) {
    char stamp[32];
    std::time_t now = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&now, &local);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
    // "check.json" names the campaign: .memdet/check-TIME.
    std::string kind = report_name.substr(0, report_name.find('.'));
    std::string base = ".memdet/" + kind + "-" + std::string(stamp);
    dir = base;
    for (int suffix = 2; fs::exists(dir, code); ++suffix) {
      dir = base + "-" + std::to_string(suffix);
    }
  } else {
    // Another campaign's records, finished or cut short, are never mixed
    // with this one's.
    if (fs::exists(fs::path(dir) / "campaign.db", code) &&
        !clear_campaign_without_runs(dir, error) && !error.empty()) {
      return {};
    }
    for (const char* marker : {"check.json", "isolate.json", "campaign.db"}) {
      if (fs::exists(fs::path(dir) / marker, code)) {
        error = dir + ": already holds a campaign (" + marker + "); choose another --out";
        return {};
      }
    }
  }
  fs::create_directories(dir, code);
  if (code) {
    error = dir + ": cannot create: " + code.message();
    return {};
  }
  return absolute_path(dir);
}

// Collects what one run wrote. Returns an input error for a malformed .npy.
Status collect_artifacts(const CheckOptions& options, const compare::Masks& masks, RunRecord& run) {
  if (options.include_stdout) {
    // A run's stdout often names its own directory, which differs in every
    // run by design; it is normalised away, as are the masks.
    std::string path = run.dir + "/stdout.txt";
    auto digest = compare::digest_file(path);
    if (digest) {
      digest = digest_normalized(path, masks, run.dir);
    }
    if (digest) {
      std::error_code code;
      ArtifactRecord artifact{"stdout", path, path, *digest, true, fs::file_size(path, code)};
      run.artifacts.push_back(artifact);
    } else {
      run.missing.push_back("stdout");
    }
  }

  for (const std::string& pattern : options.artifact_patterns) {
    std::vector<std::string> matches = expand(glob_pattern(pattern, run));
    bool any = false;
    for (const std::string& match : matches) {
      std::error_code code;
      if (!fs::is_regular_file(match, code)) {
        continue;
      }
      any = true;
      ArtifactRecord artifact;
      artifact.key = artifact_key(pattern, run.dir, match);
      if (artifact.key == "stdout") {
        // The captured stdout has this name already.
        artifact.key = "./stdout";
      }
      artifact.written = match;
      artifact.bytes = fs::file_size(match, code);
      auto digest = compare::digest_file(match);
      if (!digest) {
        return make_error(digest.error().message);
      }
      artifact.digest = *digest;
      artifact.kept = absolute_path(match);
      artifact.text = !looks_like_npy(match) && compare::looks_like_text(match);
      if (artifact.text && !masks.empty()) {
        auto masked = digest_normalized(match, masks, "");
        if (!masked) {
          return make_error(masked.error().message);
        }
        artifact.digest = *masked;
      }
      run.artifacts.push_back(artifact);
      // A run that failed may have died halfway through writing: its files
      // are evidence of the failure, not bad input.
      if (run.launch.succeeded() && looks_like_npy(match)) {
        auto header = compare::read_npy_header(match);
        if (!header) {
          return make_error(match + ": " + header.error().message);
        }
      }
    }
    if (!any) {
      run.missing.push_back(substitute(pattern, run.label, run.dir));
    }
  }
  std::sort(run.artifacts.begin(), run.artifacts.end(),
            [](const ArtifactRecord& a, const ArtifactRecord& b) { return a.key < b.key; });
  return {};
}

// Files that already match an artifact pattern would be mistaken for this
// run's output. An earlier run's output is already in the records (its
// digest, and a copy when its outcome was new), so it is removed; anything
// else is the user's and goes into this run's before/ folder.
// Only files move, never directories; and never the program or a file the
// command names (a pattern of '*' matches the training script too), unless
// an earlier run of this campaign created it: then it goes, so that every
// run starts from the folder the first one saw (a script's directory
// listing lands in its heap: Python caches it while importing).
Status clear_earlier_files(const CheckOptions& options, const std::string& campaign_dir,
                           const std::set<std::string>& written,
                           const std::set<std::string>& protected_files,
                           const std::set<std::string>& created, RunRecord& run) {
  std::set<std::string> used;
  for (const std::string& pattern : options.artifact_patterns) {
    for (const std::string& match : expand(glob_pattern(pattern, run))) {
      std::error_code code;
      std::string absolute = absolute_path(match);
      if (inside(match, run.dir) || fs::is_directory(fs::symlink_status(match, code))) {
        continue;
      }
      if (inside(absolute, campaign_dir)) {
        return make_error("--artifact " + pattern + " matches " + match +
                          ", which is memdet's own record in the campaign directory; name the "
                          "run's files with {run_dir}");
      }
      if (protected_files.count(absolute) != 0) {
        if (created.count(absolute) != 0) {
          fs::remove(match, code);
        }
        continue;
      }
      if (written.count(absolute) != 0) {
        fs::remove(match, code);
        continue;
      }
      std::string to = unique_path(run.dir + "/before/" + contained_path(match), used);
      if (move_file(match, to)) {
        run.moved_before.push_back(match);
      }
    }
  }
  return {};
}

// The first run of each outcome keeps a copy of what it wrote in its record
// directory, so that outcome can be compared and inspected after the user's
// files are gone or overwritten. The user's own files stay where the run
// wrote them.
Status keep_copies(RunRecord& run) {
  std::set<std::string> used;
  for (ArtifactRecord& artifact : run.artifacts) {
    if (inside(artifact.kept, run.dir)) {
      continue;
    }
    std::string copy =
        unique_path(run.dir + "/artifacts/" + contained_path(artifact.written), used);
    std::error_code code;
    fs::create_directories(fs::path(copy).parent_path(), code);
    if (!code) {
      fs::copy_file(artifact.written, copy, fs::copy_options::overwrite_existing, code);
    }
    if (code) {
      std::error_code ignored;
      fs::remove(copy, ignored);
      return make_error("cannot keep a copy of " + artifact.written + " in " + copy + ": " +
                        code.message());
    }
    artifact.kept = copy;
    // A trace's saved tensors travel with it: the trace report reads them.
    fs::path tensors = fs::path(artifact.written).parent_path() / compare::kTraceTensorDir;
    if (fs::path(artifact.written).filename() == compare::kTraceFileName &&
        fs::is_directory(tensors, code)) {
      fs::copy(tensors, fs::path(copy).parent_path() / compare::kTraceTensorDir,
               fs::copy_options::recursive | fs::copy_options::overwrite_existing, code);
      if (code) {
        return make_error("cannot keep a copy of " + tensors.string() + ": " + code.message());
      }
    }
  }
  return {};
}

// Runs whose outcome an earlier run already has keep nothing outside their
// record directory.
void forget_outside_copies(RunRecord& run) {
  for (ArtifactRecord& artifact : run.artifacts) {
    if (!inside(artifact.kept, run.dir)) {
      artifact.kept.clear();
    }
  }
}

std::string outcome_signature(const RunRecord& run) {
  std::string joined;
  for (const ArtifactRecord& artifact : run.artifacts) {
    joined += artifact.key + '\0' + artifact.digest + '\0';
  }
  return compare::digest_bytes(joined);
}

std::string describe_npy(const std::string& path) {
  auto header = compare::read_npy_header(path);
  if (!header) {
    return "unreadable";
  }
  std::string shape = "(";
  for (size_t i = 0; i < header->shape.size(); ++i) {
    shape += (i ? ", " : "") + std::to_string(header->shape[i]);
  }
  shape += header->shape.size() == 1 ? ",)" : ")";
  return header->descr + (header->fortran_order ? " Fortran-order " : " ") + shape;
}

compare::TextOptions text_options(const CheckOptions& options) {
  compare::TextOptions text;
  text.masks = options.masks;
  text.step_regex = options.step_regex;
  if (options.dtype == "f32") {
    text.dtype = compare::TextOptions::Dtype::kFloat32;
  } else if (options.dtype == "f64") {
    text.dtype = compare::TextOptions::Dtype::kFloat64;
  }
  return text;
}

ArtifactComparison compare_artifact(const ArtifactRecord* reference, const ArtifactRecord* other,
                                    const std::string& key, const CheckOptions& options,
                                    const RunRecord& reference_run, const RunRecord& other_run,
                                    std::string& input_error) {
  ArtifactComparison comparison;
  comparison.key = key;
  if (reference == nullptr || other == nullptr) {
    comparison.kind = ArtifactComparison::Kind::kMissing;
    comparison.note = reference == nullptr ? "only in this outcome" : "absent in this outcome";
    return comparison;
  }
  comparison.reference_path = reference->kept;
  comparison.other_path = other->kept;
  if (reference->digest == other->digest) {
    comparison.kind = ArtifactComparison::Kind::kSame;
    return comparison;
  }
  comparison.kind = ArtifactComparison::Kind::kDigestDiffers;
  // A copy dropped (--keep none) or gone since (a campaign directory moved
  // or pruned) leaves the digests alone to compare.
  std::error_code gone;
  for (const auto& [artifact, run] :
       {std::pair{reference, &reference_run}, std::pair{other, &other_run}}) {
    if (artifact->kept.empty() || !fs::is_regular_file(artifact->kept, gone)) {
      comparison.note = "compared by digest: run " + run->label + " keeps no copy" +
                        (artifact->kept.empty() ? "" : " at " + artifact->kept);
      return comparison;
    }
  }
  if (compare::looks_like_trace(reference->kept) && compare::looks_like_trace(other->kept)) {
    auto trace_a = compare::read_trace(reference->kept);
    auto trace_b = trace_a ? compare::read_trace(other->kept) : trace_a;
    if (!trace_a || !trace_b) {
      input_error = (!trace_a ? trace_a : trace_b).error().message;
    } else {
      comparison.kind = ArtifactComparison::Kind::kTrace;
      comparison.trace = compare::compare_traces(*trace_a, *trace_b, compare::Tolerance{});
    }
  } else if (reference->text && other->text) {
    // Only the captured stdout names its run directory by design; an
    // artifact's text is taken as written.
    bool is_stdout = key == "stdout";
    auto text =
        compare::compare_text(reference->kept, other->kept, text_options(options),
                              is_stdout ? reference_run.dir : "", is_stdout ? other_run.dir : "");
    if (text) {
      comparison.kind = ArtifactComparison::Kind::kText;
      comparison.text = *text;
    } else {
      comparison.note = "not compared as text: " + text.error().message;
    }
  } else if (looks_like_npy(reference->kept) && looks_like_npy(other->kept)) {
    compare::CompareOptions npy_options;
    if (auto raw = compare::parse_raw_dtype(options.dtype)) {
      npy_options.dtype = *raw;
    }
    auto numeric = compare::compare_npy(reference->kept, other->kept, npy_options);
    if (!numeric) {
      input_error = numeric.error().message;
    } else if (numeric->has_value()) {
      comparison.kind = ArtifactComparison::Kind::kNumeric;
      comparison.numeric = **numeric;
    } else {
      comparison.note = "compared by digest: " + describe_npy(reference->kept) + " vs " +
                        describe_npy(other->kept) +
                        " (element by element needs one numeric dtype, one shape and one "
                        "memory order)";
    }
  } else if (auto raw = compare::parse_raw_dtype(options.dtype)) {
    auto numeric = compare::compare_raw(reference->kept, other->kept, *raw);
    if (numeric) {
      comparison.kind = ArtifactComparison::Kind::kNumeric;
      comparison.numeric = *numeric;
    } else {
      comparison.note = "not compared as raw " + options.dtype + ": " + numeric.error().message;
    }
  }
  if (has_tolerance(options.tolerance) && input_error.empty() &&
      comparison.kind != ArtifactComparison::Kind::kText &&
      comparison.kind != ArtifactComparison::Kind::kTrace && is_tensor_file(reference->kept) &&
      is_tensor_file(other->kept)) {
    auto tensors = compare::diff_paths(reference->kept, other->kept, options.tolerance);
    if (!tensors) {
      input_error = tensors.error().message;
    } else {
      comparison.tolerance_checked = true;
      comparison.within_tolerance = tensors->verdict != compare::Verdict::kDiffer;
    }
  }
  return comparison;
}

// Whether every artifact of the two runs is the same, or within tolerance.
bool comparisons_within_tolerance(const std::vector<ArtifactComparison>& comparisons) {
  for (const ArtifactComparison& comparison : comparisons) {
    if (comparison.kind != ArtifactComparison::Kind::kSame && !comparison.within_tolerance) {
      return false;
    }
  }
  return true;
}

std::vector<ArtifactComparison> compare_runs(const RunRecord& reference_run,
                                             const RunRecord& other_run,
                                             const CheckOptions& options,
                                             std::string& input_error) {
  std::map<std::string, std::pair<const ArtifactRecord*, const ArtifactRecord*>> pairs;
  for (const ArtifactRecord& artifact : reference_run.artifacts) {
    pairs[artifact.key].first = &artifact;
  }
  for (const ArtifactRecord& artifact : other_run.artifacts) {
    pairs[artifact.key].second = &artifact;
  }
  std::vector<ArtifactComparison> comparisons;
  for (const auto& [key, pair] : pairs) {
    std::string error;
    comparisons.push_back(
        compare_artifact(pair.first, pair.second, key, options, reference_run, other_run, error));
    if (!error.empty() && input_error.empty()) {
      input_error = error;
    }
  }
  return comparisons;
}

// `reference_run`: the run whose outcome is the reference; 0: the most
// common outcome, a tie going to the earliest.
void group_outcomes(CheckReport& report, int reference_run) {
  std::map<std::string, int> by_signature;
  for (RunRecord& run : report.runs) {
    if (!run.completed()) {
      continue;
    }
    std::string signature = outcome_signature(run);
    auto [it, fresh] = by_signature.emplace(signature, static_cast<int>(report.outcomes.size()));
    if (fresh) {
      OutcomeGroup group;
      group.signature = signature;
      report.outcomes.push_back(std::move(group));
    }
    run.outcome = it->second;
    report.outcomes[static_cast<size_t>(it->second)].runs.push_back(run.index);
  }

  if (reference_run > 0 && static_cast<size_t>(reference_run) <= report.runs.size() &&
      report.runs[static_cast<size_t>(reference_run - 1)].outcome >= 0) {
    report.reference = report.runs[static_cast<size_t>(reference_run - 1)].outcome;
    report.reference_run = reference_run;
    return;
  }
  for (size_t i = 0; i < report.outcomes.size(); ++i) {
    if (report.reference < 0 ||
        report.outcomes[i].runs.size() >
            report.outcomes[static_cast<size_t>(report.reference)].runs.size()) {
      report.reference = static_cast<int>(i);
    }
  }
}

const RunRecord& run_by_index(const CheckReport& report, int index) {
  return report.runs[static_cast<size_t>(index - 1)];
}

void compare_outcomes(CheckReport& report) {
  if (report.reference < 0) {
    return;
  }
  const OutcomeGroup& reference = report.outcomes[static_cast<size_t>(report.reference)];
  const RunRecord& reference_run = run_by_index(report, reference.runs.front());
  std::optional<measure::RunFingerprint> reference_fingerprint;
  if (report.options.fingerprint) {
    // Against the reference run itself, when one was named: the first run
    // of its outcome may have been made under other factors.
    const RunRecord& named =
        report.reference_run > 0 ? run_by_index(report, report.reference_run) : reference_run;
    reference_fingerprint = measure::read_run_fingerprint(named.dir, named.launch.pid);
  }
  for (size_t i = 0; i < report.outcomes.size(); ++i) {
    if (static_cast<int>(i) == report.reference) {
      continue;
    }
    OutcomeGroup& group = report.outcomes[i];
    const RunRecord& other_run = run_by_index(report, group.runs.front());
    if (reference_fingerprint) {
      measure::FingerprintComparison fingerprints = measure::compare_fingerprints(
          *reference_fingerprint,
          measure::read_run_fingerprint(other_run.dir, other_run.launch.pid));
      group.fingerprint_lines = measure::describe_comparison(fingerprints);
      group.fingerprint_json = measure::comparison_json(fingerprints).dump();
    }
    group.vs_reference = compare_runs(reference_run, other_run, report.options, report.input_error);
    group.within_tolerance =
        has_tolerance(report.options.tolerance) && comparisons_within_tolerance(group.vs_reference);
  }
}

// Removes a copy the record holds, and the folders it leaves empty up to
// the run directory; fs::remove refuses a folder that still holds anything.
void remove_kept(ArtifactRecord& artifact, const RunRecord& run) {
  std::error_code code;
  fs::remove(artifact.kept, code);
  for (fs::path dir = fs::path(artifact.kept).parent_path();
       dir.string().size() > run.dir.size() && fs::remove(dir, code); dir = dir.parent_path()) {
  }
  artifact.kept.clear();
}

// One copy of each distinct outcome is enough to compare and replay; the
// digests of every run stay in the records.
void drop_duplicate_copies(CheckReport& report) {
  for (const OutcomeGroup& group : report.outcomes) {
    for (size_t i = 1; i < group.runs.size(); ++i) {
      RunRecord& run = report.runs[static_cast<size_t>(group.runs[i] - 1)];
      for (ArtifactRecord& artifact : run.artifacts) {
        if (artifact.key == "stdout" || !inside(artifact.kept, run.dir)) {
          continue;
        }
        remove_kept(artifact, run);
      }
    }
  }
}

// --keep none: the copies served the comparison; only digests and the
// captured streams stay.
void drop_all_copies(CheckReport& report) {
  for (RunRecord& run : report.runs) {
    for (ArtifactRecord& artifact : run.artifacts) {
      if (artifact.key == "stdout" || artifact.kept.empty() || !inside(artifact.kept, run.dir)) {
        continue;
      }
      remove_kept(artifact, run);
    }
  }
}

void decide(CheckReport& report) {
  report.completed_runs = 0;
  report.failed_runs = 0;
  for (const RunRecord& run : report.runs) {
    (run.completed() ? report.completed_runs : report.failed_runs)++;
  }
  bool all_within = report.outcomes.size() > 1 && report.completed_runs >= 2;
  for (size_t i = 0; i < report.outcomes.size(); ++i) {
    if (static_cast<int>(i) != report.reference && !report.outcomes[i].within_tolerance) {
      all_within = false;
    }
  }
  if (all_within) {
    report.verdict = Verdict::kWithinTolerance;
  } else if (report.outcomes.size() > 1) {
    report.verdict = Verdict::kDiffers;
  } else if (report.completed_runs >= 2) {
    report.verdict = Verdict::kNoDifferenceSeen;
  } else {
    report.verdict = Verdict::kTooFewRuns;
  }
}

void summarize_counters(CheckReport& report) {
  std::vector<measure::RunFigures> runs;
  for (const RunRecord& run : report.runs) {
    if (run.completed() && run.launch.counters.measured) {
      runs.push_back(run_figures(run));
    }
  }
  report.counters = measure::summarize_counters(runs, report.options.counter_rule);
}

}  // namespace

bool has_tolerance(const compare::Tolerance& tolerance) {
  return tolerance.atol > 0 || tolerance.rtol > 0 || tolerance.max_ulp > 0 || tolerance.equal_nan;
}

bool same_within_tolerance(const RunRecord& reference, const RunRecord& other,
                           const CheckOptions& options, std::string& input_error) {
  return has_tolerance(options.tolerance) &&
         comparisons_within_tolerance(compare_runs(reference, other, options, input_error));
}

measure::RunFigures run_figures(const RunRecord& run) {
  measure::RunFigures figures;
  figures.run = run.index;
  for (const measure::CounterValue& counter : run.launch.counters.counters) {
    if (counter.supported) {
      figures.figures.push_back({counter.name, counter.unit, counter.value()});
    }
  }
  const launch::LaunchResult& launched = run.launch;
  auto add = [&](const char* name, const char* unit, double value) {
    figures.figures.push_back({name, unit, value});
  };
  add("rusage:minor_faults", "", static_cast<double>(launched.minor_faults));
  add("rusage:major_faults", "", static_cast<double>(launched.major_faults));
  add("rusage:voluntary_switches", "", static_cast<double>(launched.voluntary_switches));
  add("rusage:involuntary_switches", "", static_cast<double>(launched.involuntary_switches));
  add("wall-time", "s", launched.wall_seconds);
  return figures;
}

double no_difference_bound(int matching_runs) {
  if (matching_runs < 2) {
    return 1.0;
  }
  return 1.0 - std::pow(0.05, 1.0 / static_cast<double>(matching_runs - 1));
}

int runs_for_bound(double probability) {
  return 1 + static_cast<int>(std::ceil(std::log(0.05) / std::log(1.0 - probability)));
}

bool CheckReport::timing_varied_results_did_not() const {
  if (verdict != Verdict::kNoDifferenceSeen || !input_error.empty()) {
    return false;
  }
  for (const measure::CounterSummary& summary : counters) {
    if (summary.flagged) {
      return true;
    }
  }
  return false;
}

double CheckReport::difference_bound() const { return no_difference_bound(completed_runs); }

int CheckReport::exit_status() const {
  if (!input_error.empty()) {
    return 2;
  }
  if (interrupted_by != 0) {
    return 130;
  }
  if (failed_runs > 0) {
    return 3;
  }
  if (verdict == Verdict::kDiffers) {
    return 1;
  }
  return 0;
}

Result<Campaign> Campaign::prepare(const CheckOptions& options, int max_runs) {
  Campaign campaign;
  CheckReport& report = campaign.report_;
  campaign.max_runs_ = max_runs;
  report.options = options;
  report.command = options.command;
  report.started_unix = static_cast<double>(std::time(nullptr));

  if (options.command.empty()) {
    return make_error("no command given after --");
  }
  for (const std::string& pattern : options.artifact_patterns) {
    if (pattern.empty() || pattern == "--") {
      return make_error("--artifact needs a file or glob pattern, got '" + pattern + "'");
    }
  }
  if (auto failure = launch::resolve_executable(options.command[0], report.executable)) {
    return make_error(failure->message);
  }

  auto compiled = compare::compile_masks(options.masks);
  if (!compiled) {
    return make_error("--mask: " + compiled.error().message);
  }
  campaign.masks_ = std::make_shared<const compare::Masks>(std::move(*compiled));
  if (!options.step_regex.empty()) {
    auto step = compare::compile_step_regex(options.step_regex);
    if (!step) {
      return make_error("--step-regex: " + step.error().message);
    }
  }
  if (!options.dtype.empty() && !compare::parse_raw_dtype(options.dtype)) {
    return make_error("--dtype '" + options.dtype + "': expected f16, bf16, f32 or f64");
  }
  report.host = host::read_host_info();
  if (options.record_libraries) {
    report.audit_library = host::audit_library_path();
  }
  return campaign;
}

void Campaign::protect_command_files() {
  protected_files_ = {absolute_path(report_.executable)};
  for (const std::string& arg : report_.options.command) {
    protected_files_.insert(absolute_path(arg));
  }
}

Result<Campaign> Campaign::open(const CheckOptions& options, int max_runs,
                                const std::string& report_name) {
  auto prepared = prepare(options, max_runs);
  if (!prepared) {
    return prepared.error();
  }
  Campaign& campaign = *prepared;
  CheckReport& report = campaign.report_;

  std::string error;
  std::error_code existed_code;
  campaign.dir_existed_ = !options.out_dir.empty() && fs::exists(options.out_dir, existed_code);
  report.campaign_dir = make_campaign_dir(options.out_dir, report_name, error);
  if (report.campaign_dir.empty()) {
    return make_error(error);
  }

  campaign.protect_command_files();
  // Files the command names that do not exist yet: the runs create them.
  for (const std::string& file : campaign.protected_files_) {
    std::error_code code;
    if (!fs::exists(fs::symlink_status(file, code))) {
      campaign.created_.insert(file);
    }
  }
  return prepared;
}

Result<Campaign> Campaign::resume(const CheckOptions& options, int max_runs,
                                  std::vector<RunRecord> stored, std::set<std::string> created) {
  auto prepared = prepare(options, max_runs);
  if (!prepared) {
    return prepared.error();
  }
  Campaign& campaign = *prepared;
  CheckReport& report = campaign.report_;
  campaign.dir_existed_ = true;
  report.campaign_dir = absolute_path(options.out_dir);
  campaign.protect_command_files();
  campaign.created_ = std::move(created);

  std::error_code code;
  const std::string cwd = fs::current_path(code).string();
  for (size_t i = 0; i < stored.size(); ++i) {
    const RunRecord& run = stored[i];
    const int index = static_cast<int>(i) + 1;
    if (run.index != index || run.label != run_label(index, max_runs)) {
      return make_error("stored run " + std::to_string(i + 1) + " is numbered " + run.label +
                        ": the stored runs are out of order");
    }
    // Relative artifact patterns and the command's files resolve against
    // the working directory.
    if (run.cwd != cwd) {
      return make_error("the campaign ran in " + run.cwd + ", not in " + cwd +
                        ": resume it from there");
    }
  }
  // The stored outcomes hold only for the program that made them.
  if (!stored.empty()) {
    const host::ProgramRecord& then = stored.back().program;
    const host::ProgramRecord now = host::identify_program(report.executable, stored.back().argv);
    if (now.executable != then.executable || now.digest != then.digest) {
      return make_error("the program changed since the stored runs: " + now.executable +
                        " has digest " + now.digest + ", the stored runs ran " + then.executable +
                        " with digest " + then.digest);
    }
    if (now.script != then.script || now.script_digest != then.script_digest) {
      return make_error("the script changed since the stored runs: " + now.script + " has digest " +
                        now.script_digest + ", the stored runs ran " + then.script +
                        " with digest " + then.script_digest);
    }
  }

  // The run in progress when the campaign stopped left a directory and no
  // stored record; it is made again under its number.
  for (const auto& entry : fs::directory_iterator(report.campaign_dir, code)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("run-", 0) != 0 || name.size() == 4 ||
        name.find_first_not_of("0123456789", 4) != std::string::npos ||
        std::strtoll(name.c_str() + 4, nullptr, 10) <= static_cast<long long>(stored.size())) {
      continue;
    }
    // What it wrote outside its directory is removed before the run is
    // made again, as an earlier run's output is, not kept as the user's.
    auto text = sys::read_small_file((entry.path() / "record.json").string());
    auto record = text ? report::read_run_json(nlohmann::json::parse(*text, nullptr, false))
                       : Result<RunRecord>(make_error("no record"));
    if (record) {
      for (const ArtifactRecord& artifact : record->artifacts) {
        campaign.written_.insert(absolute_path(artifact.written));
      }
    }
    std::error_code removed;
    fs::remove_all(entry.path(), removed);
    if (removed) {
      return make_error(entry.path().string() +
                        ": cannot remove the unfinished run: " + removed.message());
    }
  }
  if (code) {
    return make_error(report.campaign_dir + ": cannot list: " + code.message());
  }
  campaign.stored_ = std::move(stored);
  return prepared;
}

void Campaign::discard() {
  if (!dir_existed_ && report_.runs.empty()) {
    std::error_code ignored;
    fs::remove(report_.campaign_dir, ignored);
  }
}

// The run as its factors plan it: command, environment, controls and
// everything the factors add. What is left for the caller is where the
// output goes, the timeout and stdin.
Result<launch::LaunchSpec> Campaign::plan(const RunRequest& request, int, const std::string& label,
                                          const std::string& dir,
                                          factors::RunFactors& planned) const {
  const CheckOptions& options = report_.options;
  launch::LaunchSpec spec;
  spec.executable = report_.executable;
  for (const std::string& arg : options.command) {
    spec.argv.push_back(substitute(arg, label, dir));
  }
  spec.env = base_environment(label, dir, report_.audit_library);
  for (const auto& [name, value] : request.env) {
    const std::string prefix = name + "=";
    auto same = [&](const std::string& entry) { return entry.rfind(prefix, 0) == 0; };
    spec.env.erase(std::remove_if(spec.env.begin(), spec.env.end(), same), spec.env.end());
    spec.env.push_back(prefix + value);
  }
  spec.controls = options.controls;
  spec.measure_counters = options.measure_counters;
  planned = factors::plan_run(*request.profile, options.host, request.perturbed);
  for (const auto& [key, value] : request.preload) {
    planned.plan.preload[key] = value;
    planned.plan.needs_preload = true;
  }
  factors::PreloadUse use{true, dir + "/" + kPreloadReportPrefix};
  factors::FingerprintUse fingerprint;
  if (options.fingerprint) {
    fingerprint.dir = dir;
    fingerprint.threshold = options.fingerprint_threshold;
  }
  Status finished =
      factors::finish_launch(planned.plan, options.host, use, fingerprint, spec, planned);
  if (!finished) {
    return finished.error();
  }
  return spec;
}

Status Campaign::rehearse(const RunRequest& request, int index) const {
  const std::string label = run_label(index, max_runs_);
  factors::RunFactors planned;
  auto ready = plan(request, index, label, report_.campaign_dir + "/run-" + label, planned);
  if (!ready) {
    return ready.error();
  }
  return {};
}

bool Campaign::stopped() const {
  return !report_.input_error.empty() || report_.interrupted_by != 0;
}

Result<const RunRecord*> Campaign::replay(const RunRequest& request, int index) {
  RunRecord run = std::move(stored_[static_cast<size_t>(index - 1)]);
  auto made_for = [](const std::string& phase, const std::string& factor, int perturbed) {
    return phase + (factor.empty() ? "" : " " + factor) +
           (perturbed > 0 ? " value " + std::to_string(perturbed) : "");
  };
  if (run.phase != request.phase || run.factor != request.factor ||
      run.perturbed != request.perturbed) {
    return make_error("stored run " + run.label + " was made for " +
                      made_for(run.phase, run.factor, run.perturbed) +
                      ", and the campaign now asks for " +
                      made_for(request.phase, request.factor, request.perturbed) +
                      ": the stored runs are not this campaign's");
  }

  // A run made now must start where the stored ones did: a variable added
  // to the environment would move every stack.
  factors::RunFactors planned;
  auto spec = plan(request, index, run.label, run.dir, planned);
  if (!spec) {
    return spec.error();
  }
  const size_t footprint =
      launch::exec_footprint(spec->executable, spec->argv, spec->env) - planned.plan.stack_extra;
  if (footprint != run.footprint) {
    return make_error("run " + run.label + " started with " + std::to_string(run.footprint) +
                      " bytes of argv and environment, and would now start with " +
                      std::to_string(footprint) +
                      ": the environment differs from the one the campaign began in");
  }
  footprints_.emplace(request.footprint_group, std::make_pair(footprint, run.label));

  if (run.completed()) {
    signatures_.insert(outcome_signature(run));
  }
  for (ArtifactRecord& artifact : run.artifacts) {
    written_.insert(absolute_path(artifact.written));
    std::error_code code;
    if (!artifact.kept.empty() && !fs::exists(artifact.kept, code)) {
      artifact.kept.clear();
    }
  }
  ++replayed_;
  report_.runs.push_back(std::move(run));
  return &report_.runs.back();
}

Result<const RunRecord*> Campaign::run(const RunRequest& request) {
  const CheckOptions& options = report_.options;
  CheckReport& report = report_;
  const int index = static_cast<int>(report.runs.size()) + 1;
  if (static_cast<size_t>(index) <= stored_.size()) {
    return replay(request, index);
  }
  RunRecord run;
  run.index = index;
  run.label = run_label(index, max_runs_);
  run.dir = report.campaign_dir + "/run-" + run.label;
  run.phase = request.phase;
  run.factor = request.factor;
  std::error_code code;
  fs::create_directories(run.dir, code);
  if (code) {
    return make_error(run.dir + ": cannot create: " + code.message());
  }
  run.cwd = fs::current_path(code).string();

  run.perturbed = request.perturbed;
  auto planned = plan(request, index, run.label, run.dir, run.factors);
  if (!planned) {
    return planned.error();
  }
  launch::LaunchSpec spec = std::move(*planned);
  run.argv = spec.argv;
  spec.timeout_seconds = options.timeout_seconds;
  spec.stdin_mode = options.stdin_mode;
  auto mode =
      options.show_output ? launch::OutputSpec::Mode::kTee : launch::OutputSpec::Mode::kFile;
  spec.stdout_spec = {mode, run.dir + "/stdout.txt", options.echo_to_stderr};
  spec.stderr_spec = {mode, run.dir + "/stderr.txt"};

  // Equal labels, equal-length directories and fixed-width factor
  // variables make this hold; if it did not, runs would start from
  // different stack addresses. Only a perturbed stack may move it.
  const size_t footprint =
      launch::exec_footprint(spec.executable, spec.argv, spec.env) - run.factors.plan.stack_extra;
  run.footprint = footprint;
  auto [known, fresh] =
      footprints_.emplace(request.footprint_group, std::make_pair(footprint, run.label));
  if (!fresh && known->second.first != footprint) {
    return make_error("run " + run.label + " would start with " + std::to_string(footprint) +
                      " bytes of argv and environment, run " + known->second.second + " with " +
                      std::to_string(known->second.first) +
                      "; the command's placeholders must expand to equal lengths");
  }

  Status cleared =
      clear_earlier_files(options, report.campaign_dir, written_, protected_files_, created_, run);
  if (!cleared) {
    // Nothing ran: the folder made for this run goes again.
    std::error_code ignored;
    fs::remove_all(run.dir, ignored);
    return cleared.error();
  }
  run.program = host::identify_program(report.executable, run.argv);
  run.numeric_env = host::numeric_environment(spec.env);
  factors::RunNoise noise(run.factors);
  spec.spare_children = noise.pids();
  auto launched = launch::launch(spec);
  noise.stop();
  if (!launched) {
    return make_error(launched.error().message);
  }
  run.launch = std::move(*launched);
  if (run.factors.plan.needs_preload) {
    run.preload =
        factors::read_preload_report(run.dir + "/" + kPreloadReportPrefix, run.launch.pid);
    run.descendant_preloads =
        factors::read_descendant_reports(run.dir + "/" + kPreloadReportPrefix, run.launch.pid);
  }
  factors::Observation seen{&run.launch, &run.preload, &run.argv, &options.host,
                            &run.descendant_preloads};
  factors::verify_run(*request.profile, seen, run.factors);
  noise.record(run.factors);
  const size_t reference = request.reference_run > 0    ? static_cast<size_t>(request.reference_run)
                           : request.reference_run == 0 ? 1
                                                        : 0;
  if (reference > 0 && reference <= report.runs.size()) {
    run.factor_problems =
        factors::compare_with_reference(report.runs[reference - 1].factors, run.factors);
  }
  if (!options.record_libraries) {
    run.loaded.note = "not asked for (--no-library-record)";
    run.loaded.blas_name = run.loaded.allocator = "not recorded";
  } else if (report.audit_library.empty()) {
    run.loaded.note = "libmemdet-audit.so was not found beside the memdet binary";
    run.loaded.blas_name = run.loaded.allocator = "not recorded";
  } else {
    run.loaded = host::read_loaded_libraries(run.dir + "/" + kLoadedObjectsFile);
    host::require_program(run.loaded, run.program.executable);
  }
  Status collected = collect_artifacts(options, *masks_, run);
  if (!collected) {
    report.input_error = collected.error().message;
  }
  bool new_outcome = run.completed() && report.input_error.empty() &&
                     signatures_.insert(outcome_signature(run)).second;
  if (new_outcome || options.keep == CheckOptions::Keep::kAll) {
    Status kept = keep_copies(run);
    if (!kept) {
      report.input_error = kept.error().message;
    }
  } else {
    forget_outside_copies(run);
  }
  for (const ArtifactRecord& artifact : run.artifacts) {
    written_.insert(absolute_path(artifact.written));
  }
  report.runs.push_back(std::move(run));
  RunRecord& done = report.runs.back();
  report::write_run_record(done);

  // A control the host refuses, or a command that cannot be executed, will
  // fail the same way in every run: stop before running the rest.
  if (report.input_error.empty() && (done.launch.outcome == launch::Outcome::kControlFailed ||
                                     done.launch.outcome == launch::Outcome::kExecFailed)) {
    report.input_error = done.launch.message;
  }
  if (report.input_error.empty()) {
    if (done.launch.interrupted_by != 0) {
      report.interrupted_by = done.launch.interrupted_by;
    } else if (options.interrupt != nullptr && *options.interrupt != 0) {
      report.interrupted_by = *options.interrupt;
    }
  }
  return &done;
}

std::string Campaign::signature(const RunRecord& run) { return outcome_signature(run); }

CheckReport Campaign::finish(int reference_run) {
  CheckReport& report = report_;
  group_outcomes(report, reference_run);
  compare_outcomes(report);
  // A campaign cut short keeps its copies: a resumed one compares with them.
  const bool cut_short = report.interrupted_by != 0;
  if (!cut_short && report.options.keep == CheckOptions::Keep::kDiverged) {
    drop_duplicate_copies(report);
  } else if (!cut_short && report.options.keep == CheckOptions::Keep::kNone) {
    drop_all_copies(report);
  }
  decide(report);
  summarize_counters(report);
  // The records written as each run ended did not yet know its outcome.
  for (const RunRecord& run : report.runs) {
    report::write_run_record(run);
  }
  return report;
}

Result<CheckReport> run_check(const CheckOptions& options) {
  auto opened = Campaign::open(options, options.runs);
  if (!opened) {
    return opened.error();
  }
  Campaign& campaign = *opened;
  const bool perturbed = options.profile.any_perturbed();
  // With a perturbed factor, run 1 is the reference: every factor at its
  // pinned value; each further run takes the next perturbed value.
  auto request = [&](int index) {
    RunRequest ask;
    ask.profile = &options.profile;
    ask.perturbed = perturbed ? index - 1 : 0;
    ask.reference_run = 1;
    return ask;
  };
  // Every run's factor plan is carried out on paper first, so a value the
  // launch cannot take stops the campaign before it runs anything.
  for (int index = 1; index <= (perturbed ? options.runs : 1); ++index) {
    Status ready = campaign.rehearse(request(index), index);
    if (!ready) {
      campaign.discard();
      return ready.error();
    }
  }

  if (options.on_start != nullptr) {
    options.on_start(campaign.report());
  }

  int first_outcome_run = 0;
  std::string first_signature;
  bool stopped_early = false;
  std::string stopped_early_error;
  for (int index = 1; index <= options.runs; ++index) {
    auto made = campaign.run(request(index));
    if (!made) {
      // The runs so far stay in the records and the report.
      if (campaign.report().runs.empty()) {
        return made.error();
      }
      stopped_early_error = made.error().message;
      break;
    }
    const RunRecord& done = **made;
    if (options.on_run_done != nullptr) {
      options.on_run_done(done, options.runs);
    }
    if (campaign.stopped()) {
      break;
    }
    if (options.stop_at_first_difference && done.completed()) {
      if (first_outcome_run == 0) {
        first_outcome_run = index;
        first_signature = Campaign::signature(done);
      } else if (Campaign::signature(done) != first_signature) {
        stopped_early = index < options.runs;
        break;
      }
    }
  }
  CheckReport report = campaign.finish(perturbed ? 1 : 0);
  report.stopped_early = stopped_early;
  if (report.input_error.empty()) {
    report.input_error = stopped_early_error;
  }
  return report;
}

}  // namespace memdet::protocol
