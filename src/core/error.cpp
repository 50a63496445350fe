// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cctype>

#include <modelrepo/error.hpp>

namespace modelrepo {

namespace {

/// Each Errc's name, its category message, and how every part of modelrepo treats it:
/// the one classification the backends, the circuit breaker, the chain and serve read
/// (through `classify()`).
struct ErrcInfo {
    Errc code;
    std::string_view name;
    std::string_view description;
    ErrorClass kind;
};

// Columns of ErrorClass: outage, caller_fault, trips_breaker, answer, retryable,
// http_status, source_down.
constexpr bool O = true, o = false; // outage
constexpr bool C = true, c = false; // the caller's fault
constexpr bool B = true, b = false; // counts against a breaker
constexpr bool A = true, a = false; // an answer, not a failure of the source
constexpr bool R = true, r = false; // the same call may succeed later
constexpr bool D = true, d = false; // the source's origin is down (a health report)

constexpr std::array errc_table{
    ErrcInfo{Errc::auth_failed, "auth_failed", "authentication failed", {O, c, B, a, R, 503, D}},
    ErrcInfo{Errc::unreachable, "unreachable", "server unreachable", {O, c, B, a, R, 503, D}},
    ErrcInfo{Errc::timeout, "timeout", "deadline passed", {O, c, B, a, R, 504, D}},
    ErrcInfo{Errc::tls_failed, "tls_failed", "TLS failed", {O, c, B, a, R, 503, D}},
    ErrcInfo{Errc::database_missing,
             "database_missing",
             "database does not exist",
             {o, c, B, a, r, 503, D}},
    ErrcInfo{Errc::schema_missing,
             "schema_missing",
             "schema missing (run modelrepo migrate)",
             {o, c, B, a, r, 503, D}},
    ErrcInfo{Errc::pool_exhausted,
             "pool_exhausted",
             "no pooled connection available in time",
             {O, c, B, a, R, 503, d}},
    ErrcInfo{Errc::circuit_open, "circuit_open", "circuit breaker open", {O, c, b, a, R, 503, d}},
    ErrcInfo{Errc::all_sources_failed,
             "all_sources_failed",
             "every source failed",
             {O, c, b, a, R, 503, d}},
    ErrcInfo{Errc::bad_data, "bad_data", "malformed or invalid data", {o, C, B, a, r, 400, d}},
    ErrcInfo{Errc::http_status, "http_status", "unexpected HTTP status", {o, c, B, a, R, 503, D}},
    ErrcInfo{Errc::rate_limited, "rate_limited", "rate limited", {o, c, B, a, R, 503, d}},
    ErrcInfo{Errc::read_only, "read_only", "source is read-only", {O, C, b, a, r, 403, d}},
    ErrcInfo{Errc::query_failed, "query_failed", "query failed", {o, c, B, a, r, 500, d}},
    ErrcInfo{
        Errc::invalid_argument, "invalid_argument", "invalid argument", {o, C, b, A, r, 400, d}},
    ErrcInfo{Errc::not_found, "not_found", "not found", {o, C, b, A, r, 404, d}},
    ErrcInfo{Errc::too_many_connections,
             "too_many_connections",
             "server has too many connections",
             {O, c, B, a, R, 503, D}},
    ErrcInfo{Errc::io_error, "io_error", "file I/O failed", {o, c, B, a, r, 503, d}},
    ErrcInfo{Errc::not_supported,
             "not_supported",
             "not supported by this build",
             {o, C, b, a, r, 501, d}},
    ErrcInfo{Errc::outbox_full, "outbox_full", "the outbox is full", {o, c, b, a, R, 503, d}},
    ErrcInfo{Errc::disk_full, "disk_full", "the disk is full", {o, c, b, a, R, 503, d}},
};

const ErrcInfo* find_info(int value) noexcept {
    for (const auto& info : errc_table)
        if (static_cast<int>(info.code) == value)
            return &info;
    return nullptr;
}

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "modelrepo"; }
    std::string message(int value) const override {
        const ErrcInfo* info = find_info(value);
        return info ? std::string(info->description) : "unknown modelrepo error";
    }
};

bool iequals_prefix(std::string_view text, std::size_t at, std::string_view word) noexcept {
    if (text.size() - at < word.size())
        return false;
    for (std::size_t i = 0; i < word.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(text[at + i])) != word[i])
            return false;
    return true;
}

bool is_token_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

bool ends_value(char c) noexcept {
    return std::isspace(static_cast<unsigned char>(c)) || c == '&' || c == ';' || c == ',' ||
           c == '"' || c == ')' || c == '\'';
}

constexpr std::string_view mask = "***";

// Without an '@' a "user:secret" has no userinfo to hide in, so it reads as host:port
// (a mistyped '@'). Real ports are digits: any other "port" of a host item is masked.
std::string mask_nonnumeric_ports(std::string_view rest) {
    std::size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string out;
    std::size_t start = 0;
    while (start <= authority.size()) {
        std::size_t comma = authority.find(',', start);
        std::string_view item = authority.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        // "user@host:port": only the host part has a port; "[::1]:5432" and
        // "[fe80::1%25eth0]:5432" have theirs after the bracket.
        std::size_t at = item.rfind('@');
        std::size_t host = at == std::string_view::npos ? 0 : at + 1;
        std::size_t colon = std::string_view::npos;
        if (host < item.size() && item[host] == '[') {
            std::size_t close = item.find(']', host);
            if (close != std::string_view::npos && close + 1 < item.size() &&
                item[close + 1] == ':')
                colon = close + 1;
        } else {
            colon = item.find(':', host);
        }
        if (colon != std::string_view::npos) {
            std::string_view port = item.substr(colon + 1);
            bool digits = !port.empty();
            for (char c : port)
                digits = digits && c >= '0' && c <= '9';
            if (!digits) {
                out.append(item.substr(0, colon + 1));
                out.append(mask);
            } else {
                out.append(item);
            }
        } else {
            out.append(item);
        }
        if (comma == std::string_view::npos)
            break;
        out.push_back(',');
        start = comma + 1;
    }
    if (end != std::string_view::npos)
        out.append(rest.substr(end));
    return out;
}

// URL userinfo: "scheme://user:secret@host" -> "scheme://user:***@host". The userinfo
// ends at the last '@' before the next blank, so a password with an unencoded '@' or
// '/' is still hidden (over-redaction is the safe side).
std::string redact_userinfo(std::string_view text) {
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t scheme_end = text.find("://", pos);
        if (scheme_end == std::string_view::npos)
            break;
        std::size_t start = scheme_end + 3;
        // The userinfo is found as a URL parser finds it: in the whole word (to
        // whitespace; a quote is an ordinary character there, "u:'secret@host"), from
        // its first ':' to its last '@'. That covers the parser's password or more.
        std::size_t end = start;
        while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end])))
            ++end;
        std::string_view rest = text.substr(start, end - start);
        std::size_t at = rest.rfind('@');
        std::size_t colon = at == std::string_view::npos ? at : rest.substr(0, at).find(':');
        if (colon == std::string_view::npos) {
            // No userinfo: a URL quoted in prose ends at the quote.
            std::size_t quote = rest.find_first_of("\"'");
            if (quote != std::string_view::npos) {
                rest = rest.substr(0, quote);
                end = start + quote;
            }
        }
        out.append(text.substr(pos, start - pos));
        if (colon != std::string_view::npos) {
            out.append(rest.substr(0, colon + 1));
            out.append(mask);
            out.append(rest.substr(at));
        } else {
            out.append(mask_nonnumeric_ports(rest));
        }
        pos = end;
    }
    out.append(text.substr(pos));
    return out;
}

// "password=secret", "token: secret", "Bearer secret", "ghp_…": the value is masked.
std::string redact_values(std::string_view text) {
    static constexpr std::array keys{std::string_view("password"), std::string_view("passwd"),
                                     std::string_view("pwd"),      std::string_view("token"),
                                     std::string_view("secret"),   std::string_view("apikey"),
                                     std::string_view("api_key")};
    static constexpr std::array schemes{std::string_view("bearer ")};
    static constexpr std::array token_prefixes{
        std::string_view("ghp_"), std::string_view("gho_"), std::string_view("ghu_"),
        std::string_view("ghs_"), std::string_view("ghr_"), std::string_view("github_pat_")};

    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    auto skip_value = [&](std::size_t from) {
        std::size_t j = from;
        if (j < text.size() && (text[j] == '\'' || text[j] == '"')) {
            char quote = text[j];
            std::size_t close = text.find(quote, j + 1);
            return close == std::string_view::npos ? text.size() : close + 1;
        }
        while (j < text.size() && !ends_value(text[j]))
            ++j;
        return j;
    };
    while (i < text.size()) {
        bool word_start = i == 0 || !is_token_char(text[i - 1]);
        bool done = false;
        if (word_start) {
            for (auto key : keys) {
                if (!iequals_prefix(text, i, key))
                    continue;
                std::size_t j = i + key.size();
                // "password=x", "password = x", and the quoted shapes "\"token\": \"x\"" or
                // "password: 'x'". An unquoted "password: it is wrong" is prose, left alone.
                std::size_t k = j;
                bool quoted_key = k < text.size() && text[k] == '"';
                if (quoted_key)
                    ++k;
                while (k < text.size() && text[k] == ' ')
                    ++k;
                if (k >= text.size() || (text[k] != '=' && text[k] != ':'))
                    continue;
                bool colon = text[k] == ':';
                ++k;
                while (k < text.size() && text[k] == ' ')
                    ++k;
                if (colon && !quoted_key &&
                    (k >= text.size() || (text[k] != '"' && text[k] != '\'')))
                    continue;
                std::size_t value_end = skip_value(k);
                if (value_end == k)
                    continue;
                out.append(text.substr(i, k - i));
                out.append(mask);
                i = value_end;
                done = true;
                break;
            }
            if (!done) {
                for (auto scheme : schemes) {
                    if (!iequals_prefix(text, i, scheme))
                        continue;
                    std::size_t k = i + scheme.size();
                    std::size_t value_end = skip_value(k);
                    // "bearer token" in prose is short; a credential is 8+ characters.
                    if (value_end - k < 8)
                        continue;
                    out.append(text.substr(i, k - i));
                    out.append(mask);
                    i = value_end;
                    done = true;
                    break;
                }
            }
            if (!done) {
                for (auto prefix : token_prefixes) {
                    if (text.compare(i, prefix.size(), prefix) != 0)
                        continue;
                    std::size_t k = i + prefix.size();
                    while (k < text.size() && is_token_char(text[k]))
                        ++k;
                    out.append(mask);
                    i = k;
                    done = true;
                    break;
                }
            }
        }
        if (!done)
            out.push_back(text[i++]);
    }
    return out;
}

// "user:secret@host" anywhere, with or without a scheme before it (a URL whose "://"
// was mistyped still carries its password): what lies between the first ':' of the
// word (after any "//") and the '@' is masked.
std::string redact_at_credentials(std::string text) {
    std::size_t at = text.find('@');
    while (at != std::string::npos) {
        std::size_t start = at;
        while (start > 0) {
            char c = text[start - 1];
            if (std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '(')
                break;
            --start;
        }
        std::string_view word(text.data() + start, at - start);
        std::size_t from = word.rfind("//");
        from = from == std::string_view::npos ? 0 : from + 2;
        std::size_t colon = word.find(':', from);
        if (colon != std::string_view::npos && word.substr(colon + 1) != mask &&
            colon + 1 < word.size()) {
            text.replace(start + colon + 1, word.size() - colon - 1, mask);
            at = start + colon + 1 + mask.size();
        }
        at = text.find('@', at + 1);
    }
    return text;
}

} // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

std::string_view to_string(Errc e) noexcept {
    const ErrcInfo* info = find_info(static_cast<int>(e));
    return info ? info->name : std::string_view("unknown");
}

ErrorClass classify(const Error& error) noexcept {
    if (error.code.category() != error_category())
        return {}; // another library's code: a failure of unknown kind
    const ErrcInfo* info = find_info(error.code.value());
    if (!info)
        return {};
    ErrorClass kind = info->kind;
    switch (info->code) {
    case Errc::http_status:
        // A 4xx is the server's answer about the request, not its health.
        kind.trips_breaker = error.http_status >= 500 || error.http_status == 0;
        kind.source_down = kind.trips_breaker;
        break;
    case Errc::query_failed:
        if (error.sqlstate.starts_with("22") || error.sqlstate.starts_with("23")) {
            // A data exception or an integrity violation: the caller's data.
            kind.caller_fault = true;
            kind.http_status = 400;
        } else if (error.sqlstate == "40001" || error.sqlstate == "40P01") {
            // A serialization failure or a deadlock: the transaction may simply be run again
            // (the writer already did, a few times): the client may try again shortly.
            kind.retryable = true;
            kind.http_status = 503;
        }
        break;
    default:
        break;
    }
    return kind;
}

std::string redact(std::string_view text) {
    return redact_values(redact_at_credentials(redact_userinfo(text)));
}

std::optional<Errc> Error::errc() const noexcept {
    if (code.category() != error_category() || !find_info(code.value()))
        return std::nullopt;
    return static_cast<Errc>(code.value());
}

std::string Error::to_string() const {
    std::string name;
    if (auto e = errc())
        name = modelrepo::to_string(*e);
    else
        name = code.category().name() + std::string(":") + std::to_string(code.value());
    return name + ": " + message;
}

Error make_error(Errc code, std::string_view message) {
    Error error;
    error.code = make_error_code(code);
    error.message = redact(message);
    return error;
}

BadResultAccess::BadResultAccess(Error error)
    : std::logic_error(error.to_string())
    , error_(std::move(error)) {}

BadResultAccess::BadResultAccess(const char* what)
    : std::logic_error(what) {}

} // namespace modelrepo
