// SPDX-License-Identifier: MIT
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/circuit_breaker.hpp>

#include "scripted_repository.hpp"

using namespace modelrepo;
using namespace std::chrono;
using test::ManualClock;

namespace {

const Error timeout = make_error(Errc::timeout, "db timed out");
const Error bad_arg = make_error(Errc::invalid_argument, "bad slug");

BreakerConfig small_config() {
    BreakerConfig c;
    c.window_size = 10;
    c.minimum_calls = 4;
    c.failure_rate_threshold = 0.5;
    c.consecutive_failures = 0; // rate only, unless a test turns it on
    c.slow_call_duration = 100ms;
    c.slow_call_rate_threshold = 1.0;
    c.open_duration = 1s;
    c.open_backoff_multiplier = 2.0;
    c.max_open_duration = 5s;
    c.jitter = 0.0;
    c.half_open_trials = 2;
    return c;
}

void calls(CircuitBreaker& b, int n, const Error* e, nanoseconds elapsed = 1ms) {
    for (int i = 0; i < n; ++i) {
        REQUIRE(b.allow("db"));
        b.record(e, elapsed);
    }
}

} // namespace

TEST_CASE("which errors count against a source") {
    for (Errc e : {Errc::unreachable, Errc::timeout, Errc::auth_failed, Errc::pool_exhausted,
                   Errc::query_failed, Errc::rate_limited, Errc::tls_failed})
        CHECK(counts_as_failure(make_error(e, "")));
    for (Errc e : {Errc::invalid_argument, Errc::read_only, Errc::not_found, Errc::not_supported})
        CHECK_FALSE(counts_as_failure(make_error(e, "")));
    Error http = make_error(Errc::http_status, "");
    http.http_status = 503;
    CHECK(counts_as_failure(http));
    http.http_status = 404;
    CHECK_FALSE(counts_as_failure(http));
}

TEST_CASE("opens on the failure rate only once the window has the minimum of calls") {
    ManualClock clock;
    CircuitBreaker b(small_config(), clock.fn(), 1);
    calls(b, 3, &timeout);
    CHECK(b.state() == BreakerState::closed); // 3 < minimum_calls
    calls(b, 1, &timeout);
    CHECK(b.state() == BreakerState::open);
}

TEST_CASE("a failure rate below the threshold keeps it closed; the window slides") {
    ManualClock clock;
    CircuitBreaker b(small_config(), clock.fn(), 1);
    for (int i = 0; i < 30; ++i) { // 1 failure in 3: 33 % < 50 %
        calls(b, 2, nullptr);
        calls(b, 1, &timeout);
    }
    CHECK(b.state() == BreakerState::closed);
    calls(b, 10, nullptr); // the window forgets old failures
    calls(b, 4, &timeout); // 4 of the last 10
    CHECK(b.state() == BreakerState::closed);
    calls(b, 1, &timeout); // 5 of the last 10 = 50 %
    CHECK(b.state() == BreakerState::open);
}

TEST_CASE("errors that are not the source's fault do not trip it") {
    ManualClock clock;
    CircuitBreaker b(small_config(), clock.fn(), 1);
    calls(b, 50, &bad_arg);
    CHECK(b.state() == BreakerState::closed);
}

TEST_CASE("N consecutive failures trip it before the window would") {
    ManualClock clock;
    auto c = small_config();
    c.consecutive_failures = 3;
    c.minimum_calls = 100;
    CircuitBreaker b(c, clock.fn(), 1);
    calls(b, 2, &timeout);
    calls(b, 1, nullptr); // resets the run
    calls(b, 2, &timeout);
    CHECK(b.state() == BreakerState::closed);
    calls(b, 1, &timeout);
    CHECK(b.state() == BreakerState::open);
}

TEST_CASE("slow successful calls count once past the slow-call rate") {
    ManualClock clock;
    auto c = small_config();
    c.slow_call_rate_threshold = 0.5;
    CircuitBreaker b(c, clock.fn(), 1);
    calls(b, 2, nullptr, 10ms);
    calls(b, 1, nullptr, 150ms);
    calls(b, 1, nullptr, 10ms);
    CHECK(b.state() == BreakerState::closed); // 1 of 4 slow
    calls(b, 1, nullptr, 150ms);
    CHECK(b.state() == BreakerState::closed); // 2 of 5 = 40 %
    calls(b, 1, nullptr, 150ms);
    CHECK(b.state() == BreakerState::open); // 3 of 6 = 50 %
}

TEST_CASE("open rejects with circuit_open and the time to the next trial") {
    ManualClock clock;
    CircuitBreaker b(small_config(), clock.fn(), 1);
    calls(b, 4, &timeout);
    REQUIRE(b.state() == BreakerState::open);
    auto r = b.allow("db");
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::circuit_open));
    CHECK(r.error().retry_after.has_value());
    CHECK(r.error().message.find("next trial in 1000 ms") != std::string::npos);
    CHECK(r.error().message.find("db timed out") != std::string::npos);
    clock.advance(999ms);
    CHECK_FALSE(b.allow("db"));
}

TEST_CASE("half-open lets a limited number of trials through; successes close it") {
    ManualClock clock;
    CircuitBreaker b(small_config(), clock.fn(), 1);
    calls(b, 4, &timeout);
    clock.advance(1s);
    REQUIRE(b.allow("db")); // trial 1
    CHECK(b.state() == BreakerState::half_open);
    REQUIRE(b.allow("db")); // trial 2
    auto third = b.allow("db");
    REQUIRE_FALSE(third);
    CHECK(third.error().is(Errc::circuit_open));
    b.record(nullptr, 1ms);
    CHECK(b.state() == BreakerState::half_open);
    b.record(nullptr, 1ms);
    CHECK(b.state() == BreakerState::closed);
    CHECK(b.consecutive_opens() == 0);
}

TEST_CASE("open time grows with each re-open, capped, and resets after a clean close") {
    ManualClock clock;
    CircuitBreaker b(small_config(), clock.fn(), 1);
    auto reopen_after_trial_failure = [&] {
        REQUIRE(b.allow("db"));
        b.record(&timeout, 1ms);
        REQUIRE(b.state() == BreakerState::open);
    };
    calls(b, 4, &timeout); // open for 1 s
    clock.advance(1s);
    reopen_after_trial_failure(); // now 2 s
    clock.advance(1999ms);
    CHECK_FALSE(b.allow("db"));
    clock.advance(1ms);
    reopen_after_trial_failure(); // 4 s
    clock.advance(4s);
    reopen_after_trial_failure(); // 8 s, capped at 5 s
    clock.advance(4999ms);
    CHECK_FALSE(b.allow("db"));
    clock.advance(1ms);
    CHECK(b.consecutive_opens() == 4);
    REQUIRE(b.allow("db"));
    REQUIRE(b.allow("db"));
    b.record(nullptr, 1ms);
    b.record(nullptr, 1ms);
    CHECK(b.state() == BreakerState::closed);
    CHECK(b.consecutive_opens() == 0);
    calls(b, 4, &timeout); // back to 1 s
    clock.advance(1s);
    CHECK(b.allow("db"));
}

TEST_CASE("jitter shortens the open time by at most its share") {
    ManualClock clock;
    auto c = small_config();
    c.jitter = 0.5;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
        CircuitBreaker b(c, clock.fn(), seed);
        calls(b, 4, &timeout);
        clock.advance(499ms);
        CHECK_FALSE(b.allow("db")); // at least 500 ms
        clock.advance(501ms);
        CHECK(b.allow("db")); // at most 1000 ms
    }
}

TEST_CASE("transitions are reported with their cause; a probe success closes it") {
    ManualClock clock;
    CircuitBreaker b(small_config(), clock.fn(), 1);
    std::vector<BreakerTransition> seen;
    b.on_transition([&](const BreakerTransition& t) { seen.push_back(t); });
    calls(b, 4, &timeout);
    clock.advance(1s);
    REQUIRE(b.allow("db"));
    b.record(&timeout, 1ms);
    b.probe_succeeded();
    REQUIRE(seen.size() == 4);
    CHECK(seen[0].to == BreakerState::open);
    CHECK(seen[0].cause.find("4 of the last 4 calls failed") != std::string::npos);
    CHECK(seen[1].to == BreakerState::half_open);
    CHECK(seen[2].to == BreakerState::open);
    CHECK(seen[2].cause.find("trial call failed") != std::string::npos);
    CHECK(seen[3].to == BreakerState::closed);
    CHECK(seen[3].cause == "health probe succeeded");
}

TEST_CASE("run() wraps a call; concurrent callers keep the counts consistent") {
    CircuitBreaker b(small_config());
    auto r = b.run("db", [] { return Result<int>(7); });
    CHECK(r.value() == 7);
    std::vector<std::thread> threads;
    std::atomic<int> rejected{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                auto x = b.run("db", [&]() -> Result<int> {
                    if (i % 2)
                        return timeout;
                    return 1;
                });
                if (!x && x.error().is(Errc::circuit_open))
                    ++rejected;
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(rejected.load() > 0); // 50 % failures tripped it
}

TEST_CASE("while open, permit() rejects without the mutex: one clock read, no lock") {
    // The slow path reads the clock a second time under the mutex; the lock-free path
    // reads it once. Count the reads.
    ManualClock clock;
    std::atomic<int> reads{0};
    CircuitBreaker b(small_config(), [&] {
        ++reads;
        return clock.now();
    });
    calls(b, 4, &timeout);
    REQUIRE(b.state() == BreakerState::open);
    reads = 0;
    for (int i = 0; i < 100; ++i)
        CHECK_FALSE(b.permit());
    CHECK(reads.load() == 100);
    // Once the open time has passed, the mutex path runs and goes half-open.
    clock.advance(2s);
    CHECK(b.permit());
    CHECK(b.state() == BreakerState::half_open);
}
