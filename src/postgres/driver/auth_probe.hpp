// SPDX-License-Identifier: MIT
// Asks a PostgreSQL server which authentication method it wants, without a password:
// the first answer to a startup message names it (the protocol's AuthenticationRequest).
// Over TLS when asked, as libpq would connect: pg_hba.conf may give a TLS connection
// (hostssl) another method than a plain one (hostnossl).
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace modelrepo::detail {

/// Whether the probe asks for TLS first (the protocol's SSLRequest), as sslmode says.
enum class ProbeTls {
    off,     ///< sslmode=disable or allow: a plain startup
    prefer,  ///< sslmode=prefer (libpq's default): TLS when the server offers it
    require, ///< sslmode=require, verify-ca, verify-full: TLS or nothing
};

struct AuthProbe {
    bool reached = false;  ///< a server answered
    bool postgres = false; ///< …in PostgreSQL's protocol (else `message` quotes what it said)
    std::string address;   ///< the address connected to ("127.0.0.1:5432")
    std::string method;    ///< "scram-sha-256", "md5", "password", "trust", "gss", "sspi", "sasl"
    std::string sqlstate;  ///< when the server answered with an error instead
    std::string message;   ///< the server's error, or why the probe failed
    /// The server's answer to SSLRequest, when the probe asked (ProbeTls other than off).
    std::optional<bool> tls_offered;
    bool tls = false; ///< the startup message went over TLS
};

/// Connects to `host:port` (each resolved address in turn until one answers), sends a
/// startup message for `user`/`database` (over TLS as `tls` says) and reads the first
/// answer. The server's certificate is not verified: the probe sends no secret, only the
/// user and database names, and the login check that follows uses the URL's sslmode.
AuthProbe probe_auth_method(const std::string& host, int port, const std::string& user,
                            const std::string& database, std::chrono::milliseconds timeout,
                            ProbeTls tls = ProbeTls::off);

} // namespace modelrepo::detail
