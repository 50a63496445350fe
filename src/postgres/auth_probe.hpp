// SPDX-License-Identifier: MIT
// Asks a PostgreSQL server which authentication method it wants, without a password:
// the first answer to a startup message names it (the protocol's AuthenticationRequest).
#pragma once

#include <chrono>
#include <string>

namespace modelrepo::detail {

struct AuthProbe {
    bool reached = false;  ///< a server answered
    bool postgres = false; ///< …in PostgreSQL's protocol (else `message` quotes what it said)
    std::string address;   ///< the address connected to ("127.0.0.1:5432")
    std::string method;    ///< "scram-sha-256", "md5", "password", "trust", "gss", "sspi", "sasl"
    std::string sqlstate;  ///< when the server answered with an error instead
    std::string message;   ///< the server's error, or why the probe failed
};

/// Connects to `host:port` (each resolved address in turn until one answers), sends a
/// startup message for `user`/`database` and reads the first answer.
AuthProbe probe_auth_method(const std::string& host, int port, const std::string& user,
                            const std::string& database, std::chrono::milliseconds timeout);

} // namespace modelrepo::detail
