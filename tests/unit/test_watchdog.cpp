// SPDX-License-Identifier: MIT
// The PostgreSQL pool's deadline watchdog, on a socketpair: a blocked read returns
// when the deadline passes, and nothing else is ever shut down.
#include <chrono>
#include <thread>

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "postgres/driver/watchdog.hpp"

using modelrepo::detail::SteadyClock;
using modelrepo::detail::Watchdog;
using namespace std::chrono;

namespace {

struct SocketPair {
    int fd[2] = {-1, -1};
    SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0); }
    ~SocketPair() {
        ::close(fd[0]);
        ::close(fd[1]);
    }
    /// Sends one byte from the far end and reads it back: the near end still works.
    bool works() {
        char c = 'x';
        return ::write(fd[1], &c, 1) == 1 && ::read(fd[0], &c, 1) == 1 && c == 'x';
    }
};

} // namespace

TEST_CASE("a read blocked past its deadline is broken, and disarm says it fired") {
    Watchdog watchdog;
    SocketPair pair;
    Watchdog::Slot* slot = watchdog.watch(pair.fd[0]);
    // The watchdog thread is asleep with nothing armed: arming must wake it.
    std::this_thread::sleep_for(20ms);
    auto start = SteadyClock::now();
    watchdog.arm(*slot, start + 150ms);
    char c;
    ssize_t n = ::read(pair.fd[0], &c, 1); // blocks until the watchdog shuts the socket
    auto waited = SteadyClock::now() - start;
    CHECK(n == 0);
    CHECK(waited >= 150ms);
    CHECK(waited < 5s); // generous slack for a loaded machine
    CHECK(Watchdog::disarm(*slot));
    watchdog.forget(slot);
}

TEST_CASE("a call that ends before its deadline is left alone") {
    Watchdog watchdog;
    SocketPair pair;
    Watchdog::Slot* slot = watchdog.watch(pair.fd[0]);
    for (int i = 0; i < 1000; ++i) {
        watchdog.arm(*slot, SteadyClock::now() + 100ms);
        REQUIRE_FALSE(Watchdog::disarm(*slot));
    }
    std::this_thread::sleep_for(250ms); // past every deadline armed above
    CHECK(pair.works());
    CHECK_FALSE(Watchdog::disarm(*slot));
    watchdog.forget(slot);
}

TEST_CASE("deadlines on several connections: only the late one fires") {
    Watchdog watchdog;
    SocketPair late, quick;
    Watchdog::Slot* late_slot = watchdog.watch(late.fd[0]);
    Watchdog::Slot* quick_slot = watchdog.watch(quick.fd[0]);
    // A later deadline first, then an earlier one: the watchdog must wake for the latter.
    watchdog.arm(*quick_slot, SteadyClock::now() + 10s);
    std::this_thread::sleep_for(20ms);
    watchdog.arm(*late_slot, SteadyClock::now() + 100ms);
    char c;
    auto start = SteadyClock::now();
    CHECK(::read(late.fd[0], &c, 1) == 0);
    CHECK(SteadyClock::now() - start < 5s);
    CHECK(Watchdog::disarm(*late_slot));
    CHECK_FALSE(Watchdog::disarm(*quick_slot));
    CHECK(quick.works());
    watchdog.forget(late_slot);
    watchdog.forget(quick_slot);
}

TEST_CASE("4 threads arming and disarming while deadlines pass") {
    Watchdog watchdog;
    std::vector<std::unique_ptr<SocketPair>> pairs;
    std::vector<Watchdog::Slot*> slots;
    for (int i = 0; i < 4; ++i) {
        pairs.push_back(std::make_unique<SocketPair>());
        slots.push_back(watchdog.watch(pairs.back()->fd[0]));
    }
    std::atomic<int> fired{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 2000; ++i) {
                // Every 500th call is "stuck" past a deadline already due.
                bool stuck = i % 500 == 499;
                watchdog.arm(*slots[t], SteadyClock::now() + (stuck ? 1ms : 10s));
                if (stuck)
                    std::this_thread::sleep_for(200ms);
                if (Watchdog::disarm(*slots[t])) {
                    CHECK(stuck);
                    ++fired;
                    return; // the socket is shut down: a real caller discards it
                }
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(fired == 4);
    for (auto* slot : slots)
        watchdog.forget(slot);
}
