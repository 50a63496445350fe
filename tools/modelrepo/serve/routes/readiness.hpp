// SPDX-License-Identifier: MIT
// serve's health routes: GET /healthz (alive), GET /readyz (the last of the checks a
// thread of its own makes every second, so that it never waits for a database) and
// GET /metrics (the chain's, the transport's and a publisher's, in Prometheus' format).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <modelrepo/fallback_repository.hpp>

#include "../operator/operator_view.hpp"
#include "route_table.hpp"

namespace modelrepo::serve {

struct ReadinessOptions {
    /// How often /readyz's check runs; one running longer than `stall` makes it "degraded".
    std::chrono::milliseconds interval{1'000};
    std::chrono::milliseconds stall{5'000};
    /// More metrics for GET /metrics (the transport's, a publisher's).
    std::function<std::vector<MetricFamily>()> extra_metrics;
};

/// Thread safety: its calls may run on several threads at once.
class Readiness {
public:
    /// Starts the prober_; each check's body goes to `view` too (the status page's).
    Readiness(std::shared_ptr<FallbackRepository> chain, ReadinessOptions options,
              OperatorView* view);
    /// Stops the prober_ (waiting for a check that runs).
    ~Readiness();
    Readiness(const Readiness&) = delete;
    Readiness& operator=(const Readiness&) = delete;

    void add_to(RouteTable& table);
    /// The last check, how old it is, and whether one has been running too long; never
    /// waits for one.
    Response ready_answer(bool discreet);
    Response metrics();

private:
    void probe();
    /// One readiness check (on the prober_'s thread): it may wait for the first source.
    std::pair<int, nlohmann::ordered_json> ready();

    std::shared_ptr<FallbackRepository> chain_;
    ReadinessOptions options_;
    OperatorView* view_;
    std::string primary_;
    std::mutex ready_mutex_; ///< guards all below
    std::condition_variable ready_wake_;
    std::optional<std::pair<int, nlohmann::ordered_json>> last_ready_; ///< status and body
    std::chrono::steady_clock::time_point ready_checked_{}, ready_started_{};
    bool probing_ = false;
    bool ready_stopping_ = false;
    std::thread prober_;
};

} // namespace modelrepo::serve
