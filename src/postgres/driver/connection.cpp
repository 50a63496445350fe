// SPDX-License-Identifier: MIT
#include "connection.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>

#include <poll.h>

#include "errors.hpp"

namespace modelrepo::detail {

using namespace std::chrono;

std::int64_t Rows::affected() const noexcept {
    const char* text = PQcmdTuples(result_.get());
    std::int64_t n = 0;
    std::from_chars(text, text + std::char_traits<char>::length(text), n);
    return n;
}

namespace {

milliseconds until(Deadline deadline) {
    return std::max(duration_cast<milliseconds>(deadline - SteadyClock::now()), milliseconds(0));
}

/// One login attempt on one host, by `deadline`: libpq's non-blocking connect, polled
/// here so that the deadline holds (libpq's own connect_timeout applies only to its
/// blocking connect).
Result<PGconn*> connect_host(const SessionConfig& config, const HostParams& host,
                             const char* session_attrs, Deadline deadline) {
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : host.params) {
        if (session_attrs && k == "target_session_attrs")
            continue; // the role's, below
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    if (session_attrs) {
        keys.push_back("target_session_attrs");
        values.push_back(session_attrs);
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    auto started = SteadyClock::now();
    std::unique_ptr<PGconn, void (*)(PGconn*)> pg(
        PQconnectStartParams(keys.data(), values.data(), 0), &PQfinish);
    if (!pg)
        return make_error(Errc::unreachable, "libpq could not allocate a connection");
    auto status =
        PQstatus(pg.get()) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED) {
        auto remaining = until(deadline);
        if (remaining.count() == 0)
            return connect_timeout_error(config, host,
                                         duration_cast<milliseconds>(SteadyClock::now() - started));
        pollfd fd{PQsocket(pg.get()),
                  static_cast<short>(status == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
        int ready =
            ::poll(&fd, 1, static_cast<int>(std::min<long long>(remaining.count() + 1, 60'000)));
        if (ready < 0 && errno != EINTR)
            return connect_error(std::string("poll() failed: ") + std::strerror(errno), config,
                                 host, milliseconds(0));
        if (ready > 0)
            status = PQconnectPoll(pg.get());
    }
    if (status == PGRES_POLLING_FAILED || PQstatus(pg.get()) != CONNECTION_OK)
        return connect_error(PQerrorMessage(pg.get()), config, host, until(deadline));
    return pg.release();
}

/// How much an error says about a host, for the one error of a connect that tried several:
/// what the user must fix first.
int weight(const Error& error) {
    auto e = error.errc().value_or(Errc::unreachable);
    switch (e) {
    case Errc::auth_failed:
        return 6;
    case Errc::database_missing:
        return 5;
    case Errc::too_many_connections:
        return 4;
    case Errc::tls_failed:
        return 3;
    case Errc::read_only:
        return 2;
    case Errc::timeout:
        return 1;
    default:
        return 0;
    }
}

} // namespace

Result<std::unique_ptr<Connection>> Connection::open(std::shared_ptr<const SessionConfig> config,
                                                     Watchdog& watchdog, Deadline deadline) {
    std::optional<Error> chosen;
    std::string others;
    // One pass over the hosts, in order, each attempt bounded by connect_timeout; a
    // standby is taken only within the lag bound.
    auto pass = [&](const char* session_attrs, bool standby,
                    bool second_choice) -> std::unique_ptr<Connection> {
        for (std::size_t i = 0; i < config->hosts.size(); ++i) {
            const HostParams& host = config->hosts[i];
            auto attempt_deadline =
                std::min(deadline, SteadyClock::now() + config->connect_timeout);
            auto pg = connect_host(*config, host, session_attrs, attempt_deadline);
            std::optional<Error> error;
            if (pg) {
                std::unique_ptr<Connection> connection(
                    new Connection(config, pg.value(), i, watchdog));
                connection->second_choice_ = second_choice;
                auto ready = connection->setup(deadline);
                if (ready && (standby || config->role != SessionRole::any))
                    ready = connection->check_role(deadline);
                if (ready)
                    return connection;
                error = std::move(ready).error();
            } else {
                error = std::move(pg).error();
            }
            if (config->hosts.size() > 1)
                others += "; " + host.label + ": " + std::string(to_string(*error->errc()));
            if (!chosen || weight(*error) > weight(*chosen))
                chosen = std::move(error);
            if (SteadyClock::now() >= deadline)
                break;
        }
        return nullptr;
    };
    std::unique_ptr<Connection> connection;
    switch (config->role) {
    case SessionRole::any:
        connection = pass(nullptr, false, false);
        break;
    case SessionRole::read_write:
        connection = pass("read-write", false, false);
        break;
    case SessionRole::standby:
        connection = pass("standby", true, false);
        break;
    case SessionRole::prefer_standby:
        connection = pass("standby", true, false);
        if (!connection && SteadyClock::now() < deadline)
            connection = pass("any", false, true);
        break;
    }
    if (connection)
        return connection;
    if (!others.empty())
        chosen->message += " (hosts tried" + others + ")";
    return *chosen;
}

Result<void> Connection::check_role(Deadline deadline) {
    // Where this session is, and for a standby how far behind: nothing when it has
    // replayed all it received (an idle primary sends nothing), else the age of the last
    // transaction it replayed (with replay paused, that grows).
    auto rows = script("SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN 0 "
                       "WHEN pg_last_wal_receive_lsn() IS NOT NULL AND "
                       "pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
                       "ELSE coalesce((extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
                       " * 1000)::bigint, 2147483647) END",
                       deadline);
    if (!rows)
        return std::move(rows).error();
    on_standby_ = rows.value().text(0, 0) == "t";
    std::int64_t lag_ms = 0;
    auto lag = rows.value().text(0, 1);
    std::from_chars(lag.data(), lag.data() + lag.size(), lag_ms);
    lag_ms_ = lag_ms;
    auto refuse = [&](Errc code, const std::string& why) {
        Error error = make_error(code, "PostgreSQL " + host().label + ": " + why);
        error.source = config_->source;
        error.target = host().label;
        return error;
    };
    const auto role = config_->role;
    if (role == SessionRole::read_write && on_standby_)
        return refuse(Errc::read_only, "the server is a standby now; writes need the primary");
    bool wants_standby =
        role == SessionRole::standby || (role == SessionRole::prefer_standby && !second_choice_);
    if (wants_standby && !on_standby_)
        return refuse(Errc::unreachable, "the server is no longer a standby (promoted)");
    if (wants_standby && config_->max_replication_lag.count() > 0 &&
        lag_ms > config_->max_replication_lag.count())
        return refuse(Errc::unreachable, "the standby is " + std::to_string(lag_ms) +
                                             " ms behind, over "
                                             "max_replication_lag (" +
                                             std::to_string(config_->max_replication_lag.count()) +
                                             " ms)");
    return success();
}

Connection::Connection(std::shared_ptr<const SessionConfig> config, PGconn* pg,
                       std::size_t host_index, Watchdog& watchdog)
    : config_(std::move(config))
    , pg_(pg, &PQfinish)
    , host_index_(host_index)
    , watchdog_(&watchdog)
    , slot_(watchdog.watch(PQsocket(pg)))
    , opened_at_(SteadyClock::now()) {}

Connection::~Connection() {
    // Leave the watchdog before the socket closes: it must never shut down a socket
    // number that was reused.
    watchdog_->forget(slot_);
}

Result<void> Connection::setup(Deadline deadline) {
    if (!config_->session_settings)
        return success();
    // A role's idle_session_timeout (PostgreSQL 14+) would close pooled and feed sessions
    // while they wait between calls: they are idle by design, so it is off for them.
    std::string sql =
        "SET statement_timeout = " + std::to_string(config_->statement_timeout.count()) +
        "; SELECT set_config('idle_session_timeout', '0', false) WHERE "
        "current_setting('server_version_num')::int >= 140000";
    if (!config_->schema.empty())
        sql += "; SET search_path TO " + quote_identifier(config_->schema);
    if (auto done = script(sql, deadline); !done)
        return done.error();
    return success();
}

template <class Send>
Result<Rows> Connection::run(Deadline deadline, Send&& send) {
    watchdog_->arm(*slot_, deadline);
    PGresult* result = send(pg_.get());
    Rows rows(result);
    if (Watchdog::disarm(*slot_)) {
        // Cut at the deadline: that is the error, whatever libpq made of the shut socket.
        broken_ = true;
        return query_error("connection cut at the deadline", "", true, true, *config_);
    }
    ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return rows;
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string message = result ? PQresultErrorMessage(result) : "";
    if (message.empty())
        message = PQerrorMessage(pg_.get());
    bool gone = PQstatus(pg_.get()) != CONNECTION_OK;
    // 25006: a write on a server that is read-only (a standby where the primary was):
    // this session will not take writes again; it is replaced, not retried.
    bool read_only = state && std::string_view(state) == "25006";
    if (gone || read_only || status == PGRES_COPY_IN || status == PGRES_COPY_OUT || !result)
        broken_ = true;
    return query_error(message, state ? state : "", gone, false, *config_);
}

Result<Rows> Connection::execute(const Statement& statement, Params params, Deadline deadline) {
    if (!config_->prepared_statements)
        return execute(statement.sql, params, deadline);
    if (!(prepared_ & (std::uint64_t{1} << statement.id)))
        return prepare_and_execute(statement, params, deadline);
    return execute_prepared(statement, params, deadline);
}

Result<Rows> Connection::prepare_and_execute(const Statement& statement, Params params,
                                             Deadline deadline) {
    auto prepared = run(deadline, [&](PGconn* pg) {
        return PQprepare(pg, statement.name, statement.sql, 0, nullptr);
    });
    if (!prepared)
        return prepared.error();
    prepared_ |= std::uint64_t{1} << statement.id;
    return execute_prepared(statement, params, deadline);
}

Result<Rows> Connection::execute_prepared(const Statement& statement, Params params,
                                          Deadline deadline) {
    const int count = static_cast<int>(params.size());
    auto send = [&](PGconn* pg) {
        return PQexecPrepared(pg, statement.name, count, params.data(), nullptr, nullptr, 0);
    };
    Result<Rows> rows = run(deadline, send);
    // A migration changed a column's type under the prepared plan: the server answers
    // "cached plan must not change result type" (0A000) until the statement is prepared
    // again. Outside a transaction, do that once.
    if (!rows && rows.error().sqlstate == "0A000" && usable() &&
        PQtransactionStatus(pg_.get()) == PQTRANS_IDLE) {
        rows = run(deadline, [&](PGconn* pg) {
            PQclear(PQexec(pg, ("DEALLOCATE " + std::string(statement.name)).c_str()));
            return PQprepare(pg, statement.name, statement.sql, 0, nullptr);
        });
        if (rows)
            rows = run(deadline, send);
    }
    return rows;
}

Result<std::vector<Result<Rows>>> Connection::execute_each(const Statement& statement,
                                                           std::span<const Params> params,
                                                           Deadline deadline) {
    std::vector<Result<Rows>> results;
    if (params.empty())
        return results;
    const bool prepared = config_->prepared_statements;
    if (prepared && !(prepared_ & (std::uint64_t{1} << statement.id))) {
        auto done = run(deadline, [&](PGconn* pg) {
            return PQprepare(pg, statement.name, statement.sql, 0, nullptr);
        });
        if (!done)
            return std::move(done).error();
        prepared_ |= std::uint64_t{1} << statement.id;
    }
    PGconn* pg = pg_.get();
    auto lost = [&](const std::string& what) {
        broken_ = true;
        bool fired = Watchdog::disarm(*slot_);
        return query_error(what + ": " + PQerrorMessage(pg), "", true, fired, *config_);
    };
    watchdog_->arm(*slot_, deadline);
    if (!PQenterPipelineMode(pg)) {
        Watchdog::disarm(*slot_);
        return query_error(std::string("cannot enter pipeline mode: ") + PQerrorMessage(pg), "",
                           false, false, *config_);
    }
    for (const Params& p : params) {
        int ok = prepared ? PQsendQueryPrepared(pg, statement.name, static_cast<int>(p.size()),
                                                p.data(), nullptr, nullptr, 0)
                          : PQsendQueryParams(pg, statement.sql, static_cast<int>(p.size()),
                                              nullptr, p.data(), nullptr, nullptr, 0);
        // A Sync after each: each statement is a transaction of its own.
        if (!ok || !PQpipelineSync(pg))
            return lost("cannot send a pipelined statement");
    }
    if (PQflush(pg) != 0)
        return lost("cannot send the pipeline");
    for (std::size_t i = 0; i < params.size(); ++i) {
        PGresult* result = PQgetResult(pg);
        if (!result)
            return lost("the pipeline ended early");
        Rows rows(result);
        ExecStatusType status = PQresultStatus(result);
        if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
            results.emplace_back(std::move(rows));
        } else {
            const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
            std::string message = PQresultErrorMessage(result);
            if (message.empty())
                message = status == PGRES_PIPELINE_ABORTED ? "aborted in the pipeline"
                                                           : PQerrorMessage(pg);
            results.emplace_back(query_error(message, state ? state : "", false, false, *config_));
        }
        // The end of this statement's results, then its Sync.
        while (PGresult* rest = PQgetResult(pg))
            PQclear(rest);
        PGresult* sync = PQgetResult(pg);
        bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
        PQclear(sync);
        if (!synced)
            return lost("the pipeline lost its sync");
    }
    bool left = PQexitPipelineMode(pg) == 1;
    if (Watchdog::disarm(*slot_)) {
        broken_ = true;
        return query_error("connection cut at the deadline", "", true, true, *config_);
    }
    if (!left)
        broken_ = true; // not idle: the session cannot be trusted again
    return results;
}

Result<Rows> Connection::execute(const char* sql, Params params, Deadline deadline) {
    return run(deadline, [&](PGconn* pg) {
        return PQexecParams(pg, sql, static_cast<int>(params.size()), nullptr, params.data(),
                            nullptr, nullptr, 0);
    });
}

Result<Rows> Connection::script(const std::string& sql, Deadline deadline) {
    return run(deadline, [&](PGconn* pg) { return PQexec(pg, sql.c_str()); });
}

bool Connection::validate(Deadline deadline) {
    if (config_->role == SessionRole::any)
        return script("SELECT 1", deadline).has_value() && usable();
    // A session on the primary that a prefer-standby read pool took as a second choice
    // makes way, after a while, for a standby that may be back.
    if (second_choice_ && SteadyClock::now() - opened_at_ > std::chrono::seconds(2))
        return false;
    return check_role(deadline).has_value() && usable();
}

} // namespace modelrepo::detail
