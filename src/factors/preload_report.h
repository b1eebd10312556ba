// memdet's two messages with libmemdet_preload.so (src/preload/CONTRACT.md):
// the configuration it passes in MEMDET_PRELOAD, and the report the library
// writes just before the workload exits.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace memdet::factors {

// Every run of a campaign passes MEMDET_PRELOAD and LD_PRELOAD at these
// widths, so the factors under test change no environment size.
constexpr size_t kPreloadConfigWidth = 512;
constexpr size_t kPreloadListWidth = 512;

// "k1=v1;k2=v2" padded with spaces to kPreloadConfigWidth; fails (empty
// string) when the fields do not fit.
std::string encode_preload_config(const std::map<std::string, std::string>& fields);

struct PreloadThread {
  std::string ordinal;  // "0.1.2": creator's ordinal, then the child index
  int tid = 0;
  int assigned_cpu = -1;  // -1: not pinned
  int seen_cpu = -1;      // where it last ran; -1: not seen
  bool collision = false;
};

struct PreloadReport {
  bool present = false;
  std::string path;
  std::string error;                          // why it is absent or unreadable
  std::map<std::string, std::string> values;  // every key with one value
  std::vector<PreloadThread> threads;
  std::vector<std::string> unpinned_tasks;  // "tid comm"
  // Lines that repeat a key or carry several fields (entropy_read,
  // clock_read, fileorder_listing, fileorder_unseen, clock), each as its
  // fields after the key, in file order; `values` keeps the first field of
  // the first such line.
  std::map<std::string, std::vector<std::vector<std::string>>> rows;

  const std::vector<std::vector<std::string>>& rows_of(const std::string& key) const;

  const std::string* find(const std::string& key) const;
  // The value as a number; `fallback` when missing or not a number.
  long long number(const std::string& key, long long fallback = -1) const;
};

// Parses the text of a report; a line that does not parse is skipped.
PreloadReport parse_preload_report(const std::string& text);
// Reads <prefix>.<pid>.
PreloadReport read_preload_report(const std::string& prefix, int pid);
// Reads every other <prefix>.<N>: the reports of the processes the
// launched one started (forked workers, subprocesses), in pid order.
std::vector<PreloadReport> read_descendant_reports(const std::string& prefix, int pid);

}  // namespace memdet::factors
