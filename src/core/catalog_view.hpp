// SPDX-License-Identifier: MIT
// Helpers that turn a Snapshot's separate lists into the joined values the
// ModelRepository calls return.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <modelrepo/snapshot.hpp>

namespace modelrepo::detail {

/// Every model of `snapshot`, with its provider and status filled in, ordered by slug.
std::vector<Model> assemble_models(const Snapshot& snapshot);

/// What is wrong with a status a caller wants to write (empty slug, availability or
/// error rate outside 0..1, negative or non-finite latency); nullopt when nothing.
std::optional<std::string> status_problem(const ModelStatus& status);

/// Counts and per-health breakdown of `snapshot`; `source` is left empty.
SystemStats compute_stats(const Snapshot& snapshot);

} // namespace modelrepo::detail
