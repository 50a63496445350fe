// SPDX-License-Identifier: MIT
// ManualClock: a steady_clock that moves only when a test says so.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace modelrepo::test {

struct ManualClock {
    std::atomic<std::int64_t> ns{1'000'000'000};
    void advance(std::chrono::nanoseconds d) { ns += d.count(); }
    std::chrono::steady_clock::time_point now() const {
        return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns.load()));
    }
    auto fn() {
        return [this] { return now(); };
    }
};

} // namespace modelrepo::test
