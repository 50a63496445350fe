// SPDX-License-Identifier: MIT
// watch() without a server: ChangeHub's delivery and cancellation, MemoryRepository's own
// changes, FallbackRepository following the serving source.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "scripted_repository.hpp"
#include "stub_repository.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

using test::ChangeCollector;

CatalogChange status(const std::string& slug, std::int64_t version) {
    return {CatalogChange::Kind::status, slug, version, system_clock::now()};
}

} // namespace

TEST_CASE("a hub delivers in order to every subscriber, on its own thread") {
    ChangeHub hub;
    ChangeCollector a, b;
    auto sa = hub.subscribe(std::ref(a));
    auto sb = hub.subscribe(std::ref(b));
    std::mutex id_mutex;
    std::thread::id delivery;
    auto sc = hub.subscribe([&](const CatalogChange&) {
        std::lock_guard lock(id_mutex);
        delivery = std::this_thread::get_id();
    });
    for (int i = 1; i <= 100; ++i)
        hub.publish(status("m" + std::to_string(i), i));
    REQUIRE(a.wait_count(100));
    REQUIRE(b.wait_count(100));
    auto got = a.copy();
    for (int i = 0; i < 100; ++i)
        CHECK(got[static_cast<std::size_t>(i)].version == i + 1);
    {
        std::lock_guard lock(id_mutex);
        CHECK(delivery != std::this_thread::get_id());
    }
    CHECK(hub.stats().delivered >= 200);
    CHECK(hub.stats().subscribers == 3);
}

TEST_CASE("a slow subscriber delays only later deliveries, never the publisher") {
    ChangeHub hub;
    std::atomic<int> calls{0};
    auto sub = hub.subscribe([&](const CatalogChange&) {
        ++calls;
        std::this_thread::sleep_for(150ms);
    });
    auto start = steady_clock::now();
    for (int i = 0; i < 5; ++i)
        hub.publish(status("m", i + 1));
    CHECK(steady_clock::now() - start < 50ms);
    std::this_thread::sleep_for(900ms);
    CHECK(calls.load() == 5);
    CHECK(hub.stats().slow_callbacks == 5);
}

TEST_CASE("a backlog past the queue limit collapses into one resync, counted") {
    ChangeHub hub(10);
    std::mutex gate;
    std::unique_lock hold(gate);
    ChangeCollector seen;
    auto sub = hub.subscribe([&](const CatalogChange& c) {
        std::lock_guard wait(gate); // blocked until the test lets go
        seen(c);
    });
    hub.publish(status("first", 1));
    std::this_thread::sleep_for(50ms); // the first is being delivered (blocked)
    for (int i = 2; i <= 50; ++i)
        hub.publish(status("m", i));
    hold.unlock();
    REQUIRE(seen.wait_count(2));
    std::this_thread::sleep_for(100ms);
    auto got = seen.copy();
    CHECK(hub.stats().overflows >= 1);
    CHECK(got.size() < 20);
    bool resync = false;
    for (const auto& c : got)
        resync = resync || c.kind == CatalogChange::Kind::resync;
    CHECK(resync);
    CHECK(got.back().version == 50); // nothing after the last change is lost
}

TEST_CASE("cancel() from inside a callback returns at once; no call follows") {
    ChangeHub hub;
    std::atomic<int> calls{0};
    std::atomic<bool> cancelled{false};
    Subscription sub;
    std::mutex sub_mutex; ///< `sub` is one object used from two threads: under this
    std::unique_lock lock(sub_mutex);
    sub = hub.subscribe([&](const CatalogChange&) {
        ++calls;
        std::lock_guard l(sub_mutex);
        sub.cancel(); // would deadlock if it waited for this very callback
        cancelled = true;
    });
    lock.unlock();
    hub.publish(status("a", 1));
    hub.publish(status("b", 2));
    REQUIRE(test::eventually([&] { return cancelled.load(); }, 10s));
    std::this_thread::sleep_for(200ms); // a call after the cancel would come by now
    CHECK(calls.load() == 1);
    std::lock_guard l(sub_mutex);
    CHECK_FALSE(sub.active());
}

TEST_CASE("cancel() from another thread waits for a running callback") {
    ChangeHub hub;
    std::atomic<bool> inside{false}, finished{false};
    auto sub = hub.subscribe([&](const CatalogChange&) {
        inside = true;
        std::this_thread::sleep_for(200ms);
        finished = true;
    });
    hub.publish(status("a", 1));
    while (!inside)
        std::this_thread::sleep_for(1ms);
    sub.cancel();
    CHECK(finished.load()); // cancel returned only after the callback did
    hub.publish(status("b", 2));
    std::this_thread::sleep_for(50ms);
    CHECK(hub.stats().delivered == 1);
}

TEST_CASE("subscribe and cancel from many threads while changes flow") {
    ChangeHub hub;
    std::atomic<bool> stop{false};
    std::thread publisher([&] {
        std::int64_t v = 0;
        while (!stop)
            hub.publish(status("m", ++v));
    });
    std::vector<std::thread> threads;
    std::atomic<int> deliveries{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                auto sub = hub.subscribe([&](const CatalogChange&) { ++deliveries; });
                std::this_thread::sleep_for(1ms);
                if (i % 2)
                    sub.cancel();
            } // the rest cancel on destruction
        });
    for (auto& t : threads)
        t.join();
    stop = true;
    publisher.join();
    CHECK(hub.stats().subscribers == 0);
    CHECK(deliveries.load() > 0);
}

TEST_CASE("a subscription that outlives its hub is inactive and cancels safely") {
    Subscription sub;
    {
        ChangeHub hub;
        sub = hub.subscribe([](const CatalogChange&) {});
        CHECK(sub.active());
    }
    CHECK_FALSE(sub.active());
    sub.cancel();
}

TEST_CASE("a relay runs inside publish(), on the publisher's thread, in order, before the "
          "subscribers; cancel waits for a call in progress and frees the callback") {
    ChangeHub hub;
    std::vector<std::int64_t> relayed;
    std::vector<std::thread::id> threads;
    auto owned = std::make_shared<int>(7); // what the relay captured
    std::weak_ptr<int> watch_owned = owned;
    auto relay = hub.relay([&, owned](const CatalogChange& c) {
        relayed.push_back(c.version);
        threads.push_back(std::this_thread::get_id());
    });
    owned.reset();
    ChangeCollector subscriber;
    auto sub = hub.subscribe(std::ref(subscriber));
    CHECK(relay.active());
    CHECK(hub.stats().subscribers == 2);
    for (int v = 1; v <= 3; ++v) {
        hub.publish(status("m", v));
        // Already handed on when publish() returns: no thread in between.
        CHECK(relayed.size() == static_cast<std::size_t>(v));
    }
    CHECK(relayed == std::vector<std::int64_t>{1, 2, 3});
    for (auto id : threads)
        CHECK(id == std::this_thread::get_id());
    REQUIRE(subscriber.wait_count(3));
    CHECK(test::eventually([&] { return hub.stats().delivered == 6; }, 5s));

    // A relay that throws costs only its own call, counted.
    auto thrower = hub.relay([](const CatalogChange&) { throw std::runtime_error("relay"); });
    hub.publish(status("m", 4));
    CHECK(relayed.back() == 4);
    CHECK(hub.stats().failed_callbacks == 1);
    thrower.cancel();

    // Cancel from another thread while a call is in progress: it returns after the call,
    // and the callback (and what it captured) is gone by then.
    std::atomic<bool> inside{false}, finished{false};
    auto slow = hub.relay([&](const CatalogChange&) {
        inside = true;
        std::this_thread::sleep_for(200ms);
        finished = true;
    });
    std::thread publisher([&] { hub.publish(status("m", 5)); });
    while (!inside)
        std::this_thread::sleep_for(1ms);
    slow.cancel();
    CHECK(finished.load());
    publisher.join();
    relay.cancel();
    CHECK_FALSE(relay.active());
    CHECK(watch_owned.expired());
    hub.publish(status("m", 6));
    CHECK(relayed.back() == 5);
    CHECK(hub.stats().subscribers == 1);
}

TEST_CASE("a relay that outlives its hub is inactive, its callback freed") {
    Subscription relay;
    auto owned = std::make_shared<int>(7);
    std::weak_ptr<int> watch_owned = owned;
    {
        ChangeHub hub;
        relay = hub.relay([owned](const CatalogChange&) {});
        owned.reset();
        CHECK(relay.active());
        CHECK_FALSE(watch_owned.expired());
    }
    CHECK_FALSE(relay.active());
    CHECK(watch_owned.expired());
    relay.cancel();
}

TEST_CASE("MemoryRepository reports its own upserts and replaces") {
    auto repo = MemoryRepository::builtin();
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen)).value();
    Timestamp t = system_clock::now();
    std::vector<ModelStatus> batch{{"gpt-4o", Health::outage, 0.1, 1.0, 0.9, "", t},
                                   {"gpt-5", Health::outage, 0.1, 1.0, 0.9, "", t}};
    REQUIRE(repo->upsert_statuses(batch).value() == 2);
    REQUIRE(seen.wait_count(2));
    auto got = seen.copy();
    CHECK(got[0].kind == CatalogChange::Kind::status);
    CHECK(got[0].slug == "gpt-4o");
    CHECK(got[1].version == got[0].version + 1);
    // An older status changes nothing and says nothing.
    std::vector<ModelStatus> stale{{"gpt-4o", Health::operational, 1, 1.0, 0, "", t - 1h}};
    REQUIRE(repo->upsert_statuses(stale).value() == 0);
    REQUIRE(repo->replace(builtin_snapshot()));
    REQUIRE(seen.wait_count(3));
    CHECK(seen.copy()[2].kind == CatalogChange::Kind::resync);
    CHECK(seen.copy().size() == 3);
}

TEST_CASE("FallbackRepository passes on the serving source's changes; a switch is a resync") {
    auto primary = std::make_shared<test::ScriptedRepository>("primary");
    auto backup = std::make_shared<test::ScriptedRepository>("backup");
    FallbackConfig config;
    config.breaker.consecutive_failures = 1;
    config.breaker.open_duration = 10s;
    auto chain = FallbackRepository::create({primary, backup}, config).value();
    ChangeCollector seen;
    auto sub = chain->watch(std::ref(seen)).value();
    Timestamp t = system_clock::now(); // newer than the scripted catalogue's
    primary->change_status("gpt-4o", t);
    REQUIRE(seen.wait_count(1));
    CHECK(seen.copy()[0].slug == "gpt-4o");
    backup->change_status("gpt-5", t); // not serving: not passed on
    std::this_thread::sleep_for(100ms);
    CHECK(seen.copy().size() == 1);

    primary->fail_with(Errc::unreachable);
    REQUIRE(chain->count_models()); // the backup serves now
    REQUIRE(seen.wait_count(2));
    CHECK(seen.copy()[1].kind == CatalogChange::Kind::resync);
    backup->change_status("claude-sonnet-4-5", t);
    REQUIRE(seen.wait_count(3));
    CHECK(seen.copy()[2].slug == "claude-sonnet-4-5");
}

TEST_CASE("a chain none of whose sources can watch answers not_supported, naming them") {
    auto silent = std::make_shared<test::StubRepository>("silent");
    auto plain = silent->watch([](const CatalogChange&) {});
    REQUIRE_FALSE(plain);
    CHECK(plain.error().is(Errc::not_supported));
    auto chain =
        FallbackRepository::create({silent, std::make_shared<test::StubRepository>("silent too")})
            .value();
    auto r = chain->watch([](const CatalogChange&) {});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(Errc::not_supported));
    CHECK(r.error().message.find("silent") != std::string::npos);
}

TEST_CASE("CatalogChange as the JSON line of `modelrepo watch --json`") {
    CatalogChange c{CatalogChange::Kind::status, "gpt-4o", 42,
                    Timestamp(seconds(1796150000) + microseconds(123456))};
    CHECK(to_json(c) ==
          R"({"kind":"status","slug":"gpt-4o","version":42,"at":"2026-12-01T18:33:20.123456Z"})");
    CatalogChange r{CatalogChange::Kind::resync, "", 7, Timestamp(seconds(1796150000))};
    CHECK(to_json(r) ==
          R"({"kind":"resync","slug":"","version":7,"at":"2026-12-01T18:33:20.000000Z"})");
}
