// SPDX-License-Identifier: MIT
#include "watchdog.hpp"

#include <algorithm>

#include <sys/socket.h>

namespace modelrepo::detail {

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

} // namespace modelrepo::detail
