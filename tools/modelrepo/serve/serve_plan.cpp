// SPDX-License-Identifier: MIT
#include "serve_plan.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <sys/resource.h>

#include <modelrepo/uri.hpp>

#include "../commands/command.hpp"
#include "publisher.hpp"
#include "routes/answers.hpp"

namespace modelrepo::cli {

namespace {

/// Raises the soft limit on open files to the hard one (systemd's default soft limit is
/// 1,024) and returns the soft limit now in force.
std::size_t raise_file_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return 1'024;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    return limit.rlim_cur == RLIM_INFINITY ? 1'000'000 : static_cast<std::size_t>(limit.rlim_cur);
}

/// The default --max-connections: the file limit less a reserve for the pool, the copy,
/// the outbox and the connections over the limit being answered 503.
std::size_t connection_limit(std::size_t files) {
    std::size_t reserve = std::max<std::size_t>(128, files / 8);
    return std::clamp<std::size_t>(files > reserve ? files - reserve : 0, 16, 100'000);
}

/// "HOST:PORT", "[V6]:PORT" or ":PORT" (loopback).
Result<std::pair<std::string, std::uint16_t>> parse_listen(const std::string& text) {
    auto colon = text.rfind(':');
    auto bad = [&] {
        return make_error(Errc::invalid_argument, "--listen takes HOST:PORT (127.0.0.1:8080, "
                                                  "[::1]:8080, 0.0.0.0:8080), not '" +
                                                      text + "'");
    };
    if (colon == std::string::npos)
        return bad();
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty())
        host = "127.0.0.1";
    if (host == "localhost")
        host = "127.0.0.1";
    std::string port_text = text.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
        return bad();
    return std::pair{host, static_cast<std::uint16_t>(port)};
}

/// A duration option that must be more than zero ("10s", "500ms").
Result<std::chrono::milliseconds> positive_duration(std::string_view option,
                                                    const std::string& text) {
    auto d = serve::parse_duration(text);
    if (!d || d->count() == 0)
        return make_error(Errc::invalid_argument, std::string(option) +
                                                      " takes a duration like 10s or 500ms, not '" +
                                                      text + "'");
    return *d;
}

/// The tokens of a token file (one a line; `what`: "--token-file"), at least one.
Result<std::vector<std::string>> read_tokens(const std::string& path, std::string_view what) {
    auto text = read_input(path);
    if (!text)
        return std::move(text).error();
    auto tokens = serve::token_lines(text.value());
    if (tokens.empty())
        return make_error(Errc::invalid_argument, std::string(what) + " '" + path +
                                                      "' holds no token: put one on each line");
    return tokens;
}

/// Where `uri` goes on past its userinfo (whose password may hold a '?' or a '#').
std::size_t past_userinfo(std::string_view uri) {
    std::size_t scheme = uri.find("://");
    std::size_t from = scheme == std::string_view::npos ? 0 : scheme + 3;
    std::size_t end = uri.find_first_of("@/", from);
    return end != std::string_view::npos && uri[end] == '@' ? end + 1 : from;
}

/// Where the query of `uri` starts (its '?'), past a userinfo whose password may hold one;
/// npos when it has none.
std::size_t query_at(std::string_view uri) {
    return uri.find('?', past_userinfo(uri));
}

/// libpq's key=value form ("host=db user=app"): an '=' before any ':' and no "://".
bool is_conninfo(std::string_view uri) {
    std::size_t colon = uri.find(':');
    std::size_t eq = uri.find('=');
    return uri.find("://") == std::string_view::npos && eq != std::string_view::npos &&
           (colon == std::string_view::npos || eq < colon);
}

/// Whether `uri` names itself (`name=` in its query, or a `name` word of a conninfo).
bool names_itself(std::string_view uri) {
    if (is_conninfo(uri)) {
        // libpq's key=value form: a word that starts with "name".
        for (std::size_t at = uri.find("name"); at != std::string_view::npos;
             at = uri.find("name", at + 1)) {
            bool word = at == 0 || std::isspace(static_cast<unsigned char>(uri[at - 1]));
            std::size_t after = uri.find_first_not_of(' ', at + 4);
            if (word && after != std::string_view::npos && uri[after] == '=')
                return true;
        }
        return false;
    }
    auto q = query_at(uri);
    if (q == std::string_view::npos)
        return false;
    std::string_view query = uri.substr(q + 1);
    query = query.substr(0, query.find('#'));
    return query.starts_with("name=") || query.find("&name=") != std::string_view::npos;
}

} // namespace

/// The token is the file's first line, without surrounding whitespace (`what` names the
/// file in the error: "token", "admin URL").
Result<std::string> read_token(const std::string& path, std::string_view what) {
    auto text = read_input(path);
    if (!text)
        return std::move(text).error();
    std::string token = text.value().substr(0, text.value().find('\n'));
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
        token.pop_back();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front())))
        token.erase(token.begin());
    if (token.empty())
        return make_error(Errc::invalid_argument, "the " + std::string(what) + " file '" + path +
                                                      "' is empty: put the " + std::string(what) +
                                                      " on its first line");
    return token;
}

/// Who may call what: the token files, --public-catalogue, the Host names a loopback
/// listener answers, the CORS origins.
Result<serve::AccessOptions> access_of(const ServeSettings& settings, const std::string& host) {
    serve::AccessOptions access;
    if (!settings.token_file.empty()) {
        auto tokens = read_tokens(settings.token_file, "--token-file");
        if (!tokens)
            return tokens.error();
        access.write_tokens = std::move(tokens).value();
    }
    if (!settings.read_token_file.empty()) {
        auto tokens = read_tokens(settings.read_token_file, "--read-token-file");
        if (!tokens)
            return tokens.error();
        access.read_tokens = std::move(tokens).value();
    }
    if (settings.public_catalogue && access.read_tokens.empty())
        return make_error(Errc::invalid_argument,
                          "--public-catalogue lifts --read-token-file for catalogue reads: "
                          "without a read-token file every read is public already");
    access.public_catalogue = settings.public_catalogue;
    access.loopback = host.starts_with("127.") || host == "::1";
    access.discreet = !access.loopback && !settings.expose_details;
    for (const std::string& name : settings.allow_hosts) {
        std::string lower = name;
        for (char& c : lower)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        access.allowed_hosts.push_back(lower);
    }
    for (const std::string& origin : settings.cors_origins) {
        if (origin == "*" && !access.read_tokens.empty() && !access.public_catalogue)
            return make_error(Errc::invalid_argument,
                              "--cors-origin '*' with --read-token-file: a browser sends no "
                              "token to any origin; name the origins");
        if (origin != "*" && !origin.starts_with("http://") && !origin.starts_with("https://"))
            return make_error(Errc::invalid_argument,
                              "--cors-origin takes an origin as a browser sends it "
                              "(https://app.example.com, no path), not '" +
                                  origin + "'");
        access.cors_origins.push_back(origin);
    }
    return access;
}

Result<ServePlan> plan_serve(const ServeSettings& settings) {
    ServePlan plan;
    auto listen = parse_listen(settings.listen);
    if (!listen)
        return listen.error();
    plan.listen = std::move(listen).value();
    auto access = access_of(settings, plan.listen.first);
    if (!access)
        return access.error();
    plan.access = std::move(access).value();
    if (!settings.publish.empty()) {
        plan.publish_interval = serve::parse_duration(settings.publish_interval);
        if (!plan.publish_interval)
            return make_error(Errc::invalid_argument,
                              "--publish-interval takes a duration like 30s, 5m or 1h, not '" +
                                  settings.publish_interval + "'");
    }
    auto request_timeout = positive_duration("--request-timeout", settings.request_timeout);
    if (!request_timeout)
        return request_timeout.error();
    plan.request_timeout = request_timeout.value();
    auto deadline = positive_duration("--deadline", settings.deadline);
    if (!deadline)
        return deadline.error();
    plan.deadline = deadline.value();
    plan.files = raise_file_limit();
    plan.max_connections =
        settings.max_connections ? settings.max_connections : connection_limit(plan.files);
    plan.max_streams = settings.max_streams
                           ? settings.max_streams
                           : std::clamp<std::size_t>(plan.max_connections / 2, 1, 10'000);
    return plan;
}

std::vector<std::string> served_sources(std::vector<std::string> uris, bool discreet) {
    if (!discreet)
        return uris;
    for (std::size_t i = 0; i < uris.size(); ++i) {
        std::string& uri = uris[i];
        if (names_itself(uri))
            continue;
        const bool conninfo = is_conninfo(uri);
        std::string kind = conninfo ? "postgresql" : uri.substr(0, uri.find(':'));
        for (char& c : kind)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (kind == "postgres")
            kind = "postgresql";
        std::string name = kind + "-" + std::to_string(i + 1);
        if (kind == "builtin")
            continue; // "builtin" names no place
        if (conninfo) {
            uri += " name=" + name;
            continue;
        }
        std::size_t q = query_at(uri);
        std::size_t hash = uri.find('#', q == std::string::npos ? past_userinfo(uri) : q);
        std::string fragment = hash == std::string::npos ? "" : uri.substr(hash);
        if (hash != std::string::npos)
            uri.resize(hash);
        uri += (q == std::string::npos ? "?name=" : "&name=") + name + fragment;
    }
    return uris;
}

} // namespace modelrepo::cli
