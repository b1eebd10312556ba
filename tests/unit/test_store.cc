// The campaign store: runs and meta kept across a reopen and a kill -9, one
// owner at a time, and a clean line for every file it cannot use. Rows a
// dead or foreign memdet would have left are written with SQLite directly.
#include "store/campaign_store.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>

#include "core/sys.h"
#include "factors/journal.h"
#include "scratch.h"

namespace memdet::store {
namespace {

namespace fs = std::filesystem;
using testing_support::Scratch;

StoredRun make_run(int ordinal, const std::string& phase = "free", const std::string& factor = "") {
  // Quotes, a backslash and non-ASCII text, so a record that came back
  // altered in any byte would not compare equal.
  std::string record = "{\"run\": " + std::to_string(ordinal) + ", \"note\": \"a \\\"quoted\\\" " +
                       "\\\\ déjà vu\", \"pad\": \"" + std::string(ordinal % 97, 'x') + "\"}";
  return StoredRun{ordinal, phase, factor, record};
}

void expect_same(const StoredRun& got, const StoredRun& want) {
  EXPECT_EQ(got.ordinal, want.ordinal);
  EXPECT_EQ(got.phase, want.phase);
  EXPECT_EQ(got.factor, want.factor);
  EXPECT_EQ(got.record, want.record);
}

std::string db_path(const Scratch& scratch) { return scratch.path() + "/campaign.db"; }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs `sql` on the database as another program would, outside the store.
void write_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int opened =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  char* message = nullptr;
  int rc = opened == SQLITE_OK ? sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) : opened;
  std::string text = message != nullptr ? message : sqlite3_errmsg(db);
  sqlite3_free(message);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << sql << ": " << text;
}

// The first column of the first row of `sql`, "" when there is none.
std::string read_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string value;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    }
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return value;
}

void write_owner(const std::string& path, pid_t pid, uint64_t start_time,
                 const std::string& boot_id) {
  write_sql(path, "UPDATE owner SET pid = " + std::to_string(pid) +
                      ", start_time = " + std::to_string(start_time) + ", boot_id = '" + boot_id +
                      "'; INSERT OR IGNORE INTO owner VALUES (1, " + std::to_string(pid) + ", " +
                      std::to_string(start_time) + ", '" + boot_id + "');");
}

// A child that sleeps until killed, or for 30 s at most.
pid_t sleeping_child() {
  pid_t child = ::fork();
  if (child == 0) {
    ::alarm(30);
    for (;;) {
      ::pause();
    }
  }
  return child;
}

// Reads one int from `fd`, waiting up to `seconds`. False at end of file,
// on error or on timeout.
bool read_int(int fd, int32_t& value, int seconds) {
  pollfd ready{fd, POLLIN, 0};
  if (::poll(&ready, 1, seconds * 1000) != 1) {
    return false;
  }
  return ::read(fd, &value, sizeof value) == static_cast<ssize_t>(sizeof value);
}

TEST(StoreJournalMode, NetworkAndFuseFileSystemsGetTheRollbackJournal) {
  EXPECT_EQ(journal_mode_for_filesystem(0x6969), JournalMode::kDelete);      // NFS
  EXPECT_EQ(journal_mode_for_filesystem(0x0BD00BD0), JournalMode::kDelete);  // Lustre
  EXPECT_EQ(journal_mode_for_filesystem(0x47504653), JournalMode::kDelete);  // GPFS
  EXPECT_EQ(journal_mode_for_filesystem(0x65735546), JournalMode::kDelete);  // FUSE
  EXPECT_EQ(journal_mode_for_filesystem(0xFF534D42), JournalMode::kDelete);  // CIFS
  EXPECT_EQ(journal_mode_for_filesystem(0xFE534D42), JournalMode::kDelete);  // SMB2
  // The same magic numbers as a signed 32-bit f_type would carry them.
  EXPECT_EQ(journal_mode_for_filesystem(static_cast<int32_t>(0xFF534D42)), JournalMode::kDelete);
  EXPECT_EQ(journal_mode_for_filesystem(static_cast<int32_t>(0xFE534D42)), JournalMode::kDelete);

  EXPECT_EQ(journal_mode_for_filesystem(0xEF53), JournalMode::kWal);      // ext4
  EXPECT_EQ(journal_mode_for_filesystem(0x01021994), JournalMode::kWal);  // tmpfs
  EXPECT_EQ(journal_mode_for_filesystem(0x58465342), JournalMode::kWal);  // XFS
  EXPECT_EQ(journal_mode_for_filesystem(0x9123683E), JournalMode::kWal);  // Btrfs
}

TEST(Store, UsesTheJournalModeItsFileSystemAllows) {
  Scratch scratch;
  struct statfs filesystem {};
  ASSERT_EQ(::statfs(scratch.path().c_str(), &filesystem), 0);
  bool wal = journal_mode_for_filesystem(filesystem.f_type) == JournalMode::kWal;

  auto store = CampaignStore::open(scratch.path());
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(store->journal_mode(), wal ? "wal" : "delete");
  EXPECT_EQ(read_sql(db_path(scratch), "PRAGMA journal_mode"), wal ? "wal" : "delete");
  EXPECT_EQ(store->path(), db_path(scratch));
}

TEST(Store, KeepsMetaAndRunsAcrossAReopen) {
  Scratch scratch;
  std::string dir = scratch.path() + "/campaign";  // made by open()
  std::vector<StoredRun> made = {make_run(1, "free"), make_run(2, "pinned"),
                                 make_run(3, "factor", "aslr"), make_run(4, "factor", "heap")};
  {
    auto store = CampaignStore::open(dir);
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_TRUE(store->runs()->empty());
    EXPECT_FALSE(store->meta("command"));
    ASSERT_TRUE(store->set_meta("command", "python3 train.py"));
    ASSERT_TRUE(store->set_meta("phase", "free"));
    ASSERT_TRUE(store->set_meta("phase", "factor"));  // replaces
    ASSERT_TRUE(store->set_meta("empty", ""));
    // Stored out of order; read back in ordinal order.
    for (int index : {1, 0, 3, 2}) {
      Status added = store->add_run(made[static_cast<size_t>(index)]);
      ASSERT_TRUE(added) << added.error().message;
    }
    EXPECT_EQ(store->meta("phase"), "factor");
    auto runs = store->runs();
    ASSERT_TRUE(runs) << runs.error().message;
    ASSERT_EQ(runs->size(), made.size());
    for (size_t i = 0; i < made.size(); ++i) {
      expect_same((*runs)[i], made[i]);
    }
  }

  auto store = CampaignStore::open(dir);
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ(store->meta("command"), "python3 train.py");
  EXPECT_EQ(store->meta("phase"), "factor");
  EXPECT_EQ(store->meta("empty"), "");
  EXPECT_FALSE(store->meta("missing"));
  EXPECT_EQ(store->meta("schema_version"), std::to_string(kSchemaVersion));
  EXPECT_FALSE(store->set_meta("schema_version", "7"));
  EXPECT_EQ(store->meta("schema_version"), std::to_string(kSchemaVersion));
  auto runs = store->runs();
  ASSERT_TRUE(runs) << runs.error().message;
  ASSERT_EQ(runs->size(), made.size());
  for (size_t i = 0; i < made.size(); ++i) {
    expect_same((*runs)[i], made[i]);
  }
}

TEST(Store, RefusesASecondRecordForAnOrdinal) {
  Scratch scratch;
  auto store = CampaignStore::open(scratch.path());
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE(store->add_run(make_run(1)));

  Status again = store->add_run(make_run(1, "pinned", "thp"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, db_path(scratch) + ": run 1 is already stored");
  EXPECT_FALSE(store->add_run(make_run(0)));
  EXPECT_FALSE(store->add_run(StoredRun{-3, "free", "", "{}"}));
  EXPECT_FALSE(store->add_run(StoredRun{2, "free", "", "{\"cut\": "}));

  auto runs = store->runs();
  ASSERT_TRUE(runs) << runs.error().message;
  ASSERT_EQ(runs->size(), 1u);
  expect_same((*runs)[0], make_run(1));
  ASSERT_TRUE(store->add_run(make_run(2)));
}

TEST(Store, LeavesOnlyTheDatabaseFileAfterACheckpoint) {
  Scratch scratch;
  auto store = CampaignStore::open(scratch.path() + "/a");
  ASSERT_TRUE(store) << store.error().message;
  for (int ordinal = 1; ordinal <= 50; ++ordinal) {
    ASSERT_TRUE(store->add_run(make_run(ordinal)));
  }
  Status checkpointed = store->checkpoint();
  ASSERT_TRUE(checkpointed) << checkpointed.error().message;
  if (store->journal_mode() == "wal") {
    EXPECT_EQ(fs::file_size(scratch.path() + "/a/campaign.db-wal"), 0u);
  }

  // A copy of campaign.db alone, as a user would take one, has every run.
  fs::create_directories(scratch.path() + "/b");
  fs::copy_file(scratch.path() + "/a/campaign.db", scratch.path() + "/b/campaign.db");
  auto copy = CampaignStore::open(scratch.path() + "/b");
  ASSERT_TRUE(copy) << copy.error().message;
  EXPECT_EQ(copy->runs()->size(), 50u);
}

TEST(Store, RefusesASecondOpenNamingTheHolder) {
  Scratch scratch;
  auto ready = sys::make_pipe();
  auto release = sys::make_pipe();
  ASSERT_TRUE(ready && release);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(30);
    release->write.reset();
    auto store = CampaignStore::open(scratch.path());
    int32_t opened = store ? 1 : 0;
    (void)sys::write_all(ready->write.get(), &opened, sizeof opened);
    char byte = 0;
    (void)::read(release->read.get(), &byte, 1);  // until the parent lets go
    ::_exit(0);
  }
  ready->write.reset();
  release->read.reset();
  int32_t opened = 0;
  ASSERT_TRUE(read_int(ready->read.get(), opened, 30));
  ASSERT_EQ(opened, 1);

  auto second = CampaignStore::open(scratch.path());
  ASSERT_FALSE(second);
  EXPECT_TRUE(contains(second.error().message, "pid " + std::to_string(child) + ";"))
      << second.error().message;
  EXPECT_TRUE(contains(second.error().message, scratch.path())) << second.error().message;

  release->write.reset();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto after = CampaignStore::open(scratch.path());
  ASSERT_TRUE(after) << after.error().message;

  // A second open in the same process is refused as well, naming itself.
  auto same = CampaignStore::open(scratch.path());
  ASSERT_FALSE(same);
  EXPECT_TRUE(contains(same.error().message, "pid " + std::to_string(::getpid()) + ";"))
      << same.error().message;
}

TEST(Store, TakesOverFromAnOwnerThatIsGone) {
  Scratch scratch;
  std::string path = db_path(scratch);
  {
    auto store = CampaignStore::open(scratch.path());
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE(store->add_run(make_run(1)));
  }
  EXPECT_EQ(read_sql(path, "SELECT count(*) FROM owner"), "0");  // a clean close leaves none
  std::string boot = *factors::current_boot_id();
  std::string self = std::to_string(::getpid());

  // A pid that no longer exists: a child that has exited and been reaped.
  pid_t dead = ::fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) {
    ::_exit(0);
  }
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  write_owner(path, dead, 12345, boot);
  {
    auto store = CampaignStore::open(scratch.path());
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ(read_sql(path, "SELECT pid FROM owner"), self);
    EXPECT_EQ(store->runs()->size(), 1u);
  }

  // A live process of another boot: the pid is a coincidence.
  pid_t parent = ::getppid();
  write_owner(path, parent, *factors::process_start_time(parent), "another-boot");
  {
    auto store = CampaignStore::open(scratch.path());
    ASSERT_TRUE(store) << store.error().message;
    EXPECT_EQ(read_sql(path, "SELECT pid FROM owner"), self);
  }
  // And the same pid when it started at another time: a recycled pid.
  write_owner(path, parent, *factors::process_start_time(parent) + 1, boot);
  {
    auto store = CampaignStore::open(scratch.path());
    ASSERT_TRUE(store) << store.error().message;
  }
}

TEST(Store, RefusesAnOwnerThatStillRunsThoughTheLockIsFree) {
  Scratch scratch;
  std::string path = db_path(scratch);
  ASSERT_TRUE(CampaignStore::open(scratch.path()));
  std::string boot = *factors::current_boot_id();

  // As if campaign.lock had been removed while its holder ran.
  pid_t holder = sleeping_child();
  ASSERT_GE(holder, 0);
  write_owner(path, holder, *factors::process_start_time(holder), boot);
  auto refused = CampaignStore::open(scratch.path());
  ::kill(holder, SIGKILL);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(contains(refused.error().message, "pid " + std::to_string(holder) + ";"))
      << refused.error().message;

  // Killed but not yet reaped, it holds nothing.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(holder), &info, WEXITED | WNOWAIT), 0);
  auto taken = CampaignStore::open(scratch.path());
  ::waitpid(holder, nullptr, 0);
  EXPECT_TRUE(taken) << taken.error().message;
}

TEST(Store, ReportsAFileThatIsNotACampaignInOneLine) {
  Scratch scratch;
  std::string text(4096, 'z');
  std::string path = scratch.write("notdb/campaign.db", text);
  auto opened = CampaignStore::open(scratch.path() + "/notdb");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message, path + " is not a SQLite database");
  EXPECT_EQ(scratch.read("notdb/campaign.db"), text);
  EXPECT_FALSE(fs::exists(path + "-wal"));

  std::string other = scratch.path() + "/other/campaign.db";
  fs::create_directories(scratch.path() + "/other");
  write_sql(other, "CREATE TABLE photos (name TEXT);");
  opened = CampaignStore::open(scratch.path() + "/other");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().message, other + " is a SQLite database but not a memdet campaign");

  ASSERT_TRUE(CampaignStore::open(scratch.path() + "/newer"));
  std::string newer = scratch.path() + "/newer/campaign.db";
  write_sql(newer, "UPDATE meta SET value = '2' WHERE key = 'schema_version';");
  opened = CampaignStore::open(scratch.path() + "/newer");
  ASSERT_FALSE(opened);
  EXPECT_TRUE(contains(opened.error().message, newer + " has schema version 2, newer than"))
      << opened.error().message;
  EXPECT_FALSE(contains(opened.error().message, "\n"));

  // The campaign directory under a regular file cannot be made.
  scratch.write("plain", "x");
  opened = CampaignStore::open(scratch.path() + "/plain/campaign");
  ASSERT_FALSE(opened);
  EXPECT_TRUE(contains(opened.error().message, scratch.path() + "/plain/campaign"))
      << opened.error().message;
  EXPECT_FALSE(contains(opened.error().message, "\n"));
}

// A child stores runs as fast as it can and reports each one once add_run()
// has returned; it is killed with SIGKILL in the middle of that. Every run it
// reported must be there and intact, and the next child resumes after the
// last one stored. Three rounds, so the kills fall at different points.
TEST(Store, KeepsEveryRunCommittedBeforeAKill) {
  Scratch scratch;
  int32_t last_reported = 0;
  for (int round = 0; round < 3; ++round) {
    auto report = sys::make_pipe();
    ASSERT_TRUE(report);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::alarm(60);
      report->read.reset();
      auto store = CampaignStore::open(scratch.path());
      if (!store) {
        ::_exit(3);
      }
      auto stored = store->runs();
      if (!stored) {
        ::_exit(4);
      }
      for (int32_t ordinal = static_cast<int32_t>(stored->size()) + 1;; ++ordinal) {
        if (!store->add_run(make_run(ordinal, "free", std::to_string(round)))) {
          ::_exit(5);
        }
        if (!sys::write_all(report->write.get(), &ordinal, sizeof ordinal)) {
          ::_exit(6);
        }
      }
    }
    report->write.reset();

    int32_t ordinal = 0;
    int wanted = 20 + 13 * round;
    for (int seen = 0; seen < wanted && read_int(report->read.get(), ordinal, 30); ++seen) {
      last_reported = ordinal;
    }
    ::kill(child, SIGKILL);
    // Reports written before the kill are still in the pipe.
    while (read_int(report->read.get(), ordinal, 30)) {
      last_reported = ordinal;
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child stopped by itself with status " << status;

    auto store = CampaignStore::open(scratch.path());
    ASSERT_TRUE(store) << store.error().message;
    auto runs = store->runs();
    ASSERT_TRUE(runs) << runs.error().message;
    // One more run than reported when the kill fell between a commit and
    // its report.
    ASSERT_GE(runs->size(), static_cast<size_t>(last_reported));
    ASSERT_LE(runs->size(), static_cast<size_t>(last_reported) + 1);
    for (size_t i = 0; i < runs->size(); ++i) {
      EXPECT_EQ((*runs)[i].ordinal, static_cast<int>(i) + 1);
      EXPECT_EQ((*runs)[i].record, make_run(static_cast<int>(i) + 1).record);
    }
    last_reported = static_cast<int32_t>(runs->size());
  }
  EXPECT_GE(last_reported, 20 + 33 + 46);
}

}  // namespace
}  // namespace memdet::store
