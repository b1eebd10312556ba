#include "measure/fingerprint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/sys.h"
#include "preload/fingerprint_file.h"

namespace memdet::measure {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPrefix = "fingerprint.";

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    fields.push_back(
        line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) {
      return fields;
    }
    start = tab + 1;
  }
}

bool to_number(const std::string& text, uint64_t& value, int base = 10) {
  if (text.empty()) {
    return false;
  }
  char* end = nullptr;
  value = std::strtoull(text.c_str(), &end, base);
  return end != nullptr && *end == '\0';
}

uint64_t number_or(const std::string& text, uint64_t fallback, int base = 10) {
  uint64_t value = 0;
  return to_number(text, value, base) ? value : fallback;
}

long long kb_or_unknown(const std::string& text) {
  uint64_t value = 0;
  return to_number(text, value) ? static_cast<long long>(value) : -1;
}

Result<KeptAllocation> parse_kept(const std::vector<std::string>& fields) {
  // key ordinal index kind size address page_offset caller
  if (fields.size() != 8) {
    return make_error("a kept allocation needs 8 fields");
  }
  KeptAllocation kept;
  kept.thread = fields[1];
  uint64_t kind = 0;
  if (!to_number(fields[2], kept.index) || !to_number(fields[3], kind) ||
      !to_number(fields[4], kept.size) || !to_number(fields[5], kept.address, 16) ||
      !to_number(fields[6], kept.page_offset)) {
    return make_error("a kept allocation has a field that is not a number");
  }
  kept.kind = static_cast<int>(kind);
  kept.caller = fields[7];
  return kept;
}

ThreadSequence* find_thread(ProcessFingerprint& process, const std::string& ordinal) {
  for (ThreadSequence& thread : process.threads) {
    if (thread.ordinal == ordinal) {
      return &thread;
    }
  }
  return nullptr;
}

const char* kind_name(int kind) {
  switch (kind) {
    case 1:
      return "malloc";
    case 2:
      return "calloc";
    case 3:
      return "realloc";
    case 4:
      return "aligned";
    case 5:
      return "new";
    default:
      return "allocation";
  }
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string region_text(const Region& region) {
  return "0x" + hex(region.start) + " " + std::to_string(region.size) + " bytes " + region.perms +
         " " + region.path;
}

std::string allocation_text(const std::optional<KeptAllocation>& kept) {
  if (!kept) {
    return "none";
  }
  return std::to_string(kept->size) + " bytes (" + kind_name(kept->kind) + " from " + kept->caller +
         ")";
}

// The kept entries of one thread, by index.
std::map<uint64_t, const KeptAllocation*> by_index(const std::vector<KeptAllocation>& entries,
                                                   const std::string& ordinal) {
  std::map<uint64_t, const KeptAllocation*> map;
  for (const KeptAllocation& kept : entries) {
    if (kept.thread == ordinal) {
      map.emplace(kept.index, &kept);
    }
  }
  return map;
}

bool same_allocation(const KeptAllocation* a, const KeptAllocation* b) {
  return a != nullptr && b != nullptr && a->size == b->size && a->kind == b->kind;
}

std::optional<KeptAllocation> copy(const KeptAllocation* kept) {
  if (kept == nullptr) {
    return std::nullopt;
  }
  return *kept;
}

// Where thread `ordinal` of a and b first differ in sizes.
Divergence locate(const ProcessFingerprint& a, const ProcessFingerprint& b,
                  const std::string& ordinal) {
  Divergence divergence;
  divergence.thread = ordinal;
  const ThreadSequence* thread_a = a.thread(ordinal);
  const ThreadSequence* thread_b = b.thread(ordinal);
  uint64_t count_a = thread_a != nullptr ? thread_a->count : 0;
  uint64_t count_b = thread_b != nullptr ? thread_b->count : 0;

  // The first entries: exact while both sides kept them.
  auto first_a = by_index(a.first, ordinal);
  auto first_b = by_index(b.first, ordinal);
  uint64_t index = 0;
  for (;; ++index) {
    auto in_a = first_a.find(index);
    auto in_b = first_b.find(index);
    bool kept_a = in_a != first_a.end();
    bool kept_b = in_b != first_b.end();
    if (!kept_a && !kept_b) {
      break;
    }
    // One side ended its sequence here, or kept no more entries.
    if (kept_a != kept_b) {
      if ((kept_a && index >= count_b) || (kept_b && index >= count_a)) {
        divergence.exact = true;
        divergence.index = index;
        divergence.a = copy(kept_a ? in_a->second : nullptr);
        divergence.b = copy(kept_b ? in_b->second : nullptr);
        return divergence;
      }
      break;
    }
    if (!same_allocation(in_a->second, in_b->second)) {
      divergence.exact = true;
      divergence.index = index;
      divergence.a = *in_a->second;
      divergence.b = *in_b->second;
      return divergence;
    }
  }

  // Past them: the checkpoints bracket it.
  divergence.after = index;
  std::map<uint64_t, uint64_t> points_b;
  if (thread_b != nullptr) {
    points_b.insert(thread_b->checkpoints.begin(), thread_b->checkpoints.end());
  }
  if (thread_a != nullptr) {
    for (const auto& [count, digest] : thread_a->checkpoints) {
      auto other = points_b.find(count);
      if (other == points_b.end() || other->second != digest) {
        divergence.before = count;
        break;
      }
      divergence.after = std::max(divergence.after, count);
    }
  }
  if (divergence.before == 0) {
    divergence.before = std::max(count_a, count_b);
  }

  // A large entry kept on one side only, or of another size, in the range
  // narrows it: that allocation differs, though an earlier small one may too.
  auto large_a = by_index(a.large, ordinal);
  auto large_b = by_index(b.large, ordinal);
  std::set<uint64_t> indices;
  for (const auto& [at, kept] : large_a) {
    indices.insert(at);
  }
  for (const auto& [at, kept] : large_b) {
    indices.insert(at);
  }
  for (uint64_t at : indices) {
    if (at < divergence.after || at >= divergence.before) {
      continue;
    }
    auto in_a = large_a.find(at);
    auto in_b = large_b.find(at);
    const KeptAllocation* kept_a = in_a != large_a.end() ? in_a->second : nullptr;
    const KeptAllocation* kept_b = in_b != large_b.end() ? in_b->second : nullptr;
    if (!same_allocation(kept_a, kept_b)) {
      divergence.before = at + 1;
      divergence.a = copy(kept_a);
      divergence.b = copy(kept_b);
      break;
    }
  }
  if (divergence.before == divergence.after + 1 && divergence.a && divergence.b) {
    divergence.exact = true;
    divergence.index = divergence.after;
  }
  return divergence;
}

std::vector<std::string> ordinals(const ProcessFingerprint& a, const ProcessFingerprint& b) {
  std::vector<std::string> all;
  for (const ThreadSequence& thread : a.threads) {
    all.push_back(thread.ordinal);
  }
  for (const ThreadSequence& thread : b.threads) {
    if (a.thread(thread.ordinal) == nullptr) {
      all.push_back(thread.ordinal);
    }
  }
  return all;
}

ProcessComparison compare_process(const ProcessFingerprint& a, const ProcessFingerprint& b) {
  ProcessComparison comparison;
  comparison.stem_a = a.stem;
  comparison.stem_b = b.stem;
  if (a.source == FingerprintSource::kMissing || b.source == FingerprintSource::kMissing) {
    comparison.problem = std::string(a.source == FingerprintSource::kMissing ? "A" : "B") +
                         "'s process left no fingerprint";
    return comparison;
  }
  if (a.source == FingerprintSource::kLiveOnly || b.source == FingerprintSource::kLiveOnly) {
    comparison.problem = "only the running digests of " +
                         std::string(a.source == FingerprintSource::kLiveOnly ? "A" : "B") +
                         " are there (killed before it could write its record)";
  }

  comparison.sizes_equal = true;
  comparison.addresses_equal = true;
  for (const std::string& ordinal : ordinals(a, b)) {
    const ThreadSequence* thread_a = a.thread(ordinal);
    const ThreadSequence* thread_b = b.thread(ordinal);
    bool sizes = thread_a != nullptr && thread_b != nullptr && thread_a->count == thread_b->count &&
                 thread_a->size_digest == thread_b->size_digest;
    bool addresses = sizes && thread_a->address_digest == thread_b->address_digest;
    if (!sizes && comparison.sizes_equal) {
      comparison.divergence = locate(a, b, ordinal);
    }
    comparison.sizes_equal = comparison.sizes_equal && sizes;
    comparison.addresses_equal = comparison.addresses_equal && addresses;
  }
  comparison.global_equal = a.global_count == b.global_count && a.global_digest == b.global_digest;

  if (a.maps_digest && b.maps_digest) {
    comparison.layout_equal = *a.maps_digest == *b.maps_digest;
    if (!*comparison.layout_equal) {
      size_t shared = std::min(a.regions.size(), b.regions.size());
      for (size_t i = 0; i <= shared; ++i) {
        const Region* region_a = i < a.regions.size() ? &a.regions[i] : nullptr;
        const Region* region_b = i < b.regions.size() ? &b.regions[i] : nullptr;
        if (region_a == nullptr || region_b == nullptr || region_a->start != region_b->start ||
            region_a->size != region_b->size || region_a->perms != region_b->perms ||
            region_a->path != region_b->path) {
          comparison.first_region_a = region_a != nullptr ? region_text(*region_a) : "none";
          comparison.first_region_b = region_b != nullptr ? region_text(*region_b) : "none";
          break;
        }
      }
    }
  }

  comparison.physical_a = a.physical.empty() ? "-" : a.physical;
  comparison.physical_b = b.physical.empty() ? "-" : b.physical;
  if (a.colours == b.colours) {
    comparison.colour_distance = total_variation(a.colour_pages, b.colour_pages);
  }
  comparison.hypervisor =
      a.hypervisor == b.hypervisor ? a.hypervisor : a.hypervisor + " / " + b.hypervisor;
  return comparison;
}

// "<pid>" or "<pid>-<image>" from fingerprint.<stem>.<suffix>.
bool parse_stem(const std::string& stem, int& pid, int& image) {
  size_t dash = stem.find('-');
  uint64_t pid_value = 0;
  uint64_t image_value = 0;
  if (!to_number(stem.substr(0, dash), pid_value)) {
    return false;
  }
  if (dash != std::string::npos && !to_number(stem.substr(dash + 1), image_value)) {
    return false;
  }
  pid = static_cast<int>(pid_value);
  image = static_cast<int>(image_value);
  return true;
}

}  // namespace

const ThreadSequence* ProcessFingerprint::thread(const std::string& ordinal) const {
  for (const ThreadSequence& sequence : threads) {
    if (sequence.ordinal == ordinal) {
      return &sequence;
    }
  }
  return nullptr;
}

Result<ProcessFingerprint> parse_fingerprint_record(const std::string& text) {
  ProcessFingerprint process;
  process.source = FingerprintSource::kRecord;
  std::istringstream lines(text);
  std::string line;
  if (!std::getline(lines, line) || line != "memdet-fingerprint\t1") {
    return make_error("not a fingerprint record (its first line is not memdet-fingerprint 1)");
  }
  bool complete = false;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields = split_tabs(line);
    const std::string& key = fields[0];
    const std::string value = fields.size() > 1 ? fields[1] : "";
    if (key == "pid") {
      process.pid = static_cast<int>(number_or(value, 0));
    } else if (key == "ppid") {
      process.ppid = static_cast<int>(number_or(value, 0));
    } else if (key == "image") {
      process.image = static_cast<int>(number_or(value, 0));
    } else if (key == "exe") {
      process.exe = value;
    } else if (key == "end") {
      process.end = fields.size() > 2 ? value + " " + fields[2] : value;
    } else if (key == "threshold") {
      process.threshold = number_or(value, 0);
    } else if (key == "global_count") {
      process.global_count = number_or(value, 0);
    } else if (key == "global_digest") {
      process.global_digest = number_or(value, 0, 16);
    } else if (key == "thread" && fields.size() == 5) {
      ThreadSequence thread;
      thread.ordinal = fields[1];
      if (!to_number(fields[2], thread.count) || !to_number(fields[3], thread.size_digest, 16) ||
          !to_number(fields[4], thread.address_digest, 16)) {
        return make_error("a thread line has a field that is not a number: " + line);
      }
      process.threads.push_back(std::move(thread));
    } else if (key == "checkpoint" && fields.size() == 4) {
      ThreadSequence* thread = find_thread(process, fields[1]);
      uint64_t count = 0;
      uint64_t digest = 0;
      if (thread == nullptr || !to_number(fields[2], count) || !to_number(fields[3], digest, 16)) {
        return make_error("a checkpoint line does not parse: " + line);
      }
      thread->checkpoints.emplace_back(count, digest);
    } else if (key == "first" || key == "large") {
      auto kept = parse_kept(fields);
      if (!kept) {
        return make_error(kept.error().message + ": " + line);
      }
      (key == "first" ? process.first : process.large).push_back(std::move(*kept));
    } else if (key == "region" && fields.size() == 5) {
      Region region;
      region.start = number_or(fields[1], 0, 16);
      region.size = number_or(fields[2], 0);
      region.perms = fields[3];
      region.path = fields[4];
      process.regions.push_back(std::move(region));
    } else if (key == "maps_digest") {
      uint64_t digest = 0;
      if (to_number(value, digest, 16)) {
        process.maps_digest = digest;
      }
    } else if (key == "numa_pages") {
      process.numa_pages = value;
    } else if (key == "rollup_Rss_kB") {
      process.rss_kb = kb_or_unknown(value);
    } else if (key == "rollup_Anonymous_kB") {
      process.anonymous_kb = kb_or_unknown(value);
    } else if (key == "rollup_AnonHugePages_kB") {
      process.anon_huge_kb = kb_or_unknown(value);
    } else if (key == "physical") {
      process.physical = value;
    } else if (key == "physical_pages") {
      process.physical_pages = number_or(value, 0);
    } else if (key == "colours") {
      process.colours = static_cast<unsigned>(number_or(value, 0));
    } else if (key == "colour_pages") {
      std::stringstream items(value);
      for (std::string item; std::getline(items, item, ',');) {
        process.colour_pages.push_back(number_or(item, 0));
      }
    } else if (key == "frame_digest") {
      uint64_t digest = 0;
      if (to_number(value, digest, 16)) {
        process.frame_digest = digest;
      }
    } else if (key == "hypervisor") {
      process.hypervisor = value;
    } else if (key == "end_of_record") {
      complete = true;
    }
  }
  if (!complete) {
    return make_error("the record is cut short (no end_of_record line)");
  }
  return process;
}

Result<ProcessFingerprint> read_live_fingerprint(const std::string& path) {
  auto bytes = sys::read_small_file(path);
  if (!bytes) {
    return bytes.error();
  }
  if (bytes->size() < sizeof(preload::LiveFile)) {
    return make_error(path + ": " + std::to_string(bytes->size()) + " bytes, a live file has " +
                      std::to_string(sizeof(preload::LiveFile)));
  }
  preload::LiveFile live;
  std::memcpy(&live, bytes->data(), sizeof live);
  if (std::memcmp(live.header.magic, preload::kLiveMagic, sizeof live.header.magic) != 0 ||
      live.header.version != preload::kLiveVersion) {
    return make_error(path + ": not a version " + std::to_string(preload::kLiveVersion) +
                      " live fingerprint file");
  }
  ProcessFingerprint process;
  process.source = FingerprintSource::kLiveOnly;
  process.pid = live.header.pid;
  process.ppid = live.header.ppid;
  process.image = static_cast<int>(live.header.image);
  static const char* const kStates[] = {"running", "exit", "_exit", "exec", "signal"};
  process.end = live.header.state < 5 ? kStates[live.header.state] : "running";
  process.global_count = live.header.global_count;
  process.global_digest = live.header.global_digest;
  uint64_t threads = std::min<uint64_t>(live.header.threads, preload::kLiveThreads);
  for (uint64_t slot = 0; slot < threads; ++slot) {
    const preload::LiveThread& thread = live.threads[slot];
    ThreadSequence sequence;
    sequence.ordinal.assign(thread.ordinal, strnlen(thread.ordinal, sizeof thread.ordinal));
    sequence.count = thread.count;
    sequence.size_digest = thread.size_digest;
    sequence.address_digest = thread.address_digest;
    process.threads.push_back(std::move(sequence));
  }
  return process;
}

bool has_fingerprints(const std::string& dir) {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) == 0 &&
        (name.size() > 5 && (name.ends_with(".txt") || name.ends_with(".live")))) {
      return true;
    }
  }
  return false;
}

RunFingerprint read_run_fingerprint(const std::string& dir, int root_pid) {
  RunFingerprint run;
  run.dir = dir;
  // stem -> which files it has
  std::map<std::string, std::pair<bool, bool>> stems;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0) {
      continue;
    }
    std::string rest = name.substr(std::strlen(kPrefix));
    if (rest.ends_with(".txt")) {
      stems[rest.substr(0, rest.size() - 4)].first = true;
    } else if (rest.ends_with(".live")) {
      stems[rest.substr(0, rest.size() - 5)].second = true;
    }
  }
  if (error) {
    run.problems.push_back(dir + ": cannot list: " + error.message());
  }

  for (const auto& [stem, files] : stems) {
    int pid = 0;
    int image = 0;
    if (!parse_stem(stem, pid, image)) {
      continue;
    }
    std::string base = (fs::path(dir) / (kPrefix + stem)).string();
    Result<ProcessFingerprint> process = make_error("");
    if (files.first) {
      auto text = sys::read_small_file(base + ".txt");
      process = text ? parse_fingerprint_record(*text) : Result<ProcessFingerprint>(text.error());
      if (!process) {
        run.problems.push_back(base + ".txt: " + process.error().message);
      }
    }
    if (!process && files.second) {
      process = read_live_fingerprint(base + ".live");
      if (!process) {
        run.problems.push_back(process.error().message);
      }
    }
    if (process) {
      process->stem = stem;
      process->pid = pid;
      process->image = image;
      run.processes.push_back(std::move(*process));
    }
  }

  // Roots first: the launched pid, or those whose parent left nothing here.
  std::set<int> pids;
  for (const ProcessFingerprint& process : run.processes) {
    pids.insert(process.pid);
  }
  auto is_root = [&](const ProcessFingerprint& process) {
    return root_pid > 0 ? process.pid == root_pid : pids.count(process.ppid) == 0;
  };
  std::stable_sort(run.processes.begin(), run.processes.end(),
                   [&](const ProcessFingerprint& left, const ProcessFingerprint& right) {
                     bool root_left = is_root(left);
                     bool root_right = is_root(right);
                     if (root_left != root_right) {
                       return root_left;
                     }
                     return std::pair(left.pid, left.image) < std::pair(right.pid, right.image);
                   });
  if (root_pid > 0 && pids.count(root_pid) == 0) {
    ProcessFingerprint missing;
    missing.source = FingerprintSource::kMissing;
    missing.pid = root_pid;
    missing.stem = std::to_string(root_pid);
    run.processes.insert(run.processes.begin(), std::move(missing));
  }
  return run;
}

std::optional<double> total_variation(const std::vector<uint64_t>& a,
                                      const std::vector<uint64_t>& b) {
  double sum_a = 0;
  double sum_b = 0;
  for (uint64_t value : a) {
    sum_a += static_cast<double>(value);
  }
  for (uint64_t value : b) {
    sum_b += static_cast<double>(value);
  }
  if (sum_a == 0 || sum_b == 0) {
    return std::nullopt;
  }
  double distance = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    double share_a = i < a.size() ? static_cast<double>(a[i]) / sum_a : 0;
    double share_b = i < b.size() ? static_cast<double>(b[i]) / sum_b : 0;
    distance += std::fabs(share_a - share_b);
  }
  return distance / 2;
}

FingerprintComparison compare_fingerprints(const RunFingerprint& a, const RunFingerprint& b) {
  FingerprintComparison comparison;
  size_t shared = std::min(a.processes.size(), b.processes.size());
  for (size_t i = 0; i < shared; ++i) {
    ProcessComparison process = compare_process(a.processes[i], b.processes[i]);
    comparison.equal = comparison.equal && process.problem.empty() && process.sizes_equal &&
                       process.addresses_equal && process.layout_equal.value_or(true);
    comparison.processes.push_back(std::move(process));
  }
  comparison.only_a = a.processes.size() - shared;
  comparison.only_b = b.processes.size() - shared;
  comparison.equal = comparison.equal && comparison.only_a == 0 && comparison.only_b == 0;
  return comparison;
}

std::vector<std::string> describe_comparison(const FingerprintComparison& comparison) {
  std::vector<std::string> lines;
  for (const ProcessComparison& process : comparison.processes) {
    lines.push_back("  process " + process.stem_a + " vs " + process.stem_b +
                    (process.problem.empty() ? "" : ": " + process.problem));
    if (!process.problem.empty() && process.stem_a.empty()) {
      continue;
    }
    std::string sequence;
    if (process.sizes_equal && process.addresses_equal) {
      sequence = "equal (sizes and addresses)";
    } else if (process.sizes_equal) {
      sequence = "sizes equal, addresses differ";
    } else if (process.divergence) {
      const Divergence& divergence = *process.divergence;
      sequence = "differs in thread " + divergence.thread;
      if (divergence.exact) {
        sequence += ", first at allocation " + std::to_string(divergence.index) + ": " +
                    allocation_text(divergence.a) + " vs " + allocation_text(divergence.b);
      } else {
        sequence += ", first between allocations " + std::to_string(divergence.after) + " and " +
                    std::to_string(divergence.before);
        if (divergence.a || divergence.b) {
          sequence += " (by " + std::to_string(divergence.before - 1) + ": " +
                      allocation_text(divergence.a) + " vs " + allocation_text(divergence.b) + ")";
        }
      }
    } else {
      sequence = "differs";
    }
    lines.push_back("    allocation sequence: " + sequence);
    lines.push_back(std::string("    order across threads (depends on timing): ") +
                    (process.global_equal ? "equal" : "differs"));
    if (!process.layout_equal) {
      lines.push_back("    virtual layout: not recorded");
    } else if (*process.layout_equal) {
      lines.push_back("    virtual layout: matched");
    } else {
      lines.push_back("    virtual layout: differs, first at " + process.first_region_a + " vs " +
                      process.first_region_b);
    }
    std::string physical =
        "    physical colours: " + process.physical_a + " / " + process.physical_b;
    if (process.colour_distance) {
      char text[64];
      std::snprintf(text, sizeof text, ", total variation %.4f", *process.colour_distance);
      physical += text;
    }
    if (!process.hypervisor.empty() && process.hypervisor != "none") {
      physical += " (guest-physical frames under " + process.hypervisor + ")";
    }
    lines.push_back(physical);
  }
  if (comparison.only_a > 0 || comparison.only_b > 0) {
    lines.push_back("  processes only in A: " + std::to_string(comparison.only_a) +
                    ", only in B: " + std::to_string(comparison.only_b));
  }
  return lines;
}

nlohmann::json comparison_json(const FingerprintComparison& comparison) {
  auto allocation = [](const std::optional<KeptAllocation>& kept) -> nlohmann::json {
    if (!kept) {
      return nullptr;
    }
    return {{"index", kept->index},
            {"kind", kind_name(kept->kind)},
            {"size", kept->size},
            {"address", "0x" + hex(kept->address)},
            {"page_offset", kept->page_offset},
            {"caller", kept->caller}};
  };
  nlohmann::json processes = nlohmann::json::array();
  for (const ProcessComparison& process : comparison.processes) {
    nlohmann::json entry = {
        {"a", process.stem_a},
        {"b", process.stem_b},
        {"problem",
         process.problem.empty() ? nlohmann::json(nullptr) : nlohmann::json(process.problem)},
        {"sizes_equal", process.sizes_equal},
        {"addresses_equal", process.addresses_equal},
        {"order_across_threads_equal", process.global_equal},
        {"layout_equal",
         process.layout_equal ? nlohmann::json(*process.layout_equal) : nlohmann::json(nullptr)},
        {"physical_a", process.physical_a},
        {"physical_b", process.physical_b},
        {"colour_distance", process.colour_distance ? nlohmann::json(*process.colour_distance)
                                                    : nlohmann::json(nullptr)},
        {"hypervisor", process.hypervisor},
    };
    if (process.divergence) {
      const Divergence& divergence = *process.divergence;
      entry["divergence"] = {
          {"thread", divergence.thread},
          {"exact", divergence.exact},
          {"index", divergence.exact ? nlohmann::json(divergence.index) : nlohmann::json(nullptr)},
          {"after", divergence.after},
          {"before", divergence.before},
          {"a", allocation(divergence.a)},
          {"b", allocation(divergence.b)},
      };
    } else {
      entry["divergence"] = nullptr;
    }
    if (process.layout_equal && !*process.layout_equal) {
      entry["first_region_a"] = process.first_region_a;
      entry["first_region_b"] = process.first_region_b;
    }
    processes.push_back(std::move(entry));
  }
  return {{"equal", comparison.equal},
          {"only_a", comparison.only_a},
          {"only_b", comparison.only_b},
          {"processes", processes}};
}

}  // namespace memdet::measure
