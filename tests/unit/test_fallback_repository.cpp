// SPDX-License-Identifier: MIT
#include <condition_variable>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/fallback_repository.hpp>
#include <modelrepo/open.hpp>

#include "scripted_repository.hpp"
#include "stub_repository.hpp"

using namespace modelrepo;
using namespace std::chrono;
using test::ManualClock;
using test::ScriptedRepository;

namespace {

struct Chain {
    std::shared_ptr<ScriptedRepository> primary = std::make_shared<ScriptedRepository>("primary");
    std::shared_ptr<ScriptedRepository> backup = std::make_shared<ScriptedRepository>("backup");
    std::shared_ptr<ScriptedRepository> last = std::make_shared<ScriptedRepository>("last");
    ManualClock clock;
    std::shared_ptr<FallbackRepository> repo;

    explicit Chain(FallbackConfig config = quick()) {
        repo = FallbackRepository::create({primary, backup, last}, config, clock.fn()).value();
    }

    static FallbackConfig quick() {
        FallbackConfig c;
        c.breaker.consecutive_failures = 3;
        c.breaker.jitter = 0;
        c.breaker.open_duration = 10s;
        c.probe_interval = 20ms;
        return c;
    }
};

/// Collects events from the event thread.
struct Recorder {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<FallbackEvent> events;

    void operator()(const FallbackEvent& e) {
        std::lock_guard lock(mutex);
        events.push_back(e);
        cv.notify_all();
    }
    bool wait_for(FallbackEvent::Kind kind, const std::string& source) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, 5s, [&] {
            for (const auto& e : events)
                if (e.kind == kind && e.source == source)
                    return true;
            return false;
        });
    }
};

} // namespace

TEST_CASE("answers from the first source; says who answered") {
    Chain c;
    CHECK(c.repo->name() == "fallback(primary -> backup -> last)");
    Provenance from;
    auto stats = c.repo->system_stats(from);
    REQUIRE(stats);
    CHECK(stats.value().source == "primary");
    CHECK(from.source == "primary");
    CHECK(from.index == 0);
    CHECK_FALSE(from.backup());
    CHECK(c.backup->calls() == 0);
}

TEST_CASE("falls through in order and reports the backup as the source") {
    Chain c;
    c.primary->fail_with(Errc::unreachable);
    Provenance from;
    auto stats = c.repo->system_stats(from);
    REQUIRE(stats);
    CHECK(stats.value().source == "backup");
    CHECK(from.source == "backup");
    CHECK(from.backup());
    c.backup->fail_with(Errc::timeout);
    std::vector<std::string> slugs{"gpt-4o"};
    auto models = c.repo->find_models(slugs, from);
    REQUIRE(models);
    CHECK(from.source == "last");
    CHECK(from.index == 2);
    CHECK(c.last->calls() == 1);
}

TEST_CASE("an answer-like error is returned, not retried elsewhere") {
    Chain c;
    c.primary->fail_with(Errc::invalid_argument);
    auto r = c.repo->count_models();
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::invalid_argument));
    CHECK(c.backup->calls() == 0);
}

TEST_CASE("when every source fails: all_sources_failed listing each cause") {
    Chain c;
    c.primary->fail_with(Errc::auth_failed);
    c.backup->fail_with(Errc::http_status, 503);
    c.last->fail_with(Errc::bad_data);
    auto r = c.repo->count_providers();
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::all_sources_failed));
    for (const char* part : {"primary: auth_failed", "backup: http_status", "last: bad_data"})
        CHECK(r.error().message.find(part) != std::string::npos);
    CHECK(c.repo->metrics().all_failed == 1);
}

TEST_CASE("the breaker opens: the primary is skipped without being called") {
    Chain c;
    c.primary->fail_with(Errc::timeout);
    for (int i = 0; i < 3; ++i)
        REQUIRE(c.repo->count_models());
    CHECK(c.repo->breaker(0).state() == BreakerState::open);
    int before = c.primary->calls();
    for (int i = 0; i < 10; ++i)
        REQUIRE(c.repo->count_models());
    CHECK(c.primary->calls() == before);
    auto m = c.repo->metrics();
    CHECK(m.sources[0].rejections == 10);
    CHECK(m.sources[0].failures.at("timeout") == 3);
    CHECK(m.sources[1].answers == 13);
    CHECK(m.sources[0].breaker == BreakerState::open);
}

TEST_CASE("writes go to the primary only, never silently to a backup") {
    Chain c;
    Timestamp later = sys_days{2026y / December / 2}; // newer than the bundled statuses
    std::vector<ModelStatus> batch{{"gpt-4o", Health::outage, 0, 1.0, 1, "", later}};
    CHECK(c.repo->upsert_statuses(batch).value() == 1);
    CHECK(c.backup->calls() == 0);

    c.primary->fail_with(Errc::unreachable);
    auto r = c.repo->upsert_statuses(batch);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::unreachable));
    CHECK(c.backup->calls() == 0);
    CHECK(c.last->calls() == 0);
    (void)c.repo->upsert_statuses(batch);
    (void)c.repo->upsert_statuses(batch);
    auto rejected = c.repo->upsert_statuses(batch); // breaker open now
    REQUIRE_FALSE(rejected);
    CHECK(rejected.error().is(Errc::circuit_open));
    CHECK(rejected.error().message.find("primary only") != std::string::npos);
    CHECK(c.backup->calls() == 0);
}

TEST_CASE("events: breaker opened, served by backup, probe recovers the primary") {
    Chain c;
    Recorder rec;
    c.repo->subscribe([&](const FallbackEvent& e) { rec(e); });
    c.primary->fail_with(Errc::unreachable);
    for (int i = 0; i < 3; ++i)
        REQUIRE(c.repo->count_models());
    CHECK(rec.wait_for(FallbackEvent::Kind::served_by_backup, "backup"));
    CHECK(rec.wait_for(FallbackEvent::Kind::breaker_opened, "primary"));

    // No traffic: the probe alone brings the primary back once it is healthy.
    c.primary->fail_with(std::nullopt);
    CHECK(rec.wait_for(FallbackEvent::Kind::breaker_closed, "primary"));
    CHECK(c.primary->health_checks() >= 1);
    Provenance from;
    REQUIRE(c.repo->count_models(from));
    CHECK(from.source == "primary");
    CHECK(rec.wait_for(FallbackEvent::Kind::primary_recovered, "primary"));
    {
        std::lock_guard lock(rec.mutex);
        for (const auto& e : rec.events)
            if (e.kind == FallbackEvent::Kind::breaker_opened)
                CHECK(e.cause.find("3 consecutive failures") != std::string::npos);
    }
}

TEST_CASE("a slow or throwing subscriber never blocks or breaks calls") {
    auto config = Chain::quick();
    config.event_queue_limit = 4;
    Chain c(config);
    std::atomic<int> delivered{0};
    c.repo->subscribe([&](const FallbackEvent&) {
        ++delivered;
        std::this_thread::sleep_for(200ms);
        throw std::runtime_error("subscriber bug");
    });
    auto start = steady_clock::now();
    for (int i = 0; i < 50; ++i) {
        c.primary->fail_with(i % 2 ? std::optional<Errc>() : std::optional<Errc>(Errc::timeout));
        REQUIRE(c.repo->count_models());
    }
    CHECK(steady_clock::now() - start < 150ms); // never waited for the subscriber
    auto m = c.repo->metrics();
    CHECK(m.events_dropped > 0);
}

TEST_CASE("Prometheus text has HELP and TYPE lines and per-source samples") {
    FallbackConfig config = Chain::quick();
    config.latency_sample_every = 1; // every call in the histogram
    Chain c(config);
    c.primary->fail_with(Errc::timeout);
    for (int i = 0; i < 5; ++i)
        REQUIRE(c.repo->system_stats());
    std::string text = c.repo->prometheus();
    for (const char* line :
         {"# HELP modelrepo_source_calls_total", "# TYPE modelrepo_source_calls_total counter",
          "modelrepo_source_answers_total{source=\"backup\"} 5",
          "modelrepo_source_failures_total{source=\"primary\",errc=\"timeout\"} 3",
          "modelrepo_source_rejections_total{source=\"primary\"} 2",
          "modelrepo_breaker_state{source=\"primary\"} 1",
          "# TYPE modelrepo_source_latency_seconds histogram",
          "modelrepo_source_latency_seconds_bucket{source=\"backup\",le=\"+Inf\"} 5"}) {
        CAPTURE(line);
        CHECK(text.find(line) != std::string::npos);
    }
}

namespace {

/// A source that reports metrics of its own, as a PostgreSQL pool or a copy does.
class SelfReporting final : public test::StubRepository {
public:
    SelfReporting()
        : StubRepository("reporting") {}
    std::vector<MetricFamily> backend_metrics() const override {
        MetricFamily f{"modelrepo_pool_connections", MetricFamily::Type::gauge, "test pool", {}};
        f.add({{"state", "idle"}}, 3);
        return {f};
    }
};

} // namespace

TEST_CASE("each source's own metrics reach metrics() and prometheus() through the interface") {
    auto reporting = std::make_shared<SelfReporting>();
    auto chain = FallbackRepository::create({reporting, MemoryRepository::builtin()}).value();
    auto m = chain->metrics();
    REQUIRE(m.sources[0].backend.size() == 1);
    CHECK(m.sources[0].backend[0].name == "modelrepo_pool_connections");
    CHECK(m.sources[1].backend.empty());
    std::string text = chain->prometheus();
    CHECK(text.find("# TYPE modelrepo_pool_connections gauge") != std::string::npos);
    CHECK(text.find("modelrepo_pool_connections{source=\"reporting\",state=\"idle\"} 3") !=
          std::string::npos);
}

TEST_CASE("the latency histogram times one call in latency_sample_every per thread") {
    FallbackConfig config = Chain::quick();
    config.latency_sample_every = 4;
    Chain c(config);
    for (int i = 0; i < 8; ++i)
        REQUIRE(c.repo->count_models());
    auto m = c.repo->metrics();
    CHECK(m.sources[0].calls == 8);
    std::uint64_t timed = 0;
    for (auto n : m.sources[0].latency_buckets)
        timed += n;
    CHECK(timed == 2); // 8 consecutive calls hold two multiples of 4, whatever the phase
    CHECK(m.sources[0].latency_sum_s > 0);
}

TEST_CASE("slow calls trip the breaker also when they are not in the latency sample") {
    FallbackConfig config = Chain::quick();
    config.latency_sample_every = 1'000'000; // the histogram times (almost) nothing
    config.breaker.window_size = 2;
    config.breaker.minimum_calls = 2;
    config.breaker.slow_call_rate_threshold = 1.0;
    config.breaker.slow_call_duration = 250ms; // coarse-clock timing on Linux (≥ 50 ticks)
    Chain c(config);
    c.primary->delay(300ms);
    for (int i = 0; i < 2; ++i)
        REQUIRE(c.repo->count_models());
    CHECK(c.repo->breaker(0).state() == BreakerState::open);
    c.primary->delay(0ms);
    Provenance from;
    REQUIRE(c.repo->count_models(from));
    CHECK(from.source == "backup");
}

TEST_CASE("open_chain builds the chain from URIs") {
    std::vector<std::string> uris{"postgresql://nobody:Secr3t-Pw@127.0.0.1:1/x?connect_timeout=2",
                                  "builtin:"};
    auto repo = open_chain(uris);
    REQUIRE(repo);
    CHECK(repo.value()->name().find("builtin") != std::string_view::npos);
    CHECK(repo.value()->name().find("Secr3t-Pw") == std::string_view::npos);
    auto stats = repo.value()->system_stats();
    REQUIRE(stats);
    CHECK(stats.value().source == "builtin");
    std::vector<std::string> bad{"builtin:", "ftp://x"};
    CHECK(open_chain(bad).error().is(Errc::invalid_argument));
    CHECK_FALSE(FallbackRepository::create({}));
}

TEST_CASE("8 threads read while the primary flaps: every read answers") {
    Chain c;
    std::atomic<bool> stop{false};
    std::atomic<int> failed{0}, reads{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 8; ++t)
        readers.emplace_back([&] {
            std::vector<std::string> slugs{"gpt-4o", "claude-sonnet-4-5"};
            while (!stop) {
                if (!c.repo->find_models(slugs) || !c.repo->system_stats())
                    ++failed;
                ++reads;
            }
        });
    for (int i = 0; i < 20; ++i) {
        c.primary->fail_with(i % 2 ? std::optional<Errc>(Errc::unreachable) : std::nullopt);
        c.clock.advance(11s); // let the breaker try again
        std::this_thread::sleep_for(5ms);
    }
    stop = true;
    for (auto& t : readers)
        t.join();
    CHECK(failed.load() == 0);
    CHECK(reads.load() > 0);
}

TEST_CASE("destroying the chain drops the events a slow subscriber has not taken, counted") {
    auto config = Chain::quick();
    config.event_queue_limit = 1'000;
    auto c = std::make_unique<Chain>(config);
    std::atomic<int> delivered{0};
    c->repo->subscribe([&](const FallbackEvent&) {
        ++delivered;
        std::this_thread::sleep_for(300ms);
    });
    // Flapping the primary queues many events (opened, served by backup, ...).
    for (int i = 0; i < 40; ++i) {
        c->primary->fail_with(i % 2 ? std::optional<Errc>() : std::optional<Errc>(Errc::timeout));
        (void)c->repo->count_models();
        c->repo->breaker(0).probe_succeeded();
    }
    std::this_thread::sleep_for(50ms); // the subscriber is inside its first event
    auto start = steady_clock::now();
    c.reset();
    // Waits for the one event being delivered (300 ms), not for the whole queue.
    CHECK(steady_clock::now() - start < 1500ms);
    CHECK(delivered.load() <= 2);
}
