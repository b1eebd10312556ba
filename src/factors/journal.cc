#include "factors/journal.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <sstream>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "core/text.h"

namespace memdet::factors {
namespace {

constexpr const char* kDefaultDir = "/var/lib/memdet";
constexpr const char* kLockName = "lock";
constexpr const char* kSchema = "memdet.journal/1";
constexpr const char* kSuffix = ".json";

bool is_entry_name(const std::string& name) {
  return !name.empty() && name[0] != '.' && name.size() > std::string(kSuffix).size() &&
         name.ends_with(kSuffix);
}

// The names in `dir` that are entries; an error when it cannot be read.
Result<std::vector<std::string>> entry_names(const std::string& dir) {
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    return make_error(dir + ": " + sys::errno_text(errno));
  }
  std::vector<std::string> names;
  while (dirent* item = ::readdir(stream)) {
    std::string name = item->d_name;
    if (is_entry_name(name)) {
      names.push_back(name);
    }
  }
  ::closedir(stream);
  return names;
}

Status sync_dir(const std::string& dir) {
  sys::ScopedFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return make_error("fsync " + dir + ": " + sys::errno_text(errno));
  }
  return {};
}

nlohmann::json to_json(const JournalEntry& entry) {
  return {
      {"schema", kSchema},
      {"path", entry.path},
      {"before", entry.before},
      {"after", entry.after},
      {"owner", {{"pid", entry.owner.pid}, {"start_time", entry.owner.start_time}}},
      {"boot_id", entry.boot_id},
      {"written_at", entry.written_at},
  };
}

Result<JournalEntry> from_json(const std::string& text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return make_error("not JSON");
  }
  if (doc.value("schema", "") != kSchema) {
    return make_error("schema is not " + std::string(kSchema));
  }
  try {
    JournalEntry entry;
    entry.path = doc.at("path").get<std::string>();
    entry.before = doc.at("before").get<std::string>();
    entry.after = doc.at("after").get<std::string>();
    entry.owner.pid = doc.at("owner").at("pid").get<pid_t>();
    entry.owner.start_time = doc.at("owner").at("start_time").get<uint64_t>();
    entry.boot_id = doc.at("boot_id").get<std::string>();
    entry.written_at = doc.value("written_at", int64_t{0});
    if (entry.path.empty() || entry.owner.pid <= 0) {
      return make_error("no path or no owner");
    }
    return entry;
  } catch (const nlohmann::json::exception& error) {
    return make_error(error.what());
  }
}

// An entry tells root which file to write and what, so only one that no
// one else could have written is acted on: owned by this user, writable by
// no one else, in a directory of the same kind.
Status check_trusted(const std::string& path, bool directory) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    return make_error(path + ": " + sys::errno_text(errno));
  }
  if (directory ? !S_ISDIR(info.st_mode) : !S_ISREG(info.st_mode)) {
    return make_error(path + " is not a " + (directory ? "directory" : "regular file"));
  }
  if (info.st_uid != ::geteuid() || (info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return make_error(path + " belongs to another user or others may write it");
  }
  return {};
}

enum class Trust { kCheck, kAny };

std::vector<JournalEntry> read_entries(const std::string& dir, Trust trust,
                                       std::vector<std::string>* unreadable) {
  std::vector<JournalEntry> entries;
  auto names = entry_names(dir);
  if (!names) {
    if (unreadable != nullptr) {
      unreadable->push_back("cannot read the journal " + names.error().message);
    }
    return entries;
  }
  for (const std::string& name : *names) {
    std::string file = dir + "/" + name;
    if (trust == Trust::kCheck) {
      Status trusted = check_trusted(file, false);
      if (!trusted) {
        if (unreadable != nullptr) {
          unreadable->push_back("journal entry ignored: " + trusted.error().message);
        }
        continue;
      }
    }
    auto text = sys::read_small_file(file);
    if (!text) {
      if (::access(file.c_str(), F_OK) != 0 && errno == ENOENT) {
        continue;  // removed since the listing, by a restore in another process
      }
      if (unreadable != nullptr) {
        unreadable->push_back("cannot read journal entry " + text.error().message);
      }
      continue;
    }
    auto entry = from_json(*text);
    if (!entry) {
      if (unreadable != nullptr) {
        unreadable->push_back("journal entry " + file + " is damaged (" + entry.error().message +
                              "); left in place");
      }
      continue;
    }
    entry->file = name;
    entries.push_back(std::move(*entry));
  }
  std::sort(entries.begin(), entries.end(), [](const JournalEntry& a, const JournalEntry& b) {
    return a.written_at != b.written_at ? a.written_at < b.written_at : a.file < b.file;
  });
  return entries;
}

int64_t now_nanoseconds() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

}  // namespace

std::string journal_dir() {
  const char* dir = std::getenv("MEMDET_JOURNAL_DIR");
  return dir != nullptr && *dir != '\0' ? dir : kDefaultDir;
}

Result<uint64_t> process_start_time(pid_t pid) {
  auto stat = sys::read_small_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) {
    return stat.error();
  }
  // The command name in field 2 is in parentheses and may hold spaces and
  // parentheses itself; the fields after the last ')' are plain numbers,
  // starting with field 3 (proc_pid_stat(5)).
  size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return make_error("/proc/" + std::to_string(pid) + "/stat: no command field");
  }
  std::istringstream fields(stat->substr(close + 1));
  std::string field;
  for (int number = 3; number <= 22; ++number) {
    if (!(fields >> field)) {
      return make_error("/proc/" + std::to_string(pid) + "/stat: fewer than 22 fields");
    }
  }
  char* end = nullptr;
  unsigned long long ticks = std::strtoull(field.c_str(), &end, 10);
  if (end == field.c_str() || *end != '\0') {
    return make_error("/proc/" + std::to_string(pid) + "/stat: field 22 is not a number");
  }
  return static_cast<uint64_t>(ticks);
}

Result<Owner> current_owner() {
  pid_t pid = ::getpid();
  auto start = process_start_time(pid);
  if (!start) {
    return start.error();
  }
  return Owner{pid, *start};
}

bool owner_alive(const Owner& owner) {
  auto start = process_start_time(owner.pid);
  return start && *start == owner.start_time;
}

Result<std::string> current_boot_id() {
  auto text = sys::read_small_file("/proc/sys/kernel/random/boot_id");
  if (!text) {
    return text.error();
  }
  return std::string(trim(*text));
}

Result<Journal> Journal::lock(const std::string& dir, double wait_seconds) {
  std::error_code error;
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, error);
  }
  if (error || (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)) {
    return make_error("cannot create the journal directory " + dir + ": " +
                      (error ? error.message() : sys::errno_text(errno)));
  }
  Status trusted = check_trusted(dir, true);
  if (!trusted) {
    return make_error("the journal directory is not safe to act on: " + trusted.error().message);
  }
  std::string lock_path = dir + "/" + kLockName;
  sys::ScopedFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return make_error("cannot open the journal lock " + lock_path + ": " + sys::errno_text(errno));
  }

  double deadline = sys::monotonic_seconds() + wait_seconds;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      return make_error("cannot lock " + lock_path + ": " + sys::errno_text(errno));
    }
    if (sys::monotonic_seconds() > deadline) {
      return make_error("the journal " + lock_path + " stayed locked by another process for " +
                        std::to_string(static_cast<int>(wait_seconds)) + " s");
    }
    timespec pause{0, 10 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
  return Journal(dir, std::move(fd));
}

std::vector<JournalEntry> Journal::entries(std::vector<std::string>* unreadable) const {
  return read_entries(dir_, Trust::kCheck, unreadable);
}

Status Journal::add(JournalEntry& entry) {
  static std::atomic<unsigned> sequence{0};
  if (entry.written_at == 0) {
    entry.written_at = now_nanoseconds();
  }
  if (entry.file.empty()) {
    entry.file = std::to_string(entry.owner.pid) + "-" + std::to_string(entry.owner.start_time) +
                 "-" + std::to_string(sequence++) + kSuffix;
  }

  // Every writer holds the lock, so a temporary file found under it is a
  // dead writer's and may be overwritten.
  std::string final_path = dir_ + "/" + entry.file;
  std::string temporary = dir_ + "/." + entry.file + ".tmp";
  std::string text = to_json(entry).dump(1) + "\n";
  sys::ScopedFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return make_error("cannot write the journal entry " + temporary + ": " +
                      sys::errno_text(errno));
  }
  if (!sys::write_all(fd.get(), text.data(), text.size()) || ::fsync(fd.get()) != 0) {
    int saved = errno;
    ::unlink(temporary.c_str());
    return make_error("cannot write the journal entry " + temporary + ": " +
                      sys::errno_text(saved));
  }
  fd.reset();
  if (::rename(temporary.c_str(), final_path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temporary.c_str());
    return make_error("cannot rename " + temporary + " to " + final_path + ": " +
                      sys::errno_text(saved));
  }
  return sync_dir(dir_);
}

Status Journal::remove(const JournalEntry& entry) {
  std::string path = dir_ + "/" + entry.file;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return make_error("cannot remove the journal entry " + path + ": " + sys::errno_text(errno));
  }
  return sync_dir(dir_);
}

bool journal_has_entries(const std::string& dir) {
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    // Missing is the common case. Present but unreadable is reported by
    // whoever then tries to read it.
    return errno != ENOENT && errno != ENOTDIR;
  }
  bool found = false;
  while (dirent* item = ::readdir(stream)) {
    if (is_entry_name(item->d_name)) {
      found = true;
      break;
    }
  }
  ::closedir(stream);
  return found;
}

std::vector<JournalEntry> read_journal_unlocked(const std::string& dir,
                                                std::vector<std::string>* unreadable) {
  return read_entries(dir, Trust::kAny, unreadable);
}

}  // namespace memdet::factors
