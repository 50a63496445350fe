// SPDX-License-Identifier: MIT
// Statements on libpq itself: a libpqxx 6.4 connection whose libpq handle we keep,
// results read straight from the PGresult, and failures as one exception type.
// libpqxx only opens and closes the connections.
//
// Why not libpqxx for the reads: per call it opened a transaction object, asked the
// socket for notifications twice (two recv() calls that find nothing), built a
// parameter list and a result holding two shared_ptr, and copied the result handle
// for every field read. On 2 cores with 4 threads that was a tenth of the throughput
// of a bare libpq loop. Its other paths also leak a PGresult when a connection breaks
// mid-statement (libpqxx 6.4's make_result throws before it owns the result), so the
// session setup, validation and transactions run here too.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <libpq-fe.h>
#include <pqxx/connection>

namespace modelrepo::detail {

/// A libpqxx connection policy (libpqxx 6's public extension point) that records the
/// libpq handle it opens into `*capture`, when set by the opening thread.
class HandleCapture : public pqxx::connect_direct {
public:
    explicit HandleCapture(const std::string& options)
        : pqxx::connect_direct(options) {}

    /// libpqxx passes the handle through here once the connection is complete.
    handle do_completeconnect(handle orig) override {
        return keep(pqxx::connect_direct::do_completeconnect(orig));
    }

    /// Where the opening thread wants the handle (see `open_connection`).
    static inline thread_local PGconn** capture = nullptr;

private:
    static handle keep(handle h) {
        if (capture)
            *capture = h;
        return h;
    }
};

/// A libpqxx connection with its libpq handle.
using PgConnection = pqxx::basic_connection_base<HandleCapture>;

/// Opens `conninfo`; `*handle` receives its libpq handle (valid until the connection
/// closes: the pool never lets libpqxx reconnect it). Throws what libpqxx throws.
std::unique_ptr<PgConnection> open_connection(const std::string& conninfo, PGconn** handle);

/// A failed statement: libpq's message, the SQLSTATE (empty when the connection
/// failed), and whether the connection is gone.
class PgFailure : public std::runtime_error {
public:
    PgFailure(const std::string& message, std::string sqlstate, bool broken)
        : std::runtime_error(message)
        , sqlstate_(std::move(sqlstate))
        , broken_(broken) {}
    const std::string& sqlstate() const noexcept { return sqlstate_; }
    bool broken() const noexcept { return broken_; }

private:
    std::string sqlstate_;
    bool broken_;
};

/// One field of a result row: text, as libpq returns it.
struct PgField {
    std::string_view text;
    bool null = false;
};

/// The rows of a statement's result; clears the PGresult.
class PgRows {
public:
    /// Takes `result`; throws PgFailure unless it holds rows or a command's success.
    PgRows(PGresult* result, PGconn* conn);

    int size() const noexcept { return PQntuples(result_.get()); }
    bool empty() const noexcept { return size() == 0; }
    /// Rows the command touched (INSERT/UPDATE/DELETE).
    std::int64_t affected() const;
    PgField field(int row, int column) const noexcept {
        PGresult* r = result_.get();
        return {std::string_view(PQgetvalue(r, row, column),
                                 static_cast<std::size_t>(PQgetlength(r, row, column))),
                PQgetisnull(r, row, column) != 0};
    }

private:
    std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
};

/// Runs a statement with text parameters: prepared (by name) or with its SQL text.
PgRows exec_prepared(PGconn* conn, const char* name, int count, const char* const* values);
PgRows exec_params(PGconn* conn, const char* sql, int count, const char* const* values);
/// exec_params with the parameters as std::strings.
template <class... Strings>
PgRows exec_text(PGconn* conn, const char* sql, const Strings&... params) {
    const char* values[] = {params.c_str()..., nullptr};
    return exec_params(conn, sql, static_cast<int>(sizeof...(params)), values);
}
/// Prepares `sql` as `name` on this connection.
void prepare(PGconn* conn, const char* name, const char* sql);
/// Runs `sql`, which may hold several statements (simple query protocol, no
/// parameters): the rows of the last one.
PgRows exec_script(PGconn* conn, const char* sql);
/// `name` as an SQL identifier, quoted as needed.
std::string quote_identifier(PGconn* conn, std::string_view name);

/// A transaction on a libpq connection: BEGIN (with `mode`, e.g. "ISOLATION LEVEL
/// REPEATABLE READ READ ONLY") on construction, ROLLBACK on destruction unless
/// committed. Statements in between run on the same connection with the functions
/// above.
class PgTransaction {
public:
    explicit PgTransaction(PGconn* conn, const char* mode = "");
    ~PgTransaction();
    PgTransaction(const PgTransaction&) = delete;
    PgTransaction& operator=(const PgTransaction&) = delete;

    /// COMMIT; throws PgFailure when the server refuses it.
    void commit();

private:
    PGconn* conn_;
    bool open_ = true;
};

} // namespace modelrepo::detail
