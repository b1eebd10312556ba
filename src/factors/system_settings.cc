#include "factors/system_settings.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <fcntl.h>
#include <unistd.h>

#include "core/sys.h"
#include "core/text.h"

namespace memdet::factors {
namespace {

std::string pid_text(const Owner& owner) { return "memdet pid " + std::to_string(owner.pid); }

enum class Undo {
  kRestored,     // written back
  kAlreadyBack,  // it reads the value from before memdet already
  kChanged,      // neither memdet's value nor the one before: someone else's
  kFailed,       // could not be read or written
};

struct UndoResult {
  Undo outcome = Undo::kFailed;
  std::string current;  // what the setting read before the undo
  std::string error;    // kFailed
};

// Puts one setting back if it still holds memdet's value.
UndoResult undo(const JournalEntry& entry) {
  UndoResult result;
  auto current = read_setting(entry.path);
  if (!current) {
    result.error = current.error().message;
    return result;
  }
  result.current = *current;
  if (result.current == trim(entry.before)) {
    result.outcome = Undo::kAlreadyBack;
    return result;
  }
  if (result.current != trim(entry.after)) {
    result.outcome = Undo::kChanged;
    return result;
  }
  auto now = write_setting(entry.path, entry.before);
  if (!now) {
    result.error = now.error().message;
    return result;
  }
  if (*now != trim(entry.before)) {
    result.error = "wrote " + entry.before + " but it reads " + *now;
    return result;
  }
  result.outcome = Undo::kRestored;
  return result;
}

// Undoes `entries` newest first under the held journal lock (or with no
// journal at all, when it could not be locked). Returns one clause per
// setting left changed.
std::vector<std::string> undo_all(Journal* journal, std::vector<JournalEntry>& entries) {
  std::vector<std::string> problems;
  for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
    UndoResult result = undo(*entry);
    if (result.outcome == Undo::kFailed) {
      problems.push_back("cannot put " + entry->path + " back to " + entry->before + ": " +
                         result.error + " (its journal entry is kept)");
      continue;
    }
    if (result.outcome == Undo::kChanged) {
      problems.push_back(entry->path + " was changed to " + result.current +
                         " by someone else while memdet held it at " + entry->after +
                         "; left as it is (it was " + entry->before + " before)");
    }
    if (journal != nullptr) {
      Status removed = journal->remove(*entry);
      if (!removed) {
        problems.push_back(removed.error().message);
      }
    }
  }
  entries.clear();
  return problems;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string text;
  for (const std::string& part : parts) {
    text += (text.empty() ? "" : "; ") + part;
  }
  return text;
}

// Whether `current` still needs putting back, for the advice of a memdet
// that cannot do it itself.
void advise(const JournalEntry& entry, const std::string& boot, Recovery& recovery) {
  if (entry.boot_id != boot || owner_alive(entry.owner)) {
    return;
  }
  auto current = read_setting(entry.path);
  if (current && *current == trim(entry.before)) {
    return;
  }
  recovery.advised++;
  recovery.messages.push_back(entry.path + " is still changed by " + pid_text(entry.owner) +
                              ", which died; run `memdet restore` as root to put back " +
                              entry.before);
}

void recover_entry(Journal& journal, const JournalEntry& entry, const std::string& boot,
                   Recovery& recovery) {
  if (entry.boot_id != boot) {
    Status removed = journal.remove(entry);
    if (!removed) {
      recovery.failed++;
      recovery.messages.push_back(removed.error().message);
      return;
    }
    recovery.dropped++;
    recovery.messages.push_back("dropped the journal entry for " + entry.path +
                                " from an earlier boot (the kernel reset it at boot)");
    return;
  }
  if (owner_alive(entry.owner)) {
    recovery.held.push_back(entry.path + " is held at " + entry.after + " by " +
                            pid_text(entry.owner) + ", which is still running; left to it");
    return;
  }

  UndoResult result = undo(entry);
  std::string owner = pid_text(entry.owner);
  switch (result.outcome) {
    case Undo::kFailed:
      recovery.failed++;
      recovery.messages.push_back("cannot put " + entry.path + " back to " + entry.before +
                                  " after " + owner + " died: " + result.error +
                                  "; the journal entry is kept");
      return;
    case Undo::kRestored:
      recovery.restored++;
      recovery.messages.push_back("restored " + entry.path + " to " + entry.before + ": " + owner +
                                  " set it to " + entry.after + " and died before putting it back");
      break;
    case Undo::kAlreadyBack:
      recovery.dropped++;
      recovery.messages.push_back("dropped the journal entry for " + entry.path + " left by " +
                                  owner + ": it is already back at " + entry.before);
      break;
    case Undo::kChanged:
      recovery.changed++;
      recovery.messages.push_back("left " + entry.path + " at " + result.current + ": " + owner +
                                  " set it to " + entry.after +
                                  " and died, and it has been changed since (it was " +
                                  entry.before + " before memdet)");
      break;
  }
  Status removed = journal.remove(entry);
  if (!removed) {
    recovery.failed++;
    recovery.messages.push_back(removed.error().message);
  }
}

}  // namespace

Result<std::string> read_setting(const std::string& path) {
  auto text = sys::read_small_file(path);
  if (!text) {
    return text.error();
  }
  std::string_view value = trim(*text);
  size_t open = value.find('[');
  size_t close = open == std::string_view::npos ? open : value.find(']', open);
  if (close != std::string_view::npos) {
    return std::string(trim(value.substr(open + 1, close - open - 1)));
  }
  return std::string(value);
}

Result<std::string> write_setting(const std::string& path, const std::string& value) {
  sys::ScopedFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) {
    return make_error("cannot write " + path + ": " + sys::errno_text(errno));
  }
  ssize_t put;
  do {
    put = ::write(fd.get(), value.data(), value.size());
  } while (put < 0 && errno == EINTR);
  if (put < 0) {
    return make_error("cannot write '" + value + "' to " + path + ": " + sys::errno_text(errno));
  }
  if (static_cast<size_t>(put) != value.size()) {
    return make_error("cannot write '" + value + "' to " + path + ": short write");
  }
  fd.reset();
  return read_setting(path);
}

Result<SystemSettings> SystemSettings::apply(const std::vector<SystemWrite>& writes) {
  return apply(writes, journal_dir());
}

Result<SystemSettings> SystemSettings::apply(const std::vector<SystemWrite>& writes,
                                             const std::string& dir) {
  SystemSettings settings;
  settings.dir_ = dir;
  settings.owner_ = ::getpid();
  if (writes.empty()) {
    return settings;
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (writes[i].path == writes[j].path) {
        return make_error("two factors change " + writes[i].path + " (to " + writes[j].value +
                          " and " + writes[i].value + ")");
      }
    }
  }

  auto owner = current_owner();
  if (!owner) {
    return make_error("cannot name this process in the journal: " + owner.error().message);
  }
  auto boot = current_boot_id();
  if (!boot) {
    return make_error("cannot tell which boot this is: " + boot.error().message);
  }
  auto journal = Journal::lock(dir);
  if (!journal) {
    return journal.error();
  }
  std::vector<JournalEntry> existing = journal->entries();

  // Undoes what this call made so far, then fails with `message`.
  auto fail = [&](const std::string& message) -> Result<SystemSettings> {
    std::vector<std::string> problems = undo_all(&*journal, settings.entries_);
    settings.applied_.clear();
    return make_error(problems.empty() ? message
                                       : message + "; undoing the others: " + joined(problems));
  };

  for (const SystemWrite& write : writes) {
    for (const JournalEntry& other : existing) {
      if (other.path != write.path || other.boot_id != *boot) {
        continue;  // an earlier boot's entry is void: the kernel reset the setting
      }
      if (owner_alive(other.owner)) {
        return fail(write.path + " is held by " + pid_text(other.owner) +
                    ", which is still running");
      }
      return fail(write.path + " was left changed by " + pid_text(other.owner) +
                  ", which died; run `memdet restore` first");
    }

    auto before = read_setting(write.path);
    if (!before) {
      return fail("cannot read " + write.path + " before changing it: " + before.error().message);
    }
    JournalEntry entry;
    entry.path = write.path;
    entry.before = *before;
    entry.after = std::string(trim(write.value));
    entry.owner = *owner;
    entry.boot_id = *boot;
    Status journaled = journal->add(entry);
    if (!journaled) {
      return fail("cannot journal the change of " + write.path + ": " + journaled.error().message);
    }
    if (entry.before != entry.after) {
      auto after = write_setting(write.path, write.value);
      if (!after) {
        (void)journal->remove(entry);
        return fail(after.error().message);
      }
      if (*after != entry.after) {
        // The kernel gave something else (fewer huge pages than asked):
        // what it holds now is memdet's value to find and undo later.
        entry.after = *after;
        Status updated = journal->add(entry);
        if (!updated) {
          settings.entries_.push_back(entry);
          return fail("cannot journal the change of " + write.path + ": " +
                      updated.error().message);
        }
      }
    }
    settings.entries_.push_back(entry);
    settings.applied_.push_back({entry.path, entry.before, entry.after});
  }
  return settings;
}

SystemSettings::SystemSettings(SystemSettings&& other) noexcept
    : dir_(std::move(other.dir_)),
      owner_(other.owner_),
      entries_(std::move(other.entries_)),
      applied_(std::move(other.applied_)) {
  other.entries_.clear();
  other.applied_.clear();
}

SystemSettings& SystemSettings::operator=(SystemSettings&& other) noexcept {
  if (this != &other) {
    (void)restore();
    dir_ = std::move(other.dir_);
    owner_ = other.owner_;
    entries_ = std::move(other.entries_);
    applied_ = std::move(other.applied_);
    other.entries_.clear();
    other.applied_.clear();
  }
  return *this;
}

SystemSettings::~SystemSettings() {
  Status status = restore();
  if (!status) {
    std::fprintf(stderr, "memdet: %s\n", printable(status.error().message).c_str());
  }
}

Status SystemSettings::restore() {
  if (entries_.empty() || ::getpid() != owner_) {
    return {};
  }
  // Putting the settings back matters more than the bookkeeping: without
  // the lock, the settings are still restored and the entries stay for the
  // next start, which finds them owned by a dead process and drops them.
  auto journal = Journal::lock(dir_);
  std::vector<std::string> problems = undo_all(journal ? &*journal : nullptr, entries_);
  if (!journal) {
    problems.push_back(journal.error().message);
  }
  if (!problems.empty()) {
    return make_error(joined(problems));
  }
  return {};
}

Recovery recover_stale_entries(const std::string& dir, RecoveryMode mode) {
  Recovery recovery;
  if (!journal_has_entries(dir)) {
    return recovery;
  }
  auto boot = current_boot_id();
  if (!boot) {
    recovery.failed++;
    recovery.messages.push_back("cannot tell which boot this is, so the journal in " + dir +
                                " is left alone: " + boot.error().message);
    return recovery;
  }

  std::vector<std::string> unreadable;
  if (mode == RecoveryMode::kAdvise) {
    for (const JournalEntry& entry : read_journal_unlocked(dir, &unreadable)) {
      advise(entry, *boot, recovery);
    }
    return recovery;
  }

  auto journal = Journal::lock(dir);
  if (!journal) {
    recovery.failed++;
    recovery.messages.push_back(journal.error().message + "; run `memdet restore` as root");
    return recovery;
  }
  std::vector<JournalEntry> entries = journal->entries(&unreadable);
  for (const std::string& line : unreadable) {
    recovery.failed++;
    recovery.messages.push_back(line);
  }
  for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
    recover_entry(*journal, *entry, *boot, recovery);
  }
  return recovery;
}

Status recover_journal(std::vector<std::string>& messages) {
  RecoveryMode mode = ::geteuid() == 0 ? RecoveryMode::kRestore : RecoveryMode::kAdvise;
  Recovery recovery = recover_stale_entries(journal_dir(), mode);
  messages.insert(messages.end(), recovery.messages.begin(), recovery.messages.end());
  if (!recovery.complete()) {
    return make_error("some system settings left by an earlier memdet are not restored");
  }
  return {};
}

}  // namespace memdet::factors
