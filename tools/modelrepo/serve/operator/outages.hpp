// SPDX-License-Identifier: MIT
// The events of one fault folded into one outage per source: its origin down
// (source_down), its breaker open, a backup serving for it (the first source), its copy
// stale. What the alerts (alerts.cpp) and the status page's incidents (operator_view.cpp)
// both read, so that they agree on when an outage began and ended.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::serve {

class OutageFold {
public:
    /// One outage: what holds it down.
    struct Outage {
        std::string source;
        std::string alertname; ///< "ModelrepoSourceDown" or "ModelrepoCopyStale"
        bool health_down = false, breaker_open = false, backup_serving = false, stale = false;
        bool down() const { return health_down || breaker_open || backup_serving || stale; }
    };
    /// What an event did to an outage.
    struct Change {
        std::string key; ///< "down:SOURCE" or "stale:SOURCE"
        bool began = false, ended = false;
        const Outage* outage = nullptr; ///< valid until the next apply()
    };

    /// `primary`: the chain's first source (a backup serving is its outage).
    explicit OutageFold(std::string primary)
        : primary_(std::move(primary)) {}

    /// The outages `event` touched (the flags it set or cleared), each saying whether it
    /// began or ended with it. Dead letters touch none (they are notices).
    std::vector<Change> apply(const FallbackEvent& event);

    /// The source an event's outage is about: a backup serving is the primary's.
    std::string source_of(const FallbackEvent& event) const;

private:
    Outage& outage(const std::string& key, const std::string& source, const char* alertname);

    std::string primary_;
    std::map<std::string, Outage> outages_;
};

} // namespace modelrepo::serve
