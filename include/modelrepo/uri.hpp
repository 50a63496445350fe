// SPDX-License-Identifier: MIT
/// @file
/// Query strings and percent-encoding, read by the rules modelrepo reads its source URIs
/// with: for programs that take such parameters themselves (`modelrepo serve` does).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modelrepo {

/// One decoded `key=value` of a query string.
struct QueryParam {
    std::string key;
    std::string value;
    bool operator==(const QueryParam&) const = default;
};

/// Splits a query string (without '?') at '&' and percent-decodes each key and value, in
/// order; empty pairs are skipped. With `plus_is_space`, '+' decodes as a space (HTML forms
/// and URLSearchParams encode spaces so); otherwise it stays '+'. nullopt when an escape is
/// malformed. Thread-safe (a pure function).
std::optional<std::vector<QueryParam>> parse_query(std::string_view query,
                                                   bool plus_is_space = false);

/// Decodes %XX escapes; nullopt when an escape is malformed.
std::optional<std::string> percent_decode(std::string_view text);

} // namespace modelrepo
