// SPDX-License-Identifier: MIT
#include "capabilities.hpp"

namespace modelrepo::detail {

Result<std::vector<Result<std::int64_t>>>
StatusWriter::apply_each(std::span<const std::vector<ModelStatus>> batches) {
    std::vector<Result<std::int64_t>> out;
    out.reserve(batches.size());
    for (const auto& batch : batches) {
        auto applied = apply_statuses(batch);
        bool outage = !applied && classify(applied.error()).outage;
        out.push_back(std::move(applied));
        if (outage)
            break; // the rest would fail the same way: they wait for the next drain
    }
    return out;
}

} // namespace modelrepo::detail
