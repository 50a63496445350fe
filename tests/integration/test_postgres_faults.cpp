// SPDX-License-Identifier: MIT
// A server that stops (SIGSTOP), dies (kill -9) and comes back, alone and behind a
// chain with a loopback GitHub backup; a role's password changed and set back under a
// process with a direct_url.
#include <algorithm>
#include <atomic>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "watching.hpp"

#if MODELREPO_HAS_GITHUB
#include "http_server.hpp"
#endif
using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

TEST_CASE("server stopped with SIGSTOP: calls return timeout within the deadline") {
    auto repo = fresh_catalogue("catalogue_sigstop", "query_timeout_ms=1000&connect_timeout=2");
    REQUIRE(repo->count_models().value() == 32);
    auto& s = server();
    s.stop_processes();
    auto start = steady_clock::now();
    auto e = expect_error(repo->count_models(), Errc::timeout);
    auto took = steady_clock::now() - start;
    s.continue_processes();
    CAPTURE(duration_cast<milliseconds>(took).count());
    CHECK(took < 1000ms + 1500ms); // deadline plus generous slack
    CHECK(took >= 900ms);
    CHECK(repo.pg->pool_stats().broken_replaced >= 1);
    // The server answers again; the same repository serves.
    auto again = repo->count_models();
    CHECK(value_or<std::int64_t>(again, -1) == 32);
}

TEST_CASE("server killed (kill -9) and restarted: the same repository recovers by itself") {
    auto repo = fresh_catalogue("catalogue_kill", "connect_timeout=2");
    REQUIRE(repo->count_models().value() == 32);
    auto& s = server();
    s.kill9();
    auto down = repo->count_models();
    REQUIRE_FALSE(down);
    CHECK((down.error().is(Errc::unreachable) || down.error().is(Errc::timeout)));
    // While down, calls fail fast instead of each paying a connect timeout.
    auto start = steady_clock::now();
    for (int i = 0; i < 20; ++i)
        CHECK_FALSE(repo->count_models());
    CHECK(steady_clock::now() - start < 3s);
    CHECK(repo.pg->pool_stats().server_down);

    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    auto deadline = steady_clock::now() + 20s;
    Result<std::int64_t> back = make_error(Errc::unreachable, "not yet");
    while (steady_clock::now() < deadline) {
        back = repo->count_models();
        if (back)
            break;
        std::this_thread::sleep_for(100ms);
    }
    if (!back)
        FAIL(back.error().to_string());
    CHECK(back.value() == 32);
    CHECK_FALSE(repo.pg->pool_stats().server_down);
}

TEST_CASE("chaos: PostgreSQL -> GitHub (loopback) -> builtin under 8 readers while "
          "PostgreSQL is killed and restarted twice") {
    fresh_catalogue("catalogue_chaos", "connect_timeout=2&query_timeout_ms=2000");
    auto& s = server();
    auto primary = open_repo(s.url("app", password, "catalogue_chaos", "127.0.0.1",
                                   "connect_timeout=2&query_timeout_ms=2000"));
    std::vector<std::shared_ptr<ModelRepository>> sources{primary};
#if MODELREPO_HAS_GITHUB
    test::HttpServer github;
    std::string backup_body = write_snapshot(builtin_snapshot());
    github.handle([&](const httplib::Request& req, httplib::Response& res) {
        if (req.get_header_value("If-None-Match") == "\"chaos\"") {
            res.status = 304;
            return;
        }
        res.set_header("ETag", "\"chaos\"");
        res.set_content(backup_body, "application/json");
    });
    sources.push_back(
        GithubRepository::open("github://acme/catalogue/models.json@main?refresh_interval=1s&"
                               "api_base=" +
                               github.base())
            .value());
#endif
    sources.push_back(MemoryRepository::builtin());
    FallbackConfig config;
    config.breaker.consecutive_failures = 3;
    config.breaker.open_duration = 500ms;
    config.breaker.max_open_duration = 2s;
    config.probe_interval = 200ms;
    auto chain = FallbackRepository::create(sources, config).value();
    const std::string primary_name(primary->name());

    std::atomic<bool> stop{false};
    std::atomic<int> failed{0}, reads{0};
    std::vector<std::thread> readers;
    StopAndJoin joiner{stop, readers};
    for (int t = 0; t < 8; ++t)
        readers.emplace_back([&] {
            std::vector<std::string> slugs{"gpt-5", "claude-sonnet-4-5"};
            while (!stop) {
                auto models = chain->find_models(slugs);
                auto stats = chain->system_stats();
                if (!models || models.value().size() != 2 || !stats || stats.value().models != 32)
                    ++failed;
                ++reads;
                std::this_thread::sleep_for(2ms);
            }
        });
    auto wait_until = [&](auto predicate, milliseconds limit) {
        auto deadline = steady_clock::now() + limit;
        while (steady_clock::now() < deadline) {
            if (predicate())
                return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    };
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        CHECK(wait_until([&] { return chain->breaker(0).state() == BreakerState::closed; }, 5s));
        s.kill9();
        // The breaker opens within its window: 3 consecutive failures.
        CHECK(wait_until([&] { return chain->breaker(0).state() == BreakerState::open; }, 3s));
        std::this_thread::sleep_for(500ms);
        auto answered_before = chain->metrics().sources[0].answers;
        s.start();
        REQUIRE_MESSAGE(s.available(), s.why());
        auto restarted = steady_clock::now();
        // PostgreSQL serves again within the probe interval (and the pool's reconnect
        // backoff) plus slack.
        bool back = wait_until(
            [&] {
                return chain->breaker(0).state() == BreakerState::closed &&
                       chain->metrics().sources[0].answers > answered_before;
            },
            8s);
        CHECK(back);
        MESSAGE("round " << round << ": primary back after "
                         << duration_cast<milliseconds>(steady_clock::now() - restarted).count()
                         << " ms");
    }
    std::this_thread::sleep_for(200ms);
    stop = true;
    for (auto& t : readers)
        t.join();
    CHECK(failed.load() == 0);
    CHECK(reads.load() > 100);
    auto m = chain->metrics();
    CHECK(m.sources[1].answers > 0); // the first backup (GitHub) served during the outages
    CHECK(m.sources[0].answers > 0);
    CHECK(m.all_failed == 0);
    CHECK(m.sources[0].source == primary_name);
}

TEST_CASE("a role's idle_session_timeout cuts neither pooled nor feed sessions") {
    auto& s = server();
    s.create_role("idler", password, "idle_db");
    const std::string url = s.url("idler", password, "idle_db", "127.0.0.1", "connect_timeout=2");
    {
        auto loader = open_repo(url);
        REQUIRE(loader->migrate());
        REQUIRE(loader->import_snapshot(builtin_snapshot()));
    }
    s.psql("ALTER ROLE idler SET idle_session_timeout = '1s'");
    auto repo = open_repo(url);
    std::atomic<int> resyncs{0};
    auto subscription = repo->watch([&](const CatalogChange& c) {
        if (c.kind == CatalogChange::Kind::resync)
            ++resyncs;
    });
    REQUIRE(subscription);
    REQUIRE(repo->count_models());
    REQUIRE(eventually([&] { return resyncs.load() >= 1; }, 10s)); // the feed listens
    std::this_thread::sleep_for(3500ms); // idle past the role's timeout, three times over
    for (int i = 0; i < 3; ++i)
        CHECK(repo->count_models());
    CHECK(repo->pool_stats().connects == 1);
    CHECK(repo->pool_stats().broken_replaced == 0);
    CHECK(resyncs.load() == 1); // the feed's session was never lost
}

TEST_CASE("direct_url: the role's password changed and set back under a watch(): the source is "
          "down, then up once the feed reaches the server again, with no call in between") {
    auto& s = server();
    s.create_role("directed", password, "direct_db");
    const std::string direct = s.url("directed", password, "direct_db");
    const std::string url = s.url("directed", password, "direct_db", "127.0.0.1",
                                  "connect_timeout=2&direct_url=" + percent_encode(direct));
    {
        auto loader = open_repo(url);
        REQUIRE(loader->migrate()); // over the direct session
        REQUIRE(loader->import_snapshot(builtin_snapshot()));
    }
    // A process that has not used its direct session yet (serve, started after migrate).
    auto repo = open_repo(url);
    auto* health = repo->capability<HealthControl>();
    REQUIRE(health);

    // The password changed, and the role's sessions cut (as a restart would): every new
    // session fails to log in.
    s.psql("ALTER ROLE directed PASSWORD 'Another-99-Secret'");
    // pg_stat_activity may list a session a moment late: cut until none is listed.
    REQUIRE(eventually(
        [&] {
            s.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = "
                   "'directed'");
            return s.psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'directed'") ==
                   "0";
        },
        10s));
    // The watch() asks the schema over the direct session, which now fails to log in;
    // the feed, on the same URL, fails too and retries.
    std::atomic<int> resyncs{0};
    auto subscription = repo->watch([&](const CatalogChange& c) {
        if (c.kind == CatalogChange::Kind::resync)
            ++resyncs;
    });
    REQUIRE(subscription);
    REQUIRE(eventually(
        [&] {
            auto h = health->source_health();
            return h.down() && h.errc == Errc::auth_failed;
        },
        20s));
    s.psql("SET password_encryption = 'scram-sha-256'; ALTER ROLE directed PASSWORD '" + password +
           "'");
    // Nothing else calls: the feed's reconnect alone shows the source up again.
    REQUIRE(eventually([&] { return resyncs.load() >= 1; }, 20s));
    CHECK(eventually([&] { return !health->source_health().down(); }, 20s));
    CAPTURE(health->source_health().cause);
    CHECK(health->source_health().cause.find(password) == std::string::npos);
}
