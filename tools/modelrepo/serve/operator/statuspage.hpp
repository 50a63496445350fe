// SPDX-License-Identifier: MIT
// GET /api/v2/summary.json: serve's state in the shape of Atlassian Statuspage's summary,
// which status aggregators read: the page, the overall status (indicator none / minor /
// major / critical), one component per source (operational / degraded_performance /
// partial_outage / major_outage) and the open incidents with their updates.
#pragma once

#include <string>
#include <vector>

#include <modelrepo/modelrepo.hpp>

#include "incidents.hpp"

namespace modelrepo::serve {

/// What the summary is made of.
struct StatuspageInput {
    std::string host;     ///< the machine's name ("modelrepo on HOST")
    std::string page_url; ///< where the status page is ("http://HOST:PORT/")
    Timestamp started{};  ///< serve's start: when the components were made
    const FallbackMetrics* metrics = nullptr;
    bool answering = true;           ///< some source answers reads
    std::vector<Incident> incidents; ///< the open ones count; resolved ones are left out
};

/// A component's Statuspage status for source `index` of `m`: operational; degraded
/// (half-open breaker, copy past max_stale); partial_outage (down while its own copy
/// answers); major_outage (down and nothing of it answers).
std::string component_status(const FallbackMetrics& m, std::size_t index);

/// The summary.json text.
std::string statuspage_summary(const StatuspageInput& input);

} // namespace modelrepo::serve
