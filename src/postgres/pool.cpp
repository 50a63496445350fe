// SPDX-License-Identifier: MIT
#include "pool.hpp"

#include <pqxx/except>
#include <pqxx/nontransaction>
#include <sys/socket.h>

#include "errors.hpp"

namespace modelrepo::detail {

// --- Watchdog ---------------------------------------------------------------------

namespace {

std::int64_t to_ns(SteadyClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

} // namespace

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
        thread_.join();
}

Watchdog::Slot* Watchdog::watch(int fd) {
    std::lock_guard lock(mutex_);
    if (!started_) {
        started_ = true;
        thread_ = std::thread([this] { run(); });
    }
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->fd = fd;
    return slots_.back().get();
}

void Watchdog::forget(Slot* slot) {
    std::lock_guard lock(mutex_);
    std::erase_if(slots_, [slot](const auto& s) { return s.get() == slot; });
}

void Watchdog::arm(Slot& slot, SteadyClock::time_point deadline) {
    std::int64_t ns = std::max<std::int64_t>(to_ns(deadline), 1);
    slot.deadline.store(ns, std::memory_order_seq_cst);
    // The thread looks again at next_wake_ anyway: wake it only for an earlier deadline.
    // Both sides are seq_cst: either this load sees the thread's new next_wake_, or the
    // thread's rescan after publishing it sees this deadline (see run()).
    if (ns < next_wake_.load(std::memory_order_seq_cst)) {
        std::lock_guard lock(mutex_);
        woken_ = true;
        wake_.notify_one();
    }
}

bool Watchdog::disarm(Slot& slot) {
    return slot.deadline.exchange(Slot::idle, std::memory_order_acq_rel) == Slot::fired;
}

std::int64_t Watchdog::scan(std::int64_t now) {
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    for (auto& slot : slots_) {
        std::int64_t d = slot->deadline.load(std::memory_order_seq_cst);
        if (d <= 0)
            continue; // idle or already fired
        if (d > now) {
            next = std::min(next, d);
        } else if (slot->deadline.compare_exchange_strong(d, Slot::fired)) {
            // Still the same call (a new call would have a new deadline): wake its
            // blocked read at once. The connection is discarded by the caller, and
            // cannot close before this scan ends (forget() takes the mutex).
            ::shutdown(slot->fd, SHUT_RDWR);
        }
    }
    return next;
}

void Watchdog::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        std::int64_t next = scan(to_ns(SteadyClock::now()));
        next_wake_.store(next, std::memory_order_seq_cst);
        // An arm() between the scan and the store may have read the old next_wake_ and
        // not woken us: look once more now that the new one is published.
        std::int64_t again = scan(to_ns(SteadyClock::now()));
        if (again < next) {
            next_wake_.store(again, std::memory_order_seq_cst);
            next = again;
        }
        auto woken = [&] { return woken_ || stopping_; };
        if (next == std::numeric_limits<std::int64_t>::max())
            wake_.wait(lock, woken);
        else
            wake_.wait_until(lock, SteadyClock::time_point(std::chrono::nanoseconds(next)), woken);
        woken_ = false;
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
        pooled->watchdog = &watchdog_;
        pooled->slot = watchdog_.watch(pooled->conn->sock());
        // The setup statements are a call like any other: under the deadline.
        watchdog_.arm(*pooled->slot, SteadyClock::now() + config_.query_timeout);
        try {
            setup_(*pooled->conn);
        } catch (...) {
            if (Watchdog::disarm(*pooled->slot))
                return query_error("session setup cut at the deadline", "", true, true, target_,
                                   source_, config_.query_timeout);
            throw;
        }
        if (Watchdog::disarm(*pooled->slot))
            return query_error("session setup cut at the deadline", "", true, true, target_,
                               source_, config_.query_timeout);
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
        watchdog_.arm(*connection.slot, SteadyClock::now() + config_.query_timeout);
        bool ok = true;
        try {
            pqxx::nontransaction tx(*connection.conn);
            tx.exec("SELECT 1");
        } catch (...) {
            ok = false;
        }
        return !Watchdog::disarm(*connection.slot) && ok;
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

namespace {

/// The connection this thread last returned, per pool: it is handed back to the same
/// thread when idle. A thread that keeps talking to the same backend process lets the
/// scheduler keep the pair together (wake-affine placement); with connections shuffled
/// between threads (a plain LIFO stack) 4 threads on 2 cores made 78-84k calls/s,
/// with this 118-125k/s (count_models; sleeps per call 0.45 -> 0.30).
struct LastConnection {
    const ConnectionPool* pool = nullptr;
    const PooledConnection* connection = nullptr;
};
thread_local LastConnection last_connection;

} // namespace

std::unique_ptr<PooledConnection> ConnectionPool::take_idle() {
    auto it = idle_.end() - 1; // the most recently returned, unless ours is idle
    if (last_connection.pool == this)
        for (auto i = idle_.begin(); i != idle_.end(); ++i)
            if (i->get() == last_connection.connection) {
                it = i;
                break;
            }
    auto pooled = std::move(*it);
    idle_.erase(it);
    return pooled;
}

Result<Lease> ConnectionPool::acquire() {
    auto start = SteadyClock::now();
    auto deadline = start + config_.acquire_timeout;
    std::unique_lock lock(mutex_);
    for (;;) {
        // 1. A free connection, checked if it has idled long or lived long.
        while (!idle_.empty()) {
            auto pooled = take_idle();
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
    last_connection = {this, connection.get()};
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
