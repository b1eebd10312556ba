#include "doctor/root.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <utility>

#include "core/sys.h"
#include "core/text.h"

namespace memdet::doctor {
namespace {

// As many links as the kernel follows in one path (MAXSYMLINKS), so a loop
// ends.
constexpr int kMaxLinks = 40;

// How many entries holds_only_plain_files looks at before it gives up: a
// saved /sys holds a few thousand.
constexpr size_t kMaxEntries = 200000;

bool is_plain_file(const struct stat& info) {
  return S_ISREG(info.st_mode) && static_cast<uint64_t>(info.st_size) <= MachineRoot::kMaxFileBytes;
}

// Walks a folder the way hwloc would read it: links followed by the
// kernel, each folder once.
class PlainFileCheck {
 public:
  explicit PlainFileCheck(std::string root) : root_(std::move(root)) {}

  // The folder `dir`, each entry as entry() takes it.
  bool folder(const std::string& dir) {
    struct stat info {};
    if (::stat(dir.c_str(), &info) != 0 || !visited_.emplace(info.st_dev, info.st_ino).second) {
      return true;
    }
    DIR* listing = ::opendir(dir.c_str());
    if (listing == nullptr) {
      return true;
    }
    bool plain = true;
    while (dirent* entry = ::readdir(listing)) {
      std::string name = entry->d_name;
      if (name != "." && name != ".." && !(plain = this->entry(dir + "/" + name))) {
        break;
      }
    }
    ::closedir(listing);
    return plain;
  }

  // A folder, a regular file up to the cap, or a link to one of those
  // inside the root; a missing or dangling one has nothing to read.
  bool entry(const std::string& file) {
    if (++entries_ > kMaxEntries) {
      return false;
    }
    struct stat info {};
    if (::lstat(file.c_str(), &info) != 0) {
      return true;
    }
    if (S_ISLNK(info.st_mode)) {
      char* target = ::realpath(file.c_str(), nullptr);
      if (target == nullptr) {
        return true;  // dangling: there is nothing to read
      }
      std::string real = target;
      bool inside = real == root_ || real.starts_with(root_ + "/");
      std::free(target);
      if (!inside || ::stat(file.c_str(), &info) != 0) {
        return false;
      }
    }
    if (S_ISDIR(info.st_mode)) {
      return folder(file);
    }
    return is_plain_file(info);
  }

 private:
  std::string root_;  // without links, as realpath gives it
  std::set<std::pair<dev_t, ino_t>> visited_;
  size_t entries_ = 0;
};

}  // namespace

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
  // Saved: the links resolved inside the root, so none is left to follow.
  // O_NONBLOCK keeps a FIFO from waiting for a writer until fstat refuses it.
  int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (live() ? 0 : O_NOFOLLOW);
  std::string file = live() ? std::string(absolute) : path(resolve(absolute));
  sys::ScopedFd fd(::open(file.c_str(), flags));
  struct stat info {};
  if (!fd.valid() || ::fstat(fd.get(), &info) != 0 || !is_plain_file(info)) {
    return std::nullopt;
  }

  // One byte more than the cap tells a file that grew past it.
  std::string text(kMaxFileBytes + 1, '\0');
  size_t have = 0;
  while (have < text.size()) {
    ssize_t got = ::read(fd.get(), text.data() + have, text.size() - have);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      return std::nullopt;
    }
    if (got == 0) {
      break;
    }
    have += static_cast<size_t>(got);
  }
  if (have > kMaxFileBytes) {
    return std::nullopt;
  }
  text.resize(have);
  return text;
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
  std::string machine = live() ? std::string(absolute) : resolve(absolute);
  return ::access(path(machine).c_str(), F_OK) == 0;
}

std::vector<std::string> MachineRoot::list(std::string_view absolute) const {
  std::vector<std::string> names;
  std::string machine = live() ? std::string(absolute) : resolve(absolute);
  DIR* dir = ::opendir(path(machine).c_str());
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
  fs::path done("/");
  // What is left to walk, the next component last.
  std::vector<std::string> left;
  auto push = [&left](const fs::path& part) {
    std::vector<std::string> components;
    for (const fs::path& component : part.relative_path()) {
      components.push_back(component.string());
    }
    left.insert(left.end(), components.rbegin(), components.rend());
  };
  push(fs::path(absolute));

  int links = 0;
  while (!left.empty()) {
    std::string component = std::move(left.back());
    left.pop_back();
    if (component.empty() || component == ".") {
      continue;
    }
    if (component == "..") {
      done = done.parent_path();
      continue;
    }
    fs::path next = done / component;
    std::error_code error;
    fs::path target = links < kMaxLinks ? fs::read_symlink(path(next.string()), error) : fs::path();
    if (links >= kMaxLinks || error) {
      done = next;
      continue;
    }
    ++links;
    if (target.is_absolute()) {
      done = "/";
    }
    push(target);
  }
  return done.string();
}

bool MachineRoot::holds_only_plain_files(std::string_view absolute) const {
  if (live()) {
    return true;
  }
  char* real_root = ::realpath(prefix_.c_str(), nullptr);
  if (real_root == nullptr) {
    return false;
  }
  PlainFileCheck check(real_root);
  std::free(real_root);
  return check.entry(path(absolute));
}

}  // namespace memdet::doctor
