// SPDX-License-Identifier: MIT
// What tests of watch() and of things that happen in the background share: a collector
// of delivered changes, and a wait for a condition with a deadline.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <modelrepo/catalog_change.hpp>

namespace modelrepo::test {

/// Sets `stop` and joins `threads` when it goes out of scope, however the test ends (a
/// failed REQUIRE throws past the threads that would otherwise terminate the process).
struct StopAndJoin {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~StopAndJoin() {
        stop = true;
        for (auto& t : threads)
            if (t.joinable())
                t.join();
    }
};

/// A watch() callback that keeps every change; waits by count or by predicate.
struct ChangeCollector {
    std::mutex mutex;
    std::condition_variable cv;
    std::vector<CatalogChange> changes;

    void operator()(const CatalogChange& c) {
        std::lock_guard lock(mutex);
        changes.push_back(c);
        cv.notify_all();
    }
    bool wait_count(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, limit, [&] { return changes.size() >= n; });
    }
    template <class Pred>
    bool wait_for(Pred pred, std::chrono::milliseconds limit) {
        std::unique_lock lock(mutex);
        return cv.wait_for(lock, limit,
                           [&] { return std::any_of(changes.begin(), changes.end(), pred); });
    }
    std::size_t count(CatalogChange::Kind kind) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count_if(
            changes.begin(), changes.end(), [&](const auto& c) { return c.kind == kind; }));
    }
    /// The changes of `kind` naming `slug`.
    std::size_t count(CatalogChange::Kind kind, const std::string& slug) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(
            std::count_if(changes.begin(), changes.end(),
                          [&](const auto& c) { return c.kind == kind && c.slug == slug; }));
    }
    std::vector<CatalogChange> copy() {
        std::lock_guard lock(mutex);
        return changes;
    }
};

/// A predicate for ChangeCollector::wait_for: this kind (and slug, when given).
inline auto is(CatalogChange::Kind kind, const std::string& slug = "") {
    return
        [=](const CatalogChange& c) { return c.kind == kind && (slug.empty() || c.slug == slug); };
}

/// Polls `predicate` every 20 ms until it holds or `limit` passes; its last answer.
template <class Pred>
bool eventually(Pred predicate, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (predicate())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return predicate();
}

} // namespace modelrepo::test
