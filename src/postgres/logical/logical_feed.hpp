// SPDX-License-Identifier: MIT
// LogicalFeed: watch() from PostgreSQL's WAL (feed=logical), with nothing on the writers'
// path: one replication session (wal_stream.hpp) on a temporary slot of the `pgoutput`
// plugin for the catalogue's publication, decoded by PgoutputDecoder. It delivers what
// ChangeFeed delivers, through the same Sink: each committed transaction's changes as one
// batch, in commit order, and a `resync` at every (re)connect (a temporary slot holds no
// changes from before it: what happened while no session was open comes back as the
// resync's re-read).
//
// Versions: a change's version is its transaction's commit LSN times 65,536 plus its
// position in the transaction (1, 2, …), so versions increase in commit order and each
// names one change. A transaction of 65,535 changes or more, and a TRUNCATE, are one
// resync. Limit: commit LSNs below 2^47 (128 TiB of WAL written by the server).
//
// A transaction is delivered once it is visible to other sessions (a plain session asks:
// the walsender can send a commit a moment before it is), so that a copy that re-reads
// the changed rows reads them as committed. The row path skips both: a transaction that
// wrote only statuses of modelrepo's own table, each decoded whole (status_rows.hpp), is
// offered with its rows to Options::rows (a live copy in sync applies them as they are,
// and its watchers read the copy); declined, it goes the way above.
//
// Exact at each (re)connect when a copy takes the feed: the slot's exported snapshot is
// offered to the copy's re-read (snapshot_handoff.hpp) before the stream starts, so the
// re-read holds what the database held at the slot's consistent point and the stream
// every change after it. Without a reader (watch() alone), or one slower than
// `snapshot_wait`, the re-read is the reader's own and a change committed meanwhile can
// come in both.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "../../core/capabilities.hpp"
#include "../../core/health_tracker.hpp"
#include "../driver/session_config.hpp"
#include "../feed/change_feed.hpp"
#include "pgoutput.hpp"
#include "row_names.hpp"

namespace modelrepo::detail::logical {

class WalStream;
class SnapshotHandoff;

/// A version for the change at `position` of the transaction that committed at `commit`.
std::int64_t change_version(Lsn commit, std::uint32_t position);

/// The publication `migrate` makes for the catalogue of `schema` ("" for the default):
/// "modelrepo_catalogue", or "modelrepo_catalogue_<schema>".
std::string publication_name(const std::string& schema);

class LogicalFeed {
public:
    struct Options {
        /// A status update asking for an answer after this long without traffic; the
        /// session is lost when none comes within `heartbeat_timeout` more.
        std::chrono::milliseconds heartbeat{5'000};
        std::chrono::milliseconds heartbeat_timeout{3'000};
        std::chrono::milliseconds backoff_initial{100};
        std::chrono::milliseconds backoff_max{5'000};
        HealthObserver* health = nullptr;
        /// Where each new slot's snapshot is offered to the copy's re-read; may be null.
        SnapshotHandoff* handoff = nullptr;
        /// How long the stream waits for that re-read to import the snapshot.
        std::chrono::milliseconds snapshot_wait{5'000};
        /// Told, on the feed's thread, that the publication is gone (a migrate with
        /// feed=triggers drops it; asked at each connect and heartbeat); the feed then
        /// stops (feed=auto's chooser follows what migrate installed). Null: each session
        /// fails with Errc::schema_missing naming the fix.
        std::function<void()> uninstalled;
        /// The catalogue's tables: modelrepo's own, or a mapping's.
        CatalogueTables tables;
        /// Where status-only transactions go with their decoded rows (modelrepo's own
        /// tables only); empty, or declining, they are delivered through the sink.
        ChangeSource::RowSink rows;
    };
    LogicalFeed(std::shared_ptr<const SessionConfig> session, Options options,
                ChangeFeed::Sink sink, ChangeFeed::StateSink state = {});
    ~LogicalFeed();
    LogicalFeed(const LogicalFeed&) = delete;
    LogicalFeed& operator=(const LogicalFeed&) = delete;

    void start();
    /// Stops the thread and waits for it (within a poll's 200 ms): no sink call after it.
    void stop();
    /// As ChangeFeed's: `received` counts the WAL messages read, `polls` the transactions.
    ChangeFeed::Stats stats() const;

private:
    void run();
    /// One session: connect, a temporary slot, START_REPLICATION, follow until it is lost.
    Error session();
    class Visibility;
    /// Follows the stream; returns why it ended.
    Error follow(WalStream& stream, Visibility& visibility, RowNames& names);
    /// Nothing came for `silent` (what was delivered is confirmed already): after
    /// `heartbeat`, a status update asking for an answer (once: `asked`) and a look at the
    /// publication; after `heartbeat_timeout` more, the session is lost. Why the session
    /// ends, if it does.
    std::optional<Error> idle(WalStream& stream, Visibility& visibility,
                              std::chrono::steady_clock::duration silent, bool& asked);
    void deliver(std::vector<CatalogChange> changes);
    /// Offers a status-only transaction's changes with their rows to Options::rows;
    /// whether it took them (counted as delivered then).
    bool deliver_rows(std::vector<CatalogChange>& changes, std::vector<ModelStatus>& rows);
    void resync(std::int64_t version);
    bool pause(std::chrono::milliseconds d);
    void tell(bool connected);
    /// The publication is gone: with `uninstalled`, stops and tells it; the error either
    /// way.
    Error publication_gone();

    const std::shared_ptr<const SessionConfig> session_;
    const Options options_;
    const ChangeFeed::Sink sink_;
    const ChangeFeed::StateSink state_;
    const std::string schema_;      ///< where the catalogue's tables are ("public" by default)
    const std::string publication_; ///< publication_name(schema)

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool started_ = false;
    bool stopping_ = false;
    ChangeFeed::Stats stats_;
    std::thread thread_;
};

} // namespace modelrepo::detail::logical
