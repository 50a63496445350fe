// SPDX-License-Identifier: MIT
// Beyond one server, on PostgreSQL's own engine: a real streaming standby (pg_basebackup
// -R) and a real PgBouncer in transaction mode, all on loopback. read_target, the lag
// bound, PgBouncer with two schemas and the feed through direct_url, the doctor over
// several hosts, and last a failover under load.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "pgbouncer.hpp"
#include "process.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

namespace {

/// The primary's standby, started once the catalogue databases exist on the primary.
PgServer& standby() {
    static PgServer replica(server(), PgServer::Standby{});
    require_pg(replica);
    return replica;
}

/// A URL naming the primary, then the standby.
std::string both(const std::string& db, const std::string& query) {
    return "postgresql://app:" + password + "@127.0.0.1:" + std::to_string(server().port()) +
           ",127.0.0.1:" + std::to_string(standby().port()) + "/" + db + "?" + query;
}

/// Sessions of `application` open on `s`.
int sessions_on(const PgServer& s, const std::string& application) {
    return std::stoi(s.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                            application + "'"));
}

/// Waits until the standby has replayed everything the primary has written.
void caught_up() {
    auto lsn = server().psql("SELECT pg_current_wal_lsn()");
    REQUIRE(eventually(
        [&] {
            return standby().psql("SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'::pg_lsn") ==
                   "t";
        },
        20s));
}

} // namespace

TEST_CASE("read_target: prefer-standby and standby read on the standby, writes on the primary") {
    auto primary_repo = fresh_catalogue("replicas");
    standby(); // a base backup with the catalogue in it
    caught_up();
    auto repo =
        open_repo(both("replicas", "read_target=prefer-standby&application_name=rt-prefer"));
    REQUIRE(repo->count_models().value() == 32);
    CHECK(sessions_on(standby(), "rt-prefer") >= 1);
    Timestamp t = floor<microseconds>(system_clock::now());
    std::vector<ModelStatus> write{{"gpt-5", Health::outage, 0.01, 1.0, 0.99, "replica", t}};
    REQUIRE(repo->write_statuses(write).value().applied == 1);
    CHECK(server().psql("SELECT region FROM model_status WHERE model_slug = 'gpt-5'", "replicas") ==
          "replica");
    caught_up();
    CHECK(repo->find_model("gpt-5").value()->status->region == "replica"); // from the standby
    std::string text = to_prometheus(repo->backend_metrics());
    CHECK(text.find("modelrepo_pool_connections{pool=\"read\",state=\"open\"} ") !=
          std::string::npos);

    auto only = open_repo(both("replicas", "read_target=standby&application_name=rt-standby"));
    REQUIRE(only->count_models().value() == 32);
    CHECK(sessions_on(standby(), "rt-standby") >= 1);
    CHECK(sessions_on(server(), "rt-standby") == 0);

    auto primary_only = open_repo(both("replicas", "read_target=primary&application_name=rt-prim"));
    REQUIRE(primary_only->count_models().value() == 32);
    CHECK(sessions_on(server(), "rt-prim") >= 1);
    CHECK(sessions_on(standby(), "rt-prim") == 0);

    // A standby-only read with no standby in the URL says so.
    auto none = open_repo(server().url("app", password, "replicas", "127.0.0.1",
                                       "read_target=standby&connect_timeout=2"));
    auto e = expect_error(none->count_models(), Errc::unreachable);
    CHECK(e.message.find("standby") != std::string::npos);
}

TEST_CASE("replay paused past max_replication_lag: reads leave the standby; resumed, they return") {
    fresh_catalogue("replicas_lag");
    caught_up();
    auto repo =
        open_repo(both("replicas_lag", "read_target=prefer-standby&max_replication_lag=500ms"
                                       "&application_name=rt-lag"));
    REQUIRE(repo->count_models().value() == 32);
    REQUIRE(sessions_on(standby(), "rt-lag") >= 1);
    standby().pause_replay();
    struct Resume {
        ~Resume() { standby().resume_replay(); }
    } resume;
    // Written on the primary, received by the standby, not replayed there.
    server().psql("UPDATE model_status SET region = 'after-pause' WHERE model_slug = 'gpt-4o'",
                  "replicas_lag");
    // Past the bound (500 ms), the next check (every 250 ms while used) sends reads to
    // the primary: they see the write the standby has not replayed.
    CHECK(eventually(
        [&] {
            auto m = repo->find_model("gpt-4o");
            return m && m.value() && m.value()->status->region == "after-pause";
        },
        10s));
    CHECK(eventually([&] { return sessions_on(standby(), "rt-lag") == 0; }, 5s));
    standby().resume_replay();
    caught_up();
    // Caught up: the reads go back to the standby (the primary was only a second choice).
    CHECK(eventually(
        [&] {
            (void)repo->count_models();
            return sessions_on(standby(), "rt-lag") >= 1;
        },
        15s));
}

TEST_CASE("through PgBouncer (transaction mode): two clients whose schemas differ, every read "
          "and write; the feed through direct_url") {
    auto& s = server();
    PgBouncerServer bouncer(s, {{"app", password}});
    require_pgbouncer(bouncer);
    fresh_database("bounced");
    const std::string encoded = percent_encode(s.url("app", password, "bounced"));
    auto a = open_repo(bouncer.url("app", password, "bounced", "pgbouncer=true&schema=alpha"));
    auto b = open_repo(bouncer.url("app", password, "bounced", "pgbouncer=true&schema=beta"));
    REQUIRE(a->migrate());
    REQUIRE(b->migrate());
    REQUIRE(a->import_snapshot(builtin_snapshot()));
    Snapshot small = builtin_snapshot();
    small.models.resize(3);
    std::erase_if(small.statuses, [&](const ModelStatus& st) {
        return std::none_of(small.models.begin(), small.models.end(),
                            [&](const Model& m) { return m.slug == st.model_slug; });
    });
    REQUIRE(b->import_snapshot(small));
    // Interleaved from threads: server connections are shared between the two clients
    // transaction by transaction, and neither sees the other's schema.
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            auto& repo = t % 2 ? a : b;
            std::int64_t expected = t % 2 ? 32 : 3;
            for (int i = 0; i < 50; ++i) {
                if (value_or<std::int64_t>(repo->count_models(), -1) != expected)
                    ++wrong;
                auto stats = repo->system_stats();
                if (!stats || stats.value().models != expected)
                    ++wrong;
                std::vector<ModelStatus> st{{small.models[0].slug, Health::degraded, 0.5, 1.0, 0.1,
                                             t % 2 ? "alpha" : "beta",
                                             system_clock::now() + seconds(i)}};
                if (!repo->write_statuses(st))
                    ++wrong;
            }
        });
    for (auto& th : threads)
        th.join();
    CHECK(wrong.load() == 0);
    CHECK(a->find_model(small.models[0].slug).value()->status->region == "alpha");
    CHECK(b->find_model(small.models[0].slug).value()->status->region == "beta");
    CHECK(a->export_snapshot().value().models.size() == 32);
    CHECK(b->list_models().value().size() == 3);

    // No LISTEN through PgBouncer: without direct_url watch() says what to set.
    auto e = expect_error(a->watch([](const CatalogChange&) {}), Errc::not_supported);
    CHECK(e.message.find("direct_url") != std::string::npos);
    auto copy =
        modelrepo::open(bouncer.url("app", password, "bounced", "pgbouncer=true&cache=live"));
    expect_error(copy, Errc::invalid_argument);

    auto fed = open_repo(bouncer.url("app", password, "bounced",
                                     "pgbouncer=true&schema=alpha&direct_url=" + encoded));
    ChangeCollector seen;
    auto sub = fed->watch(std::ref(seen)).value();
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    s.psql("UPDATE alpha.model_status SET availability = 0.33 WHERE model_slug = 'gpt-5'",
           "bounced");
    CHECK(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));

    // The CLI, as the issue asks: watch --json through PgBouncer with direct_url.
    std::string cli = require_env("MODELREPO_CLI");
    ChildProcess watch({cli, "--source",
                        bouncer.url("app", password, "bounced",
                                    "pgbouncer=true&schema=alpha&direct_url=" + encoded),
                        "watch", "--json"},
                       {{"MODELREPO_SOURCES", ""}});
    REQUIRE(watch.read_line_until(
        [](const std::string& l) { return l.find("\"resync\"") != std::string::npos; }, 15s));
    s.psql("UPDATE alpha.model_status SET availability = 0.34 WHERE model_slug = 'gpt-4o'",
           "bounced");
    auto line = watch.read_line(5s);
    REQUIRE(line);
    CHECK(line->find("\"slug\":\"gpt-4o\"") != std::string::npos);
    watch.signal(SIGTERM);
    CHECK(watch.wait(5s) == 0);
}

TEST_CASE("doctor with several hosts: each host's role and replay lag") {
    caught_up();
    // Asked again while a host is not seen (a login past connect_timeout on a loaded
    // machine is reported, rightly, as that host's failure); the last report is shown.
    int primaries = 0, standbys = 0;
    std::string seen;
    CAPTURE(seen); // read when a check fails
    CHECK(eventually(
        [&] {
            auto report = diagnose_postgres(both("replicas", "connect_timeout=2"));
            REQUIRE(report);
            primaries = standbys = 0;
            seen.clear();
            for (const auto& c : report.value().checks) {
                seen += c.scope + " " + c.name + " " + std::string(to_string(c.status)) + ": " +
                        c.detail + "\n";
                if (c.name == "role") {
                    primaries += c.detail.starts_with("primary");
                    standbys += c.detail.starts_with("standby");
                }
            }
            return primaries == 1 && standbys == 1;
        },
        20s));
    CHECK(primaries == 1);
    CHECK(standbys == 1);
}

TEST_CASE("feed=logical over several hosts: the standby first in the URL, the feed decodes on "
          "the primary; a URL of standbys only is told why") {
    server().psql("ALTER ROLE app REPLICATION");
    fresh_catalogue("replicas_logical", "feed=logical"); // the publication, on the primary
    standby();
    caught_up();
    const std::string standby_first = "postgresql://app:" + password +
                                      "@127.0.0.1:" + std::to_string(standby().port()) +
                                      ",127.0.0.1:" + std::to_string(server().port()) +
                                      "/replicas_logical?feed=logical&read_target=primary";
    auto repo = open_repo(standby_first);
    std::mutex mutex;
    std::vector<CatalogChange> seen;
    auto count = [&](CatalogChange::Kind kind) {
        std::lock_guard lock(mutex);
        return std::count_if(seen.begin(), seen.end(),
                             [&](const CatalogChange& c) { return c.kind == kind; });
    };
    auto sub = repo->watch([&](const CatalogChange& c) {
        std::lock_guard lock(mutex);
        seen.push_back(c);
    });
    REQUIRE_MESSAGE(sub, sub.error().to_string());
    REQUIRE(eventually([&] { return count(CatalogChange::Kind::resync) >= 1; }, 20s));
    server().psql("UPDATE model_status SET availability = 0.77 WHERE model_slug = 'gpt-4o'",
                  "replicas_logical");
    CHECK(eventually([&] { return count(CatalogChange::Kind::status) == 1; }, 20s));
    // Its slot is on the primary.
    CHECK(eventually(
        [&] {
            return server().psql("SELECT count(*) FROM pg_replication_slots WHERE slot_type = "
                                 "'logical' AND database = 'replicas_logical'") == "1";
        },
        10s));
    sub.value().cancel();

    // Standbys only: the feed says so, and what to do.
    auto only = open_repo("postgresql://app:" + password + "@127.0.0.1:" +
                          std::to_string(standby().port()) + "/replicas_logical?feed=logical");
    auto only_sub = only->watch([](const CatalogChange&) {});
    REQUIRE(only_sub);
    auto* health = only->capability<HealthControl>();
    REQUIRE(health);
    bool told = eventually(
        [&] {
            auto h = health->source_health();
            return h.down() && h.errc == Errc::unreachable &&
                   h.cause.find("primary") != std::string::npos;
        },
        20s);
    CAPTURE(health->source_health().cause);
    CAPTURE(health->source_health().down());
    CHECK(told);
    CHECK(health->source_health().cause.find(password) == std::string::npos);
}

TEST_CASE("failover under load: primary killed, standby promoted; prefer-standby reads never "
          "fail, writes come back on the same repository, the feed follows") {
    fresh_catalogue("replicas_failover");
    // And a database on the logical feed, whose slot must move to the promoted standby.
    server().psql("ALTER ROLE app REPLICATION");
    fresh_catalogue("replicas_failover_wal", "feed=logical");
    caught_up();
    auto repo = open_repo(
        both("replicas_failover", "read_target=prefer-standby&connect_timeout=2&socket_timeout=3"));
    REQUIRE(repo->count_models().value() == 32);
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    auto wal_repo = open_repo(both("replicas_failover_wal", "feed=logical&connect_timeout=2"));
    ChangeCollector wal_seen;
    auto wal_sub = wal_repo->watch(std::ref(wal_seen)).value();
    REQUIRE(wal_seen.wait_for(is(CatalogChange::Kind::resync), 10s));
    const std::size_t wal_resyncs = wal_seen.count(CatalogChange::Kind::resync);

    std::atomic<bool> stop{false};
    std::atomic<int> reads{0}, failed_reads{0}, writes{0}, failed_writes{0};
    std::atomic<long long> first_write_after_promotion_ms{-1};
    std::atomic<bool> promoted{false};
    steady_clock::time_point promoted_at;
    std::string first_failure;
    std::mutex failure_mutex;
    std::vector<std::thread> threads;
    StopAndJoin joiner{stop, threads};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            std::vector<std::string> slugs{"gpt-5", "claude-sonnet-4-5"};
            while (!stop) {
                auto m = repo->find_models(slugs);
                ++reads;
                if (!m || m.value().size() != 2) {
                    ++failed_reads;
                    std::lock_guard lock(failure_mutex);
                    if (first_failure.empty())
                        first_failure = m ? "wrong answer" : m.error().to_string();
                }
                std::this_thread::sleep_for(2ms);
            }
        });
    threads.emplace_back([&] {
        int i = 0;
        while (!stop) {
            std::vector<ModelStatus> st{{"gpt-4o", Health::degraded, 0.5, 1.0, 0.1, "failover",
                                         system_clock::now() + microseconds(++i)}};
            auto r = repo->write_statuses(st);
            (r ? writes : failed_writes)++;
            if (r && promoted && first_write_after_promotion_ms < 0)
                first_write_after_promotion_ms =
                    duration_cast<milliseconds>(steady_clock::now() - promoted_at).count();
            std::this_thread::sleep_for(10ms);
        }
    });
    std::this_thread::sleep_for(500ms);
    std::size_t resyncs = seen.count(CatalogChange::Kind::resync);
    auto killed_at = steady_clock::now();
    server().kill9();
    std::this_thread::sleep_for(1s); // the primary is gone; the standby serves reads
    promoted_at = steady_clock::now();
    standby().promote();
    promoted = true;
    auto promote_took = steady_clock::now() - promoted_at;
    CHECK(eventually([&] { return first_write_after_promotion_ms >= 0; }, 15s));
    std::this_thread::sleep_for(500ms);
    stop = true;
    for (auto& t : threads)
        t.join();
    MESSAGE("failover: primary killed -> promote command "
            << duration_cast<milliseconds>(promoted_at - killed_at).count()
            << " ms; promotion took " << duration_cast<milliseconds>(promote_took).count()
            << " ms; promotion -> first acknowledged write "
            << first_write_after_promotion_ms.load() << " ms; reads " << reads.load() << " (failed "
            << failed_reads.load() << "), writes " << writes.load() << " (failed "
            << failed_writes.load() << ")");
    CAPTURE(first_failure);
    CHECK(failed_reads.load() == 0);
    CHECK(reads.load() > 100);
    CHECK(first_write_after_promotion_ms.load() >= 0);
    CHECK(first_write_after_promotion_ms.load() < 5'000); // "about a second", generously
    // The feed follows the new primary and says resync.
    CHECK(eventually([&] { return seen.count(CatalogChange::Kind::resync) > resyncs; }, 15s));
    standby().psql("UPDATE model_status SET region = 'after' WHERE model_slug = 'gpt-5'",
                   "replicas_failover");
    CHECK(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 5s));
    // The logical feed too: a new slot on the promoted standby, a resync, then changes.
    CHECK(
        eventually([&] { return wal_seen.count(CatalogChange::Kind::resync) > wal_resyncs; }, 20s));
    standby().psql("UPDATE model_status SET region = 'after' WHERE model_slug = 'gpt-5'",
                   "replicas_failover_wal");
    CHECK(wal_seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 10s));
}

TEST_CASE("no message ever held the password") {
    check_no_password_seen(2);
}
