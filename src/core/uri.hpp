// SPDX-License-Identifier: MIT
// A small URI splitter for the source URIs open() accepts (RFC 3986 shapes only).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <modelrepo/error.hpp>

namespace modelrepo::detail {

struct Uri {
    std::string scheme; ///< lower-cased, without ':'
    bool has_authority = false;
    std::string authority; ///< between "//" and the path, still percent-encoded
    std::string path;      ///< still percent-encoded
    /// Query parameters in order, percent-decoded ('+' stays '+').
    std::vector<std::pair<std::string, std::string>> query;

    /// The last value of query parameter `key`, if present.
    [[nodiscard]] std::optional<std::string> param(std::string_view key) const;
};

/// One `key=value` of a query string: decoded, and as written.
struct QueryParam {
    std::string key;
    std::string value;
    std::string_view raw; ///< the undecoded "key=value", a view into the input
};

/// Splits a query string (without '?') at '&' and decodes each pair; empty pairs are
/// skipped. nullopt when an escape is malformed.
std::optional<std::vector<QueryParam>> split_query(std::string_view query);

/// Splits `text`. Errors: `Errc::invalid_argument` (no scheme, bad percent-encoding),
/// the message names the URI (redacted).
Result<Uri> parse_uri(std::string_view text);

/// `text` for a message: the password of the userinfo, as `parse_uri` reads it, is
/// replaced by "***", then `redact()` runs over the rest. Every message that quotes
/// a URI uses this, so the parser and the redaction agree on what the password is.
std::string redact_url(std::string_view text);

/// A duration parameter: "90" (seconds), "90s", "500ms", "15m", "24h"; at most ten years
/// (larger values mean nothing here and would overflow a conversion: found by fuzz_uri).
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text);

/// Decodes %XX escapes; nullopt when an escape is malformed.
std::optional<std::string> percent_decode(std::string_view text);

/// Where the fragment of `url` starts (the index of its '#'), as libpq reads a URI: past the
/// userinfo, whose password may hold a '#'. npos when there is none. A database URL has no
/// fragment: libpq would read it as part of the database name.
std::size_t fragment_start(std::string_view url);

/// Where the query string of `url` starts (the index of its '?'), as libpq reads a URI:
/// the userinfo ends at the first '@' before any '/', so a '?' in a password is part of
/// the password. npos when there is no query.
std::size_t query_start(std::string_view url);

/// What is wrong with `name` as a source's display name (`name=` in its URI): nullopt when
/// it is 1 to 64 bytes with no control character and no "://" (a display name stands in
/// for an address; it must not look like one). The longest a display name may be.
inline constexpr std::size_t max_display_name = 64;
std::optional<std::string> display_name_problem(std::string_view name);

} // namespace modelrepo::detail
