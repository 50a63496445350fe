// SPDX-License-Identifier: MIT
// ConnectionPool: a fixed number of Connections lent to one caller at a time. It knows
// no SQL and nothing of the repository above it: it opens sessions with
// Connection::open, checks idle ones with Connection::validate, and replaces what broke.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include <modelrepo/error.hpp>
#include <modelrepo/pool_stats.hpp>

#include "../../core/health_tracker.hpp"
#include "connection.hpp"

namespace modelrepo::detail {

struct PoolOptions {
    int max_size = 1;
    /// Longest wait for a free connection (the call's own deadline may end it sooner).
    std::chrono::milliseconds acquire_timeout{10'000};
    /// An idle connection unused this long is checked with a round trip before reuse.
    std::chrono::milliseconds validate_after_idle{30'000};
    /// A connection is checked this often while it is used (its role: a standby still
    /// within the lag bound, a primary still a primary); zero: only after idling.
    std::chrono::milliseconds recheck_interval{0};
    /// Connections are replaced after about this long (minus up to 10 % jitter).
    std::chrono::milliseconds max_lifetime{30 * 60'000};
    /// While the server is down: the wait before the next connect, doubling from the
    /// first to the second, with jitter. Callers fail fast in between.
    std::chrono::milliseconds backoff_initial{100};
    std::chrono::milliseconds backoff_max{5'000};
    /// Told of every connect's outcome (the source's health); may be null. Outlives the
    /// pool.
    HealthObserver* health = nullptr;
    /// The layer's name in health reports ("pool", "read pool").
    const char* layer = "pool";
    /// A connect that succeeds proves the origin up. Not through PgBouncer, which accepts a
    /// login it then cannot make to the server: there a statement's outcome tells
    /// (`after_call`).
    bool connect_proves_origin = true;
};

class ConnectionPool;

/// A borrowed connection; goes back to the pool on destruction, or is discarded when it
/// is no longer usable.
class Lease {
public:
    Lease(ConnectionPool* pool, std::size_t slot)
        : pool_(pool)
        , slot_(slot) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr))
        , slot_(other.slot_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();

    Connection& operator*() const;
    Connection* operator->() const { return &**this; }

private:
    ConnectionPool* pool_;
    std::size_t slot_;
};

/// Fixed maximum; bounded waits; validation of long-idle connections; max lifetime with
/// jitter; broken connections replaced; fail-fast with exponential backoff and jitter
/// while the server is down. Thread-safe.
///
/// The pool is `max_size` slots, each empty, opening, idle or busy (an atomic). Taking
/// an idle connection and giving it back are one compare-exchange and one store, with
/// no lock: a thread first tries the slot it last returned (so it keeps talking to the
/// same backend process), then the others. The mutex is for the slow path only:
/// opening a connection, the server-down state, and waiting when every slot is busy.
/// With a mutex on every acquire and release, 4 threads on 2 cores spent half of each
/// call's time in futex waits whenever the lock convoyed (bimodal 60k/120k calls/s).
///
/// Time: lifetimes, idle times and the backoff come from `clock` (tests drive it by
/// hand); deadlines are real time (steady_clock), since sockets wait in real time.
class ConnectionPool {
public:
    using ClockFn = std::function<SteadyClock::time_point()>;

    ConnectionPool(std::shared_ptr<const SessionConfig> session, PoolOptions options,
                   ClockFn clock = {});
    ~ConnectionPool();
    ConnectionPool(const ConnectionPool&) = delete;
    ConnectionPool& operator=(const ConnectionPool&) = delete;

    /// A connection by `deadline` (and within acquire_timeout): pool_exhausted, or the
    /// connect error. `started` is when the caller began (it read the clock anyway).
    Result<Lease> acquire(Deadline deadline, SteadyClock::time_point started = SteadyClock::now());

    PoolStats counters() const;
    const SessionConfig& session() const noexcept { return *session_; }

    /// Whether calls must tell the pool how they ended (`after_call`).
    bool reports_calls() const noexcept {
        return options_.health && !options_.connect_proves_origin;
    }
    /// A call on a connection of this pool ended (`failure` null: it succeeded): through
    /// PgBouncer, what tells whether the origin is up. Cheap when nothing changed.
    void after_call(const Error* failure);

private:
    friend class Lease;
    enum SlotState : int { empty, opening, idle, busy };
    /// One cache line (or two) per slot: threads working on different connections
    /// write to different lines.
    struct alignas(64) Slot {
        std::atomic<int> state{empty};
        /// Set while opening/idle/busy; touched only by the thread that moved the slot
        /// out of `idle` or `empty` (the compare-exchange hands it over).
        std::unique_ptr<Connection> connection;
        SteadyClock::time_point expires{};
        SteadyClock::time_point last_used{};
        SteadyClock::time_point last_checked{};
        /// Acquire waits of the callers that got this slot (summed by counters()).
        std::array<std::atomic<std::uint64_t>, PoolStats::wait_bounds_ms.size()> waits{};
    };
    using WaitHistogram = std::array<std::atomic<std::uint64_t>, PoolStats::wait_bounds_ms.size()>;

    void release(std::size_t slot);
    /// An idle connection, checked (lifetime, validation), without the lock: this
    /// thread's last slot first. Connections found expired or dead are closed.
    std::optional<Lease> take_idle(SteadyClock::time_point started, SteadyClock::time_point current,
                                   Deadline deadline);
    /// Empties a slot whose connection is closed, and tells a waiter there is room.
    void discard(Slot& slot);
    /// Wakes one waiter if any (after a slot became idle or empty).
    void wake_waiter();
    /// How many slots are in each state (seq_cst loads: the waiters' re-check).
    std::array<int, 4> census() const;
    Error exhausted(std::chrono::milliseconds waited) const;
    static void record_wait(WaitHistogram& into, SteadyClock::duration waited);
    std::chrono::milliseconds jitter(std::chrono::milliseconds base, double fraction);
    SteadyClock::time_point now() const { return clock_ ? clock_() : SteadyClock::now(); }

    const std::shared_ptr<const SessionConfig> session_;
    const PoolOptions options_;
    const ClockFn clock_;
    /// Declared before the connections: they leave it when they close.
    Watchdog watchdog_;
    std::unique_ptr<Slot[]> slots_;
    std::atomic<int> waiting_{0};
    std::atomic<bool> told_failing_{false}; ///< after_call told the health of a failure

    std::atomic<std::uint64_t> connects_{0}, connect_failures_{0}, acquire_timeouts_{0},
        broken_replaced_{0}, expired_replaced_{0};
    /// Waits of callers that got no connection (slot histograms hold the others).
    WaitHistogram failed_waits_{};

    mutable std::mutex mutex_; ///< guards everything below, and the waits
    std::condition_variable available_;
    // While the server is down: the last connect error, when the next attempt may
    // start, the current backoff, and whether a probe connect is under way.
    std::optional<Error> down_error_;
    SteadyClock::time_point retry_at_{};
    std::chrono::milliseconds backoff_;
    bool probing_ = false;
    std::mt19937_64 random_{std::random_device{}()};
};

inline Connection& Lease::operator*() const {
    return *pool_->slots_[slot_].connection;
}

} // namespace modelrepo::detail
