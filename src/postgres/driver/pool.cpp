// SPDX-License-Identifier: MIT
#include "pool.hpp"

#include <thread>

namespace modelrepo::detail {

Lease::~Lease() {
    if (pool_)
        pool_->release(slot_);
}

namespace {

/// PoolStats::wait_bounds_ms in steady_clock ticks (the last bucket takes the rest).
constexpr auto wait_bounds = [] {
    std::array<SteadyClock::rep, PoolStats::wait_bounds_ms.size()> ticks{};
    for (std::size_t i = 0; i < ticks.size(); ++i)
        ticks[i] = i + 1 == ticks.size()
                       ? std::numeric_limits<SteadyClock::rep>::max()
                       : static_cast<SteadyClock::rep>(PoolStats::wait_bounds_ms[i] *
                                                       (SteadyClock::period::den / 1000));
    return ticks;
}();
static_assert(SteadyClock::period::num == 1 && SteadyClock::period::den % 1000 == 0);

/// The slot this thread last returned a connection to, per pool: tried first, so a
/// thread keeps talking to the same backend process and the scheduler keeps the pair
/// together (HikariCP does the same). With connections shuffled between threads
/// (a LIFO stack), 4 threads on 2 cores made 78-84k calls/s; with this, 118-125k/s.
struct LastSlot {
    const void* pool = nullptr;
    std::size_t slot = 0;
};
[[gnu::tls_model("initial-exec")]] thread_local LastSlot last_slot;

} // namespace

ConnectionPool::ConnectionPool(std::shared_ptr<const SessionConfig> session, PoolOptions options,
                               ClockFn clock)
    : session_(std::move(session))
    , options_(std::move(options))
    , clock_(std::move(clock))
    , slots_(std::make_unique<Slot[]>(static_cast<std::size_t>(std::max(options_.max_size, 1))))
    , backoff_(options_.backoff_initial) {}

ConnectionPool::~ConnectionPool() = default;

std::chrono::milliseconds ConnectionPool::jitter(std::chrono::milliseconds base, double fraction) {
    std::uniform_real_distribution<double> spread(1.0 - fraction, 1.0);
    return std::chrono::milliseconds(static_cast<long long>(base.count() * spread(random_)));
}

void ConnectionPool::record_wait(WaitHistogram& into, SteadyClock::duration waited) {
    for (std::size_t i = 0; i < wait_bounds.size(); ++i)
        if (waited.count() <= wait_bounds[i]) {
            into[i].fetch_add(1, std::memory_order_relaxed);
            break;
        }
}

std::array<int, 4> ConnectionPool::census() const {
    std::array<int, 4> count{};
    for (int i = 0; i < std::max(options_.max_size, 1); ++i)
        ++count[static_cast<std::size_t>(
            slots_[static_cast<std::size_t>(i)].state.load(std::memory_order_seq_cst))];
    return count;
}

void ConnectionPool::wake_waiter() {
    // Pairs with the waiter's increment and re-check under the mutex (both seq_cst):
    // either it sees the slot this thread just freed, or this load sees it waiting.
    if (waiting_.load(std::memory_order_seq_cst) > 0) {
        std::lock_guard lock(mutex_);
        available_.notify_one();
    }
}

void ConnectionPool::discard(Slot& slot) {
    slot.connection.reset(); // closes the connection (and leaves the watchdog) first
    slot.state.store(empty, std::memory_order_seq_cst);
    wake_waiter();
}

std::optional<Lease> ConnectionPool::take_idle(SteadyClock::time_point started,
                                               SteadyClock::time_point current, Deadline deadline) {
    auto n = static_cast<std::size_t>(std::max(options_.max_size, 1));
    std::size_t first = last_slot.pool == this ? last_slot.slot : 0;
    for (std::size_t k = 0; k < n; ++k) {
        std::size_t i = (first + k) % n;
        Slot& slot = slots_[i];
        int expected = idle;
        if (slot.state.load(std::memory_order_relaxed) != idle ||
            !slot.state.compare_exchange_strong(expected, busy, std::memory_order_acquire))
            continue;
        // The slot is this thread's now. (Without a test's clock, the caller's reading of
        // the clock serves: one clock read fewer per call.)
        auto at = clock_ ? clock_() : current;
        if (at >= slot.expires) {
            expired_replaced_.fetch_add(1, std::memory_order_relaxed);
            discard(slot);
            continue;
        }
        bool recheck = options_.recheck_interval.count() > 0 &&
                       at - slot.last_checked >= options_.recheck_interval;
        if (at - slot.last_used >= options_.validate_after_idle || recheck) {
            slot.last_checked = at;
            if (!slot.connection->validate(deadline)) {
                broken_replaced_.fetch_add(1, std::memory_order_relaxed);
                discard(slot);
                continue;
            }
            record_wait(slot.waits, SteadyClock::now() - started);
        } else {
            record_wait(slot.waits, current - started);
        }
        return Lease(this, i);
    }
    return std::nullopt;
}

Error ConnectionPool::exhausted(std::chrono::milliseconds waited) const {
    Error error = make_error(
        Errc::pool_exhausted,
        "all " + std::to_string(options_.max_size) + " connections to " +
            session_->target.display() + " stayed busy for " + std::to_string(waited.count()) +
            " ms (pool_timeout " + std::to_string(options_.acquire_timeout.count()) +
            " ms, or the call's deadline); raise connection_limit or find what holds them");
    error.source = session_->source;
    error.target = session_->target.host_list();
    return error;
}

Result<Lease> ConnectionPool::acquire(Deadline deadline, SteadyClock::time_point started) {
    auto wait_until = std::min(deadline, started + options_.acquire_timeout);
    auto current = started;
    for (;;) {
        // 1. A free connection, without the lock.
        if (auto lease = take_idle(started, current, deadline))
            return std::move(*lease);

        std::unique_lock lock(mutex_);
        // 2. While the server is down, fail fast until the next attempt is due; then
        //    let one caller try while the others keep failing fast.
        auto at = now();
        if (down_error_ && (at < retry_at_ || probing_ || census()[empty] == 0)) {
            Error error = *down_error_;
            auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::max(retry_at_ - at, SteadyClock::duration::zero()))
                               .count();
            error.message += " (the server is treated as down; next reconnect attempt in " +
                             std::to_string(wait_ms) + " ms)";
            return error;
        }

        // 3. An empty slot: open a connection in it, outside the lock.
        for (std::size_t i = 0; i < static_cast<std::size_t>(options_.max_size); ++i) {
            Slot& slot = slots_[i];
            int expected = empty;
            if (!slot.state.compare_exchange_strong(expected, opening))
                continue;
            probing_ = down_error_.has_value();
            lock.unlock();
            auto connected = Connection::open(session_, watchdog_, deadline);
            lock.lock();
            probing_ = false;
            if (options_.health) {
                if (!connected) {
                    options_.health->failed(options_.layer, connected.error());
                    // Through PgBouncer a connect does not prove the origin, so the next
                    // call that succeeds must (else the failure stays told forever: a
                    // login to PgBouncer that timed out in its server_login_retry).
                    if (!options_.connect_proves_origin && classify(connected.error()).source_down)
                        told_failing_.store(true, std::memory_order_seq_cst);
                } else if (options_.connect_proves_origin) {
                    options_.health->reached(options_.layer);
                }
            }
            if (!connected) {
                connect_failures_.fetch_add(1, std::memory_order_relaxed);
                down_error_ = connected.error();
                if (connected.error().is(Errc::read_only)) {
                    // A standby answered where a primary is wanted: a failover is under
                    // way, and the promotion may come any moment. Look again soon.
                    retry_at_ =
                        now() + std::min(options_.backoff_initial, std::chrono::milliseconds(250));
                } else {
                    retry_at_ = now() + jitter(backoff_, 0.5);
                    backoff_ = std::min(backoff_ * 2, options_.backoff_max);
                }
                slot.state.store(empty, std::memory_order_seq_cst);
                available_.notify_all(); // waiters fail fast too
                return std::move(connected).error();
            }
            connects_.fetch_add(1, std::memory_order_relaxed);
            down_error_.reset();
            backoff_ = options_.backoff_initial;
            slot.connection = std::move(connected).value();
            slot.last_used = slot.last_checked = now();
            slot.expires = slot.last_used + jitter(options_.max_lifetime, 0.1);
            slot.state.store(busy, std::memory_order_release);
            record_wait(slot.waits, SteadyClock::now() - started);
            return Lease(this, i);
        }

        // 4. Every slot busy or opening: wait for a release, at most until the deadline.
        //    The count and the re-check pair with wake_waiter(): no release is missed.
        waiting_.fetch_add(1, std::memory_order_seq_cst);
        auto any_free = [this] {
            auto count = census();
            return count[idle] + count[empty] > 0;
        };
        if (!any_free())
            available_.wait_until(lock, wait_until);
        waiting_.fetch_sub(1, std::memory_order_seq_cst);
        current = SteadyClock::now();
        if (SteadyClock::now() >= wait_until && !any_free()) {
            acquire_timeouts_.fetch_add(1, std::memory_order_relaxed);
            auto waited = SteadyClock::now() - started;
            record_wait(failed_waits_, waited);
            return exhausted(std::chrono::duration_cast<std::chrono::milliseconds>(waited));
        }
    }
}

void ConnectionPool::release(std::size_t index) {
    Slot& slot = slots_[index];
    if (!slot.connection->usable()) {
        broken_replaced_.fetch_add(1, std::memory_order_relaxed);
        discard(slot);
        return;
    }
    slot.last_used = now();
    last_slot = {this, index};
    slot.state.store(idle, std::memory_order_seq_cst);
    wake_waiter();
}

void ConnectionPool::after_call(const Error* failure) {
    if (!reports_calls())
        return;
    if (!failure) {
        if (told_failing_.exchange(false, std::memory_order_seq_cst))
            options_.health->reached(options_.layer);
        return;
    }
    // A statement that outlived its deadline may be a locked table, not the origin.
    // The health first, the flag after: a success on another thread between the two then
    // finds the flag down and tells nothing, and the next success clears the failure. In
    // the other order that success could tell `reached` before this `failed`, leave the
    // flag down, and the failure would stay told while every call succeeds.
    if (classify(*failure).source_down && !failure->is(Errc::timeout)) {
        options_.health->failed(options_.layer, *failure);
        told_failing_.store(true, std::memory_order_seq_cst);
    }
}

PoolStats ConnectionPool::counters() const {
    PoolStats s;
    s.max_size = options_.max_size;
    auto count = census();
    s.open = s.max_size - count[empty];
    s.idle = count[idle];
    s.busy = count[busy];
    s.waiting = waiting_.load(std::memory_order_relaxed);
    s.connects = connects_.load(std::memory_order_relaxed);
    s.connect_failures = connect_failures_.load(std::memory_order_relaxed);
    s.acquire_timeouts = acquire_timeouts_.load(std::memory_order_relaxed);
    s.broken_replaced = broken_replaced_.load(std::memory_order_relaxed);
    s.expired_replaced = expired_replaced_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < s.acquire_wait_buckets.size(); ++i) {
        s.acquire_wait_buckets[i] = failed_waits_[i].load(std::memory_order_relaxed);
        for (int k = 0; k < s.max_size; ++k)
            s.acquire_wait_buckets[i] +=
                slots_[static_cast<std::size_t>(k)].waits[i].load(std::memory_order_relaxed);
    }
    std::lock_guard lock(mutex_);
    s.server_down = down_error_.has_value();
    return s;
}

} // namespace modelrepo::detail
