#include "store/campaign_store.h"

#include <cerrno>
#include <charconv>
#include <ctime>
#include <filesystem>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/vfs.h>

#include <nlohmann/json.hpp>

#include "factors/journal.h"

namespace memdet::store {
namespace {

constexpr const char* kDatabaseName = "campaign.db";
constexpr const char* kLockName = "campaign.lock";
constexpr const char* kVersionKey = "schema_version";

// How long a statement waits for another connection to let go of the
// database (a memdet reading the owner row to name it) before failing.
constexpr int kBusyTimeoutMs = 10000;
// How long a memdet that finds the lock taken waits for the holder to
// record itself, which it does right after taking the lock.
constexpr double kOwnerWaitSeconds = 2;

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);
CREATE TABLE runs (
  ordinal INTEGER PRIMARY KEY CHECK (ordinal > 0),
  phase TEXT NOT NULL,
  factor TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE TABLE owner (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  start_time INTEGER NOT NULL,
  boot_id TEXT NOT NULL
);
)sql";

struct FinalizeStatement {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using Statement = std::unique_ptr<sqlite3_stmt, FinalizeStatement>;

// SQLite's message for the last failure, with the system's reason when a
// file operation failed ("unable to open database file" alone does not
// say why).
std::string describe(sqlite3* db) {
  std::string text = sqlite3_errmsg(db);
  int primary = sqlite3_extended_errcode(db) & 0xff;
  int system = sqlite3_system_errno(db);
  if ((primary == SQLITE_CANTOPEN || primary == SQLITE_IOERR) && system != 0) {
    text += " (" + sys::errno_text(system) + ")";
  }
  return text;
}

// One line for the last failure on `db`, naming the file.
Error failure(sqlite3* db, const std::string& path, const std::string& doing) {
  switch (sqlite3_errcode(db)) {
    case SQLITE_NOTADB:
      return make_error(path + " is not a SQLite database");
    case SQLITE_CORRUPT:
      return make_error(path + " is damaged: " + describe(db));
    default:
      return make_error(path + ": cannot " + doing + ": " + describe(db));
  }
}

Result<Statement> prepare(sqlite3* db, const std::string& path, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  Statement statement(raw);
  if (rc != SQLITE_OK) {
    return failure(db, path, std::string("prepare \"") + sql + "\"");
  }
  return statement;
}

// For statements without parameters: pragmas, schema, transactions.
Status execute(sqlite3* db, const std::string& path, const char* sql, const std::string& doing) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return failure(db, path, doing);
  }
  return {};
}

// SQLite copies the text (SQLITE_TRANSIENT), so a temporary may be bound.
bool bind_text(sqlite3_stmt* statement, int index, const std::string& text) {
  return sqlite3_bind_text64(statement, index, text.data(), text.size(), SQLITE_TRANSIENT,
                             SQLITE_UTF8) == SQLITE_OK;
}

std::string column_text(sqlite3_stmt* statement, int column) {
  const unsigned char* text = sqlite3_column_text(statement, column);
  if (text == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(statement, column)));
}

Result<Database> open_database(const std::string& path, int flags, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // A handle comes back even when the open fails, and must be closed.
  Database db(raw);
  if (raw == nullptr) {
    return make_error("cannot open " + path + ": out of memory");
  }
  if (rc != SQLITE_OK) {
    return make_error("cannot open " + path + ": " + describe(raw));
  }
  if (sqlite3_extended_result_codes(raw, 1) != SQLITE_OK ||
      sqlite3_busy_timeout(raw, busy_timeout_ms) != SQLITE_OK) {
    return failure(raw, path, "configure the connection");
  }
  return db;
}

struct OwnerRow {
  factors::Owner owner;
  std::string boot_id;
};

Result<std::optional<OwnerRow>> read_owner(sqlite3* db, const std::string& path) {
  auto statement = prepare(db, path, "SELECT pid, start_time, boot_id FROM owner WHERE id = 1");
  if (!statement) {
    return statement.error();
  }
  int rc = sqlite3_step(statement->get());
  if (rc == SQLITE_DONE) {
    return std::optional<OwnerRow>();
  }
  if (rc != SQLITE_ROW) {
    return failure(db, path, "read the owner");
  }
  OwnerRow row;
  row.owner.pid = static_cast<pid_t>(sqlite3_column_int64(statement->get(), 0));
  row.owner.start_time = static_cast<uint64_t>(sqlite3_column_int64(statement->get(), 1));
  row.boot_id = column_text(statement->get(), 2);
  return std::optional<OwnerRow>(std::move(row));
}

// The owner row as another memdet sees it while the lock is held: read
// only, waiting little. None when there is none yet or it cannot be read.
std::optional<OwnerRow> peek_owner(const std::string& path) {
  auto db = open_database(path, SQLITE_OPEN_READONLY, 200);
  if (!db) {
    return std::nullopt;
  }
  auto row = read_owner(db->get(), path);
  return row ? *row : std::nullopt;
}

// Whether the process a row names runs now: this boot, the same pid and
// start time, and not a zombie (one that has exited has let go of its
// locks, though its /proc entry stays until it is reaped).
bool running(const OwnerRow& row, const std::string& boot_id) {
  if (row.boot_id != boot_id || !factors::owner_alive(row.owner)) {
    return false;
  }
  auto stat = sys::read_small_file("/proc/" + std::to_string(row.owner.pid) + "/stat");
  if (!stat) {
    return false;
  }
  // Field 3, the state, follows the parenthesised command (proc_pid_stat(5)).
  size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) {
    return true;
  }
  char state = (*stat)[close + 2];
  return state != 'Z' && state != 'X';
}

std::string held_by(const std::string& dir, pid_t pid) {
  return "the campaign in " + dir + " is held by memdet pid " + std::to_string(pid) +
         "; wait for it to finish or stop it";
}

// Takes the campaign's lock without waiting for it. When another process
// holds it, fails naming that process.
Result<sys::ScopedFd> take_lock(const std::string& dir, const std::string& lock_path,
                                const std::string& db_path, const std::string& boot_id) {
  sys::ScopedFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    return make_error("cannot open " + lock_path + ": " + sys::errno_text(errno));
  }

  double deadline = sys::monotonic_seconds() + kOwnerWaitSeconds;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) {
      continue;
    }
    if (errno != EWOULDBLOCK) {
      // Lustre mounted without -o flock, and some FUSE file systems, say ENOSYS.
      return make_error("cannot lock " + lock_path + ": " + sys::errno_text(errno));
    }
    std::optional<OwnerRow> holder = peek_owner(db_path);
    if (holder && running(*holder, boot_id)) {
      return make_error(held_by(dir, holder->owner.pid));
    }
    if (sys::monotonic_seconds() > deadline) {
      return make_error(lock_path + " is held by a process that has not recorded itself in " +
                        db_path);
    }
    timespec pause{0, 20 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
  return fd;
}

enum class Schema { kEmpty, kCurrent };

// What the database holds: nothing yet, or this memdet's schema. Anything
// else is an error naming the file.
Result<Schema> read_schema(sqlite3* db, const std::string& path) {
  auto tables = prepare(db, path, "SELECT name FROM sqlite_master WHERE type = 'table'");
  if (!tables) {
    return tables.error();
  }
  bool any = false;
  int found = 0;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(tables->get())) == SQLITE_ROW) {
    std::string name = column_text(tables->get(), 0);
    any = true;
    found += name == "meta" || name == "runs" || name == "owner";
  }
  if (rc != SQLITE_DONE) {
    return failure(db, path, "read the schema");
  }
  if (!any) {
    return Schema::kEmpty;
  }
  if (found != 3) {
    return make_error(path + " is a SQLite database but not a memdet campaign");
  }

  auto version = prepare(db, path, "SELECT value FROM meta WHERE key = ?1");
  if (!version) {
    return version.error();
  }
  if (!bind_text(version->get(), 1, kVersionKey)) {
    return failure(db, path, "read the schema version");
  }
  rc = sqlite3_step(version->get());
  if (rc == SQLITE_DONE) {
    return make_error(path + " is a SQLite database but not a memdet campaign (no " + kVersionKey +
                      ")");
  }
  if (rc != SQLITE_ROW) {
    return failure(db, path, "read the schema version");
  }
  std::string text = column_text(version->get(), 0);
  int number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size() || number < 1) {
    return make_error(path + " is damaged: schema version \"" + text + "\"");
  }
  if (number > kSchemaVersion) {
    return make_error(path + " has schema version " + text + ", newer than this memdet reads (" +
                      std::to_string(kSchemaVersion) + "); use a newer memdet");
  }
  return Schema::kCurrent;
}

// Sets the journal mode and the matching synchronous level; returns the
// mode SQLite reports in force, which is the old one when it refused.
Result<std::string> set_journal_mode(sqlite3* db, const std::string& path, JournalMode wanted) {
  auto statement = prepare(
      db, path,
      wanted == JournalMode::kWal ? "PRAGMA journal_mode = WAL" : "PRAGMA journal_mode = DELETE");
  if (!statement) {
    return statement.error();
  }
  if (sqlite3_step(statement->get()) != SQLITE_ROW) {
    return failure(db, path, "set the journal mode");
  }
  std::string mode = column_text(statement->get(), 0);

  // FULL syncs the WAL at each commit, which makes it durable. In rollback
  // mode a commit is the journal's deletion, and only EXTRA syncs the
  // directory after it; without that a power cut can bring the journal
  // back and roll the commit back (sqlite.org/pragma.html#pragma_synchronous).
  Status synchronous =
      execute(db, path, mode == "wal" ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = EXTRA",
              "set synchronous");
  if (!synchronous) {
    return synchronous.error();
  }
  return mode;
}

Status quick_check(sqlite3* db, const std::string& path) {
  auto statement = prepare(db, path, "PRAGMA quick_check(1)");
  if (!statement) {
    return statement.error();
  }
  if (sqlite3_step(statement->get()) != SQLITE_ROW) {
    return failure(db, path, "check the database");
  }
  std::string verdict = column_text(statement->get(), 0);
  if (verdict != "ok") {
    return make_error(path + " is damaged: " + verdict);
  }
  return {};
}

Status write_meta(sqlite3* db, const std::string& path, const std::string& key,
                  const std::string& value) {
  auto statement = prepare(db, path,
                           "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  if (!statement) {
    return statement.error();
  }
  if (!bind_text(statement->get(), 1, key) || !bind_text(statement->get(), 2, value) ||
      sqlite3_step(statement->get()) != SQLITE_DONE) {
    return failure(db, path, "set " + key);
  }
  return {};
}

// Creates the schema when the database is new and records this process as
// the owner, in one transaction: a memdet killed half-way leaves either
// nothing or all of it.
Status take_ownership(sqlite3* db, const std::string& dir, const std::string& path, Schema schema,
                      const factors::Owner& self, const std::string& boot_id) {
  Status begun = execute(db, path, "BEGIN IMMEDIATE", "begin a transaction");
  if (!begun) {
    return begun;
  }
  auto work = [&]() -> Status {
    if (schema == Schema::kEmpty) {
      Status created = execute(db, path, kCreateSchema, "create the schema");
      if (!created) {
        return created;
      }
      Status versioned = write_meta(db, path, kVersionKey, std::to_string(kSchemaVersion));
      if (!versioned) {
        return versioned;
      }
    }

    // The lock was free, so a row naming a running process means its lock
    // file was removed and made again: that process still writes here.
    auto previous = read_owner(db, path);
    if (!previous) {
      return previous.error();
    }
    if (*previous && running(**previous, boot_id) &&
        ((*previous)->owner.pid != self.pid || (*previous)->owner.start_time != self.start_time)) {
      return make_error(held_by(dir, (*previous)->owner.pid) + " (its lock file was replaced)");
    }

    auto statement = prepare(db, path,
                             "INSERT OR REPLACE INTO owner (id, pid, start_time, boot_id) "
                             "VALUES (1, ?1, ?2, ?3)");
    if (!statement) {
      return statement.error();
    }
    if (sqlite3_bind_int64(statement->get(), 1, self.pid) != SQLITE_OK ||
        sqlite3_bind_int64(statement->get(), 2, static_cast<sqlite3_int64>(self.start_time)) !=
            SQLITE_OK ||
        !bind_text(statement->get(), 3, boot_id) || sqlite3_step(statement->get()) != SQLITE_DONE) {
      return failure(db, path, "record the owner");
    }
    return execute(db, path, "COMMIT", "commit the owner");
  };
  Status done = work();
  if (!done) {
    // Fails harmlessly when SQLite has rolled back already.
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return done;
}

}  // namespace

JournalMode journal_mode_for_filesystem(int64_t f_type) {
  // f_type is a signed word, and the SMB magic numbers have bit 31 set:
  // compare the low 32 bits, which is all a magic number has.
  switch (static_cast<uint32_t>(f_type)) {
    case 0x6969:      // NFS
    case 0x0BD00BD0:  // Lustre
    case 0x47504653:  // GPFS
    case 0xFF534D42:  // CIFS
    case 0xFE534D42:  // SMB2
    case 0x517B:      // SMB
    case 0x65735546:  // FUSE
    case 0x00C36400:  // CephFS
    case 0x01021997:  // 9p
    case 0x5346414F:  // AFS
      return JournalMode::kDelete;
    default:
      return JournalMode::kWal;
  }
}

void CloseDatabase::operator()(sqlite3* db) const {
  // Every statement is finalized by its owner before this runs, so the
  // close cannot be refused as busy.
  sqlite3_close(db);
}

Result<CampaignStore> CampaignStore::open(const std::string& dir) {
  std::error_code code;
  std::filesystem::create_directories(dir, code);
  if (code) {
    return make_error("cannot create the campaign directory " + dir + ": " + code.message());
  }
  std::string path = (std::filesystem::path(dir) / kDatabaseName).string();
  std::string lock_path = (std::filesystem::path(dir) / kLockName).string();

  auto self = factors::current_owner();
  if (!self) {
    return make_error("cannot name this process as the owner of " + path + ": " +
                      self.error().message);
  }
  auto boot_id = factors::current_boot_id();
  if (!boot_id) {
    return make_error("cannot name this boot as the owner of " + path + ": " +
                      boot_id.error().message);
  }
  auto lock = take_lock(dir, lock_path, path, *boot_id);
  if (!lock) {
    return lock.error();
  }

  struct statfs filesystem {};
  if (::statfs(dir.c_str(), &filesystem) != 0) {
    return make_error("cannot read the file system type of " + dir + ": " + sys::errno_text(errno));
  }
  auto db = open_database(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kBusyTimeoutMs);
  if (!db) {
    return db.error();
  }

  // The schema is read before anything is written, so a file that is not a
  // campaign is left as it was.
  auto schema = read_schema(db->get(), path);
  if (!schema) {
    return schema.error();
  }
  auto mode = set_journal_mode(db->get(), path, journal_mode_for_filesystem(filesystem.f_type));
  if (!mode) {
    return mode.error();
  }
  if (*schema == Schema::kCurrent) {
    Status checked = quick_check(db->get(), path);
    if (!checked) {
      return checked.error();
    }
  }
  Status owned = take_ownership(db->get(), dir, path, *schema, *self, *boot_id);
  if (!owned) {
    return owned.error();
  }
  return CampaignStore(std::move(path), std::move(*lock), std::move(*db), std::move(*mode));
}

CampaignStore::CampaignStore(std::string path, sys::ScopedFd lock, Database db,
                             std::string journal_mode)
    : path_(std::move(path)),
      journal_mode_(std::move(journal_mode)),
      lock_(std::move(lock)),
      db_(std::move(db)) {}

CampaignStore::CampaignStore(CampaignStore&& other) noexcept = default;

CampaignStore& CampaignStore::operator=(CampaignStore&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    journal_mode_ = std::move(other.journal_mode_);
    lock_ = std::move(other.lock_);
    db_ = std::move(other.db_);
  }
  return *this;
}

CampaignStore::~CampaignStore() { close(); }

void CampaignStore::close() {
  if (!db_) {
    return;
  }
  // Nothing here can be reported. A row left behind names a process that
  // no longer holds the lock, and the next open replaces it.
  sqlite3_exec(db_.get(), "DELETE FROM owner", nullptr, nullptr, nullptr);
  (void)checkpoint();
  db_.reset();
  lock_.reset();
}

Status CampaignStore::set_meta(const std::string& key, const std::string& value) {
  if (key == kVersionKey) {
    return make_error(path_ + ": " + kVersionKey + " is the store's own and cannot be set");
  }
  return write_meta(db_.get(), path_, key, value);
}

std::optional<std::string> CampaignStore::meta(const std::string& key) const {
  auto statement = prepare(db_.get(), path_, "SELECT value FROM meta WHERE key = ?1");
  if (!statement || !bind_text(statement->get(), 1, key) ||
      sqlite3_step(statement->get()) != SQLITE_ROW) {
    return std::nullopt;
  }
  return column_text(statement->get(), 0);
}

Status CampaignStore::add_run(const StoredRun& run) {
  std::string name = "run " + std::to_string(run.ordinal);
  if (run.ordinal < 1) {
    return make_error(path_ + ": " + name + " cannot be stored: ordinals start at 1");
  }
  if (!nlohmann::json::accept(run.record)) {
    return make_error(path_ + ": " + name + " cannot be stored: its record is not JSON");
  }

  auto statement = prepare(db_.get(), path_,
                           "INSERT INTO runs (ordinal, phase, factor, record) "
                           "VALUES (?1, ?2, ?3, ?4)");
  if (!statement) {
    return statement.error();
  }
  if (sqlite3_bind_int64(statement->get(), 1, run.ordinal) != SQLITE_OK ||
      !bind_text(statement->get(), 2, run.phase) || !bind_text(statement->get(), 3, run.factor) ||
      !bind_text(statement->get(), 4, run.record)) {
    return failure(db_.get(), path_, "store " + name);
  }
  if (sqlite3_step(statement->get()) != SQLITE_DONE) {
    if (sqlite3_extended_errcode(db_.get()) == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return make_error(path_ + ": " + name + " is already stored");
    }
    return failure(db_.get(), path_, "store " + name);
  }
  return {};
}

Result<std::vector<StoredRun>> CampaignStore::runs() const {
  auto statement =
      prepare(db_.get(), path_, "SELECT ordinal, phase, factor, record FROM runs ORDER BY ordinal");
  if (!statement) {
    return statement.error();
  }
  std::vector<StoredRun> runs;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(statement->get())) == SQLITE_ROW) {
    StoredRun run;
    run.ordinal = sqlite3_column_int(statement->get(), 0);
    run.phase = column_text(statement->get(), 1);
    run.factor = column_text(statement->get(), 2);
    run.record = column_text(statement->get(), 3);
    runs.push_back(std::move(run));
  }
  if (rc != SQLITE_DONE) {
    return failure(db_.get(), path_, "read the runs");
  }
  return runs;
}

Status CampaignStore::checkpoint() {
  if (!db_ || journal_mode_ != "wal") {
    return {};
  }
  if (sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) !=
      SQLITE_OK) {
    return failure(db_.get(), path_, "checkpoint the write-ahead log");
  }
  return {};
}

}  // namespace memdet::store
