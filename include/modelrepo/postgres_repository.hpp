// SPDX-License-Identifier: MIT
/// @file
/// `PostgresRepository`: the catalogue in PostgreSQL, over modelrepo's own connection
/// pool (libpqxx opens the connections; statements run on libpq). Neither library's
/// headers are included here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <modelrepo/model_repository.hpp>
#include <modelrepo/pool_stats.hpp>

namespace modelrepo {

/// How to reach the database and how the pool behaves. `from_url()` fills it from a
/// DATABASE_URL, Prisma's parameters included.
struct PostgresConfig {
    /// What libpq gets: a `postgresql://` URI or a `key=value` conninfo string, with
    /// modelrepo's and Prisma's own parameters already taken out.
    std::string conninfo;
    /// The schema the tables live in (becomes the connection's search_path); empty
    /// for the server's default (`public`). From Prisma's `schema=`.
    std::string schema;
    /// Largest number of open connections. 0 means 2 x hardware threads + 1.
    /// From `connection_limit=`.
    int pool_size = 0;
    /// Longest wait for a free pooled connection before `Errc::pool_exhausted`.
    /// From `pool_timeout=` (seconds).
    std::chrono::milliseconds acquire_timeout{10'000};
    /// Longest time a statement may take, network included, before `Errc::timeout`;
    /// also the server's statement_timeout. From `socket_timeout=` (seconds).
    std::chrono::milliseconds query_timeout{5'000};
    /// libpq's connect_timeout (whole seconds, at least 2). From `connect_timeout=`.
    std::chrono::seconds connect_timeout{5};
    /// An idle connection unused this long is checked with a round trip before reuse.
    std::chrono::milliseconds validate_after_idle{30'000};
    /// Connections are replaced after about this long (minus up to 10 % jitter).
    std::chrono::milliseconds max_lifetime{30 * 60'000};
    /// Backoff between reconnect attempts while the server is down: doubles from the
    /// first value up to the second, with jitter. Callers fail fast in between.
    std::chrono::milliseconds reconnect_backoff_initial{100};
    std::chrono::milliseconds reconnect_backoff_max{5'000};
    /// Server-side prepared statements. False with `pgbouncer=true` (PgBouncer's
    /// transaction mode cannot keep them).
    bool prepared_statements = true;

    /// Parses a DATABASE_URL (`postgresql://…` or `postgres://…`) or a conninfo
    /// string. Takes out `schema`, `connection_limit`, `pool_timeout`,
    /// `socket_timeout`, `pgbouncer` (Prisma's; libpq rejects them) and modelrepo's
    /// `acquire_timeout_ms`, `query_timeout_ms`, `max_lifetime_s`; passes libpq's own
    /// (`sslmode`, `connect_timeout`, `target_session_attrs`, `application_name`,
    /// several hosts, …) through, adding `connect_timeout=5` and
    /// `application_name=modelrepo` when absent.
    /// Errors: `Errc::invalid_argument` naming the parameter (never the password).
    static Result<PostgresConfig> from_url(std::string_view url);
};


/// The catalogue in PostgreSQL (tables `providers`, `models`, `model_status`; see
/// `migrate()`).
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
class PostgresRepository final : public ModelRepository {
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
    /// `Errc::invalid_argument` and nothing is written.
    Result<std::int64_t> upsert_statuses(std::span<const ModelStatus> statuses) override;
    Result<std::vector<Model>> list_models() override;
    /// The whole catalogue in one repeatable-read transaction; `generated_at` is the
    /// server's time.
    Result<Snapshot> export_snapshot() override;

    /// Creates or upgrades the tables; idempotent, and safe from several processes at
    /// once (an advisory lock serializes them). Returns the schema version.
    Result<int> migrate();
    /// The schema version, 0 when modelrepo's tables are missing.
    Result<int> schema_version();
    /// Replaces the whole catalogue with `snapshot` in one transaction.
    /// Errors: `Errc::bad_data` (invalid snapshot), database errors.
    Result<void> import_snapshot(const Snapshot& snapshot);

    /// The pool: `modelrepo_pool_connections{state}`, `modelrepo_pool_waiting`,
    /// `modelrepo_pool_connects_total`, `modelrepo_pool_connect_failures_total`,
    /// `modelrepo_pool_acquire_timeouts_total`, `modelrepo_pool_replaced_total{why}`,
    /// `modelrepo_pool_acquire_wait_seconds` (histogram), `modelrepo_pool_server_down`.
    std::vector<MetricFamily> backend_metrics() const override;

    PoolStats pool_stats() const;
    const PostgresConfig& config() const noexcept;

private:
    struct Impl;
    explicit PostgresRepository(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace modelrepo
