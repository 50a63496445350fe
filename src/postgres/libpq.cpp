// SPDX-License-Identifier: MIT
#include "libpq.hpp"

#include <charconv>

namespace modelrepo::detail {

std::unique_ptr<PgConnection> open_connection(const std::string& conninfo, PGconn** handle) {
    *handle = nullptr;
    HandleCapture::capture = handle;
    struct Reset {
        ~Reset() { HandleCapture::capture = nullptr; }
    } reset;
    auto conn = std::make_unique<PgConnection>(conninfo);
    if (!*handle)
        throw pqxx::broken_connection("the connection's libpq handle was not seen");
    return conn;
}

PgRows::PgRows(PGresult* result, PGconn* conn)
    : result_(result, &PQclear) {
    ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return;
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string message = result ? PQresultErrorMessage(result) : "";
    if (message.empty())
        message = PQerrorMessage(conn);
    throw PgFailure(message, state ? state : "", PQstatus(conn) != CONNECTION_OK);
}

std::int64_t PgRows::affected() const {
    const char* text = PQcmdTuples(result_.get());
    std::int64_t n = 0;
    std::from_chars(text, text + std::char_traits<char>::length(text), n);
    return n;
}

PgRows exec_prepared(PGconn* conn, const char* name, int count, const char* const* values) {
    return PgRows(PQexecPrepared(conn, name, count, values, nullptr, nullptr, 0), conn);
}

PgRows exec_params(PGconn* conn, const char* sql, int count, const char* const* values) {
    return PgRows(PQexecParams(conn, sql, count, nullptr, values, nullptr, nullptr, 0), conn);
}

void prepare(PGconn* conn, const char* name, const char* sql) {
    PgRows(PQprepare(conn, name, sql, 0, nullptr), conn);
}

PgRows exec_script(PGconn* conn, const char* sql) {
    return PgRows(PQexec(conn, sql), conn);
}

std::string quote_identifier(PGconn* conn, std::string_view name) {
    char* quoted = PQescapeIdentifier(conn, name.data(), name.size());
    if (!quoted)
        throw PgFailure(PQerrorMessage(conn), "", PQstatus(conn) != CONNECTION_OK);
    std::string out(quoted);
    PQfreemem(quoted);
    return out;
}

PgTransaction::PgTransaction(PGconn* conn, const char* mode)
    : conn_(conn) {
    exec_script(conn_, (std::string("BEGIN ") + mode).c_str());
}

PgTransaction::~PgTransaction() {
    // After a failure: leave the connection idle for the pool (or find it broken).
    if (open_ && PQstatus(conn_) == CONNECTION_OK)
        PQclear(PQexec(conn_, "ROLLBACK"));
}

void PgTransaction::commit() {
    open_ = false;
    exec_script(conn_, "COMMIT");
}

} // namespace modelrepo::detail
