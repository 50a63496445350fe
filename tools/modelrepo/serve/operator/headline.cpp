// SPDX-License-Identifier: MIT
#include "headline.hpp"

#include <ctime>

namespace modelrepo::serve {

namespace {

using ojson = nlohmann::ordered_json;

/// "11:08:16 UTC".
std::string clock_of(Timestamp t) {
    std::time_t s = Clock::to_time_t(t);
    std::tm utc{};
    gmtime_r(&s, &utc);
    char text[16];
    std::strftime(text, sizeof text, "%H:%M:%S", &utc);
    return std::string(text) + " UTC";
}

/// "14:46:37 UTC" within the last day, else "2026-11-23 09:00 UTC": a moment a person reads at
/// once.
std::string moment_of(Timestamp t) {
    if (Clock::now() - t < std::chrono::hours(23))
        return clock_of(t);
    std::time_t s = Clock::to_time_t(t);
    std::tm utc{};
    gmtime_r(&s, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &utc);
    return std::string(text) + " UTC";
}

/// The user and the host:port of "postgresql://user@host:port/db" ("" when not such).
std::pair<std::string, std::string> user_and_address(const std::string& source) {
    auto scheme = source.find("://");
    if (scheme == std::string::npos)
        return {};
    auto start = scheme + 3;
    auto at = source.find('@', start);
    auto slash = source.find('/', start);
    std::string user, address;
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        user = source.substr(start, at - start);
        start = at + 1;
    }
    address = source.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    return {user, address};
}

/// "The primary's login fails: the server rejects role app's password", by cause.
std::string what_failed(const std::string& who, const std::string& source,
                        const std::optional<Errc>& errc, const std::string& cause) {
    auto [user, address] = user_and_address(source);
    const std::string role = user.empty() ? "its role" : "role " + user;
    const std::string at = address.empty() ? "" : " at " + address;
    if (!errc)
        return who + " fails";
    switch (*errc) {
    case Errc::auth_failed:
        // The phrases of the connection error's message for 28P01 and 28000 (errors.cpp).
        if (cause.find("rejected the password") != std::string::npos)
            return who + "'s login fails: the server rejects " + role + "'s password";
        if (cause.find("no pg_hba.conf line matches") != std::string::npos)
            return who + "'s login is refused: no pg_hba.conf line lets " + role + " in";
        return who + "'s login is refused";
    case Errc::unreachable:
        return who + "'s server does not answer" + at;
    case Errc::timeout:
        return who + "'s server stopped answering in time" + at;
    case Errc::tls_failed:
        return "TLS with " + who + "'s server fails" + at;
    case Errc::database_missing:
        return who + "'s database does not exist" + at;
    case Errc::schema_missing:
        return who + "'s database lacks modelrepo's tables (or its change feed)";
    case Errc::too_many_connections:
        return who + "'s server has no free connection slots" + at;
    case Errc::http_status:
        return who + " answers with HTTP errors";
    default:
        return who + " fails (" + std::string(to_string(*errc)) + ")";
    }
}

std::string generic_fix(const std::optional<Errc>& errc, const std::string& cause,
                        const std::string& role) {
    if (!errc)
        return "";
    switch (*errc) {
    case Errc::auth_failed:
        if (cause.find("rejected the password") != std::string::npos)
            return "Put the role's current password in the source's URL, or set it back as a "
                   "superuser: ALTER ROLE \"" +
                   (role.empty() ? std::string("ROLE") : role) +
                   "\" PASSWORD '…'; (with password_encryption = 'scram-sha-256': an MD5 verifier "
                   "under a scram-sha-256 rule fails the same way; modelrepo doctor URL "
                   "--admin-url ADMIN_URL tells which).";
        if (cause.find("no pg_hba.conf line matches") != std::string::npos)
            return "Add a pg_hba.conf line for this address, user and database, then SELECT "
                   "pg_reload_conf(); from any superuser session.";
        return "Run modelrepo doctor URL --admin-url ADMIN_URL: it names the role's stored "
               "verifier, the pg_hba.conf line that matches and an edit never reloaded (SELECT "
               "pg_reload_conf(); applies one).";
    case Errc::unreachable:
        return "Start the server, or check the host, the port and listen_addresses.";
    case Errc::timeout:
        return "Check that the server runs and is not stopped or overloaded.";
    case Errc::tls_failed:
        return "Check the server's certificate and the URL's sslmode and sslrootcert.";
    case Errc::database_missing:
        return "Create the database, or fix its name in the URL.";
    case Errc::schema_missing:
        return "Run modelrepo --source URL migrate.";
    case Errc::too_many_connections:
        return "Raise max_connections, or lower connection_limit= in the sources' URLs.";
    default:
        return "";
    }
}

/// The doctor's fix for an outage since `since`: the first failed check that has one, of a
/// diagnosis made after it began.
std::string doctor_fix(const ojson& diagnosis, Timestamp since) {
    if (!diagnosis.is_object() || !diagnosis["failed"].is_array())
        return "";
    auto ran = parse_timestamp(diagnosis.value("ran_at", ""));
    if (!ran || *ran < since - std::chrono::seconds(1))
        return "";
    for (const auto& c : diagnosis["failed"])
        if (c.value("fix", "") != "")
            return c["fix"].get<std::string>();
    return "";
}

/// The first source whose own layers or breaker say it is down, after the first.
const SourceMetrics* backup_down(const FallbackMetrics& m) {
    for (std::size_t i = 1; i < m.sources.size(); ++i)
        if (m.sources[i].health.down() || m.sources[i].breaker == BreakerState::open)
            return &m.sources[i];
    return nullptr;
}

} // namespace

std::string meanwhile_of(const FallbackMetrics& m, std::size_t index) {
    if (m.serving >= m.sources.size())
        return "";
    const SourceMetrics& serving = m.sources[m.serving];
    std::string as_of =
        serving.data_as_of ? " (data as of " + moment_of(*serving.data_as_of) + ")" : "";
    if (m.serving == index)
        return serving.data_as_of ? "its last-known copy answers reads" + as_of
                                  : "it still answers reads";
    return serving.source + (m.serving > 0 ? ", a backup," : "") + " answers reads" + as_of;
}

Headline headline_of(const FallbackMetrics& m, const ojson& diagnosis, const ojson& future,
                     bool answering, Timestamp up_since) {
    Headline h;
    if (m.sources.empty())
        return h;
    const SourceMetrics& first = m.sources.front();
    h.source = first.source;
    const bool breaker = first.breaker != BreakerState::closed;
    if (first.health.down() || breaker || m.serving > 0 || !answering) {
        h.level = answering ? "major" : "critical";
        h.errc = first.health.down() ? first.health.errc : first.last_errc;
        h.detail = first.health.down() ? first.health.cause : first.last_error;
        h.since = first.health.down() ? std::optional<Timestamp>(first.health.since)
                                      : first.last_error_at;
        h.headline = what_failed("The primary", first.source, h.errc, h.detail);
        if (h.errc || h.since)
            h.headline += " (" + (h.errc ? std::string(to_string(*h.errc)) : std::string()) +
                          (h.errc && h.since ? ", " : "") +
                          (h.since ? "since " + clock_of(*h.since) : std::string()) + ")";
        if (!answering)
            h.headline = "No source can answer reads. " + h.headline;
        h.fix = doctor_fix(diagnosis, h.since.value_or(Timestamp{}));
        if (h.fix.empty())
            h.fix = generic_fix(h.errc, h.detail, user_and_address(first.source).first);
        h.meanwhile = answering ? meanwhile_of(m, 0) : "nothing answers reads";
        return h;
    }
    if (const SourceMetrics* backup = backup_down(m)) {
        h.level = "minor";
        h.source = backup->source;
        h.errc = backup->health.down() ? backup->health.errc : backup->last_errc;
        h.detail = backup->health.down() ? backup->health.cause : backup->last_error;
        h.headline = what_failed("The backup " + backup->source, backup->source, h.errc, h.detail) +
                     "; the primary serves";
        h.fix = generic_fix(h.errc, h.detail, user_and_address(backup->source).first);
        return h;
    }
    if (first.health.copy_stale) {
        h.level = "minor";
        h.headline = "The primary's last-known copy is past max_stale";
        h.fix = "Bring the database back in sync, or raise max_stale= if older answers are "
                "acceptable.";
        return h;
    }
    if (future.is_object()) {
        h.level = "minor";
        h.headline = std::to_string(future.value("count", 0)) +
                     " stored statuses are dated in the future: real statuses of those models "
                     "are ignored as older";
        h.detail = "the latest: " + future.value("latest", "");
        h.fix = future.value("fix", "");
        return h;
    }
    h.headline = "All sources are up";
    h.since = first.health.state == SourceHealth::State::up ? std::max(first.health.since, up_since)
                                                            : up_since;
    h.detail = "The primary has answered since " + clock_of(*h.since) + ".";
    return h;
}

ojson to_json(const Headline& h) {
    return {{"level", h.level},
            {"headline", h.headline},
            {"detail", h.detail.empty() ? ojson(nullptr) : ojson(h.detail)},
            {"fix", h.fix.empty() ? ojson(nullptr) : ojson(h.fix)},
            {"meanwhile", h.meanwhile.empty() ? ojson(nullptr) : ojson(h.meanwhile)},
            {"since", h.since ? ojson(format_timestamp(*h.since)) : ojson(nullptr)},
            {"errc", h.errc ? ojson(std::string(to_string(*h.errc))) : ojson(nullptr)},
            {"source", h.source}};
}

} // namespace modelrepo::serve
