// SPDX-License-Identifier: MIT
// Limits applied to JSON text before it reaches the parser.
#pragma once

#include <modelrepo/error.hpp>

#include <string_view>

namespace modelrepo::detail {

/// Deepest nesting of arrays and objects accepted; a snapshot needs 3.
inline constexpr int max_json_depth = 64;

/// Rejects text nested deeper than `max_json_depth` with `Errc::bad_data`, so that
/// hostile input cannot exhaust the stack of a recursive consumer.
Result<void> check_json_depth(std::string_view text);

} // namespace modelrepo::detail
