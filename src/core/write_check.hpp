// SPDX-License-Identifier: MIT
// The one check every write path makes of a batch of statuses before it writes or queues
// anything (the memory backend, PostgreSQL's upsert and import, the outbox's defer): each
// status's own values (catalog_view.hpp's check_status) and its date against the clock.
// One function, one message form: "statuses[3]: availability must be within 0..1;
// nothing was written". Library-internal.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string_view>

#include <modelrepo/error.hpp>
#include <modelrepo/model_repository.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo::detail {

struct WriteCheck {
    /// Statuses dated further ahead of `now` are refused (a URI's max_clock_skew).
    std::chrono::milliseconds max_skew = default_max_clock_skew;
    /// The source named in the error.
    std::string_view source;
    /// What the caller can rely on when refused: "nothing was written".
    std::string_view outcome = "nothing was written";
    Timestamp now = Clock::now();
};

/// The proof, passed down in `WriteOptions::checked`, that a layer ran `check_write` on
/// this batch (these statuses at this address) with a skew no wider than `max_skew`.
struct CheckedBatch {
    const ModelStatus* data = nullptr;
    std::size_t size = 0;
    std::chrono::milliseconds max_skew{};
};

/// Whether `options` vouches that `statuses` passed `check_write` with a skew no wider
/// than `max_skew`: then a layer below the door trusts them.
bool vouched(const WriteOptions& options, std::span<const ModelStatus> statuses,
             std::chrono::milliseconds max_skew) noexcept;

/// nullopt when every status of `statuses` may be written; else an invalid_argument Error
/// naming the first that may not (its index, member and what is wrong) and `outcome`.
std::optional<Error> check_write(std::span<const ModelStatus> statuses, const WriteCheck& check);

/// The refusal of status `index` for `problem`, in check_write's form (for a write path's
/// own checks after it, such as a model the catalogue does not know).
Error refused_status(std::size_t index, std::string_view problem, const WriteCheck& check);

} // namespace modelrepo::detail
