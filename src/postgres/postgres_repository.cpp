// SPDX-License-Identifier: MIT
#include <array>
#include <charconv>
#include <cstdio>
#include <unordered_map>

#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <modelrepo/postgres_repository.hpp>

#include "../core/catalog_view.hpp"
#include "errors.hpp"
#include "pool.hpp"
#include "schema.hpp"

namespace modelrepo {

namespace {

using detail::Statement;
using detail::SteadyClock;

/// `{"a","b\"c"}`: a text[] literal (parameters carry it; nothing is spliced into SQL).
std::string text_array(std::span<const std::string_view> items) {
    std::string out = "{";
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
    return out + "}";
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

/// A field's number, parsed with std::from_chars: libpqxx 6.4 reads doubles through a
/// locale-aware istream, which was a tenth of find_models' client time. Anything
/// from_chars does not take whole goes to libpqxx, which names the column in its error.
template <class T>
T number(const pqxx::field& field) {
    const char* text = field.c_str();
    const char* end = text + field.size();
    T value{};
    auto [stop, ec] = std::from_chars(text, end, value);
    if (ec == std::errc() && stop == end)
        return value;
    return field.as<T>();
}

/// Reads a row's fields left to right. libpqxx 6.4's row[i] builds a field that copies
/// the result handle (two shared_ptr: four atomic operations) for every column; one
/// iterator walked across the row copies it once.
class Columns {
public:
    explicit Columns(const pqxx::row& row)
        : it_(row.begin()) {}

    /// The next field.
    const pqxx::field& next() {
        if (!first_)
            ++it_;
        first_ = false;
        return *it_.operator->();
    }
    /// The next field as text.
    std::string text() {
        const pqxx::field& f = next();
        return std::string(f.c_str(), f.size());
    }
    /// The next field as a number, or nothing when it is NULL.
    template <class T>
    std::optional<T> optional_number() {
        const pqxx::field& f = next();
        return f.is_null() ? std::nullopt : std::optional<T>(number<T>(f));
    }

private:
    pqxx::row::const_iterator it_;
    bool first_ = true;
};

/// The last seven columns of model_from_row, and all of status_from_row.
ModelStatus status_columns(Columns& col, std::string slug) {
    ModelStatus s;
    s.model_slug = std::move(slug);
    s.health = parse_health(col.next().c_str()).value_or(Health::unknown);
    s.availability = number<double>(col.next());
    s.latency_ms = col.optional_number<double>();
    s.error_rate = number<double>(col.next());
    s.region = col.text();
    s.checked_at = from_micros(number<long long>(col.next()));
    return s;
}

/// slug, name, provider_slug, description, context_window, active, provider name,
/// provider website, then the status columns (NULL health: no status).
Model model_from_row(const pqxx::row& row) {
    Columns col(row);
    Model m;
    m.slug = col.text();
    m.name = col.text();
    m.provider_slug = col.text();
    m.description = col.text();
    m.context_window = col.optional_number<std::int64_t>();
    m.active = col.next().as<bool>();
    std::string provider_name = col.text();
    m.provider = Provider{m.provider_slug, std::move(provider_name), col.text()};
    if (!row[8].is_null())
        m.status = status_columns(col, m.slug);
    return m;
}

/// slug, then the status columns.
ModelStatus status_from_row(const pqxx::row& row) {
    Columns col(row);
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

struct PostgresRepository::Impl {
    PostgresConfig config;
    detail::PgTarget target;
    std::string name;
    std::unique_ptr<detail::ConnectionPool> pool;

    /// Runs `fn(connection)` on a pooled connection under the call's deadline and turns
    /// every failure into an Error. `fn` returns the value.
    template <class Fn>
    auto run(Fn&& fn) -> Result<decltype(fn(std::declval<pqxx::connection&>()))> {
        auto lease = pool->acquire();
        if (!lease)
            return lease.error();
        pqxx::connection& conn = lease.value().conn();
        auto& slot = lease.value().watchdog_slot();
        pool->watchdog().arm(slot, SteadyClock::now() + config.query_timeout);
        try {
            auto value = fn(conn);
            if (detail::Watchdog::disarm(slot)) {
                lease.value().mark_broken();
                return fail("", "", true, true);
            }
            return value;
        } catch (const pqxx::sql_error& e) {
            bool fired = detail::Watchdog::disarm(slot);
            if (fired || !conn.is_open())
                lease.value().mark_broken();
            return fail(e.what(), e.sqlstate(), !conn.is_open(), fired);
        } catch (const std::exception& e) {
            // broken_connection, in_doubt_error, conversion errors: the connection's
            // state is unknown, so it is not reused.
            bool fired = detail::Watchdog::disarm(slot);
            lease.value().mark_broken();
            return fail(e.what(), "", true, fired);
        }
    }

    Error fail(const std::string& what, const std::string& sqlstate, bool broken, bool fired) {
        return detail::query_error(what.empty() ? "connection cut at the deadline" : what, sqlstate,
                                   broken, fired, target, name, config.query_timeout);
    }

    template <class Tx, class... Args>
    pqxx::result exec(Tx& tx, const Statement& statement, Args&&... args) {
        // libpqxx takes names as std::string: build each once, not per call. Keyed by
        // content: identical literals need not share an address across files.
        static const auto names = [] {
            std::unordered_map<std::string_view, std::pair<std::string, std::string>> m;
            for (const Statement& s : detail::prepared_statements())
                m.emplace(s.name, std::pair{std::string(s.name), std::string(s.sql)});
            return m;
        }();
        const auto& [name, sql] = names.at(statement.name);
        if (config.prepared_statements)
            return tx.exec_prepared(name, std::forward<Args>(args)...);
        return tx.exec_params(sql, std::forward<Args>(args)...);
    }

    /// Runs on every new connection: deadline on the server side too, the schema,
    /// and the prepared statements (prepared lazily by libpqxx on first use).
    void setup(pqxx::connection& conn) {
        std::string sql = "SET statement_timeout = " + std::to_string(config.query_timeout.count());
        if (!config.schema.empty())
            sql += "; SET search_path TO " + conn.quote_name(config.schema);
        pqxx::nontransaction tx(conn);
        tx.exec(sql);
        tx.commit();
        if (config.prepared_statements)
            for (const Statement& s : detail::prepared_statements())
                conn.prepare(std::string(s.name), std::string(s.sql));
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
    impl->pool = std::make_unique<detail::ConnectionPool>(
        impl->config, impl->target, impl->name, [raw](pqxx::connection& c) { raw->setup(c); });
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
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return number<std::int64_t>(impl_->exec(tx, detail::sql::count_models)[0][0]);
    });
}

Result<std::int64_t> PostgresRepository::count_providers() {
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return number<std::int64_t>(impl_->exec(tx, detail::sql::count_providers)[0][0]);
    });
}

Result<std::vector<ModelStatus>> PostgresRepository::list_statuses() {
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        auto rows = impl_->exec(tx, detail::sql::list_statuses);
        std::vector<ModelStatus> out;
        out.reserve(rows.size());
        for (const auto& row : rows)
            out.push_back(status_from_row(row));
        return out;
    });
}

Result<std::vector<Model>> PostgresRepository::find_models(std::span<const std::string> slugs) {
    if (slugs.empty())
        return std::vector<Model>{};
    std::vector<std::string_view> views(slugs.begin(), slugs.end());
    std::string array = text_array(views);
    auto found = impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        auto rows = impl_->exec(tx, detail::sql::find_models, array);
        std::vector<Model> decoded;
        decoded.reserve(rows.size());
        for (const auto& row : rows)
            decoded.push_back(model_from_row(row));
        return decoded;
    });
    if (!found)
        return found.error();
    // Back into the order asked for; a model asked for once is moved, not copied. The
    // map's keys view the caller's strings, which do not move.
    std::vector<Model>& decoded = found.value();
    struct Want {
        std::size_t index = SIZE_MAX; // in decoded; SIZE_MAX: not found
        int uses = 0;
    };
    std::unordered_map<std::string_view, Want> wanted;
    for (const std::string& slug : slugs)
        ++wanted[slug].uses;
    for (std::size_t i = 0; i < decoded.size(); ++i)
        if (auto it = wanted.find(decoded[i].slug); it != wanted.end())
            it->second.index = i;
    std::vector<Model> ordered;
    ordered.reserve(decoded.size());
    for (const std::string& slug : slugs) {
        Want& want = wanted[slug];
        if (want.index == SIZE_MAX)
            continue;
        if (--want.uses == 0)
            ordered.push_back(std::move(decoded[want.index]));
        else
            ordered.push_back(decoded[want.index]);
    }
    return ordered;
}

Result<std::optional<Model>> PostgresRepository::find_model(std::string_view slug) {
    std::string key(slug);
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        auto rows = impl_->exec(tx, detail::sql::find_model, key);
        return rows.empty() ? std::optional<Model>()
                            : std::optional<Model>(model_from_row(rows[0]));
    });
}

Result<std::vector<Model>> PostgresRepository::list_models() {
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        auto rows = impl_->exec(tx, detail::sql::list_models);
        std::vector<Model> out;
        out.reserve(rows.size());
        for (const auto& row : rows)
            out.push_back(model_from_row(row));
        return out;
    });
}

Result<SystemStats> PostgresRepository::system_stats() {
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        auto row = impl_->exec(tx, detail::sql::system_stats)[0];
        SystemStats s;
        s.models = number<std::int64_t>(row[0]);
        s.active_models = number<std::int64_t>(row[1]);
        s.providers = number<std::int64_t>(row[2]);
        s.health.operational = number<std::int64_t>(row[3]);
        s.health.degraded = number<std::int64_t>(row[4]);
        s.health.outage = number<std::int64_t>(row[5]);
        s.health.unknown = number<std::int64_t>(row[6]);
        s.as_of = from_micros(number<long long>(row[7]));
        s.source = impl_->name;
        return s;
    });
}

Result<void> PostgresRepository::check_health() {
    auto r = impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return tx.exec("SELECT 1")[0][0].as<int>();
    });
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
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c); // one statement: atomic on its own
        auto result =
            impl_->exec(tx, detail::sql::upsert_statuses, a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
        return static_cast<std::int64_t>(result.affected_rows());
    });
}

Result<Snapshot> PostgresRepository::export_snapshot() {
    return impl_->run([&](pqxx::connection& c) {
        pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::read_only> tx(c);
        Snapshot s;
        s.generated_at = from_micros(
            tx.exec("SELECT (extract(epoch FROM now()) * 1000000)::bigint")[0][0].as<long long>());
        for (const auto& row : tx.exec("SELECT slug, name, website FROM providers ORDER BY slug"))
            s.providers.push_back({row[0].c_str(), row[1].c_str(), row[2].c_str()});
        for (const auto& row : impl_->exec(tx, detail::sql::list_models)) {
            Model m = model_from_row(row);
            m.provider.reset();
            m.status.reset();
            s.models.push_back(std::move(m));
        }
        for (const auto& row : impl_->exec(tx, detail::sql::list_statuses))
            s.statuses.push_back(status_from_row(row));
        tx.commit();
        return s;
    });
}

Result<int> PostgresRepository::schema_version() {
    return impl_->run([&](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        if (!tx.exec(std::string(detail::sql::has_migrations_table))[0][0].as<bool>())
            return 0;
        return tx.exec(std::string(detail::sql::schema_version))[0][0].as<int>();
    });
}

Result<int> PostgresRepository::migrate() {
    return impl_->run([&](pqxx::connection& c) {
        pqxx::work tx(c);
        tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(detail::migration_lock_key) + ")");
        if (!impl_->config.schema.empty())
            tx.exec("CREATE SCHEMA IF NOT EXISTS " + c.quote_name(impl_->config.schema));
        tx.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
        int current =
            tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
        for (const auto& m : detail::migrations()) {
            if (m.version <= current)
                continue;
            tx.exec(std::string(m.sql));
            tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                           m.version, std::string(m.name));
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
    auto r = impl_->run([&](pqxx::connection& c) {
        pqxx::work tx(c);
        tx.exec("DELETE FROM model_status; DELETE FROM models; DELETE FROM providers");
        tx.exec_params("INSERT INTO providers (slug, name, website) "
                       "SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
                       text_array(p_slug), text_array(p_name), text_array(p_site));
        tx.exec_params(
            "INSERT INTO models (slug, name, provider_slug, description, context_window, active) "
            "SELECT a, b, c, d, e::bigint, f FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::text[], $5::float8[], $6::boolean[]) AS t(a, b, c, d, e, f)",
            text_array(m_slug), text_array(m_name), text_array(m_provider),
            text_array(m_description), number_array(m_context), text_array(m_active));
        if (statuses)
            tx.exec_params(std::string(detail::sql::upsert_statuses.sql), (*statuses)[0],
                           (*statuses)[1], (*statuses)[2], (*statuses)[3], (*statuses)[4],
                           (*statuses)[5], (*statuses)[6]);
        tx.commit();
        return 0;
    });
    if (!r)
        return r.error();
    return success();
}

} // namespace modelrepo
