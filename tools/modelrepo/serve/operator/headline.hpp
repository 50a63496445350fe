// SPDX-License-Identifier: MIT
// What the status page's first screen says, in words a person acts on: what is wrong (or
// that all is well), since when, what to run to fix it, and what serves meanwhile. Made
// from the same state the alerts and the sources table show, so that they agree.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

namespace modelrepo::serve {

struct Headline {
    /// "ok"; "minor" (a backup is down, a copy stale, statuses from the future); "major"
    /// (the first source is down: its copy or a backup answers); "critical" (nothing does).
    std::string level = "ok";
    std::string headline;  ///< one sentence: "The primary's login fails: …"
    std::string detail;    ///< the cause in the source's words
    std::string fix;       ///< what to run or change
    std::string meanwhile; ///< what answers reads meanwhile
    std::optional<Timestamp> since;
    std::optional<Errc> errc;
    std::string source; ///< the source it is about
};

/// What answers reads while `m.sources[index]` is down: its own last-known copy, another
/// source of the chain, or nothing.
std::string meanwhile_of(const FallbackMetrics& m, std::size_t index);

/// The first screen's words. `diagnosis`: the doctor's last finding (/v1/diagnosis's, or
/// null); `future`: statuses stored with a future date (or null); `answering`: some source
/// answers reads; `up_since`: when all has been well from (serve's start, else the first
/// source's recovery).
Headline headline_of(const FallbackMetrics& m, const nlohmann::ordered_json& diagnosis,
                     const nlohmann::ordered_json& future, bool answering, Timestamp up_since);

nlohmann::ordered_json to_json(const Headline& headline);

} // namespace modelrepo::serve
