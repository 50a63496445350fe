// SPDX-License-Identifier: MIT
// ConnectionPool: modelrepo's own pool of libpqxx connections, and the Watchdog that
// breaks a blocked read when a call passes its deadline.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <pqxx/connection>

#include <modelrepo/postgres_repository.hpp>

#include "target.hpp"

namespace modelrepo::detail {

using SteadyClock = std::chrono::steady_clock;

/// Shuts a connection's socket down when its call passes its deadline, so that a read
/// blocked on a stopped server returns at once. One thread per repository, started on
/// first use; waits on a condition variable, not a poll loop.
class Watchdog {
public:
    Watchdog() = default;
    ~Watchdog();

    /// Watches `fd` until disarm(); returns a ticket. At `deadline` the socket is shut
    /// down and fired(ticket) becomes true.
    std::uint64_t arm(int fd, SteadyClock::time_point deadline);
    /// Stops watching; returns true when the deadline had fired.
    bool disarm(std::uint64_t ticket);

private:
    struct Entry {
        int fd;
        SteadyClock::time_point deadline;
        bool fired = false;
    };
    void run();

    std::mutex mutex_; ///< guards entries_, next_ticket_, next_wake_, stopping_, started_
    std::condition_variable wake_;
    std::map<std::uint64_t, Entry> entries_;
    std::uint64_t next_ticket_ = 1;
    /// When the watchdog thread will next look (max while it waits for work).
    SteadyClock::time_point next_wake_ = SteadyClock::time_point::min();
    bool stopping_ = false;
    bool started_ = false;
    std::thread thread_;
};

/// One pooled connection.
struct PooledConnection {
    std::unique_ptr<pqxx::connection> conn;
    SteadyClock::time_point created;
    SteadyClock::time_point expires;
    SteadyClock::time_point last_used;
};

class ConnectionPool;

/// A borrowed connection; goes back to the pool on destruction unless marked broken.
class Lease {
public:
    Lease() = default;
    Lease(ConnectionPool* pool, std::unique_ptr<PooledConnection> connection)
        : pool_(pool)
        , connection_(std::move(connection)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease();

    pqxx::connection& conn() { return *connection_->conn; }
    /// The connection is discarded instead of returned.
    void mark_broken() { broken_ = true; }

private:
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<PooledConnection> connection_;
    bool broken_ = false;
};

/// Fixed maximum; bounded waits; validation of long-idle connections; max lifetime
/// with jitter; broken connections replaced; fail-fast with exponential backoff and
/// jitter while the server is down. Thread-safe.
class ConnectionPool {
public:
    /// `setup` runs on each new connection (search_path, statement_timeout, prepares).
    ConnectionPool(const PostgresConfig& config, PgTarget target, std::string source,
                   std::function<void(pqxx::connection&)> setup);
    ~ConnectionPool();

    /// A connection within acquire_timeout, or pool_exhausted / the connect error.
    Result<Lease> acquire();

    PoolStats stats() const;
    Watchdog& watchdog() { return watchdog_; }
    const PgTarget& target() const { return target_; }
    const std::string& source() const { return source_; }

private:
    friend class Lease;
    void release(std::unique_ptr<PooledConnection> connection, bool broken);
    Result<std::unique_ptr<PooledConnection>> connect();
    bool validate(PooledConnection& connection);
    void record_wait(SteadyClock::duration waited);
    std::chrono::milliseconds jitter(std::chrono::milliseconds base, double fraction);

    const PostgresConfig config_;
    const PgTarget target_;
    const std::string source_;
    const std::function<void(pqxx::connection&)> setup_;
    const int max_size_;

    mutable std::mutex mutex_; ///< guards everything below
    std::condition_variable available_;
    std::vector<std::unique_ptr<PooledConnection>> idle_;
    int open_ = 0; ///< open or being opened
    int busy_ = 0;
    int waiting_ = 0;
    // While the server is down: the last connect error, when the next attempt may
    // start, the current backoff, and whether a probe connect is under way.
    std::optional<Error> down_error_;
    SteadyClock::time_point retry_at_{};
    std::chrono::milliseconds backoff_;
    bool probing_ = false;
    std::mt19937_64 random_{std::random_device{}()};
    PoolStats counters_;

    Watchdog watchdog_;
};

} // namespace modelrepo::detail
