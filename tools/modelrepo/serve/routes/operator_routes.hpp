// SPDX-License-Identifier: MIT
// The operator's routes, answered from memory by the OperatorView: the status page and its
// files, /v1/status, the timeline (/v1/events, as a stream too), the doctor's diagnosis and
// Statuspage's /api/v2/summary.json.
#pragma once

#include "../operator/operator_view.hpp"
#include "route_table.hpp"

namespace modelrepo::serve {

void add_operator_routes(RouteTable& table, OperatorView& view);

} // namespace modelrepo::serve
