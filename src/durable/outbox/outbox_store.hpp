// SPDX-License-Identifier: MIT
// OutboxStore: status writes the database could not take, kept durably in an SQLite file
// (WAL, synchronous=FULL) until they can be applied. The file behind `outbox=PATH`.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <modelrepo/error.hpp>
#include <modelrepo/types.hpp>

struct sqlite3;

namespace modelrepo::detail {

/// Thread-safe (one mutex around the SQLite handle); several processes may share a file
/// (SQLite's locking keeps each batch whole; both drain, and a batch applied twice is
/// harmless: an upsert never moves a status back in time).
class OutboxStore {
public:
    /// Opens or creates the file and checks it. `source`: the identity of the source whose
    /// writes it keeps (`StatusWriter::outbox_identity()`): a new file records it, a file
    /// that records another is refused, so that one database's writes are never replayed
    /// into another ("" binds nothing). A file of an earlier modelrepo, which recorded
    /// none, is bound to the first source that opens it. Errors: `Errc::io_error` naming
    /// the file (unwritable, corrupt, not an outbox), `Errc::invalid_argument` for a file
    /// that belongs to another source.
    static Result<std::unique_ptr<OutboxStore>> open(const std::filesystem::path& path,
                                                     std::int64_t max_statuses,
                                                     const std::string& source = "");
    ~OutboxStore();
    OutboxStore(const OutboxStore&) = delete;
    OutboxStore& operator=(const OutboxStore&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }

    /// Commits the batch to the file (fsync'ed when this returns). Errors: `Errc::outbox_full`
    /// past the limit, `Errc::disk_full`, `Errc::io_error` when it could not be made durable.
    Result<std::int64_t> enqueue(std::span<const ModelStatus> statuses);

    struct Batch {
        std::int64_t id = 0;
        Timestamp queued_at{};
        std::vector<ModelStatus> statuses;
        std::int64_t count = 0; ///< as stored (statuses is empty when it does not read back)
        int attempts = 0;
        /// Set when the stored text does not read back as valid statuses (edited or
        /// damaged): why. Such a batch is dead-lettered, never applied nor left to wedge.
        std::optional<std::string> unreadable;
    };
    /// The oldest pending batches, at most `limit`, oldest first (an unreadable one among
    /// them with `unreadable` set).
    Result<std::vector<Batch>> oldest(int limit);
    /// Removes batches once the database committed them (one commit for all).
    Result<void> remove(std::span<const std::int64_t> ids);
    /// Moves a batch the database refuses for good to the dead letters, with why; `only`:
    /// the dead letter holds these statuses of it (the others were applied).
    Result<void> bury(const Batch& batch, const std::string& why,
                      std::optional<std::span<const ModelStatus>> only = std::nullopt);
    /// Counts a failed attempt on a batch (and why), for `modelrepo outbox`.
    Result<void> note_attempt(std::int64_t id, const Error& error);

    struct State {
        std::int64_t batches = 0;
        std::int64_t statuses = 0;
        std::optional<Timestamp> oldest;
        std::int64_t dead_letters = 0;
        std::string last_error; ///< of the oldest batch's last attempt
    };
    Result<State> state();
    struct DeadLetter {
        std::int64_t id = 0;
        Timestamp queued_at{}, failed_at{};
        std::int64_t statuses = 0;
        std::string error;
    };
    Result<std::vector<DeadLetter>> dead_letters(int limit = 100);

private:
    OutboxStore(std::filesystem::path path, sqlite3* db, std::int64_t max_statuses);
    /// An error naming the file and SQLite's cause: `Errc::disk_full` when the disk is
    /// full, else `Errc::io_error`.
    Error failure(const std::string& what) const;
    Error failure_and_rollback(const std::string& what);
    /// Records `source` as the file's owner, or refuses a file owned by another.
    Result<void> bind(const std::string& source);

    const std::filesystem::path path_;
    sqlite3* db_;
    const std::int64_t max_statuses_;
    std::mutex mutex_; ///< guards db_
};

} // namespace modelrepo::detail
