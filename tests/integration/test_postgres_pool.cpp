// SPDX-License-Identifier: MIT
// The connection pool against a real server: exhaustion, hand-over, validation,
// lifetimes and backoff (on a manual clock), and one deadline per call.
#include <algorithm>
#include <atomic>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "manual_clock.hpp"
#include "pg_catalogue.hpp"
#include "postgres/driver/pool.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

TEST_CASE("pool exhaustion returns pool_exhausted after the acquire timeout") {
    auto repo = fresh_catalogue("catalogue_pool",
                                "connection_limit=1&acquire_timeout_ms=300&socket_timeout=5");
    // Hold the only connection: a statement that waits on a lock psql holds for 2 s.
    std::thread locker([&] {
        server().try_psql("BEGIN; LOCK TABLE models IN ACCESS EXCLUSIVE MODE; "
                          "SELECT pg_sleep(2); COMMIT;",
                          "catalogue_pool");
    });
    std::this_thread::sleep_for(300ms);
    std::thread holder([&] { (void)repo->count_models(); });
    std::this_thread::sleep_for(200ms);
    auto start = steady_clock::now();
    auto e = expect_error(repo->count_providers(), Errc::pool_exhausted);
    auto waited = steady_clock::now() - start;
    CHECK(waited >= 250ms);
    CHECK(waited < 3s);
    holder.join();
    locker.join();
    CHECK(repo.pg->pool_stats().acquire_timeouts >= 1);
    CHECK(repo->count_providers().value() == 10);
}

TEST_CASE("8 threads on one connection: each release hands it to a waiter at once") {
    auto repo = fresh_catalogue("catalogue_handoff", "connection_limit=1&acquire_timeout_ms=5000");
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i)
                if (value_or<std::int64_t>(repo->count_models(), -1) != 32)
                    ++wrong;
        });
    for (auto& th : threads)
        th.join();
    CHECK(wrong.load() == 0);
    auto pool = repo.pg->pool_stats();
    CHECK(pool.open == 1);
    CHECK(pool.acquire_timeouts == 0);
    // A missed wake-up would leave a caller asleep until its 5 s acquire deadline: no
    // acquire may have waited past 2.5 s (calls here take about a millisecond).
    auto n = pool.acquire_wait_buckets.size();
    CHECK(pool.acquire_wait_buckets[n - 1] == 0);
    std::uint64_t acquires = 0;
    for (auto b : pool.acquire_wait_buckets)
        acquires += b;
    CHECK(acquires >= 200);
}

namespace {

/// A pool over the test role's session config, on a clock the test moves.
struct ManualPool {
    test::ManualClock clock;
    std::shared_ptr<const detail::SessionConfig> session;
    std::unique_ptr<detail::ConnectionPool> pool;

    ManualPool(const std::string& url, detail::PoolOptions options) {
        auto config = PostgresConfig::from_url(url).value();
        session = std::make_shared<const detail::SessionConfig>(
            detail::parse_session_config(config.conninfo).value());
        pool = std::make_unique<detail::ConnectionPool>(session, options, clock.fn());
    }
    /// Borrows a connection and runs a round trip on it.
    Result<int> call() {
        auto deadline = steady_clock::now() + 5s;
        auto lease = pool->acquire(deadline);
        if (!lease)
            return lease.error();
        auto rows = lease.value()->script("SELECT 1", deadline);
        if (!rows)
            return rows.error();
        return 1;
    }
};

} // namespace

TEST_CASE("max lifetime: a connection past it is closed and replaced (manual clock)") {
    fresh_catalogue("catalogue_lifetime");
    detail::PoolOptions options;
    options.max_size = 1;
    options.max_lifetime = 10min;
    ManualPool p(server().url("app", password, "catalogue_lifetime"), options);
    REQUIRE(p.call());
    REQUIRE(p.call());
    CHECK(p.pool->counters().connects == 1);
    p.clock.advance(8min); // within the lifetime (less 10 % jitter at most)
    REQUIRE(p.call());
    CHECK(p.pool->counters().connects == 1);
    p.clock.advance(3min); // past it whatever the jitter
    REQUIRE(p.call());
    CHECK(p.pool->counters().expired_replaced == 1);
    CHECK(p.pool->counters().connects == 2);
}

TEST_CASE("idle validation: a session the server ended is found before use (manual clock)") {
    auto& s = server();
    fresh_catalogue("catalogue_idle");
    detail::PoolOptions options;
    options.max_size = 1;
    options.validate_after_idle = 30s;
    ManualPool p(s.url("app", password, "catalogue_idle"), options);
    REQUIRE(p.call());
    s.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE datname = 'catalogue_idle' AND pid <> pg_backend_pid()");
    std::this_thread::sleep_for(100ms); // the backend exits
    p.clock.advance(31s);
    // The dead session fails validation and is replaced: the caller never sees it.
    auto r = p.call();
    if (!r)
        FAIL(r.error().to_string());
    CHECK(p.pool->counters().broken_replaced == 1);
    CHECK(p.pool->counters().connects == 2);
    // Used again at once: no validation round trip, the same session.
    REQUIRE(p.call());
    CHECK(p.pool->counters().connects == 2);
}

TEST_CASE("backoff while the server is down: fail fast, retry when due (manual clock)") {
    detail::PoolOptions options;
    options.max_size = 2;
    options.backoff_initial = 1s;
    options.backoff_max = 4s;
    // Nothing listens on port 1.
    ManualPool p("postgresql://app:" + password + "@127.0.0.1:1/modelrepo", options);
    auto first = p.call();
    expect_error(first, Errc::unreachable);
    CHECK(p.pool->counters().connect_failures == 1);
    // Until the backoff passes on the pool's clock, callers fail at once without a connect.
    for (int i = 0; i < 5; ++i) {
        auto r = p.call();
        auto e = expect_error(r, Errc::unreachable);
        CHECK(e.message.find("next reconnect attempt in") != std::string::npos);
    }
    CHECK(p.pool->counters().connect_failures == 1);
    CHECK(p.pool->counters().server_down);
    // Each wait is the backoff less up to half of it (jitter): 0.5..1 s, then 1..2 s.
    p.clock.advance(1100ms); // past the first backoff
    expect_error(p.call(), Errc::unreachable);
    CHECK(p.pool->counters().connect_failures == 2);
    p.clock.advance(900ms); // the backoff doubled: not yet
    expect_error(p.call(), Errc::unreachable);
    CHECK(p.pool->counters().connect_failures == 2);
    p.clock.advance(1200ms); // 2.1 s: due
    expect_error(p.call(), Errc::unreachable);
    CHECK(p.pool->counters().connect_failures == 3);
}

TEST_CASE("one deadline per call: pool wait and connect count in socket_timeout") {
    auto& s = server();
    auto repo = fresh_catalogue("catalogue_deadline",
                                "connection_limit=1&socket_timeout=2&pool_timeout=10");
    REQUIRE(repo->count_models().value() == 32);
    s.stop_processes();
    struct Resume {
        test::PgServer& s;
        ~Resume() { s.continue_processes(); }
    } resume{s};
    // One caller blocks on the stopped server, holding the only connection; a second
    // waits for the pool. Both are answered at their 2 s deadline, not at pool_timeout.
    auto started = steady_clock::now();
    std::atomic<long long> blocked_ms{0};
    std::thread blocked([&] {
        auto r = repo->count_models();
        blocked_ms = duration_cast<milliseconds>(steady_clock::now() - started).count();
        CHECK_FALSE(r);
    });
    std::this_thread::sleep_for(100ms);
    auto waiting = repo->count_providers();
    auto waited = steady_clock::now() - started;
    blocked.join();
    REQUIRE_FALSE(waiting);
    CHECK((waiting.error().is(Errc::pool_exhausted) || waiting.error().is(Errc::timeout)));
    CAPTURE(duration_cast<milliseconds>(waited).count());
    CHECK(waited < 2s + 1500ms);
    CHECK(blocked_ms.load() < 2000 + 1500);

    // A fresh repository must connect: the stopped server accepts TCP but never answers
    // the login. The connect is cut at the call's deadline (2 s), not connect_timeout.
    auto fresh = open_repo(s.url("app", password, "catalogue_deadline", "127.0.0.1",
                                 "socket_timeout=2&connect_timeout=30"));
    auto connect_started = steady_clock::now();
    auto e = expect_error(fresh->count_models(), Errc::timeout);
    auto took = steady_clock::now() - connect_started;
    CAPTURE(duration_cast<milliseconds>(took).count());
    CHECK(took >= 1900ms);
    CHECK(took < 2s + 1500ms);
}

TEST_CASE("no message ever held the password") {
    check_no_password_seen(8);
}
