// SPDX-License-Identifier: MIT
#include "polling_feed.hpp"

#include "installed_feed.hpp"
#include "reconnect_backoff.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

std::string PollingFeed::poll_sql(const std::string& prefix, const std::string& publication) {
    // Each table's rows as text in key order, hashed on the server; then the three hashes
    // hashed. Then whether the logical feed is installed and can run, and whether the
    // trigger feed is installed (the trigger's name is the one migration 3 gives the
    // status table's).
    auto table = [&](const char* name, const char* key) {
        return "(SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t." + std::string(key) +
               "), '')) FROM " + prefix + name + " t)";
    };
    return "SELECT md5(" + table("providers", "slug") + " || " + table("models", "slug") + " || " +
           table("model_status", "model_slug") + "), " +
           installed_feed::publication_sql(publication) +
           " AND current_setting('wal_level') = 'logical' AND (" +
           installed_feed::can_replicate_sql + "), " +
           installed_feed::triggers_sql(prefix + "model_status");
}

PollingFeed::PollingFeed(std::shared_ptr<const SessionConfig> session, std::string schema_prefix,
                         Options options, Sink sink, StateSink state, Installed installed)
    : session_(std::move(session))
    , sql_(poll_sql(schema_prefix, options.publication))
    , options_(std::move(options))
    , sink_(std::move(sink))
    , state_(std::move(state))
    , installed_(std::move(installed)) {}

PollingFeed::~PollingFeed() {
    stop();
}

void PollingFeed::start() {
    std::call_once(started_, [this] {
        std::lock_guard lock(thread_mutex_);
        std::lock_guard stop(stop_mutex_);
        if (!stopping_)
            thread_ = std::thread([this] { run(); });
    });
}

void PollingFeed::stop() {
    {
        std::lock_guard lock(stop_mutex_);
        stopping_ = true;
    }
    stop_wake_.notify_all();
    std::lock_guard lock(thread_mutex_);
    if (thread_.joinable())
        thread_.join();
}

ChangeFeed::Stats PollingFeed::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void PollingFeed::tell(bool connected) {
    {
        std::lock_guard lock(mutex_);
        stats_.connected = connected;
    }
    if (state_)
        state_(connected);
}

bool PollingFeed::pause(milliseconds d) {
    std::unique_lock lock(stop_mutex_);
    return !stop_wake_.wait_for(lock, d, [&] { return stopping_; });
}

void PollingFeed::run() {
    ReconnectBackoff backoff(options_.backoff_initial, options_.backoff_max);
    auto connects = [this] {
        std::lock_guard lock(mutex_);
        return stats_.connects;
    };
    for (;;) {
        const auto before = connects();
        if (!session())
            break;
        if (!pause(backoff.after(connects() != before)))
            break;
    }
}

bool PollingFeed::session() {
    Watchdog watchdog;
    auto opened =
        Connection::open(session_, watchdog,
                         SteadyClock::now() + session_->connect_timeout + options_.query_timeout);
    if (!opened) {
        if (options_.health)
            options_.health->failed("feed", opened.error());
        std::lock_guard lock(mutex_);
        stats_.last_error = std::move(opened).error();
        return true;
    }
    Connection& c = *opened.value();
    bool told = false;
    auto lost = [&](Error error) {
        if (options_.health)
            options_.health->failed("feed", error);
        {
            std::lock_guard lock(mutex_);
            stats_.last_error = std::move(error);
            if (told)
                ++stats_.disconnects;
        }
        if (told)
            tell(false);
        return true;
    };
    for (;;) {
        auto polled = c.script(sql_, SteadyClock::now() + options_.query_timeout);
        if (!polled)
            return lost(std::move(polled).error());
        const auto& row = polled.value();
        if (options_.until_installed && (row.text(0, 1) == "t" || row.text(0, 2) == "t")) {
            // migrate installed a feed: the owner starts it (its first read is a resync).
            if (told)
                tell(false);
            if (installed_)
                installed_(row.text(0, 1) == "t" ? FeedKind::logical : FeedKind::triggers);
            return false;
        }
        std::string fingerprint(row.text(0, 0));
        const bool moved = fingerprint != fingerprint_;
        fingerprint_ = std::move(fingerprint);
        {
            std::lock_guard lock(mutex_);
            ++stats_.polls;
            if (!told) {
                ++stats_.connects;
                stats_.last_error.reset();
            }
            if (moved || !told)
                ++stats_.resyncs;
        }
        if (!told) {
            // Connected: from now on the copy is as current as the last poll.
            if (options_.health)
                options_.health->reached("feed");
            tell(true);
        }
        // The first poll of each session is a resync too: what changed while it was down.
        if (moved || !told) {
            // A version of its own, so that a stream resuming from before it gets it
            // (serve keeps events by version): the clock's microseconds, and increasing.
            auto now = system_clock::now();
            version_ =
                std::max(version_ + 1, duration_cast<microseconds>(now.time_since_epoch()).count());
            {
                std::lock_guard lock(mutex_);
                stats_.version = version_;
            }
            sink_({{CatalogChange::Kind::resync, "", version_, now}});
        }
        told = true;
        if (!pause(options_.interval)) {
            tell(false);
            return false;
        }
    }
}

} // namespace modelrepo::detail
