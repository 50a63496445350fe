// SPDX-License-Identifier: MIT
// SessionConfig: what every server session of one repository is opened with, read from
// the conninfo by libpq itself (PQconninfoParse), one parameter set per host.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <modelrepo/error.hpp>

#include "target.hpp"

namespace modelrepo::detail {

/// One server to try: libpq's parameters for that host alone (the others' host, hostaddr
/// and port taken out), so that each attempt has its own deadline and its own error.
struct HostParams {
    std::string label; ///< "127.0.0.1:5432", "[::1]:5432", "/run/postgresql:5432"
    std::string host;  ///< without brackets; empty for libpq's default
    int port = 5432;
    std::vector<std::pair<std::string, std::string>> params; ///< keyword, value
};

/// What kind of server a session must be on.
enum class SessionRole {
    any,            ///< as the URL says (its target_session_attrs)
    read_write,     ///< a primary
    standby,        ///< a standby within the lag bound
    prefer_standby, ///< a standby within the lag bound, else any server (second choice)
};

struct SessionConfig {
    /// Tried in order, as libpq tries the hosts of one URL.
    std::vector<HostParams> hosts;
    PgTarget target;    ///< for messages
    std::string source; ///< the repository's name()
    /// Tables live here; empty for the server's search_path.
    std::string schema;
    /// The server's statement_timeout, and what a cut-off call says it waited.
    std::chrono::milliseconds statement_timeout{5'000};
    /// Longest attempt on one host (libpq's connect_timeout).
    std::chrono::milliseconds connect_timeout{5'000};
    /// Server-side prepared statements (false under PgBouncer's transaction mode).
    bool prepared_statements = true;
    /// SET statement_timeout and search_path on each new session. False where a session
    /// is shared with other clients (PgBouncer's transaction mode).
    bool session_settings = true;
    SessionRole role = SessionRole::any;
    /// A standby further behind than this is not taken (zero: no bound).
    std::chrono::milliseconds max_replication_lag{0};
    /// The password as written and as decoded: masked in every message libpq makes.
    std::vector<std::string> secrets;
};

/// Reads `conninfo` (a postgresql:// URI or key=value words, modelrepo's own parameters
/// already taken out) with libpq's PQconninfoParse, then checks the values libpq would
/// only refuse when connecting (sslmode, target_session_attrs, ports, timeouts, ...).
/// Errors: `Errc::invalid_argument` naming the parameter; libpq's words are kept, with
/// the password masked.
Result<SessionConfig> parse_session_config(const std::string& conninfo);

/// `name` as a quoted SQL identifier (`app` -> `"app"`).
std::string quote_identifier(std::string_view name);

/// `text` as an SQL string literal (`it's` -> `'it''s'`).
std::string quote_literal(std::string_view text);

/// Replaces each of `secrets` in `text` with "***" (longest first).
std::string mask_secrets(std::string text, const std::vector<std::string>& secrets);

} // namespace modelrepo::detail
