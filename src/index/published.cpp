// SPDX-License-Identifier: MIT
#include "published.hpp"

namespace modelrepo::detail {

std::uint64_t next_publication_number() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

} // namespace modelrepo::detail
