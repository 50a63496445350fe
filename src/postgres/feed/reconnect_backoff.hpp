// SPDX-License-Identifier: MIT
// The change feeds' delay between sessions (the trigger, logical and polling feeds):
// from `initial`, doubling up to `max` while sessions fail to connect, and from `initial`
// again after a session that connected (restarts a few seconds apart then do not find it
// at its maximum).
#pragma once

#include <algorithm>
#include <chrono>

namespace modelrepo::detail {

class ReconnectBackoff {
public:
    ReconnectBackoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
        : initial_(initial)
        , max_(max)
        , next_(initial) {}

    /// The pause before the next session; `connected`: the session that just ended got
    /// as far as following the database.
    std::chrono::milliseconds after(bool connected) {
        if (connected)
            next_ = initial_;
        auto wait = next_;
        next_ = std::min(next_ * 2, max_);
        return wait;
    }

private:
    std::chrono::milliseconds initial_, max_, next_;
};

} // namespace modelrepo::detail
