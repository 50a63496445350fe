// SPDX-License-Identifier: MIT
// SqlCatalog: the SQL of each call and the decoding of its rows. Sessions, deadlines and
// failures are the Connection's; lending sessions is the pool's.
#include "sql_catalog.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "../core/catalog_view.hpp"
#include "../core/files.hpp"
#include "errors.hpp"

namespace modelrepo::detail {

namespace {

/// How often a write meets another client's deadlock or serialization failure before its
/// error is the caller's; it is run again only while the time since its first attempt is
/// under the query timeout (5 s by default), so a caller waits about that long at most.
/// Time is the bound that matters (64 attempts take 15 s or more); 16 ran out first in one
/// CI run of 8 writers against reversed-order transactions under a 60 s timeout.
constexpr int max_write_attempts = 64;

/// The server refused the transaction for another's sake, not for what it asked (40P01
/// deadlock, 40001 serialization failure): the same statement may simply run again.
bool is_transient(const Error& error) {
    return error.is(Errc::query_failed) && classify(error).retryable;
}

/// 5-20 ms, then 10-40 ms, 20-80 ms, up to 80-320 ms: jittered, so two writers that met
/// do not meet again.
std::chrono::milliseconds retry_pause(int attempt) {
    thread_local std::minstd_rand random(std::random_device{}());
    int base = 5 << std::min(attempt - 1, 4);
    return std::chrono::milliseconds(
        base + static_cast<int>(random() % static_cast<unsigned>(3 * base + 1)));
}

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
        return detail::number<T>(rows_, row_, c);
    }
    /// The next field as a number, or nothing when it is NULL.
    template <class T>
    std::optional<T> optional_number() {
        int c = column_++;
        return rows_.is_null(row_, c) ? std::nullopt
                                      : std::optional<T>(detail::number<T>(rows_, row_, c));
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

PoolOptions pool_options(const PostgresConfig& config) {
    PoolOptions o;
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

namespace {

/// `base` for sessions of `role`.
std::shared_ptr<const SessionConfig> with_role(const SessionConfig& base, SessionRole role,
                                               std::chrono::milliseconds max_lag) {
    auto config = std::make_shared<SessionConfig>(base);
    config->role = role;
    config->max_replication_lag = max_lag;
    return config;
}

} // namespace

SqlCatalog::SqlCatalog(PostgresConfig config, std::shared_ptr<const SessionConfig> session,
                       std::shared_ptr<const SessionConfig> direct, ConnectionPool::ClockFn clock,
                       Mapping mapping, HealthObserver* health)
    : config_(std::move(config))
    , prefix_(config_.schema.empty() ? "" : quote_identifier(config_.schema) + ".")
    , mapping_(std::move(mapping)) {
    // modelrepo's own tables: their types are known, the statements are made now.
    if (mapping_.builtin) {
        plan_owner_ = std::make_unique<const Plan>(mapping_, prefix_);
        plan_.store(plan_owner_.get(), std::memory_order_release);
    }
    // Writes (and the copy's re-reads) on a read-write session whenever the URL names
    // standbys to read from; reads on their own pool then.
    const bool split = config_.read_target != ReadTarget::any;
    session_ = split ? with_role(*session, SessionRole::read_write, {}) : session;
    PoolOptions write_options = pool_options(config_);
    write_options.health = health;
    write_options.connect_proves_origin = session_->session_settings; // false through PgBouncer
    write_pool_ = std::make_unique<ConnectionPool>(session_, write_options, clock);
    if (config_.read_target == ReadTarget::prefer_standby ||
        config_.read_target == ReadTarget::standby) {
        auto role = config_.read_target == ReadTarget::standby ? SessionRole::standby
                                                               : SessionRole::prefer_standby;
        read_session_ = with_role(*session, role, config_.max_replication_lag);
        PoolOptions options = pool_options(config_);
        // The role (a standby within the lag bound) is checked every second while used.
        options.recheck_interval = std::chrono::milliseconds(1'000);
        if (config_.max_replication_lag.count() > 0)
            options.recheck_interval =
                std::min(options.recheck_interval,
                         std::max(config_.max_replication_lag / 2, std::chrono::milliseconds(100)));
        options.health = health;
        options.layer = "read pool";
        options.connect_proves_origin = read_session_->session_settings;
        read_pool_ = std::make_unique<ConnectionPool>(read_session_, options, clock);
    }
    // The feed and migrations: the direct session when the main URL is PgBouncer's.
    direct_session_ =
        direct ? with_role(*direct, split ? SessionRole::read_write : direct->role, {}) : session_;
    if (direct) {
        PoolOptions options = pool_options(config_);
        options.max_size = 1;
        options.health = health;
        options.layer = "direct session";
        direct_pool_ = std::make_unique<ConnectionPool>(direct_session_, options, clock);
    }
}

template <class Work>
auto SqlCatalog::with_connection(ConnectionPool& pool, Work&& work) {
    return with_connection(pool, std::chrono::milliseconds(0), std::forward<Work>(work));
}

template <class Work>
auto SqlCatalog::with_connection(ConnectionPool& pool, std::chrono::milliseconds extra,
                                 Work&& work) {
    using Answer = typename AsResult<std::invoke_result_t<Work, Connection&, Deadline>>::type;
    // One deadline per call, whatever it does: waiting for the pool, connecting, the
    // statements.
    auto now = SteadyClock::now();
    Deadline until = now + config_.query_timeout + extra;
    auto lease = pool.acquire(until, now);
    if (!lease)
        return Answer(std::move(lease).error());
    auto run = [&]() -> Answer {
        try {
            return Answer(work(*lease.value(), until));
        } catch (const BadAnswer& bad) {
            // A row the decoding cannot read: bad_data here, at the call's boundary.
            Error error = make_error(Errc::bad_data,
                                     "PostgreSQL " + session_->target.display() + ": " + bad.what);
            error.source = name();
            return Answer(std::move(error));
        }
    };
    if (!pool.reports_calls())
        return run();
    // Through PgBouncer the statement is what reaches the server: its outcome is the
    // origin's health.
    Answer answer = run();
    pool.after_call(answer ? nullptr : &answer.error());
    return answer;
}

Result<const SqlCatalog::Plan*> SqlCatalog::plan(Connection& c, Deadline until) {
    if (const Plan* made = plan_.load(std::memory_order_acquire))
        return made;
    std::lock_guard lock(plan_mutex_);
    if (plan_owner_)
        return plan_owner_.get();
    // The mapped columns' types, defaults and unique indexes: one statement, once.
    std::string names = mapped_tables_literal(mapping_);
    auto facts =
        c.execute(std::string(mapping_facts_sql()).c_str(),
                  std::array<const char*, 2>{config_.schema.c_str(), names.c_str()}, until);
    if (!facts)
        return std::move(facts).error();
    Mapping checked = mapping_;
    auto problems = apply_facts(checked, column_facts(facts.value()), prefix_);
    if (!problems.empty())
        return mapping_error(problems, "does not fit the database");
    plan_owner_ = std::make_unique<const Plan>(checked, prefix_);
    plan_.store(plan_owner_.get(), std::memory_order_release);
    return plan_owner_.get();
}

Error SqlCatalog::mapping_error(const std::vector<MappingProblem>& problems,
                                std::string_view doing) const {
    std::string more = problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) +
                                                 " more: `modelrepo doctor` lists them)"
                                           : "";
    Error error = make_error(Errc::schema_missing,
                             "PostgreSQL " + session_->target.display() + ": the mapping '" +
                                 mapping_.file + "' " + std::string(doing) + ": " +
                                 problems.front().what + "; " + problems.front().fix + more);
    error.source = name();
    return error;
}

template <class Decode, std::size_t N>
auto SqlCatalog::query(ConnectionPool& pool, StatementId id, std::array<const char*, N> values,
                       Decode&& decode) {
    return with_connection(
        pool,
        [&](Connection& c, Deadline until) -> Result<std::invoke_result_t<Decode, const Rows&>> {
            auto planned = plan(c, until);
            if (!planned)
                return std::move(planned).error();
            if (id == StatementId::upsert_statuses && !planned.value()->write_problems.empty())
                return mapping_error(planned.value()->write_problems, "cannot be written through");
            auto rows = c.execute(planned.value()->statements[id], values, until);
            if (!rows)
                return std::move(rows).error();
            return decode(rows.value());
        });
}

ConnectionPool& SqlCatalog::reads() {
    return read_pool_ ? *read_pool_ : *write_pool_;
}

ConnectionPool& SqlCatalog::direct() {
    return direct_pool_ ? *direct_pool_ : *write_pool_;
}

std::string SqlCatalog::local_search_path() const {
    return config_.schema.empty() ? std::string()
                                  : "SET LOCAL search_path TO " + quote_identifier(config_.schema);
}

Result<std::int64_t> SqlCatalog::count_models() {
    return query(reads(), StatementId::count_models, std::array<const char*, 0>{},
                 [](const Rows& rows) { return number<std::int64_t>(rows, 0, 0); });
}

Result<std::int64_t> SqlCatalog::count_providers() {
    return query(reads(), StatementId::count_providers, std::array<const char*, 0>{},
                 [](const Rows& rows) { return number<std::int64_t>(rows, 0, 0); });
}

Result<std::vector<ModelStatus>> SqlCatalog::list_statuses() {
    return query(reads(), StatementId::list_statuses, std::array<const char*, 0>{},
                 [](const Rows& rows) {
                     std::vector<ModelStatus> out;
                     out.reserve(static_cast<std::size_t>(rows.size()));
                     for (int row = 0; row < rows.size(); ++row)
                         out.push_back(status_from_row(rows, row));
                     return out;
                 });
}

Result<std::vector<Model>> SqlCatalog::find_models(std::span<const std::string> slugs) {
    return find_models_in(reads(), slugs);
}

Result<std::vector<Model>> SqlCatalog::find_models_in(ConnectionPool& pool,
                                                      std::span<const std::string> slugs) {
    if (slugs.empty())
        return std::vector<Model>{};
    std::string array = text_array(slugs);
    return query(pool, StatementId::find_models, params(array), [&](const Rows& rows) {
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

Result<std::optional<Model>> SqlCatalog::find_model(std::string_view slug) {
    std::string key(slug);
    return query(reads(), StatementId::find_model, params(key), [](const Rows& rows) {
        return rows.empty() ? std::optional<Model>()
                            : std::optional<Model>(model_from_row(rows, 0));
    });
}

Result<std::vector<Model>> SqlCatalog::list_models() {
    return query(reads(), StatementId::list_models, std::array<const char*, 0>{},
                 [](const Rows& rows) {
                     std::vector<Model> out;
                     out.reserve(static_cast<std::size_t>(rows.size()));
                     for (int row = 0; row < rows.size(); ++row)
                         out.push_back(model_from_row(rows, row));
                     return out;
                 });
}

Result<SystemStats> SqlCatalog::system_stats() {
    return query(reads(), StatementId::system_stats, std::array<const char*, 0>{},
                 [&](const Rows& rows) {
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
                     s.source = name();
                     return s;
                 });
}

Result<void> SqlCatalog::check_health() {
    auto r = with_connection(reads(), [](Connection& c, Deadline until) -> Result<int> {
        auto rows = c.script("SELECT 1", until);
        if (!rows)
            return std::move(rows).error();
        return 1;
    });
    if (!r)
        return std::move(r).error();
    return success();
}

namespace {

/// Which of `statuses` the upsert wrote (`written`: the slugs it returned): per slug, the
/// newest status of the batch is the one sent; the others, and those whose slug was not
/// written (the stored one is newer), were ignored.
WriteReceipt receipt_of(std::span<const ModelStatus> statuses,
                        const std::unordered_set<std::string>& written) {
    std::unordered_map<std::string_view, std::size_t> sent;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        auto [it, fresh] = sent.emplace(statuses[i].model_slug, i);
        if (!fresh && statuses[it->second].checked_at <= statuses[i].checked_at)
            it->second = i;
    }
    WriteReceipt receipt;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        const std::string& slug = statuses[i].model_slug;
        if (written.count(slug) && sent[slug] == i) {
            ++receipt.applied;
        } else {
            ++receipt.ignored;
            receipt.ignored_models.push_back(slug);
        }
    }
    return receipt;
}

} // namespace

Result<WriteReceipt> SqlCatalog::upsert_statuses(std::span<const ModelStatus> statuses) {
    // Validate here so a bad batch never reaches the server half-checked.
    const Timestamp now = Clock::now();
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        if (auto problem = write_problem(statuses[i], now, config_.max_clock_skew)) {
            Error e = make_error(Errc::invalid_argument, "statuses[" + std::to_string(i) + "]: " +
                                                             *problem + "; nothing was written");
            e.source = name();
            return e;
        }
    }
    if (statuses.empty())
        return WriteReceipt{};
    auto a = status_arrays(statuses);
    // One statement: atomic on its own. A deadlock or a serialization failure against
    // another client's transaction (40P01, 40001) is the server asking for the same
    // statement again: it is run again a few times, after a short jittered pause.
    // Another client that locks the same rows in the opposite order makes this statement
    // the server's victim again and again while its transactions go on, so the attempts
    // are bounded by time as well as by number.
    const auto give_up = std::chrono::steady_clock::now() + config_.query_timeout;
    for (int attempt = 1;; ++attempt) {
        auto written =
            query(*write_pool_, StatementId::upsert_statuses,
                  params(a[0], a[1], a[2], a[3], a[4], a[5], a[6]), [](const Rows& rows) {
                      std::unordered_set<std::string> slugs;
                      for (int r = 0; r < rows.size(); ++r)
                          slugs.emplace(rows.text(r, 0));
                      return slugs;
                  });
        if (written)
            return receipt_of(statuses, written.value());
        if (attempt == max_write_attempts || !is_transient(written.error()))
            return std::move(written).error();
        auto pause = retry_pause(attempt);
        if (std::chrono::steady_clock::now() + pause >= give_up)
            return std::move(written).error();
        std::this_thread::sleep_for(pause);
    }
}

Result<std::vector<Result<std::int64_t>>>
SqlCatalog::upsert_each(std::span<const std::vector<ModelStatus>> batches) {
    std::vector<Result<std::int64_t>> out(batches.size(), Result<std::int64_t>(std::int64_t{0}));
    std::vector<std::array<std::string, 7>> arrays;
    std::vector<std::array<const char*, 7>> values;
    std::vector<std::size_t> sent; // which batches go to the server
    const Timestamp now = Clock::now();
    for (std::size_t b = 0; b < batches.size(); ++b) {
        std::optional<Error> problem;
        for (std::size_t i = 0; i < batches[b].size() && !problem; ++i)
            if (auto p = write_problem(batches[b][i], now, config_.max_clock_skew))
                problem = make_error(Errc::invalid_argument,
                                     "statuses[" + std::to_string(i) + "]: " + *p);
        if (problem) {
            out[b] = std::move(*problem);
            continue;
        }
        if (batches[b].empty())
            continue;
        arrays.push_back(status_arrays(batches[b]));
        sent.push_back(b);
    }
    for (const auto& a : arrays)
        values.push_back({a[0].c_str(), a[1].c_str(), a[2].c_str(), a[3].c_str(), a[4].c_str(),
                          a[5].c_str(), a[6].c_str()});
    std::vector<Params> params(values.begin(), values.end());
    auto done = with_connection(
        *write_pool_, [&](Connection& c, Deadline until) -> Result<std::vector<Result<Rows>>> {
            auto planned = plan(c, until);
            if (!planned)
                return std::move(planned).error();
            if (!planned.value()->write_problems.empty())
                return mapping_error(planned.value()->write_problems, "cannot be written through");
            return c.execute_each(planned.value()->statements[StatementId::upsert_statuses], params,
                                  until);
        });
    if (!done)
        return std::move(done).error();
    for (std::size_t k = 0; k < sent.size(); ++k) {
        auto& r = done.value()[k];
        out[sent[k]] = r ? Result<std::int64_t>(r.value().affected())
                         : Result<std::int64_t>(std::move(r).error());
    }
    return out;
}

Result<Snapshot> SqlCatalog::export_snapshot() {
    return export_at(reads(), nullptr);
}

std::string SqlCatalog::copy_key() const {
    // The key earlier versions used, so that a copy on disk is found again.
    // A mapped catalogue is another one: its file's content is part of the key.
    return "postgres-" + fnv1a_hex(name() + "|" + config_.schema +
                                   (mapping_.builtin ? "" : "|" + mapping_.digest));
}

Result<std::pair<Snapshot, std::int64_t>> SqlCatalog::load() {
    std::int64_t version = 0;
    auto snapshot = export_at(*write_pool_, &version);
    if (!snapshot)
        return std::move(snapshot).error();
    return std::pair<Snapshot, std::int64_t>(std::move(snapshot).value(), version);
}

Result<std::vector<Model>> SqlCatalog::models(std::span<const std::string> slugs) {
    // The copy follows the primary's feed: it re-reads there, never from a standby that
    // may not have replayed the change yet.
    return find_models_in(*write_pool_, slugs);
}

Result<std::vector<Provider>> SqlCatalog::providers(std::span<const std::string> slugs) {
    if (slugs.empty())
        return std::vector<Provider>{};
    std::string array = text_array(slugs);
    return query(*write_pool_, StatementId::find_providers, params(array), [](const Rows& rows) {
        std::vector<Provider> out;
        for (int row = 0; row < rows.size(); ++row) {
            Columns col(rows, row);
            Provider p;
            p.slug = col.text();
            p.name = col.text();
            p.website = col.text();
            out.push_back(std::move(p));
        }
        return out;
    });
}

Result<Snapshot> SqlCatalog::export_at(ConnectionPool& pool, std::int64_t* version) {
    return with_connection(pool, [&](Connection& c, Deadline until) {
        // One snapshot of the database: the statements below run in this transaction.
        return c.transaction(
            "ISOLATION LEVEL REPEATABLE READ READ ONLY", until,
            [&](Connection& c) -> Result<Snapshot> {
                auto planned = plan(c, until);
                if (!planned)
                    return std::move(planned).error();
                const auto& st = planned.value()->statements;
                constexpr std::array<const char*, 0> none{};
                auto now = c.script("SELECT (extract(epoch FROM now()) * 1000000)::bigint", until);
                if (!now)
                    return std::move(now).error();
                auto providers = c.execute(st[StatementId::list_providers], none, until);
                if (!providers)
                    return std::move(providers).error();
                auto models = c.execute(st[StatementId::list_models], none, until);
                if (!models)
                    return std::move(models).error();
                auto statuses = c.execute(st[StatementId::list_statuses], none, until);
                if (!statuses)
                    return std::move(statuses).error();
                if (version) {
                    // The catalogue version this snapshot is at (the change feed's), in
                    // two steps: naming a missing table fails even in an untaken branch.
                    auto has = c.script(
                        "SELECT to_regclass(" + quote_literal(prefix_ + "catalog_change_seq") +
                            ") IS NOT NULL, to_regclass(" +
                            quote_literal(prefix_ + "catalog_version") + ") IS NOT NULL",
                        until);
                    if (!has)
                        return std::move(has).error();
                    *version = 0;
                    // Schema 3: the newest version handed out; 2: the version row.
                    std::string read;
                    if (has.value().text(0, 0) == "t")
                        read = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " +
                               prefix_ + "catalog_change_seq";
                    else if (has.value().text(0, 1) == "t")
                        read = "SELECT version FROM " + prefix_ + "catalog_version";
                    if (!read.empty()) {
                        auto v = c.script(read, until);
                        if (!v)
                            return std::move(v).error();
                        if (!v.value().empty())
                            *version = number<std::int64_t>(v.value(), 0, 0);
                    }
                }
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

Result<int> SqlCatalog::schema_version() {
    return with_connection(direct(), [&](Connection& c, Deadline until) -> Result<int> {
        return c.transaction("READ ONLY", until, [&](Connection& c) -> Result<int> {
            if (auto path = local_search_path(); !path.empty())
                if (auto set = c.script(path, until); !set)
                    return std::move(set).error();
            auto has_table = c.script(std::string(sql::has_migrations_table), until);
            if (!has_table)
                return std::move(has_table).error();
            if (has_table.value().text(0, 0) != "t")
                return 0;
            auto version = c.script(std::string(sql::schema_version), until);
            if (!version)
                return std::move(version).error();
            return number<int>(version.value(), 0, 0);
        });
    });
}

namespace {

/// A mapped schema's migrations: the catalogue tables are the user's (nothing is created,
/// altered or dropped in them), the change feed is installed on them at version 3, where
/// modelrepo's own tables have theirs.
std::vector<std::pair<int, std::string>> mapped_migrations(const Mapping& m,
                                                           const std::string& prefix) {
    return {{1, ""}, {2, ""}, {3, mapped_feed_sql(m, prefix)}};
}

std::string_view mapped_migration_name(int version) {
    return version == 3 ? "change feed on the mapped tables"
                        : "the mapped tables are the user's (nothing created)";
}

} // namespace

Result<int> SqlCatalog::migrate() {
    return with_connection(direct(), [&](Connection& c, Deadline until) -> Result<int> {
        return c.transaction("", until, [&](Connection& c) -> Result<int> {
            auto run = [&](const std::string& sql) { return c.script(sql, until); };
            std::vector<std::string> setup{"SELECT pg_advisory_xact_lock(" +
                                           std::to_string(migration_lock_key) + ")"};
            if (!config_.schema.empty()) {
                setup.push_back("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(config_.schema));
                setup.push_back(local_search_path());
            }
            setup.push_back("CREATE TABLE IF NOT EXISTS schema_migrations (version integer "
                            "PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL "
                            "DEFAULT now())");
            for (const auto& sql : setup)
                if (auto done = run(sql); !done)
                    return std::move(done).error();
            // A user's tables must be what the mapping says before triggers go on them.
            std::vector<std::pair<int, std::string>> steps;
            if (mapping_.builtin) {
                for (const auto& m : migrations())
                    steps.emplace_back(m.version, std::string(m.sql));
            } else {
                auto planned = plan(c, until);
                if (!planned)
                    return std::move(planned).error();
                steps = mapped_migrations(planned.value()->mapping, prefix_);
            }
            auto version = run(std::string(sql::schema_version));
            if (!version)
                return std::move(version).error();
            int current = number<int>(version.value(), 0, 0);
            for (const auto& [number_of, sql] : steps) {
                if (number_of <= current)
                    continue;
                if (!sql.empty())
                    if (auto done = run(sql); !done)
                        return std::move(done).error();
                std::string number_text = std::to_string(number_of);
                std::string name(mapping_.builtin ? migrations()[number_of - 1].name
                                                  : mapped_migration_name(number_of));
                auto noted =
                    c.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              params(number_text, name), until);
                if (!noted)
                    return std::move(noted).error();
                current = number_of;
            }
            return current;
        });
    });
}

namespace {

/// The import's arrays: providers (slug, name, website), models (slug, name, provider,
/// description, context_window, active), the slugs of each, and the statuses'.
struct ImportArrays {
    std::array<std::string, 3> providers;
    std::array<std::string, 6> models;
    std::optional<std::array<std::string, 7>> statuses;
};

ImportArrays import_arrays(const Snapshot& snapshot) {
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
    ImportArrays a;
    a.providers = {text_array(p_slug), text_array(p_name), text_array(p_site)};
    a.models = {text_array(m_slug),        text_array(m_name),      text_array(m_provider),
                text_array(m_description), number_array(m_context), text_array(m_active)};
    if (!snapshot.statuses.empty())
        a.statuses = status_arrays(snapshot.statuses);
    return a;
}

} // namespace

Result<void> SqlCatalog::import_snapshot(const Snapshot& snapshot) {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    // An import writes its statuses: one from the future would keep every real one out.
    const Timestamp now = Clock::now();
    for (std::size_t i = 0; i < snapshot.statuses.size(); ++i)
        if (auto problem = future_problem(snapshot.statuses[i], now, config_.max_clock_skew)) {
            Error e =
                make_error(Errc::invalid_argument, "$.statuses[" + std::to_string(i) + "] (" +
                                                       snapshot.statuses[i].model_slug +
                                                       "): " + *problem + "; nothing was imported");
            e.source = name();
            return e;
        }
    const ImportArrays a = import_arrays(snapshot);
    const std::string& t = prefix_;
    // The deadline grows with the catalogue (a large import is not an outage): the query
    // timeout, and 0.5 ms per row on top, here and as the server's statement_timeout.
    const auto rows = snapshot.providers.size() + snapshot.models.size() + snapshot.statuses.size();
    const auto allowance = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::microseconds(500) * static_cast<long long>(rows));
    const auto statement_limit = config_.query_timeout + allowance;
    auto r =
        with_connection(*write_pool_, allowance, [&](Connection& c, Deadline until) -> Result<int> {
            auto planned = plan(c, until);
            if (!planned)
                return std::move(planned).error();
            const Plan& p = *planned.value();
            if (!p.write_problems.empty())
                return mapping_error(p.write_problems, "cannot be written through");
            return c.transaction("", until, [&](Connection& c) -> Result<int> {
                // The triggers stay quiet for the rows; one resync at the end says it all.
                auto step = [&](const std::string& sql, auto... values) -> Result<Rows> {
                    return c.execute(sql.c_str(), params(values...), until);
                };
                if (auto done = c.script(
                        "SET LOCAL statement_timeout = " + std::to_string(statement_limit.count()) +
                            "; SET LOCAL modelrepo.bulk = 'on'",
                        until);
                    !done)
                    return std::move(done).error();
                // Statuses first (the snapshot's replace them), then providers and models
                // merged by slug, then what the snapshot no longer has: models, then providers.
                const std::array<std::function<Result<Rows>()>, 5> steps{
                    [&] { return step(p.import.delete_statuses); },
                    [&] {
                        return step(p.import.providers, a.providers[0], a.providers[1],
                                    a.providers[2]);
                    },
                    [&] {
                        return step(p.import.models, a.models[0], a.models[1], a.models[2],
                                    a.models[3], a.models[4], a.models[5]);
                    },
                    [&] { return step(p.import.delete_models, a.models[0]); },
                    [&] { return step(p.import.delete_providers, a.providers[0]); },
                };
                for (const auto& run : steps)
                    if (auto done = run(); !done)
                        return std::move(done).error();
                if (a.statuses) {
                    const auto& s = *a.statuses;
                    if (auto done =
                            c.execute(p.statements[StatementId::upsert_statuses],
                                      params(s[0], s[1], s[2], s[3], s[4], s[5], s[6]), until);
                        !done)
                        return std::move(done).error();
                }
                auto feed =
                    c.script("SELECT to_regprocedure(" +
                                 quote_literal(t + "modelrepo_catalog_resync()") + ") IS NOT NULL",
                             until);
                if (!feed)
                    return std::move(feed).error();
                if (feed.value().text(0, 0) == "t")
                    if (auto done = c.script("SELECT " + t + "modelrepo_catalog_resync()", until);
                        !done)
                        return std::move(done).error();
                return 0;
            });
        });
    if (!r)
        return std::move(r).error();
    return success();
}

} // namespace modelrepo::detail
