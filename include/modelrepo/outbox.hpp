// SPDX-License-Identifier: MIT
/// @file
/// The outbox (`outbox=PATH` on a source URI, see `open()`): status writes the source could
/// not take for an outage-class cause, kept durably in an SQLite file and applied when it
/// can. `OutboxControl` is how a program looks at it and drains it:
/// `repo->capability<OutboxControl>()`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <modelrepo/error.hpp>
#include <modelrepo/progress.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo {

/// Something the outbox did, for alerts (`OutboxControl::on_outbox_event`).
struct OutboxEvent {
    enum class Kind {
        replayed,    ///< a queued batch was applied
        dead_letter, ///< the source refused a queued batch for good: kept aside, with why
    };
    Kind kind;
    std::int64_t batch = 0;    ///< the batch's number in the outbox
    std::int64_t statuses = 0; ///< how many statuses it held
    std::string error;         ///< why it was refused (dead_letter)
    Timestamp at{};
};

/// What a drain of the outbox did.
struct OutboxDrain {
    std::int64_t batches = 0;      ///< batches applied
    std::int64_t statuses = 0;     ///< statuses in them
    std::int64_t dead_letters = 0; ///< batches moved to the dead letters
    std::int64_t remaining = 0;    ///< statuses still pending
};

/// The outbox's contents.
struct OutboxState {
    std::filesystem::path path;
    std::int64_t batches = 0;  ///< pending
    std::int64_t statuses = 0; ///< pending, in those batches
    std::optional<Timestamp> oldest;
    std::int64_t dead_letters = 0;
    std::string last_error; ///< why the oldest batch's last attempt failed
    struct DeadLetter {
        std::int64_t batch = 0;
        Timestamp queued_at{}, failed_at{};
        std::int64_t statuses = 0;
        std::string error;
    };
    std::vector<DeadLetter> recent_dead_letters; ///< the last 100, newest first
};

/// A repository's outbox. Thread-safe; a background thread of the outbox replays what it
/// holds as soon as the source takes writes again, without traffic.
class OutboxControl {
public:
    /// The outbox's contents (read from its file). Errors: `Errc::io_error`.
    virtual Result<OutboxState> outbox_state() const = 0;
    /// Applies what the outbox holds now, on the calling thread. `progress`, when given,
    /// is told after each group of batches ("statuses applied", of those pending when the
    /// drain began). Errors: the source's, while it still cannot take the oldest batch.
    virtual Result<OutboxDrain> drain_outbox(const ProgressFn& progress = {}) = 0;
    /// Called on the outbox's thread for each batch replayed or moved to the dead letters.
    virtual void on_outbox_event(std::function<void(const OutboxEvent&)> listener) = 0;

protected:
    ~OutboxControl() = default;
};

} // namespace modelrepo
