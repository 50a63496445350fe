// SPDX-License-Identifier: MIT
// PgBouncerServer: Debian's real pgbouncer in front of a PgServer, for tests: transaction
// pooling, SCRAM for clients, a free loopback port, run as the server's user.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "pg_server.hpp"

namespace modelrepo::test {

class PgBouncerServer {
public:
    /// `users`: the logins it accepts (and uses towards the server), name and password.
    PgBouncerServer(const PgServer& server, std::vector<std::pair<std::string, std::string>> users,
                    const std::string& pool_mode = "transaction");
    ~PgBouncerServer();
    PgBouncerServer(const PgBouncerServer&) = delete;
    PgBouncerServer& operator=(const PgBouncerServer&) = delete;

    bool available() const { return pid_ > 0; }
    const std::string& why() const { return why_; }
    int port() const { return port_; }
    /// The last `bytes` of pgbouncer's log (for a failing test's message).
    std::string log_tail(std::size_t bytes = 3000) const;
    /// A URL for `user`/`password` through pgbouncer, database `db`.
    std::string url(const std::string& user, const std::string& password,
                    const std::string& db = "modelrepo", const std::string& query = "") const;

private:
    std::filesystem::path dir_;
    int port_ = 0;
    int pid_ = -1;
    std::string why_;
};

/// Skips (exit 77) without pgbouncer, or fails under CI=true.
void require_pgbouncer(const PgBouncerServer& bouncer);

} // namespace modelrepo::test
