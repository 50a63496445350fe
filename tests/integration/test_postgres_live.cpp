// SPDX-License-Identifier: MIT
// The live catalogue against a real server: the change feed (triggers, LISTEN/NOTIFY) as
// other clients write, through kill -9 and SIGSTOP; the last-known copy (cache_dir,
// cache=live) through outages and restarts; `modelrepo watch`.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "postgres/catalog/schema.hpp"
#include "process.hpp"
#include "temp_dir.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

namespace {

/// A plain libpq session: another client of the database, not modelrepo.
class RawClient {
public:
    explicit RawClient(const std::string& url)
        : conn_(PQconnectdb(url.c_str())) {}
    ~RawClient() { PQfinish(conn_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    /// Runs `sql`; after a lost connection tries once to reconnect. False on failure.
    bool exec(const std::string& sql) {
        if (PQstatus(conn_) != CONNECTION_OK)
            PQreset(conn_);
        PGresult* r = PQexec(conn_, sql.c_str());
        bool ok =
            r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
        PQclear(r);
        return ok;
    }

    /// Runs `sql` (again once on a new connection when the old one was lost); the first
    /// cell of its last result, or "" on failure.
    std::string value(const std::string& sql) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (PQstatus(conn_) != CONNECTION_OK)
                PQreset(conn_);
            PGresult* r = PQexec(conn_, sql.c_str());
            bool ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
            std::string out = ok ? PQgetvalue(r, 0, 0) : "";
            PQclear(r);
            if (ok || PQstatus(conn_) == CONNECTION_OK)
                return out;
        }
        return "";
    }

private:
    PGconn* conn_;
};

std::string metric(ModelRepository& repo, const std::string& name) {
    std::string text = to_prometheus(repo.backend_metrics());
    auto at = text.find("\n" + name + " ");
    if (at == std::string::npos)
        return "";
    auto start = at + name.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
}

} // namespace

TEST_CASE("changes made by a plain libpq session reach a watcher; foreign payloads are counted") {
    auto repo = fresh_catalogue("live_feed");
    CHECK(repo.pg->schema_version().value() == 3);
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen));
    if (!sub)
        FAIL(sub.error().to_string());
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s)); // listening
    RawClient other(server().url("app", password, "live_feed"));
    REQUIRE(
        other.exec("UPDATE model_status SET availability = 0.4242 WHERE model_slug = 'gpt-4o'"));
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::status, "gpt-4o"), 5s));
    REQUIRE(other.exec("UPDATE models SET description = 'changed' WHERE slug = 'gpt-5'"));
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::model, "gpt-5"), 5s));
    REQUIRE(
        other.exec("UPDATE providers SET website = 'https://example.org' WHERE slug = 'openai'"));
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::provider, "openai"), 5s));
    // Versions rise by one per change, in order.
    {
        std::lock_guard lock(seen.mutex);
        std::vector<std::int64_t> versions;
        for (const auto& c : seen.changes)
            if (c.kind != CatalogChange::Kind::resync)
                versions.push_back(c.version);
        REQUIRE(versions.size() == 3);
        CHECK(versions[1] == versions[0] + 1);
        CHECK(versions[2] == versions[1] + 1);
        CHECK(seen.changes.back().at > system_clock::now() - 1min);
    }
    // A row removed, put back, and a slug renamed (which cascades to its status): each
    // names the slugs it touched.
    REQUIRE(other.exec("DELETE FROM model_status WHERE model_slug = 'gpt-4o'"));
    REQUIRE(
        other.exec("INSERT INTO model_status SELECT 'gpt-4o', 'outage', 0, NULL, 1, '', now()"));
    REQUIRE(other.exec("UPDATE models SET slug = 'gpt-5-renamed' WHERE slug = 'gpt-5'"));
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));
    {
        std::lock_guard lock(seen.mutex);
        std::vector<std::string> named;
        for (const auto& c : seen.changes)
            if (c.kind != CatalogChange::Kind::resync)
                named.push_back(std::string(c.kind == CatalogChange::Kind::model    ? "model "
                                            : c.kind == CatalogChange::Kind::status ? "status "
                                                                                    : "provider ") +
                                c.slug);
        named.erase(named.begin(), named.begin() + 3);
        CHECK(named == std::vector<std::string>{"status gpt-4o", "status gpt-4o",
                                                "model gpt-5-renamed", "model gpt-5",
                                                "status gpt-5-renamed", "status gpt-5"});
    }
    // Someone else talks on the channel: ignored, counted.
    REQUIRE(other.exec("NOTIFY \"modelrepo:public\", 'not ours'"));
    CHECK(eventually(
        [&] { return metric(*repo.repo, "modelrepo_feed_unknown_payloads_total") == "1"; }, 5s));
    CHECK(metric(*repo.repo, "modelrepo_feed_connected") == "1");
    CHECK(metric(*repo.repo, "modelrepo_watchers") == "1");
    sub.value().cancel();
    CHECK_FALSE(sub.value().active());
}

TEST_CASE("roles with no rights on the log's bookkeeping: one writes statuses, one follows") {
    auto repo = fresh_catalogue("live_roles");
    server().psql("SET password_encryption = 'scram-sha-256'; "
                  "DROP ROLE IF EXISTS feed_reader; DROP ROLE IF EXISTS status_writer; "
                  "CREATE ROLE feed_reader LOGIN PASSWORD '" +
                  password + "'; CREATE ROLE status_writer LOGIN PASSWORD '" + password + "'");
    // The reader reads (the catalogue and the log), the writer updates statuses: neither
    // may touch catalog_listeners or write the log; the triggers and the mark run as the
    // owner.
    server().psql("GRANT SELECT ON providers, models, model_status, schema_migrations, "
                  "catalog_changes, catalog_change_seq TO feed_reader; "
                  "GRANT SELECT, UPDATE ON model_status TO status_writer",
                  "live_roles");
    auto reader = open_repo(server().url("feed_reader", password, "live_roles"));
    ChangeCollector seen;
    auto sub = reader->watch(std::ref(seen));
    REQUIRE_MESSAGE(sub, sub.error().to_string());
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    RawClient writer(server().url("status_writer", password, "live_roles"));
    REQUIRE(writer.exec("UPDATE model_status SET availability = 0.31 WHERE model_slug = 'gpt-5'"));
    CHECK(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));
    CHECK_FALSE(writer.exec("DELETE FROM catalog_changes")); // no rights on the log itself
    CHECK(metric(*reader, "modelrepo_feed_connected") == "1");
}

TEST_CASE("a bulk import is one resync, not a change per row") {
    auto repo = fresh_catalogue("live_bulk");
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    REQUIRE(repo.pg->import_snapshot(builtin_snapshot()));
    REQUIRE(eventually([&] { return seen.count(CatalogChange::Kind::resync) == 2; }, 5s));
    std::this_thread::sleep_for(300ms);
    CHECK(seen.count(CatalogChange::Kind::status) == 0);
    CHECK(seen.count(CatalogChange::Kind::model) == 0);
    CHECK(seen.count(CatalogChange::Kind::resync) == 2);
}

TEST_CASE("migrate gives row triggers made before their WHEN one; an import then calls "
          "them for no row") {
    auto repo = fresh_catalogue("live_when");
    auto unqualified = [] {
        return server().psql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE "
                             "'modelrepo\\_%\\_logged' AND tgqual IS NULL",
                             "live_when");
    };
    CHECK(unqualified() == "0"); // a new database has them with their WHEN
    // As a modelrepo before this one left them.
    server().psql("SET ROLE app; "
                  "CREATE OR REPLACE TRIGGER modelrepo_status_logged AFTER INSERT OR UPDATE OR "
                  "DELETE ON model_status FOR EACH ROW EXECUTE FUNCTION "
                  "modelrepo_row_logged('status'); "
                  "CREATE OR REPLACE TRIGGER modelrepo_model_logged AFTER INSERT OR UPDATE OR "
                  "DELETE ON models FOR EACH ROW EXECUTE FUNCTION modelrepo_row_logged('model'); "
                  "CREATE OR REPLACE TRIGGER modelrepo_provider_logged AFTER INSERT OR UPDATE OR "
                  "DELETE ON providers FOR EACH ROW EXECUTE FUNCTION "
                  "modelrepo_row_logged('provider')",
                  "live_when");
    REQUIRE(unqualified() == "3");
    REQUIRE(repo.pg->migrate());
    CHECK(unqualified() == "0");
    REQUIRE(repo.pg->migrate()); // again: nothing to do
    CHECK(unqualified() == "0");
    // An import logs one resync and no row; a write after it logs its row.
    auto logged = [] {
        return server().psql("SELECT count(*) FILTER (WHERE kind <> 'resync') || ' ' || "
                             "count(*) FILTER (WHERE kind = 'resync') FROM catalog_changes",
                             "live_when");
    };
    const std::string before = logged();
    auto snapshot = builtin_snapshot();
    for (auto& m : snapshot.models)
        m.description += " (again)"; // every model row updated
    REQUIRE(repo.pg->import_snapshot(snapshot));
    std::istringstream was(before), is(logged());
    long rows_before = 0, resyncs_before = 0, rows_after = 0, resyncs_after = 0;
    was >> rows_before >> resyncs_before;
    is >> rows_after >> resyncs_after;
    CHECK(rows_after == rows_before);
    CHECK(resyncs_after == resyncs_before + 1);
    server().psql("UPDATE model_status SET availability = 0.5 WHERE model_slug = 'gpt-4o'",
                  "live_when");
    std::istringstream after_write(logged());
    long rows_written = 0;
    after_write >> rows_written;
    CHECK(rows_written == rows_after + 1);
}

/// Database `db` (fresh) at schema `version`: the migrations up to it, as an older
/// modelrepo left it, with the builtin catalogue.
void database_at_schema(const std::string& db, int version) {
    fresh_database(db);
    std::string sql = "SET ROLE app; CREATE TABLE schema_migrations (version integer PRIMARY "
                      "KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());";
    for (const auto& m : detail::migrations())
        if (m.version <= version)
            sql += std::string(m.sql) + "; INSERT INTO schema_migrations (version, name) VALUES (" +
                   std::to_string(m.version) + ", 'm');";
    server().psql(sql, db);
    auto repo = open_repo(server().url("app", password, db));
    REQUIRE(repo->schema_version().value() == version);
    REQUIRE(repo->import_snapshot(builtin_snapshot()));
}

TEST_CASE("a database still on schema 1 or 2 answers schema_missing: run modelrepo migrate") {
    for (int version : {1, 2}) {
        CAPTURE(version);
        const std::string db = "live_schema" + std::to_string(version);
        database_at_schema(db, version);
        auto repo = open_repo(server().url("app", password, db));
        auto e = expect_error(repo->watch([](const CatalogChange&) {}), Errc::schema_missing);
        CHECK(e.message.find("schema version " + std::to_string(version)) != std::string::npos);
        CHECK(e.message.find("run modelrepo migrate") != std::string::npos);
        REQUIRE(repo->migrate().value() == 3);
        CHECK(repo->watch([](const CatalogChange&) {}));
    }
}

/// The committed changes of `db`'s log (not resyncs): version -> slug.
std::map<std::int64_t, std::string> logged_changes(const std::string& db) {
    auto text = server().psql("SELECT string_agg(version || ' ' || slug, ',' ORDER BY version) "
                              "FROM catalog_changes WHERE kind = 'status'",
                              db);
    std::map<std::int64_t, std::string> out;
    for (std::size_t at = 0; at < text.size();) {
        auto comma = std::min(text.find(',', at), text.size());
        std::string item = text.substr(at, comma - at);
        auto space = item.find(' ');
        out[std::stoll(item.substr(0, space))] = item.substr(space + 1);
        at = comma + 1;
    }
    return out;
}

/// What a watcher got (not resyncs): version -> slug, and how many came twice.
std::pair<std::map<std::int64_t, std::string>, int> delivered_changes(ChangeCollector& seen) {
    std::lock_guard lock(seen.mutex);
    std::map<std::int64_t, std::string> out;
    int twice = 0;
    for (const auto& c : seen.changes)
        if (c.kind == CatalogChange::Kind::status)
            twice += !out.emplace(c.version, c.slug).second;
    return {out, twice};
}

TEST_CASE("schema 2 moves to 3 while 4 clients write: no change lost, the feed then follows") {
    database_at_schema("live_move", 2);
    std::vector<std::string> slugs;
    for (const ModelStatus& st : builtin_snapshot().statuses)
        slugs.push_back(st.model_slug);
    std::atomic<bool> stop{false};
    std::atomic<int> writes{0}, failures{0};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w)
        writers.emplace_back([&, w] {
            RawClient other(server().url("app", password, "live_move"));
            std::mt19937 random(static_cast<unsigned>(w));
            while (!stop) {
                const std::string& slug = slugs[random() % slugs.size()];
                if (other.exec("UPDATE model_status SET availability = 0.5, checked_at = now() "
                               "WHERE model_slug = '" +
                               slug + "'"))
                    ++writes;
                else
                    ++failures;
            }
        });
    std::this_thread::sleep_for(300ms);
    int before = writes;
    auto repo = open_repo(server().url("app", password, "live_move"));
    REQUIRE(repo->migrate().value() == 3);
    std::this_thread::sleep_for(300ms);
    stop = true;
    for (auto& t : writers)
        t.join();
    CHECK(before > 0);
    CHECK(writes > before); // writers went on through the migration
    CHECK(failures == 0);
    // Every UPDATE that committed logged its change, before the move or after it, each
    // with a version of its own (the import is one resync, not counted).
    CHECK(static_cast<int>(logged_changes("live_move").size()) == writes);
    // And the feed follows a change made after the move.
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    server().psql("UPDATE model_status SET availability = 0.25 WHERE model_slug = 'gpt-5'",
                  "live_move");
    CHECK(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));
}

TEST_CASE("8 writers that commit in random order, and kill -9 three times: every committed "
          "change reaches the watcher once, none that was rolled back, and the copy is the "
          "database") {
    auto& s = server();
    auto repo = fresh_catalogue("live_order", "cache=live&connect_timeout=2&socket_timeout=2");
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    std::vector<std::string> slugs;
    for (const ModelStatus& st : builtin_snapshot().statuses)
        slugs.push_back(st.model_slug);
    std::atomic<bool> stop{false};
    std::atomic<int> committed{0}, rolled_back{0};
    std::vector<std::thread> writers;
    StopAndJoin joiner{stop, writers};
    for (int w = 0; w < 8; ++w)
        writers.emplace_back([&, w] {
            RawClient other(s.url("app", password, "live_order", "127.0.0.1", "connect_timeout=2"));
            std::mt19937 random(static_cast<unsigned>(100 + w));
            while (!stop) {
                // Each writer has its own slugs (no row waits on another writer), takes
                // its version at the UPDATE and commits after a random delay: versions
                // commit out of order. One in eight rolls back.
                const std::string& slug = slugs[(w + 8 * (random() % 4)) % slugs.size()];
                bool commit = random() % 8 != 0;
                std::string sql = "BEGIN; UPDATE model_status SET availability = " +
                                  std::to_string((random() % 1000) / 1000.0) +
                                  " WHERE model_slug = '" + slug + "'; SELECT pg_sleep(" +
                                  std::to_string((random() % 30) / 1000.0) + "); " +
                                  (commit ? "COMMIT" : "ROLLBACK");
                if (other.exec(sql))
                    ++(commit ? committed : rolled_back);
                else
                    std::this_thread::sleep_for(50ms);
            }
        });
    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        int before = committed;
        REQUIRE_MESSAGE(eventually([&] { return committed >= before + 200; }, 30s),
                        "commits: " << committed.load());
        s.kill9();
        std::this_thread::sleep_for(300ms);
        s.start();
        REQUIRE_MESSAGE(s.available(), s.why());
    }
    REQUIRE(eventually([&] { return committed >= 800; }, 30s));
    stop = true;
    for (auto& t : writers)
        t.join();
    CHECK(rolled_back > 0);
    auto logged = logged_changes("live_order");
    REQUIRE(logged.size() >= 800);
    std::map<std::int64_t, std::string> delivered;
    auto missing = [&] {
        std::string out;
        for (const auto& [version, slug] : logged)
            if (!delivered.count(version) && out.size() < 400)
                out += std::to_string(version) + " ";
        return out;
    };
    CAPTURE(missing());
    CAPTURE(metric(*repo.repo, "modelrepo_feed_connected"));
    CAPTURE(metric(*repo.repo, "modelrepo_feed_reconnects_total"));
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 20s));
    auto all_delivered = [&] {
        delivered = delivered_changes(seen).first;
        return std::includes(delivered.begin(), delivered.end(), logged.begin(), logged.end());
    };
    if (!eventually(all_delivered, 15s)) {
        // Seen twice under TSan, one change of ~900 never delivered: it was committed,
        // right after a restart, under a transaction id the server handed out again (the
        // test case before this one; mended in the feed's catch-up). Said here, and a late
        // one must still come: delivery once is the claim, lateness a bug to chase.
        MESSAGE("not delivered within 15 s: " << missing());
        REQUIRE(eventually(all_delivered, 45s));
    }
    // Nothing else: every delivered change is one the database committed, and none came
    // twice.
    for (const auto& [version, slug] : delivered)
        if (!logged.count(version))
            FAIL_CHECK("delivered but not committed: " << version << " " << slug);
    CHECK(delivered_changes(seen).second == 0);
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    auto direct = open_repo(s.url("app", password, "live_order"))->list_statuses().value();
    CHECK(repo->list_statuses().value() == direct);
}

TEST_CASE("after a crash the server hands out again the ids of transactions that rolled back "
          "just before it (their WAL never written): a change committed under such an id "
          "before the feed is back still reaches the watcher") {
    // What CI saw twice in the kill -9 test above: one committed change never delivered.
    // The feed's cursor had passed the rolled-back ids, and the catch-up poll's snapshot
    // then moved it past the new row too; the catch-up now also reads every version above
    // the highest it delivered (ChangeFeed::Cursor).
    auto& s = server();
    auto repo = fresh_catalogue("live_reuse",
                                "cache=live&feed_keepalive=1s&connect_timeout=2&socket_timeout=2");
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    s.psql("ALTER TABLE model_status SET (autovacuum_enabled = false); "
           "ALTER TABLE catalog_changes SET (autovacuum_enabled = false)",
           "live_reuse");
    RawClient other(s.url("app", password, "live_reuse", "127.0.0.1", "connect_timeout=2"));
    REQUIRE(other.exec("SELECT 1"));
    // The feed may not reconnect until the change below is made (the superuser may).
    s.psql("ALTER ROLE app CONNECTION LIMIT 0");
    struct Unlimit {
        PgServer& s;
        ~Unlimit() { s.try_psql("ALTER ROLE app CONNECTION LIMIT -1"); }
    } unlimit{s};
    REQUIRE(eventually([&] { return metric(*repo.repo, "modelrepo_feed_asleep") == "1"; }, 10s));
    // Nothing may write the WAL out between the rollbacks and the kill: the server's
    // background writers stop (a commit would write it too; none is made).
    // Right after an earlier restart the autovacuum launcher may not be listed yet: wait
    // until all four are.
    std::vector<int> writers;
    REQUIRE_MESSAGE(eventually(
                        [&] {
                            writers.clear();
                            std::istringstream pids(s.psql(
                                "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE "
                                "backend_type IN ('walwriter', 'background writer', "
                                "'checkpointer', 'autovacuum launcher')"));
                            for (int pid; pids >> pid;)
                                writers.push_back(pid);
                            return writers.size() == 4;
                        },
                        10s),
                    "found " << writers.size() << " of the server's 4 background writers");
    for (int pid : writers)
        REQUIRE(::kill(pid, SIGSTOP) == 0);
    std::int64_t rolled_back = 0;
    for (int i = 0; i < 20; ++i) {
        std::string xid = other.value("BEGIN; UPDATE model_status SET availability = 0.125 WHERE "
                                      "model_slug = 'gpt-4o'; SELECT pg_current_xact_id()");
        REQUIRE(!xid.empty());
        REQUIRE(other.exec("ROLLBACK"));
        rolled_back = std::max<std::int64_t>(rolled_back, std::stoll(xid));
    }
    // The feed's next poll (a heartbeat: it is asleep) moves its cursor past them.
    auto polls = std::stoll(metric(*repo.repo, "modelrepo_feed_polls_total"));
    REQUIRE(eventually(
        [&] { return std::stoll(metric(*repo.repo, "modelrepo_feed_polls_total")) > polls + 1; },
        10s));
    s.kill9();
    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    s.psql("UPDATE model_status SET availability = 0.25 WHERE model_slug = 'gpt-5'", "live_reuse");
    std::istringstream row(s.psql("SELECT xid || ' ' || version FROM catalog_changes WHERE "
                                  "slug = 'gpt-5' ORDER BY version DESC LIMIT 1",
                                  "live_reuse"));
    std::int64_t xid = 0, version = 0;
    REQUIRE(static_cast<bool>(row >> xid >> version));
    // The case is made only when the id came back.
    CAPTURE(rolled_back);
    REQUIRE(xid <= rolled_back);
    CHECK(metric(*repo.repo, "modelrepo_feed_connected") == "0"); // not back yet
    s.psql("ALTER ROLE app CONNECTION LIMIT -1");
    CHECK(seen.wait_for(
        [&](const CatalogChange& c) {
            return c.kind == CatalogChange::Kind::status && c.slug == "gpt-5" &&
                   c.version == version;
        },
        15s));
    CHECK(delivered_changes(seen).second == 0);
}

TEST_CASE("kill -9 and restart during 1,000 changes by another client, three times: "
          "resync after each restart, no change lost, the copy equals the database") {
    auto& s = server();
    auto repo = fresh_catalogue("live_chaos", "cache=live&connect_timeout=2&socket_timeout=2");
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    // cache=live: the copy's feed started when the repository opened, so its first resync
    // may have come before watch(); the copy in sync is what says the feed listens.
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    std::vector<std::string> slugs; // models that have a status row to update
    for (const ModelStatus& st : builtin_snapshot().statuses)
        slugs.push_back(st.model_slug);

    std::atomic<int> done{0};
    std::atomic<bool> stop{false};
    std::thread writer;
    struct Joiner {
        std::atomic<bool>& stop;
        std::thread& thread;
        ~Joiner() {
            stop = true;
            if (thread.joinable())
                thread.join();
        }
    } joiner{stop, writer};
    writer = std::thread([&] {
        RawClient other(s.url("app", password, "live_chaos", "127.0.0.1", "connect_timeout=2"));
        std::mt19937 random(7);
        int i = 0;
        while (done < 1000 && !stop) {
            const std::string& slug = slugs[random() % slugs.size()];
            if (other.exec("UPDATE model_status SET availability = " +
                           std::to_string((random() % 1000) / 1000.0) +
                           ", checked_at = now() WHERE model_slug = '" + slug + "'"))
                ++done;
            else
                std::this_thread::sleep_for(50ms);
            std::this_thread::sleep_for(4ms); // spread the stream over the three restarts
            ++i;
        }
    });
    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        int before = done;
        REQUIRE_MESSAGE(eventually([&] { return done >= before + 150; }, 30s),
                        "writes done: " << done.load());
        std::size_t resyncs = seen.count(CatalogChange::Kind::resync);
        s.kill9();
        std::this_thread::sleep_for(300ms);
        s.start();
        REQUIRE_MESSAGE(s.available(), s.why());
        CHECK(eventually([&] { return seen.count(CatalogChange::Kind::resync) > resyncs; }, 20s));
    }
    writer.join();
    REQUIRE(done == 1000);
    // Once writes stop, every committed change was delivered, and the copy is the
    // database.
    auto committed = s.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                            "catalog_changes WHERE kind <> 'resync'",
                            "live_chaos");
    std::set<std::int64_t> expected;
    for (std::size_t at = 0; at < committed.size();) {
        auto comma = committed.find(',', at);
        expected.insert(std::stoll(committed.substr(at, comma - at)));
        at = comma == std::string::npos ? committed.size() : comma + 1;
    }
    CHECK(expected.size() >= 1000); // one more when a commit's answer was lost to a kill
    auto missing = [&] {
        std::lock_guard lock(seen.mutex);
        std::set<std::int64_t> delivered;
        for (const auto& c : seen.changes)
            if (c.kind != CatalogChange::Kind::resync)
                delivered.insert(c.version);
        std::string out;
        for (auto v : expected)
            if (!delivered.count(v))
                out += std::to_string(v) + " ";
        return out;
    };
    CAPTURE(missing());
    CAPTURE(metric(*repo.repo, "modelrepo_feed_connected"));
    CAPTURE(metric(*repo.repo, "modelrepo_feed_reconnects_total"));
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 20s));
    REQUIRE(eventually(
        [&] {
            std::lock_guard lock(seen.mutex);
            std::set<std::int64_t> delivered;
            for (const auto& c : seen.changes)
                if (c.kind != CatalogChange::Kind::resync)
                    delivered.insert(c.version);
            return std::includes(delivered.begin(), delivered.end(), expected.begin(),
                                 expected.end());
        },
        10s));
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    auto from_copy = repo->list_statuses().value(); // cache=live: the copy answers
    auto direct = open_repo(s.url("app", password, "live_chaos"))->list_statuses().value();
    CHECK(from_copy == direct);
}

TEST_CASE("kill -9 and restart ten times beside a CPU hog: the copy is back in sync within "
          "10 s every time, and holds the change made meanwhile") {
    auto& s = server();
    auto repo = fresh_catalogue("live_restarts", "cache=live&connect_timeout=2&socket_timeout=2");
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    // Two threads that never yield, on this 2-core machine: the feed, the copy's reload
    // and the server all compete with them.
    std::atomic<bool> stop{false};
    std::vector<std::thread> hog;
    for (int i = 0; i < 2; ++i)
        hog.emplace_back([&] {
            volatile std::uint64_t x = 0;
            while (!stop.load(std::memory_order_relaxed))
                x = x + 1;
        });
    StopAndJoin joiner{stop, hog};
    for (int round = 0; round < 10; ++round) {
        CAPTURE(round);
        s.kill9();
        s.start();
        REQUIRE_MESSAGE(s.available(), s.why());
        const double availability = 0.5 + round / 100.0;
        s.psql("UPDATE model_status SET availability = " + std::to_string(availability) +
                   " WHERE model_slug = 'gpt-5'",
               "live_restarts");
        auto started = steady_clock::now();
        bool back = eventually(
            [&] {
                auto m = repo->find_model("gpt-5");
                return repo.copy_state().in_sync && m && m.value() &&
                       m.value()->status->availability == doctest::Approx(availability);
            },
            10s); // before: 60 s when the reload after the resync failed
        MESSAGE("round " << round << ": in sync after "
                         << duration_cast<milliseconds>(steady_clock::now() - started).count()
                         << " ms");
        CHECK(back);
    }
}

TEST_CASE("SIGSTOP of the server: the feed notices within its keepalive, recovers after SIGCONT") {
    auto& s = server();
    auto repo = fresh_catalogue("live_sigstop", "feed_keepalive=1s&connect_timeout=2");
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    s.stop_processes();
    auto stopped = steady_clock::now();
    bool noticed =
        eventually([&] { return metric(*repo.repo, "modelrepo_feed_connected") == "0"; }, 10s);
    auto took = steady_clock::now() - stopped;
    s.continue_processes();
    CHECK(noticed);
    CAPTURE(duration_cast<milliseconds>(took).count());
    CHECK(took < 1s + 1s + 3s); // keepalive + its round trip + slack
    CHECK(
        seen.wait_for([](const CatalogChange& c) { return c.kind == CatalogChange::Kind::resync; },
                      1ms)); // the first one
    REQUIRE(eventually([&] { return seen.count(CatalogChange::Kind::resync) >= 2; }, 20s));
    RawClient other(s.url("app", password, "live_sigstop"));
    REQUIRE(other.exec("UPDATE model_status SET availability = 0.5 WHERE model_slug = 'gpt-5'"));
    CHECK(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));
}

TEST_CASE("started with the server down and a cache_dir from an earlier run: that run's newest "
          "state, said so; without one, the chain fails over as before") {
    auto& s = server();
    fresh_catalogue("live_cache");
    TempDir dir;
    const std::string url = s.url("app", password, "live_cache", "127.0.0.1",
                                  "cache_dir=" + dir.path().string() + "&connect_timeout=2");
    {
        auto first = open_layered(url);
        REQUIRE(eventually([&] { return first.copy_state().in_sync; }, 10s));
        RawClient other(s.url("app", password, "live_cache"));
        REQUIRE(other.exec("UPDATE model_status SET availability = 0.4242, checked_at = now() "
                           "WHERE model_slug = 'gpt-4o'"));
        // The copy follows the feed.
        REQUIRE(eventually(
            [&] {
                auto m = first->find_model("gpt-4o");
                return m && m.value() && m.value()->status->availability == 0.4242;
            },
            5s));
        std::this_thread::sleep_for(1500ms); // the copy is written at most once a second
    }                                        // and at exit
    s.kill9();
    struct Restart {
        PgServer& s;
        ~Restart() { s.start(); }
    } restart{s};

    auto second = open_layered(url);
    auto model = second->find_model("gpt-4o");
    if (!model)
        FAIL(model.error().to_string());
    CHECK(model.value()->status->availability == 0.4242);
    auto stats = second->system_stats().value();
    CHECK(stats.source.find("last-known copy") != std::string::npos);
    CHECK(stats.models == 32);
    CHECK(second.copy_state().served_while_down >= 2);
    CHECK(metric(*second.repo, "modelrepo_copy_served_while_down_total") == "2");

    // Through a chain with the bundled catalogue behind it: the copy answers, not the
    // bundle, which has the day the library was built.
    std::vector<std::string> chain_urls{url, "builtin:"};
    auto chain = open_chain(chain_urls).value();
    auto chained = chain->find_model("gpt-4o").value();
    CHECK(chained->status->availability == 0.4242);

    // No copy: the chain answers from the bundle, as before.
    TempDir empty;
    std::vector<std::string> bare{
        s.url("app", password, "live_cache", "127.0.0.1",
              "cache_dir=" + empty.path().string() + "&connect_timeout=2"),
        "builtin:"};
    auto fallback = open_chain(bare).value();
    auto stats2 = fallback->system_stats().value();
    CHECK(stats2.source == "builtin");
}

TEST_CASE("cache=live: reads at memory speed from the copy; this process's writes show at once") {
    auto& s = server();
    auto repo = fresh_catalogue("live_reads", "cache=live&feed_keepalive=30s");
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    auto acquires = [&] {
        std::uint64_t n = 0;
        for (auto b : repo.pg->pool_stats().acquire_wait_buckets)
            n += b;
        return n;
    };
    auto before = acquires();
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(repo->count_models().value() == 32);
        REQUIRE(repo->find_model("gpt-5").value());
    }
    CHECK(acquires() == before); // not one of them touched the pool
    Timestamp t = floor<microseconds>(system_clock::now());
    std::vector<ModelStatus> write{{"gpt-5", Health::outage, 0.1, 10.0, 0.9, "test", t}};
    REQUIRE(repo->upsert_statuses(write).value() == 1);
    // The next read, straight from the copy, holds it (before the feed reports it).
    CHECK(repo->find_model("gpt-5").value()->status->health == Health::outage);
    CHECK(repo->system_stats().value().source == repo->name());
    // A stopped server is not asked: the copy keeps answering at once (until the feed's
    // keepalive, 30 s here, notices).
    s.stop_processes();
    auto started = steady_clock::now();
    auto answer = repo->find_model("gpt-5");
    auto took = steady_clock::now() - started;
    s.continue_processes();
    REQUIRE(answer);
    CHECK(took < 100ms);
}

TEST_CASE("cache=live: a correction that moves checked_at back reaches reads and watchers: the "
          "copy holds what the database holds") {
    auto repo = fresh_catalogue("live_correction", "cache=live");
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen));
    REQUIRE(sub);
    // A bad row: dated an hour ahead of the truth (still within the allowed skew of what
    // a write may carry when it was made: it came from psql, which nothing checks).
    RawClient dba(server().url("app", password, "live_correction"));
    REQUIRE(dba.exec("UPDATE model_status SET health = 'outage', checked_at = now() + "
                     "interval '4 minutes' WHERE model_slug = 'gpt-5'"));
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));
    CHECK(repo->find_model("gpt-5").value()->status->health == Health::outage);
    // The DBA corrects it: an older checked_at, the true health. The copy takes it as the
    // database's row, although it is older than what the copy held.
    const auto before = seen.copy().size();
    REQUIRE(dba.exec("UPDATE model_status SET health = 'operational', checked_at = now() - "
                     "interval '1 hour' WHERE model_slug = 'gpt-5'"));
    REQUIRE(eventually([&] { return seen.copy().size() > before; }, 5s));
    auto corrected = repo->find_model("gpt-5").value();
    REQUIRE(corrected);
    CHECK(corrected->status->health == Health::operational);
    CHECK(corrected->status->checked_at < system_clock::now() - 30min);
    CHECK(repo->system_stats().value().health.outage ==
          std::stoi(server().psql("SELECT count(*) FROM model_status WHERE health = 'outage'",
                                  "live_correction")));
    // A write through the API that is older than the stored status is still ignored (a
    // replay), and the receipt says so.
    std::vector<ModelStatus> stale{
        {"gpt-5", Health::outage, 0.1, 1.0, 0.5, "replay", system_clock::now() - 2h}};
    auto receipt = repo->write_statuses(stale);
    REQUIRE(receipt);
    CHECK(receipt.value().applied == 0);
    CHECK(receipt.value().ignored == 1);
    CHECK(receipt.value().ignored_models == std::vector<std::string>{"gpt-5"});
    CHECK(repo->find_model("gpt-5").value()->status->health == Health::operational);
}

TEST_CASE("a mapping whose quoted names hold $$, $tags$, quotes and semicolons: migrate, reads, "
          "writes and the feed work, and nothing else in the database changes") {
    auto& s = server();
    fresh_database("live_hostile");
    // Tables and columns named to break out of any quoting that splices them.
    s.psql(R"sql(
        CREATE TABLE "pro$$viders" ("sl$$ug" text PRIMARY KEY, "na'me" text NOT NULL);
        CREATE TABLE "mo$modelrepo$dels" ("slug;" text PRIMARY KEY,
            "prov""ider" text NOT NULL REFERENCES "pro$$viders" ("sl$$ug"),
            "name$$); DROP TABLE x; --" text NOT NULL);
        CREATE TABLE "sta$$tus" ("model$$" text PRIMARY KEY REFERENCES "mo$modelrepo$dels" ("slug;"),
            "health" text NOT NULL, "at$modelrepo1$" timestamptz NOT NULL);
        CREATE TABLE x (keep int);
        INSERT INTO "pro$$viders" VALUES ('openai', 'OpenAI');
        INSERT INTO "mo$modelrepo$dels" VALUES ('gpt-5', 'openai', 'GPT-5');
        GRANT ALL ON ALL TABLES IN SCHEMA public TO app;
    )sql",
           "live_hostile");
    TempDir dir;
    auto mapping = dir.write("hostile.json", R"({"format": "modelrepo.mapping/1",
        "providers": {"table": "pro$$viders", "slug": "sl$$ug", "name": "na'me"},
        "models": {"table": "mo$modelrepo$dels", "slug": "slug;", "provider_id": "prov\"ider",
                   "name": "name$$); DROP TABLE x; --"},
        "statuses": {"table": "sta$$tus", "model_id": "model$$", "health": "health",
                     "checked_at": "at$modelrepo1$"}})");
    auto objects = [&] {
        return s.psql(
            "SELECT string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
            "n.nspname = 'public' AND c.relname NOT LIKE 'catalog%' AND c.relname NOT "
            "LIKE 'schema_migrations%' AND c.relname NOT LIKE '%pkey'",
            "live_hostile");
    };
    const std::string before = objects();
    const std::string columns_before =
        s.psql("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public'",
               "live_hostile");
    auto pg = open_repo(
        s.url("app", password, "live_hostile", "127.0.0.1", "mapping=" + mapping.string()));
    auto migrated = pg->migrate();
    REQUIRE_MESSAGE(migrated, migrated.error().to_string());
    CHECK(pg->migrate());       // twice is a no-op
    CHECK(objects() == before); // the user's tables: none added, none dropped
    CHECK(s.psql("SELECT count(*) FROM x", "live_hostile") == "0");
    ChangeCollector seen;
    auto sub = pg->watch(std::ref(seen));
    REQUIRE_MESSAGE(sub, sub.error().to_string());
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    std::vector<ModelStatus> write{{"gpt-5", Health::degraded, 1.0, std::nullopt, 0.0, "",
                                    floor<microseconds>(system_clock::now())}};
    auto receipt = pg->write_statuses(write);
    REQUIRE_MESSAGE(receipt, receipt.error().to_string());
    CHECK(receipt.value().applied == 1);
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));
    auto model = pg->find_model("gpt-5");
    REQUIRE(model);
    REQUIRE(model.value());
    CHECK(model.value()->name == "GPT-5");
    CHECK(model.value()->status->health == Health::degraded);
    CHECK(s.psql("SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                 "'public' AND table_name NOT LIKE 'catalog%' AND table_name <> "
                 "'schema_migrations'",
                 "live_hostile") == columns_before);
}

TEST_CASE("modelrepo watch --json prints every psql UPDATE, and again after a restart") {
    auto& s = server();
    fresh_catalogue("live_cli");
    std::string cli = require_env("MODELREPO_CLI");
    ChildProcess watch({cli, "--source",
                        s.url("app", password, "live_cli", "127.0.0.1", "connect_timeout=2"),
                        "watch", "--json"},
                       {{"MODELREPO_SOURCES", ""}});
    auto resync = watch.read_line_until(
        [](const std::string& l) { return l.find("\"kind\":\"resync\"") != std::string::npos; },
        15s);
    REQUIRE(resync);
    s.psql("UPDATE model_status SET availability = 0.31 WHERE model_slug = 'claude-sonnet-4-5'",
           "live_cli");
    auto line = watch.read_line(5s);
    REQUIRE(line);
    auto doc = nlohmann::json::parse(*line);
    CHECK(doc["kind"] == "status");
    CHECK(doc["slug"] == "claude-sonnet-4-5");
    CHECK(doc["version"].get<std::int64_t>() > 0);
    std::string at = doc["at"];
    CHECK(at.size() == std::string("2026-12-01T10:00:00.000000Z").size());
    CHECK(at.back() == 'Z');

    s.kill9();
    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    REQUIRE(watch.read_line_until(
        [](const std::string& l) { return l.find("\"kind\":\"resync\"") != std::string::npos; },
        20s));
    s.psql("UPDATE model_status SET availability = 0.32 WHERE model_slug = 'claude-sonnet-4-5'",
           "live_cli");
    auto after = watch.read_line(5s);
    REQUIRE(after);
    CHECK(after->find("\"slug\":\"claude-sonnet-4-5\"") != std::string::npos);
    watch.signal(SIGTERM);
    CHECK(watch.wait(5s) == 0);
    CHECK(watch.err().find(password) == std::string::npos);
}

TEST_CASE("modelrepo with cache_dir: after the server was killed, `model SLUG` answers the last "
          "value the database held, not the bundled one") {
    auto& s = server();
    fresh_catalogue("live_cli_cache");
    TempDir dir;
    std::string cli = require_env("MODELREPO_CLI");
    const std::string url = s.url("app", password, "live_cli_cache", "127.0.0.1",
                                  "connect_timeout=2&cache_dir=" + dir.path().string());
    s.psql("UPDATE model_status SET availability = 0.4242, checked_at = now() "
           "WHERE model_slug = 'gpt-4o'",
           "live_cli_cache");
    auto up = run_process({cli, "--source", url, "--source", "builtin:", "model", "gpt-4o"},
                          {{"MODELREPO_SOURCES", ""}});
    REQUIRE(up.exit_code == 0);
    s.kill9();
    struct Restart {
        PgServer& s;
        ~Restart() { s.start(); }
    } restart{s};
    auto down =
        run_process({cli, "--source", url, "--source", "builtin:", "--json", "model", "gpt-4o"},
                    {{"MODELREPO_SOURCES", ""}});
    CAPTURE(down.err);
    REQUIRE(down.exit_code == 0);
    auto doc = nlohmann::json::parse(down.out);
    CHECK(doc["status"]["availability"] == 0.4242);
    CHECK(doc["source"].get<std::string>().find("postgresql://app@") == 0);
    auto bundled = builtin_snapshot();
    for (const auto& st : bundled.statuses)
        if (st.model_slug == "gpt-4o")
            CHECK(st.availability != 0.4242);
}

TEST_CASE("examples/realtime_stats pushes on change, and says when it answers from the copy") {
    const char* example = std::getenv("EXAMPLE_REALTIME_STATS");
    if (!example) {
        MESSAGE("examples not built (-Dexamples=false)");
        return;
    }
    auto& s = server();
    fresh_catalogue("live_example");
    TempDir dir;
    const std::string url = s.url("app", password, "live_example", "127.0.0.1",
                                  "cache_dir=" + dir.path().string() + "&connect_timeout=2");
    {
        ChildProcess realtime({example, "-s", url, "-s", "builtin:", "-i", "60", "-n", "2"},
                              {{"MODELREPO_SOURCES", ""}});
        REQUIRE(realtime.read_line_until(
            [](const std::string& l) { return l.starts_with("update 1"); }, 15s));
        std::this_thread::sleep_for(500ms); // its feed is listening by now
        s.psql("UPDATE model_status SET health = 'outage' WHERE model_slug = 'gpt-5'",
               "live_example");
        auto pushed = realtime.read_line_until(
            [](const std::string& l) { return l.starts_with("update 2"); }, 10s);
        REQUIRE(pushed); // long before the 60 s refresh
        CHECK(pushed->find("(change)") != std::string::npos);
        CHECK(realtime.wait(10s) == 0);
    }
    s.kill9();
    struct Restart {
        PgServer& s;
        ~Restart() { s.start(); }
    } restart{s};
    auto down =
        run_process({example, "-s", url, "-s", "builtin:", "-n", "1"}, {{"MODELREPO_SOURCES", ""}});
    CHECK(down.exit_code == 0);
    CHECK(down.out.find("last-known copy") != std::string::npos);
    CHECK(down.out.find("the database does not answer") != std::string::npos);
    CHECK(down.out.find(password) == std::string::npos);
}

TEST_CASE("no message ever held the password") {
    check_no_password_seen(1);
}
