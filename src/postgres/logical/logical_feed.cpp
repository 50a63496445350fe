// SPDX-License-Identifier: MIT
#include "logical_feed.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

#include <libpq-fe.h>
#include <unistd.h>

#include "../feed/installed_feed.hpp"
#include "../feed/reconnect_backoff.hpp"
#include "snapshot_handoff.hpp"
#include "status_rows.hpp"
#include "wal_stream.hpp"

namespace modelrepo::detail::logical {

using namespace std::chrono;

namespace {

/// Changes of one transaction past this are one resync.
constexpr std::uint32_t max_position = 0xffff;
/// A status update after a delivered transaction goes out at most this often (and when
/// the stream falls silent, or the server asks). One after every commit made the walsender
/// read and process a message per transaction, on the writers' cores; the slot is
/// temporary, so a later confirmation costs only WAL kept a moment longer.
constexpr milliseconds confirm_every{1'000};

/// What the feed has delivered, and when it last told the server (see confirm_every).
class Confirmations {
public:
    explicit Confirmations(const WalStream& stream)
        : applied_(stream.confirmed()) {}
    /// The transaction ending at `end` is delivered: told when confirm_every has passed.
    Result<void> delivered(WalStream& stream, Lsn end, steady_clock::time_point now) {
        applied_ = end;
        return now - last_ >= confirm_every ? tell(stream, now) : success();
    }
    /// The stream fell silent: what is delivered and not told yet is told now.
    Result<void> catch_up(WalStream& stream, steady_clock::time_point now) {
        return applied_ > stream.confirmed() ? tell(stream, now) : success();
    }
    /// Tells the server what is delivered (it asked, or it is time). Every confirmation
    /// of the session goes through here, so applied_ is never behind what was told.
    Result<void> tell(WalStream& stream, steady_clock::time_point now) {
        last_ = now;
        return stream.confirm(applied_);
    }

private:
    Lsn applied_;
    steady_clock::time_point last_ = steady_clock::now();
};

/// PostgreSQL's epoch (2000-01-01 UTC) on the Unix clock, in microseconds.
constexpr std::int64_t epoch_2000_us = 946'684'800'000'000LL;

/// libpq's key=value words for `host` (every parameter of it, quoted).
std::string conninfo_of(const HostParams& host) {
    std::string out;
    for (const auto& [key, value] : host.params) {
        std::string quoted = "'";
        for (char c : value) {
            if (c == '\'' || c == '\\')
                quoted += '\\';
            quoted += c;
        }
        out += (out.empty() ? "" : " ") + key + "=" + quoted + "'";
    }
    return out;
}

std::atomic<unsigned> slot_counter{0};

/// This process's part of its slots' names: its pid and a random number drawn once, so
/// that processes of two hosts (or containers) with the same pid do not collide.
const std::string& slot_prefix() {
    static const std::string prefix = [] {
        std::random_device random;
        char hex[9];
        std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(random()));
        return "modelrepo_" + std::to_string(::getpid()) + "_" + hex + "_";
    }();
    return prefix;
}

} // namespace

/// A plain session that tells when a decoded transaction is visible to other sessions:
/// the walsender may send a commit before the committing backend has left the running
/// transactions, and a copy that re-read the rows then would read them as they were.
class LogicalFeed::Visibility {
public:
    explicit Visibility(const std::string& conninfo)
        : conn_(PQconnectdb(conninfo.c_str())) {}
    ~Visibility() { PQfinish(conn_); }
    Visibility(const Visibility&) = delete;
    Visibility& operator=(const Visibility&) = delete;

    Result<void> ok() const {
        if (PQstatus(conn_) == CONNECTION_OK)
            return success();
        return make_error(Errc::unreachable,
                          std::string("the feed's visibility session: ") + PQerrorMessage(conn_));
    }
    /// Waits until transaction `xid` no longer runs in a new snapshot (at most `limit`).
    Result<void> wait(std::uint32_t xid, milliseconds limit) {
        if (!prepared_) {
            // Visible: not among the snapshot's running xids, and before its xmax (a
            // newest transaction still leaving the running ones is at or past xmax, and
            // in no list). 32-bit xids compared modulo 2^32, as the server does. Prepared
            // once a session: it runs once per decoded transaction.
            PGresult* r = PQprepare(
                conn_, "modelrepo_visible",
                "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(s) x WHERE "
                "(x::text::bigint & 4294967295) = $1::bigint) AND ((pg_snapshot_xmax(s)::text::"
                "bigint - $1::bigint) & 4294967295) BETWEEN 1 AND 2147483647 THEN 0 ELSE 1 END "
                "FROM pg_current_snapshot() s",
                1, nullptr);
            const bool made = PQresultStatus(r) == PGRES_COMMAND_OK;
            std::string why = made ? "" : PQresultErrorMessage(r);
            PQclear(r);
            if (!made)
                return make_error(Errc::unreachable, "the feed's visibility session: " + why);
            prepared_ = true;
        }
        const std::string x = std::to_string(xid);
        const char* values[] = {x.c_str()};
        auto until = steady_clock::now() + limit;
        for (int round = 0;; ++round) {
            PGresult* r =
                PQexecPrepared(conn_, "modelrepo_visible", 1, values, nullptr, nullptr, 0);
            bool done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                        std::string(PQgetvalue(r, 0, 0)) == "0";
            bool failed = PQresultStatus(r) != PGRES_TUPLES_OK;
            std::string why = failed ? PQresultErrorMessage(r) : "";
            PQclear(r);
            if (failed)
                return make_error(Errc::unreachable, "the feed's visibility session: " + why);
            if (done)
                return success();
            if (steady_clock::now() > until)
                return make_error(Errc::timeout, "transaction " + std::to_string(xid) +
                                                     " was decoded but stayed invisible");
            std::this_thread::sleep_for(microseconds(round < 10 ? 100 : 1'000));
        }
    }

    /// Whether publication `name` exists.
    Result<bool> published(const std::string& name) {
        PGresult* r = PQexec(conn_, ("SELECT " + installed_feed::publication_sql(name)).c_str());
        const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        std::string why = ok ? "" : PQresultErrorMessage(r);
        const bool found = ok && std::string_view(PQgetvalue(r, 0, 0)) == "t";
        PQclear(r);
        if (!ok)
            return make_error(Errc::unreachable, "the feed's visibility session: " + why);
        return found;
    }

    /// Reads `names`' maps with `sql` (RowNames::load_sql), in exported snapshot
    /// `snapshot` (the slot's: the maps then hold what the stream starts after).
    Result<void> load(RowNames& names, const std::string& snapshot, const std::string& sql) {
        std::string begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
        if (!snapshot.empty())
            begin += "; SET TRANSACTION SNAPSHOT " + quote_literal(snapshot);
        auto failed = [&](PGresult* r) {
            Error e = make_error(Errc::unreachable, std::string("the feed's read of the mapped "
                                                                "tables' ids: ") +
                                                        PQresultErrorMessage(r));
            PQclear(r);
            return e;
        };
        PGresult* r = PQexec(conn_, begin.c_str());
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return failed(r);
        PQclear(r);
        r = PQexec(conn_, sql.c_str());
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            return failed(r);
        for (int i = 0; i < PQntuples(r); ++i)
            names.load(std::atoi(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
        PQclear(r);
        PQclear(PQexec(conn_, "COMMIT"));
        return success();
    }

private:
    PGconn* conn_;
    bool prepared_ = false;
};

namespace {

/// The row path's part of one change: its status row, when it is an insert or update of
/// modelrepo's own statuses table that names one status (its own slug) and decodes whole.
/// False when the transaction cannot go by rows.
bool take_status_row(const Change& change, const RowNames::Named& named,
                     std::vector<ModelStatus>& rows) {
    if (change.kind == Change::Kind::delete_ || !change.new_row || named.size() != 1 ||
        named[0].first != CatalogChange::Kind::status)
        return false;
    auto status = status_of_row(*change.relation, *change.new_row);
    if (!status || status->model_slug != named[0].second)
        return false;
    rows.push_back(std::move(*status));
    return true;
}

} // namespace

std::int64_t change_version(Lsn commit, std::uint32_t position) {
    return static_cast<std::int64_t>((commit << 16) | std::min(position, max_position));
}

std::string publication_name(const std::string& schema) {
    return schema.empty() ? "modelrepo_catalogue" : "modelrepo_catalogue_" + schema;
}

LogicalFeed::LogicalFeed(std::shared_ptr<const SessionConfig> session, Options options,
                         ChangeFeed::Sink sink, ChangeFeed::StateSink state)
    : session_(std::move(session))
    , options_(options)
    , sink_(std::move(sink))
    , state_(std::move(state))
    , schema_(session_->schema.empty() ? "public" : session_->schema)
    , publication_(publication_name(session_->schema)) {}

LogicalFeed::~LogicalFeed() {
    stop();
}

void LogicalFeed::start() {
    std::lock_guard lock(mutex_);
    if (started_ || stopping_)
        return;
    started_ = true;
    thread_ = std::thread([this] { run(); });
}

void LogicalFeed::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

ChangeFeed::Stats LogicalFeed::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

bool LogicalFeed::pause(milliseconds d) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, d, [&] { return stopping_; });
}

void LogicalFeed::tell(bool connected) {
    {
        std::lock_guard lock(mutex_);
        if (stats_.connected == connected)
            return;
        stats_.connected = connected;
        if (connected)
            ++stats_.connects;
        else
            ++stats_.disconnects;
    }
    if (state_)
        state_(connected);
}

void LogicalFeed::deliver(std::vector<CatalogChange> changes) {
    {
        std::lock_guard lock(mutex_);
        for (const auto& c : changes) {
            stats_.version = std::max(stats_.version, c.version);
            if (c.kind == CatalogChange::Kind::resync)
                ++stats_.resyncs;
            else
                ++stats_.delivered;
        }
    }
    sink_(std::move(changes));
}

bool LogicalFeed::deliver_rows(std::vector<CatalogChange>& changes,
                               std::vector<ModelStatus>& rows) {
    if (!options_.rows || !options_.rows(changes, rows))
        return false;
    std::lock_guard lock(mutex_);
    for (const auto& c : changes)
        stats_.version = std::max(stats_.version, c.version);
    stats_.delivered += changes.size();
    return true;
}

void LogicalFeed::resync(std::int64_t version) {
    CatalogChange r;
    r.kind = CatalogChange::Kind::resync;
    r.version = version;
    r.at = system_clock::now();
    deliver({r});
}

void LogicalFeed::run() {
    ReconnectBackoff backoff(options_.backoff_initial, options_.backoff_max);
    while (true) {
        std::uint64_t before = 0;
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                break;
            before = stats_.connects;
        }
        Error why = session();
        tell(false);
        bool connected = false;
        {
            std::lock_guard lock(mutex_);
            if (stopping_)
                break;
            stats_.last_error = why;
            connected = stats_.connects != before;
        }
        if (options_.health)
            options_.health->failed("feed", why);
        // A session that got as far as its slot was not a failing connect.
        if (!pause(backoff.after(connected)))
            break;
    }
}

Error LogicalFeed::session() {
    if (session_->hosts.empty())
        return make_error(Errc::invalid_argument, "the feed's URL names no host");
    // The URL's hosts in order, as libpq tries them: the first primary (PostgreSQL 15
    // decodes on a primary only). After a failover that is the promoted standby. No
    // primary among them is `unreachable`, as libpq's target_session_attrs=read-write
    // has it: the source's health says why.
    std::unique_ptr<WalStream> primary;
    const HostParams* host = nullptr;
    std::optional<Error> failed;
    std::size_t standbys = 0;
    for (const auto& candidate : session_->hosts) {
        auto connected = WalStream::connect(conninfo_of(candidate), session_->connect_timeout);
        if (!connected) {
            failed = connected.error();
            continue;
        }
        if (connected.value()->on_standby()) {
            ++standbys;
            continue;
        }
        primary = std::move(connected).value();
        host = &candidate;
        break;
    }
    if (!primary) {
        Error e = standbys > 0 && !failed
                      ? make_error(Errc::unreachable,
                                   "every host of the URL is a standby, and PostgreSQL 15 "
                                   "decodes the WAL on a primary only: add the primary to the "
                                   "URL (or wait for a promotion)")
                      : *failed;
        if (standbys > 0 && failed)
            e.message += " (the other " + std::to_string(standbys) +
                         " host(s) of the URL are standbys, which cannot decode)";
        e.source = session_->source;
        return e;
    }
    WalStream& stream = *primary;
    Visibility visibility(conninfo_of(*host));
    if (auto ok = visibility.ok(); !ok)
        return ok.error();
    // pgoutput names a missing publication only at the first change: ask now.
    auto published = stream.has_publication(publication_);
    if (!published)
        return published.error();
    if (!published.value())
        return publication_gone();
    const std::string slot = slot_prefix() + std::to_string(slot_counter.fetch_add(1));
    auto created = stream.create_slot(slot, /*temporary=*/true);
    if (!created)
        return created.error();
    // A mapping's ids, as they were at the slot's start: before its snapshot is offered,
    // while it is still valid (until the next command on the replication session).
    RowNames names(options_.tables, schema_);
    if (auto sql = names.load_sql(quote_identifier(schema_) + "."); !sql.empty())
        if (auto loaded = visibility.load(names, created.value().snapshot, sql); !loaded)
            return loaded.error();
    {
        std::lock_guard lock(mutex_);
        stats_.last_error.reset();
    }
    if (options_.health)
        options_.health->reached("feed");
    tell(true);
    // What was committed before the slot is not in its stream: read again, in the slot's
    // snapshot when a copy reads (it must import it before this session's next command).
    const Lsn start_at = created.value().consistent_point;
    const bool offered = options_.handoff && !created.value().snapshot.empty() &&
                         options_.handoff->offer(created.value().snapshot);
    resync(change_version(start_at, 0));
    if (offered)
        options_.handoff->settle(options_.snapshot_wait);
    if (auto started = stream.start(slot, start_at, publication_); !started)
        return started.error();
    return follow(stream, visibility, names);
}

Error LogicalFeed::publication_gone() {
    Error e = make_error(Errc::schema_missing,
                         "the catalogue's publication " + publication_ +
                             " is missing: run modelrepo migrate with feed=logical in the URL "
                             "(or use feed=auto, which follows what migrate installed)");
    e.source = session_->source;
    if (options_.uninstalled) {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        options_.uninstalled();
    }
    return e;
}

std::optional<Error> LogicalFeed::idle(WalStream& stream, Visibility& visibility,
                                       steady_clock::duration silent, bool& asked) {
    if (silent > options_.heartbeat + options_.heartbeat_timeout)
        return make_error(Errc::timeout,
                          "the replication session did not answer for " +
                              std::to_string(duration_cast<milliseconds>(silent).count()) + " ms");
    if (asked || silent <= options_.heartbeat)
        return std::nullopt;
    if (auto sent = stream.confirm(stream.confirmed(), true); !sent)
        return sent.error();
    asked = true;
    // A migrate with feed=triggers drops the publication; the stream then stays silent
    // until the next change fails it.
    auto published = visibility.published(publication_);
    if (!published)
        return published.error();
    if (!published.value())
        return publication_gone();
    return std::nullopt;
}

Error LogicalFeed::follow(WalStream& stream, Visibility& visibility, RowNames& names) {
    PgoutputDecoder decoder;
    std::vector<CatalogChange> pending;
    const bool decode_rows = options_.rows && options_.tables.builtin; // the row path:
    std::vector<ModelStatus> rows; // the transaction's statuses as written,
    bool rows_whole = false;       // while every change of it is one
    RowNames::Named named;
    Lsn commit = 0;
    std::uint32_t xid = 0;
    Timestamp committed_at{};
    std::uint32_t position = 0;
    bool whole_resync = false; ///< a TRUNCATE, or more changes than versions can name
    auto last_heard = steady_clock::now();
    bool asked = false;
    Confirmations confirmations(stream);
    auto count = [this](std::uint64_t ChangeFeed::Stats::*figure) {
        std::lock_guard lock(mutex_);
        ++(stats_.*figure);
    };
    while (true) {
        if (std::lock_guard lock(mutex_); stopping_)
            return make_error(Errc::unreachable, "stopping");
        auto next = stream.next(milliseconds(200));
        if (!next)
            return next.error();
        auto now = steady_clock::now();
        if (!next.value()) {
            if (auto sent = confirmations.catch_up(stream, now); !sent)
                return sent.error();
            if (auto ended = idle(stream, visibility, now - last_heard, asked))
                return *ended;
            continue;
        }
        last_heard = now;
        asked = false;
        if (auto* k = std::get_if<Keepalive>(&*next.value())) {
            if (k->reply_requested)
                if (auto sent = confirmations.tell(stream, now); !sent)
                    return sent.error();
            continue;
        }
        count(&ChangeFeed::Stats::received);
        auto message = decoder.decode(std::get<XLogData>(*next.value()).payload);
        if (!message)
            return message.error();
        if (auto* b = std::get_if<Begin>(&message.value())) {
            pending.clear();
            rows.clear();
            rows_whole = decode_rows;
            commit = b->final_lsn;
            xid = b->xid;
            position = 0;
            whole_resync = commit >= (Lsn{1} << 47);
            committed_at = system_clock::time_point(
                duration_cast<system_clock::duration>(microseconds(b->commit_us + epoch_2000_us)));
        } else if (auto* change = std::get_if<Change>(&message.value())) {
            // The row as it is, and as it was when its slug changed: both are news. The
            // names follow every change, also in a transaction that is one resync.
            named.clear();
            if (!names.name(*change, named))
                whole_resync = true; // a row of an id never seen
            if (rows_whole)
                rows_whole = take_status_row(*change, named, rows);
            for (std::size_t i = 0; i < named.size() && !whole_resync; ++i) {
                if (++position >= max_position) {
                    whole_resync = true;
                    break;
                }
                CatalogChange c;
                c.kind = named[i].first;
                c.slug = std::move(named[i].second);
                c.version = change_version(commit, position);
                c.at = committed_at;
                pending.push_back(std::move(c));
            }
        } else if (auto* truncate = std::get_if<Truncate>(&message.value())) {
            for (const Relation* r : truncate->relations)
                names.truncated(*r);
            whole_resync = true;
        } else if (auto* done = std::get_if<Commit>(&message.value())) {
            names.committed();
            count(&ChangeFeed::Stats::polls);
            const bool by_rows = !whole_resync && !pending.empty() && rows_whole &&
                                 rows.size() == pending.size() && deliver_rows(pending, rows);
            if (!by_rows && (whole_resync || !pending.empty()))
                if (auto seen = visibility.wait(xid, options_.heartbeat_timeout); !seen)
                    return seen.error();
            if (whole_resync)
                resync(change_version(commit, max_position));
            else if (!pending.empty() && !by_rows)
                deliver(std::move(pending));
            pending.clear();
            // Delivered: the server may recycle the WAL up to the transaction's end (told
            // at most every confirm_every, or when the stream falls silent).
            if (auto sent = confirmations.delivered(stream, done->end_lsn, now); !sent)
                return sent.error();
        }
    }
}

} // namespace modelrepo::detail::logical
