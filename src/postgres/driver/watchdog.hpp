// SPDX-License-Identifier: MIT
// Watchdog: shuts a session's socket down when its call passes its deadline, so that a
// read blocked on a stopped server (SIGSTOP, a black-holed network) returns at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace modelrepo::detail {

using SteadyClock = std::chrono::steady_clock;

/// One thread per watchdog, started on first use; it sleeps until the earliest armed
/// deadline, not in a poll loop.
///
/// Each watched socket has a `Slot`. Arming and disarming a slot are single atomic
/// operations: calls on different connections share no lock and no cache line (a
/// mutex and a map here cost a fifth of the pool's throughput). The watchdog thread
/// is woken only when a deadline is earlier than its planned wake-up, which, as every
/// deadline is "now + query_timeout", happens when it was asleep with nothing armed.
///
/// Thread safety: `watch`/`forget` may be called from any thread; `arm`/`disarm` of one
/// slot from the one thread that uses its socket.
class Watchdog {
public:
    /// The deadline state of one socket.
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

} // namespace modelrepo::detail
