// SPDX-License-Identifier: MIT
// Helpers that turn a Snapshot's separate lists into the joined values the
// ModelRepository calls return.
#pragma once

#include <chrono>
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
/// A status dated further ahead of `now` than `max_skew`, as words for a message ("checked_at
/// 2100-01-01T00:00:00Z is 73 years ahead of this clock; …"); nullopt when it is not.
/// Write paths refuse it; reading a snapshot or a backup does not.
std::optional<std::string> future_problem(const ModelStatus& status, Timestamp now,
                                          std::chrono::milliseconds max_skew);
/// What a write path checks of a status: `status_problem`, then `future_problem`.
std::optional<std::string> write_problem(const ModelStatus& status, Timestamp now,
                                         std::chrono::milliseconds max_skew);

/// Counts and per-health breakdown of `snapshot`; `source` is left empty.
SystemStats compute_stats(const Snapshot& snapshot);

} // namespace modelrepo::detail
