// SPDX-License-Identifier: MIT
// What a backend offers the layers open() puts around it (src/copy, src/outbox), asked
// for with ModelRepository::capability<T>(). Small on purpose: the copy needs a reader and
// a change source, the outbox a status writer; neither knows which backend it wraps.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <modelrepo/catalog_change.hpp>
#include <modelrepo/error.hpp>
#include <modelrepo/snapshot.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo::detail {

/// Reads the catalogue at its origin, for a last-known copy. Thread-safe.
class CatalogReader {
public:
    virtual ~CatalogReader() = default;
    /// A stable name for this origin (its address and schema, no secret), that names the
    /// copy's files in cache_dir: the same origin finds its copy again after a restart.
    virtual std::string copy_key() const = 0;
    /// The whole catalogue and the catalogue version it is at, read at one moment.
    virtual Result<std::pair<Snapshot, std::int64_t>> load() = 0;
    /// These models as they are now, provider and status joined; absent ones skipped.
    virtual Result<std::vector<Model>> models(std::span<const std::string> slugs) = 0;
    /// These providers as they are now; absent ones skipped.
    virtual Result<std::vector<Provider>> providers(std::span<const std::string> slugs) = 0;
};

/// Reports every change at the origin, made by any client, for a copy that keeps current.
class ChangeSource {
public:
    /// Each batch of changes, in version order, on the source's delivery thread; a batch
    /// after a (re)connect ends with a `resync`.
    using Sink = std::function<void(std::vector<CatalogChange>)>;
    /// Told, on the same thread, when the source starts or stops reporting.
    using StateSink = std::function<void(bool connected)>;
    /// A committed transaction that wrote statuses only, with each status as it wrote it
    /// (`rows[i]` is what `changes[i]` names), decoded from the origin's log: the layer
    /// takes them as they are, instead of reading them again, and the source does not wait
    /// for the transaction to be visible to other sessions first. Returns false to decline
    /// (the source then delivers the changes through Sink, once visible). On the source's
    /// delivery thread, between Sink's calls, in the same order.
    using RowSink =
        std::function<bool(std::vector<CatalogChange>& changes, std::vector<ModelStatus>& rows)>;

    virtual ~ChangeSource() = default;
    /// Why this source can never report changes as configured (PgBouncer without a direct
    /// URL, say); nullopt when it can. Cheap, no I/O.
    virtual std::optional<Error> unavailable() const = 0;
    /// Whether a watcher can be told of changes: an error that needs the user (the
    /// database's schema has no change feed: run modelrepo migrate). A source that cannot
    /// be asked now (it is down) is no error: delivery starts when it answers.
    virtual Result<void> check_watchable() = 0;
    /// Starts delivering to `sink` (one layer takes the feed: a later call replaces it);
    /// to `rows` too, where the source can decode them (an empty one declines them all).
    virtual void start_changes(Sink sink, StateSink state, RowSink rows) = 0;
    /// Stops delivering to the sink, waiting for a delivery in progress: after it returns, `sink`
    /// and `state` are not called again (the layer that gave them is going away).
    virtual void stop_changes() = 0;
};

/// What watch() says, handed on from the publishing thread (ChangeHub::relay): for a
/// layer that only passes each change to its own hub (a fallback chain), one thread less
/// per change. Offered by the repository whose watch() it stands for. Thread-safe.
class ChangeRelay {
public:
    virtual ~ChangeRelay() = default;
    /// As watch(), but `to` runs on the thread that publishes, and must hand the change
    /// on at once: it must not block, nor call back into the repository.
    virtual Result<Subscription> relay(std::function<void(const CatalogChange&)> to) = 0;
};

/// Applies status writes at the origin, for an outbox that replays what it kept.
/// Thread-safe.
class StatusWriter {
public:
    virtual ~StatusWriter() = default;
    /// Applies one batch in one transaction: all or nothing. Statuses older than the
    /// stored ones are ignored (so a batch applied twice is harmless).
    virtual Result<std::int64_t> apply_statuses(std::span<const ModelStatus> statuses) = 0;
    /// Each batch in a transaction of its own. The outer Result fails when the source
    /// could not be asked at all; an inner one, when it refused that batch. The default
    /// applies them one by one (and stops at the first outage).
    virtual Result<std::vector<Result<std::int64_t>>>
    apply_each(std::span<const std::vector<ModelStatus>> batches);
    /// How far ahead of the clock a status it takes may be dated (`max_clock_skew=`): what
    /// an outbox above checks before it keeps a write.
    virtual std::chrono::milliseconds max_clock_skew() const { return default_max_clock_skew; }
    /// Who takes the writes (its database, host, role and tables; no secret): an outbox
    /// file records it and is refused to any other source. "" binds nothing.
    virtual std::string outbox_identity() const { return ""; }
};

/// A last-known copy in this process, for an outbox above it: the slugs of a write it
/// keeps are checked against the copy, and what it keeps shows in the copy's reads.
class LocalCopy {
public:
    virtual ~LocalCopy() = default;
    /// Holds a catalogue (loaded from the source or from its file).
    virtual bool holds_catalogue() const = 0;
    virtual bool knows_model(std::string_view slug) const = 0;
    /// Writes the source has not taken yet, shown in reads now (read your writes).
    virtual void show_writes(std::span<const ModelStatus> statuses) = 0;
};

} // namespace modelrepo::detail
