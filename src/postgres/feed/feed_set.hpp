// SPDX-License-Identifier: MIT
// FeedSet: the change feeds one PostgreSQL repository may run (triggers, logical decoding,
// polling), each made from the URL's settings when it is chosen, and made anew when
// feed=auto comes back to it (a feed runs once: its first delivery is a resync). Which
// one runs is the repository's choice (feed=, or auto's chooser); the set makes, starts,
// stops and reports them.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <modelrepo/postgres_config.hpp>

#include "../logical/logical_feed.hpp"
#include "change_feed.hpp"
#include "polling_feed.hpp"

namespace modelrepo::detail {

class FeedSet {
public:
    struct Setup {
        std::shared_ptr<const SessionConfig> session; ///< the feeds' own sessions
        std::string schema_prefix;                    ///< `"schema".` or ""
        /// The catalogue's tables (the logical feed reads them; the trigger feed's triggers
        /// are on the statuses').
        logical::CatalogueTables tables;
        bool automatic = false; ///< feed=auto: `changed` is told
        HealthObserver* health = nullptr;
        logical::SnapshotHandoff* handoff = nullptr;
        ChangeFeed::Sink sink;
        ChangeFeed::StateSink state;
        /// Decoded status rows, for the logical feed (ChangeSource::RowSink).
        ChangeSource::RowSink rows;
        /// feed=auto: the running feed found that migrate changed the database (a feed
        /// installed where it polled, its triggers or publication gone), on its thread.
        std::function<void()> changed;
    };
    FeedSet(const PostgresConfig& config, Setup setup);
    /// Stops them all.
    ~FeedSet();
    FeedSet(const FeedSet&) = delete;
    FeedSet& operator=(const FeedSet&) = delete;

    /// A new feed of `kind` in its place (the one it replaces, if any, must be stopped).
    void make(FeedKind kind);
    /// Starts the feed of `kind` (made before).
    void start(FeedKind kind);
    /// Stops every feed and waits for their threads: no sink is called after it.
    void stop();
    /// The statistics of the feed of `kind` (none when it was never made).
    ChangeFeed::Stats stats(FeedKind kind) const;

private:
    Setup setup_;
    ChangeFeed::Options triggers_;
    logical::LogicalFeed::Options logical_;
    PollingFeed::Options polling_;
    mutable std::mutex mutex_; ///< guards the three (made anew)
    std::unique_ptr<ChangeFeed> feed_;
    std::unique_ptr<logical::LogicalFeed> logical_feed_;
    std::unique_ptr<PollingFeed> polling_feed_;
};

} // namespace modelrepo::detail
