// SPDX-License-Identifier: MIT
// Logical decoding against a real PostgreSQL 15 (wal_level = logical): the replication
// session (src/postgres/logical/wal_stream), a temporary slot and its exported snapshot,
// and the pgoutput decoder on what the server sends: changes of concurrent transactions in
// commit order, each transaction's changes named by its commit LSN and their position,
// the slot's confirmed position moved by a status update; and the typed errors of a role
// without REPLICATION. With MODELREPO_CAPTURE_PGOUTPUT=FILE it writes the messages it
// received, hex, one a line: tests/unit/pgoutput/captured.hex came from such a run.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include "pg_catalogue.hpp"
#include "postgres/catalog/sql_catalog.hpp"
#include "postgres/logical/logical_feed.hpp"
#include "postgres/logical/snapshot_handoff.hpp"
#include "postgres/logical/wal_stream.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace modelrepo::detail::logical;
using namespace std::chrono;

namespace {

const std::string db = "logical";

/// A session of its own (libpq), for what must happen in one transaction.
struct Session {
    PGconn* conn;
    explicit Session(const std::string& url)
        : conn(PQconnectdb(url.c_str())) {
        REQUIRE_MESSAGE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
    }
    ~Session() { PQfinish(conn); }
    std::string run(const std::string& sql) {
        PGresult* r = PQexec(conn, sql.c_str());
        auto status = PQresultStatus(r);
        INFO(sql << ": " << PQresultErrorMessage(r));
        CHECK((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK));
        std::string out = status == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
        PQclear(r);
        return out;
    }
};

std::string hex(std::span<const char> bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (char c : bytes) {
        out += digits[(static_cast<unsigned char>(c) >> 4) & 15];
        out += digits[static_cast<unsigned char>(c) & 15];
    }
    return out;
}

/// What the stream said, decoded: each transaction's commit LSN and its changes.
struct Received {
    struct Txn {
        Lsn commit = 0;
        Lsn end = 0;
        std::vector<std::string> changes; ///< "I items 2 two", "U items 1 uno", "D items 3"
    };
    std::vector<Txn> txns;
    std::vector<std::string> captured; ///< every XLogData payload, hex
};

/// Reads the stream until `count` transactions have committed (30 s at most), confirming
/// each as a feed would once it has applied it.
Received read_transactions(WalStream& stream, std::size_t count) {
    PgoutputDecoder decoder;
    Received got;
    Received::Txn open;
    auto until = steady_clock::now() + 30s;
    while (got.txns.size() < count && steady_clock::now() < until) {
        auto next = stream.next(200ms);
        REQUIRE_MESSAGE(next, next.error().message);
        if (!next.value())
            continue;
        if (auto* k = std::get_if<Keepalive>(&*next.value())) {
            if (k->reply_requested)
                REQUIRE(stream.confirm(stream.confirmed()));
            continue;
        }
        const auto& data = std::get<XLogData>(*next.value());
        got.captured.push_back(hex(data.payload));
        auto message = decoder.decode(data.payload);
        REQUIRE_MESSAGE(message, message.error().message);
        if (auto* b = std::get_if<Begin>(&message.value())) {
            open = {};
            open.commit = b->final_lsn;
        } else if (auto* c = std::get_if<Commit>(&message.value())) {
            CHECK(c->commit_lsn == open.commit);
            open.end = c->end_lsn;
            got.txns.push_back(open);
            REQUIRE(stream.confirm(c->end_lsn));
        } else if (auto* change = std::get_if<Change>(&message.value())) {
            const char kind = change->kind == Change::Kind::insert   ? 'I'
                              : change->kind == Change::Kind::update ? 'U'
                                                                     : 'D';
            const Tuple& row = change->new_row ? *change->new_row : *change->old_row;
            std::string line = std::string(1, kind) + " " + change->relation->name;
            for (std::size_t i = 0; i < row.values.size(); ++i)
                if (row.unchanged[i])
                    line += " <unchanged>";
                else if (row.values[i])
                    line += " " + (row.values[i]->size() > 100
                                       ? "<" + std::to_string(row.values[i]->size()) + " chars>"
                                       : *row.values[i]);
            open.changes.push_back(line);
        }
    }
    return got;
}

} // namespace

TEST_CASE("logical decoding: a temporary slot's snapshot and then its changes, in commit order, "
          "confirmed") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    fresh_database(db);
    const std::string url = s.url("app", password, db);
    Session writer(url);
    writer.run("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, note text)");
    writer.run("INSERT INTO items VALUES (1, 'one', NULL), (3, 'three', 'x')");
    writer.run("CREATE PUBLICATION modelrepo_test FOR TABLE items");

    auto stream = WalStream::connect(url, 5s);
    REQUIRE_MESSAGE(stream, stream.error().message);
    auto slot = stream.value()->create_slot("modelrepo_test_slot", true);
    REQUIRE_MESSAGE(slot, slot.error().message);

    // Made after the slot: a change, not part of the snapshot.
    writer.run("INSERT INTO items VALUES (2, 'two', NULL)");
    // The data as of the slot's consistent point, read in its exported snapshot (before
    // the next command on the replication session).
    Session reader(url);
    reader.run("BEGIN ISOLATION LEVEL REPEATABLE READ");
    reader.run("SET TRANSACTION SNAPSHOT '" + slot.value().snapshot + "'");
    CHECK(reader.run("SELECT string_agg(id::text, ',' ORDER BY id) FROM items") == "1,3");
    reader.run("COMMIT");

    REQUIRE(stream.value()->start("modelrepo_test_slot", slot.value().consistent_point,
                                  "modelrepo_test"));
    // Two transactions at once: the one that began first commits last.
    Session other(url);
    writer.run("BEGIN");
    writer.run("UPDATE items SET name = 'uno' WHERE id = 1");
    other.run("BEGIN");
    other.run("DELETE FROM items WHERE id = 3");
    // A value stored out of line (TOAST): an update that leaves it is sent without it.
    other.run("INSERT INTO items SELECT 4, 'four', string_agg(md5(g::text), '') FROM "
              "generate_series(1, 200) g");
    other.run("COMMIT");
    writer.run("UPDATE items SET name = 'vier' WHERE id = 4");
    writer.run("COMMIT");

    auto got = read_transactions(*stream.value(), 3);
    REQUIRE(got.txns.size() == 3);
    CHECK(got.txns[0].changes == std::vector<std::string>{"I items 2 two"});
    CHECK(got.txns[1].changes ==
          std::vector<std::string>{"D items 3", "I items 4 four <6400 chars>"});
    CHECK(got.txns[2].changes ==
          std::vector<std::string>{"U items 1 uno", "U items 4 vier <unchanged>"});
    // Commit order is LSN order; a change is named by (commit LSN, position).
    CHECK(got.txns[0].commit < got.txns[1].commit);
    CHECK(got.txns[1].commit < got.txns[2].commit);

    // The status update moves the slot's confirmed position (polled: the server applies it
    // when it reads it).
    const std::string wanted = format_lsn(got.txns[2].end);
    std::string confirmed;
    for (auto until = steady_clock::now() + 20s; steady_clock::now() < until;) {
        REQUIRE(stream.value()->confirm(got.txns[2].end, true));
        (void)stream.value()->next(100ms);
        confirmed = s.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name "
                           "= 'modelrepo_test_slot'");
        if (parse_lsn(confirmed) >= parse_lsn(wanted))
            break;
    }
    CHECK(parse_lsn(confirmed) >= parse_lsn(wanted));

    if (const char* file = std::getenv("MODELREPO_CAPTURE_PGOUTPUT")) {
        std::ofstream out(file);
        for (const auto& line : got.captured)
            out << line << "\n";
    }
    // A temporary slot goes with its session.
    stream.value().reset();
    bool gone = false;
    for (auto until = steady_clock::now() + 20s; !gone && steady_clock::now() < until;) {
        gone = s.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
                      "'modelrepo_test_slot'") == "0";
        if (!gone)
            std::this_thread::sleep_for(50ms);
    }
    CHECK(gone);
}

TEST_CASE("logical decoding: a role without REPLICATION is told the fix") {
    auto& s = server();
    s.create_role("reader_norepl", password, db);
    auto stream = WalStream::connect(s.url("reader_norepl", password, db), 5s);
    REQUIRE_FALSE(stream);
    CHECK(stream.error().is(Errc::auth_failed));
    CHECK(stream.error().message.find("REPLICATION") != std::string::npos);
    CHECK(stream.error().message.find(password) == std::string::npos);
}

namespace {

/// The catalogue's own triggers left on its three tables.
std::string triggers_on_catalogue(PgServer& s, const std::string& database) {
    return s.psql("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
                  "('models'::regclass, 'providers'::regclass, 'model_status'::regclass)",
                  database);
}

std::string publications(PgServer& s, const std::string& database) {
    return s.psql("SELECT count(*) FROM pg_publication WHERE pubname = 'modelrepo_catalogue'",
                  database);
}

/// feed=auto on `database` runs `expected`, and hears an UPDATE through it.
void auto_follows(PgServer& s, const std::string& database, const std::string& expected) {
    auto repo = open_repo(s.url("app", password, database, "127.0.0.1"));
    CHECK(feed_kind(*repo) == "deciding"); // nothing asked before a watch
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen));
    REQUIRE(sub);
    REQUIRE(eventually([&] { return seen.count(CatalogChange::Kind::resync) >= 1; }, 20s));
    CHECK(feed_kind(*repo) == expected);
    s.psql("UPDATE model_status SET availability = 0.45 WHERE model_slug = 'gpt-4o'", database);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::status, "gpt-4o") == 1; }, 20s));
}

} // namespace

TEST_CASE("feed=logical: migrate puts the catalogue on a publication without triggers, and back; "
          "watch() and a live copy follow the WAL") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_feed";
    auto layered = fresh_catalogue(name, "feed=logical&cache=live");
    CHECK(triggers_on_catalogue(s, name) == "0");
    CHECK(publications(s, name) == "1");
    // Again, and two at once: the same end.
    auto pg = open_repo(s.url("app", password, name, "127.0.0.1", "feed=logical"));
    std::thread other([&] { CHECK(pg->migrate()); });
    CHECK(pg->migrate());
    other.join();
    CHECK(triggers_on_catalogue(s, name) == "0");
    CHECK(publications(s, name) == "1");

    ChangeCollector seen;
    auto sub = pg->watch(std::ref(seen));
    REQUIRE(sub);
    REQUIRE(eventually([&] { return seen.count(CatalogChange::Kind::resync) >= 1; }, 20s));
    REQUIRE(eventually([&] { return layered.copy_state().in_sync; }, 20s));

    s.psql("UPDATE model_status SET availability = 0.42 WHERE model_slug = 'gpt-4o'", name);
    s.psql("BEGIN; UPDATE models SET name = 'Renamed by SQL' WHERE slug = 'gpt-4o'; "
           "UPDATE providers SET name = 'Acme' WHERE slug = (SELECT provider_slug FROM models "
           "WHERE slug = 'gpt-4o'); COMMIT",
           name);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::status, "gpt-4o") == 1; }, 20s));
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::model, "gpt-4o") == 1; }, 20s));
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::provider) == 1; }, 20s));
    {
        std::lock_guard lock(seen.mutex);
        for (std::size_t i = 1; i < seen.changes.size(); ++i)
            CHECK(seen.changes[i].version > seen.changes[i - 1].version); // commit order
    }
    // The live copy applied them.
    auto feed_metrics = [&] {
        std::string out;
        for (const auto& family : layered.pg->backend_metrics())
            if (family.name.starts_with("modelrepo_feed_") && !family.samples.empty())
                out += family.name + " " + std::to_string(family.samples[0].value) + "\n";
        return out;
    };
    CAPTURE(feed_metrics());
    CHECK(eventually(
        [&] {
            auto m = layered->find_model("gpt-4o");
            return m && m.value() && m.value()->name == "Renamed by SQL";
        },
        20s));

    // The walsender ended under it: a resync, then changes again.
    const std::size_t resyncs = seen.count(CatalogChange::Kind::resync);
    // pg_stat_activity lists a session once it has reported itself: wait until one ended.
    CHECK(eventually(
        [&] {
            return s.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                          "backend_type = 'walsender' AND datname = '" +
                          name + "'") != "0";
        },
        20s));
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::resync) > resyncs; }, 30s));
    s.psql("UPDATE model_status SET availability = 0.43 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::status, "gpt-4o") == 2; }, 20s));
    CHECK(eventually([&] { return layered.copy_state().in_sync; }, 20s));

    CHECK(feed_kind(*pg) == "logical");
    // feed=auto (no feed= given) reads what migrate installed: here the publication.
    auto_follows(s, name, "logical");

    // Back to the trigger feed: the triggers again, no publication, and the trigger feed
    // hears changes.
    sub.value().cancel();
    auto back = open_repo(s.url("app", password, name, "127.0.0.1", "feed=triggers"));
    REQUIRE(back->migrate());
    REQUIRE(back->migrate());
    CHECK(triggers_on_catalogue(s, name) == "6");
    CHECK(publications(s, name) == "0");
    ChangeCollector heard;
    auto triggered = back->watch(std::ref(heard));
    REQUIRE(triggered);
    REQUIRE(eventually([&] { return heard.count(CatalogChange::Kind::resync) >= 1; }, 20s));
    s.psql("UPDATE model_status SET availability = 0.44 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return heard.count(CatalogChange::Kind::status, "gpt-4o") == 1; }, 20s));
    CHECK(feed_kind(*back) == "triggers");
    auto_follows(s, name, "triggers");
}

TEST_CASE("feed=logical: the typed errors of a role without REPLICATION and of a database "
          "never migrated for it") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_unmigrated";
    fresh_catalogue(name); // the trigger feed's migration only: no publication
    auto pg = open_repo(s.url("app", password, name, "127.0.0.1", "feed=logical"));
    auto sub = pg->watch([](const CatalogChange&) {});
    REQUIRE(sub);
    auto health_of = [](PostgresRepository& repo) {
        auto* h = repo.capability<HealthControl>();
        REQUIRE(h);
        return h->source_health();
    };
    CHECK(eventually(
        [&] {
            auto health = health_of(*pg);
            return health.down() && health.errc == Errc::schema_missing;
        },
        20s));
    CAPTURE(health_of(*pg).cause);
    CHECK(health_of(*pg).cause.find("feed=logical") != std::string::npos);

    s.psql("ALTER ROLE app NOREPLICATION");
    auto denied = open_repo(s.url("app", password, name, "127.0.0.1", "feed=logical"));
    auto denied_sub = denied->watch([](const CatalogChange&) {});
    REQUIRE(denied_sub);
    CHECK(eventually(
        [&] {
            auto health = health_of(*denied);
            return health.down() && health.errc == Errc::auth_failed &&
                   health.cause.find("REPLICATION") != std::string::npos;
        },
        20s));
    s.psql("ALTER ROLE app REPLICATION");
}

namespace {

/// gpt-4o's availability as `repo` answers it (-1 when it cannot).
double availability(ModelRepository& repo) {
    auto statuses = repo.list_statuses();
    if (statuses)
        for (const auto& st : statuses.value())
            if (st.model_slug == "gpt-4o")
                return st.availability;
    return -1;
}

} // namespace

TEST_CASE("feed=auto polls where the logical feed cannot run or no feed is installed (a resync "
          "when the tables changed, the live copy current), and switches once one can run") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_fallback";
    fresh_catalogue(name, "feed=logical"); // the publication, no triggers
    s.psql("ALTER ROLE app NOREPLICATION");
    struct Restore {
        PgServer& s;
        ~Restore() { s.try_psql("ALTER ROLE app REPLICATION"); }
    } restore{s};

    // Migrated for the logical feed, which this role may not run: it polls.
    auto layered =
        open_layered(s.url("app", password, name, "127.0.0.1", "cache=live&poll_interval=200ms"));
    ChangeCollector seen;
    auto sub = layered.pg->watch(std::ref(seen));
    REQUIRE(sub);
    // The copy started the feed at open: its first resync may have gone before watch().
    REQUIRE(eventually([&] { return feed_kind(*layered.pg) == "polling"; }, 20s));
    REQUIRE(eventually([&] { return layered.copy_state().in_sync; }, 20s));
    auto polls_total = [&] {
        for (const auto& family : layered.pg->backend_metrics())
            if (family.name == "modelrepo_feed_polls_total" && !family.samples.empty())
                return family.samples[0].value;
        return 0.0;
    };
    auto polled = [&](double times) {
        const double before = polls_total();
        return eventually([&] { return polls_total() >= before + times; }, 20s);
    };
    REQUIRE(polled(3));
    const std::size_t first = seen.count(CatalogChange::Kind::resync);
    CHECK(first <= 1);
    // Polls that find nothing changed say nothing.
    REQUIRE(polled(3));
    CHECK(seen.count(CatalogChange::Kind::resync) == first);
    // A change: one resync, and the live copy holds it.
    s.psql("UPDATE model_status SET availability = 0.31 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::resync) == first + 1; }, 20s));
    CHECK(eventually([&] { return availability(*layered.repo) == 0.31; }, 20s));
    CHECK(seen.count(CatalogChange::Kind::status) == 0); // a resync, not the change itself
    {
        // Each resync has a version of its own (serve keeps events by it).
        std::lock_guard lock(seen.mutex);
        REQUIRE(seen.changes.size() == first + 1);
        CHECK(seen.changes[0].version > 0);
        if (first == 1)
            CHECK(seen.changes[1].version > seen.changes[0].version);
    }

    // The role may replicate again: the next poll sees the logical feed can run, and it
    // switches (a resync), then hears each change.
    s.psql("ALTER ROLE app REPLICATION");
    CHECK(eventually([&] { return feed_kind(*layered.pg) == "logical"; }, 20s));
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::resync) >= first + 2; }, 20s));
    s.psql("UPDATE model_status SET availability = 0.32 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::status, "gpt-4o") == 1; }, 20s));
    CHECK(eventually([&] { return availability(*layered.repo) == 0.32; }, 20s));
    sub.value().cancel();

    // No feed installed at all (the publication dropped): it polls; migrate installs the
    // trigger feed and it switches to that.
    s.psql("DROP PUBLICATION modelrepo_catalogue", name);
    auto bare = open_repo(s.url("app", password, name, "127.0.0.1", "poll_interval=200ms"));
    ChangeCollector heard;
    auto bare_sub = bare->watch(std::ref(heard));
    REQUIRE(bare_sub);
    REQUIRE(eventually([&] { return heard.count(CatalogChange::Kind::resync) >= 1; }, 20s));
    CHECK(feed_kind(*bare) == "polling");
    REQUIRE(open_repo(s.url("app", password, name, "127.0.0.1", "feed=triggers"))->migrate());
    CHECK(eventually([&] { return feed_kind(*bare) == "triggers"; }, 20s));
    CHECK(eventually([&] { return heard.count(CatalogChange::Kind::resync) >= 2; }, 20s));
    s.psql("UPDATE model_status SET availability = 0.33 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return heard.count(CatalogChange::Kind::status, "gpt-4o") == 1; }, 20s));

    // Both the triggers and a publication, and a role that may not decode: the triggers,
    // not polling.
    s.psql("CREATE PUBLICATION modelrepo_catalogue FOR TABLE providers, models, model_status",
           name);
    s.psql("ALTER ROLE app NOREPLICATION");
    auto both = open_repo(s.url("app", password, name, "127.0.0.1", "poll_interval=200ms"));
    ChangeCollector both_seen;
    auto both_sub = both->watch(std::ref(both_seen));
    REQUIRE(both_sub);
    REQUIRE(eventually([&] { return both_seen.count(CatalogChange::Kind::resync) >= 1; }, 20s));
    CHECK(feed_kind(*both) == "triggers");
    s.psql("UPDATE model_status SET availability = 0.34 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return both_seen.count(CatalogChange::Kind::status, "gpt-4o") == 1; },
                     20s));
    CHECK(both_seen.count(CatalogChange::Kind::resync) == 1); // no switching back and forth
    s.psql("DROP PUBLICATION modelrepo_catalogue", name);
    s.psql("ALTER ROLE app REPLICATION");

    // feed=polling keeps polling although a feed is installed.
    auto polling =
        open_repo(s.url("app", password, name, "127.0.0.1", "feed=polling&poll_interval=200ms"));
    auto polling_sub = polling->watch([](const CatalogChange&) {});
    REQUIRE(polling_sub);
    CHECK(eventually([&] { return feed_kind(*polling) == "polling"; }, 20s));
    auto mapped = PostgresRepository::open(
        s.url("app", password, name, "127.0.0.1", "feed=polling&mapping=%2Ftmp%2Fm.json"));
    REQUIRE_FALSE(mapped);
    CHECK(mapped.error().is(Errc::not_supported));
}

TEST_CASE("feed=auto follows a migrate that switches the database between feeds while it "
          "runs; an explicit feed=triggers whose triggers are gone says so") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_switch";
    fresh_catalogue(name); // the trigger feed
    auto layered =
        open_layered(s.url("app", password, name, "127.0.0.1", "cache=live&feed_keepalive=300ms"));
    ChangeCollector seen;
    auto sub = layered.pg->watch(std::ref(seen));
    REQUIRE(sub);
    // The copy started the feed at open: its first resync may have gone before watch().
    REQUIRE(eventually([&] { return layered.copy_state().in_sync; }, 20s));
    CHECK(feed_kind(*layered.pg) == "triggers");
    s.psql("UPDATE model_status SET availability = 0.51 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::status, "gpt-4o") == 1; }, 20s));

    // To the logical feed: the triggers go, the running feed notices at a heartbeat.
    auto resyncs = seen.count(CatalogChange::Kind::resync);
    REQUIRE(open_repo(s.url("app", password, name, "127.0.0.1", "feed=logical"))->migrate());
    CHECK(eventually([&] { return feed_kind(*layered.pg) == "logical"; }, 20s));
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::resync) > resyncs; }, 20s));
    s.psql("UPDATE model_status SET availability = 0.52 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::status, "gpt-4o") == 2; }, 20s));
    CHECK(eventually([&] { return availability(*layered.repo) == 0.52; }, 20s));

    // An explicit feed=triggers on it now: told why it hears nothing, and the fix.
    auto explicit_triggers = open_repo(s.url("app", password, name, "127.0.0.1", "feed=triggers"));
    auto deaf = explicit_triggers->watch([](const CatalogChange&) {});
    REQUIRE(deaf);
    auto* health = explicit_triggers->capability<HealthControl>();
    REQUIRE(health);
    bool told = eventually(
        [&] {
            auto h = health->source_health();
            return h.down() && h.errc == Errc::schema_missing &&
                   h.cause.find("row triggers are gone") != std::string::npos;
        },
        20s);
    CAPTURE(health->source_health().cause);
    CHECK(told);
    deaf.value().cancel();

    // And back: the publication goes, the logical feed notices at a heartbeat.
    resyncs = seen.count(CatalogChange::Kind::resync);
    REQUIRE(open_repo(s.url("app", password, name, "127.0.0.1", "feed=triggers"))->migrate());
    CHECK(eventually([&] { return feed_kind(*layered.pg) == "triggers"; }, 20s));
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::resync) > resyncs; }, 20s));
    s.psql("UPDATE model_status SET availability = 0.53 WHERE model_slug = 'gpt-4o'", name);
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::status, "gpt-4o") == 3; }, 20s));
    CHECK(eventually([&] { return availability(*layered.repo) == 0.53; }, 20s));
    CHECK(eventually([&] { return layered.copy_state().in_sync; }, 20s));
}

namespace {

/// A LogicalFeed whose resync, on the feed's own thread, commits an UPDATE (after the
/// slot's snapshot) and only then re-reads the catalogue, as a slow copy would: what the
/// re-read held of gpt-4o's availability, and what the stream delivered.
struct RacedResync {
    std::mutex mutex;
    std::optional<double> reread; ///< gpt-4o's availability in the re-read
    std::vector<CatalogChange> changes;
    std::size_t count(CatalogChange::Kind kind) {
        std::lock_guard lock(mutex);
        return std::count_if(changes.begin(), changes.end(),
                             [&](const CatalogChange& c) { return c.kind == kind; });
    }
};

void race_a_resync(PgServer& s, const std::string& name, bool handoff_wanted, double value,
                   RacedResync& out) {
    auto config = PostgresConfig::from_url(s.url("app", password, name, "127.0.0.1")).value();
    auto session = std::make_shared<const modelrepo::detail::SessionConfig>(
        modelrepo::detail::parse_session_config(config.conninfo).value());
    modelrepo::detail::SqlCatalog sql(config, session);
    SnapshotHandoff handoff;
    handoff.want(handoff_wanted);
    sql.set_snapshot_handoff(&handoff);
    LogicalFeed::Options options;
    options.handoff = &handoff;
    LogicalFeed feed(sql.feed_session(), options, [&](std::vector<CatalogChange> batch) {
        for (const auto& c : batch) {
            bool first = false;
            {
                std::lock_guard lock(out.mutex);
                out.changes.push_back(c);
                first = c.kind == CatalogChange::Kind::resync && !out.reread;
            }
            if (!first)
                continue;
            s.psql("UPDATE model_status SET availability = " + std::to_string(value) +
                       " WHERE model_slug = 'gpt-4o'",
                   name);
            auto loaded = sql.load();
            std::lock_guard lock(out.mutex);
            out.reread = -1;
            if (loaded)
                for (const auto& st : loaded.value().first.statuses)
                    if (st.model_slug == "gpt-4o")
                        out.reread = st.availability;
        }
    });
    feed.start();
    REQUIRE(eventually([&] { return out.count(CatalogChange::Kind::status) >= 1; }, 20s));
    // Anything doubled or late has come by the time a later change arrives.
    s.psql("UPDATE models SET name = name WHERE slug = 'gpt-4o'", name);
    REQUIRE(eventually([&] { return out.count(CatalogChange::Kind::model) >= 1; }, 20s));
    feed.stop();
}

} // namespace

TEST_CASE("feed=logical: a resync's re-read is made in the new slot's snapshot: a change "
          "committed meanwhile comes once, in the stream, not in the re-read too") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_exact";
    fresh_catalogue(name, "feed=logical");

    RacedResync exact;
    race_a_resync(s, name, true, 0.61, exact);
    CHECK(exact.reread != std::optional<double>(0.61)); // the snapshot: before the UPDATE
    CHECK(exact.reread != std::optional<double>(-1.0)); // and it was read
    CHECK(exact.count(CatalogChange::Kind::status) == 1);
    CHECK(exact.count(CatalogChange::Kind::resync) == 1);

    // The control: without the handoff the re-read is the reader's own, made after the
    // UPDATE, which the stream delivers too (the double the handoff removes).
    RacedResync own;
    race_a_resync(s, name, false, 0.62, own);
    CHECK(own.reread == std::optional<double>(0.62));
    CHECK(own.count(CatalogChange::Kind::status) == 1);
}

TEST_CASE("feed=logical: transactions committed back to back by several writers reach watch() "
          "once each, in commit order, and the live copy holds the last of "
          "each") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_burst";
    auto layered = fresh_catalogue(name, "feed=logical&cache=live");
    auto pg = open_repo(s.url("app", password, name, "127.0.0.1", "feed=logical"));
    ChangeCollector seen;
    auto sub = pg->watch(std::ref(seen));
    REQUIRE(sub);
    REQUIRE(eventually([&] { return seen.count(CatalogChange::Kind::resync) >= 1; }, 20s));
    REQUIRE(eventually([&] { return layered.copy_state().in_sync; }, 20s));

    Snapshot builtin = builtin_snapshot();
    REQUIRE(builtin.models.size() >= 4);
    const std::string burst_start = s.psql("SELECT pg_current_wal_lsn()", name);
    constexpr int writers = 4, writes = 60;
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] {
            for (int i = 1; i <= writes; ++i) {
                ModelStatus status{builtin.models[static_cast<std::size_t>(w)].slug,
                                   Health::degraded,
                                   i / 100.0,
                                   std::nullopt,
                                   0,
                                   "eu",
                                   std::chrono::system_clock::now()};
                auto wrote = pg->upsert_statuses(std::span(&status, 1));
                CHECK_MESSAGE(wrote, wrote.error().to_string());
            }
        });
    for (auto& t : threads)
        t.join();
    for (int w = 0; w < writers; ++w) {
        const std::string& slug = builtin.models[static_cast<std::size_t>(w)].slug;
        CAPTURE(slug);
        CHECK(eventually(
            [&] { return seen.count(CatalogChange::Kind::status, slug) >= std::size_t{writes}; },
            20s));
        CHECK(eventually(
            [&] {
                auto m = layered->find_model(slug);
                return m && m.value() && m.value()->status &&
                       m.value()->status->availability == writes / 100.0;
            },
            20s));
    }
    // Nothing twice, nothing more, in commit order.
    for (int w = 0; w < writers; ++w)
        CHECK(seen.count(CatalogChange::Kind::status,
                         builtin.models[static_cast<std::size_t>(w)].slug) == std::size_t{writes});
    {
        std::lock_guard lock(seen.mutex);
        for (std::size_t i = 1; i < seen.changes.size(); ++i)
            CHECK(seen.changes[i].version > seen.changes[i - 1].version);
    }
    // Both feeds' slots confirm what they delivered: not after every commit, but once the
    // stream falls silent (or a second has passed), so the server may recycle that WAL.
    std::string confirmed;
    CAPTURE(burst_start);
    CAPTURE(confirmed);
    CHECK(eventually(
        [&] {
            confirmed = s.psql("SELECT coalesce(min(confirmed_flush_lsn)::text, '0/0') || ' ' || "
                               "count(*) FROM pg_replication_slots WHERE database = '" +
                               name + "'");
            auto space = confirmed.find(' ');
            return space != std::string::npos && confirmed.substr(space + 1) == "2" &&
                   parse_lsn(confirmed.substr(0, space)) > parse_lsn(burst_start);
        },
        20s));
}

TEST_CASE("feed=logical with cache=live: status writes reach the copy as the WAL has them, with no "
          "re-read; a correction back in time, and a role whose DateStyle prints otherwise, are "
          "read again instead") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    auto rows_applied = [](const Layered& layered) {
        for (const auto& family : layered->backend_metrics())
            if (family.name == "modelrepo_copy_rows_applied_total" && !family.samples.empty())
                return family.samples[0].value;
        return -1.0;
    };
    // A NULL latency, a fraction of six digits, checked at `when` (the text and its time).
    auto write_and_check = [&](const std::string& db, const Layered& layered, double value,
                               const std::string& when, Timestamp written) {
        s.psql("UPDATE model_status SET availability = " + std::to_string(value) +
                   ", latency_ms = NULL, region = 'ap-south', checked_at = '" + when +
                   "' WHERE model_slug = 'gpt-4o'",
               db);
        CHECK(eventually(
            [&] {
                auto m = layered->find_model("gpt-4o");
                return m && m.value() && m.value()->status &&
                       m.value()->status->availability == value && !m.value()->status->latency_ms &&
                       m.value()->status->region == "ap-south" &&
                       m.value()->status->checked_at == written;
            },
            20s));
    };
    const Timestamp in_2030 =
        sys_days(2030y / January / 2) + hours(3) + minutes(4) + seconds(5) + microseconds(678'901);
    const std::string in_2030_text = "2030-01-02 03:04:05.678901+00";

    {
        const std::string name = "logical_rows";
        auto layered = fresh_catalogue(name, "feed=logical&cache=live");
        REQUIRE(eventually([&] { return layered.copy_state().in_sync; }, 20s));
        CHECK(rows_applied(layered) == 0);
        // A status written by modelrepo itself.
        ModelStatus status{"gpt-4o", Health::outage, 0.0625, 250.0, 0.5, "eu", Clock::now()};
        REQUIRE(layered.pg->upsert_statuses(std::span(&status, 1)));
        CHECK(eventually(
            [&] {
                auto m = layered->find_model("gpt-4o");
                return m && m.value() && m.value()->status &&
                       m.value()->status->availability == 0.0625;
            },
            20s));
        // Counted just after the copy holds it.
        CHECK(eventually([&] { return rows_applied(layered) == 1; }, 5s));
        write_and_check(name, layered, 0.125, in_2030_text, in_2030);
        CHECK(eventually([&] { return rows_applied(layered) == 2; }, 5s));
        // A transaction that also renames the model: read again (not statuses only).
        s.psql("BEGIN; UPDATE models SET name = 'Renamed with its status' WHERE slug = 'gpt-4o'; "
               "UPDATE model_status SET availability = 0.25 WHERE model_slug = 'gpt-4o'; COMMIT",
               name);
        CHECK(eventually(
            [&] {
                auto m = layered->find_model("gpt-4o");
                return m && m.value() && m.value()->name == "Renamed with its status" &&
                       m.value()->status && m.value()->status->availability == 0.25;
            },
            20s));
        // A correction back in time: read again, and held as the table holds it.
        write_and_check(name, layered, 0.1875, "2025-01-02 03:04:05.678901+00",
                        in_2030 - hours(24 * (365 * 5 + 1)));
        CHECK(rows_applied(layered) == 2);
    }

    // The role's DateStyle prints timestamps in another form: the decoded rows are not
    // read, and the copy still holds what the table holds.
    struct ResetDateStyle {
        test::PgServer& s;
        ~ResetDateStyle() { s.psql("ALTER ROLE app RESET DateStyle"); }
    } reset{s};
    s.psql("ALTER ROLE app SET DateStyle = 'SQL, DMY'");
    const std::string name = "logical_rows_datestyle";
    auto layered = fresh_catalogue(name, "feed=logical&cache=live");
    REQUIRE(eventually([&] { return layered.copy_state().in_sync; }, 20s));
    write_and_check(name, layered, 0.375, in_2030_text, in_2030);
    CHECK(rows_applied(layered) == 0);
}
