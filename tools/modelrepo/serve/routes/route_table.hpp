// SPDX-License-Identifier: MIT
// serve's routes as data: each one's method, path pattern, lane, scope and handler. The
// Service dispatches through it (404, 405 with Allow, HEAD, OPTIONS), the transport asks
// it for a request's lane, and the documentation of the API is made from it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <modelrepo/uri.hpp>

#include "../http/http_server.hpp"

namespace modelrepo::serve {

/// Who may call a route (Access): with read tokens configured, `read` and `operate` need
/// a read or write token (`read` not with --public-catalogue); `write` always needs a
/// write token; `none` never needs one.
enum class Scope {
    read,    ///< the catalogue: models, statuses, stats, the snapshot, changes
    write,   ///< PUT /v1/statuses
    operate, ///< the status page and what it reads, metrics
    none,    ///< /healthz, /readyz: for a load balancer or an orchestrator
};
std::string_view to_string(Scope scope) noexcept;

/// What a handler is given: the request, its query (parsed; empty for PUT), the part of the
/// path the pattern's `{name}` matched, and whether it is a HEAD (the transport drops the
/// body; a stream answers its header only).
struct RouteCall {
    const Request& request;
    const std::vector<QueryParam>& query;
    std::string_view param;
    bool head = false;
    /// The caller holds no token and the listener keeps details to token holders
    /// (AccessOptions::discreet): answer without addresses, roles, database names or
    /// error messages.
    bool discreet = false;
};

/// A query parameter, for the API's documentation.
struct QueryDoc {
    QueryDoc(std::string_view name_, std::string_view description_, bool repeated_ = false,
             std::string_view type_ = "string")
        : name(name_)
        , description(description_)
        , repeated(repeated_)
        , type(type_) {}
    std::string_view name;
    std::string_view description;
    bool repeated = false;
    std::string_view type = "string"; ///< "string", "integer"
};

/// What the API's documentation (routes/openapi.cpp) says of a route beyond its summary.
struct RouteDoc {
    RouteDoc() = default;
    RouteDoc(std::string_view schema_, std::string_view content_type_ = "application/json",
             std::vector<QueryDoc> query_ = {}, std::string_view body_ = {},
             std::vector<int> also_ = {})
        : schema(schema_)
        , content_type(content_type_)
        , query(std::move(query_))
        , body(body_)
        , also(std::move(also_)) {}
    /// The 200 (or 202) answer's schema in components ("Stats"); empty: none.
    std::string_view schema;
    std::string_view content_type = "application/json";
    std::vector<QueryDoc> query;
    /// The request body's schema (a PUT's).
    std::string_view body;
    /// The statuses it may answer besides 200, the common errors (401, 403, 421, 429, 503)
    /// and those of its scope: 400, 404, 202, 304, 504.
    std::vector<int> also;
};

struct Route {
    std::string_view method;  ///< "GET" (HEAD and OPTIONS come with it) or "PUT"
    std::string_view pattern; ///< "/v1/stats", or "/v1/models/{slug}": the rest of the path
    Lane lane = Lane::io;     ///< where it runs (see `in_memory`)
    Scope scope = Scope::read;
    std::string_view summary; ///< one line, for the API's documentation
    std::function<Response(const RouteCall&)> handler;
    /// For a `read` route: whether this request is answered from memory now, at a cost
    /// that does not grow with the catalogue (then it runs on the I/O thread). Unset: never.
    std::function<bool(const Request&)> in_memory;
    RouteDoc doc;
};

/// Thread safety: built once, then read from any thread.
class RouteTable {
public:
    void add(Route route);

    /// The route of `method` for `path` ("HEAD" finds the GET route), and what its
    /// pattern's `{name}` matched.
    struct Match {
        const Route* route = nullptr;
        std::string_view param;
    };
    std::optional<Match> find(std::string_view method, std::string_view path) const;
    /// Whether any route has `path`.
    bool knows(std::string_view path) const;
    /// The Allow header's value for `path` ("GET, HEAD, OPTIONS", "…, PUT"); for "*", every
    /// method of the table. Empty for an unknown path.
    std::string allow(std::string_view path) const;
    /// Where `request`, for `route`, runs now.
    static Lane lane_of(const Route& route, const Request& request);

    const std::vector<Route>& routes() const noexcept { return routes_; }

private:
    static bool matches(const Route& route, std::string_view path, std::string_view& param);
    std::vector<Route> routes_;
};

} // namespace modelrepo::serve
