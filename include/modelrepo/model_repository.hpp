// SPDX-License-Identifier: MIT
/// @file
/// `ModelRepository`: the one interface services use to read the catalogue and write
/// model statuses, whatever the backend.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <modelrepo/catalog_change.hpp>
#include <modelrepo/error.hpp>
#include <modelrepo/metrics.hpp>
#include <modelrepo/snapshot.hpp>
#include <modelrepo/types.hpp>

namespace modelrepo {

/// How a write was taken: applied to the source now, or kept durably in its outbox to be
/// applied when the source can take it (a write either way; `upsert_statuses` counts both).
struct WriteReceipt {
    std::int64_t applied = 0; ///< statuses the source applied now
    std::int64_t queued = 0;  ///< statuses kept in the outbox for later
    /// Statuses the source took but did not store because the one it holds for the model is
    /// newer (`checked_at`): a replay, or a status from the future blocking it. Not counted
    /// in `applied`.
    std::int64_t ignored = 0;
    /// The models of those ignored statuses, in the order written.
    std::vector<std::string> ignored_models;
    std::string outbox; ///< where they are kept (the outbox file), when queued
    /// Of the queued statuses, those whose model slug nothing could check (no last-known
    /// copy holds the catalogue: a process started during the outage). One the database
    /// does not know is dead-lettered at replay, alone; the others are applied.
    std::int64_t unchecked = 0;
    /// The cause the source could not take them now, when queued.
    std::optional<Error> deferred_because;

    /// True when the statuses were kept for later rather than applied.
    bool deferred() const noexcept { return deferred_because.has_value(); }
    bool operator==(const WriteReceipt&) const = default;
};

namespace detail {
struct CheckedBatch;
}

/// How a caller asks for a write.
struct WriteOptions {
    /// The caller knows the source cannot take the write now (a chain whose circuit
    /// breaker for it is open), for this cause: keep it for later without trying the
    /// source, when the source has an outbox; a source without one answers `cause`.
    std::optional<Error> source_down;
    /// Internal: set by the library's own layer that checked this very batch at its door
    /// (an outbox), so that the layers below do not check it again. Leave it null; a
    /// repository written outside the library may ignore it.
    const detail::CheckedBatch* checked = nullptr;
};

/// Models shared with whoever holds them (`ModelRepository::share_models()`): `models`
/// point into what `owner` keeps alive and unchanged while it is held. Copying one copies
/// the pointers only.
///
/// Lifetime: a pointer of `models` is valid while this `SharedModels` (or a copy of it)
/// lives, and what it points at does not change meanwhile (a write makes a new version; this
/// one stays). Keep the `SharedModels`, not the pointers: one kept after it is gone dangles.
struct SharedModels {
    std::shared_ptr<const void> owner;
    std::vector<const Model*> models; ///< by slug, as list_models() orders them
};

/// A capability (`capability<CatalogueVersion>()`) of a repository whose reads answer from
/// a catalogue it keeps in memory: a memory source, a live copy while it is in sync. For
/// keeping answers made from its reads (serve keeps `?slug=` lists this way).
///
/// Thread safety: may be called from any thread, at any time.
class CatalogueVersion {
public:
    /// Which catalogue the reads answer from now: a number that changes whenever it does (a
    /// write, a change from the feed, a reload) and never comes back to a value it had; 0
    /// while reads would not come from memory. An answer read between two equal non-zero
    /// readings is the answer for as long as the reading stays the same.
    virtual std::uint64_t catalogue_version() const noexcept = 0;

protected:
    ~CatalogueVersion() = default;
};

/// The catalogue of AI models, their providers and live statuses.
///
/// Thread safety: every method of every implementation may be called from any
/// number of threads at once.
///
/// Errors: no method throws; each returns a `Result` whose `Error` says what failed.
/// Implementations catch their backend's failures at their own boundary.
class ModelRepository {
public:
    virtual ~ModelRepository() = default;

    /// A short name for logs, metrics and `SystemStats::source`: "builtin",
    /// "file:/path", "postgresql://host:port/db" (never with a password).
    virtual std::string_view name() const noexcept = 0;

    /// Number of models, active or not.
    virtual Result<std::int64_t> count_models() = 0;
    /// Number of providers.
    virtual Result<std::int64_t> count_providers() = 0;
    /// The current status of every model that has one, ordered by model slug.
    virtual Result<std::vector<ModelStatus>> list_statuses() = 0;
    /// The models with these slugs, provider and status included, in the order of
    /// `slugs`; unknown slugs are skipped, a slug asked for twice is returned twice.
    virtual Result<std::vector<Model>> find_models(std::span<const std::string> slugs) = 0;
    /// One model, provider and status included; nullopt when the slug is unknown.
    virtual Result<std::optional<Model>> find_model(std::string_view slug) = 0;
    /// Counts and health breakdown; `source` is this repository's `name()`.
    virtual Result<SystemStats> system_stats() = 0;
    /// A real check that the backend can answer (for a database, a round trip).
    virtual Result<void> check_health() = 0;

    /// The write path of the sync service: inserts or replaces the status of each model.
    /// A status older than the stored one (`checked_at`) is ignored, so a replayed batch is
    /// harmless. The receipt says whether the statuses were applied now or kept in the
    /// source's outbox (`cache`/`outbox=` layers, see `open()`) because the source could not
    /// take them for an outage-class cause, and why. A wrong write (`invalid_argument`,
    /// `bad_data`) is refused at once, never queued.
    /// The default answers `Errc::read_only`; so do read-only backends.
    virtual Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses,
                                                const WriteOptions& options = {});
    /// `write_statuses`, counting the statuses taken: applied now or queued for later.
    Result<std::int64_t> upsert_statuses(std::span<const ModelStatus> statuses);

    /// Every model, provider and status included, ordered by slug.
    /// The default builds the list from `export_snapshot()`.
    virtual Result<std::vector<Model>> list_models();
    /// The models of `list_models()`, shared rather than copied: a repository that keeps
    /// its catalogue in memory (memory:, a live copy in sync) hands out the version it
    /// holds, which does not change while it is held; copying nothing costs the same at
    /// 100,000 models as at 10. For answers written as they are sent (serve's /v1/models).
    /// The default wraps `list_models()`'s answer.
    virtual Result<SharedModels> share_models();
    /// The whole catalogue, as the backup format stores it.
    /// The default answers `Errc::not_supported`.
    virtual Result<Snapshot> export_snapshot();

    /// Calls `on_change` for every change to the catalogue, made through any client of
    /// the source, until the returned `Subscription` is cancelled or destroyed. Callbacks
    /// run on the source's delivery thread, in order; a slow callback delays only later
    /// deliveries, never a read. The default answers `Errc::not_supported`.
    virtual Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change);

    /// The backend's own metrics — a pool's connections and waits, a copy's age, a feed's
    /// state — for `FallbackRepository::metrics()`/`prometheus()` and `modelrepo serve`'s
    /// /metrics. Names start with `modelrepo_`; no `source` label (the caller adds it).
    /// The default has none.
    virtual std::vector<MetricFamily> backend_metrics() const;

    /// When the data this source answers with was last known to be current at its
    /// origin: a snapshot's `generated_at` for memory and backup sources, the moment a
    /// last-known copy was last confirmed by its feed, nothing (`nullopt`) for a source
    /// that reads its origin on every call. For health reports (`modelrepo serve`'s
    /// /readyz); cheap, never does I/O. The default is `nullopt`.
    virtual std::optional<Timestamp> data_as_of() const;

    /// True while reads are answered from memory, without waiting on a database or a
    /// network: an in-memory catalogue, a live copy in sync. A server may then call them on
    /// its I/O threads (`modelrepo serve` does); else it hands them to workers. A hint that
    /// may change right after it is read; cheap, never does I/O. The default is false.
    virtual bool reads_from_memory() const noexcept;

    /// An optional part of this repository, asked for by what it does, or nullptr when it
    /// has none: `repo.capability<OutboxControl>()` (the outbox of `outbox=`),
    /// `capability<CopyControl>()` (the last-known copy), `capability<CatalogAdmin>()`
    /// (migrations and imports of a database). Layers (a copy, an outbox, a chain) answer
    /// for themselves and ask the repository below them for the rest; a chain asks its
    /// first source. Never a cast to a backend's class.
    template <class Capability>
    Capability* capability() noexcept {
        return static_cast<Capability*>(find_capability(typeid(Capability)));
    }
    /// What `capability<T>()` calls: a pointer to the `T` this repository offers, as
    /// `void*`, or nullptr. The default offers none. Implementations answer with
    /// `offer<T>(type, this)` and forward what they do not know to the repository below.
    virtual void* find_capability(const std::type_info& type) noexcept;

protected:
    ModelRepository() = default;
    /// `static_cast<T*>(self)` as `void*` when `type` is `T`, else nullptr.
    template <class T, class Self>
    static void* offer(const std::type_info& type, Self* self) noexcept {
        return type == typeid(T) ? static_cast<void*>(static_cast<T*>(self)) : nullptr;
    }
    ModelRepository(const ModelRepository&) = default;
    ModelRepository& operator=(const ModelRepository&) = default;
};

} // namespace modelrepo
