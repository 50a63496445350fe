// SPDX-License-Identifier: MIT
// The write route: PUT /v1/statuses (its token is Access's to check). The statuses go to
// the chain's first source (its outbox keeps them when it is down: 202).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <modelrepo/fallback_repository.hpp>

#include "route_table.hpp"

namespace modelrepo::serve {

/// Thread safety: its calls may run on several threads at once.
class WriteRoutes {
public:
    explicit WriteRoutes(std::shared_ptr<FallbackRepository> chain);
    void add_to(RouteTable& table);

    Response put_statuses(const Request& request);

private:
    std::shared_ptr<FallbackRepository> chain_;
};

} // namespace modelrepo::serve
