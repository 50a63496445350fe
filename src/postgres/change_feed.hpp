// SPDX-License-Identifier: MIT
// ChangeFeed: the PostgreSQL side of watch(). One dedicated session (never a pooled
// one) LISTENs on the catalogue's channel, which the triggers of migration 2 notify on
// every change made by any client. When the session is lost it reconnects with backoff,
// LISTENs again, catches up by version from catalog_changes and says `resync`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <modelrepo/catalog_change.hpp>
#include <modelrepo/error.hpp>

#include "session_config.hpp"

struct pg_conn;
typedef struct pg_conn PGconn;

namespace modelrepo::detail {

class Connection;

class ChangeFeed {
public:
    struct Options {
        /// A round trip on the session after this long without traffic: a server that
        /// stopped answering (SIGSTOP, a black hole) is noticed although the kernel
        /// still acknowledges TCP keepalives for it.
        std::chrono::milliseconds heartbeat{5'000};
        /// How long that round trip (and each catch-up query) may take.
        std::chrono::milliseconds heartbeat_timeout{3'000};
        std::chrono::milliseconds backoff_initial{100};
        std::chrono::milliseconds backoff_max{5'000};
    };
    /// Receives each batch of changes, on the feed's thread, in version order; a batch
    /// after a (re)connect ends with a `resync` at the current version.
    using Sink = std::function<void(std::vector<CatalogChange>)>;
    /// Told, on the feed's thread, when the session starts or stops listening.
    using StateSink = std::function<void(bool connected)>;

    /// `schema_prefix`: `"schema".` or "" (where catalog_version lives).
    ChangeFeed(std::shared_ptr<const SessionConfig> session, std::string schema_prefix,
               Options options, Sink sink, StateSink state = {});
    /// Stops the thread (at once: it waits on an eventfd beside the socket).
    ~ChangeFeed();
    ChangeFeed(const ChangeFeed&) = delete;
    ChangeFeed& operator=(const ChangeFeed&) = delete;

    /// Starts the thread; later calls do nothing, and so does a call after stop().
    void start();
    /// Stops the thread and waits for it: no sink is called after this returns.
    void stop();

    struct Stats {
        bool connected = false;
        std::uint64_t connects = 0;      ///< sessions that reached LISTEN
        std::uint64_t disconnects = 0;   ///< sessions lost
        std::uint64_t received = 0;      ///< notifications read
        std::uint64_t caught_up = 0;     ///< changes read back from catalog_changes
        std::uint64_t unknown = 0;       ///< payloads on the channel that were not ours
        std::uint64_t resyncs = 0;       ///< resyncs sent (each (re)connect, bulk imports)
        std::int64_t version = 0;        ///< the last version delivered
        std::optional<Error> last_error; ///< why the session is down, when it is
    };
    Stats stats() const;

private:
    void run();
    /// One session: connect, LISTEN, catch up, then listen until it is lost or stopping.
    void session();
    /// LISTENs on the channel of the schema the triggers live in.
    Result<void> listen_on_channel(Connection& c);
    /// What was missed since the last version delivered, read back from catalog_changes,
    /// ending with a `resync` at the current version.
    Result<std::vector<CatalogChange>> catch_up(Connection& c);
    /// Delivers notifications until the session is lost (or stopping); a round trip after
    /// each `heartbeat` without traffic.
    void listen(Connection& c, std::int64_t last);
    /// Hands what the session received to the sink; returns the last version delivered.
    std::int64_t deliver_notifications(PGconn* pg, std::int64_t last);
    /// The session was lost for `error`.
    void lost(Error error);
    /// Sleeps up to `d` or until stopping; false when stopping.
    bool pause(std::chrono::milliseconds d);
    void set_error(Error error);
    void tell(bool connected);

    const std::shared_ptr<const SessionConfig> session_;
    const std::string prefix_;
    const Options options_;
    const Sink sink_;
    const StateSink state_;
    int wake_fd_ = -1; ///< eventfd: written to stop the thread
    std::atomic<bool> stopping_{false};
    std::once_flag started_;
    std::mutex thread_mutex_; ///< guards thread_ (start and stop)
    std::thread thread_;

    mutable std::mutex mutex_; ///< guards stats_
    Stats stats_;
};

/// Reads one notification payload: `{"kind":"status","slug":"gpt-4o","version":42,
/// "at_us":1796150000000000}`. nullopt for anything else.
std::optional<CatalogChange> parse_change_payload(std::string_view payload);

} // namespace modelrepo::detail
