// SPDX-License-Identifier: MIT
/// @file
/// `PostgresRepository`: the catalogue in PostgreSQL, over modelrepo's own connection
/// pool (libpqxx opens the connections; statements run on libpq). Neither library's
/// headers are included here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <modelrepo/catalog_admin.hpp>
#include <modelrepo/model_repository.hpp>
#include <modelrepo/pool_stats.hpp>
#include <modelrepo/postgres_config.hpp>

namespace modelrepo {

/// The catalogue in PostgreSQL (tables `providers`, `models`, `model_status`; see
/// `migrate()`). The backend alone: the last-known copy and the outbox of `cache_dir=`,
/// `cache=live` and `outbox=` are the durable layer that `open()` (or `make_durable()`)
/// puts around it; for that layer it offers its reads, its change feed and its status
/// writes as capabilities, and `CatalogAdmin` for migrations and imports.
///
/// Thread safety: all methods may be called concurrently; each call borrows one
/// pooled connection for one round trip.
///
/// Errors say what failed and where: `auth_failed` (28P01 wrong password or a
/// verifier the method cannot use, 28000 no pg_hba entry or no such role),
/// `database_missing` (3D000), `too_many_connections` (53300), `unreachable`,
/// `timeout` (connect, statement or a server that stopped answering), `tls_failed`,
/// `schema_missing` (run `modelrepo migrate`), `pool_exhausted`, `query_failed`.
/// `Error::target` holds the host and port, `Error::sqlstate` the SQLSTATE.
class PostgresRepository final : public ModelRepository, public CatalogAdmin {
public:
    /// Builds the repository and its (empty) pool; does not connect, so a service
    /// can start while the database is down. Errors: `Errc::invalid_argument`.
    static Result<std::shared_ptr<PostgresRepository>> create(PostgresConfig config);
    /// `create(PostgresConfig::from_url(url))`.
    static Result<std::shared_ptr<PostgresRepository>> open(std::string_view url);

    ~PostgresRepository() override;
    PostgresRepository(const PostgresRepository&) = delete;
    PostgresRepository& operator=(const PostgresRepository&) = delete;

    /// "postgresql://user@host:port/db", no password.
    std::string_view name() const noexcept override;
    Result<std::int64_t> count_models() override;
    Result<std::int64_t> count_providers() override;
    Result<std::vector<ModelStatus>> list_statuses() override;
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs) override;
    Result<std::optional<Model>> find_model(std::string_view slug) override;
    Result<SystemStats> system_stats() override;
    /// A real round trip (`SELECT 1`) on a pooled connection.
    Result<void> check_health() override;
    /// One multi-row upsert in one transaction; rows older than the stored status are
    /// ignored. A status for an unknown model fails the whole batch with
    /// `Errc::invalid_argument` and nothing is written. Always `applied`: the backend keeps
    /// no outbox (`WriteOptions::source_down` is answered with its cause).
    Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses,
                                        const WriteOptions& options = {}) override;
    /// Every change made by any client of the database (triggers of schema version 2 and
    /// LISTEN/NOTIFY on one dedicated session, not a pooled one). When that session is
    /// lost it reconnects with backoff, catches up by version and delivers `resync`.
    /// Callbacks run in order on the feed's delivery thread. Errors:
    /// `Errc::schema_missing` when the database is on schema version 1 (run `modelrepo
    /// migrate`). A database that is down is no error: delivery starts when it answers.
    Result<Subscription> watch(std::function<void(const CatalogChange&)> on_change) override;
    Result<std::vector<Model>> list_models() override;
    /// The whole catalogue in one repeatable-read transaction; `generated_at` is the
    /// server's time.
    Result<Snapshot> export_snapshot() override;

    /// Creates or upgrades the tables; idempotent, and safe from several processes at
    /// once (an advisory lock serializes them). Returns the schema version.
    Result<int> migrate() override;
    /// The schema version, 0 when modelrepo's tables are missing.
    Result<int> schema_version() override;
    /// Replaces the whole catalogue with `snapshot` in one transaction; the change feed
    /// reports one `resync`. `progress` is told after each of its statements, with their
    /// rows. Errors: `Errc::bad_data` (invalid snapshot), database errors.
    Result<void> import_snapshot(const Snapshot& snapshot,
                                 const ProgressFn& progress = {}) override;

    /// The pool: `modelrepo_pool_connections{state}`, `modelrepo_pool_waiting`,
    /// `modelrepo_pool_connects_total`, `modelrepo_pool_connect_failures_total`,
    /// `modelrepo_pool_acquire_timeouts_total`, `modelrepo_pool_replaced_total{why}`,
    /// `modelrepo_pool_acquire_wait_seconds` (histogram), `modelrepo_pool_server_down`;
    /// the change feed, once started: `modelrepo_feed_connected`,
    /// `modelrepo_feed_changes_total`, `modelrepo_feed_resyncs_total`,
    /// `modelrepo_feed_unknown_payloads_total`, `modelrepo_feed_reconnects_total`; and
    /// `modelrepo_watchers` while watch() subscriptions of its own exist.
    std::vector<MetricFamily> backend_metrics() const override;
    /// `CatalogAdmin`, and for the durable layer its reads, change feed and status writes.
    void* find_capability(const std::type_info& type) noexcept override;

    PoolStats pool_stats() const;
    const PostgresConfig& config() const noexcept;

private:
    struct Parts; ///< its health, SQL catalogue (pools, statements), change hub and feed
    explicit PostgresRepository(std::unique_ptr<Parts> parts);
    std::unique_ptr<Parts> parts_;
};

} // namespace modelrepo
