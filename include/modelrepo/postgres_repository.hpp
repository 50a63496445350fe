// SPDX-License-Identifier: MIT
/// @file
/// `PostgresRepository`: the catalogue in PostgreSQL, over modelrepo's own connection
/// pool (libpqxx opens the connections; statements run on libpq). Neither library's
/// headers are included here.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <modelrepo/model_repository.hpp>
#include <modelrepo/pool_stats.hpp>

namespace modelrepo {

/// Which sessions serve reads (`read_target=`). Writes and the change feed always use a
/// read-write session.
enum class ReadTarget {
    any,            ///< whatever the URL's hosts give (libpq's target_session_attrs)
    primary,        ///< the read-write server only
    prefer_standby, ///< a standby within max_replication_lag when there is one, else the primary
    standby,        ///< standbys only
};
/// "any", "primary", "prefer-standby", "standby".
std::string_view to_string(ReadTarget t) noexcept;

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
    /// The URL goes through PgBouncer in transaction mode (`pgbouncer=true`): no
    /// server-side prepared statements, nothing set on a session (statement_timeout and
    /// search_path would leak to other clients of the pooled server connection); the
    /// change feed needs `direct_url`.
    bool pgbouncer = false;

    /// The last-known copy (`cache_dir=DIR`): kept current through the change feed,
    /// written here atomically (after the first load, then at most about once a second
    /// after changes, and at exit) and loaded at start. While the database cannot
    /// answer, reads are served from the copy. Empty: no copy on disk.
    std::filesystem::path cache_dir;
    /// How long after it was last known current the copy may stand in for the database
    /// (`max_stale=`, a duration: 90s, 15m, 24h).
    std::chrono::milliseconds max_stale{24 * 3'600'000};
    /// Serve reads from the copy while the database is up too (`cache=live`): memory
    /// speed, staleness bounded by the change feed.
    bool live_cache = false;
    /// The change feed's session makes a round trip after this long without traffic, so
    /// a server that stopped answering is noticed (`feed_keepalive=`).
    std::chrono::milliseconds feed_keepalive{5'000};

    /// The outbox (`outbox=PATH`): an SQLite file that durably keeps the status writes
    /// the database could not take for an outage-class cause, applied when it can.
    /// Empty: no outbox (such a write fails with the database's error).
    std::filesystem::path outbox;
    /// Most statuses the outbox holds (`outbox_max=`); past it a write is refused with
    /// `Errc::outbox_full`.
    std::int64_t outbox_max = 100'000;

    /// Which sessions serve reads (`read_target=`); with several hosts in the URL
    /// (primary and streaming standbys).
    ReadTarget read_target = ReadTarget::any;
    /// A standby further behind than this serves no reads (`max_replication_lag=`),
    /// checked when a session is opened and every second while it is used, not per
    /// call. Zero: no bound.
    std::chrono::milliseconds max_replication_lag{0};
    /// A direct session (`direct_url=`, percent-encoded; Prisma's `directUrl`) for the
    /// change feed and migrations when the main URL goes through PgBouncer's transaction
    /// mode, which cannot keep a LISTEN. Empty: the main URL.
    std::string direct_url;

    /// A copy is kept (in memory, and on disk with cache_dir).
    bool keeps_copy() const noexcept { return live_cache || !cache_dir.empty(); }

    /// Parses a DATABASE_URL (`postgresql://…` or `postgres://…`) or a conninfo
    /// string. Takes out `schema`, `connection_limit`, `pool_timeout`,
    /// `socket_timeout`, `pgbouncer` (Prisma's; libpq rejects them) and modelrepo's
    /// `acquire_timeout_ms`, `query_timeout_ms`, `max_lifetime_s`, `cache_dir`,
    /// `max_stale`, `cache`, `feed_keepalive`, `outbox`, `outbox_max`, `read_target`,
    /// `max_replication_lag`, `direct_url`; passes libpq's own
    /// (`sslmode`, `connect_timeout`, `target_session_attrs`, `application_name`,
    /// several hosts, …) through, adding `connect_timeout=5` and
    /// `application_name=modelrepo` when absent.
    /// Errors: `Errc::invalid_argument` naming the parameter (never the password).
    static Result<PostgresConfig> from_url(std::string_view url);
};

/// Something the outbox did, for alerts (`PostgresRepository::on_outbox_event`).
struct OutboxEvent {
    enum class Kind {
        replayed,    ///< a queued batch was applied
        dead_letter, ///< the database refused a queued batch for good: kept aside, with why
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
    /// `Errc::invalid_argument` and nothing is written. With a copy, the write shows in
    /// this process's reads at once.
    Result<std::int64_t> upsert_statuses(std::span<const ModelStatus> statuses) override;
    /// Tries the database first. With an outbox, a batch the database cannot take for an
    /// outage-class cause (unreachable, timeout, auth_failed, too_many_connections,
    /// pool_exhausted) is checked here (ranges; slugs against the last-known copy when
    /// there is one), committed to the outbox (fsync'ed) and acknowledged as `queued`;
    /// with a copy it shows in this process's reads at once. A wrong write
    /// (`invalid_argument`, a constraint the server rejects) is refused at once, never
    /// queued. A write the outbox cannot make durable is not acknowledged: the error is
    /// the database's, with the outbox's failure. Errors also: `Errc::outbox_full`.
    Result<WriteReceipt> write_statuses(std::span<const ModelStatus> statuses) override;
    /// Queues without trying the database (a chain whose breaker for it is open).
    /// `Errc::not_supported` without an outbox.
    Result<WriteReceipt> defer_statuses(std::span<const ModelStatus> statuses) override;
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
    Result<int> migrate();
    /// The schema version, 0 when modelrepo's tables are missing.
    Result<int> schema_version();
    /// Replaces the whole catalogue with `snapshot` in one transaction.
    /// Errors: `Errc::bad_data` (invalid snapshot), database errors.
    Result<void> import_snapshot(const Snapshot& snapshot);

    /// The pool: `modelrepo_pool_connections{state}`, `modelrepo_pool_waiting`,
    /// `modelrepo_pool_connects_total`, `modelrepo_pool_connect_failures_total`,
    /// `modelrepo_pool_acquire_timeouts_total`, `modelrepo_pool_replaced_total{why}`,
    /// `modelrepo_pool_acquire_wait_seconds` (histogram), `modelrepo_pool_server_down`;
    /// the change feed: `modelrepo_feed_connected`, `modelrepo_feed_changes_total`,
    /// `modelrepo_feed_resyncs_total`, `modelrepo_feed_unknown_payloads_total`,
    /// `modelrepo_feed_reconnects_total`, `modelrepo_watchers`; the copy:
    /// `modelrepo_copy_age_seconds`, `modelrepo_copy_in_sync`,
    /// `modelrepo_copy_served_while_down_total`, `modelrepo_copy_reloads_total`; the
    /// outbox: `modelrepo_outbox_pending{unit}`, `modelrepo_outbox_oldest_age_seconds`,
    /// `modelrepo_outbox_queued_total`, `modelrepo_outbox_replayed_total`,
    /// `modelrepo_outbox_dead_letters`.
    std::vector<MetricFamily> backend_metrics() const override;
    /// With a copy that holds data: when it was last known current (now, while its feed
    /// keeps it in sync). Without a copy every read goes to the database: `nullopt`.
    std::optional<Timestamp> data_as_of() const override;

    PoolStats pool_stats() const;

    /// The last-known copy, when one is kept.
    struct CopyState {
        bool has_data = false; ///< loaded from the database or from cache_dir
        bool in_sync = false;  ///< loaded and kept current by a connected change feed
        Timestamp as_of{};     ///< when it was last known current
        std::int64_t version = 0;
        std::uint64_t served_while_down = 0; ///< reads answered from it for the database
    };
    std::optional<CopyState> copy_state() const;

    /// The outbox's contents. `Errc::not_supported` without `outbox=`.
    Result<OutboxState> outbox_state() const;
    /// Applies what the outbox holds now, on the calling thread (a background thread does
    /// the same by itself as soon as the database answers). Errors: the database's, while
    /// it still cannot take the oldest batch; `Errc::not_supported` without an outbox.
    Result<OutboxDrain> drain_outbox();
    /// Called on the outbox's thread for each batch replayed or moved to the dead letters.
    void on_outbox_event(std::function<void(const OutboxEvent&)> listener);
    const PostgresConfig& config() const noexcept;

private:
    struct Impl;
    explicit PostgresRepository(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace modelrepo
