// SPDX-License-Identifier: MIT
// The Service: a table of routes (routes/route_table.hpp) filled by each family of them
// (the catalogue, writes, the change stream, the operator's view, readiness), and the
// dispatch every request goes through: the Host, OPTIONS and CORS preflights, 404, 405
// with Allow, the token (Access), the query, the handler; then the answer's ETag (304 on
// If-None-Match), Cache-Control and CORS headers.
#include "service.hpp"

#include <algorithm>

#include "routes/catalogue_routes.hpp"
#include "routes/change_stream.hpp"
#include "routes/openapi.hpp"
#include "routes/operator_routes.hpp"
#include "routes/readiness.hpp"
#include "routes/write_routes.hpp"

namespace modelrepo::serve {

struct Service::Router {
    Router(std::shared_ptr<FallbackRepository> chain, ServiceOptions options)
        : view(std::make_unique<OperatorView>(chain, options.operator_view))
        , catalogue(chain, options.max_slugs)
        , access(std::make_shared<const Access>(access_of(options)))
        , writes(chain)
        , changes(chain, {options.max_streams, options.heartbeat, options.replay_events})
        , readiness(chain,
                    {options.ready_interval, options.ready_stall, std::move(options.extra_metrics)},
                    view.get()) {
        catalogue.add_to(table);
        writes.add_to(table);
        changes.add_to(table);
        add_operator_routes(table, *view);
        readiness.add_to(table);
        table.add({"GET",
                   "/v1/openapi.json",
                   Lane::io,
                   Scope::read,
                   "this API as OpenAPI 3.1, made from serve's route table",
                   [this](const RouteCall&) {
                       return Response{200, "application/json", *openapi.load(), {}, {}, {}};
                   },
                   {},
                   {"OpenApi"}});
        openapi = std::make_shared<const std::string>(openapi_json(table, *access.load()));
    }

    // Destroyed from the last: the prober (it tells the view), the streams, the view.
    static AccessOptions access_of(const ServiceOptions& options) {
        AccessOptions a = options.access;
        if (options.token)
            a.write_tokens.push_back(*options.token);
        return a;
    }

    std::unique_ptr<OperatorView> view;
    CatalogueRoutes catalogue;
    /// Replaced whole by reload() (SIGHUP): each request reads the one in force.
    std::atomic<std::shared_ptr<const Access>> access;
    WriteRoutes writes;
    ChangeStream changes;
    Readiness readiness;
    RouteTable table;
    /// GET /v1/openapi.json, made once the table is complete (again at reload()).
    std::atomic<std::shared_ptr<const std::string>> openapi;
};

Service::Service(std::shared_ptr<FallbackRepository> chain, ServiceOptions options)
    : router_(std::make_unique<Router>(std::move(chain), std::move(options))) {}

Service::~Service() = default;

namespace {

/// A catalogue read may be kept by a shared cache this long, and served stale by it while
/// serve cannot answer (restarting, down) for up to a day.
constexpr std::string_view public_cache =
    "public, max-age=1, stale-while-revalidate=10, stale-if-error=86400";

/// A failed answer to a caller without a token on a discreet listener: its code kept, its
/// message (which may name a host, a role, a database) replaced.
void keep_details(Response& answer) {
    auto body = nlohmann::json::parse(answer.body, nullptr, false);
    std::string code = "unavailable";
    if (body.is_object() && body.contains("error") && body["error"].is_object() &&
        body["error"].contains("code") && body["error"]["code"].is_string())
        code = body["error"]["code"].get<std::string>();
    answer.body = error_body(code, "the catalogue cannot be read now (" + code +
                                       "); why is told to token holders, in /v1/status");
}

} // namespace

Response Service::handle(const Request& request) {
    const std::shared_ptr<const Access> access = router_->access.load();
    if (auto refused = access->check_host(request))
        return *refused;
    Response answer = dispatch(request, *access);
    access->add_cors(request, answer);
    return answer;
}

void Service::set_admin_url(std::string url) {
    router_->view->set_admin_url(std::move(url));
}

void Service::reload(AccessOptions options) {
    auto access = std::make_shared<const Access>(std::move(options));
    router_->openapi.store(
        std::make_shared<const std::string>(openapi_json(router_->table, *access)));
    router_->access.store(std::move(access));
}

Response Service::dispatch(const Request& request, const Access& access) {
    const RouteTable& table = router_->table;
    const std::string& path = request.path;
    if (request.method == "OPTIONS" && (path == "*" || table.knows(path))) {
        if (auto preflight = access.preflight(request, table.allow(path)))
            return *preflight;
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
    const Route& route = *match->route;
    if (auto refused = access.admit(request, route))
        return *refused;
    const bool head = request.method == "HEAD";
    std::vector<QueryParam> query;
    if (route.method == "GET") {
        auto parsed = parse_query(request.query, /*plus_is_space=*/true);
        if (!parsed)
            return error_answer(400, "invalid_argument",
                                "the query string has a malformed %-escape");
        query = std::move(*parsed);
    }
    const bool discreet = access.discreet_for(request);
    Response answer = route.handler(RouteCall{request, query, match->param, head, discreet});
    if (discreet && route.scope == Scope::read && answer.status >= 500 && !answer.on_stream)
        keep_details(answer); // /readyz keeps its own (Readiness)
    if (route.scope == Scope::read && route.method == "GET")
        cache_headers(request, route, access, answer);
    return answer;
}

void Service::cache_headers(const Request& request, const Route& route, const Access& access,
                            Response& answer) const {
    if ((answer.status != 200 && answer.status != 304) || answer.on_stream)
        return;
    auto has = [&](std::string_view name) {
        return std::any_of(answer.headers.begin(), answer.headers.end(),
                           [&](const auto& h) { return h.first == name; });
    };
    if (!has("Cache-Control"))
        answer.headers.emplace_back("Cache-Control", access.is_public(route)
                                                         ? std::string(public_cache)
                                                         : "private, no-cache");
    auto tag = std::find_if(answer.headers.begin(), answer.headers.end(),
                            [](const auto& h) { return h.first == "ETag"; });
    if (tag == answer.headers.end()) {
        if (answer.parts || answer.shared_body)
            return; // a route that answers in parts, or shares a body, sets its own tag
        answer.headers.emplace_back("ETag", etag_of(answer.body));
        tag = answer.headers.end() - 1;
    }
    if (answer.status == 200 && etag_matches(request.if_none_match, tag->second)) {
        answer.status = 304;
        answer.body.clear();
        answer.parts = nullptr;
        answer.shared_body.reset();
    }
}

Lane Service::lane(const Request& request) const {
    auto match = router_->table.find(request.method, request.path);
    return match ? RouteTable::lane_of(*match->route, request)
                 : Lane::io; // else a 404, 405, OPTIONS
}

std::size_t Service::streams() const {
    return router_->changes.streams();
}

const RouteTable& Service::routes() const {
    return router_->table;
}

} // namespace modelrepo::serve
