// SPDX-License-Identifier: MIT
#include "pool.hpp"

#include <pqxx/except>
#include <pqxx/nontransaction>
#include <sys/socket.h>

#include "errors.hpp"

namespace modelrepo::detail {

// --- Watchdog ---------------------------------------------------------------------

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

std::uint64_t Watchdog::arm(int fd, SteadyClock::time_point deadline) {
    std::lock_guard lock(mutex_);
    if (!started_) {
        started_ = true;
        thread_ = std::thread([this] { run(); });
    }
    std::uint64_t ticket = next_ticket_++;
    entries_.emplace(ticket, Entry{fd, deadline});
    // Deadlines are "now + timeout", so a new one is almost never the earliest: wake
    // the watchdog only when it would otherwise sleep past this one.
    if (deadline < next_wake_) {
        next_wake_ = deadline;
        wake_.notify_one();
    }
    return ticket;
}

bool Watchdog::disarm(std::uint64_t ticket) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(ticket);
    if (it == entries_.end())
        return false;
    bool fired = it->second.fired;
    entries_.erase(it);
    return fired;
}

void Watchdog::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        auto now = SteadyClock::now();
        auto next = SteadyClock::time_point::max();
        for (auto& [ticket, entry] : entries_) {
            if (entry.fired)
                continue;
            if (entry.deadline <= now) {
                // Wakes the blocked reader at once; the connection is discarded after.
                ::shutdown(entry.fd, SHUT_RDWR);
                entry.fired = true;
            } else {
                next = std::min(next, entry.deadline);
            }
        }
        next_wake_ = next;
        if (next == SteadyClock::time_point::max())
            wake_.wait(lock);
        else
            wake_.wait_until(lock, next);
    }
}

// --- Lease ------------------------------------------------------------------------

Lease::~Lease() {
    if (pool_ && connection_)
        pool_->release(std::move(connection_), broken_);
}

// --- ConnectionPool ---------------------------------------------------------------

namespace {

int default_pool_size() {
    unsigned cores = std::thread::hardware_concurrency();
    return static_cast<int>(2 * (cores ? cores : 1) + 1);
}

} // namespace

ConnectionPool::ConnectionPool(const PostgresConfig& config, PgTarget target, std::string source,
                               std::function<void(pqxx::connection&)> setup)
    : config_(config)
    , target_(std::move(target))
    , source_(std::move(source))
    , setup_(std::move(setup))
    , max_size_(config.pool_size > 0 ? config.pool_size : default_pool_size())
    , backoff_(config.reconnect_backoff_initial) {
    counters_.max_size = max_size_;
}

ConnectionPool::~ConnectionPool() = default;

std::chrono::milliseconds ConnectionPool::jitter(std::chrono::milliseconds base, double fraction) {
    std::uniform_real_distribution<double> spread(1.0 - fraction, 1.0);
    return std::chrono::milliseconds(static_cast<long long>(base.count() * spread(random_)));
}

Result<std::unique_ptr<PooledConnection>> ConnectionPool::connect() {
    try {
        auto pooled = std::make_unique<PooledConnection>();
        pooled->conn = std::make_unique<pqxx::connection>(config_.conninfo);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        // A broken connection is replaced by the pool, never silently reconnected.
        pooled->conn->inhibit_reactivation(true);
#pragma GCC diagnostic pop
        setup_(*pooled->conn);
        pooled->created = pooled->last_used = SteadyClock::now();
        std::chrono::milliseconds lifetime;
        {
            std::lock_guard lock(mutex_);
            lifetime = jitter(config_.max_lifetime, 0.1);
        }
        pooled->expires = pooled->created + lifetime;
        return pooled;
    } catch (const pqxx::sql_error& e) {
        return query_error(e.what(), e.sqlstate(), false, false, target_, source_,
                           config_.query_timeout);
    } catch (const std::exception& e) {
        return connect_error(e.what(), target_, source_);
    }
}

bool ConnectionPool::validate(PooledConnection& connection) {
    try {
        auto deadline = SteadyClock::now() + config_.query_timeout;
        auto ticket = watchdog_.arm(connection.conn->sock(), deadline);
        bool ok = true;
        try {
            pqxx::nontransaction tx(*connection.conn);
            tx.exec("SELECT 1");
        } catch (...) {
            ok = false;
        }
        watchdog_.disarm(ticket);
        return ok;
    } catch (...) {
        return false;
    }
}

void ConnectionPool::record_wait(SteadyClock::duration waited) {
    double ms = std::chrono::duration<double, std::milli>(waited).count();
    for (std::size_t i = 0; i < PoolStats::wait_bounds_ms.size(); ++i)
        if (ms <= PoolStats::wait_bounds_ms[i]) {
            ++counters_.acquire_wait_buckets[i];
            break;
        }
}

Result<Lease> ConnectionPool::acquire() {
    auto start = SteadyClock::now();
    auto deadline = start + config_.acquire_timeout;
    std::unique_lock lock(mutex_);
    for (;;) {
        // 1. A free connection, checked if it has idled long or lived long.
        while (!idle_.empty()) {
            auto pooled = std::move(idle_.back());
            idle_.pop_back();
            auto now = SteadyClock::now();
            if (now >= pooled->expires) {
                --open_;
                ++counters_.expired_replaced;
                lock.unlock();
                pooled.reset(); // closes outside the lock
                lock.lock();
                continue;
            }
            ++busy_;
            if (now - pooled->last_used >= config_.validate_after_idle) {
                lock.unlock();
                bool ok = validate(*pooled);
                lock.lock();
                if (!ok) {
                    --busy_;
                    --open_;
                    ++counters_.broken_replaced;
                    continue;
                }
            }
            record_wait(SteadyClock::now() - start);
            return Lease(this, std::move(pooled));
        }

        // 2. While the server is down, fail fast until the next attempt is due; then
        //    let one caller try while the others keep failing fast.
        auto now = SteadyClock::now();
        if (down_error_ && (now < retry_at_ || probing_ || open_ >= max_size_)) {
            Error error = *down_error_;
            auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::max(retry_at_ - now, SteadyClock::duration::zero()))
                               .count();
            error.message += " (the server is treated as down; next reconnect attempt in " +
                             std::to_string(wait_ms) + " ms)";
            return error;
        }

        // 3. Room for another connection: open one outside the lock.
        if (open_ < max_size_) {
            ++open_;
            bool probe = down_error_.has_value();
            probing_ = probe;
            lock.unlock();
            auto connected = connect();
            lock.lock();
            probing_ = false;
            if (!connected) {
                --open_;
                ++counters_.connect_failures;
                down_error_ = connected.error();
                retry_at_ = SteadyClock::now() + jitter(backoff_, 0.5);
                backoff_ = std::min(backoff_ * 2, config_.reconnect_backoff_max);
                available_.notify_all(); // waiters fail fast too
                return connected.error();
            }
            ++counters_.connects;
            down_error_.reset();
            backoff_ = config_.reconnect_backoff_initial;
            ++busy_;
            record_wait(SteadyClock::now() - start);
            return Lease(this, std::move(connected).value());
        }

        // 4. Full: wait for a release, at most until the acquire deadline.
        ++waiting_;
        bool woke = available_.wait_until(lock, deadline, [&] {
            return !idle_.empty() || open_ < max_size_ || down_error_.has_value();
        });
        --waiting_;
        if (!woke) {
            ++counters_.acquire_timeouts;
            record_wait(SteadyClock::now() - start);
            Error error = make_error(
                Errc::pool_exhausted,
                "all " + std::to_string(max_size_) + " connections to " + target_.display() +
                    " stayed busy for " + std::to_string(config_.acquire_timeout.count()) +
                    " ms (pool_timeout); raise connection_limit or find what holds them");
            error.source = source_;
            error.target = target_.host_list();
            return error;
        }
    }
}

void ConnectionPool::release(std::unique_ptr<PooledConnection> connection, bool broken) {
    std::unique_lock lock(mutex_);
    --busy_;
    if (broken || !connection->conn->is_open()) {
        --open_;
        ++counters_.broken_replaced;
        lock.unlock();
        connection.reset();
        available_.notify_one();
        return;
    }
    connection->last_used = SteadyClock::now();
    idle_.push_back(std::move(connection));
    lock.unlock();
    available_.notify_one();
}

PoolStats ConnectionPool::stats() const {
    std::lock_guard lock(mutex_);
    PoolStats s = counters_;
    s.open = open_;
    s.idle = static_cast<int>(idle_.size());
    s.busy = busy_;
    s.waiting = waiting_;
    s.server_down = down_error_.has_value();
    return s;
}

} // namespace modelrepo::detail
