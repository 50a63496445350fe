// SPDX-License-Identifier: MIT
#include "uri.hpp"

#include <cctype>
#include <cstdlib>

#include <modelrepo/uri.hpp>

namespace modelrepo::detail {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

Error invalid(std::string_view uri, std::string_view what) {
    return make_error(Errc::invalid_argument,
                      "invalid source URI '" + redact_url(uri) + "': " + std::string(what));
}

} // namespace

std::string redact_url(std::string_view text) {
    // Where parse_uri puts the authority: after "scheme://", up to the path; for
    // database URLs the userinfo ends at the last '@'. A fragment is masked whole (a
    // "#password=…" there is no part of the URL, but may be a secret).
    std::string out(text);
    if (auto hash = fragment_start(out); hash != std::string::npos)
        out.replace(hash + 1, std::string::npos, "***");
    auto scheme_end = out.find("://");
    if (scheme_end != std::string::npos) {
        std::size_t start = scheme_end + 3;
        std::size_t stop = out.find_first_of("?#", start);
        std::string_view rest(out.data() + start,
                              (stop == std::string::npos ? out.size() : stop) - start);
        std::size_t at = rest.rfind('@');
        if (at != std::string_view::npos) {
            std::size_t colon = rest.substr(0, at).find(':');
            if (colon != std::string_view::npos)
                out.replace(start + colon + 1, at - colon - 1, "***");
        }
    }
    return redact(out);
}

std::optional<std::string> Uri::param(std::string_view key) const {
    std::optional<std::string> value;
    for (const auto& [k, v] : query)
        if (k == key)
            value = v;
    return value;
}

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || v < 0)
        return std::nullopt;
    // The rest of the value, NULs included (a C string would stop at one and take "1s%00").
    std::string unit(end, static_cast<std::size_t>(text.c_str() + text.size() - end));
    double ms = unit == "" || unit == "s" ? v * 1000
                : unit == "ms"            ? v
                : unit == "m"             ? v * 60'000
                : unit == "h"             ? v * 3'600'000
                                          : -1;
    if (!(ms >= 0 && ms <= 10.0 * 365 * 86'400'000))
        return std::nullopt;
    return std::chrono::milliseconds(static_cast<long long>(ms));
}

std::optional<std::string> percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out.push_back(text[i]);
            continue;
        }
        int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
        int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::optional<std::vector<QueryParam>> split_query(std::string_view query) {
    std::vector<QueryParam> params;
    while (!query.empty()) {
        std::size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty())
            continue;
        std::size_t eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq));
        auto value =
            percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
        if (!key || !value)
            return std::nullopt;
        params.push_back({std::move(*key), std::move(*value), pair});
    }
    return params;
}

std::size_t fragment_start(std::string_view url) {
    std::size_t scheme_end = url.find("://");
    std::size_t after_scheme = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    std::size_t userinfo_end = url.find_first_of("@/", after_scheme);
    std::size_t rest = userinfo_end != std::string_view::npos && url[userinfo_end] == '@'
                           ? userinfo_end + 1
                           : after_scheme;
    return url.find('#', rest);
}

std::size_t query_start(std::string_view url) {
    std::size_t scheme_end = url.find("://");
    std::size_t after_scheme = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    std::size_t userinfo_end = url.find_first_of("@/", after_scheme);
    std::size_t rest = userinfo_end != std::string_view::npos && url[userinfo_end] == '@'
                           ? userinfo_end + 1
                           : after_scheme;
    return url.find('?', rest);
}

std::optional<std::string> display_name_problem(std::string_view name) {
    if (name.empty() || name.size() > max_display_name)
        return "name must be 1 to " + std::to_string(max_display_name) + " characters, got " +
               std::to_string(name.size());
    for (char c : name)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return std::string("name holds a control character");
    if (name.find("://") != std::string_view::npos)
        return std::string("name is shown instead of the address: it must not be a URL");
    return std::nullopt;
}

Result<Uri> parse_uri(std::string_view text) {
    Uri uri;
    std::size_t colon = text.find(':');
    if (colon == 0 || colon == std::string_view::npos)
        return invalid(text, "no scheme (expected e.g. builtin:, file:///path.json, "
                             "postgresql://host/db, github://owner/repo/path)");
    for (std::size_t i = 0; i < colon; ++i) {
        char c = text[i];
        bool ok = std::isalpha(static_cast<unsigned char>(c)) ||
                  (i > 0 && (std::isdigit(static_cast<unsigned char>(c)) || c == '+' || c == '-' ||
                             c == '.'));
        if (!ok)
            return invalid(text, "the scheme has a character URIs do not allow");
        uri.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    std::string_view rest = text.substr(colon + 1);
    if (auto hash = rest.find('#'); hash != std::string_view::npos)
        rest = rest.substr(0, hash);
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    if (rest.starts_with("//")) {
        uri.has_authority = true;
        rest.remove_prefix(2);
        // A database URL's authority ends at the first '/' after the last '@', so that
        // an unencoded '/' in a password does not cut it short. Elsewhere '@' may appear
        // in the path (github://owner/repo/path@ref), so the first '/' ends it.
        std::size_t at = uri.scheme.starts_with("postgres") ? rest.rfind('@') : 0;
        std::size_t slash = rest.find('/', at == std::string_view::npos ? 0 : at);
        uri.authority = std::string(rest.substr(0, slash));
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    }
    uri.path = std::string(rest);
    auto params = split_query(query);
    if (!params)
        return invalid(text, "malformed %-escape in the query string");
    for (auto& p : *params)
        uri.query.emplace_back(std::move(p.key), std::move(p.value));
    return uri;
}

} // namespace modelrepo::detail

namespace modelrepo {

std::optional<std::vector<QueryParam>> parse_query(std::string_view query, bool plus_is_space) {
    std::string spaced;
    if (plus_is_space) {
        spaced.reserve(query.size());
        for (char c : query)
            spaced += c == '+' ? std::string_view("%20") : std::string_view(&c, 1);
        query = spaced;
    }
    auto split = detail::split_query(query);
    if (!split)
        return std::nullopt;
    std::vector<QueryParam> out;
    out.reserve(split->size());
    for (auto& p : *split)
        out.push_back({std::move(p.key), std::move(p.value)});
    return out;
}

std::optional<std::string> percent_decode(std::string_view text) {
    return detail::percent_decode(text);
}

} // namespace modelrepo
