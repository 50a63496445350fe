// SPDX-License-Identifier: MIT
// PostgresRepository: the facade of the backend. A read is one statement of SqlCatalog on
// the pool; a write one upsert; watch() hands out the change feed. What it offers the
// durable layer above it (src/copy, src/outbox) are capabilities: SqlCatalog reads the
// whole catalogue, the feed reports changes, the upsert applies replayed writes.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <modelrepo/postgres_repository.hpp>

#include "../core/backend_metrics.hpp"
#include "../core/capabilities.hpp"
#include "../core/health_tracker.hpp"
#include "../core/write_check.hpp"
#include "catalog/schema.hpp"
#include "catalog/sql_catalog.hpp"
#include "feed/feed_set.hpp"
#include "logical/logical_feed.hpp"
#include "logical/snapshot_handoff.hpp"

namespace modelrepo {

using namespace std::chrono;

struct PostgresRepository::Parts final : detail::ChangeSource, detail::StatusWriter {
    // Declared in the order the parts depend on each other; destroyed the other way: the
    // feed (it delivers into the hub or the sink), the hub, then the SQL and its pool,
    // then the health they report to.
    detail::HealthTracker health;
    /// The logical feed's slot snapshots, to the copy's re-read (an exact resync).
    detail::logical::SnapshotHandoff handoff;
    detail::SqlCatalog sql;
    ChangeHub hub;         ///< watch()'s subscribers, when no layer above takes the feed
    detail::FeedSet feeds; ///< the feed that runs (and those feed=auto may switch to)
    /// The feed that runs: `automatic` while feed=auto has not yet asked the database.
    std::atomic<FeedKind> running{FeedKind::automatic};
    std::once_flag feed_started;
    std::mutex choose_mutex; ///< guards stopping, feed_changed (with the chooser's start)
    std::condition_variable choose_wake;
    bool stopping = false;
    /// feed=auto: the running feed found that migrate installed another (or removed its).
    bool feed_changed = false;
    std::thread chooser;   ///< feed=auto: asks the database which feed it was migrated for
    std::mutex sink_mutex; ///< guards sink, state_sink (set by the layer above, read by the feed)
    Sink sink;             ///< the layer above that takes the feed (a copy), if any
    StateSink state_sink;  ///< told when the feed's session comes and goes
    RowSink row_sink;      ///< the layer's taker of decoded status rows, if any
    std::atomic<bool> own_watchers{false}; ///< watch() subscribed to the hub

    Parts(PostgresConfig config, detail::Mapping mapping,
          std::shared_ptr<const detail::SessionConfig> session,
          std::shared_ptr<const detail::SessionConfig> direct)
        : health(session->source)
        , sql(std::move(config), std::move(session), std::move(direct), {}, std::move(mapping),
              &health)
        , feeds(sql.config(), feed_setup()) {
        sql.set_snapshot_handoff(&handoff);
        running = chosen_feed(sql.config());
        if (running != FeedKind::automatic)
            feeds.make(running);
    }

    ~Parts() {
        // The feeds' threads call back into what is declared after `feeds` (choose_wake,
        // sink_mutex): they end before any member goes.
        stop_chooser();
        feeds.stop();
    }

    /// The feed of the URL: feed=auto is what migrate installed, asked at start.
    static FeedKind chosen_feed(const PostgresConfig& c) { return c.feed; }

    /// The catalogue's tables as the logical feed reads them: a mapping's are keyed by
    /// their ids, where it names them (a status then names its model by the model's id).
    static detail::logical::CatalogueTables tables_of(const detail::Mapping& m) {
        detail::logical::CatalogueTables t;
        if (m.builtin)
            return t;
        t.builtin = false;
        t.providers = {m.providers.table, m.providers.slug.name, m.providers.id.name, ""};
        t.models = {m.models.table, m.models.slug.name, m.models.id.name, ""};
        t.statuses = {m.statuses.table, "", m.statuses.id.name, ""};
        (m.models.id.mapped() ? t.statuses.model : t.statuses.slug) = m.statuses.model_id.name;
        return t;
    }

    detail::FeedSet::Setup feed_setup() {
        detail::FeedSet::Setup setup;
        setup.session = sql.feed_session();
        setup.schema_prefix = sql.schema_prefix();
        setup.tables = tables_of(sql.mapping());
        setup.automatic = chosen_feed(sql.config()) == FeedKind::automatic;
        setup.health = &health;
        setup.handoff = &handoff;
        setup.sink = [this](std::vector<CatalogChange> changes) { deliver(std::move(changes)); };
        setup.rows = [this](std::vector<CatalogChange>& changes, std::vector<ModelStatus>& rows) {
            // This repository's own watchers may read the database on a change: they are
            // told once it is visible, through the sink.
            if (own_watchers.load(std::memory_order_acquire))
                return false;
            std::lock_guard lock(sink_mutex);
            return row_sink && row_sink(changes, rows);
        };
        setup.state = [this](bool connected) {
            std::lock_guard lock(sink_mutex);
            if (state_sink)
                state_sink(connected);
        };
        setup.changed = [this] {
            {
                std::lock_guard lock(choose_mutex);
                feed_changed = true;
            }
            choose_wake.notify_all();
        };
        return setup;
    }

    detail::ChangeFeed::Stats feed_stats() const { return feeds.stats(running.load()); }

    /// The feed's changes: to this repository's own watchers, and to the layer above.
    void deliver(std::vector<CatalogChange> changes) {
        if (own_watchers.load(std::memory_order_acquire))
            for (const auto& change : changes)
                hub.publish(change);
        std::lock_guard lock(sink_mutex);
        if (sink)
            sink(std::move(changes));
    }

    void start_feed() {
        std::call_once(feed_started, [&] {
            if (running.load() == FeedKind::automatic)
                chooser = std::thread([this] { choose(); });
            else
                feeds.start(running.load());
        });
    }

    /// feed=auto: asks the database which feed migrate installed (again, with backoff,
    /// while it does not answer), then starts that one. An answer that comes while
    /// stopping still starts it, as an explicit feed= would have been: its first session
    /// attempt ends before stop() returns, and its resync reaches the copy (a short-lived
    /// process saves a copy for the next one that way).
    ///
    /// Where none is installed, or the logical feed cannot run here, it polls. Whichever
    /// runs tells when migrate changed the database (the polling feed: a feed that can run
    /// is installed now; the trigger feed: its triggers are gone; the logical feed: its
    /// publication is); this thread then stops it, asks again and starts the new one (a
    /// fresh feed: its first delivery is a resync).
    void choose() {
        const PostgresConfig& c = sql.config();
        milliseconds wait = c.reconnect_backoff_initial;
        bool first = true;
        for (;;) {
            auto installed = sql.installed_feed();
            std::unique_lock lock(choose_mutex);
            if (!installed) {
                health.failed("feed", installed.error());
                if (stopping || choose_wake.wait_for(lock, wait, [&] { return stopping; }))
                    return;
                wait = std::min(wait * 2, c.reconnect_backoff_max);
                continue;
            }
            if (stopping && !first)
                return;
            first = false;
            wait = c.reconnect_backoff_initial;
            // The publication where logical decoding can run; else the triggers where they
            // are (also beside a publication); else polling.
            const auto& found = installed.value();
            FeedKind kind = found.kind;
            if (kind == FeedKind::logical && !found.logical_blocked.empty())
                kind = found.triggers ? FeedKind::triggers : FeedKind::polling;
            else if (kind == FeedKind::automatic)
                kind = FeedKind::polling;
            // The polling feed reads modelrepo's own tables: on a mapping, the trigger
            // feed, which says what is missing (run migrate).
            if (kind == FeedKind::polling && !c.mapping.empty())
                kind = FeedKind::triggers;
            feed_changed = false;
            feeds.make(kind);
            running = kind;
            feeds.start(kind);
            choose_wake.wait(lock, [&] { return stopping || feed_changed; });
            if (stopping)
                return;
            // The running feed's thread has ended (or is ending): it told us last.
            lock.unlock();
            feeds.stop();
        }
    }

    void stop_chooser() {
        {
            std::lock_guard lock(choose_mutex);
            stopping = true;
        }
        choose_wake.notify_all();
        if (chooser.joinable())
            chooser.join();
    }

    // ChangeSource, for a last-known copy (and for watch() itself).
    std::optional<Error> unavailable() const override {
        const auto& c = sql.config();
        if (!c.pgbouncer || !c.direct_url.empty())
            return std::nullopt;
        Error error =
            make_error(Errc::not_supported,
                       "the change feed needs a session of its own for LISTEN, which PgBouncer's "
                       "transaction mode cannot give (pgbouncer=true): set direct_url to a direct, "
                       "percent-encoded URL of the database (Prisma's directUrl)");
        error.source = sql.name();
        return error;
    }

    Result<void> check_watchable() override {
        if (auto error = unavailable())
            return *error;
        // A database on schema 1 has no triggers, one on 2 the old ones: say so now, when
        // it can be asked. One
        // that does not answer is no error: the feed starts delivering when it does.
        if (auto version = sql.schema_version();
            version && version.value() < detail::sql::feed_schema_version) {
            Error error =
                make_error(Errc::schema_missing,
                           "PostgreSQL " + sql.name() + ": the database is on schema version " +
                               std::to_string(version.value()) +
                               (version.value() < 2 ? ", which has no change feed"
                                                    : ", whose change feed this modelrepo "
                                                      "does not read") +
                               "; run modelrepo migrate");
            error.source = sql.name();
            return error;
        }
        return success();
    }

    void start_changes(Sink to, StateSink state, RowSink rows) override {
        {
            std::lock_guard lock(sink_mutex);
            sink = std::move(to);
            state_sink = std::move(state);
            row_sink = std::move(rows);
        }
        handoff.want(true); // a copy: it re-reads at each resync, in the slot's snapshot
        start_feed();
    }

    void stop_changes() override {
        // The feed ends its session attempt first, so that what it was about to deliver
        // (the resync of its first connect) still reaches the copy, whose thread runs yet:
        // a short-lived process saves a copy for the next one that way.
        stop_chooser();
        handoff.want(false);
        feeds.stop();
        std::lock_guard lock(sink_mutex);
        sink = {};
        state_sink = {};
        row_sink = {};
    }

    // StatusWriter, for an outbox's replay.
    Result<std::int64_t> apply_statuses(std::span<const ModelStatus> statuses) override {
        auto receipt = sql.upsert_statuses(statuses);
        if (!receipt)
            return std::move(receipt).error();
        return receipt.value().applied;
    }
    std::chrono::milliseconds max_clock_skew() const override {
        return sql.config().max_clock_skew;
    }
    std::string outbox_identity() const override {
        const auto& m = sql.mapping();
        return sql.name() + " (schema " +
               (sql.config().schema.empty() ? std::string("default") : sql.config().schema) +
               ", statuses in " + m.statuses.table + ")";
    }
    Result<std::vector<Result<std::int64_t>>>
    apply_each(std::span<const std::vector<ModelStatus>> batches) override {
        return sql.upsert_each(batches);
    }
};

PostgresRepository::PostgresRepository(std::unique_ptr<Parts> parts)
    : parts_(std::move(parts)) {}

PostgresRepository::~PostgresRepository() = default;

Result<std::shared_ptr<PostgresRepository>> PostgresRepository::create(PostgresConfig config) {
    if (config.conninfo.empty())
        return make_error(Errc::invalid_argument, "PostgresConfig::conninfo is empty");
    if (config.acquire_timeout.count() <= 0 || config.query_timeout.count() <= 0)
        return make_error(Errc::invalid_argument,
                          "PostgresConfig timeouts must be positive (acquire_timeout, "
                          "query_timeout)");
    if (config.schema.find('\0') != std::string::npos)
        return make_error(Errc::invalid_argument, "PostgresConfig::schema holds a NUL byte");
    if (config.feed_keepalive.count() <= 0)
        return make_error(Errc::invalid_argument,
                          "PostgresConfig::feed_keepalive must be positive");
    auto session_of =
        [&](const std::string& conninfo,
            bool through_pgbouncer) -> Result<std::shared_ptr<const detail::SessionConfig>> {
        auto session = detail::parse_session_config(conninfo);
        if (!session)
            return std::move(session).error();
        session.value().schema = config.schema;
        if (!config.name.empty())
            session.value().source = config.name;
        session.value().statement_timeout = config.query_timeout;
        session.value().connect_timeout = duration_cast<milliseconds>(config.connect_timeout);
        session.value().prepared_statements = config.prepared_statements && !through_pgbouncer;
        // Session state is shared with other clients in PgBouncer's transaction mode.
        session.value().session_settings = !through_pgbouncer;
        return std::shared_ptr<const detail::SessionConfig>(
            std::make_shared<detail::SessionConfig>(std::move(session).value()));
    };
    auto session = session_of(config.conninfo, config.pgbouncer);
    if (!session)
        return std::move(session).error();
    std::shared_ptr<const detail::SessionConfig> direct;
    if (!config.direct_url.empty()) {
        auto direct_config = PostgresConfig::from_url(config.direct_url);
        if (!direct_config)
            return std::move(direct_config).error();
        auto direct_session = session_of(direct_config.value().conninfo, false);
        if (!direct_session)
            return std::move(direct_session).error();
        direct = std::move(direct_session).value();
    }
    if (config.feed == FeedKind::polling && !config.mapping.empty())
        return make_error(Errc::not_supported,
                          "feed=polling with mapping= is not built: the polling feed reads "
                          "modelrepo's own tables; use feed=triggers, logical or auto for a "
                          "mapping");
    detail::Mapping mapping = detail::Mapping::builtin_tables();
    if (!config.mapping.empty()) {
        auto loaded = detail::load_mapping(config.mapping);
        if (!loaded)
            return std::move(loaded).error();
        mapping = std::move(loaded).value();
    }
    auto parts = std::make_unique<Parts>(std::move(config), std::move(mapping),
                                         std::move(session).value(), std::move(direct));
    return std::shared_ptr<PostgresRepository>(new PostgresRepository(std::move(parts)));
}

Result<std::shared_ptr<PostgresRepository>> PostgresRepository::open(std::string_view url) {
    auto config = PostgresConfig::from_url(url);
    if (!config)
        return config.error();
    return create(std::move(config).value());
}

std::string_view PostgresRepository::name() const noexcept {
    return parts_->sql.name();
}

const PostgresConfig& PostgresRepository::config() const noexcept {
    return parts_->sql.config();
}

PoolStats PostgresRepository::pool_stats() const {
    return parts_->sql.pool_stats();
}

Result<std::int64_t> PostgresRepository::count_models() {
    return parts_->sql.count_models();
}

Result<std::int64_t> PostgresRepository::count_providers() {
    return parts_->sql.count_providers();
}

Result<std::vector<ModelStatus>> PostgresRepository::list_statuses() {
    return parts_->sql.list_statuses();
}

Result<std::vector<Model>> PostgresRepository::find_models(std::span<const std::string> slugs) {
    return parts_->sql.find_models(slugs);
}

Result<std::optional<Model>> PostgresRepository::find_model(std::string_view slug) {
    return parts_->sql.find_model(slug);
}

Result<std::vector<Model>> PostgresRepository::list_models() {
    return parts_->sql.list_models();
}

Result<SystemStats> PostgresRepository::system_stats() {
    return parts_->sql.system_stats();
}

Result<Snapshot> PostgresRepository::export_snapshot() {
    return parts_->sql.export_snapshot();
}

Result<void> PostgresRepository::check_health() {
    return parts_->sql.check_health();
}

Result<WriteReceipt> PostgresRepository::write_statuses(std::span<const ModelStatus> statuses,
                                                        const WriteOptions& options) {
    if (options.source_down)
        return *options.source_down; // no outbox here to keep it in
    return parts_->sql.upsert_statuses(
        statuses, detail::vouched(options, statuses, parts_->sql.config().max_clock_skew));
}

Result<int> PostgresRepository::migrate() {
    return parts_->sql.migrate();
}

Result<int> PostgresRepository::schema_version() {
    return parts_->sql.schema_version();
}

Result<void> PostgresRepository::import_snapshot(const Snapshot& snapshot,
                                                 const ProgressFn& progress) {
    return parts_->sql.import_snapshot(snapshot, progress);
}

Result<Subscription>
PostgresRepository::watch(std::function<void(const CatalogChange&)> on_change) {
    if (!on_change)
        return make_error(Errc::invalid_argument, "watch() needs a callback");
    if (auto ready = parts_->check_watchable(); !ready)
        return std::move(ready).error();
    auto subscription = parts_->hub.subscribe(std::move(on_change));
    parts_->own_watchers.store(true, std::memory_order_release);
    parts_->start_feed();
    return subscription;
}

void* PostgresRepository::find_capability(const std::type_info& type) noexcept {
    for (void* offered :
         {offer<CatalogAdmin>(type, this), offer<detail::CatalogReader>(type, &parts_->sql),
          offer<detail::ChangeSource>(type, parts_.get()),
          offer<detail::StatusWriter>(type, parts_.get()),
          offer<HealthControl>(type, &parts_->health),
          offer<detail::HealthObserver>(type, &parts_->health)})
        if (offered)
            return offered;
    return nullptr;
}

std::vector<MetricFamily> PostgresRepository::backend_metrics() const {
    using Type = MetricFamily::Type;
    PoolStats p = pool_stats();
    std::vector<MetricFamily> out;
    auto gauge = [&](const char* name, const char* help, double value) {
        detail::append_metric(out, name, Type::gauge, help, value);
    };
    auto counter = [&](const char* name, const char* help, double value) {
        detail::append_metric(out, name, Type::counter, help, value);
    };
    out.push_back({"modelrepo_pool_connections", Type::gauge, "Pooled connections by state.", {}});
    out.back()
        .add({{"state", "open"}}, p.open)
        .add({{"state", "idle"}}, p.idle)
        .add({{"state", "busy"}}, p.busy)
        .add({{"state", "max"}}, p.max_size);
    gauge("modelrepo_pool_waiting", "Callers waiting for a connection.", p.waiting);
    gauge("modelrepo_pool_server_down",
          "1 while the last connect failed and callers fail fast until the backoff passes.",
          p.server_down ? 1 : 0);
    counter("modelrepo_pool_connects_total", "Sessions opened.", static_cast<double>(p.connects));
    counter("modelrepo_pool_connect_failures_total", "Failed connects.",
            static_cast<double>(p.connect_failures));
    counter("modelrepo_pool_acquire_timeouts_total", "Callers that got pool_exhausted.",
            static_cast<double>(p.acquire_timeouts));
    out.push_back({"modelrepo_pool_replaced_total",
                   Type::counter,
                   "Sessions closed: broken or cut at a deadline, or at max lifetime.",
                   {}});
    out.back()
        .add({{"why", "broken"}}, static_cast<double>(p.broken_replaced))
        .add({{"why", "expired"}}, static_cast<double>(p.expired_replaced));
    out.push_back({"modelrepo_pool_acquire_wait_seconds",
                   Type::histogram,
                   "Time callers waited for a connection.",
                   {}});
    out.back().add_histogram({}, PoolStats::wait_bounds_ms, p.acquire_wait_buckets, std::nullopt,
                             0.001);
    if (auto r = parts_->sql.read_pool_stats()) {
        // The read pool (read_target standby or prefer-standby), beside the main one.
        auto read = [](const char* state) {
            return std::vector<std::pair<std::string, std::string>>{{"pool", "read"},
                                                                    {"state", state}};
        };
        out[0]
            .add(read("open"), r->open)
            .add(read("idle"), r->idle)
            .add(read("busy"), r->busy)
            .add(read("max"), r->max_size);
        gauge("modelrepo_read_pool_server_down",
              "1 while the read pool finds no server it may read from.", r->server_down ? 1 : 0);
        counter("modelrepo_read_pool_connects_total",
                "Read sessions opened (standbys, or the primary as a second choice).",
                static_cast<double>(r->connects));
        counter("modelrepo_read_pool_replaced_total",
                "Read sessions closed: broken, past the lag bound, promoted, or expired.",
                static_cast<double>(r->broken_replaced + r->expired_replaced));
    }
    {
        auto f = parts_->feed_stats();
        FeedKind kind = parts_->running.load();
        out.push_back({"modelrepo_feed_info",
                       Type::gauge,
                       "The change feed that runs (logical decoding, triggers or polling; deciding "
                       "while feed=auto has not yet asked the database).",
                       {}});
        out.back().add({{"feed", kind == FeedKind::automatic ? std::string("deciding")
                                                             : std::string(to_string(kind))}},
                       1);
        gauge("modelrepo_feed_connected", "1 while the change feed's session listens.",
              f.connected ? 1 : 0);
        counter("modelrepo_feed_changes_total",
                "Changes the feed read from the change log and delivered.",
                static_cast<double>(f.delivered));
        gauge("modelrepo_feed_version", "The highest catalogue version the feed delivered.",
              static_cast<double>(f.version));
        counter("modelrepo_feed_polls_total", "Reads of the change log.",
                static_cast<double>(f.polls));
        gauge("modelrepo_feed_asleep",
              "1 while the feed waits to be notified (0: it polls, writers do not notify).",
              f.asleep ? 1 : 0);
        counter("modelrepo_feed_notifications_total", "Notifications the feed's session read.",
                static_cast<double>(f.received));
        counter("modelrepo_feed_resyncs_total", "Resyncs: each (re)connect, each bulk import.",
                static_cast<double>(f.resyncs));
        counter("modelrepo_feed_unknown_payloads_total",
                "Notifications on the channel that were not the triggers'.",
                static_cast<double>(f.unknown));
        counter("modelrepo_feed_reconnects_total", "Feed sessions lost.",
                static_cast<double>(f.disconnects));
    }
    if (parts_->own_watchers.load(std::memory_order_acquire))
        detail::append_hub_metrics(out, parts_->hub.stats());
    return out;
}

} // namespace modelrepo
