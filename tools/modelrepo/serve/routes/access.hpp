// SPDX-License-Identifier: MIT
// Who may call what, and what a browser or a cache is told: the tokens and their scopes,
// the Host a loopback listener answers, CORS, and whether an answer may be stored by a
// shared cache. The Service asks it for every request before the route's handler runs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "route_table.hpp"

namespace modelrepo::serve {

struct AccessOptions {
    /// Tokens of the read scope (`--read-token-file`, one a line). Empty: reads and the
    /// operator's routes need no token.
    std::vector<std::string> read_tokens;
    /// Tokens of the write scope (`--token-file`, one a line); they read too. Empty: writes
    /// are refused (403 read_only).
    std::vector<std::string> write_tokens;
    /// Catalogue reads need no token even with read tokens (`--public-catalogue`); the
    /// operator's routes still do.
    bool public_catalogue = false;
    /// The listener is on a loopback address: only a Host naming loopback, or one of
    /// `allowed_hosts`, is answered (a DNS-rebinding page in a browser cannot read it).
    bool loopback = false;
    /// The listener is on the network and `--expose-details` was not given: the operator's
    /// routes need a token (403 when none is configured), and what a caller without one is
    /// answered carries no address, role, database name or error message (RouteCall's
    /// `discreet`). Sources are named by display names or positions (serve_plan.hpp).
    bool discreet = false;
    /// More Host names answered (`--allow-host`), without a port.
    std::vector<std::string> allowed_hosts;
    /// Origins a browser may call from (`--cors-origin`), exactly as the browser sends them
    /// ("https://app.example.com"); "*" for any (never with credentials, so only for a
    /// server whose reads need no token).
    std::vector<std::string> cors_origins;
};

/// Immutable once made: read from any thread.
class Access {
public:
    explicit Access(AccessOptions options);

    /// The refusal of `request` before any route: 421 for a Host a loopback listener does
    /// not answer; nullopt to go on.
    std::optional<Response> check_host(const Request& request) const;
    /// The refusal of `request` for `route`: 401 (no token, or not one of this server's,
    /// with WWW-Authenticate for Bearer and Basic), 403 (a read token writing; writes with
    /// no write token configured); nullopt when it may call it. Tokens are compared in
    /// time that does not depend on where they differ.
    std::optional<Response> admit(const Request& request, const Route& route) const;
    /// Whether an answer to `route` needs no token (a shared cache may store it).
    bool is_public(const Route& route) const;
    /// A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) for a path
    /// whose methods are `allow`: 204 with the preflight's headers for an allowed origin,
    /// 403 for another; nullopt when `request` is no preflight. The origin's own headers
    /// are add_cors()'s, which every answer goes through.
    std::optional<Response> preflight(const Request& request, const std::string& allow) const;
    /// Adds the CORS headers to an answer to an allowed origin (and `Vary: Origin` whenever
    /// origins are configured).
    void add_cors(const Request& request, Response& answer) const;
    /// Whether the answer to `request` must keep details to token holders: the listener is
    /// discreet and `request` holds no token of this server's.
    bool discreet_for(const Request& request) const;
    /// Whether any token is configured for reads.
    bool reads_need_token() const noexcept { return !options_.read_tokens.empty(); }

private:
    enum class Holder { none, wrong, read, write };
    Holder holder(const Request& request) const;
    bool origin_allowed(std::string_view origin) const;

    AccessOptions options_;
};

/// The tokens of a token file: one a line, surrounding whitespace trimmed, empty lines and
/// lines starting with '#' skipped.
std::vector<std::string> token_lines(std::string_view text);

} // namespace modelrepo::serve
