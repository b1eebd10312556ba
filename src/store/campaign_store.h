// The record of a campaign: every run memdet made, in order, in a SQLite
// database inside the campaign directory, so that an interrupted campaign
// is resumed rather than started again.
//
// Durability: each run is its own transaction, committed with
// synchronous=FULL (EXTRA in rollback mode, which also syncs the directory
// after the journal goes), so a run that add_run() reported stored survives
// kill -9 and a power cut. WAL mode is used wherever the file system
// supports it; the WAL is folded back into campaign.db (checkpoint) at the
// end of each phase and on close, because a copy of campaign.db without its
// -wal file lacks the runs committed since the last checkpoint.
//
// Ownership: one memdet at a time. The store holds flock(2) on
// DIR/campaign.lock for its whole life and records itself (pid, start time,
// boot id) in the database, so a second memdet is told which process holds
// the campaign, and a row left by one that died is replaced.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/sys.h"

struct sqlite3;

namespace memdet::store {

// The schema this memdet writes and reads. A database with a higher number
// was written by a newer memdet and is refused.
inline constexpr int kSchemaVersion = 1;

struct StoredRun {
  int ordinal = 0;     // 1, 2, ... in the order the runs were made
  std::string phase;   // "free", "pinned", "factor", ...
  std::string factor;  // "" when the run varied none
  std::string record;  // the run's record, JSON text
};

// SQLite's journal: write-ahead log, or the rollback journal that is
// deleted at each commit.
enum class JournalMode { kWal, kDelete };

// A connection to SQLite, closed when it goes.
struct CloseDatabase {
  void operator()(sqlite3* db) const;
};
using Database = std::unique_ptr<sqlite3, CloseDatabase>;

// The journal mode for a file system, from statfs(2)'s f_type. WAL needs
// shared memory that every process opening the database maps, which
// network and FUSE file systems cannot give (sqlite.org/wal.html, "WAL
// does not work over a network filesystem"); those get the rollback
// journal.
JournalMode journal_mode_for_filesystem(int64_t f_type);

class CampaignStore {
 public:
  // Opens DIR/campaign.db, creating DIR, the database and its schema when
  // absent, and takes ownership of the campaign. Fails with one line naming
  // the file and the problem: not a SQLite database, not a campaign, a
  // newer schema, damaged, cannot be created, or held by another live
  // memdet (named by pid). A caller prints the line and exits 2.
  static Result<CampaignStore> open(const std::string& dir);

  CampaignStore(CampaignStore&& other) noexcept;
  CampaignStore& operator=(CampaignStore&& other) noexcept;
  CampaignStore(const CampaignStore&) = delete;
  CampaignStore& operator=(const CampaignStore&) = delete;
  // Gives up ownership, checkpoints and closes; errors are lost here, so a
  // caller that wants to report them calls checkpoint() first.
  ~CampaignStore();

  // DIR/campaign.db.
  const std::string& path() const { return path_; }

  // Sets `key` to `value`, replacing an earlier value, in one transaction.
  // "schema_version" is the store's own and is refused.
  Status set_meta(const std::string& key, const std::string& value);
  // The value of `key`; none when unset or when the database cannot be read.
  std::optional<std::string> meta(const std::string& key) const;

  // Stores one run durably before returning. Refuses an ordinal below 1, an
  // ordinal already stored and a record that is not JSON.
  Status add_run(const StoredRun& run);
  // Every stored run, in ordinal order.
  Result<std::vector<StoredRun>> runs() const;

  // Folds the WAL into campaign.db and truncates it, so that campaign.db
  // alone holds every committed run. Nothing to do in rollback mode.
  Status checkpoint();
  // "wal" or "delete", as SQLite reports the mode in force.
  std::string journal_mode() const { return journal_mode_; }

 private:
  CampaignStore(std::string path, sys::ScopedFd lock, Database db, std::string journal_mode);
  void close();

  std::string path_;
  std::string journal_mode_;
  sys::ScopedFd lock_;
  Database db_;  // declared after lock_: closed before the lock is let go
};

}  // namespace memdet::store
