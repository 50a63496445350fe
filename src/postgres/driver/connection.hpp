// SPDX-License-Identifier: MIT
// Connection: one server session and everything about it — the libpq handle, the
// session's setup, its prepared statements, its watchdog slot — and the one place where
// a libpq failure becomes an Error.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <libpq-fe.h>

#include <modelrepo/error.hpp>

#include "session_config.hpp"
#include "watchdog.hpp"

namespace modelrepo::detail {

/// When a call must be over, whatever it is doing (waiting for the pool, connecting,
/// running statements).
using Deadline = SteadyClock::time_point;

/// A statement the library runs, prepared under `name` on its first use on a session
/// (unless the session config says no prepared statements).
struct Statement {
    std::size_t id;   ///< its bit in a session's prepared set: below 64, unique
    const char* name; ///< the prepared statement's name
    const char* sql;
};

/// Text parameters of one statement: NUL-terminated, nullptr for SQL NULL.
using Params = std::span<const char* const>;

/// The rows of one statement's result; owns the PGresult.
class Rows {
public:
    Rows() = default;
    explicit Rows(PGresult* result)
        : result_(result, &PQclear) {}

    int size() const noexcept { return result_ ? PQntuples(result_.get()) : 0; }
    bool empty() const noexcept { return size() == 0; }
    /// Field text as libpq returns it (text format); "" for NULL.
    std::string_view text(int row, int column) const noexcept {
        PGresult* r = result_.get();
        return {PQgetvalue(r, row, column), static_cast<std::size_t>(PQgetlength(r, row, column))};
    }
    bool is_null(int row, int column) const noexcept {
        return PQgetisnull(result_.get(), row, column) != 0;
    }
    /// Rows the command touched (INSERT/UPDATE/DELETE).
    std::int64_t affected() const noexcept;

private:
    std::unique_ptr<PGresult, void (*)(PGresult*)> result_{nullptr, &PQclear};
};

/// One session with one server. Not thread-safe: one caller at a time (the pool lends
/// it to one caller; the change feed owns its own).
///
/// Every call takes a deadline: the watchdog shuts the socket down when it passes, so a
/// call on a stopped server returns `Errc::timeout` on time, and the session is then
/// unusable. A failure that leaves the session broken (connection lost, deadline,
/// protocol trouble) makes `usable()` false; the owner discards it.
class Connection {
public:
    /// Opens a session on the first of the config's hosts that takes it, each attempt
    /// bounded by connect_timeout and all by `deadline`; then sets it up
    /// (statement_timeout, search_path, UTF-8). Errors: auth_failed, database_missing,
    /// too_many_connections, tls_failed, unreachable, timeout; the message names the
    /// host, address and port and never the password.
    static Result<std::unique_ptr<Connection>> open(std::shared_ptr<const SessionConfig> config,
                                                    Watchdog& watchdog, Deadline deadline);

    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    /// Runs one of the library's statements: prepared on first use here (and prepared
    /// again once when a migration changed a result type under it, SQLSTATE 0A000).
    Result<Rows> execute(const Statement& statement, Params params, Deadline deadline);
    /// Runs `statement` once per parameter set, pipelined (one round trip for them all),
    /// each in a transaction of its own: one failing does not affect the others. The
    /// outer Result fails when the session did; the inner ones say how each statement
    /// went, in order.
    Result<std::vector<Result<Rows>>>
    execute_each(const Statement& statement, std::span<const Params> params, Deadline deadline);
    /// Runs one statement with parameters, unprepared.
    Result<Rows> execute(const char* sql, Params params, Deadline deadline);
    /// Runs `sql`, which may hold several statements, without parameters (simple query
    /// protocol): the rows of the last one.
    Result<Rows> script(const std::string& sql, Deadline deadline);
    /// A round trip; false when the session is no longer good: broken, or no longer the
    /// kind of server its role wants (a primary turned standby, a standby promoted or
    /// past max_replication_lag), or a prefer-standby session on the primary that has
    /// had its while.
    bool validate(Deadline deadline);
    /// On a standby (as of connect or the last validation).
    bool on_standby() const noexcept { return on_standby_; }
    /// The standby's replay lag in ms at that time (0 on a primary).
    std::int64_t lag_ms() const noexcept { return lag_ms_; }

    /// BEGIN `mode`; `fn(*this)` (a Result); COMMIT when it succeeded, ROLLBACK when not.
    template <class Fn>
    auto transaction(std::string_view mode, Deadline deadline, Fn&& fn) -> decltype(fn(*this));

    /// Neither broken nor cut off at a deadline: fit to be reused.
    bool usable() const noexcept { return !broken_ && PQstatus(pg_.get()) == CONNECTION_OK; }
    /// The server this session is on.
    const HostParams& host() const noexcept { return config_->hosts[host_index_]; }
    const SessionConfig& config() const noexcept { return *config_; }
    /// The libpq handle, for what this type does not wrap (LISTEN/NOTIFY).
    PGconn* native_handle() noexcept { return pg_.get(); }

private:
    Connection(std::shared_ptr<const SessionConfig> config, PGconn* pg, std::size_t host_index,
               Watchdog& watchdog);
    /// Arms the deadline, runs `send` (which returns a PGresult), disarms, and turns
    /// whatever failed into an Error: the one boundary.
    template <class Send>
    Result<Rows> run(Deadline deadline, Send&& send);
    /// execute() of a statement already prepared here; one return, so the answer is
    /// built in the caller's slot.
    Result<Rows> execute_prepared(const Statement& statement, Params params, Deadline deadline);
    /// execute() of a statement not yet prepared here.
    Result<Rows> prepare_and_execute(const Statement& statement, Params params, Deadline deadline);
    Result<void> setup(Deadline deadline);
    /// Asks the server what it is and how far behind; an Error when the role says no.
    Result<void> check_role(Deadline deadline);

    std::shared_ptr<const SessionConfig> config_;
    std::unique_ptr<PGconn, void (*)(PGconn*)> pg_;
    std::size_t host_index_;
    Watchdog* watchdog_;
    Watchdog::Slot* slot_;
    std::uint64_t prepared_ = 0; ///< bit i: the Statement with id i is prepared here
    bool broken_ = false;
    bool on_standby_ = false;
    bool second_choice_ = false; ///< prefer-standby, and no standby would do
    std::int64_t lag_ms_ = 0;
    SteadyClock::time_point opened_at_;
};

template <class Fn>
auto Connection::transaction(std::string_view mode, Deadline deadline, Fn&& fn)
    -> decltype(fn(*this)) {
    if (auto begun = script("BEGIN " + std::string(mode), deadline); !begun)
        return begun.error();
    auto result = fn(*this);
    if (!result) {
        // Leave the session idle for its next user (or find it broken). A ROLLBACK
        // after the deadline gets a moment of its own rather than a deadline passed.
        if (usable())
            (void)script("ROLLBACK",
                         std::max(deadline, SteadyClock::now() + std::chrono::milliseconds(500)));
        return result;
    }
    if (auto committed = script("COMMIT", deadline); !committed)
        return committed.error();
    return result;
}

} // namespace modelrepo::detail
