// SPDX-License-Identifier: MIT
#include "outbox_store.hpp"

#include <cerrno>
#include <thread>

#include <sqlite3.h>

#include <modelrepo/snapshot.hpp>

namespace modelrepo::detail {

namespace {

using namespace std::chrono;

std::int64_t to_us(Timestamp t) {
    return duration_cast<microseconds>(t.time_since_epoch()).count();
}

Timestamp from_us(std::int64_t us) {
    return Timestamp(duration_cast<Clock::duration>(microseconds(us)));
}

/// One prepared SQLite statement, finalized on destruction.
class Stmt {
public:
    Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    bool ok() const { return rc_ == SQLITE_OK; }
    Stmt& bind(int i, std::int64_t v) {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    Stmt& bind(int i, const std::string& v) {
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    /// SQLITE_ROW, SQLITE_DONE or an error code.
    int step() { return sqlite3_step(stmt_); }
    /// Ready to step again with new bindings.
    void reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }
    std::int64_t integer(int col) { return sqlite3_column_int64(stmt_, col); }
    std::string text(int col) {
        const unsigned char* t = sqlite3_column_text(stmt_, col);
        return t ? reinterpret_cast<const char*>(t) : "";
    }

private:
    sqlite3_stmt* stmt_ = nullptr;
    int rc_;
};

constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO outbox_meta (key, value) VALUES ('format', 'modelrepo.outbox/1');
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queued_at INTEGER NOT NULL,
    statuses TEXT NOT NULL,
    count INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    queued_at INTEGER NOT NULL,
    failed_at INTEGER NOT NULL,
    statuses TEXT NOT NULL,
    count INTEGER NOT NULL,
    error TEXT NOT NULL
);
)sql";

} // namespace

OutboxStore::OutboxStore(std::filesystem::path path, sqlite3* db, std::int64_t max_statuses)
    : path_(std::move(path))
    , db_(db)
    , max_statuses_(max_statuses) {}

OutboxStore::~OutboxStore() {
    sqlite3_close_v2(db_);
}

Error OutboxStore::failure(const std::string& what) const {
    // Read before any ROLLBACK, which would put its own message in place of the cause.
    bool full = sqlite3_errcode(db_) == SQLITE_FULL || sqlite3_system_errno(db_) == ENOSPC ||
                sqlite3_system_errno(db_) == EDQUOT;
    Error error = full
                      ? make_error(Errc::disk_full, "outbox '" + path_.string() + "': " + what +
                                                        ": the disk holding it is full (" +
                                                        sqlite3_errmsg(db_) + "); free space on it")
                      : make_error(Errc::io_error, "outbox '" + path_.string() + "': " + what +
                                                       ": " + sqlite3_errmsg(db_));
    error.target = path_.string();
    return error;
}

Error OutboxStore::failure_and_rollback(const std::string& what) {
    Error error = failure(what);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return error;
}

Result<std::unique_ptr<OutboxStore>> OutboxStore::open(const std::filesystem::path& path,
                                                       std::int64_t max_statuses,
                                                       const std::string& source) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    std::unique_ptr<OutboxStore> outbox(new OutboxStore(path, db, max_statuses));
    if (rc != SQLITE_OK)
        return outbox->failure("cannot open it (check the directory exists and is writable)");
    sqlite3_busy_timeout(db, 10'000); // another process holds the write lock for a moment
    // Another program's SQLite file is not taken over (no tables added, no journal mode
    // changed): an outbox holds only its own tables.
    {
        Stmt tables(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                        "'sqlite_%'");
        std::string foreign;
        while (tables.ok() && tables.step() == SQLITE_ROW) {
            std::string name = tables.text(0);
            if (name != "outbox_meta" && name != "batches" && name != "dead_letters")
                foreign = name;
        }
        // (Only a table of another name counts: a second process may be creating an
        // outbox's tables in this file at this moment.)
        if (!foreign.empty())
            return outbox->failure("not a modelrepo outbox: it holds other tables ('" + foreign +
                                   "'); give the outbox a file of its own");
    }
    char* message = nullptr;
    // WAL with synchronous=FULL: a committed batch survives a crash of the process or the
    // machine. quick_check finds a corrupt file now rather than at the first write.
    // Two processes creating the file at once: the switch to WAL wants the file to
    // itself, and SQLite does not wait for it there; retry for a while.
    for (int attempt = 0;; ++attempt) {
        rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", nullptr,
                          nullptr, &message);
        sqlite3_free(message);
        message = nullptr;
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || attempt == 500)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        return outbox->failure("another process holds the file locked for over 10 s");
    if (rc != SQLITE_OK)
        return outbox->failure("not a usable SQLite file (corrupt, or not an outbox)");
    {
        Stmt check(db, "PRAGMA quick_check");
        if (!check.ok() || check.step() != SQLITE_ROW || check.text(0) != "ok")
            return outbox->failure("the file is corrupt (PRAGMA quick_check)");
    }
    rc = sqlite3_exec(db, schema, nullptr, nullptr, &message);
    sqlite3_free(message);
    if (rc != SQLITE_OK)
        return outbox->failure("cannot set up its tables (is it writable?)");
    {
        Stmt format(db, "SELECT value FROM outbox_meta WHERE key = 'format'");
        if (!format.ok() || format.step() != SQLITE_ROW || format.text(0) != "modelrepo.outbox/1")
            return outbox->failure("not a modelrepo outbox (format)");
    }
    if (auto bound = outbox->bind(source); !bound)
        return std::move(bound).error();
    return outbox;
}

Result<void> OutboxStore::bind(const std::string& source) {
    if (source.empty())
        return success();
    // Recorded by the first source that opens the file (INSERT OR IGNORE: two processes of
    // the same source may do it at once), then compared.
    Stmt record(db_, "INSERT OR IGNORE INTO outbox_meta (key, value) VALUES ('source', ?1)");
    if (!record.ok() || record.bind(1, source).step() != SQLITE_DONE)
        return failure("cannot record the source it belongs to");
    Stmt owner(db_, "SELECT value FROM outbox_meta WHERE key = 'source'");
    if (!owner.ok() || owner.step() != SQLITE_ROW)
        return failure("cannot read the source it belongs to");
    std::string recorded = owner.text(0);
    if (recorded == source)
        return success();
    Error error = make_error(Errc::invalid_argument,
                             "outbox '" + path_.string() + "' keeps the writes of " + recorded +
                                 ", not of " + source +
                                 ": its writes would be replayed into the wrong database. Give "
                                 "each source an outbox= file of its own (repositories of the same "
                                 "source may share one)");
    error.target = path_.string();
    return error;
}

Result<std::int64_t> OutboxStore::enqueue(std::span<const ModelStatus> statuses) {
    std::lock_guard lock(mutex_);
    std::string json = statuses_json(statuses);
    auto count = static_cast<std::int64_t>(statuses.size());
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
        return failure("cannot begin a write");
    std::int64_t pending = 0;
    {
        Stmt sum(db_, "SELECT coalesce(sum(count), 0) FROM batches");
        if (!sum.ok() || sum.step() != SQLITE_ROW)
            return failure_and_rollback("cannot count pending statuses");
        pending = sum.integer(0);
    }
    if (pending + count > max_statuses_) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        Error error =
            make_error(Errc::outbox_full,
                       "outbox '" + path_.string() + "' is full: " + std::to_string(pending) +
                           " statuses pending, " + std::to_string(count) +
                           " more would pass outbox_max=" + std::to_string(max_statuses_) +
                           "; the write was refused, not queued");
        error.target = path_.string();
        return error;
    }
    Stmt insert(db_, "INSERT INTO batches (queued_at, statuses, count) VALUES (?, ?, ?)");
    if (!insert.ok() ||
        insert.bind(1, to_us(Clock::now())).bind(2, json).bind(3, count).step() != SQLITE_DONE)
        return failure_and_rollback("cannot write the batch");
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
        return failure_and_rollback("cannot commit the batch (not durable: not acknowledged)");
    return count;
}

Result<std::vector<OutboxStore::Batch>> OutboxStore::oldest(int limit) {
    std::lock_guard lock(mutex_);
    Stmt select(db_,
                "SELECT id, queued_at, statuses, attempts, count FROM batches ORDER BY id LIMIT ?");
    if (!select.ok())
        return failure("cannot read");
    select.bind(1, static_cast<std::int64_t>(limit));
    std::vector<Batch> out;
    int rc;
    while ((rc = select.step()) == SQLITE_ROW) {
        Batch b;
        b.id = select.integer(0);
        b.queued_at = from_us(select.integer(1));
        b.attempts = static_cast<int>(select.integer(3));
        b.count = select.integer(4);
        if (auto statuses = parse_statuses(select.text(2)))
            b.statuses = std::move(statuses).value();
        else
            b.unreadable = "the stored batch does not read back (" + statuses.error().message +
                           "): it was changed or damaged in the file";
        out.push_back(std::move(b));
    }
    if (rc != SQLITE_DONE)
        return failure("cannot read");
    return out;
}

Result<void> OutboxStore::remove(std::span<const std::int64_t> ids) {
    if (ids.empty())
        return success();
    std::lock_guard lock(mutex_);
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
        return failure("cannot begin a write");
    Stmt del(db_, "DELETE FROM batches WHERE id = ?");
    bool ok = del.ok();
    for (std::size_t i = 0; ok && i < ids.size(); ++i) {
        ok = del.bind(1, ids[i]).step() == SQLITE_DONE;
        del.reset();
    }
    if (!ok || sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
        return failure_and_rollback("cannot remove replayed batches");
    return success();
}

Result<void> OutboxStore::bury(const Batch& batch, const std::string& why,
                               std::optional<std::span<const ModelStatus>> only) {
    std::lock_guard lock(mutex_);
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
        return failure("cannot begin a write");
    // The batch as stored (it may not read back), or only the statuses named.
    Stmt insert(db_, only ? "INSERT OR REPLACE INTO dead_letters (id, queued_at, failed_at, "
                            "statuses, count, error) SELECT id, queued_at, ?1, ?4, ?5, ?2 FROM "
                            "batches WHERE id = ?3"
                          : "INSERT OR REPLACE INTO dead_letters (id, queued_at, failed_at, "
                            "statuses, count, error) SELECT id, queued_at, ?1, statuses, count, ?2 "
                            "FROM batches WHERE id = ?3");
    Stmt del(db_, "DELETE FROM batches WHERE id = ?");
    if (!insert.ok() || !del.ok())
        return failure_and_rollback("cannot move a batch to the dead letters");
    insert.bind(1, to_us(Clock::now())).bind(2, why).bind(3, batch.id);
    if (only)
        insert.bind(4, statuses_json(*only)).bind(5, static_cast<std::int64_t>(only->size()));
    bool ok = insert.step() == SQLITE_DONE && del.bind(1, batch.id).step() == SQLITE_DONE;
    if (!ok || sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
        return failure_and_rollback("cannot move a batch to the dead letters");
    return success();
}

Result<void> OutboxStore::note_attempt(std::int64_t id, const Error& error) {
    std::lock_guard lock(mutex_);
    Stmt update(db_, "UPDATE batches SET attempts = attempts + 1, last_error = ? WHERE id = ?");
    if (!update.ok() || update.bind(1, error.to_string()).bind(2, id).step() != SQLITE_DONE)
        return failure("cannot note an attempt");
    return success();
}

Result<OutboxStore::State> OutboxStore::state() {
    std::lock_guard lock(mutex_);
    State s;
    Stmt pending(db_, "SELECT count(*), coalesce(sum(count), 0), min(queued_at), "
                      "(SELECT last_error FROM batches ORDER BY id LIMIT 1) FROM batches");
    if (!pending.ok() || pending.step() != SQLITE_ROW)
        return failure("cannot read");
    s.batches = pending.integer(0);
    s.statuses = pending.integer(1);
    if (s.batches > 0)
        s.oldest = from_us(pending.integer(2));
    s.last_error = pending.text(3);
    Stmt dead(db_, "SELECT count(*) FROM dead_letters");
    if (!dead.ok() || dead.step() != SQLITE_ROW)
        return failure("cannot read");
    s.dead_letters = dead.integer(0);
    return s;
}

Result<std::vector<OutboxStore::DeadLetter>> OutboxStore::dead_letters(int limit) {
    std::lock_guard lock(mutex_);
    Stmt select(db_, "SELECT id, queued_at, failed_at, count, error FROM dead_letters "
                     "ORDER BY id DESC LIMIT ?");
    if (!select.ok())
        return failure("cannot read");
    select.bind(1, static_cast<std::int64_t>(limit));
    std::vector<DeadLetter> out;
    for (int rc = select.step(); rc == SQLITE_ROW; rc = select.step())
        out.push_back({select.integer(0), from_us(select.integer(1)), from_us(select.integer(2)),
                       select.integer(3), select.text(4)});
    return out;
}

} // namespace modelrepo::detail
