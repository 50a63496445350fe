// SPDX-License-Identifier: MIT
// Alerts that reach people: `serve --alert-webhook URL` POSTs one JSON object per state
// change of the chain (the primary down, a backup's breaker open) and a "resolved" when
// it recovers, to Slack-compatible incoming webhooks or any receiver.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::serve {

struct AlertOptions {
    std::vector<std::string> webhooks; ///< receivers' URLs (they may hold a secret: never shown)
    /// A header sent with every POST, e.g. "Authorization: Bearer …" (`--alert-header-file`).
    std::string secret_header;
    /// A key's state is alerted at most once per this long: a breaker that flaps within it
    /// sends its first change, then the state it is in when the interval ends, if different.
    std::chrono::milliseconds interval{60'000};
    std::size_t queue = 64;                           ///< per receiver; more are dropped (counted)
    std::chrono::milliseconds attempt_timeout{5'000}; ///< one POST
    std::chrono::milliseconds deadline{300'000};      ///< an alert is given up after this
};

/// One alert as sent: `event` ("served_by_backup", "breaker_opened", … or "resolved"),
/// `source`, `cause`, `at` (RFC 3339 UTC) and `text` for Slack-compatible receivers.
std::string alert_body(const std::string& event, const std::string& source,
                       const std::string& cause, Timestamp at, const std::string& host);

/// Thread-safe. on_event() only queues (it never waits for a receiver); a thread per
/// receiver delivers, retrying with backoff (1 s doubling to 30 s) until its deadline.
class Alerter {
public:
    /// `primary`: the chain's first source (its outage is one state: down or up).
    static Result<std::unique_ptr<Alerter>> start(AlertOptions options, std::string primary);
    ~Alerter();
    Alerter(const Alerter&) = delete;
    Alerter& operator=(const Alerter&) = delete;

    void on_event(const FallbackEvent& event);
    /// modelrepo_alert_* (queued, sent, failed attempts, given up, dropped, queue length).
    std::vector<MetricFamily> metrics() const;

private:
    Alerter() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace modelrepo::serve
