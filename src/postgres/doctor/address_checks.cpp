// SPDX-License-Identifier: MIT
// The doctor's look at one address: TCP, TLS, the method the server asks for, the login,
// the server's role; and the URL itself.
#include <pqxx/connection>
#include <pqxx/nontransaction>

#include "../driver/errors.hpp"
#include "checks.hpp"

namespace modelrepo::detail::doctor {

using namespace std::chrono_literals;

void check_url(const std::string& url, Checks& checks) {
    std::string_view rest = url;
    auto scheme = rest.find("://");
    if (scheme != std::string_view::npos) {
        rest.remove_prefix(scheme + 3);
        auto at = rest.rfind('@');
        auto first_slash = rest.find('/');
        if (at != std::string_view::npos) {
            std::string_view userinfo = rest.substr(0, at);
            auto colon = userinfo.find(':');
            std::string_view pass =
                colon == std::string_view::npos ? std::string_view() : userinfo.substr(colon + 1);
            bool raw = pass.find_first_of("@/:?#[]") != std::string_view::npos ||
                       (first_slash != std::string_view::npos && first_slash < at) ||
                       userinfo.find('@') != std::string_view::npos;
            if (raw)
                checks.push_back({"url", "password-encoding", Status::warn,
                                  "the password holds reserved characters (@ / : ? # [ ]) "
                                  "that are not %-encoded; other drivers may split the URL "
                                  "differently",
                                  "percent-encode them (@ as %40, / as %2F, : as %3A, # as %23)"});
        }
    }
    for (const char* prisma : {"schema", "connection_limit", "pool_timeout", "socket_timeout",
                               "pgbouncer", "statement_cache_size"}) {
        std::string key = std::string(prisma) + "=";
        auto q = url.find('?');
        if (q != std::string::npos &&
            (url.find("?" + key) != std::string::npos || url.find("&" + key) != std::string::npos))
            checks.push_back({"url", "prisma-parameter", Status::ok,
                              std::string(prisma) +
                                  " is Prisma's, not libpq's: modelrepo takes it out before "
                                  "libpq sees it (plain libpq/psql would refuse the URL)",
                              ""});
    }
}

namespace {

/// TCP, TLS and the method the server asks this client for, without logging in: false
/// when the address cannot be logged into (the failed check says why).
bool probe_checks(Address& address, int port, const HostParams& host, const PgTarget& target,
                  Checks& checks) {
    // Over TLS when the URL's sslmode would be: pg_hba.conf's hostssl and hostnossl
    // lines may give the two kinds of connection different methods.
    const ProbeTls want_tls = probe_tls_for(host);
    auto probe = probe_auth_method(address.ip, port, target.user, target.database, 3s, want_tls);
    address.tls = probe.tls;
    if (!probe.reached) {
        checks.push_back({address.label, "tcp", Status::fail, probe.message,
                          "start the server, or check listen_addresses and port"});
        return false;
    }
    if (!probe.postgres) {
        checks.push_back({address.label, "tcp", Status::fail, probe.message,
                          "another program has this port: check the port in the URL"});
        return false;
    }
    checks.push_back({address.label, "tcp", Status::ok, "a PostgreSQL server answers", ""});
    auto offered = probe.tls_offered ? probe.tls_offered : server_offers_tls(address, port);
    if (want_tls == ProbeTls::require && offered == false) {
        checks.push_back({address.label, "tls", Status::fail,
                          "the server does not offer TLS, which the URL's sslmode requires",
                          "turn ssl on in postgresql.conf (a certificate and key) and reload, "
                          "or connect with sslmode=prefer"});
        return false;
    }
    if (want_tls != ProbeTls::off && offered == true && !probe.tls) {
        checks.push_back({address.label, "tls", Status::fail, probe.message,
                          "check the server's ssl_cert_file and ssl_key_file"});
        return false;
    }
    checks.push_back({address.label, "tls", Status::ok,
                      !offered    ? "could not ask"
                      : probe.tls ? "the server offers TLS; this client's connection uses it"
                      : *offered  ? "the server offers TLS; this client's sslmode does not use "
                                    "it"
                                  : "the server does not offer TLS",
                      ""});
    const std::string over = probe.tls ? " (over TLS)" : " (in the clear)";
    if (!probe.method.empty())
        checks.push_back({address.label, "method", Status::ok,
                          "the server asks this client" + over + " for " + probe.method, ""});
    else if (!probe.sqlstate.empty())
        checks.push_back(
            {address.label, "method", Status::fail,
             "the server refused before authentication: [" + probe.sqlstate + "] " + probe.message,
             probe.sqlstate == "28000" ? "add a pg_hba.conf line for this address and reload"
                                       : ""});

    return true;
}

/// The login, then which server this is (a primary, or a standby and how far behind) and
/// its catalogue; behind PgBouncer only the login (PgBouncer takes it itself).
void login_checks(const Address& address, const HostParams& host, const SessionConfig& session,
                  const PostgresConfig& config, Checks& checks) {
    const auto& target = session.target;
    std::string conninfo = conninfo_at(host, address.ip);
    try {
        pqxx::connection conn(conninfo);
        checks.push_back(
            {address.label, "auth", Status::ok,
             "logged in as \"" + target.user + "\" to database \"" + target.database + "\"", ""});
        if (config.pgbouncer) {
            // PgBouncer takes the login itself; a statement would wait for its own login
            // to the server (up to its query_wait_timeout). The server behind it is
            // checked directly through direct_url.
            checks.push_back(
                {address.label, "pgbouncer", Status::ok,
                 "PgBouncer accepts this login; it says nothing of its own login to the "
                 "server",
                 config.direct_url.empty()
                     ? "set direct_url so that the doctor (and the change feed) reach the "
                       "server behind it"
                     : ""});
            return;
        }
        pqxx::nontransaction tx(conn);
        // Which server this is: a primary, or a standby and how far behind.
        auto role = tx.exec(
            "SELECT pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL "
            "ELSE (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint "
            "END, pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()")[0];
        if (!role[0].as<bool>())
            checks.push_back({address.label, "role", Status::ok, "primary (takes writes)", ""});
        else
            checks.push_back(
                {address.label, "role", Status::ok,
                 std::string("standby (read-only); ") +
                     (role[2].is_null() || !role[2].as<bool>()
                          ? "replay is behind what it received; "
                          : "replayed all it received; ") +
                     (role[1].is_null() ? std::string("no transaction replayed yet")
                                        : "the last transaction it replayed is " +
                                              std::string(role[1].c_str()) + " ms old"),
                 ""});
        if (!config.schema.empty())
            tx.exec("SET search_path TO " + conn.quote_name(config.schema));
        if (config.mapping.empty())
            check_schema(tx, config, address.label, checks);
        else
            check_mapping(tx, config, address.label, checks);
        if (!role[0].as<bool>())
            check_logical(tx, config, address.label, checks);
    } catch (const std::exception& e) {
        Error error = connect_error(e.what(), session, host, 1500ms);
        checks.push_back({address.label, "auth", Status::fail,
                          std::string(to_string(*error.errc())) +
                              (error.sqlstate.empty() ? "" : " [" + error.sqlstate + "]") + ": " +
                              error.message,
                          ""});
    }
}

} // namespace

void check_address(Address& address, int port, const HostParams& host, const SessionConfig& session,
                   const PostgresConfig& config, Checks& checks) {
    if (probe_checks(address, port, host, session.target, checks))
        login_checks(address, host, session, config, checks);
}

} // namespace modelrepo::detail::doctor
