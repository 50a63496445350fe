// SPDX-License-Identifier: MIT
// Helpers that turn a Snapshot's separate lists into the joined values the
// ModelRepository calls return.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <modelrepo/snapshot.hpp>

namespace modelrepo::detail {

/// Every model of `snapshot`, with its provider and status filled in, ordered by slug.
std::vector<Model> assemble_models(const Snapshot& snapshot);

/// What is wrong with a status by itself: the member and what of it.
struct StatusProblem {
    std::string_view member; ///< "model", "availability", "error_rate", "latency_ms"
    std::string_view what;   ///< "must be within 0..1"
};
/// Longest model slug or region a status may hold.
inline constexpr std::size_t max_status_text_bytes = 1024;
/// The one check of a status's own values (empty slug; a NUL, invalid UTF-8 or more than
/// `max_status_text_bytes` in its slug or region; availability or error rate outside 0..1;
/// negative or non-finite latency) that the snapshot reader, the writers and the outbox
/// share: what a database would refuse is refused before anything is written or queued.
/// nullopt when nothing is wrong.
std::optional<StatusProblem> check_status(const ModelStatus& status);
/// `check_status` as words for a message: "availability must be within 0..1".
std::optional<std::string> status_problem(const ModelStatus& status);

/// Counts and per-health breakdown of `snapshot`; `source` is left empty.
SystemStats compute_stats(const Snapshot& snapshot);

} // namespace modelrepo::detail
