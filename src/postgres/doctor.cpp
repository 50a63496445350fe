// SPDX-License-Identifier: MIT
// diagnose_postgres(): TCP, TLS, auth, database, schema per address; verifier, pg_hba
// and reload state with an administrator connection.
#include <cstdlib>
#include <cstring>

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <sys/socket.h>
#include <unistd.h>

#include <modelrepo/durable.hpp>
#include <modelrepo/postgres_config.hpp>
#include <modelrepo/postgres_doctor.hpp>

#include "auth_probe.hpp"
#include "errors.hpp"
#include "mapping.hpp"
#include "session_config.hpp"
#include "target.hpp"

namespace modelrepo {

namespace {

using Status = DoctorCheck::Status;
using namespace std::chrono_literals;

struct Address {
    std::string ip;    ///< "127.0.0.1", "::1"
    std::string label; ///< "127.0.0.1:5432", "[::1]:5432"
    int family = AF_INET;
    bool tls = false; ///< the client's connection here is TLS (pg_hba: host or hostssl)
};

/// What the URL's sslmode (or PGSSLMODE, else libpq's "prefer") asks of the probe.
detail::ProbeTls probe_tls_for(const detail::HostParams& host) {
    std::string mode;
    for (const auto& [key, value] : host.params)
        if (key == "sslmode")
            mode = value;
    if (mode.empty())
        if (const char* env = std::getenv("PGSSLMODE"))
            mode = env;
    if (mode == "disable" || mode == "allow") // allow: in the clear first, as libpq tries
        return detail::ProbeTls::off;
    if (mode == "require" || mode == "verify-ca" || mode == "verify-full")
        return detail::ProbeTls::require;
    return detail::ProbeTls::prefer;
}

std::vector<Address> resolve(const std::string& host, int port, std::string& error) {
    std::vector<Address> out;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list); rc != 0) {
        error = ::gai_strerror(rc);
        return out;
    }
    for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        char buf[INET6_ADDRSTRLEN] = "";
        if (ai->ai_family == AF_INET)
            ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, buf,
                        sizeof buf);
        else if (ai->ai_family == AF_INET6)
            ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, buf,
                        sizeof buf);
        else
            continue;
        std::string ip = buf;
        bool seen = false;
        for (const auto& a : out)
            seen = seen || a.ip == ip;
        if (seen)
            continue;
        std::string label = ai->ai_family == AF_INET6 ? "[" + ip + "]:" + std::to_string(port)
                                                      : ip + ":" + std::to_string(port);
        out.push_back({ip, label, ai->ai_family});
    }
    ::freeaddrinfo(list);
    return out;
}

/// Sends the protocol's SSLRequest: 'S' means the server offers TLS, 'N' that it does not.
std::optional<bool> server_offers_tls(const Address& address, int port) {
    int fd = ::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return std::nullopt;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_storage storage{};
    socklen_t len = 0;
    if (address.family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&storage);
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET, address.ip.c_str(), &in->sin_addr);
        len = sizeof *in;
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET6, address.ip.c_str(), &in6->sin6_addr);
        len = sizeof *in6;
    }
    std::optional<bool> answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), len) == 0) {
        const unsigned char request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}; // 80877103
        char reply = 0;
        if (::send(fd, request, sizeof request, MSG_NOSIGNAL) == 8 && ::recv(fd, &reply, 1, 0) == 1)
            answer = reply == 'S';
    }
    ::close(fd);
    return answer;
}

/// Does `ip` fall in pg_hba's address/netmask?
bool address_matches(const std::string& ip, const std::string& rule_address,
                     const std::string& netmask) {
    if (rule_address == "all" || rule_address.empty())
        return true;
    if (rule_address == "samehost" || rule_address == "samenet")
        return ip == "127.0.0.1" || ip == "::1";
    unsigned char a[16]{}, r[16]{}, m[16]{};
    bool v6 = ip.find(':') != std::string::npos;
    int family = v6 ? AF_INET6 : AF_INET;
    std::size_t size = v6 ? 16 : 4;
    if (::inet_pton(family, ip.c_str(), a) != 1 ||
        ::inet_pton(family, rule_address.c_str(), r) != 1)
        return false;
    if (netmask.empty() || ::inet_pton(family, netmask.c_str(), m) != 1)
        std::memset(m, 0xff, size);
    for (std::size_t i = 0; i < size; ++i)
        if ((a[i] & m[i]) != (r[i] & m[i]))
            return false;
    return true;
}

/// "{all}" / "{app,other}" from pg_hba_file_rules' text[] columns.
bool list_matches(std::string list, const std::string& name) {
    if (list.size() >= 2 && list.front() == '{')
        list = list.substr(1, list.size() - 2);
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t comma = list.find(',', start);
        std::string item =
            list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item.size() >= 2 && item.front() == '"')
            item = item.substr(1, item.size() - 2);
        if (item == "all" || item == name || item == "sameuser" || item == "samerole")
            return true;
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return false;
}

/// A key=value conninfo for one host of the URL, at address `ip`.
std::string conninfo_at(const detail::HostParams& host, const std::string& ip) {
    std::string out;
    auto quoted = [](const std::string& v) {
        std::string q = "'";
        for (char c : v) {
            if (c == '\\' || c == '\'')
                q.push_back('\\');
            q.push_back(c);
        }
        return q + "'";
    };
    for (const auto& [key, value] : host.params)
        if (key != "hostaddr")
            out += key + "=" + quoted(value) + " ";
    return out + "hostaddr=" + quoted(ip);
}

/// Characters that must be %-encoded in a URL's password (RFC 3986 reserved).
void check_url(const std::string& url, std::vector<DoctorCheck>& checks) {
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

void admin_checks(pqxx::connection& admin, const detail::PgTarget& target,
                  const std::vector<Address>& addresses, std::vector<DoctorCheck>& checks) {
    pqxx::nontransaction tx(admin);
    std::string encryption = tx.exec("SHOW password_encryption")[0][0].c_str();
    checks.push_back({"server", "password_encryption",
                      encryption == "scram-sha-256" ? Status::ok : Status::warn,
                      "new passwords are stored as " + encryption,
                      encryption == "scram-sha-256"
                          ? ""
                          : "ALTER SYSTEM SET password_encryption = 'scram-sha-256'; SELECT "
                            "pg_reload_conf(); then reset the role's password"});

    std::string verifier = "none";
    auto role = tx.exec_params("SELECT rolpassword FROM pg_authid WHERE rolname = $1", target.user);
    if (role.empty()) {
        checks.push_back({"server", "role", Status::fail,
                          "role \"" + target.user + "\" does not exist",
                          "CREATE ROLE \"" + target.user + "\" LOGIN PASSWORD '…';"});
    } else {
        std::string stored = role[0][0].is_null() ? "" : role[0][0].c_str();
        verifier = stored.starts_with("SCRAM-SHA-256$") ? "scram-sha-256"
                   : stored.starts_with("md5")          ? "md5"
                   : stored.empty()                     ? "none"
                                                        : "plain";
        checks.push_back({"server", "verifier", Status::ok,
                          "role \"" + target.user + "\" has a stored " + verifier + " verifier",
                          ""});
    }

    auto rules = tx.exec("SELECT line_number, type, database::text, user_name::text, "
                         "coalesce(address, ''), coalesce(netmask, ''), coalesce(auth_method, ''), "
                         "coalesce(error, '') FROM pg_hba_file_rules ORDER BY line_number");
    for (const Address& address : addresses) {
        const pqxx::row* first = nullptr;
        for (const auto& row : rules) {
            std::string type = row[1].c_str();
            if (!row[7].is_null() && std::strlen(row[7].c_str()) > 0)
                continue;
            // The kinds of line this client's connection can match.
            if (type != "host" && type != (address.tls ? "hostssl" : "hostnossl"))
                continue;
            if (!list_matches(row[2].c_str(), target.database) ||
                !list_matches(row[3].c_str(), target.user) ||
                !address_matches(address.ip, row[4].c_str(), row[5].c_str()))
                continue;
            first = &row;
            break;
        }
        if (!first) {
            checks.push_back({address.label, "pg_hba", Status::fail,
                              "no pg_hba.conf line matches host " + address.ip + ", user \"" +
                                  target.user + "\", database \"" + target.database + "\"" +
                                  (address.tls ? " over TLS" : " in the clear"),
                              "add e.g. '" + std::string(address.tls ? "hostssl " : "host ") +
                                  target.database + " " + target.user + " " + address.ip +
                                  (address.family == AF_INET6 ? "/128" : "/32") +
                                  " scram-sha-256' and SELECT pg_reload_conf();"});
            continue;
        }
        std::string method = (*first)[6].c_str();
        auto plain = [](std::string list) {
            if (list.size() >= 2 && list.front() == '{')
                list = list.substr(1, list.size() - 2);
            return list;
        };
        std::string line = "line " + std::string((*first)[0].c_str()) + ": " + (*first)[1].c_str() +
                           " " + plain((*first)[2].c_str()) + " " + plain((*first)[3].c_str()) +
                           " " + (*first)[4].c_str() +
                           ((*first)[5].is_null() || !*(*first)[5].c_str()
                                ? ""
                                : " " + std::string((*first)[5].c_str())) +
                           " " + method;
        Status status = Status::ok;
        std::string fix;
        if (method == "scram-sha-256" && verifier == "md5") {
            status = Status::fail;
            fix = "the role's verifier is MD5 but this line asks for scram-sha-256, which "
                  "fails exactly like a wrong password (28P01). As a superuser: SET "
                  "password_encryption = 'scram-sha-256'; ALTER ROLE \"" +
                  target.user + "\" PASSWORD '…';";
        } else if (method == "reject") {
            status = Status::fail;
            fix = "this line rejects the client; change it and SELECT pg_reload_conf();";
        }
        checks.push_back({address.label, "pg_hba", status,
                          "first matching pg_hba.conf " + line +
                              (method == "scram-sha-256" && verifier == "md5"
                                   ? " (MD5 verifier under a scram-sha-256 rule)"
                                   : ""),
                          fix});
    }

    auto reload = tx.exec("SELECT (pg_stat_file(current_setting('hba_file'))).modification > "
                          "pg_conf_load_time(), (pg_stat_file(current_setting('hba_file')))"
                          ".modification::text, pg_conf_load_time()::text");
    bool stale = reload[0][0].as<bool>();
    checks.push_back(
        {"server", "reload", stale ? Status::fail : Status::ok,
         stale ? "pg_hba.conf changed at " + std::string(reload[0][1].c_str()) +
                     " after the configuration was last loaded at " + reload[0][2].c_str() +
                     ": the server still uses the old rules (the pg_hba lines above are the "
                     "file's, not the ones in force)"
               : "pg_hba.conf has not changed since the last reload at " +
                     std::string(reload[0][2].c_str()),
         stale ? "SELECT pg_reload_conf(); from any superuser session applies it; no OS "
                 "service rights are needed"
               : ""});
}

} // namespace

std::string_view to_string(DoctorCheck::Status s) noexcept {
    switch (s) {
    case Status::ok:
        return "ok";
    case Status::warn:
        return "warn";
    case Status::fail:
        return "fail";
    case Status::skipped:
        break;
    }
    return "skipped";
}

bool DoctorReport::healthy() const noexcept {
    for (const auto& c : checks)
        if (c.status == Status::fail)
            return false;
    return true;
}

namespace {

/// Statuses stored with a `checked_at` further ahead of this clock than the allowed skew
/// (written by psql, Prisma or a writer with a wrong clock): each silently keeps every real
/// status of its model out, since an older `checked_at` is ignored. `table` and `checked_at`
/// are quoted SQL; `utc_column`: a timestamp without time zone holding UTC.
void check_future_statuses(pqxx::nontransaction& tx, const std::string& table,
                           const std::string& checked_at, bool utc_column,
                           const PostgresConfig& config, const std::string& label,
                           std::vector<DoctorCheck>& checks) {
    std::string limit = format_timestamp(Clock::now() + config.max_clock_skew);
    std::string column = utc_column ? "(" + checked_at + " AT TIME ZONE 'UTC')" : checked_at;
    auto row = tx.exec_params("SELECT count(*), max(" + column + ") FROM " + table + " WHERE " +
                                  column + " > $1::timestamptz",
                              limit)[0];
    if (std::string(row[0].c_str()) == "0")
        return;
    checks.push_back({label, "future statuses", Status::fail,
                      std::string(row[0].c_str()) +
                          " stored statuses are dated in the future (the latest " + row[1].c_str() +
                          "), past the allowed skew: every real status of those models is "
                          "ignored as older until then",
                      "UPDATE " + table + " SET " + checked_at + " = " +
                          (utc_column ? "(now() AT TIME ZONE 'UTC')" : "now()") + " WHERE " +
                          column + " > '" + limit + "'; (then the next writes land)"});
}

/// TCP, TLS, the method, the login, the server's role and the schema at one address.
/// modelrepo's own tables: their schema version and row counts.
void check_schema(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                  std::vector<DoctorCheck>& checks) {
    bool has = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0].as<bool>();
    if (!has) {
        checks.push_back({label, "schema", Status::fail, "modelrepo's tables are missing",
                          "modelrepo --source URL migrate"});
        return;
    }
    auto row = tx.exec("SELECT (SELECT max(version) FROM schema_migrations), "
                       "(SELECT count(*) FROM models), (SELECT count(*) FROM providers), "
                       "(SELECT count(*) FROM model_status)")[0];
    checks.push_back(
        {label, "schema", Status::ok,
         "schema version " + std::string(row[0].c_str()) + "; " + row[1].c_str() + " models, " +
             row[2].c_str() + " providers, " + row[3].c_str() + " statuses",
         std::string(row[1].c_str()) == "0" ? "empty catalogue: modelrepo --source URL import FILE"
                                            : ""});
    check_future_statuses(tx, "model_status", "checked_at", false, config, label, checks);
}

/// A mapping (mapping=) against information_schema: every missing table or column, every
/// type that cannot be read, a missing unique index, each with its fix; then the feed.
void check_mapping(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                   std::vector<DoctorCheck>& checks) {
    auto loaded = detail::load_mapping(config.mapping);
    if (!loaded) {
        checks.push_back({label, "mapping", Status::fail, loaded.error().message,
                          "fix the mapping file (format modelrepo.mapping/1)"});
        return;
    }
    detail::Mapping mapping = std::move(loaded).value();
    auto rows = tx.exec_params(std::string(detail::mapping_facts_sql()), config.schema,
                               detail::mapped_tables_literal(mapping));
    std::vector<detail::ColumnFact> facts;
    for (const auto& r : rows)
        facts.push_back({r[0].c_str(), r[1].c_str(), r[2].c_str(), r[3].c_str(), r[4].as<bool>(),
                         r[5].as<bool>()});
    std::string shown = config.schema.empty() ? "" : detail::quote_identifier(config.schema) + ".";
    auto problems = detail::apply_facts(mapping, facts, shown);
    if (problems.empty())
        problems = detail::write_problems(mapping, shown);
    for (const auto& p : problems)
        checks.push_back({label, "mapping", Status::fail, p.what, p.fix});
    if (!problems.empty())
        return;
    checks.push_back({label, "mapping", Status::ok,
                      "the mapping '" + config.mapping + "' fits " + shown +
                          detail::quote_identifier(mapping.models.table) + ", " +
                          detail::quote_identifier(mapping.providers.table) + " and " +
                          detail::quote_identifier(mapping.statuses.table),
                      ""});
    bool has = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0].as<bool>();
    std::string version =
        has ? tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].c_str()
            : "0";
    auto count =
        tx.exec("SELECT (SELECT count(*) FROM " + shown +
                detail::quote_identifier(mapping.models.table) + "), (SELECT count(*) FROM " +
                shown + detail::quote_identifier(mapping.providers.table) + ")")[0];
    check_future_statuses(tx, shown + detail::quote_identifier(mapping.statuses.table),
                          detail::quote_identifier(mapping.statuses.checked_at.name),
                          mapping.statuses.checked_at.type == detail::ColumnType::timestamp, config,
                          label, checks);
    checks.push_back({label, "schema", version == "3" ? Status::ok : Status::fail,
                      std::string(count[0].c_str()) + " models, " + count[1].c_str() +
                          " providers in the mapped tables; " +
                          (version == "3" ? "the change feed is installed"
                                          : "the change feed is not installed (watch, cache=live "
                                            "and serve's /v1/changes need it)"),
                      version == "3" ? ""
                                     : "modelrepo --source URL migrate (adds only the "
                                       "feed's tables and triggers)"});
}

void check_address(Address& address, int port, const detail::HostParams& host,
                   const detail::SessionConfig& session, const PostgresConfig& config,
                   std::vector<DoctorCheck>& checks) {
    const auto& target = session.target;
    do {
        // Over TLS when the URL's sslmode would be: pg_hba.conf's hostssl and hostnossl
        // lines may give the two kinds of connection different methods.
        const detail::ProbeTls want_tls = probe_tls_for(host);
        auto probe =
            detail::probe_auth_method(address.ip, port, target.user, target.database, 3s, want_tls);
        address.tls = probe.tls;
        if (!probe.reached) {
            checks.push_back({address.label, "tcp", Status::fail, probe.message,
                              "start the server, or check listen_addresses and port"});
            break;
        }
        if (!probe.postgres) {
            checks.push_back({address.label, "tcp", Status::fail, probe.message,
                              "another program has this port: check the port in the URL"});
            break;
        }
        checks.push_back({address.label, "tcp", Status::ok, "a PostgreSQL server answers", ""});
        auto offered = probe.tls_offered ? probe.tls_offered : server_offers_tls(address, port);
        if (want_tls == detail::ProbeTls::require && offered == false) {
            checks.push_back({address.label, "tls", Status::fail,
                              "the server does not offer TLS, which the URL's sslmode requires",
                              "turn ssl on in postgresql.conf (a certificate and key) and reload, "
                              "or connect with sslmode=prefer"});
            break;
        }
        if (want_tls != detail::ProbeTls::off && offered == true && !probe.tls) {
            checks.push_back({address.label, "tls", Status::fail, probe.message,
                              "check the server's ssl_cert_file and ssl_key_file"});
            break;
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
            checks.push_back({address.label, "method", Status::fail,
                              "the server refused before authentication: [" + probe.sqlstate +
                                  "] " + probe.message,
                              probe.sqlstate == "28000"
                                  ? "add a pg_hba.conf line for this address and reload"
                                  : ""});

        std::string conninfo = conninfo_at(host, address.ip);
        try {
            pqxx::connection conn(conninfo);
            checks.push_back(
                {address.label, "auth", Status::ok,
                 "logged in as \"" + target.user + "\" to database \"" + target.database + "\"",
                 ""});
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
                break;
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
        } catch (const std::exception& e) {
            Error error = detail::connect_error(e.what(), session, host, 1500ms);
            checks.push_back({address.label, "auth", Status::fail,
                              std::string(to_string(*error.errc())) +
                                  (error.sqlstate.empty() ? "" : " [" + error.sqlstate + "]") +
                                  ": " + error.message,
                              ""});
        }
    } while (false);
}

Result<DoctorReport> run_checks(const std::string& url, const std::string& admin_url) {
    DoctorReport report;
    auto& checks = report.checks;
    check_url(url, checks);
    // The durable layer's parameters (cache=live, outbox=) are not the database's.
    std::string database_url = url;
    if (auto durable = DurableConfig::take_from(database_url); !durable)
        return std::move(durable).error();
    auto config = PostgresConfig::from_url(database_url);
    if (!config) {
        if (!config.error().is(Errc::invalid_argument))
            return config.error();
        checks.push_back({"url", "parse", Status::fail, config.error().message,
                          "fix the URL; libpq refuses it as it is"});
        return report;
    }
    auto session = detail::parse_session_config(config.value().conninfo).value();
    const auto& target = session.target;
    std::vector<Address> first_addresses;
    // Every host of the URL (a primary and its standbys), every address it resolves to.
    for (const detail::HostParams& h : session.hosts) {
        const std::string& host = h.host;
        const int port = h.port;
        std::string resolve_error;
        // libpq connects to hostaddr= when it is given (host= then names the server for
        // TLS and pg_hba): so does the doctor.
        std::string hostaddr;
        for (const auto& [key, value] : h.params)
            if (key == "hostaddr")
                hostaddr = value;
        auto addresses = resolve(hostaddr.empty() ? host : hostaddr, port, resolve_error);
        if (addresses.empty()) {
            checks.push_back({host, "resolve", Status::fail,
                              "'" + host + "' does not resolve: " + resolve_error,
                              "fix the host name in the URL"});
            continue;
        }
        checks.push_back({host, "resolve", Status::ok,
                          hostaddr.empty()
                              ? "'" + host + "' resolves to " + std::to_string(addresses.size()) +
                                    " address(es); pg_hba.conf may treat them differently"
                              : "'" + host + "' is reached at hostaddr " + hostaddr +
                                    " (not looked up, as libpq does)",
                          ""});
        for (Address& address : addresses)
            check_address(address, port, h, session, config.value(), checks);
        if (first_addresses.empty())
            first_addresses = addresses; // with whether each connection there is TLS
    }
    // Behind PgBouncer: the server itself, through direct_url (what the feed uses): its
    // addresses are the ones pg_hba.conf and the verifier are checked for.
    if (config.value().pgbouncer && !config.value().direct_url.empty()) {
        auto direct = PostgresConfig::from_url(config.value().direct_url);
        if (direct) {
            auto direct_session = detail::parse_session_config(direct.value().conninfo);
            if (direct_session) {
                direct.value().schema = config.value().schema;
                direct.value().mapping = config.value().mapping;
                direct.value().max_clock_skew = config.value().max_clock_skew;
                std::vector<Address> direct_addresses;
                for (const detail::HostParams& h : direct_session.value().hosts) {
                    std::string resolve_error;
                    auto found = resolve(h.host, h.port, resolve_error);
                    for (Address& address : found) {
                        address.label = "server " + address.label;
                        check_address(address, h.port, h, direct_session.value(), direct.value(),
                                      checks);
                    }
                    if (direct_addresses.empty())
                        direct_addresses = found;
                }
                if (!direct_addresses.empty())
                    first_addresses = direct_addresses;
            }
        }
    }
    const auto& addresses = first_addresses;

    if (admin_url.empty()) {
        checks.push_back({"server", "admin", Status::skipped,
                          "no --admin-url: verifier, pg_hba and reload checks skipped", ""});
        return report;
    }
    auto admin_config = PostgresConfig::from_url(admin_url);
    if (!admin_config)
        return admin_config.error();
    try {
        pqxx::connection admin(admin_config.value().conninfo);
        admin_checks(admin, target, addresses, checks);
    } catch (const std::exception& e) {
        checks.push_back({"server", "admin", Status::fail,
                          redact("the administrator connection failed: " + std::string(e.what())),
                          "pass a superuser URL (or run as a role with pg_read_server_files)"});
    }
    return report;
}

} // namespace

Result<DoctorReport> diagnose_postgres(const std::string& url, const std::string& admin_url) {
    auto report = run_checks(url, admin_url);
    if (report)
        for (auto& c : report.value().checks) {
            c.detail = redact(c.detail);
            c.fix = redact(c.fix);
        }
    return report;
}

} // namespace modelrepo
