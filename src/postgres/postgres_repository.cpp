// SPDX-License-Identifier: MIT
// PostgresRepository: the facade. A read goes to the last-known copy when it is live and
// in sync, else to the SQL on the pool, and to the copy when the database cannot answer
// and the copy is fresh enough; a write goes to the SQL, then into the copy; watch()
// hands out the change feed. The parts: SqlCatalog (SQL and decoding), ConnectionPool
// and Connection (sessions), ChangeFeed (LISTEN), LiveCopy (the copy), ChangeHub.
#include <atomic>
#include <mutex>

#include <modelrepo/postgres_repository.hpp>

#include "../core/catalog_view.hpp"
#include "../core/files.hpp"
#include "change_feed.hpp"
#include "errors.hpp"
#include "live_copy.hpp"
#include "outbox_replay.hpp"
#include "schema.hpp"
#include "sql_catalog.hpp"

namespace modelrepo {

using namespace std::chrono;

struct PostgresRepository::Impl {
    // Declared in the order the parts depend on each other; destroyed the other way:
    // the outbox's replay thread first (it uses the outbox and the SQL), the feed (it
    // feeds the copy), the copy (it feeds the hub), the hub, then the SQL and its pool
    // (the copy reads through them).
    detail::SqlCatalog sql;
    const std::string copy_source; ///< SystemStats::source of answers from the copy
    std::atomic<std::uint64_t> served_while_down{0};
    ChangeHub hub;
    std::unique_ptr<detail::LiveCopy> copy;
    std::unique_ptr<detail::ChangeFeed> feed;
    std::once_flag feed_started;
    std::unique_ptr<detail::Outbox> outbox;
    std::unique_ptr<detail::OutboxReplay> replay;
    std::atomic<std::uint64_t> queued_statuses{0};

    Impl(PostgresConfig config, std::shared_ptr<const detail::SessionConfig> session,
         std::shared_ptr<const detail::SessionConfig> direct,
         std::unique_ptr<detail::Outbox> opened_outbox)
        : sql(std::move(config), std::move(session), std::move(direct))
        , copy_source(sql.name() + " (last-known copy)")
        , outbox(std::move(opened_outbox)) {
        const PostgresConfig& c = sql.config();
        if (c.keeps_copy()) {
            detail::LiveCopy::Options options;
            options.dir = c.cache_dir;
            options.key = "postgres-" + detail::fnv1a_hex(sql.name() + "|" + c.schema);
            copy = std::make_unique<detail::LiveCopy>(options, sql, hub);
        }
        detail::ChangeFeed::Options feed_options;
        feed_options.heartbeat = c.feed_keepalive;
        feed_options.heartbeat_timeout = std::min(c.feed_keepalive, milliseconds(3'000));
        feed_options.backoff_initial = c.reconnect_backoff_initial;
        feed_options.backoff_max = c.reconnect_backoff_max;
        auto sink = copy ? detail::ChangeFeed::Sink([this](std::vector<CatalogChange> changes) {
            copy->on_changes(std::move(changes));
        })
                         : detail::ChangeFeed::Sink([this](std::vector<CatalogChange> changes) {
                               for (auto& change : changes)
                                   hub.publish(std::move(change));
                           });
        feed = std::make_unique<detail::ChangeFeed>(sql.feed_session(), sql.schema_prefix(),
                                                    feed_options, std::move(sink),
                                                    [this](bool connected) {
                                                        if (copy)
                                                            copy->on_feed(connected);
                                                    });
        if (copy) {
            copy->start();
            start_feed();
        }
        if (outbox) {
            detail::OutboxReplay::Options replay_options;
            replay_options.backoff_initial = c.reconnect_backoff_initial;
            replay_options.backoff_max = c.reconnect_backoff_max;
            replay = std::make_unique<detail::OutboxReplay>(*outbox, sql, replay_options);
            replay->start(); // drains what an earlier process left, as soon as it can
        }
    }

    /// Keeps a batch the database could not take (for `cause`) in the outbox.
    Result<WriteReceipt> defer(std::span<const ModelStatus> statuses, const Error& cause) {
        // Checked here as the database would: model slugs against the copy, when there is
        // one (the ranges are checked before anything else).
        if (copy && copy->has_data()) {
            const auto& catalog = copy->catalog();
            for (std::size_t i = 0; i < statuses.size(); ++i)
                if (!catalog.find(statuses[i].model_slug)) {
                    Error e = make_error(Errc::invalid_argument,
                                         "statuses[" + std::to_string(i) + "]: unknown model '" +
                                             statuses[i].model_slug +
                                             "' (not in the last-known copy); nothing was "
                                             "written or queued");
                    e.source = sql.name();
                    return e;
                }
        }
        auto queued = outbox->enqueue(statuses);
        if (!queued) {
            if (queued.error().is(Errc::outbox_full))
                return std::move(queued).error();
            // Not durable, so not acknowledged: the database's error, and the outbox's.
            Error e = cause;
            e.message += "; the outbox could not keep the write either: " + queued.error().message;
            return e;
        }
        if (copy)
            copy->apply_statuses(statuses); // read your writes during the outage
        queued_statuses.fetch_add(static_cast<std::uint64_t>(queued.value()),
                                  std::memory_order_relaxed);
        replay->wake();
        WriteReceipt receipt;
        receipt.queued = queued.value();
        receipt.outbox = outbox->path().string();
        receipt.deferred_because = cause;
        return receipt;
    }

    void start_feed() {
        std::call_once(feed_started, [this] { feed->start(); });
    }

    /// `db()` or the copy (`from_copy(catalog, down)`), as the facade's comment says.
    template <class Db, class FromCopy>
    auto read(Db&& db, FromCopy&& from_copy) -> decltype(db()) {
        // Without a copy the database's answer is returned as it comes (built in the
        // caller's return slot: a Result of Boost 1.74 carries an Error beside the value,
        // so a move costs a few dozen instructions on a path that is otherwise libpq's).
        if (!copy)
            return db();
        if (sql.config().live_cache && copy->in_sync())
            return from_copy(copy->catalog(), false);
        return or_copy(db(), from_copy);
    }

    /// `answer`, or the copy's when the database could not answer for an outage.
    template <class Answer, class FromCopy>
    Answer or_copy(Answer answer, FromCopy& from_copy) {
        if (answer || !detail::is_outage(answer.error()) || !copy->has_data())
            return answer;
        auto age = Clock::now() - copy->as_of();
        if (age > sql.config().max_stale) {
            answer.error().message += " (the last-known copy is " +
                                      std::to_string(duration_cast<seconds>(age).count()) +
                                      " s old, past max_stale)";
            return answer;
        }
        served_while_down.fetch_add(1, std::memory_order_relaxed);
        return from_copy(copy->catalog(), true);
    }
};

PostgresRepository::PostgresRepository(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

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
    if (config.pgbouncer && config.keeps_copy() && config.direct_url.empty())
        return make_error(Errc::invalid_argument,
                          "cache_dir and cache=live keep the copy current through the change "
                          "feed, which PgBouncer's transaction mode cannot carry (pgbouncer=true): "
                          "set direct_url to a direct (percent-encoded) URL of the database");
    auto session_of =
        [&](const std::string& conninfo,
            bool through_pgbouncer) -> Result<std::shared_ptr<const detail::SessionConfig>> {
        auto session = detail::parse_session_config(conninfo);
        if (!session)
            return std::move(session).error();
        session.value().schema = config.schema;
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
    if (!config.outbox.empty() && config.outbox_max < 1)
        return make_error(Errc::invalid_argument, "PostgresConfig::outbox_max must be positive");
    std::unique_ptr<detail::Outbox> outbox;
    if (!config.outbox.empty()) {
        // A file that cannot be an outbox is an error now, naming it: not a surprise at
        // the first outage.
        auto opened = detail::Outbox::open(config.outbox, config.outbox_max);
        if (!opened)
            return std::move(opened).error();
        outbox = std::move(opened).value();
    }
    auto impl = std::make_unique<Impl>(std::move(config), std::move(session).value(),
                                       std::move(direct), std::move(outbox));
    return std::shared_ptr<PostgresRepository>(new PostgresRepository(std::move(impl)));
}

Result<std::shared_ptr<PostgresRepository>> PostgresRepository::open(std::string_view url) {
    auto config = PostgresConfig::from_url(url);
    if (!config)
        return config.error();
    return create(std::move(config).value());
}

std::string_view PostgresRepository::name() const noexcept {
    return impl_->sql.name();
}

const PostgresConfig& PostgresRepository::config() const noexcept {
    return impl_->sql.config();
}

PoolStats PostgresRepository::pool_stats() const {
    return impl_->sql.pool_stats();
}

Result<std::int64_t> PostgresRepository::count_models() {
    return impl_->read(
        [&] { return impl_->sql.count_models(); },
        [](const detail::Catalog& c, bool) -> Result<std::int64_t> { return c.stats.models; });
}

Result<std::int64_t> PostgresRepository::count_providers() {
    return impl_->read(
        [&] { return impl_->sql.count_providers(); },
        [](const detail::Catalog& c, bool) -> Result<std::int64_t> { return c.stats.providers; });
}

Result<std::vector<ModelStatus>> PostgresRepository::list_statuses() {
    return impl_->read(
        [&] {
            auto answer = impl_->sql.list_statuses();
            if (answer && impl_->copy)
                impl_->copy->note_statuses(answer.value());
            return answer;
        },
        [](const detail::Catalog& c, bool) -> Result<std::vector<ModelStatus>> {
            return c.statuses();
        });
}

Result<std::vector<Model>> PostgresRepository::find_models(std::span<const std::string> slugs) {
    return impl_->read([&] { return impl_->sql.find_models(slugs); },
                       [&](const detail::Catalog& c, bool) -> Result<std::vector<Model>> {
                           return c.find_all(slugs);
                       });
}

Result<std::optional<Model>> PostgresRepository::find_model(std::string_view slug) {
    using Answer = Result<std::optional<Model>>;
    return impl_->read([&] { return impl_->sql.find_model(slug); },
                       [&](const detail::Catalog& c, bool) -> Answer {
                           if (const Model* m = c.find(slug))
                               return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>,
                                             std::in_place, *m);
                           return Answer(boost::outcome_v2::in_place_type<std::optional<Model>>);
                       });
}

Result<std::vector<Model>> PostgresRepository::list_models() {
    return impl_->read([&] { return impl_->sql.list_models(); },
                       [](const detail::Catalog& c, bool) -> Result<std::vector<Model>> {
                           std::vector<Model> out;
                           out.reserve(c.models.size());
                           for (const auto& m : c.models)
                               out.push_back(*m);
                           return out;
                       });
}

Result<SystemStats> PostgresRepository::system_stats() {
    return impl_->read([&] { return impl_->sql.system_stats(); },
                       [&](const detail::Catalog& c, bool down) -> Result<SystemStats> {
                           SystemStats s = c.stats;
                           s.as_of = impl_->copy->as_of();
                           s.source = down ? impl_->copy_source : impl_->sql.name();
                           return s;
                       });
}

Result<Snapshot> PostgresRepository::export_snapshot() {
    return impl_->read([&] { return impl_->sql.export_snapshot(); },
                       [&](const detail::Catalog& c, bool) -> Result<Snapshot> {
                           Snapshot s = c.snapshot();
                           s.generated_at = impl_->copy->as_of();
                           return s;
                       });
}

Result<void> PostgresRepository::check_health() {
    return impl_->sql.check_health();
}

Result<std::int64_t> PostgresRepository::upsert_statuses(std::span<const ModelStatus> statuses) {
    auto receipt = write_statuses(statuses);
    if (!receipt)
        return std::move(receipt).error();
    return receipt.value().applied + receipt.value().queued;
}

Result<WriteReceipt> PostgresRepository::write_statuses(std::span<const ModelStatus> statuses) {
    auto applied = impl_->sql.upsert_statuses(statuses); // checks the ranges first
    if (applied) {
        if (impl_->copy)
            impl_->copy->apply_statuses(statuses); // read your writes, before the feed says so
        WriteReceipt receipt;
        receipt.applied = applied.value();
        return receipt;
    }
    if (!impl_->outbox || !detail::is_outage(applied.error()))
        return std::move(applied).error();
    return impl_->defer(statuses, applied.error());
}

Result<WriteReceipt> PostgresRepository::defer_statuses(std::span<const ModelStatus> statuses) {
    if (!impl_->outbox)
        return ModelRepository::defer_statuses(statuses);
    for (std::size_t i = 0; i < statuses.size(); ++i)
        if (auto problem = detail::status_problem(statuses[i])) {
            Error e = make_error(Errc::invalid_argument, "statuses[" + std::to_string(i) + "]: " +
                                                             *problem + "; nothing was queued");
            e.source = impl_->sql.name();
            return e;
        }
    Error cause = make_error(Errc::circuit_open,
                             impl_->sql.name() + ": the caller's circuit breaker for the database "
                                                 "is open");
    cause.source = impl_->sql.name();
    return impl_->defer(statuses, cause);
}

Result<OutboxState> PostgresRepository::outbox_state() const {
    if (!impl_->outbox)
        return make_error(Errc::not_supported,
                          impl_->sql.name() + " has no outbox (add outbox=PATH to the URL)");
    auto state = impl_->outbox->state();
    if (!state)
        return std::move(state).error();
    OutboxState out;
    out.path = impl_->outbox->path();
    out.batches = state.value().batches;
    out.statuses = state.value().statuses;
    out.oldest = state.value().oldest;
    out.dead_letters = state.value().dead_letters;
    out.last_error = state.value().last_error;
    auto dead = impl_->outbox->dead_letters(100);
    if (!dead)
        return std::move(dead).error();
    for (const auto& d : dead.value())
        out.recent_dead_letters.push_back({d.id, d.queued_at, d.failed_at, d.statuses, d.error});
    return out;
}

Result<OutboxDrain> PostgresRepository::drain_outbox() {
    if (!impl_->outbox)
        return make_error(Errc::not_supported,
                          impl_->sql.name() + " has no outbox (add outbox=PATH to the URL)");
    return impl_->replay->drain();
}

void PostgresRepository::on_outbox_event(std::function<void(const OutboxEvent&)> listener) {
    if (impl_->replay)
        impl_->replay->set_listener(std::move(listener));
}

Result<int> PostgresRepository::migrate() {
    return impl_->sql.migrate();
}

Result<int> PostgresRepository::schema_version() {
    return impl_->sql.schema_version();
}

Result<void> PostgresRepository::import_snapshot(const Snapshot& snapshot) {
    return impl_->sql.import_snapshot(snapshot);
}

Result<Subscription>
PostgresRepository::watch(std::function<void(const CatalogChange&)> on_change) {
    if (!on_change)
        return make_error(Errc::invalid_argument, "watch() needs a callback");
    const auto& c = impl_->sql.config();
    if (c.pgbouncer && c.direct_url.empty()) {
        Error error = make_error(
            Errc::not_supported,
            "watch() needs a session of its own for LISTEN, which PgBouncer's transaction mode "
            "cannot give (pgbouncer=true): set direct_url to a direct, percent-encoded URL of "
            "the database (Prisma's directUrl)");
        error.source = impl_->sql.name();
        return error;
    }
    // A database on schema 1 has no triggers: say so now, when it can be asked. One
    // that does not answer is no error: the feed starts delivering when it does.
    if (auto version = impl_->sql.schema_version();
        version && version.value() < detail::sql::feed_schema_version) {
        Error error =
            make_error(Errc::schema_missing,
                       "PostgreSQL " + impl_->sql.name() + ": the database is on schema version " +
                           std::to_string(version.value()) +
                           ", which has no change feed; run modelrepo migrate");
        error.source = impl_->sql.name();
        return error;
    }
    auto subscription = impl_->hub.subscribe(std::move(on_change));
    impl_->start_feed();
    return subscription;
}

std::optional<PostgresRepository::CopyState> PostgresRepository::copy_state() const {
    if (!impl_->copy)
        return std::nullopt;
    CopyState s;
    s.has_data = impl_->copy->has_data();
    s.in_sync = impl_->copy->in_sync();
    s.as_of = impl_->copy->as_of();
    s.version = impl_->copy->stats().version;
    s.served_while_down = impl_->served_while_down.load(std::memory_order_relaxed);
    return s;
}

std::optional<Timestamp> PostgresRepository::data_as_of() const {
    if (!impl_->copy || !impl_->copy->has_data())
        return std::nullopt;
    return impl_->copy->as_of();
}

std::vector<MetricFamily> PostgresRepository::backend_metrics() const {
    using Type = MetricFamily::Type;
    PoolStats p = pool_stats();
    std::vector<MetricFamily> out;
    auto gauge = [&](const char* name, const char* help, double value) {
        out.push_back({name, Type::gauge, help, {}});
        out.back().add({}, value);
    };
    auto counter = [&](const char* name, const char* help, double value) {
        out.push_back({name, Type::counter, help, {}});
        out.back().add({}, value);
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
    if (auto r = impl_->sql.read_pool_stats()) {
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

    auto f = impl_->feed->stats();
    auto h = impl_->hub.stats();
    gauge("modelrepo_feed_connected", "1 while the change feed's session listens.",
          f.connected ? 1 : 0);
    counter("modelrepo_feed_changes_total",
            "Changes the feed received (notifications and caught-up log rows).",
            static_cast<double>(f.received + f.caught_up));
    counter("modelrepo_feed_resyncs_total", "Resyncs: each (re)connect, each bulk import.",
            static_cast<double>(f.resyncs));
    counter("modelrepo_feed_unknown_payloads_total",
            "Notifications on the channel that were not the triggers'.",
            static_cast<double>(f.unknown));
    counter("modelrepo_feed_reconnects_total", "Feed sessions lost.",
            static_cast<double>(f.disconnects));
    gauge("modelrepo_watchers", "Active watch() subscriptions.",
          static_cast<double>(h.subscribers));
    counter("modelrepo_watch_slow_callbacks_total", "Watch callbacks that took over 100 ms.",
            static_cast<double>(h.slow_callbacks));
    counter("modelrepo_watch_overflows_total",
            "Times a backlog of undelivered changes collapsed into one resync.",
            static_cast<double>(h.overflows));
    if (auto c = copy_state()) {
        auto stats = impl_->copy->stats();
        gauge("modelrepo_copy_in_sync", "1 while the last-known copy is kept current by the feed.",
              c->in_sync ? 1 : 0);
        if (c->has_data)
            gauge("modelrepo_copy_age_seconds",
                  "Seconds since the last-known copy was last known current (0 in sync).",
                  duration<double>(Clock::now() - c->as_of).count());
        counter("modelrepo_copy_served_while_down_total",
                "Reads the last-known copy answered while the database could not.",
                static_cast<double>(c->served_while_down));
        counter("modelrepo_copy_reloads_total", "Full reloads of the copy (resyncs).",
                static_cast<double>(stats.reloads));
    }
    if (impl_->outbox) {
        auto state = impl_->outbox->state();
        auto replayed = impl_->replay->stats();
        if (state) {
            out.push_back({"modelrepo_outbox_pending",
                           Type::gauge,
                           "What the outbox holds for the database.",
                           {}});
            out.back()
                .add({{"unit", "statuses"}}, static_cast<double>(state.value().statuses))
                .add({{"unit", "batches"}}, static_cast<double>(state.value().batches));
            gauge("modelrepo_outbox_oldest_age_seconds",
                  "Age of the oldest pending batch (0 when empty).",
                  state.value().oldest
                      ? duration<double>(Clock::now() - *state.value().oldest).count()
                      : 0.0);
            gauge("modelrepo_outbox_dead_letters",
                  "Batches the database refused for good, kept aside.",
                  static_cast<double>(state.value().dead_letters));
        }
        counter("modelrepo_outbox_queued_total", "Statuses this process queued.",
                static_cast<double>(impl_->queued_statuses.load()));
        counter("modelrepo_outbox_replayed_total", "Statuses this process replayed.",
                static_cast<double>(replayed.replayed_statuses));
    }
    return out;
}

} // namespace modelrepo
