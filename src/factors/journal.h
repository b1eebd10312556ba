// The journal of system-wide settings memdet has changed and not yet put
// back. Before memdet writes a /proc/sys or /sys file it records here who
// it is, which boot this is, the file, and the value before and after; the
// entry goes once the value is back. An entry whose owner died (kill -9, a
// power cut needs no entry: the kernel resets such settings at boot) tells
// the next memdet what to undo.
//
// One JSON file per entry in the journal directory, written to a temporary
// name, fsync'd and renamed into place, so a reader never sees half an
// entry. A `lock` file beside them, held with flock(2) while entries are
// read and changed, makes "is this setting free? then take it" one step
// between processes. The lock is held for milliseconds, never for a run:
// during a run the live owner's entry is what holds the setting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

#include "core/result.h"
#include "core/sys.h"

namespace memdet::factors {

// /var/lib/memdet, or $MEMDET_JOURNAL_DIR when set and not empty.
std::string journal_dir();

// A process as the journal names it: the pid, and its start time (field 22
// of /proc/<pid>/stat, in clock ticks since boot) so that a recycled pid is
// not taken for the owner.
struct Owner {
  pid_t pid = 0;
  uint64_t start_time = 0;
};

// This process.
Result<Owner> current_owner();
// Whether `owner` is still running: its pid exists and started when the
// entry says.
bool owner_alive(const Owner& owner);
// The start time of `pid`, or an error when there is no such process.
Result<uint64_t> process_start_time(pid_t pid);

// /proc/sys/kernel/random/boot_id, trimmed: different after every boot.
Result<std::string> current_boot_id();

struct JournalEntry {
  std::string path;    // the setting's file
  std::string before;  // the value to put back, as read (the bracketed word for THP files)
  std::string after;   // memdet's value, as it read back after the write
  Owner owner;
  std::string boot_id;
  int64_t written_at = 0;  // nanoseconds since the epoch; orders the entries
  std::string file;        // the entry's file name in the directory; set by add()
};

// An open, locked journal directory. Moving it moves the lock; the lock is
// released when the Journal goes.
class Journal {
 public:
  // Creates `dir` (mode 0755) when missing and takes the lock, waiting up to
  // `wait_seconds` for another memdet to let go of it. Fails when the
  // directory cannot be created or the lock file opened (not root), when
  // the directory belongs to another user or others may write it, or when
  // the wait ran out.
  static Result<Journal> lock(const std::string& dir, double wait_seconds = 10);

  const std::string& dir() const { return dir_; }

  // Every entry, oldest first. A file that cannot be read or parsed, or
  // that another user owns or may write, is reported in `unreadable` (one
  // line each) and otherwise left alone: an entry says which file to write
  // as root.
  std::vector<JournalEntry> entries(std::vector<std::string>* unreadable = nullptr) const;

  // Writes `entry` durably (file and directory fsync'd) before returning.
  // A new entry gets a new file name; an entry read back from entries()
  // keeps its own, so add() then replaces it.
  Status add(JournalEntry& entry);
  // Removes the entry's file, durably.
  Status remove(const JournalEntry& entry);

 private:
  Journal(std::string dir, sys::ScopedFd lock) : dir_(std::move(dir)), lock_(std::move(lock)) {}

  std::string dir_;
  sys::ScopedFd lock_;
};

// Whether `dir` holds any entry at all, without locking or creating
// anything: the check every memdet start makes, so it must cost a
// directory read at most.
bool journal_has_entries(const std::string& dir);

// Reads the entries of `dir` without the lock, for a process that cannot
// take it (not root) and only wants to tell the user. Renames are atomic,
// so it still sees only whole entries.
std::vector<JournalEntry> read_journal_unlocked(const std::string& dir,
                                                std::vector<std::string>* unreadable = nullptr);

}  // namespace memdet::factors
