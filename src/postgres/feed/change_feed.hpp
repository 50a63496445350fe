// SPDX-License-Identifier: MIT
// ChangeFeed: the PostgreSQL side of watch(). One dedicated session (never a pooled
// one) reads the change log (catalog_changes, migration 3) by transaction id: each poll
// returns exactly the log rows that became visible since the previous poll's snapshot
// (those of transactions at or past its xmax, or in its list of running ones), so a
// change is delivered once, whatever the order in which transactions commit. While
// changes come it polls every `poll_interval`; after `idle_after` without one it marks
// itself asleep in catalog_listeners, so that writers notify, and waits on LISTEN. When
// the session is lost it reconnects with backoff, catches up from where it was and says
// `resync`.
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

#include "../../core/health_tracker.hpp"
#include "../driver/connection.hpp"
#include "../driver/session_config.hpp"

struct pg_conn;
typedef struct pg_conn PGconn;

namespace modelrepo::detail {

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
        /// While changes come: a poll this often (writers do not notify an awake feed).
        std::chrono::milliseconds poll_interval{3};
        /// This long without a change: asleep (writers notify; a poll per heartbeat).
        std::chrono::milliseconds idle_after{20};
        /// Told whether each session could connect and listen (the source's health); may
        /// be null. Outlives the feed.
        HealthObserver* health = nullptr;
        /// A statement answering one boolean: whether the row triggers are still there.
        /// Asked at each heartbeat while asleep (a migrate with feed=logical drops them,
        /// and the log then stays silent); "" asks nothing (a mapping's triggers).
        std::string installed_sql;
        /// With `installed_sql`: told, on the feed's thread, that the triggers are gone;
        /// the feed then stops (feed=auto's chooser follows what migrate installed). Null:
        /// the session fails with Errc::schema_missing naming the fix, and tries again.
        std::function<void()> uninstalled;
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

    /// The prepared-set bit of the feed's poll (checked against the pool's statements).
    static constexpr std::size_t poll_statement_id_for_checks() { return poll_statement_id; }

    struct Stats {
        bool connected = false;
        std::uint64_t connects = 0;      ///< sessions that reached LISTEN
        std::uint64_t disconnects = 0;   ///< sessions lost
        std::uint64_t received = 0;      ///< notifications read
        std::uint64_t delivered = 0;     ///< changes read from the log and delivered
        std::uint64_t caught_up = 0;     ///< of them, read at a (re)connect
        std::uint64_t polls = 0;         ///< reads of the log
        std::uint64_t sleeps = 0;        ///< times the feed went asleep (writers notify)
        bool asleep = false;             ///< writers notify it (else it polls)
        std::uint64_t unknown = 0;       ///< payloads on the channel that were not ours
        std::uint64_t resyncs = 0;       ///< resyncs sent (each (re)connect, bulk imports)
        std::int64_t version = 0;        ///< the highest version delivered
        std::optional<Error> last_error; ///< why the session is down, when it is
    };
    Stats stats() const;

private:
    /// Where the last poll of the log left off: its snapshot's xmax and running xids. A
    /// log row is new to the next poll when its xid is at or past xmax, or in running.
    ///
    /// Across a server crash that alone is not enough: a transaction id whose records
    /// never reached the WAL (one that rolled back just before the crash, its abort
    /// record still in the server's buffers) is handed out again after recovery, below
    /// an xmax the cursor already passed. The catch-up at each connect therefore also
    /// reads every row above `delivered`: the log's versions come from a sequence, which
    /// recovery resumes past every version a committed transaction took, so such a row
    /// is new and nothing read before is read again.
    struct Cursor {
        bool set = false;
        std::uint64_t xmax = 0;
        std::vector<std::uint64_t> running;
        std::int64_t delivered = 0; ///< the highest version read from the log
    };
    /// One read of the log, in one snapshot.
    struct Poll {
        std::vector<CatalogChange> changes; ///< in version order
        std::vector<std::uint64_t> running; ///< the snapshot's running xids
    };

    void run();
    /// One session: connect, LISTEN, catch up, then follow until it is lost or stopping.
    void session();
    /// LISTENs on the channel of the schema the triggers live in.
    Result<void> listen_on_channel(Connection& c);
    /// Reads what became visible since `cursor_` and moves it on; the first poll (no
    /// cursor yet) reads nothing and only places it. `catch_up`: the first poll of a
    /// session, which also reads the rows above `cursor_.delivered` (see Cursor).
    Result<Poll> poll(Connection& c, bool catch_up = false);
    /// Marks this session asleep (writers notify it) or awake in catalog_listeners;
    /// `tidy` also drops the rows of sessions that are gone.
    Result<void> mark(Connection& c, bool asleep, bool tidy = false);
    /// Follows the log until the session is lost (or stopping): polls while changes come,
    /// sleeps on LISTEN when they stop, a poll after each `heartbeat` without traffic.
    void follow(Connection& c);
    /// At a session's start and at each heartbeat while asleep: false (the session
    /// ended, or the feed stops) when the triggers are gone. `connected`: the session
    /// was told connected (its loss is counted and told).
    bool still_installed(Connection& c, bool connected);
    /// Reads the notifications the session received: true when any was ours.
    bool drain_notifications(PGconn* pg);
    /// The session was lost for `error`.
    void lost(Error error);
    /// Sleeps up to `d` or until stopping; false when stopping.
    bool pause(std::chrono::milliseconds d);
    void set_error(Error error);
    void tell(bool connected);
    /// When a round trip on the session started now must have ended.
    std::chrono::steady_clock::time_point round_trip() const;

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

    Cursor cursor_; ///< the feed thread's, kept across sessions (catch-up)
    /// The poll, prepared on the feed's own session (an id no pooled statement has).
    static constexpr std::size_t poll_statement_id = 63;
    std::string poll_head_, poll_sql_, poll_sql_first_;
    Statement poll_statement_{};

    mutable std::mutex mutex_; ///< guards stats_
    Stats stats_;
};

/// Reads one notification payload: `{"kind":"status","slug":"gpt-4o","version":42,
/// "at_us":1796150000000000,"xid":1234}` (xid since migration 3; optional). nullopt for
/// anything else.
std::optional<CatalogChange> parse_change_payload(std::string_view payload);

} // namespace modelrepo::detail
