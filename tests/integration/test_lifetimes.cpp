// SPDX-License-Identifier: MIT
// The C++ API's lifetimes, tried as a service author uses it: subscriptions made and
// cancelled by the thousand on builtin:, PostgreSQL and cache=live (memory, threads and
// files stay flat; what a callback captured is freed when cancel() returns); a repository
// kept alive only by its own callback goes when it is cancelled; the forms of reading a
// result that dangled before (they run under ASan here).
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

/// This process's resident memory (kB), threads and open files, from /proc.
struct Usage {
    long rss_kb = 0;
    long threads = 0;
    long fds = 0;
};
Usage usage() {
    Usage u;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("VmRSS:"))
            u.rss_kb = std::stol(line.substr(6));
        if (line.starts_with("Threads:"))
            u.threads = std::stol(line.substr(8));
    }
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
        ++u.fds;
    return u;
}

/// Makes and cancels `rounds` x 1,000 subscriptions on `repo`; each callback captures a
/// shared block that must be free once cancel() has returned. Returns the subscriptions
/// made.
long churn(ModelRepository& repo, steady_clock::time_point until, std::atomic<long>& leaks) {
    long made = 0;
    while (steady_clock::now() < until) {
        std::vector<Subscription> round;
        std::vector<std::weak_ptr<int>> captured;
        round.reserve(1'000);
        for (int i = 0; i < 1'000; ++i) {
            auto block = std::make_shared<int>(i);
            captured.push_back(block);
            auto sub = repo.watch([block](const CatalogChange&) { (void)*block; });
            REQUIRE_MESSAGE(sub, sub.error().to_string());
            round.push_back(std::move(sub).value());
        }
        // Half cancelled, half destroyed: both free the callback before they return.
        for (std::size_t i = 0; i < round.size(); i += 2)
            round[i].cancel();
        round.clear();
        for (const auto& c : captured)
            leaks += c.expired() ? 0 : 1;
        made += 1'000;
    }
    return made;
}

} // namespace

TEST_CASE("subscriptions made and cancelled 1,000 a round on builtin:, PostgreSQL and "
          "cache=live: memory, threads and files stay flat; captures freed on cancel()") {
    fresh_catalogue("lifetimes_churn");
    auto memory = open("builtin:").value();
    auto pg = open(server().url("app", password, "lifetimes_churn")).value();
    auto live =
        open(server().url("app", password, "lifetimes_churn", "127.0.0.1", "cache=live")).value();
    // The workload: a churning thread per source, and changes meanwhile (deliveries run
    // while subscriptions come and go). Run once to warm up (each source's delivery thread,
    // the feed's sessions, the pools' connections for calls made at once, allocator arenas),
    // then measured.
    std::atomic<long> leaks{0}, made{0};
    auto workload = [&](seconds run_for) {
        const auto until = steady_clock::now() + run_for;
        std::vector<std::thread> threads;
        for (auto* repo : {memory.get(), pg.get(), live.get()})
            threads.emplace_back([&, repo] { made += churn(*repo, until, leaks); });
        std::thread writer([&] {
            for (int i = 0; steady_clock::now() < until; ++i) {
                std::vector<ModelStatus> s{{"gpt-5", Health::degraded, 0.5 + (i % 40) / 100.0, 1.0,
                                            0.1, "churn", system_clock::now()}};
                (void)memory->write_statuses(s);
                (void)pg->write_statuses(s);
                std::this_thread::sleep_for(20ms);
            }
        });
        for (auto& t : threads)
            t.join();
        writer.join();
        std::this_thread::sleep_for(1s);
    };
    workload(3s);
    made = 0;
    const Usage before = usage();
    // 30 s as the issue asks; 10 s under a sanitizer, which is ten times slower.
    const auto run_for = sanitized ? 10s : 30s;
    workload(run_for);
    const Usage after = usage();
    MESSAGE(made.load() << " subscriptions in " << run_for.count() << " s; RSS " << before.rss_kb
                        << " -> " << after.rss_kb << " kB, threads " << before.threads << " -> "
                        << after.threads << ", fds " << before.fds << " -> " << after.fds);
    CHECK(made.load() >= 3'000);
    CHECK(leaks.load() == 0); // every capture freed by the time cancel() or ~Subscription returned
    CHECK(after.threads == before.threads);
    CHECK(after.fds == before.fds);
    if (!sanitized) // a sanitizer's quarantine holds freed memory on purpose
        CHECK(after.rss_kb - before.rss_kb < 20 * 1024);
    for (auto* repo : {pg.get(), live.get()}) {
        auto text = to_prometheus(repo->backend_metrics());
        CAPTURE(text);
        CHECK(text.find("modelrepo_watchers 0\n") != std::string::npos);
    }
}

TEST_CASE("cancel() from inside the callback frees it once the callback returns; a repository "
          "kept alive only by its own callback goes when it is cancelled") {
    fresh_catalogue("lifetimes_self");
    const Usage before = usage();
    {
        std::weak_ptr<ModelRepository> watched;
        std::weak_ptr<int> captured;
        Subscription sub;
        std::atomic<bool> called{false};
        {
            auto repo =
                open(server().url("app", password, "lifetimes_self", "127.0.0.1", "cache=live"))
                    .value();
            watched = repo;
            auto block = std::make_shared<int>(7);
            captured = block;
            // The keep-alive pattern: the callback holds the repository.
            sub = repo->watch([repo, block, &called](const CatalogChange&) { called = true; })
                      .value();
            // Its first resync may have gone before watch() subscribed (a slow machine, a
            // sanitizer): a write of its own makes a change to wait for.
            int round = 0;
            REQUIRE(eventually(
                [&] {
                    if (called.load())
                        return true;
                    std::vector<ModelStatus> s{{"gpt-5", Health::degraded,
                                                0.5 + (++round % 40) / 100.0, 1.0, 0.1,
                                                "self-watch", system_clock::now()}};
                    (void)repo->write_statuses(s);
                    return called.load();
                },
                20s));
        }
        CHECK_FALSE(watched.expired()); // only the callback keeps it now
        sub.cancel();
        CHECK(captured.expired());
        CHECK(watched.expired()); // the repository, its pool, feed and copy, gone
    }
    // Its threads stop with it.
    CHECK(eventually([&] { return usage().threads <= before.threads; }, 10s));

    // From inside the callback: no wait, no further call, the capture freed after it.
    auto memory = open("builtin:").value();
    auto block = std::make_shared<int>(1);
    std::weak_ptr<int> captured = block;
    std::atomic<int> calls{0};
    Subscription self;
    std::mutex mutex;
    std::unique_lock hold(mutex); // the callback waits until `self` is assigned
    auto made = memory->watch([&, block = std::move(block)](const CatalogChange&) {
        std::lock_guard wait(mutex);
        ++calls;
        self.cancel();
    });
    self = std::move(made).value();
    hold.unlock();
    std::vector<ModelStatus> s{
        {"gpt-5", Health::degraded, 0.5, 1.0, 0.1, "self", system_clock::now()}};
    REQUIRE(memory->write_statuses(s));
    REQUIRE(eventually([&] { return captured.expired(); }, 5s));
    REQUIRE(memory->write_statuses(s));
    std::this_thread::sleep_for(100ms);
    CHECK(calls.load() == 1);
}

TEST_CASE("results read the ways people write them do not dangle (ASan checks these)") {
    auto repo = open("builtin:").value();
    const std::vector<std::string> slugs{"gpt-5", "claude-sonnet-4-5"};
    // A reference to a temporary result's value.
    const auto& stats = repo->system_stats().value();
    CHECK(stats.models == 32);
    const Model& model = *repo->find_model("gpt-5").value();
    CHECK(model.slug == "gpt-5");
    const auto& found = repo->find_model("gpt-4o").value().value();
    CHECK(found.slug == "gpt-4o");
    int n = 0;
    for (const Model& m : repo->list_models().value())
        n += m.slug.empty() ? 0 : 1;
    CHECK(n == 32);
    for (const Model& m : repo->find_models(slugs).value())
        CHECK(m.provider);
    // A named result: value() is a reference into it, valid while it lives.
    auto kept = repo->find_model("gpt-5");
    const Model& inside = *kept.value();
    CHECK(inside.slug == "gpt-5");

    // share_models(): a view, valid while the SharedModels that holds it lives, and
    // unchanged by writes meanwhile (they make a new version; this one stays).
    auto shared = repo->share_models().value();
    const Model* first = shared.models.front();
    const std::string before(first->status ? to_string(first->status->health) : "");
    std::vector<ModelStatus> write{
        {first->slug, Health::outage, 0.1, 1.0, 0.9, "lifetimes", system_clock::now()}};
    REQUIRE(repo->write_statuses(write));
    CHECK(std::string(first->status ? to_string(first->status->health) : "") == before);
    CHECK(repo->find_model(first->slug).value()->status->health == Health::outage);
}
