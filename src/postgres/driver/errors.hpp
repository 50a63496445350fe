// SPDX-License-Identifier: MIT
// Turns libpq/libpqxx failures into modelrepo Errors that say what failed and what to
// do. Nothing of libpqxx crosses this boundary.
#pragma once

#include <exception>
#include <string>

#include <modelrepo/error.hpp>

#include "session_config.hpp"

namespace modelrepo::detail {

/// A failed connect to `host`. `libpq_message` is libpq's text (which names host,
/// address and port); on an authentication failure the server is asked which method it
/// wants (for at most `probe_budget`), so the message can say it. The config's secrets
/// are masked in libpq's words.
Error connect_error(const std::string& libpq_message, const SessionConfig& config,
                    const HostParams& host, std::chrono::milliseconds probe_budget);

/// A connect to `host` that did not finish by its deadline.
Error connect_timeout_error(const SessionConfig& config, const HostParams& host,
                            std::chrono::milliseconds waited);

/// A failed statement: `sqlstate` is the server's code when it sent one (empty for a
/// broken connection). `timed_out` is set when modelrepo's watchdog cut the call off.
Error query_error(const std::string& what, const std::string& sqlstate, bool broken, bool timed_out,
                  const SessionConfig& config);

} // namespace modelrepo::detail
