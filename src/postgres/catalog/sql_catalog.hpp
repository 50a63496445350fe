// SPDX-License-Identifier: MIT
// SqlCatalog: the SQL of each repository call and the decoding of its rows, on the
// repository's connection pool. Below the facade (PostgresRepository), beside the
// last-known copy, which reads through it.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <modelrepo/model_repository.hpp>
#include <modelrepo/postgres_config.hpp>
#include <modelrepo/progress.hpp>
#include <modelrepo/snapshot.hpp>

#include "../../core/capabilities.hpp"
#include "../driver/pool.hpp"
#include "mapping.hpp"
#include "schema.hpp"

namespace modelrepo::detail {

namespace logical {
class SnapshotHandoff;
}

/// Thread-safe: each call borrows one pooled connection.
class SqlCatalog final : public CatalogReader {
public:
    /// `direct`: the session for migrations and the change feed when the main one goes
    /// through PgBouncer (`direct_url`); null for the main one.
    /// `mapping`: the catalogue's tables (Mapping::builtin_tables() for modelrepo's own).
    /// A user's mapping is checked against the database at the first call that reaches
    /// it, and the statements are generated then, once.
    SqlCatalog(PostgresConfig config, std::shared_ptr<const SessionConfig> session,
               std::shared_ptr<const SessionConfig> direct = {}, ConnectionPool::ClockFn clock = {},
               Mapping mapping = Mapping::builtin_tables(), HealthObserver* health = nullptr);

    /// Where load() finds the logical feed's exported snapshot to read in (null: none, the
    /// default). Set once, before the first load(); it outlives this catalogue.
    void set_snapshot_handoff(logical::SnapshotHandoff* handoff) noexcept { handoff_ = handoff; }

    const std::string& name() const noexcept { return session_->source; }
    const PostgresConfig& config() const noexcept { return config_; }
    /// The read-write (main) sessions' config.
    const std::shared_ptr<const SessionConfig>& session() const noexcept { return session_; }
    /// Where the change feed listens: the direct session, else the main one.
    const std::shared_ptr<const SessionConfig>& feed_session() const noexcept {
        return direct_session_;
    }
    /// `"schema".` or "".
    const std::string& schema_prefix() const noexcept { return prefix_; }
    PoolStats pool_stats() const { return write_pool_->counters(); }
    /// The read pool's, when reads have one of their own (read_target standby or
    /// prefer-standby).
    std::optional<PoolStats> read_pool_stats() const {
        return read_pool_ ? std::optional<PoolStats>(read_pool_->counters()) : std::nullopt;
    }

    Result<std::int64_t> count_models();
    Result<std::int64_t> count_providers();
    Result<std::vector<ModelStatus>> list_statuses();
    Result<std::vector<Model>> find_models(std::span<const std::string> slugs);
    Result<std::optional<Model>> find_model(std::string_view slug);
    Result<std::vector<Model>> list_models();
    Result<SystemStats> system_stats();
    Result<void> check_health();
    /// Validated here (a status further ahead of the clock than `max_clock_skew` too); one
    /// statement; rows sorted by slug. The receipt says which were applied and which were
    /// ignored, the stored status being newer.
    /// `checked`: a layer above ran detail::check_write on them (WriteOptions::checked).
    Result<WriteReceipt> upsert_statuses(std::span<const ModelStatus> statuses,
                                         bool checked = false);
    /// upsert_statuses of each batch, pipelined on one connection (one round trip), each
    /// in its own transaction. The outer Result fails when the session did.
    Result<std::vector<Result<std::int64_t>>>
    upsert_each(std::span<const std::vector<ModelStatus>> batches);
    Result<Snapshot> export_snapshot();
    Result<int> schema_version();
    /// The change feed this database was migrated for: `logical` when the catalogue's
    /// publication exists, `triggers` when its row triggers do, `automatic` for neither
    /// (a database before schema 2, or one whose triggers were dropped). What `feed=auto`
    /// follows.
    struct InstalledFeed {
        FeedKind kind = FeedKind::automatic;
        /// The row triggers are there (also beside a publication).
        bool triggers = false;
        /// Why the logical feed cannot run here (wal_level, the role's REPLICATION); ""
        /// when it can.
        std::string logical_blocked;
    };
    Result<InstalledFeed> installed_feed();
    Result<int> migrate();
    /// In one transaction; the change feed hears one resync, not a change per row.
    Result<void> import_snapshot(const Snapshot& snapshot, const ProgressFn& progress);

    // CatalogReader, for the last-known copy.
    std::string copy_key() const override;
    Result<std::pair<Snapshot, std::int64_t>> load() override;
    Result<std::vector<Model>> models(std::span<const std::string> slugs) override;
    Result<std::vector<Provider>> providers(std::span<const std::string> slugs) override;

    /// The mapping as configured (its column facts filled in once checked).
    const Mapping& mapping() const noexcept { return mapping_; }

private:
    /// Why `snapshot` cannot be imported (invalid, or a status from the future), if so.
    Result<void> importable(const Snapshot& snapshot) const;
    /// The statements of a mapping checked against the database.
    struct Plan {
        Plan(const Mapping& m, const std::string& prefix)
            : mapping(m)
            , statements(prefix, mapping)
            , import(import_sql(mapping, prefix))
            , write_problems(modelrepo::detail::write_problems(mapping, prefix)) {}
        const Mapping mapping;
        const StatementSet statements;
        const ImportSql import;
        const std::vector<MappingProblem> write_problems;
    };
    /// The plan, made on `c` the first time (a user's mapping: one look at the catalogue).
    Result<const Plan*> plan(Connection& c, Deadline until);
    /// `schema_missing` for the first of `problems`, naming the mapping file.
    Error mapping_error(const std::vector<MappingProblem>& problems, std::string_view doing) const;

    /// `work(connection, deadline)` on a pooled connection under the call's one deadline.
    template <class Work>
    auto with_connection(ConnectionPool& pool, Work&& work);
    /// The same with `extra` time on the deadline (a call whose work grows with its input).
    template <class Work>
    auto with_connection(ConnectionPool& pool, std::chrono::milliseconds extra, Work&& work);
    /// One statement; `decode(rows)` makes the answer.
    template <class Decode, std::size_t N>
    auto query(ConnectionPool& pool, StatementId id, std::array<const char*, N> values,
               Decode&& decode);
    /// The export's transaction; `version` gets catalog_version (0 on schema 1).
    /// `snapshot`: an exported snapshot to read in (SET TRANSACTION SNAPSHOT), or null.
    Result<Snapshot> export_at(ConnectionPool& pool, std::int64_t* version,
                               const std::string* snapshot = nullptr);
    Result<std::vector<Model>> find_models_in(ConnectionPool& pool,
                                              std::span<const std::string> slugs);
    /// Where reads go; where migrations go.
    ConnectionPool& reads();
    ConnectionPool& direct();
    std::string local_search_path() const;

    const PostgresConfig config_;
    const std::string prefix_;
    const Mapping mapping_;
    std::mutex plan_mutex_;
    std::unique_ptr<const Plan> plan_owner_; ///< under plan_mutex_; never replaced once set
    std::atomic<const Plan*> plan_{nullptr};
    std::shared_ptr<const SessionConfig> session_;
    std::shared_ptr<const SessionConfig> read_session_;
    std::shared_ptr<const SessionConfig> direct_session_;
    std::unique_ptr<ConnectionPool> write_pool_;
    logical::SnapshotHandoff* handoff_ = nullptr;
    std::unique_ptr<ConnectionPool> read_pool_;   ///< when reads have their own
    std::unique_ptr<ConnectionPool> direct_pool_; ///< with direct_url
};

} // namespace modelrepo::detail
