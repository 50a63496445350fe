// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <unordered_map>

#include <modelrepo/postgres_repository.hpp>

#include "../core/catalog_view.hpp"
#include "errors.hpp"
#include "pool.hpp"
#include "schema.hpp"

namespace modelrepo {

namespace {

using detail::Statement;

/// `{"a","b\"c"}`: a text[] literal (parameters carry it; nothing is spliced into SQL).
template <class Strings>
std::string text_array(const Strings& items) {
    std::size_t size = 2;
    for (const auto& item : items)
        size += std::size(item) + 3; // quotes and comma; escapes may grow it further
    std::string out;
    out.reserve(size);
    out.push_back('{');
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i)
            out.push_back(',');
        out.push_back('"');
        for (char c : items[i]) {
            if (c == '"' || c == '\\')
                out.push_back('\\');
            out.push_back(c);
        }
        out.push_back('"');
    }
    out.push_back('}');
    return out;
}

std::string number_array(std::span<const std::optional<double>> items) {
    std::string out = "{";
    char buf[40];
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i)
            out.push_back(',');
        if (items[i]) {
            std::snprintf(buf, sizeof buf, "%.17g", *items[i]);
            out += buf;
        } else {
            out += "NULL";
        }
    }
    return out + "}";
}

Timestamp from_micros(long long micros) {
    return Timestamp(
        std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(micros)));
}

/// A field's number, parsed with std::from_chars. Throws PgFailure (as a bad answer
/// from the server) when the text is not one, or is NULL.
template <class T>
T number(detail::PgField field) {
    T value{};
    const char* end = field.text.data() + field.text.size();
    auto [stop, ec] = std::from_chars(field.text.data(), end, value);
    if (field.null || ec != std::errc() || stop != end)
        throw detail::PgFailure("unexpected value \"" + std::string(field.text) +
                                    "\" where a number was expected",
                                "", false);
    return value;
}

/// Reads one result row's fields left to right.
class Columns {
public:
    Columns(const detail::PgRows& rows, int row)
        : rows_(rows)
        , row_(row) {}

    /// The next field.
    detail::PgField next() { return rows_.field(row_, column_++); }
    /// The next field as text.
    std::string text() { return std::string(next().text); }
    /// The next field as a boolean ("t" / "f").
    bool boolean() { return next().text == "t"; }
    /// The next field as a number, or nothing when it is NULL.
    template <class T>
    std::optional<T> optional_number() {
        detail::PgField f = next();
        return f.null ? std::nullopt : std::optional<T>(number<T>(f));
    }
    /// Whether field `column` of this row is NULL.
    bool is_null(int column) const { return rows_.field(row_, column).null; }

private:
    const detail::PgRows& rows_;
    int row_;
    int column_ = 0;
};

/// The last seven columns of model_from_row, and all of status_from_row.
ModelStatus status_columns(Columns& col, std::string slug) {
    ModelStatus s;
    s.model_slug = std::move(slug);
    s.health = parse_health(col.next().text).value_or(Health::unknown);
    s.availability = number<double>(col.next());
    s.latency_ms = col.optional_number<double>();
    s.error_rate = number<double>(col.next());
    s.region = col.text();
    s.checked_at = from_micros(number<long long>(col.next()));
    return s;
}

/// slug, name, provider_slug, description, context_window, active, provider name,
/// provider website, then the status columns (NULL health: no status).
Model model_from_row(const detail::PgRows& rows, int row) {
    Columns col(rows, row);
    Model m;
    m.slug = col.text();
    m.name = col.text();
    m.provider_slug = col.text();
    m.description = col.text();
    m.context_window = col.optional_number<std::int64_t>();
    m.active = col.boolean();
    std::string provider_name = col.text();
    m.provider = Provider{m.provider_slug, std::move(provider_name), col.text()};
    if (!col.is_null(8))
        m.status = status_columns(col, m.slug);
    return m;
}

/// slug, then the status columns.
ModelStatus status_from_row(const detail::PgRows& rows, int row) {
    Columns col(rows, row);
    std::string slug = col.text();
    return status_columns(col, std::move(slug));
}

/// The seven array parameters of the upsert statement, one row per model (the newest
/// status of each wins: one statement cannot touch a row twice).
std::array<std::string, 7> status_arrays(std::span<const ModelStatus> statuses) {
    std::unordered_map<std::string_view, const ModelStatus*> newest;
    std::vector<std::string_view> order;
    for (const ModelStatus& s : statuses) {
        auto [it, inserted] = newest.emplace(s.model_slug, &s);
        if (inserted)
            order.push_back(s.model_slug);
        else if (it->second->checked_at <= s.checked_at)
            it->second = &s;
    }
    std::vector<std::string_view> health, regions;
    std::vector<std::string> times;
    std::vector<std::optional<double>> availability, latency, error_rate;
    for (std::string_view slug : order) {
        const ModelStatus& s = *newest[slug];
        health.push_back(to_string(s.health));
        regions.push_back(s.region);
        times.push_back(format_timestamp(s.checked_at));
        availability.push_back(s.availability);
        latency.push_back(s.latency_ms);
        error_rate.push_back(s.error_rate);
    }
    std::vector<std::string_view> time_views(times.begin(), times.end());
    return {text_array(order),     text_array(health),       number_array(availability),
            number_array(latency), number_array(error_rate), text_array(regions),
            text_array(time_views)};
}

} // namespace

/// What a call gets to work with: the leased connection (`pooled.pg`, its libpq
/// handle, and `pooled.prepared`, the statements prepared on it).
struct Session {
    detail::PooledConnection& pooled;
    PGconn* pg() { return pooled.pg; }
};

struct PostgresRepository::Impl {
    PostgresConfig config;
    detail::PgTarget target;
    std::string name;
    std::unique_ptr<detail::ConnectionPool> pool;

    /// Runs `fn(session)` on a pooled connection under the call's deadline and turns
    /// every failure into an Error. `fn` returns the value.
    template <class Fn>
    auto run(Fn&& fn) -> Result<decltype(fn(std::declval<Session&>()))> {
        auto lease = pool->acquire();
        if (!lease)
            return lease.error();
        Session session{lease.value().pooled()};
        auto& slot = *session.pooled.slot;
        pool->watchdog().arm(slot, lease.value().taken_at() + config.query_timeout);
        auto broken = [&] { return PQstatus(session.pg()) != CONNECTION_OK; };
        try {
            auto value = fn(session);
            if (detail::Watchdog::disarm(slot)) {
                lease.value().mark_broken();
                return fail("", "", true, true);
            }
            return value;
        } catch (const detail::PgFailure& e) {
            bool fired = detail::Watchdog::disarm(slot);
            bool gone = e.broken() || broken();
            if (fired || gone)
                lease.value().mark_broken();
            return fail(e.what(), e.sqlstate(), gone, fired);
        } catch (const std::exception& e) {
            // Anything else (out of memory, say): the connection's state is unknown, so
            // it is not reused.
            bool fired = detail::Watchdog::disarm(slot);
            lease.value().mark_broken();
            return fail(e.what(), "", true, fired);
        }
    }

    Error fail(const std::string& what, const std::string& sqlstate, bool broken, bool fired) {
        return detail::query_error(what.empty() ? "connection cut at the deadline" : what, sqlstate,
                                   broken, fired, target, name, config.query_timeout);
    }

    /// Runs one of the library's statements with text parameters, on libpq directly:
    /// server-side prepared (on first use on each connection) unless the URL said
    /// pgbouncer=true. Inside a PgTransaction it runs in that transaction.
    template <class... Args>
    detail::PgRows exec(Session& session, const Statement& statement, const Args&... args) {
        const char* values[] = {args.c_str()..., nullptr};
        constexpr int count = static_cast<int>(sizeof...(Args));
        PGconn* pg = session.pg();
        // name and sql view literals: data() is NUL-terminated (checked in schema.cpp).
        if (!config.prepared_statements)
            return detail::exec_params(pg, statement.sql.data(), count, values);
        std::uint64_t bit = std::uint64_t{1} << statement.id;
        if (!(session.pooled.prepared & bit)) {
            detail::prepare(pg, statement.name.data(), statement.sql.data());
            session.pooled.prepared |= bit;
        }
        try {
            return detail::exec_prepared(pg, statement.name.data(), count, values);
        } catch (const detail::PgFailure& e) {
            // A migration changed a column's type under the prepared plan: the server
            // answers "cached plan must not change result type" (0A000) until the
            // statement is prepared again. Outside a transaction, do that once.
            if (e.sqlstate() != "0A000" || PQtransactionStatus(pg) != PQTRANS_IDLE)
                throw;
            std::string deallocate = "DEALLOCATE " + std::string(statement.name);
            detail::exec_script(pg, deallocate.c_str());
            detail::prepare(pg, statement.name.data(), statement.sql.data());
            return detail::exec_prepared(pg, statement.name.data(), count, values);
        }
    }

    /// Runs on every new connection: deadline on the server side too, and the schema.
    void setup(PGconn* pg) {
        std::string sql = "SET statement_timeout = " + std::to_string(config.query_timeout.count());
        if (!config.schema.empty())
            sql += "; SET search_path TO " + detail::quote_identifier(pg, config.schema);
        detail::exec_script(pg, sql.c_str());
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
    auto impl = std::make_unique<Impl>();
    impl->config = std::move(config);
    impl->target = detail::parse_pg_target(impl->config.conninfo);
    impl->name = impl->target.display();
    Impl* raw = impl.get();
    impl->pool = std::make_unique<detail::ConnectionPool>(impl->config, impl->target, impl->name,
                                                          [raw](PGconn* pg) { raw->setup(pg); });
    return std::shared_ptr<PostgresRepository>(new PostgresRepository(std::move(impl)));
}

Result<std::shared_ptr<PostgresRepository>> PostgresRepository::open(std::string_view url) {
    auto config = PostgresConfig::from_url(url);
    if (!config)
        return config.error();
    return create(std::move(config).value());
}

std::string_view PostgresRepository::name() const noexcept {
    return impl_->name;
}

const PostgresConfig& PostgresRepository::config() const noexcept {
    return impl_->config;
}

PoolStats PostgresRepository::pool_stats() const {
    return impl_->pool->stats();
}

Result<std::int64_t> PostgresRepository::count_models() {
    return impl_->run([&](Session& session) {
        return number<std::int64_t>(impl_->exec(session, detail::sql::count_models).field(0, 0));
    });
}

Result<std::int64_t> PostgresRepository::count_providers() {
    return impl_->run([&](Session& session) {
        return number<std::int64_t>(impl_->exec(session, detail::sql::count_providers).field(0, 0));
    });
}

Result<std::vector<ModelStatus>> PostgresRepository::list_statuses() {
    return impl_->run([&](Session& session) {
        auto rows = impl_->exec(session, detail::sql::list_statuses);
        std::vector<ModelStatus> out;
        out.reserve(static_cast<std::size_t>(rows.size()));
        for (int row = 0; row < rows.size(); ++row)
            out.push_back(status_from_row(rows, row));
        return out;
    });
}

Result<std::vector<Model>> PostgresRepository::find_models(std::span<const std::string> slugs) {
    if (slugs.empty())
        return std::vector<Model>{};
    std::string array = text_array(slugs);
    return impl_->run([&](Session& session) {
        auto rows = impl_->exec(session, detail::sql::find_models, array);
        // The answer in the order asked for, each row decoded once: the rows sorted by
        // slug (views into the result), one binary search per slug asked for. A slug
        // asked for twice gets a copy of the first answer.
        struct Row {
            std::string_view slug;
            int row;
            int answer = -1; // its position in `ordered`, once decoded
        };
        std::vector<Row> by_slug;
        by_slug.reserve(static_cast<std::size_t>(rows.size()));
        for (int row = 0; row < rows.size(); ++row)
            by_slug.push_back({rows.field(row, 0).text, row});
        std::sort(by_slug.begin(), by_slug.end(),
                  [](const Row& a, const Row& b) { return a.slug < b.slug; });
        std::vector<Model> ordered;
        ordered.reserve(slugs.size());
        for (const std::string& slug : slugs) {
            auto it = std::lower_bound(by_slug.begin(), by_slug.end(), std::string_view(slug),
                                       [](const Row& r, std::string_view s) { return r.slug < s; });
            if (it == by_slug.end() || it->slug != slug)
                continue;
            if (it->answer >= 0) {
                ordered.push_back(ordered[static_cast<std::size_t>(it->answer)]);
            } else {
                it->answer = static_cast<int>(ordered.size());
                ordered.push_back(model_from_row(rows, it->row));
            }
        }
        return ordered;
    });
}

Result<std::optional<Model>> PostgresRepository::find_model(std::string_view slug) {
    std::string key(slug);
    return impl_->run([&](Session& session) {
        auto rows = impl_->exec(session, detail::sql::find_model, key);
        return rows.empty() ? std::optional<Model>()
                            : std::optional<Model>(model_from_row(rows, 0));
    });
}

Result<std::vector<Model>> PostgresRepository::list_models() {
    return impl_->run([&](Session& session) {
        auto rows = impl_->exec(session, detail::sql::list_models);
        std::vector<Model> out;
        out.reserve(static_cast<std::size_t>(rows.size()));
        for (int row = 0; row < rows.size(); ++row)
            out.push_back(model_from_row(rows, row));
        return out;
    });
}

Result<SystemStats> PostgresRepository::system_stats() {
    return impl_->run([&](Session& session) {
        auto rows = impl_->exec(session, detail::sql::system_stats);
        Columns col(rows, 0);
        SystemStats s;
        s.models = number<std::int64_t>(col.next());
        s.active_models = number<std::int64_t>(col.next());
        s.providers = number<std::int64_t>(col.next());
        s.health.operational = number<std::int64_t>(col.next());
        s.health.degraded = number<std::int64_t>(col.next());
        s.health.outage = number<std::int64_t>(col.next());
        s.health.unknown = number<std::int64_t>(col.next());
        s.as_of = from_micros(number<long long>(col.next()));
        s.source = impl_->name;
        return s;
    });
}

Result<void> PostgresRepository::check_health() {
    auto r = impl_->run(
        [&](Session& session) { return detail::exec_text(session.pg(), "SELECT 1").size(); });
    if (!r)
        return r.error();
    return success();
}

Result<std::int64_t> PostgresRepository::upsert_statuses(std::span<const ModelStatus> statuses) {
    // Validate here so a bad batch never reaches the server half-checked.
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        const ModelStatus& s = statuses[i];
        auto reject = [&](const std::string& what) {
            Error e =
                make_error(Errc::invalid_argument, "statuses[" + std::to_string(i) + "]: " + what +
                                                       "; nothing was written");
            e.source = impl_->name;
            return e;
        };
        if (auto problem = detail::status_problem(s))
            return reject(*problem);
    }
    if (statuses.empty())
        return std::int64_t{0};

    auto a = status_arrays(statuses);
    return impl_->run([&](Session& session) {
        // One statement: atomic on its own.
        return impl_
            ->exec(session, detail::sql::upsert_statuses, a[0], a[1], a[2], a[3], a[4], a[5], a[6])
            .affected();
    });
}

Result<Snapshot> PostgresRepository::export_snapshot() {
    return impl_->run([&](Session& session) {
        // One snapshot of the database: the statements below run in this transaction.
        detail::PgTransaction tx(session.pg(), "ISOLATION LEVEL REPEATABLE READ READ ONLY");
        Snapshot s;
        s.generated_at = from_micros(number<long long>(
            detail::exec_script(session.pg(),
                                "SELECT (extract(epoch FROM now()) * 1000000)::bigint")
                .field(0, 0)));
        auto providers = detail::exec_script(
            session.pg(), "SELECT slug, name, website FROM providers ORDER BY slug");
        for (int row = 0; row < providers.size(); ++row) {
            Columns col(providers, row);
            Provider p;
            p.slug = col.text();
            p.name = col.text();
            p.website = col.text();
            s.providers.push_back(std::move(p));
        }
        auto models = impl_->exec(session, detail::sql::list_models);
        for (int row = 0; row < models.size(); ++row) {
            Model m = model_from_row(models, row);
            m.provider.reset();
            m.status.reset();
            s.models.push_back(std::move(m));
        }
        auto statuses = impl_->exec(session, detail::sql::list_statuses);
        for (int row = 0; row < statuses.size(); ++row)
            s.statuses.push_back(status_from_row(statuses, row));
        tx.commit();
        return s;
    });
}

Result<int> PostgresRepository::schema_version() {
    return impl_->run([&](Session& session) {
        auto has_table =
            detail::exec_script(session.pg(), detail::sql::has_migrations_table.data());
        if (has_table.field(0, 0).text != "t")
            return 0;
        return number<int>(
            detail::exec_script(session.pg(), detail::sql::schema_version.data()).field(0, 0));
    });
}

Result<int> PostgresRepository::migrate() {
    return impl_->run([&](Session& session) {
        PGconn* pg = session.pg();
        detail::PgTransaction tx(pg);
        auto script = [pg](const std::string& sql) { return detail::exec_script(pg, sql.c_str()); };
        script("SELECT pg_advisory_xact_lock(" + std::to_string(detail::migration_lock_key) + ")");
        if (!impl_->config.schema.empty())
            script("CREATE SCHEMA IF NOT EXISTS " +
                   detail::quote_identifier(pg, impl_->config.schema));
        script("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
               "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
        int current = number<int>(script(std::string(detail::sql::schema_version)).field(0, 0));
        for (const auto& m : detail::migrations()) {
            if (m.version <= current)
                continue;
            script(std::string(m.sql));
            detail::exec_text(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              std::to_string(m.version), std::string(m.name));
            current = m.version;
        }
        tx.commit();
        return current;
    });
}

Result<void> PostgresRepository::import_snapshot(const Snapshot& snapshot) {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    std::vector<std::string_view> p_slug, p_name, p_site;
    for (const Provider& p : snapshot.providers) {
        p_slug.push_back(p.slug);
        p_name.push_back(p.name);
        p_site.push_back(p.website);
    }
    std::vector<std::string_view> m_slug, m_name, m_provider, m_description, m_active;
    std::vector<std::optional<double>> m_context;
    for (const Model& m : snapshot.models) {
        m_slug.push_back(m.slug);
        m_name.push_back(m.name);
        m_provider.push_back(m.provider_slug);
        m_description.push_back(m.description);
        m_active.push_back(m.active ? "true" : "false");
        m_context.push_back(m.context_window ? std::optional<double>(*m.context_window)
                                             : std::nullopt);
    }
    std::optional<std::array<std::string, 7>> statuses;
    if (!snapshot.statuses.empty())
        statuses = status_arrays(snapshot.statuses);
    auto r = impl_->run([&](Session& session) {
        detail::PgTransaction tx(session.pg());
        detail::exec_script(session.pg(),
                            "DELETE FROM model_status; DELETE FROM models; DELETE FROM providers");
        detail::exec_text(session.pg(),
                          "INSERT INTO providers (slug, name, website) "
                          "SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
                          text_array(p_slug), text_array(p_name), text_array(p_site));
        detail::exec_text(
            session.pg(),
            "INSERT INTO models (slug, name, provider_slug, description, context_window, active) "
            "SELECT a, b, c, d, e::bigint, f FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::text[], $5::float8[], $6::boolean[]) AS t(a, b, c, d, e, f)",
            text_array(m_slug), text_array(m_name), text_array(m_provider),
            text_array(m_description), number_array(m_context), text_array(m_active));
        if (statuses)
            impl_->exec(session, detail::sql::upsert_statuses, (*statuses)[0], (*statuses)[1],
                        (*statuses)[2], (*statuses)[3], (*statuses)[4], (*statuses)[5],
                        (*statuses)[6]);
        tx.commit();
        return 0;
    });
    if (!r)
        return r.error();
    return success();
}

} // namespace modelrepo
