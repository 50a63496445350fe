// SPDX-License-Identifier: MIT
// The opener of postgresql:// and postgres:// URIs (open() has taken the durable layer's
// parameters out already).
#include <modelrepo/postgres_repository.hpp>

#include "../core/registration.hpp"

namespace modelrepo::detail {

Result<std::shared_ptr<ModelRepository>> open_postgres(std::string_view text, const Uri&) {
    auto repo = PostgresRepository::open(text);
    if (!repo)
        return std::move(repo).error();
    return std::shared_ptr<ModelRepository>(std::move(repo).value());
}

} // namespace modelrepo::detail
