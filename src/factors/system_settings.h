// System-wide settings (/proc/sys and /sys files) changed for the length of
// a campaign and put back on every way out. Each change is journaled
// before it is made (factors/journal.h); the guard puts the old values back
// when it goes, newest first, so an error, an exception or an interrupted
// campaign unwinds them like a normal end. After a kill -9 the journal is
// what is left, and the next memdet start undoes it with recover_journal().
//
// The paths are whatever the factors name, so tests point them, and the
// journal (MEMDET_JOURNAL_DIR), at plain files in a scratch directory.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "factors/factor.h"
#include "factors/journal.h"
#include "factors/profile.h"

namespace memdet::factors {

// The current value of a setting, trimmed. For a file that lists the
// choices with the current one in brackets, as the THP files do
// ("always [madvise] never"), the bracketed word.
Result<std::string> read_setting(const std::string& path);

// Writes `value` as it is, in one write(2) (a /proc/sys handler parses each
// write on its own), then returns what the file reads back (read_setting).
// The read-back may differ from `value` where the kernel grants less than
// asked, as vm/nr_hugepages does.
Result<std::string> write_setting(const std::string& path, const std::string& value);

struct AppliedSetting {
  std::string path;
  std::string before;  // as read before the change; what restore() writes back
  std::string after;   // as read after the change
};

// Holds a set of changed settings; restores them when it goes. Move-only.
class SystemSettings {
 public:
  // For each write in order: refuses a path that a live memdet holds (the
  // error names the path and its pid) or that a dead one left changed; reads
  // the value before, journals the change durably, then makes it. When one
  // fails, the changes already made are undone before the error returns.
  // A write whose value the setting already has is journaled (so that no
  // other memdet changes it meanwhile) but not written.
  static Result<SystemSettings> apply(const std::vector<SystemWrite>& writes);
  static Result<SystemSettings> apply(const std::vector<SystemWrite>& writes,
                                      const std::string& journal_dir);

  SystemSettings(SystemSettings&& other) noexcept;
  SystemSettings& operator=(SystemSettings&& other) noexcept;
  SystemSettings(const SystemSettings&) = delete;
  SystemSettings& operator=(const SystemSettings&) = delete;
  // Calls restore(); a failure is printed on stderr, the one place left to
  // say it.
  ~SystemSettings();

  // Puts back every setting, newest first, and removes its journal entry.
  // A setting that no longer holds memdet's value was changed by someone
  // else: it is left as found. A setting that cannot be written back keeps
  // its entry, so the next memdet start retries it. The error lists both
  // kinds, one "; "-separated clause per setting. Idempotent; does nothing
  // in a forked child, which does not own the settings.
  Status restore();

  const std::vector<AppliedSetting>& applied() const { return applied_; }

 private:
  SystemSettings() = default;

  std::string dir_;
  pid_t owner_ = 0;
  std::vector<JournalEntry> entries_;  // one per applied_ setting, same order
  std::vector<AppliedSetting> applied_;
};

// What a recovery found and did.
struct Recovery {
  std::vector<std::string> messages;  // one line per entry acted on or reported
  std::vector<std::string> held;      // one line per entry a live memdet holds
  int restored = 0;                   // written back
  int dropped = 0;                    // nothing to write: earlier boot, or already back
  int changed = 0;                    // changed by someone else since; left as found
  int failed = 0;                     // could not be written back, or unreadable; entry kept
  int advised = 0;                    // left for `memdet restore` as root

  // Every stale setting is back where memdet found it, or was never changed.
  bool complete() const { return changed == 0 && failed == 0 && advised == 0; }
};

enum class RecoveryMode {
  kRestore,  // undo what dead owners left
  kAdvise,   // only say what is left and who can undo it (memdet is not root)
};

// Goes through the journal in `dir`: entries of an earlier boot are
// dropped with a note, since the kernel reset those settings when it
// booted; entries whose owner died are undone (kRestore) or reported
// (kAdvise); entries of a live owner are left to it. Costs one directory
// read when the journal is missing or empty, with no lock taken.
Recovery recover_stale_entries(const std::string& dir, RecoveryMode mode);

// The start of run and check: recovers the default journal (journal_dir()),
// restoring as root and advising otherwise. Fails when something stale is
// left; `messages` gets one line per setting either way.
Status recover_journal(std::vector<std::string>& messages);

}  // namespace memdet::factors
