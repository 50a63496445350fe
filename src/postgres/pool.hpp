// SPDX-License-Identifier: MIT
// ConnectionPool: modelrepo's own pool of connections, and the Watchdog that
// breaks a blocked read when a call passes its deadline.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include <pqxx/connection>

#include <modelrepo/postgres_repository.hpp>

#include "libpq.hpp"
#include "target.hpp"

namespace modelrepo::detail {

using SteadyClock = std::chrono::steady_clock;

/// Shuts a connection's socket down when its call passes its deadline, so that a read
/// blocked on a stopped server returns at once. One thread per pool, started on first
/// use; it sleeps until the earliest armed deadline, not in a poll loop.
///
/// Each pooled connection has a `Slot`. Arming and disarming a slot are single atomic
/// operations: calls on different connections share no lock and no cache line (a
/// mutex and a map here cost a fifth of the pool's throughput). The watchdog thread
/// is woken only when a deadline is earlier than its planned wake-up, which, as every
/// deadline is "now + query_timeout", happens when it was asleep with nothing armed.
class Watchdog {
public:
    /// The deadline state of one connection's socket.
    struct Slot {
        static constexpr std::int64_t idle = 0;   ///< no call in progress
        static constexpr std::int64_t fired = -1; ///< the deadline passed; socket shut down
        int fd = -1;
        std::atomic<std::int64_t> deadline{idle}; ///< steady_clock ns, or idle / fired
    };

    Watchdog() = default;
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    /// Starts watching socket `fd`; the slot stays valid until `forget()`.
    Slot* watch(int fd);
    /// Stops watching; call before the socket is closed. Waits for a running scan.
    void forget(Slot* slot);
    /// The call on `slot` must end by `deadline`.
    void arm(Slot& slot, SteadyClock::time_point deadline);
    /// The call ended; returns true when the deadline had fired (the socket is shut down
    /// and the connection must be discarded).
    static bool disarm(Slot& slot);

private:
    void run();
    /// Fires passed deadlines; returns the earliest deadline still armed (max if none).
    std::int64_t scan(std::int64_t now);

    std::mutex mutex_; ///< guards slots_, woken_, stopping_, started_ and the scans
    std::condition_variable wake_;
    std::vector<std::unique_ptr<Slot>> slots_;
    /// When the watchdog thread will next look: steady_clock ns, max while it has
    /// nothing to wait for.
    std::atomic<std::int64_t> next_wake_{std::numeric_limits<std::int64_t>::max()};
    bool woken_ = false;
    bool stopping_ = false;
    bool started_ = false;
    std::thread thread_;
};

/// One pooled connection, with its watchdog slot (released before the connection
/// closes: the watchdog must never shut down a socket number that was reused).
struct PooledConnection {
    std::unique_ptr<PgConnection> conn;
    PGconn* pg = nullptr;       ///< conn's libpq handle
    std::uint64_t prepared = 0; ///< bit i: the Statement with id i is prepared here
    Watchdog* watchdog = nullptr;
    Watchdog::Slot* slot = nullptr;
    SteadyClock::time_point created;
    SteadyClock::time_point expires;
    SteadyClock::time_point last_used;

    PooledConnection() = default;
    PooledConnection(const PooledConnection&) = delete;
    PooledConnection& operator=(const PooledConnection&) = delete;
    ~PooledConnection() {
        if (slot)
            watchdog->forget(slot);
    }
};

class ConnectionPool;

/// A borrowed connection (the pool's slot `slot`); goes back to the pool on
/// destruction unless marked broken.
class Lease {
public:
    Lease(ConnectionPool* pool, std::size_t slot, SteadyClock::time_point taken_at)
        : pool_(pool)
        , slot_(slot)
        , taken_at_(taken_at) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr))
        , slot_(other.slot_)
        , taken_at_(other.taken_at_)
        , broken_(other.broken_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();

    /// The connection, owned by the pool's slot while this lease holds it.
    PooledConnection& pooled();
    /// When the pool handed the connection over (the call's deadline counts from here;
    /// the pool read the clock anyway).
    SteadyClock::time_point taken_at() const { return taken_at_; }
    /// The connection is discarded instead of returned.
    void mark_broken() { broken_ = true; }

private:
    ConnectionPool* pool_;
    std::size_t slot_;
    SteadyClock::time_point taken_at_;
    bool broken_ = false;
};

/// Fixed maximum; bounded waits; validation of long-idle connections; max lifetime
/// with jitter; broken connections replaced; fail-fast with exponential backoff and
/// jitter while the server is down. Thread-safe.
///
/// The pool is `max_size` slots, each empty, opening, idle or busy (an atomic). Taking
/// an idle connection and giving it back are one compare-exchange and one store, with
/// no lock: a thread first tries the slot it last returned (so it keeps talking to the
/// same backend process), then the others. The mutex is for the slow path only:
/// opening a connection, the server-down state, and waiting when every slot is busy.
/// With a mutex on every acquire and release, 4 threads on 2 cores spent half of each
/// call's time in futex waits whenever the lock convoyed (bimodal 60k/120k calls/s).
class ConnectionPool {
public:
    /// `setup` runs on each new connection (search_path, statement_timeout); it throws
    /// PgFailure when the server refuses it.
    ConnectionPool(const PostgresConfig& config, PgTarget target, std::string source,
                   std::function<void(PGconn*)> setup);
    ~ConnectionPool();

    /// A connection within acquire_timeout, or pool_exhausted / the connect error.
    Result<Lease> acquire();

    PoolStats stats() const;
    Watchdog& watchdog() { return watchdog_; }
    const PgTarget& target() const { return target_; }
    const std::string& source() const { return source_; }

private:
    friend class Lease;
    enum SlotState : int { empty, opening, idle, busy };
    /// One cache line (or two) per slot: threads working on different connections
    /// write to different lines.
    struct alignas(64) Slot {
        std::atomic<int> state{empty};
        /// Set while opening/idle/busy; touched only by the thread that moved the slot
        /// out of `idle` or `empty` (the compare-exchange hands it over).
        std::unique_ptr<PooledConnection> connection;
        /// Acquire waits of the callers that got this slot (summed by stats()).
        std::array<std::atomic<std::uint64_t>, PoolStats::wait_bounds_ms.size()> waits{};
    };

    void release(std::size_t slot, bool broken);
    /// An idle connection, checked (lifetime, validation), without the lock: this
    /// thread's last slot first. Connections found expired or dead are closed.
    std::optional<Lease> take_idle(SteadyClock::time_point start);
    /// Empties a slot whose connection is closed, and tells a waiter there is room.
    void discard(Slot& slot);
    /// Wakes one waiter if any (after a slot became idle or empty).
    void wake_waiter();
    /// How many slots are in each state (seq_cst loads: the waiters' re-check).
    std::array<int, 4> census() const;
    Result<std::unique_ptr<PooledConnection>> connect();
    bool validate(PooledConnection& connection);
    /// Counts an acquire's wait in `into` (the slot's histogram, or the pool's for
    /// callers that got none).
    static void
    record_wait(std::array<std::atomic<std::uint64_t>, PoolStats::wait_bounds_ms.size()>& into,
                SteadyClock::duration waited);
    std::chrono::milliseconds jitter(std::chrono::milliseconds base, double fraction);

    const PostgresConfig config_;
    const PgTarget target_;
    const std::string source_;
    const std::function<void(PGconn*)> setup_;
    const int max_size_;
    /// Declared before the connections: they leave it when they close.
    Watchdog watchdog_;
    std::unique_ptr<Slot[]> slots_;
    std::atomic<int> waiting_{0};

    // Counters, read by stats().
    std::atomic<std::uint64_t> connects_{0}, connect_failures_{0}, acquire_timeouts_{0},
        broken_replaced_{0}, expired_replaced_{0};
    /// Waits of callers that got no connection (slot histograms hold the others).
    std::array<std::atomic<std::uint64_t>, PoolStats::wait_bounds_ms.size()> failed_waits_{};

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

inline PooledConnection& Lease::pooled() {
    return *pool_->slots_[slot_].connection;
}

} // namespace modelrepo::detail
