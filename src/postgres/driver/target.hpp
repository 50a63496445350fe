// SPDX-License-Identifier: MIT
// What a PostgreSQL URL points at, for messages, name() and the doctor. No password.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace modelrepo::detail {

struct PgTarget {
    std::string user;
    std::string database;
    std::vector<std::pair<std::string, int>> hosts; ///< host (without brackets), port
    bool password_given = false;

    /// "postgresql://user@host:port,host2:port/db"
    std::string display() const;
    /// "host:port" of every host, comma-separated ("[::1]:5432" for IPv6).
    std::string host_list() const;
};

/// "host:port", with brackets around an IPv6 address ("[::1]:5432").
std::string host_port(const std::string& host, int port);

/// Reads user, hosts, ports and database from a postgresql:// URI or a conninfo string,
/// as libpq reads them (PQconninfoParse); missing parts take libpq's defaults
/// (PGUSER/USER, PGHOST/localhost, PGPORT/5432). A string libpq cannot parse gives
/// the defaults.
PgTarget parse_pg_target(const std::string& conninfo);

} // namespace modelrepo::detail
