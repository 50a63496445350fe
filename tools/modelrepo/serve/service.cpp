// SPDX-License-Identifier: MIT
// The Service: a table of routes (routes/route_table.hpp) filled by each family of them
// (the catalogue, writes, the change stream, the operator's view, readiness), and the
// dispatch every request goes through: OPTIONS, 404, 405 with Allow, HEAD, the query.
#include "service.hpp"

#include "routes/catalogue_routes.hpp"
#include "routes/change_stream.hpp"
#include "routes/operator_routes.hpp"
#include "routes/readiness.hpp"
#include "routes/write_routes.hpp"

namespace modelrepo::serve {

struct Service::Router {
    Router(std::shared_ptr<FallbackRepository> chain, ServiceOptions options)
        : view(std::make_unique<OperatorView>(chain, options.operator_view))
        , catalogue(chain, options.max_slugs)
        , writes(chain, options.token)
        , changes(chain, {options.max_streams, options.heartbeat, options.replay_events})
        , readiness(chain,
                    {options.ready_interval, options.ready_stall, std::move(options.extra_metrics)},
                    view.get()) {
        catalogue.add_to(table);
        writes.add_to(table);
        changes.add_to(table);
        add_operator_routes(table, *view);
        readiness.add_to(table);
    }

    // Destroyed from the last: the prober (it tells the view), the streams, the view.
    std::unique_ptr<OperatorView> view;
    CatalogueRoutes catalogue;
    WriteRoutes writes;
    ChangeStream changes;
    Readiness readiness;
    RouteTable table;
};

Service::Service(std::shared_ptr<FallbackRepository> chain, ServiceOptions options)
    : router_(std::make_unique<Router>(std::move(chain), std::move(options))) {}

Service::~Service() = default;

Response Service::handle(const Request& request) {
    const RouteTable& table = router_->table;
    const std::string& path = request.path;
    if (request.method == "OPTIONS" && (path == "*" || table.knows(path))) {
        Response answer{204, "text/plain", {}, {}, {}, {}};
        answer.headers.emplace_back("Allow", table.allow(path));
        return answer;
    }
    if (!table.knows(path))
        return error_answer(404, "not_found",
                            "no such path: " + path +
                                " (try /, /v1/stats, /v1/models, /v1/statuses, /v1/changes, "
                                "/v1/status, /v1/events, /metrics, /healthz, /readyz)");
    auto match = table.find(request.method, path);
    if (!match)
        return method_not_allowed(table.allow(path));
    const bool head = request.method == "HEAD";
    std::vector<QueryParam> query;
    if (match->route->method == "GET") {
        auto parsed = parse_query(request.query, /*plus_is_space=*/true);
        if (!parsed)
            return error_answer(400, "invalid_argument",
                                "the query string has a malformed %-escape");
        query = std::move(*parsed);
    }
    return match->route->handler(RouteCall{request, query, match->param, head});
}

Lane Service::lane(const Request& request) const {
    auto match = router_->table.find(request.method, request.path);
    return match ? RouteTable::lane_of(*match->route) : Lane::io; // else a 404, 405, OPTIONS
}

std::size_t Service::streams() const {
    return router_->changes.streams();
}

const RouteTable& Service::routes() const {
    return router_->table;
}

} // namespace modelrepo::serve
