// SPDX-License-Identifier: MIT
// PostgresRepository: the SQL of each call and the decoding of its rows. Sessions,
// deadlines and failures are the Connection's; lending sessions is the pool's.
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

using detail::Connection;
using detail::Deadline;
using detail::Rows;
using detail::StatementId;

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

/// The C strings of `strings`, for a statement's parameters.
template <class... Strings>
std::array<const char*, sizeof...(Strings)> params(const Strings&... strings) {
    return {strings.c_str()...};
}

Timestamp from_micros(long long micros) {
    return Timestamp(
        std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(micros)));
}

/// The server answered something the decoding cannot read: bad_data at the boundary.
struct BadAnswer {
    std::string what;
};

/// A field's number, parsed with std::from_chars.
template <class T>
T number(std::string_view text, bool null) {
    T value{};
    const char* end = text.data() + text.size();
    auto [stop, ec] = std::from_chars(text.data(), end, value);
    if (null || ec != std::errc() || stop != end)
        throw BadAnswer{"unexpected value \"" + std::string(text) +
                        "\" where a number was expected"};
    return value;
}

template <class T>
T number(const Rows& rows, int row, int column) {
    return number<T>(rows.text(row, column), rows.is_null(row, column));
}

/// Reads one result row's fields left to right.
class Columns {
public:
    Columns(const Rows& rows, int row)
        : rows_(rows)
        , row_(row) {}

    std::string text() { return std::string(rows_.text(row_, column_++)); }
    std::string_view view() { return rows_.text(row_, column_++); }
    bool boolean() { return view() == "t"; }
    template <class T>
    T number() {
        int c = column_++;
        return modelrepo::number<T>(rows_, row_, c);
    }
    /// The next field as a number, or nothing when it is NULL.
    template <class T>
    std::optional<T> optional_number() {
        int c = column_++;
        return rows_.is_null(row_, c) ? std::nullopt
                                      : std::optional<T>(modelrepo::number<T>(rows_, row_, c));
    }
    bool is_null(int column) const { return rows_.is_null(row_, column); }

private:
    const Rows& rows_;
    int row_;
    int column_ = 0;
};

/// The last six columns of model_from_row, and all but the first of status_from_row.
ModelStatus status_columns(Columns& col, std::string slug) {
    ModelStatus s;
    s.model_slug = std::move(slug);
    s.health = parse_health(col.view()).value_or(Health::unknown);
    s.availability = col.number<double>();
    s.latency_ms = col.optional_number<double>();
    s.error_rate = col.number<double>();
    s.region = col.text();
    s.checked_at = from_micros(col.number<long long>());
    return s;
}

/// slug, name, provider_slug, description, context_window, active, provider name,
/// provider website, then the status columns (NULL health: no status).
Model model_from_row(const Rows& rows, int row) {
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
ModelStatus status_from_row(const Rows& rows, int row) {
    Columns col(rows, row);
    std::string slug = col.text();
    return status_columns(col, std::move(slug));
}

/// The seven array parameters of the upsert statement, one row per model (the newest
/// status of each wins: one statement cannot touch a row twice), sorted by slug so
/// that concurrent batches lock their rows in the same order and cannot deadlock.
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
    std::sort(order.begin(), order.end());
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

/// The Result of a call whose work returns Result<T>, or T.
template <class T>
struct AsResult {
    using type = Result<T>;
};
template <class T>
struct AsResult<Result<T>> {
    using type = Result<T>;
};

detail::PoolOptions pool_options(const PostgresConfig& config) {
    detail::PoolOptions o;
    unsigned cores = std::thread::hardware_concurrency();
    o.max_size =
        config.pool_size > 0 ? config.pool_size : static_cast<int>(2 * (cores ? cores : 1) + 1);
    o.acquire_timeout = config.acquire_timeout;
    o.validate_after_idle = config.validate_after_idle;
    o.max_lifetime = config.max_lifetime;
    o.backoff_initial = config.reconnect_backoff_initial;
    o.backoff_max = config.reconnect_backoff_max;
    return o;
}

} // namespace

struct PostgresRepository::Impl {
    PostgresConfig config;
    std::shared_ptr<const detail::SessionConfig> session;
    detail::StatementSet statements;
    std::string schema_prefix; ///< `"schema".` or ""
    std::unique_ptr<detail::ConnectionPool> pool;

    Impl(PostgresConfig c, std::shared_ptr<const detail::SessionConfig> s, std::string prefix,
         detail::ConnectionPool::ClockFn clock)
        : config(std::move(c))
        , session(std::move(s))
        , statements(prefix)
        , schema_prefix(std::move(prefix))
        , pool(std::make_unique<detail::ConnectionPool>(session, pool_options(config),
                                                        std::move(clock))) {}

    const std::string& name() const { return session->source; }

    /// One deadline per call, whatever it does: waiting for the pool, connecting, the
    /// statements.
    Deadline deadline() const { return detail::SteadyClock::now() + config.query_timeout; }

    /// `work(connection, deadline)` on a pooled connection; it returns a Result or a
    /// value. A row the decoding cannot read is bad_data here, at the call's boundary.
    template <class Work>
    auto with_connection(Work&& work) ->
        typename AsResult<std::invoke_result_t<Work, Connection&, Deadline>>::type {
        Deadline until = deadline();
        auto lease = pool->acquire(until);
        if (!lease)
            return std::move(lease).error();
        try {
            return work(*lease.value(), until);
        } catch (const BadAnswer& bad) {
            Error error = make_error(Errc::bad_data,
                                     "PostgreSQL " + session->target.display() + ": " + bad.what);
            error.source = name();
            return error;
        }
    }

    /// One of the repository's statements on a pooled connection; `decode(rows)` makes
    /// the answer.
    template <class Decode, std::size_t N = 0>
    auto query(StatementId id, std::array<const char*, N> values, Decode&& decode) {
        return with_connection(
            [&](Connection& c,
                Deadline until) -> Result<std::invoke_result_t<Decode, const Rows&>> {
                auto rows = c.execute(statements[id], values, until);
                if (!rows)
                    return std::move(rows).error();
                return decode(rows.value());
            });
    }

    /// The schema's statements in a transaction see the repository's schema first.
    std::string local_search_path() const {
        return config.schema.empty()
                   ? std::string()
                   : "SET LOCAL search_path TO " + detail::quote_identifier(config.schema);
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
    auto session = detail::parse_session_config(config.conninfo);
    if (!session)
        return std::move(session).error();
    session.value().schema = config.schema;
    session.value().statement_timeout = config.query_timeout;
    session.value().connect_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.connect_timeout);
    session.value().prepared_statements = config.prepared_statements;
    std::string prefix = config.schema.empty() ? "" : detail::quote_identifier(config.schema) + ".";
    auto shared = std::make_shared<const detail::SessionConfig>(std::move(session).value());
    auto impl = std::make_unique<Impl>(std::move(config), std::move(shared), std::move(prefix),
                                       detail::ConnectionPool::ClockFn{});
    return std::shared_ptr<PostgresRepository>(new PostgresRepository(std::move(impl)));
}

Result<std::shared_ptr<PostgresRepository>> PostgresRepository::open(std::string_view url) {
    auto config = PostgresConfig::from_url(url);
    if (!config)
        return config.error();
    return create(std::move(config).value());
}

std::string_view PostgresRepository::name() const noexcept {
    return impl_->name();
}

const PostgresConfig& PostgresRepository::config() const noexcept {
    return impl_->config;
}

PoolStats PostgresRepository::pool_stats() const {
    return impl_->pool->counters();
}

std::vector<MetricFamily> PostgresRepository::backend_metrics() const {
    using Type = MetricFamily::Type;
    PoolStats p = pool_stats();
    std::vector<MetricFamily> out;
    out.push_back({"modelrepo_pool_connections", Type::gauge, "Pooled connections by state.", {}});
    out.back()
        .add({{"state", "open"}}, p.open)
        .add({{"state", "idle"}}, p.idle)
        .add({{"state", "busy"}}, p.busy)
        .add({{"state", "max"}}, p.max_size);
    out.push_back({"modelrepo_pool_waiting", Type::gauge, "Callers waiting for a connection.", {}});
    out.back().add({}, p.waiting);
    out.push_back({"modelrepo_pool_server_down",
                   Type::gauge,
                   "1 while the last connect failed and callers fail fast until the backoff "
                   "passes.",
                   {}});
    out.back().add({}, p.server_down ? 1 : 0);
    out.push_back({"modelrepo_pool_connects_total", Type::counter, "Sessions opened.", {}});
    out.back().add({}, static_cast<double>(p.connects));
    out.push_back({"modelrepo_pool_connect_failures_total", Type::counter, "Failed connects.", {}});
    out.back().add({}, static_cast<double>(p.connect_failures));
    out.push_back({"modelrepo_pool_acquire_timeouts_total",
                   Type::counter,
                   "Callers that got pool_exhausted.",
                   {}});
    out.back().add({}, static_cast<double>(p.acquire_timeouts));
    out.push_back({"modelrepo_pool_replaced_total",
                   Type::counter,
                   "Sessions closed: broken or cut at a deadline, or at max lifetime.",
                   {}});
    out.back()
        .add({{"why", "broken"}}, static_cast<double>(p.broken_replaced))
        .add({{"why", "expired"}}, static_cast<double>(p.expired_replaced));
    out.push_back({"modelrepo_pool_acquire_wait_seconds", Type::histogram,
                   "Time callers waited for a connection.", {}});
    out.back().add_histogram({}, PoolStats::wait_bounds_ms, p.acquire_wait_buckets, std::nullopt,
                             0.001);
    return out;
}

Result<std::int64_t> PostgresRepository::count_models() {
    return impl_->query(detail::count_models, std::array<const char*, 0>{},
                        [](const Rows& rows) { return number<std::int64_t>(rows, 0, 0); });
}

Result<std::int64_t> PostgresRepository::count_providers() {
    return impl_->query(detail::count_providers, std::array<const char*, 0>{},
                        [](const Rows& rows) { return number<std::int64_t>(rows, 0, 0); });
}

Result<std::vector<ModelStatus>> PostgresRepository::list_statuses() {
    return impl_->query(detail::list_statuses, std::array<const char*, 0>{}, [](const Rows& rows) {
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
    return impl_->query(detail::find_models, params(array), [&](const Rows& rows) {
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
            by_slug.push_back({rows.text(row, 0), row});
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
    return impl_->query(detail::find_model, params(key), [](const Rows& rows) {
        return rows.empty() ? std::optional<Model>()
                            : std::optional<Model>(model_from_row(rows, 0));
    });
}

Result<std::vector<Model>> PostgresRepository::list_models() {
    return impl_->query(detail::list_models, std::array<const char*, 0>{}, [](const Rows& rows) {
        std::vector<Model> out;
        out.reserve(static_cast<std::size_t>(rows.size()));
        for (int row = 0; row < rows.size(); ++row)
            out.push_back(model_from_row(rows, row));
        return out;
    });
}

Result<SystemStats> PostgresRepository::system_stats() {
    return impl_->query(detail::system_stats, std::array<const char*, 0>{}, [&](const Rows& rows) {
        Columns col(rows, 0);
        SystemStats s;
        s.models = col.number<std::int64_t>();
        s.active_models = col.number<std::int64_t>();
        s.providers = col.number<std::int64_t>();
        s.health.operational = col.number<std::int64_t>();
        s.health.degraded = col.number<std::int64_t>();
        s.health.outage = col.number<std::int64_t>();
        s.health.unknown = col.number<std::int64_t>();
        s.as_of = from_micros(col.number<long long>());
        s.source = impl_->name();
        return s;
    });
}

Result<void> PostgresRepository::check_health() {
    auto r = impl_->with_connection([](Connection& c, Deadline until) -> Result<int> {
        auto rows = c.script("SELECT 1", until);
        if (!rows)
            return std::move(rows).error();
        return 1;
    });
    if (!r)
        return std::move(r).error();
    return success();
}

Result<std::int64_t> PostgresRepository::upsert_statuses(std::span<const ModelStatus> statuses) {
    // Validate here so a bad batch never reaches the server half-checked.
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        if (auto problem = detail::status_problem(statuses[i])) {
            Error e = make_error(Errc::invalid_argument, "statuses[" + std::to_string(i) + "]: " +
                                                             *problem + "; nothing was written");
            e.source = impl_->name();
            return e;
        }
    }
    if (statuses.empty())
        return std::int64_t{0};
    auto a = status_arrays(statuses);
    // One statement: atomic on its own.
    return impl_->query(detail::upsert_statuses, params(a[0], a[1], a[2], a[3], a[4], a[5], a[6]),
                        [](const Rows& rows) { return rows.affected(); });
}

Result<Snapshot> PostgresRepository::export_snapshot() {
    return impl_->with_connection([&](Connection& c, Deadline until) {
        // One snapshot of the database: the statements below run in this transaction.
        return c.transaction(
            "ISOLATION LEVEL REPEATABLE READ READ ONLY", until,
            [&](Connection& c) -> Result<Snapshot> {
                const auto& st = impl_->statements;
                constexpr std::array<const char*, 0> none{};
                auto now = c.script("SELECT (extract(epoch FROM now()) * 1000000)::bigint", until);
                if (!now)
                    return std::move(now).error();
                auto providers = c.execute(st[detail::list_providers], none, until);
                if (!providers)
                    return std::move(providers).error();
                auto models = c.execute(st[detail::list_models], none, until);
                if (!models)
                    return std::move(models).error();
                auto statuses = c.execute(st[detail::list_statuses], none, until);
                if (!statuses)
                    return std::move(statuses).error();
                Snapshot s;
                s.generated_at = from_micros(number<long long>(now.value(), 0, 0));
                for (int row = 0; row < providers.value().size(); ++row) {
                    Columns col(providers.value(), row);
                    Provider p;
                    p.slug = col.text();
                    p.name = col.text();
                    p.website = col.text();
                    s.providers.push_back(std::move(p));
                }
                for (int row = 0; row < models.value().size(); ++row) {
                    Model m = model_from_row(models.value(), row);
                    m.provider.reset();
                    m.status.reset();
                    s.models.push_back(std::move(m));
                }
                for (int row = 0; row < statuses.value().size(); ++row)
                    s.statuses.push_back(status_from_row(statuses.value(), row));
                return s;
            });
    });
}

Result<int> PostgresRepository::schema_version() {
    return impl_->with_connection([&](Connection& c, Deadline until) -> Result<int> {
        return c.transaction("READ ONLY", until, [&](Connection& c) -> Result<int> {
            if (auto path = impl_->local_search_path(); !path.empty())
                if (auto set = c.script(path, until); !set)
                    return std::move(set).error();
            auto has_table = c.script(std::string(detail::sql::has_migrations_table), until);
            if (!has_table)
                return std::move(has_table).error();
            if (has_table.value().text(0, 0) != "t")
                return 0;
            auto version = c.script(std::string(detail::sql::schema_version), until);
            if (!version)
                return std::move(version).error();
            return number<int>(version.value(), 0, 0);
        });
    });
}

Result<int> PostgresRepository::migrate() {
    return impl_->with_connection([&](Connection& c, Deadline until) -> Result<int> {
        return c.transaction("", until, [&](Connection& c) -> Result<int> {
            auto run = [&](const std::string& sql) { return c.script(sql, until); };
            std::vector<std::string> setup{"SELECT pg_advisory_xact_lock(" +
                                           std::to_string(detail::migration_lock_key) + ")"};
            if (!impl_->config.schema.empty()) {
                setup.push_back("CREATE SCHEMA IF NOT EXISTS " +
                                detail::quote_identifier(impl_->config.schema));
                setup.push_back(impl_->local_search_path());
            }
            setup.push_back("CREATE TABLE IF NOT EXISTS schema_migrations (version integer "
                            "PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL "
                            "DEFAULT now())");
            for (const auto& sql : setup)
                if (auto done = run(sql); !done)
                    return std::move(done).error();
            auto version = run(std::string(detail::sql::schema_version));
            if (!version)
                return std::move(version).error();
            int current = number<int>(version.value(), 0, 0);
            for (const auto& m : detail::migrations()) {
                if (m.version <= current)
                    continue;
                if (auto done = run(std::string(m.sql)); !done)
                    return std::move(done).error();
                std::string number_text = std::to_string(m.version);
                std::string name(m.name);
                auto noted =
                    c.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              params(number_text, name), until);
                if (!noted)
                    return std::move(noted).error();
                current = m.version;
            }
            return current;
        });
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
    std::array<std::string, 3> providers{text_array(p_slug), text_array(p_name),
                                         text_array(p_site)};
    std::array<std::string, 6> models{text_array(m_slug),      text_array(m_name),
                                      text_array(m_provider),  text_array(m_description),
                                      number_array(m_context), text_array(m_active)};
    std::optional<std::array<std::string, 7>> statuses;
    if (!snapshot.statuses.empty())
        statuses = status_arrays(snapshot.statuses);
    const std::string& t = impl_->schema_prefix;
    std::string insert_providers = "INSERT INTO " + t +
                                   "providers (slug, name, website) "
                                   "SELECT * FROM unnest($1::text[], $2::text[], $3::text[])";
    std::string insert_models =
        "INSERT INTO " + t +
        "models (slug, name, provider_slug, description, context_window, active) "
        "SELECT a, b, c, d, e::bigint, f FROM unnest($1::text[], $2::text[], $3::text[], "
        "$4::text[], $5::float8[], $6::boolean[]) AS t(a, b, c, d, e, f)";
    auto r = impl_->with_connection([&](Connection& c, Deadline until) -> Result<int> {
        return c.transaction("", until, [&](Connection& c) -> Result<int> {
            if (auto done = c.script("DELETE FROM " + t + "model_status; DELETE FROM " + t +
                                         "models; DELETE FROM " + t + "providers",
                                     until);
                !done)
                return std::move(done).error();
            if (auto done = c.execute(insert_providers.c_str(),
                                      params(providers[0], providers[1], providers[2]), until);
                !done)
                return std::move(done).error();
            if (auto done = c.execute(
                    insert_models.c_str(),
                    params(models[0], models[1], models[2], models[3], models[4], models[5]),
                    until);
                !done)
                return std::move(done).error();
            if (statuses) {
                const auto& a = *statuses;
                if (auto done = c.execute(impl_->statements[detail::upsert_statuses],
                                          params(a[0], a[1], a[2], a[3], a[4], a[5], a[6]), until);
                    !done)
                    return std::move(done).error();
            }
            return 0;
        });
    });
    if (!r)
        return std::move(r).error();
    return success();
}

} // namespace modelrepo
