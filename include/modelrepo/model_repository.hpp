// SPDX-License-Identifier: MIT
/// @file
/// `ModelRepository`: the one interface services use to read the catalogue and write
/// model statuses, whatever the backend.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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
    std::string outbox;       ///< where they are kept (the outbox file), when queued
    /// The cause the source could not take them now, when queued.
    std::optional<Error> deferred_because;

    bool operator==(const WriteReceipt&) const = default;
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

    /// The write path of the sync service: inserts or replaces the status of each
    /// model. A status older than the stored one (`checked_at`) is ignored, so a
    /// replayed batch is harmless. Returns how many statuses were applied.
    /// The default answers `Errc::read_only`; so do read-only backends.
    virtual Result<std::int64_t> upsert_statuses(std::span<const ModelStatus> statuses);

    /// `upsert_statuses`, saying how the write was taken: applied now, or queued in the
    /// source's outbox because the source could not take it for an outage-class cause
    /// (see PostgresRepository). The default calls `upsert_statuses` (applied).
    virtual Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses);
    /// Keeps `statuses` for when the source can take them, without trying it now: for a
    /// caller that knows the source is down (a chain whose breaker for it is open). The
    /// default answers `Errc::not_supported` (no outbox).
    virtual Result<WriteReceipt> defer_statuses(std::span<const ModelStatus> statuses);

    /// Every model, provider and status included, ordered by slug.
    /// The default builds the list from `export_snapshot()`.
    virtual Result<std::vector<Model>> list_models();
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

protected:
    ModelRepository() = default;
    ModelRepository(const ModelRepository&) = default;
    ModelRepository& operator=(const ModelRepository&) = default;
};

} // namespace modelrepo
