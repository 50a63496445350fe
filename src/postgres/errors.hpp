// SPDX-License-Identifier: MIT
// Turns libpq/libpqxx failures into modelrepo Errors that say what failed and what to
// do. Nothing of libpqxx crosses this boundary.
#pragma once

#include <exception>
#include <string>

#include <modelrepo/error.hpp>

#include "target.hpp"

namespace modelrepo::detail {

/// A failed connect. `libpq_message` is libpq's text (which names host, address and
/// port); on an authentication failure the server is asked which method it wants, so
/// the message can say it.
Error connect_error(const std::string& libpq_message, const PgTarget& target,
                    const std::string& source);

/// A failed statement: `sqlstate` is the server's code when it sent one (empty for a
/// broken connection). `timed_out` is set when modelrepo's watchdog cut the call off.
Error query_error(const std::string& what, const std::string& sqlstate, bool broken, bool timed_out,
                  const PgTarget& target, const std::string& source,
                  std::chrono::milliseconds timeout);

} // namespace modelrepo::detail
