// SPDX-License-Identifier: MIT
// The doctor's checks, by what they look at (for the files of doctor/ only): the network
// (network.cpp: addresses, TLS, the method the server asks for), one address's login and
// catalogue (address_checks.cpp, catalogue_checks.cpp), and the server's own view with an
// administrator's session (server_checks.cpp: verifier, pg_hba.conf, reload).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <sys/socket.h>

#include <modelrepo/postgres_config.hpp>
#include <modelrepo/postgres_doctor.hpp>

#include "../driver/auth_probe.hpp"
#include "../driver/session_config.hpp"
#include "../driver/target.hpp"

namespace modelrepo::detail::doctor {

using Status = DoctorCheck::Status;
using Checks = std::vector<DoctorCheck>;

struct Address {
    std::string ip;    ///< "127.0.0.1", "::1"
    std::string label; ///< "127.0.0.1:5432", "[::1]:5432"
    int family = AF_INET;
    bool tls = false; ///< the client's connection here is TLS (pg_hba: host or hostssl)
};

/// What the URL's sslmode (or PGSSLMODE, else libpq's "prefer") asks of the probe.
ProbeTls probe_tls_for(const HostParams& host);
/// Every address `host` resolves to, once each ("" and `error` set when none).
std::vector<Address> resolve(const std::string& host, int port, std::string& error);
/// Sends the protocol's SSLRequest: 'S' means the server offers TLS, 'N' that it does not.
std::optional<bool> server_offers_tls(const Address& address, int port);
/// A key=value conninfo for one host of the URL, at address `ip`.
std::string conninfo_at(const HostParams& host, const std::string& ip);

/// The URL itself: reserved characters in the password, Prisma's parameters.
void check_url(const std::string& url, Checks& checks);
/// TCP, TLS, the method, the login, the server's role and the catalogue at one address.
void check_address(Address& address, int port, const HostParams& host, const SessionConfig& session,
                   const PostgresConfig& config, Checks& checks);
/// modelrepo's own tables: their schema version and row counts, future statuses.
void check_schema(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                  Checks& checks);
/// Readiness for logical decoding, and every logical slot of the database with the WAL it
/// keeps (logical_checks.cpp).
/// Also which feed migrate installed (what feed=auto reads) and whether it can run.
void check_logical(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                   Checks& checks);
/// A mapping (mapping=) against information_schema, then the feed, future statuses.
void check_mapping(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                   Checks& checks);
/// With an administrator's session: password_encryption, the role's verifier, the first
/// pg_hba.conf line each address matches, and whether pg_hba.conf was edited but not
/// reloaded.
void admin_checks(pqxx::connection& admin, const PgTarget& target,
                  const std::vector<Address>& addresses, Checks& checks);

} // namespace modelrepo::detail::doctor
