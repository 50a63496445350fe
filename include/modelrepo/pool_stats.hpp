// SPDX-License-Identifier: MIT
/// @file
/// `PoolStats`: the state and counters of a connection pool, for metrics and tests.
#pragma once

#include <array>
#include <cstdint>

namespace modelrepo {

/// A snapshot of a connection pool, for metrics and for tests. Plain values.
struct PoolStats {
    /// Upper bounds (ms) of the acquire-wait histogram buckets; the last is +inf.
    static constexpr std::array<double, 8> wait_bounds_ms{0.1, 1, 5, 25, 100, 500, 2'500, 1e300};

    int max_size = 0;
    int open = 0;                       ///< connections open or being opened
    int idle = 0;                       ///< open and free
    int busy = 0;                       ///< lent to a caller
    int waiting = 0;                    ///< callers waiting for a connection
    bool server_down = false;           ///< the last connect failed; callers fail fast until retry
    std::uint64_t connects = 0;         ///< successful connects, ever
    std::uint64_t connect_failures = 0; ///< failed connects, ever
    std::uint64_t acquire_timeouts = 0; ///< callers that got pool_exhausted
    std::uint64_t broken_replaced = 0;  ///< connections discarded as broken or timed out
    std::uint64_t expired_replaced = 0; ///< connections closed at max_lifetime
    std::array<std::uint64_t, wait_bounds_ms.size()> acquire_wait_buckets{};
};

} // namespace modelrepo
