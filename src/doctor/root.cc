#include "doctor/root.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "core/sys.h"
#include "core/text.h"

namespace memdet::doctor {

Result<MachineRoot> MachineRoot::open(const std::string& dir) {
  if (dir.empty()) {
    return make_error("--root: empty path");
  }
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0) {
    return make_error("--root " + dir + ": " + sys::errno_text(errno));
  }
  if (!S_ISDIR(info.st_mode)) {
    return make_error("--root " + dir + ": not a directory");
  }
  std::string prefix = dir;
  while (prefix.size() > 1 && prefix.back() == '/') {
    prefix.pop_back();
  }
  if (prefix == "/") {
    return MachineRoot();
  }
  return MachineRoot(prefix);
}

std::string MachineRoot::path(std::string_view absolute) const {
  return prefix_ + std::string(absolute);
}

std::optional<std::string> MachineRoot::read_raw(std::string_view absolute) const {
  auto contents = sys::read_small_file(path(absolute));
  if (!contents) {
    return std::nullopt;
  }
  return std::move(contents.value());
}

std::optional<std::string> MachineRoot::read(std::string_view absolute) const {
  auto contents = read_raw(absolute);
  if (!contents) {
    return std::nullopt;
  }
  return std::string(trim(*contents));
}

std::optional<long long> MachineRoot::read_number(std::string_view absolute) const {
  auto text = read(absolute);
  if (!text || text->empty()) {
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text->c_str(), &end, 10);
  if (errno != 0 || *end != '\0') {
    return std::nullopt;
  }
  return value;
}

bool MachineRoot::exists(std::string_view absolute) const {
  return ::access(path(absolute).c_str(), F_OK) == 0;
}

std::vector<std::string> MachineRoot::list(std::string_view absolute) const {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path(absolute).c_str());
  if (dir == nullptr) {
    return names;
  }
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") {
      names.push_back(name);
    }
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::string MachineRoot::resolve(std::string_view absolute) const {
  namespace fs = std::filesystem;
  fs::path current(absolute);
  // As many hops as the kernel allows (MAXSYMLINKS), so a loop ends.
  for (int hop = 0; hop < 40; ++hop) {
    std::error_code error;
    fs::path target = fs::read_symlink(path(current.string()), error);
    if (error) {
      break;
    }
    current = target.is_absolute() ? target : current.parent_path() / target;
    current = current.lexically_normal();
  }
  return current.string();
}

}  // namespace memdet::doctor
