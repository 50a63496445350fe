// SPDX-License-Identifier: MIT
// Alerts that reach people: `serve --alert-webhook URL` POSTs one JSON object when a
// source goes down and one "resolved" when it is back, to Slack-compatible incoming
// webhooks or any receiver; `serve --alertmanager URL` posts the same outages to
// Prometheus Alertmanager's v2 API, where teams already route alerts.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::serve {

struct AlertOptions {
    std::vector<std::string> webhooks; ///< receivers' URLs (they may hold a secret: never shown)
    /// Alertmanagers' base URLs (`http://am:9093`); alerts go to `{url}/api/v2/alerts`.
    std::vector<std::string> alertmanagers;
    /// A header sent with every POST, e.g. "Authorization: Bearer …" (`--alert-header-file`).
    std::string secret_header;
    /// Flap damping: a source that goes down again within this long of its last resolved
    /// is alerted only when the interval has passed and it is still down.
    std::chrono::milliseconds interval{60'000};
    /// A recovery is told once it has held this long (a resolved never waits out
    /// `interval`).
    std::chrono::milliseconds resolve_after{3'000};
    /// An outage is alerted this long after it began, with the cause it has settled on
    /// then: a connect cut by the server's restart says `unreachable` a moment before the
    /// login's `auth_failed` says why.
    std::chrono::milliseconds settle{1'000};
    /// Alertmanager: a firing alert is posted again this often, with `endsAt` four times
    /// as far ahead, so that its `resolve_timeout` never ends a long outage early.
    std::chrono::milliseconds resend{60'000};
    std::size_t queue = 64;                           ///< per receiver; more are dropped (counted)
    std::chrono::milliseconds attempt_timeout{5'000}; ///< one POST
    std::chrono::milliseconds deadline{300'000};      ///< an alert is given up after this
    /// Where the `runbook_url` annotations point (a section is appended).
    std::string runbook_base = "https://github.com/modelrepo/modelrepo/blob/main/docs/operating.md";
};

/// What an alert says of one outage.
struct AlertNotice {
    std::string alertname; ///< "ModelrepoSourceDown", "ModelrepoCopyStale", …
    std::string event;     ///< the event that began it ("source_down", …) or "resolved"
    std::string source;
    std::string cause;        ///< what failed, for a person
    std::optional<Errc> errc; ///< its code
    std::string severity;     ///< "critical" or "warning"
    std::string meanwhile;    ///< what serves meanwhile ("" when nothing to say)
    std::string runbook;      ///< the section of the runbook
    Timestamp at{};           ///< when it began (resolved: when it ended)
    Timestamp started{};      ///< when the outage began
};

/// One notice as a webhook receives it: `event`, `source`, `cause`, `errc`, `meanwhile`,
/// `at` (RFC 3339 UTC), `host` and `text` for Slack-compatible receivers.
std::string alert_body(const AlertNotice& notice, const std::string& host);
/// The notice as Alertmanager's v2 API takes it (a JSON array of one alert): labels
/// `alertname`, `source`, `cause`, `severity`; annotations `summary`, `description`,
/// `runbook_url`; `startsAt`, and `endsAt` (`ends_at`: now for a resolved, ahead while
/// firing).
std::string alertmanager_body(const AlertNotice& notice, Timestamp ends_at,
                              const std::string& host);

/// Thread-safe. on_event() only queues (it never waits for a receiver); a thread per
/// receiver delivers, retrying with backoff (1 s doubling to 30 s) until its deadline.
class Alerter {
public:
    /// `primary`: the chain's first source (a backup serving is its outage).
    /// `meanwhile(source)`: what answers reads while `source` is down, in words.
    static Result<std::unique_ptr<Alerter>>
    start(AlertOptions options, std::string primary,
          std::function<std::string(const std::string& source)> meanwhile = {});
    ~Alerter();
    Alerter(const Alerter&) = delete;
    Alerter& operator=(const Alerter&) = delete;

    void on_event(const FallbackEvent& event);
    /// modelrepo_alert_* (queued, sent, failed attempts, given up, dropped, queue length),
    /// by receiver: "1", "2", … the webhooks, "am1", … the Alertmanagers.
    std::vector<MetricFamily> metrics() const;
    /// A new secret header ("Name: value") for the alerts sent from now on (serve's SIGHUP
    /// rereads --alert-header-file). Thread-safe.
    void set_secret_header(std::string header);

private:
    Alerter() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace modelrepo::serve
