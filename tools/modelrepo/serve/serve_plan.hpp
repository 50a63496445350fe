// SPDX-License-Identifier: MIT
// serve's settings (its command-line options) checked and resolved before any thread
// starts: the address to listen on, who may call what (routes/access.hpp), the limits; and
// what is read again at SIGHUP (token files, the admin URL, the alert header).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <modelrepo/error.hpp>

#include "routes/access.hpp"

namespace modelrepo::cli {

/// serve's options as given on the command line (serve_command.cpp declares them).
struct ServeSettings {
    std::string listen = "127.0.0.1:8080";
    std::string token_file;
    std::string read_token_file;
    std::string tls_cert;
    std::string tls_key;
    bool public_catalogue = false;
    /// On a listener that is not loopback, serve the operator's routes with no token and
    /// name sources by their addresses (`--expose-details`).
    bool expose_details = false;
    std::vector<std::string> allow_hosts;
    std::vector<std::string> cors_origins;
    bool log = false;
    std::string publish;
    std::string publish_interval = "5m";
    std::size_t max_connections = 0; ///< 0: from RLIMIT_NOFILE (connection_limit())
    std::size_t max_streams = 0;     ///< 0: min(10'000, max_connections / 2)
    std::size_t max_queued = 1'024;
    std::string request_timeout = "10s";
    std::string deadline = "30s";
    std::string admin_url_file; ///< the doctor's admin URL for the status page's diagnosis
    std::vector<std::string> alert_webhooks;
    std::vector<std::string> alertmanagers;
    std::string alert_header_file;
    std::string alert_interval = "60s";
    std::string alert_resolve_after = "3s";
    std::size_t alert_queue = 64;
};

/// serve's settings, checked and resolved before any thread starts.
struct ServePlan {
    std::pair<std::string, unsigned short> listen;
    serve::AccessOptions access;
    std::optional<std::chrono::milliseconds> publish_interval;
    std::chrono::milliseconds request_timeout{};
    std::chrono::milliseconds deadline{};
    std::size_t files = 0; ///< the open-file limit, raised as far as allowed
    std::size_t max_connections = 0;
    std::size_t max_streams = 0;
};

/// `settings` checked: a typed error naming the option at fault, or the plan.
Result<ServePlan> plan_serve(const ServeSettings& settings);

/// Who may call what: the token files, --public-catalogue, the Host names a loopback
/// listener answers, the CORS origins, whether the listener keeps details to token holders
/// (`host`: the address it listens on). Read at start and again at SIGHUP.
Result<serve::AccessOptions> access_of(const ServeSettings& settings, const std::string& host);

/// The first line of the file at `path`, surrounding whitespace trimmed: a secret (a token,
/// the admin URL, the alert header). `what` names the file in the error ("admin URL").
Result<std::string> read_token(const std::string& path, std::string_view what = "token");

/// The source URIs as serve opens them: on a listener that keeps details to token holders
/// (`discreet`), each source without a `name=` of its own is named by its kind and
/// position ("postgresql-1", "github-2"), so that nothing served names a host, role or
/// database. Otherwise as given.
std::vector<std::string> served_sources(std::vector<std::string> uris, bool discreet);

} // namespace modelrepo::cli
