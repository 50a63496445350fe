// SPDX-License-Identifier: MIT
#include "write_check.hpp"

#include <string>

#include "catalog_view.hpp"

namespace modelrepo::detail {

Error refused_status(std::size_t index, std::string_view problem, const WriteCheck& check) {
    std::string message = "statuses[" + std::to_string(index) + "]: ";
    message += problem;
    if (!check.outcome.empty()) {
        message += "; ";
        message += check.outcome;
    }
    Error e = make_error(Errc::invalid_argument, std::move(message));
    e.source = std::string(check.source);
    return e;
}

bool vouched(const WriteOptions& options, std::span<const ModelStatus> statuses,
             std::chrono::milliseconds max_skew) noexcept {
    const CheckedBatch* c = options.checked;
    return c && c->data == statuses.data() && c->size == statuses.size() && c->max_skew <= max_skew;
}

std::optional<Error> check_write(std::span<const ModelStatus> statuses, const WriteCheck& check) {
    for (std::size_t i = 0; i < statuses.size(); ++i)
        if (auto problem = write_problem(statuses[i], check.now, check.max_skew))
            return refused_status(i, *problem, check);
    return std::nullopt;
}

} // namespace modelrepo::detail
