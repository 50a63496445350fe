// SPDX-License-Identifier: MIT
#include "feed_set.hpp"

#include "installed_feed.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

FeedSet::FeedSet(const PostgresConfig& c, Setup setup)
    : setup_(std::move(setup)) {
    triggers_.heartbeat = c.feed_keepalive;
    triggers_.heartbeat_timeout = std::min(c.feed_keepalive, milliseconds(3'000));
    triggers_.backoff_initial = c.reconnect_backoff_initial;
    triggers_.backoff_max = c.reconnect_backoff_max;
    triggers_.health = setup_.health;
    // The trigger feed asks, while idle, whether its triggers are still there.
    triggers_.installed_sql =
        "SELECT " + installed_feed::triggers_sql(setup_.schema_prefix +
                                                 quote_identifier(setup_.tables.statuses.name));
    if (setup_.automatic)
        triggers_.uninstalled = setup_.changed;
    logical_.heartbeat = triggers_.heartbeat;
    logical_.heartbeat_timeout = triggers_.heartbeat_timeout;
    logical_.backoff_initial = triggers_.backoff_initial;
    logical_.backoff_max = triggers_.backoff_max;
    logical_.health = setup_.health;
    logical_.handoff = setup_.handoff;
    logical_.tables = setup_.tables;
    logical_.rows = setup_.rows;
    if (setup_.automatic)
        logical_.uninstalled = setup_.changed;
    polling_.interval = c.poll_interval;
    polling_.query_timeout = c.query_timeout;
    polling_.backoff_initial = c.reconnect_backoff_initial;
    polling_.backoff_max = c.reconnect_backoff_max;
    polling_.health = setup_.health;
    polling_.publication = logical::publication_name(c.schema);
    polling_.until_installed = setup_.automatic;
}

FeedSet::~FeedSet() {
    stop();
}

void FeedSet::make(FeedKind kind) {
    std::lock_guard lock(mutex_);
    switch (kind) {
    case FeedKind::logical:
        logical_feed_ = std::make_unique<logical::LogicalFeed>(setup_.session, logical_,
                                                               setup_.sink, setup_.state);
        break;
    case FeedKind::triggers:
        feed_ = std::make_unique<ChangeFeed>(setup_.session, setup_.schema_prefix, triggers_,
                                             setup_.sink, setup_.state);
        break;
    case FeedKind::polling:
        polling_feed_ = std::make_unique<PollingFeed>(setup_.session, setup_.schema_prefix,
                                                      polling_, setup_.sink, setup_.state,
                                                      [changed = setup_.changed](FeedKind) {
                                                          if (changed)
                                                              changed();
                                                      });
        break;
    case FeedKind::automatic:
        break;
    }
}

void FeedSet::start(FeedKind kind) {
    std::lock_guard lock(mutex_);
    if (kind == FeedKind::logical && logical_feed_)
        logical_feed_->start();
    else if (kind == FeedKind::polling && polling_feed_)
        polling_feed_->start();
    else if (kind == FeedKind::triggers && feed_)
        feed_->start();
}

void FeedSet::stop() {
    std::lock_guard lock(mutex_);
    if (logical_feed_)
        logical_feed_->stop();
    if (feed_)
        feed_->stop();
    if (polling_feed_)
        polling_feed_->stop();
}

ChangeFeed::Stats FeedSet::stats(FeedKind kind) const {
    std::lock_guard lock(mutex_);
    switch (kind) {
    case FeedKind::logical:
        return logical_feed_ ? logical_feed_->stats() : ChangeFeed::Stats{};
    case FeedKind::triggers:
        return feed_ ? feed_->stats() : ChangeFeed::Stats{};
    case FeedKind::polling:
        return polling_feed_ ? polling_feed_->stats() : ChangeFeed::Stats{};
    case FeedKind::automatic:
        break;
    }
    return {};
}

} // namespace modelrepo::detail
