// SPDX-License-Identifier: MIT
// A source's health apart from who answers: the tracker its layers report to (per layer,
// the most telling cause, events on each change), and a chain that hears every source's
// health events among its own.
#include <mutex>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "core/health_tracker.hpp"
#include "scripted_repository.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace modelrepo::detail;
using namespace std::chrono;

namespace {

/// Collects events, for waiting on them.
struct EventLog {
    std::mutex mutex;
    std::vector<FallbackEvent> events;
    void operator()(const FallbackEvent& e) {
        std::lock_guard lock(mutex);
        events.push_back(e);
    }
    std::vector<FallbackEvent> copy() {
        std::lock_guard lock(mutex);
        return events;
    }
    bool wait_count(std::size_t n) {
        return test::eventually([&] { return copy().size() >= n; }, 5s);
    }
};

Error error_of(Errc code) {
    return make_error(code, std::string(to_string(code)) + " said by a layer");
}

/// A scripted source that keeps its own health, as a backend with a pool does.
class SourceWithHealth final : public ModelRepository {
public:
    explicit SourceWithHealth(std::string name)
        : data_(std::make_shared<test::ScriptedRepository>(name))
        , health(std::move(name)) {}
    std::string_view name() const noexcept override { return data_->name(); }
    Result<std::int64_t> count_models() override { return data_->count_models(); }
    Result<std::int64_t> count_providers() override { return data_->count_providers(); }
    Result<std::vector<ModelStatus>> list_statuses() override { return data_->list_statuses(); }
    Result<std::vector<Model>> find_models(std::span<const std::string> s) override {
        return data_->find_models(s);
    }
    Result<std::optional<Model>> find_model(std::string_view s) override {
        return data_->find_model(s);
    }
    Result<SystemStats> system_stats() override { return data_->system_stats(); }
    Result<void> check_health() override { return data_->check_health(); }
    void* find_capability(const std::type_info& type) noexcept override {
        if (void* p = offer<HealthControl>(type, &health))
            return p;
        return offer<HealthObserver>(type, &health);
    }

    std::shared_ptr<test::ScriptedRepository> data_;
    HealthTracker health;
};

} // namespace

TEST_CASE("the tracker: down on a layer's failure with its Errc, up when every failing layer "
          "reached the origin again; the most telling cause names the outage") {
    HealthTracker tracker("postgresql://app@db/catalogue");
    EventLog log;
    auto sub = tracker.on_health_event(std::ref(log));
    CHECK(tracker.source_health().state == SourceHealth::State::unknown);
    tracker.reached("pool");
    CHECK(tracker.source_health().state == SourceHealth::State::up);
    // A query's own failure says nothing of the origin.
    tracker.failed("pool", error_of(Errc::invalid_argument));
    tracker.failed("pool", error_of(Errc::pool_exhausted));
    CHECK_FALSE(tracker.down());

    // The server restarts under a changed password: the pool's connection is cut
    // (unreachable) a moment before the feed's login is refused (auth_failed).
    tracker.failed("pool", error_of(Errc::unreachable));
    tracker.failed("feed", error_of(Errc::auth_failed));
    REQUIRE(log.wait_count(2));
    auto h = tracker.source_health();
    CHECK(h.down());
    CHECK(h.errc == Errc::auth_failed);
    CHECK(h.seen_by == "feed");
    // An echo of a less telling cause does not take its place.
    tracker.failed("pool", error_of(Errc::timeout));
    CHECK(tracker.source_health().errc == Errc::auth_failed);
    // One layer back is not the origin back: the feed still cannot log in.
    tracker.reached("pool");
    CHECK(tracker.down());
    tracker.reached("feed");
    CHECK_FALSE(tracker.down());
    REQUIRE(log.wait_count(3));
    auto events = log.copy();
    REQUIRE(events.size() == 3);
    CHECK(events[0].kind == FallbackEvent::Kind::source_down);
    CHECK(events[0].errc == Errc::unreachable);
    CHECK(events[1].kind == FallbackEvent::Kind::source_down); // the cause changed
    CHECK(events[1].errc == Errc::auth_failed);
    CHECK(events[2].kind == FallbackEvent::Kind::source_recovered);
    for (const auto& e : events)
        CHECK(e.source == "postgresql://app@db/catalogue");

    // The copy and the outbox tell through the same stream.
    tracker.copy_stale(true, "out of sync for 25 h");
    tracker.dead_letter("batch 7 refused", Errc::invalid_argument);
    REQUIRE(log.wait_count(5));
    events = log.copy();
    CHECK(events[3].kind == FallbackEvent::Kind::copy_stale);
    CHECK(events[4].kind == FallbackEvent::Kind::outbox_dead_letter);
    CHECK(events[4].errc == Errc::invalid_argument);
    CHECK(tracker.source_health().copy_stale);
    CHECK(tracker.source_health().dead_letters == 1);
}

TEST_CASE("a chain hears each source's health events among its own, and reports them in "
          "metrics and prometheus()") {
    auto primary = std::make_shared<SourceWithHealth>("primary");
    auto backup = std::make_shared<test::ScriptedRepository>("backup");
    auto chain = FallbackRepository::create({primary, backup}).value();
    EventLog log;
    chain->subscribe(std::ref(log));
    // The copy answers, the chain's breaker stays closed: only the source's health says.
    primary->health.failed("feed", error_of(Errc::auth_failed));
    REQUIRE(log.wait_count(1));
    auto e = log.copy().front();
    CHECK(e.kind == FallbackEvent::Kind::source_down);
    CHECK(e.source == "primary");
    CHECK(e.errc == Errc::auth_failed);
    auto m = chain->metrics(false);
    CHECK(m.sources[0].health.down());
    CHECK(m.sources[0].breaker == BreakerState::closed);
    CHECK(m.sources[1].health.state == SourceHealth::State::unknown);
    auto text = chain->prometheus();
    CHECK(text.find("modelrepo_source_up{source=\"primary\"} 0") != std::string::npos);
    CHECK(text.find("modelrepo_source_up{source=\"backup\"} 1") != std::string::npos);
    CHECK(text.find("modelrepo_source_down_cause{source=\"primary\",errc=\"auth_failed\"} 1") !=
          std::string::npos);
    primary->health.reached("feed");
    REQUIRE(log.wait_count(2));
    CHECK(log.copy()[1].kind == FallbackEvent::Kind::source_recovered);
    CHECK(chain->prometheus().find("errc=\"auth_failed\"} 1") == std::string::npos);
    // A chain answers for its first source's health.
    CHECK(chain->capability<HealthControl>() == &primary->health);
}

TEST_CASE("any repository offers its health: PostgreSQL and HTTP sources, and the durable layer "
          "of one that has none") {
    auto memory = open("builtin:").value();
    CHECK(memory->capability<HealthControl>() == nullptr); // memory never goes down
#if MODELREPO_HAS_POSTGRES
    auto pg = open("postgresql://app@127.0.0.1:1/none?connect_timeout=1").value();
    auto* health = pg->capability<HealthControl>();
    REQUIRE(health);
    EventLog log;
    auto sub = health->on_health_event(std::ref(log));
    CHECK_FALSE(pg->count_models()); // nothing listens on port 1
    REQUIRE(log.wait_count(1));
    CHECK(log.copy()[0].errc == Errc::unreachable);
    CHECK(health->source_health().seen_by == "pool");
#endif
}
