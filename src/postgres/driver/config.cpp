// SPDX-License-Identifier: MIT
// PostgresConfig::from_url: DATABASE_URL as people have it, Prisma's included.
#include <cctype>
#include <charconv>
#include <vector>

#include <modelrepo/postgres_config.hpp>

#include "../../core/uri.hpp"
#include "session_config.hpp"

namespace modelrepo {

namespace {

Error invalid(std::string_view url, const std::string& what) {
    return make_error(Errc::invalid_argument,
                      "invalid PostgreSQL URL '" + detail::redact_url(url) + "': " + what);
}

/// A whole number from 0 to ten years in milliseconds, so that converting seconds or
/// milliseconds to the config's durations cannot overflow (found by fuzz_uri).
std::optional<long> parse_number(std::string_view text) {
    long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 0 ||
        value > 10L * 365 * 86'400'000)
        return std::nullopt;
    return value;
}

std::optional<bool> parse_bool(std::string_view text) {
    if (text == "true" || text == "1" || text == "yes" || text == "on")
        return true;
    if (text == "false" || text == "0" || text == "no" || text == "off")
        return false;
    return std::nullopt;
}

/// What of the URL's query goes to libpq as it is.
struct LibpqParams {
    std::vector<std::string> kept; ///< raw "key=value" pairs
    bool have_connect_timeout = false;
    bool have_application_name = false;
};

/// Takes `key` into `config` when it is one of the parameters that are durations (Prisma's
/// seconds, modelrepo's milliseconds and "90s"-like spans): true then, with `problem` set
/// when its value is wrong.
bool read_duration_param(PostgresConfig& config, std::string_view url, const std::string& key,
                         const std::string& value, std::optional<Error>& problem) {
    auto seconds = [&](std::chrono::milliseconds& out) {
        auto n = parse_number(value);
        if (!n)
            problem = invalid(url, key + " must be a whole number of seconds, got '" + value + "'");
        else if (*n > 10L * 365 * 86'400)
            problem = invalid(url, key + " is more than ten years");
        else
            out = std::chrono::seconds(*n);
        return true;
    };
    auto millis = [&](std::chrono::milliseconds& out) {
        auto n = parse_number(value);
        if (!n)
            problem =
                invalid(url, key + " must be a whole number of milliseconds, got '" + value + "'");
        else
            out = std::chrono::milliseconds(*n);
        return true;
    };
    auto span = [&](std::chrono::milliseconds& out, std::string_view like, bool zero_ok) {
        auto d = detail::parse_duration(value);
        if (!d || (!zero_ok && d->count() == 0))
            problem = invalid(url, key + " must be a duration like " + std::string(like) +
                                       ", got '" + value + "'");
        else
            out = *d;
        return true;
    };
    if (key == "pool_timeout")
        return seconds(config.acquire_timeout);
    if (key == "socket_timeout")
        return seconds(config.query_timeout);
    if (key == "acquire_timeout_ms")
        return millis(config.acquire_timeout);
    if (key == "query_timeout_ms")
        return millis(config.query_timeout);
    if (key == "max_lifetime_s")
        return seconds(config.max_lifetime);
    if (key == "feed_keepalive")
        return span(config.feed_keepalive, "90s, 15m or 24h", false);
    if (key == "poll_interval")
        return span(config.poll_interval, "5s or 1m", false);
    if (key == "max_clock_skew")
        return span(config.max_clock_skew, "5m or 90s", true);
    if (key == "max_replication_lag")
        return span(config.max_replication_lag, "500ms or 10s", true);
    return false;
}

/// Takes one query parameter into `config` (modelrepo's and Prisma's) or `libpq` (the rest).
std::optional<Error> read_param(PostgresConfig& config, std::string_view url,
                                const detail::QueryParam& param, LibpqParams& libpq) {
    const std::string& key = param.key;
    const std::string& value = param.value;
    std::string_view pair = param.raw;
    std::optional<Error> problem;
    if (read_duration_param(config, url, key, value, problem))
        return problem;
    if (key == "schema") {
        config.schema = value;
    } else if (key == "name") {
        if (auto problem = detail::display_name_problem(value))
            return invalid(url, *problem);
        config.name = value;
    } else if (key == "mapping") {
        if (value.empty() || value.find('\0') != std::string::npos)
            return invalid(url, "mapping must be the path of a modelrepo.mapping/1 JSON file "
                                "(percent-encoded)");
        config.mapping = value;
    } else if (key == "connection_limit") {
        auto n = parse_number(value);
        if (!n || *n < 1 || *n > 10'000)
            return invalid(url, "connection_limit must be 1..10000, got '" + value + "'");
        config.pool_size = static_cast<int>(*n);
    } else if (key == "pgbouncer") {
        auto b = parse_bool(value);
        if (!b)
            return invalid(url, "pgbouncer must be true or false, got '" + value + "'");
        config.prepared_statements = !*b;
        config.pgbouncer = *b;
    } else if (key == "cache_dir" || key == "max_stale" || key == "cache" || key == "outbox" ||
               key == "outbox_max") {
        return invalid(url, key + " belongs to the durable layer that modelrepo::open() puts "
                                  "around the backend: open the URL with open(), or wrap "
                                  "the repository with make_durable()");
    } else if (key == "read_target") {
        if (value == "any")
            config.read_target = ReadTarget::any;
        else if (value == "primary")
            config.read_target = ReadTarget::primary;
        else if (value == "prefer-standby")
            config.read_target = ReadTarget::prefer_standby;
        else if (value == "standby")
            config.read_target = ReadTarget::standby;
        else
            return invalid(url, "read_target must be any, primary, prefer-standby or standby, "
                                "got '" +
                                    value + "'");
    } else if (key == "feed") {
        if (value == "auto")
            config.feed = FeedKind::automatic;
        else if (value == "triggers")
            config.feed = FeedKind::triggers;
        else if (value == "logical")
            config.feed = FeedKind::logical;
        else if (value == "polling")
            config.feed = FeedKind::polling;
        else
            return invalid(url,
                           "feed must be auto, triggers, logical or polling, got '" + value + "'");
    } else if (key == "direct_url") {
        if (!value.starts_with("postgresql://") && !value.starts_with("postgres://") &&
            value.find('=') == std::string::npos)
            return invalid(url, "direct_url must be a percent-encoded postgresql:// URL");
        if (auto direct = PostgresConfig::from_url(value); !direct)
            return invalid(url, "direct_url: " + direct.error().message);
        config.direct_url = value;
    } else if (key == "statement_cache_size") {
        // Prisma's client-side cache; modelrepo prepares a fixed set. 0 disables
        // server-side prepared statements, as it does in Prisma.
        if (value == "0")
            config.prepared_statements = false;
    } else {
        if (key == "connect_timeout") {
            auto n = parse_number(value);
            if (!n)
                return invalid(url, "connect_timeout must be a whole number of seconds");
            libpq.have_connect_timeout = true;
            config.connect_timeout = std::chrono::seconds(std::max(2L, *n));
        }
        if (key == "application_name")
            libpq.have_application_name = true;
        libpq.kept.emplace_back(pair);
    }
    return std::nullopt;
}

/// A conninfo string's `name = value` taken out (the display name, libpq does not know
/// it): the name ("" when none) and the rest. Values as libpq reads them: bare up to
/// whitespace, or single-quoted with backslash escapes.
Result<std::pair<std::string, std::string>> take_conninfo_name(std::string_view text) {
    std::string name, rest;
    std::size_t i = 0;
    auto space = [&] {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
            ++i;
    };
    while (true) {
        space();
        if (i >= text.size())
            break;
        std::size_t start = i;
        while (i < text.size() && text[i] != '=' &&
               !std::isspace(static_cast<unsigned char>(text[i])))
            ++i;
        std::string_view key = text.substr(start, i - start);
        space();
        if (i >= text.size() || text[i] != '=')
            return std::pair{std::string(), std::string(text)}; // libpq says what is wrong
        ++i;
        space();
        std::string value;
        if (i < text.size() && text[i] == '\'') {
            for (++i; i < text.size() && text[i] != '\''; ++i) {
                if (text[i] == '\\' && i + 1 < text.size())
                    ++i;
                value += text[i];
            }
            if (i >= text.size())
                return std::pair{std::string(), std::string(text)};
            ++i;
        } else {
            while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])))
                value += text[i++];
        }
        if (key == "name") {
            if (auto problem = detail::display_name_problem(value))
                return invalid(text, *problem);
            name = std::move(value);
        } else {
            rest += (rest.empty() ? "" : " ") + std::string(text.substr(start, i - start));
        }
    }
    return std::pair{std::move(name), std::move(rest)};
}

} // namespace

Result<PostgresConfig> PostgresConfig::from_url(std::string_view url) {
    PostgresConfig config;
    if (url.empty())
        return invalid(url, "empty");

    bool is_uri = url.starts_with("postgresql://") || url.starts_with("postgres://");
    if (!is_uri) {
        if (url.find("://") != std::string_view::npos)
            return invalid(url, "expected postgresql:// or postgres://");
        // A key=value conninfo string goes to libpq as it is, but for modelrepo's `name`.
        auto named = take_conninfo_name(url);
        if (!named)
            return std::move(named).error();
        config.name = std::move(named.value().first);
        config.conninfo = std::move(named.value().second);
        if (config.conninfo.find("connect_timeout") == std::string::npos)
            config.conninfo += " connect_timeout=5";
        auto session = detail::parse_session_config(config.conninfo);
        if (!session)
            return std::move(session).error();
        config.connect_timeout =
            std::chrono::duration_cast<std::chrono::seconds>(session.value().connect_timeout);
        return config;
    }

    // Where the query string starts, as libpq reads the URI: the userinfo ends at the
    // first '@' before any '/', so a '?' or '#' in a password is part of the password.
    std::size_t after_scheme = url.find("://") + 3;
    std::size_t userinfo_end = url.find_first_of("@/", after_scheme);
    std::size_t rest = userinfo_end != std::string_view::npos && url[userinfo_end] == '@'
                           ? userinfo_end + 1
                           : after_scheme;
    std::size_t q = detail::query_start(url);
    std::string_view base = url.substr(0, q);
    std::string_view query = q == std::string_view::npos ? std::string_view() : url.substr(q + 1);
    // A fragment: libpq would read it as part of the database name (and show it in errors
    // and names). Refused, shown masked.
    if (detail::fragment_start(url) != std::string_view::npos)
        return invalid(url, "a fragment ('#…') is not part of a database URL (libpq would read "
                            "it as part of the database name); percent-encode a '#' that "
                            "belongs to a value as %23");
    // An '@' past that point: libpq would read a password with an unencoded '/' or '@'
    // as host, port and database (and print it in its error). Say so without it.
    if (base.find('@', rest) != std::string_view::npos)
        return invalid(url, "an '@' after the host part: the user or password holds an "
                            "unencoded '/' or '@'; percent-encode them ('/' as %2F, '@' as "
                            "%40, ':' as %3A)");

    LibpqParams libpq;
    auto params = detail::split_query(query);
    if (!params)
        return invalid(url, "malformed %-escape in the query string");
    for (const detail::QueryParam& param : *params)
        if (auto problem = read_param(config, url, param, libpq))
            return *problem;
    if (config.query_timeout.count() == 0)
        config.query_timeout = std::chrono::milliseconds(5'000);
    std::vector<std::string>& kept = libpq.kept;
    if (!libpq.have_connect_timeout)
        kept.emplace_back("connect_timeout=" + std::to_string(config.connect_timeout.count()));
    if (!libpq.have_application_name)
        kept.emplace_back("application_name=modelrepo");

    if (config.schema.find('\0') != std::string::npos)
        return invalid(url, "schema holds a NUL byte (%00)");

    config.conninfo = std::string(base);
    for (std::size_t i = 0; i < kept.size(); ++i)
        config.conninfo += (i == 0 ? "?" : "&") + kept[i];
    // libpq is the judge of its own parameters: a typo or a value it would refuse is a
    // configuration error now, not an outage at the first call.
    if (auto session = detail::parse_session_config(config.conninfo); !session)
        return std::move(session).error();
    return config;
}

std::string_view to_string(FeedKind k) noexcept {
    switch (k) {
    case FeedKind::automatic:
        return "auto";
    case FeedKind::triggers:
        return "triggers";
    case FeedKind::logical:
        return "logical";
    case FeedKind::polling:
        break;
    }
    return "polling";
}

std::string_view to_string(ReadTarget t) noexcept {
    switch (t) {
    case ReadTarget::any:
        return "any";
    case ReadTarget::primary:
        return "primary";
    case ReadTarget::prefer_standby:
        return "prefer-standby";
    case ReadTarget::standby:
        break;
    }
    return "standby";
}

} // namespace modelrepo
