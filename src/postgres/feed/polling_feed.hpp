// SPDX-License-Identifier: MIT
// PollingFeed: what feed=auto runs when the database has no change feed it can follow (no
// row triggers, and no publication or none the logical feed may read here). One session
// of its own reads a fingerprint of the catalogue's three tables every `interval` (an md5
// the server computes: nothing but the hash crosses the wire) and says `resync` when it
// moved, so that a copy re-reads the catalogue. It also asks, in the same statement,
// whether a change feed was installed since (migrate ran); it then tells its owner, who
// switches to that feed.
//
// A change is heard up to `interval` late, and only as a resync: watchers learn that
// something changed, not what. Each resync has a version of its own (the clock's
// microseconds, increasing), so that serve keeps it for streams that resume. Each poll reads the
// three tables whole on the server.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <modelrepo/catalog_change.hpp>
#include <modelrepo/postgres_config.hpp>

#include "../../core/health_tracker.hpp"
#include "../driver/connection.hpp"
#include "../driver/session_config.hpp"
#include "change_feed.hpp"

namespace modelrepo::detail {

class PollingFeed {
public:
    struct Options {
        std::chrono::milliseconds interval{5'000};      ///< between two fingerprints
        std::chrono::milliseconds query_timeout{3'000}; ///< of each statement
        std::chrono::milliseconds backoff_initial{100}; ///< after a lost session
        std::chrono::milliseconds backoff_max{5'000};
        HealthObserver* health = nullptr; ///< may be null; outlives the feed
        /// The publication the logical feed reads (what migrate makes for it).
        std::string publication;
        /// feed=auto's fallback: stop and tell `installed` once migrate installed a feed
        /// that can run here. feed=polling keeps polling.
        bool until_installed = false;
    };
    using Sink = ChangeFeed::Sink;
    using StateSink = ChangeFeed::StateSink;
    /// Told, on the feed's thread, that migrate installed a feed that can run here
    /// (`triggers`, or `logical`: the publication, wal_level = logical and a role that
    /// may replicate), with `until_installed`: the feed stops polling and the owner
    /// starts that one. Called at most once.
    using Installed = std::function<void(FeedKind)>;

    /// `schema_prefix`: `"schema".` or "".
    PollingFeed(std::shared_ptr<const SessionConfig> session, std::string schema_prefix,
                Options options, Sink sink, StateSink state, Installed installed);
    ~PollingFeed();
    PollingFeed(const PollingFeed&) = delete;
    PollingFeed& operator=(const PollingFeed&) = delete;

    /// Starts the thread; later calls do nothing, and so does a call after stop().
    void start();
    /// Stops the thread and waits for it (at once: it sleeps on a condition variable, and
    /// a statement ends by its deadline): no sink is called after this returns.
    void stop();

    ChangeFeed::Stats stats() const;

    /// The statement of one poll: the fingerprint, then whether the publication and the
    /// trigger feed exist. For tests and the doctor's account of the cost.
    static std::string poll_sql(const std::string& prefix, const std::string& publication);

private:
    void run();
    /// One session: connect, then poll until it is lost, a feed is installed, or stopping.
    /// False when the feed should stop for good (stopping, or a feed was installed).
    bool session();
    /// Sleeps up to `d` or until stopping; false when stopping.
    bool pause(std::chrono::milliseconds d);
    void tell(bool connected);

    const std::shared_ptr<const SessionConfig> session_;
    const std::string sql_;
    const Options options_;
    const Sink sink_;
    const StateSink state_;
    const Installed installed_;
    std::mutex stop_mutex_; ///< guards stopping_ for the condition variable
    std::condition_variable stop_wake_;
    bool stopping_ = false;
    std::once_flag started_;
    std::mutex thread_mutex_; ///< guards thread_ (start and stop)
    std::thread thread_;

    std::string fingerprint_; ///< the feed thread's: the last one read ("" before the first)
    /// The feed thread's: the last resync's version (its clock's microseconds, made to
    /// increase).
    std::int64_t version_ = 0;

    mutable std::mutex mutex_; ///< guards stats_
    ChangeFeed::Stats stats_;
};

} // namespace modelrepo::detail
