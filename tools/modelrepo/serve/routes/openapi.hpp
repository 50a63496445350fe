// SPDX-License-Identifier: MIT
// GET /v1/openapi.json: the OpenAPI 3.1 description of serve's API, made from the route
// table (each route's method, pattern, scope, summary and RouteDoc), so the two cannot
// drift. The schemas of the bodies are written here once, beside the forms in
// json_form.cpp they describe.
#pragma once

#include <string>

#include "access.hpp"
#include "route_table.hpp"

namespace modelrepo::serve {

/// The document for `table` as served with `access` (which routes need a token), as JSON.
std::string openapi_json(const RouteTable& table, const Access& access);

/// The components' schemas (JSON text): what a RouteDoc's `schema` and `body` name.
std::string_view openapi_schemas() noexcept;

} // namespace modelrepo::serve
