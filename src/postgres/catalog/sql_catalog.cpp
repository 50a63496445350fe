// SPDX-License-Identifier: MIT
// SqlCatalog: its pools (the writes', the reads' on standbys, the direct session behind
// PgBouncer), the plan of statements made from the mapping once its columns are known, and
// the health check. The calls are in reads.cpp, writes.cpp, migrate.cpp and import.cpp.
#include "sql_catalog.hpp"

#include <thread>

#include "calls.hpp"

namespace modelrepo::detail {

namespace {

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
        // Not told to the health: this session is used on demand only (migrate, and the
        // schema check at a watch()), so a failure it told would stay told after the fix
        // until the next watch() (the incident through PgBouncer: down for minutes after
        // the password was set back). The feed, on the same URL, tells its failures and
        // retries until it reaches the server again.
        options.health = nullptr;
        options.layer = "direct session";
        direct_pool_ = std::make_unique<ConnectionPool>(direct_session_, options, clock);
    }
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

} // namespace modelrepo::detail
