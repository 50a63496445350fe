// SPDX-License-Identifier: MIT
// What serve shows an operator: the status page (GET /, embedded at build time), the
// incident timeline (GET /v1/events, /v1/events/stream), the doctor's diagnosis of the
// first source (GET /v1/diagnosis) and one JSON of everything the page draws
// (GET /v1/status). Beside the Service, which routes to it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "../http/http_server.hpp"

namespace modelrepo::serve {

struct OperatorOptions {
    /// The chain's first source as given (its URI, for the doctor); empty: no diagnosis.
    std::string first_source;
    /// A superuser URL for the doctor's verifier, pg_hba and reload checks
    /// (`--admin-url-file`); empty: the checks the role itself may make.
    std::string admin_url;
    /// The timeline keeps this many events (older ones are dropped).
    std::size_t keep_events = 500;
    /// The backup-share chart: one point this often, for 15 minutes.
    std::chrono::milliseconds sample_every{10'000};
    /// The doctor runs at most this often, and only while the first source fails to
    /// connect or log in.
    std::chrono::milliseconds diagnosis_every{30'000};
    /// A comment on every event stream this often (keeps proxies from closing it).
    std::chrono::milliseconds heartbeat{15'000};
    /// /v1/events/stream clients at once; more get 429.
    std::size_t max_streams = 64;
    /// Told of every event of the chain, in order (the alert webhooks).
    std::function<void(const FallbackEvent&)> on_event;
};

/// A source's health as /v1/status and /readyz show it: `{"state", "errc", "cause",
/// "since", "seen_by", "copy_stale", "dead_letters"}`.
nlohmann::ordered_json health_json(const SourceHealth& health);

/// Thread-safe: routes are called from several threads; the chain's events arrive on its
/// event thread; a thread of its own samples, diagnoses and sends heartbeats.
class OperatorView {
public:
    /// Subscribes to the chain's events (FallbackRepository::subscribe: the one subscriber).
    OperatorView(std::shared_ptr<FallbackRepository> chain, OperatorOptions options);
    ~OperatorView();
    OperatorView(const OperatorView&) = delete;
    OperatorView& operator=(const OperatorView&) = delete;

    /// The page's files: "/", "/status.css", "/status.js"; nullopt for another path.
    static std::optional<Response> page(const std::string& path);
    /// The latest readiness check (the Service's prober, once a second): /v1/status
    /// answers from it and never waits for a source.
    void on_ready(const nlohmann::ordered_json& ready);
    Response status() const;
    /// `since`: only events after this id.
    Response events(long long since) const;
    Response event_stream();
    Response diagnosis() const;
    /// A new superuser URL for the doctor's next run (serve's SIGHUP). Thread-safe.
    void set_admin_url(std::string url);
    /// GET /api/v2/summary.json: Statuspage's summary (statuspage.hpp); `host_header` the
    /// request's Host (the page's URL in it).
    Response statuspage(const std::string& host_header) const;

private:
    /// The timeline, samples, page JSON and the threads that keep them (operator_view.cpp).
    struct Watch;
    std::unique_ptr<Watch> watch_;
};

} // namespace modelrepo::serve
