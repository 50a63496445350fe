// SPDX-License-Identifier: MIT
// The routes of `modelrepo serve`: requests in, answers out, over one chain of sources.
// It knows HTTP only as the transport-neutral Request/Response of http/http_server.hpp, so
// every route can be called directly (tests/unit/test_serve.cpp) as well as over a
// socket.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <modelrepo/fallback_repository.hpp>

#include "http/http_server.hpp"
#include "operator/operator_view.hpp"
#include "routes/access.hpp"
#include "routes/answers.hpp"
#include "routes/route_table.hpp"

namespace modelrepo::serve {

struct ServiceOptions {
    /// Tokens, scopes, Host, CORS (routes/access.hpp).
    AccessOptions access;
    /// One more write token (a test's; serve's are in `access`).
    std::optional<std::string> token;
    std::size_t max_streams = 256;               ///< GET /v1/changes clients; more: 429
    std::chrono::milliseconds heartbeat{15'000}; ///< a comment on every stream this often
    /// The last events kept for streams that resume (Last-Event-ID or ?since=VERSION).
    std::size_t replay_events = 10'000;
    std::size_t max_slugs = 1'000; ///< ?slug= values in one request
    /// GET /readyz answers the last of checks made this often on a thread of its own, so
    /// that it never waits for a database; a check running longer than `ready_stall`
    /// makes it "degraded" (with how long).
    std::chrono::milliseconds ready_interval{1'000};
    std::chrono::milliseconds ready_stall{5'000};
    /// More metrics for GET /metrics (the transport's, a publisher's).
    std::function<std::vector<MetricFamily>()> extra_metrics;
    /// The status page's: the first source's URI for the doctor, an admin URL, alerts.
    OperatorOptions operator_view;
};

/// Routes (the table: routes(); each family in serve/routes/):
///   GET /v1/stats                       SystemStats + "backup"
///   GET /v1/models[?slug=A&slug=B]      all, or these in the order asked
///   GET /v1/models/{slug}               one (404 when unknown)
///   GET /v1/statuses[?health=H]
///   GET /v1/snapshot                    the catalogue as snapshot JSON (ETag, 304)
///   PUT /v1/statuses                    Authorization: Bearer TOKEN; JSON array
///   GET /v1/changes[?since=VERSION]     server-sent events from watch(); resumes after
///                                       Last-Event-ID (or since) from the events kept,
///                                       else starts with `event: resync`
///   GET /metrics, /healthz, /readyz
///   GET /, /status.css, /status.js      the status page (embedded; OperatorView)
///   GET /v1/status                      everything the page draws, from memory
///   GET /v1/events[?since=ID]           the incident timeline (the chain's events)
///   GET /v1/events/stream               the same as server-sent events, as they happen
///   GET /v1/diagnosis                   the doctor on the first source's last failure
///   GET /v1/openapi.json                this API as OpenAPI 3.1, made from the table
///
/// Thread safety: handle() is called from several threads at once.
/// Lifetime: the streams it holds are connections of the HttpServer that called it:
/// shut that server down, destroy the Service, then the server.
class Service {
public:
    Service(std::shared_ptr<FallbackRepository> chain, ServiceOptions options);
    /// Ends every stream and the subscription behind them.
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    Response handle(const Request& request);

    /// New tokens, Host names and origins (serve's SIGHUP): requests that arrive after it
    /// returns are admitted by them; /v1/openapi.json's security follows. Thread-safe.
    void reload(AccessOptions access);
    /// A new superuser URL for the doctor behind /v1/diagnosis (serve's SIGHUP). Thread-safe.
    void set_admin_url(std::string url);

    /// Where `request` may run (HttpServer's ServerOptions::lane; never blocks): `io` for
    /// what is answered from memory (/healthz, /readyz, /metrics, OPTIONS, errors, and
    /// reads when the chain answers from memory), `write` for PUT, `read` for the rest.
    Lane lane(const Request& request) const;

    /// Streams open now.
    std::size_t streams() const;

    /// Every route: method, pattern, lane, scope, summary, handler.
    const RouteTable& routes() const;

private:
    Response dispatch(const Request& request, const Access& access);
    /// ETag (and 304), Cache-Control: on a catalogue read's answer.
    void cache_headers(const Request& request, const Route& route, const Access& access,
                       Response& answer) const;

    struct Router; ///< the route families and the table that dispatches to them
    std::unique_ptr<Router> router_;
};

} // namespace modelrepo::serve
