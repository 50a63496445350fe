// SPDX-License-Identifier: MIT
// The status page's incidents: each outage of a source (OutageFold: its origin down, its
// breaker open, a backup serving for it) from the event that began it to the one that
// ended it, with the events between as its updates. What the page's incident list and
// history bars draw, and what Statuspage's summary.json lists as open incidents.
#pragma once

#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "outages.hpp"

namespace modelrepo::serve {

struct Incident {
    struct Update {
        Timestamp at;
        std::string event; ///< the event's kind ("source_down", …) or "diagnosis", "resolved"
        std::string body;
    };
    long long id = 0;
    std::string source;
    Timestamp started{}, updated{};
    std::optional<Timestamp> resolved;
    std::optional<Errc> errc; ///< the origin's latest cause (source_down), else none
    std::string cause;
    bool identified = false;     ///< the doctor named the cause
    std::vector<Update> updates; ///< oldest first
};

/// Thread-safe.
class IncidentBook {
public:
    explicit IncidentBook(std::string primary)
        : fold_(std::move(primary)) {}

    /// Opens, updates or resolves the incident of the event's source.
    void apply(const FallbackEvent& event);
    /// The doctor's finding for `source`'s open incident: an update, and it is identified.
    void diagnosed(const std::string& source, const std::string& finding, Timestamp at);

    /// The open incidents, and those resolved within `recent` (newest first).
    std::vector<Incident> list(std::chrono::seconds recent = std::chrono::hours(1)) const;
    /// The open incident of `source`, if any.
    std::optional<Incident> open_of(const std::string& source) const;

    /// `{"id", "source", "started", "resolved", "errc", "cause", "identified", "updates":
    /// [{"at", "event", "body"}]}`, for /v1/status.
    static nlohmann::ordered_json to_json(const Incident& incident);

private:
    Incident* open_incident(const std::string& source);

    mutable std::mutex mutex_; ///< guards everything below
    OutageFold fold_;
    std::deque<Incident> incidents_; ///< oldest first; at most `keep`
    long long next_id_ = 1;
    static constexpr std::size_t keep = 50;
};

} // namespace modelrepo::serve
