// SPDX-License-Identifier: MIT
#include "errors.hpp"

#include <array>

#include "auth_probe.hpp"

namespace modelrepo::detail {

namespace {

struct Cause {
    std::string_view needle; ///< in libpq's message
    Errc code;
    std::string_view sqlstate;
    std::string_view explanation;
    std::string_view also = {}; ///< a second phrase the message must hold, when set
};

// The server's and libpq's (English, C locale) messages for each class of failure.
constexpr std::array causes{
    Cause{"password authentication failed", Errc::auth_failed, "28P01",
          "the server rejected the password: it is wrong, or the role's stored verifier "
          "cannot serve the method pg_hba.conf asks for (an MD5 verifier under a "
          "scram-sha-256 rule fails the same way). Check the password; `modelrepo doctor "
          "URL --admin-url ADMIN_URL` tells which"},
    Cause{"no pg_hba.conf entry", Errc::auth_failed, "28000",
          "no pg_hba.conf line matches this client address, user and database. Add one and "
          "reload the server (SELECT pg_reload_conf(); from any superuser session works "
          "without OS service rights)"},
    Cause{"pg_hba.conf rejects connection", Errc::auth_failed, "28000",
          "a pg_hba.conf line rejects this client address, user and database"},
    Cause{"role \"", Errc::auth_failed, "28000",
          "the role does not exist on this server; create it or fix the user in the URL"},
    Cause{"fe_sendauth: no password supplied", Errc::auth_failed, "",
          "the server asks for a password and the URL has none (put it in the URL or in "
          "PGPASSWORD / ~/.pgpass)"},
    // TLS files libpq cannot find say "does not exist" too: they are TLS causes, asked
    // first, and the database's is the server's own sentence, both halves of it.
    Cause{"root certificate file", Errc::tls_failed, "",
          "the CA file that sslrootcert names cannot be read (or ~/.postgresql/root.crt is "
          "missing): fix the path, use sslrootcert=system for the system's trusted roots, or "
          "an sslmode that does not verify the server"},
    Cause{"could not open certificate file", Errc::tls_failed, "",
          "the client certificate that sslcert names cannot be read; fix the path"},
    Cause{"private key file", Errc::tls_failed, "",
          "the client key that sslkey names cannot be read or has loose permissions (it must "
          "be 0600); fix the path or the mode"},
    Cause{"server does not support SSL", Errc::tls_failed, "",
          "the URL's sslmode requires TLS and the server does not offer it: enable ssl on the "
          "server, or lower sslmode"},
    Cause{"database \"", Errc::database_missing, "3D000",
          "the database named in the URL does not exist; create it (createdb) or fix the "
          "URL's path",
          "\" does not exist"},
    Cause{"too many clients", Errc::too_many_connections, "53300",
          "the server has no free connection slots; lower connection_limit across services "
          "or raise max_connections"},
    Cause{"remaining connection slots are reserved", Errc::too_many_connections, "53300",
          "the server has no free connection slots for this role"},
    Cause{"timeout expired", Errc::timeout, "",
          "no answer within connect_timeout; the server is stopped, overloaded or "
          "firewalled"},
    Cause{"Connection refused", Errc::unreachable, "",
          "nothing listens there: the server is down, or listen_addresses/port differ"},
    Cause{"could not translate host name", Errc::unreachable, "", "the host name does not resolve"},
    Cause{"Network is unreachable", Errc::unreachable, "", "no route to the server"},
    Cause{"No route to host", Errc::unreachable, "", "no route to the server"},
    Cause{"the database system is", Errc::unreachable, "57P03",
          "the server is starting up, shutting down or recovering; retry shortly"},
    // target_session_attrs (libpq 15's words), as the read and write pools ask for it.
    Cause{"server is not in hot standby mode", Errc::unreachable, "",
          "the host is a primary, and a standby was asked for (read_target)"},
    Cause{"session is not read-only", Errc::unreachable, "",
          "the host takes writes, and a read-only session was asked for"},
    Cause{"server is in hot standby mode", Errc::read_only, "",
          "the host is a standby: writes need the primary (during a failover, until a "
          "standby is promoted)"},
    Cause{"session is read-only", Errc::read_only, "",
          "the host is read-only: writes need the primary (during a failover, until a "
          "standby is promoted)"},
    Cause{"SSL", Errc::tls_failed, "",
          "TLS failed; check sslmode and the server's ssl settings and certificates"},
    Cause{"certificate", Errc::tls_failed, "", "the server's certificate was not accepted"},
    Cause{"server closed the connection unexpectedly", Errc::unreachable, "",
          "the server closed the connection; it may have crashed or been restarted"},
};

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    for (auto& c : text)
        if (c == '\n')
            c = ' ';
    return text;
}

} // namespace

Error connect_error(const std::string& raw_message, const SessionConfig& config,
                    const HostParams& host, std::chrono::milliseconds probe_budget) {
    const PgTarget& target = config.target;
    std::string libpq_message = mask_secrets(raw_message, config.secrets);
    const Cause* cause = nullptr;
    for (const Cause& c : causes)
        if (libpq_message.find(c.needle) != std::string::npos &&
            (c.also.empty() || libpq_message.find(c.also) != std::string::npos)) {
            cause = &c;
            break;
        }
    Errc code = cause ? cause->code : Errc::unreachable;
    std::string message =
        "cannot connect to " + target.display() + " as user \"" + target.user + "\": " +
        std::string(cause ? cause->explanation : "the connection failed (see libpq's message)");
    if (code == Errc::auth_failed && probe_budget.count() > 0) {
        auto probe = probe_auth_method(host.host, host.port, target.user, target.database,
                                       std::min(probe_budget, std::chrono::milliseconds(1500)));
        if (probe.reached && !probe.method.empty())
            message += ". The server at " + probe.address + " asks this client for " + probe.method;
    }
    message += ". libpq: " + trim(libpq_message);
    Error error = make_error(code, message);
    error.source = config.source;
    error.target = host.label;
    if (cause)
        error.sqlstate = std::string(cause->sqlstate);
    return error;
}

Error connect_timeout_error(const SessionConfig& config, const HostParams& host,
                            std::chrono::milliseconds waited) {
    Error error = make_error(
        Errc::timeout, "cannot connect to " + config.target.display() + " as user \"" +
                           config.target.user + "\": " + host.label +
                           " did not complete a login within " + std::to_string(waited.count()) +
                           " ms (connect_timeout, or the call's deadline); the server is stopped, "
                           "overloaded or firewalled");
    error.source = config.source;
    error.target = host.label;
    return error;
}

Error query_error(const std::string& raw_what, const std::string& sqlstate, bool broken,
                  bool timed_out, const SessionConfig& config) {
    const PgTarget& target = config.target;
    const auto timeout = config.statement_timeout;
    std::string what = mask_secrets(raw_what, config.secrets);
    Errc code = Errc::query_failed;
    std::string advice;
    if (timed_out) {
        code = Errc::timeout;
        advice = "no answer within " + std::to_string(timeout.count()) +
                 " ms (query_timeout); the connection was discarded. The server may be "
                 "stopped or overloaded";
    } else if (sqlstate == "57014") {
        code = Errc::timeout;
        advice = "the server cancelled the statement at statement_timeout (" +
                 std::to_string(timeout.count()) + " ms)";
    } else if (sqlstate == "42P01" || sqlstate == "42703" || sqlstate == "3F000") {
        code = Errc::schema_missing;
        advice = "modelrepo's tables are missing or outdated in this database/schema; run "
                 "`modelrepo migrate --source URL`";
    } else if (sqlstate == "22021") {
        code = Errc::bad_data;
        advice = "the database holds text that is not valid UTF-8 (an SQL_ASCII database "
                 "stores bytes unchecked); modelrepo's sessions speak UTF-8, so the server "
                 "refuses to send it. Fix the row, or store the data in a UTF8 database";
    } else if (sqlstate == "23503") {
        code = Errc::invalid_argument;
        advice = "a status names a model that is not in the catalogue; nothing was written";
    } else if (sqlstate == "53300") {
        code = Errc::too_many_connections;
        advice = "the server has no free connection slots";
    } else if (sqlstate.starts_with("28")) {
        code = Errc::auth_failed;
        advice = "the server refused the session";
    } else if (sqlstate.starts_with("08") || sqlstate.starts_with("57P") || broken) {
        code = Errc::unreachable;
        advice = "the connection to the server was lost; it may have been restarted";
    } else if (sqlstate == "25006") {
        code = Errc::read_only;
        advice = "the server is a read-only replica; point writes at the primary "
                 "(target_session_attrs=read-write)";
    } else {
        advice = "the statement failed";
    }
    Error error =
        make_error(code, "PostgreSQL " + target.display() + ": " + advice + ". " +
                             (sqlstate.empty() ? "" : "[" + sqlstate + "] ") + trim(what));
    error.source = config.source;
    error.target = target.host_list();
    error.sqlstate = sqlstate;
    return error;
}

} // namespace modelrepo::detail
