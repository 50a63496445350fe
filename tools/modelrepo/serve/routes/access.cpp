// SPDX-License-Identifier: MIT
#include "access.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "answers.hpp"

namespace modelrepo::serve {

namespace {

/// Compares in time that depends on the expected token's length only.
bool same_token(std::string_view given, std::string_view expected) {
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
    }
    return diff == 0;
}

/// Whether any of `tokens` is `given`, looking at every one (no early exit).
bool any_token(const std::vector<std::string>& tokens, std::string_view given) {
    bool found = false;
    for (const std::string& t : tokens)
        found = same_token(given, t) | found;
    return found;
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() &&
           std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
               return a == std::tolower(static_cast<unsigned char>(b));
           });
}

/// RFC 4648 base64 (padding optional); nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view text) {
    std::string out;
    unsigned bits = 0;
    int count = 0;
    for (char c : text) {
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=')
            break;
        else
            return std::nullopt;
        bits = (bits << 6) | static_cast<unsigned>(v);
        if ((count += 6) >= 8) {
            count -= 8;
            out.push_back(static_cast<char>((bits >> count) & 0xff));
        }
    }
    return out;
}

/// The token an Authorization header carries: a Bearer token, or a Basic password (any
/// user name); nullopt without one.
std::optional<std::string> token_of(std::string_view auth) {
    if (starts_with_nocase(auth, "bearer "))
        return std::string(auth.substr(7));
    if (starts_with_nocase(auth, "basic ")) {
        auto pair = base64_decode(auth.substr(6));
        if (!pair)
            return std::nullopt;
        auto colon = pair->find(':');
        if (colon == std::string::npos)
            return std::nullopt;
        return pair->substr(colon + 1);
    }
    return std::nullopt;
}

/// The host of a Host header, without its port and brackets, lower case.
std::string host_name(std::string_view host) {
    std::string_view name = host;
    if (!name.empty() && name.front() == '[') {
        auto close = name.find(']');
        name = name.substr(1, close == std::string_view::npos ? name.size() - 1 : close - 1);
    } else if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
        name = name.substr(0, colon);
    }
    std::string out(name);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

/// "localhost", "*.localhost", "::1", or an IPv4 literal 127.a.b.c.
bool is_loopback_name(std::string_view name) {
    if (name == "localhost" || name.ends_with(".localhost") || name == "::1")
        return true;
    if (!name.starts_with("127."))
        return false;
    int dots = 0;
    for (char c : name) {
        if (c == '.')
            ++dots;
        else if (c < '0' || c > '9')
            return false;
    }
    return dots == 3;
}

Response unauthorized(std::string message) {
    Response answer = error_answer(401, "auth_failed", std::move(message));
    // One challenge a header: Chromium reads only the first challenge of a header, and
    // would find no scheme it knows in "Bearer …, Basic …" (no prompt for the page).
    answer.headers.emplace_back("WWW-Authenticate", "Basic realm=\"modelrepo\", charset=\"UTF-8\"");
    answer.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"modelrepo\"");
    return answer;
}

} // namespace

Access::Access(AccessOptions options)
    : options_(std::move(options)) {}

Access::Holder Access::holder(const Request& request) const {
    if (request.authorization.empty())
        return Holder::none;
    auto token = token_of(request.authorization);
    if (!token || token->empty())
        return Holder::wrong;
    // Both lists are looked at whatever the first says: the time does not tell which.
    bool write = any_token(options_.write_tokens, *token);
    bool read = any_token(options_.read_tokens, *token);
    return write ? Holder::write : read ? Holder::read : Holder::wrong;
}

std::optional<Response> Access::check_host(const Request& request) const {
    if (!options_.loopback || request.host.empty())
        return std::nullopt; // HTTP/1.0 without Host: no browser sends that
    std::string name = host_name(request.host);
    if (is_loopback_name(name) ||
        std::find(options_.allowed_hosts.begin(), options_.allowed_hosts.end(), name) !=
            options_.allowed_hosts.end())
        return std::nullopt;
    return error_answer(421, "misdirected_request",
                        "this server listens on loopback and answers only Host: localhost, "
                        "127.0.0.1 or [::1] (start it with --allow-host NAME to answer another)");
}

bool Access::is_public(const Route& route) const {
    switch (route.scope) {
    case Scope::none:
        return true;
    case Scope::read:
        return options_.read_tokens.empty() || options_.public_catalogue;
    case Scope::operate:
        return options_.read_tokens.empty() && !options_.discreet;
    case Scope::write:
        return false;
    }
    return false;
}

std::optional<Response> Access::admit(const Request& request, const Route& route) const {
    if (route.scope == Scope::write) {
        if (options_.write_tokens.empty())
            return error_answer(403, "read_only",
                                "this server takes no writes: start it with --token-file FILE");
        switch (holder(request)) {
        case Holder::write:
            return std::nullopt;
        case Holder::read:
            return error_answer(403, "forbidden",
                                "this token may read, not write: writes need a token of "
                                "--token-file");
        case Holder::wrong:
            return unauthorized("the token is not one of this server's");
        case Holder::none:
            return unauthorized("writes need 'Authorization: Bearer TOKEN'");
        }
    }
    if (is_public(route))
        return std::nullopt;
    switch (holder(request)) {
    case Holder::write:
    case Holder::read:
        return std::nullopt;
    case Holder::wrong:
        return unauthorized("the token is not one of this server's");
    case Holder::none:
        break;
    }
    if (options_.discreet && options_.read_tokens.empty() && options_.write_tokens.empty())
        return error_answer(403, "forbidden",
                            "this server listens on the network and its operator's routes (the "
                            "status page, /v1/status, /v1/events, /v1/diagnosis, /metrics) name "
                            "the database's host, role and pg_hba.conf: start it with "
                            "--read-token-file FILE, or with --expose-details to show them to "
                            "anyone");
    return unauthorized("this server needs a token: 'Authorization: Bearer TOKEN', or HTTP "
                        "Basic with the token as the password");
}

bool Access::discreet_for(const Request& request) const {
    if (!options_.discreet)
        return false;
    Holder h = holder(request);
    return h != Holder::read && h != Holder::write;
}

bool Access::origin_allowed(std::string_view origin) const {
    if (origin.empty())
        return false;
    for (const std::string& o : options_.cors_origins)
        if (o == "*" || o == origin)
            return true;
    return false;
}

std::optional<Response> Access::preflight(const Request& request, const std::string& allow) const {
    if (request.origin.empty() || request.cors_method.empty())
        return std::nullopt;
    if (!origin_allowed(request.origin)) {
        return error_answer(403, "forbidden",
                            "origin '" + request.origin +
                                "' may not call this server (--cors-origin)");
    }
    Response answer{204, "text/plain", {}, {}, {}, {}};
    answer.headers.emplace_back("Allow", allow);
    answer.headers.emplace_back("Access-Control-Allow-Methods", allow);
    answer.headers.emplace_back("Access-Control-Allow-Headers",
                                "Authorization, Content-Type, If-None-Match, Last-Event-ID");
    answer.headers.emplace_back("Access-Control-Max-Age", "600");
    return answer; // the origin's headers: add_cors(), as on every answer (once: a browser
                   // refuses two Access-Control-Allow-Origin values)
}

void Access::add_cors(const Request& request, Response& answer) const {
    if (options_.cors_origins.empty())
        return;
    answer.headers.emplace_back("Vary", "Origin");
    if (!origin_allowed(request.origin))
        return;
    answer.headers.emplace_back("Access-Control-Allow-Origin", request.origin);
    answer.headers.emplace_back("Access-Control-Expose-Headers", "ETag, Retry-After");
    if (!options_.read_tokens.empty() || !options_.write_tokens.empty())
        answer.headers.emplace_back("Access-Control-Allow-Credentials", "true");
}

std::vector<std::string> token_lines(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
            line.remove_suffix(1);
        while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
            line.remove_prefix(1);
        if (!line.empty() && line.front() != '#')
            out.emplace_back(line);
    }
    return out;
}

} // namespace modelrepo::serve
