#include "factors/preload_report.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/sys.h"

namespace memdet::factors {
namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t begin = 0;
  for (;;) {
    size_t tab = line.find('\t', begin);
    fields.push_back(line.substr(begin, tab == std::string::npos ? tab : tab - begin));
    if (tab == std::string::npos) {
      return fields;
    }
    begin = tab + 1;
  }
}

int cpu_field(const std::string& text) {
  if (text.empty() || text == "-") {
    return -1;
  }
  return std::atoi(text.c_str());
}

}  // namespace

std::string encode_preload_config(const std::map<std::string, std::string>& fields) {
  std::string text;
  for (const auto& [key, value] : fields) {
    if (!text.empty()) {
      text += ';';
    }
    text += key + "=" + value;
  }
  if (text.size() > kPreloadConfigWidth) {
    return {};
  }
  text.resize(kPreloadConfigWidth, ' ');
  return text;
}

const std::string* PreloadReport::find(const std::string& key) const {
  auto it = values.find(key);
  return it == values.end() ? nullptr : &it->second;
}

long long PreloadReport::number(const std::string& key, long long fallback) const {
  const std::string* text = find(key);
  if (text == nullptr || text->empty()) {
    return fallback;
  }
  char* end = nullptr;
  long long value = std::strtoll(text->c_str(), &end, 10);
  return *end == '\0' ? value : fallback;
}

const std::vector<std::vector<std::string>>& PreloadReport::rows_of(const std::string& key) const {
  static const std::vector<std::vector<std::string>> kNone;
  auto it = rows.find(key);
  return it == rows.end() ? kNone : it->second;
}

PreloadReport parse_preload_report(const std::string& text) {
  PreloadReport report;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) {
      end = text.size();
    }
    std::vector<std::string> fields = split_tabs(text.substr(begin, end - begin));
    begin = end + 1;
    if (fields.size() < 2) {
      continue;
    }
    if (fields[0] == "thread" && fields.size() >= 6) {
      PreloadThread thread;
      thread.ordinal = fields[1];
      thread.tid = std::atoi(fields[2].c_str());
      thread.assigned_cpu = cpu_field(fields[3]);
      thread.seen_cpu = cpu_field(fields[4]);
      thread.collision = fields[5] == "1";
      report.threads.push_back(thread);
    } else if (fields[0] == "entropy_read" || fields[0] == "clock_read" ||
               fields[0] == "fileorder_listing" || fields[0] == "fileorder_unseen" ||
               fields[0] == "clock") {
      report.rows[fields[0]].emplace_back(fields.begin() + 1, fields.end());
      report.values.emplace(fields[0], fields[1]);
    } else if (fields[0] == "unpinned_task") {
      report.unpinned_tasks.push_back(fields[1] + (fields.size() > 2 ? " " + fields[2] : ""));
    } else {
      report.values[fields[0]] = fields[1];
    }
  }
  report.present = report.values.count("memdet-preload") != 0;
  if (!report.present) {
    report.error = "not a memdet preload report";
  }
  return report;
}

std::vector<PreloadReport> read_descendant_reports(const std::string& prefix, int pid) {
  namespace fs = std::filesystem;
  const fs::path base(prefix);
  const std::string stem = base.filename().string() + ".";
  std::vector<std::pair<long, std::string>> found;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(base.parent_path(), error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(stem, 0) != 0 || name.size() == stem.size() ||
        name.find_first_not_of("0123456789", stem.size()) != std::string::npos) {
      continue;
    }
    const long other = std::strtol(name.c_str() + stem.size(), nullptr, 10);
    if (other != pid) {
      found.emplace_back(other, entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<PreloadReport> reports;
  for (const auto& [other, path] : found) {
    reports.push_back(read_preload_report(prefix, static_cast<int>(other)));
  }
  return reports;
}

PreloadReport read_preload_report(const std::string& prefix, int pid) {
  std::string path = prefix + "." + std::to_string(pid);
  auto text = sys::read_small_file(path);
  PreloadReport report;
  if (!text) {
    report.path = path;
    report.error = "no report: " + text.error().message +
                   " (the workload ended without running exit handlers, or did not load the "
                   "preload library)";
    return report;
  }
  report = parse_preload_report(*text);
  report.path = path;
  return report;
}

}  // namespace memdet::factors
