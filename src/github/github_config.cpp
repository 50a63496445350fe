// SPDX-License-Identifier: MIT
// GithubConfig::from_uri: a github://, https:// or http:// URI and its parameters read
// into what the repository fetches, and which token it may send where.
#include <cctype>
#include <cstdlib>

#include <modelrepo/github_repository.hpp>

#include "../core/files.hpp"
#include "../core/uri.hpp"

namespace modelrepo {

namespace {

using namespace std::chrono;

/// Whether `authority` ("user@host:port") is one of GitHub's own hosts, the only ones
/// GITHUB_TOKEN is sent to.
bool is_github_host(std::string_view authority) {
    if (auto at = authority.rfind('@'); at != std::string_view::npos)
        authority = authority.substr(at + 1);
    authority = authority.substr(0, authority.find(':'));
    std::string host(authority);
    for (char& c : host)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return host == "github.com" || host == "api.github.com" ||
           host == "raw.githubusercontent.com" || host.ends_with(".githubusercontent.com");
}

Error invalid(std::string_view uri, const std::string& what) {
    return make_error(Errc::invalid_argument,
                      "invalid backup URI '" + detail::redact_url(uri) + "': " + what);
}

/// The token a source sends: its token_file's first line, else GITHUB_TOKEN for github://
/// and GitHub's own hosts, else none.
Result<std::string> token_of(std::string_view text, const std::optional<std::string>& file,
                             const detail::Uri& uri) {
    if (file) {
        auto read = detail::read_file_limited(*file, 64 * 1024);
        if (!read)
            return invalid(text, "cannot read token_file: " + read.error().message);
        std::string token = read.value().substr(0, read.value().find('\n'));
        while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
            token.pop_back();
        if (token.empty())
            return invalid(text, "token_file is empty: put the token on its first line");
        return token;
    }
    const char* env = std::getenv("GITHUB_TOKEN");
    if (env && (uri.scheme == "github" || is_github_host(uri.authority)))
        return std::string(env);
    return std::string();
}

/// github://OWNER/REPO/PATH[@REF] as the contents API's URL (at `api_base`) and a name.
std::optional<Error> github_contents(GithubConfig& config, std::string_view text,
                                     const detail::Uri& uri, const std::string& api_base) {
    // github://OWNER/REPO/PATH[@REF]
    std::string owner = uri.authority;
    std::string rest = uri.path.empty() ? "" : uri.path.substr(1);
    auto slash = rest.find('/');
    if (owner.empty() || slash == std::string::npos || slash == 0 || slash + 1 >= rest.size())
        return invalid(text, "expected github://OWNER/REPO/PATH@REF");
    std::string repo = rest.substr(0, slash);
    std::string path = rest.substr(slash + 1);
    std::string ref;
    if (auto at = path.rfind('@'); at != std::string::npos) {
        ref = path.substr(at + 1);
        path = path.substr(0, at);
    }
    if (!api_base.starts_with("https://") && !api_base.starts_with("http://"))
        return invalid(text, "api_base must be an http:// or https:// URL");
    config.url = api_base + "/repos/" + owner + "/" + repo + "/contents/" + path +
                 (ref.empty() ? "" : "?ref=" + ref);
    config.contents_api = true;
    config.name = "github://" + owner + "/" + repo + "/" + path + (ref.empty() ? "" : "@" + ref);
    return std::nullopt;
}

} // namespace

Result<GithubConfig> GithubConfig::from_uri(std::string_view text) {
    auto parsed = detail::parse_uri(text);
    if (!parsed)
        return parsed.error();
    const detail::Uri& uri = parsed.value();
    GithubConfig config;
    std::optional<std::string> token_file;
    std::optional<std::string> display_name;

    std::string api_base = "https://api.github.com";
    std::vector<std::string> passthrough;
    auto raw_query = text.find('?') == std::string_view::npos ? std::string_view()
                                                              : text.substr(text.find('?') + 1);
    auto params = detail::split_query(raw_query);
    if (!params)
        return invalid(text, "malformed %-escape in the query string");
    for (const auto& p : *params) {
        auto duration = [&](milliseconds& out) -> std::optional<Error> {
            auto d = detail::parse_duration(p.value);
            if (!d)
                return invalid(text, p.key + " must be a duration like 60s, 500ms, 15m or 24h "
                                             "(at most ten years)");
            out = *d;
            return std::nullopt;
        };
        std::optional<Error> problem;
        if (p.key == "api_base")
            api_base = p.value;
        else if (p.key == "name") {
            if (auto why = detail::display_name_problem(p.value))
                return invalid(text, *why);
            display_name = p.value;
        } else if (p.key == "refresh_interval")
            problem = duration(config.refresh_interval);
        else if (p.key == "max_stale")
            problem = duration(config.max_stale);
        else if (p.key == "timeout")
            problem = duration(config.timeout);
        else if (p.key == "token_file" || p.key == "ca_file") {
            if (p.value.empty() || p.value.find('\0') != std::string::npos)
                return invalid(text, p.key + " must name a file (and hold no NUL)");
            if (p.key == "ca_file")
                config.ca_file = p.value;
            else
                token_file = p.value;
        } else if (p.key == "cache_dir") {
            if (p.value.empty() || p.value.find('\0') != std::string::npos)
                return invalid(text, "cache_dir must name a directory (and hold no NUL)");
            config.cache_dir = p.value;
        } else if (p.key == "cache" || p.key == "outbox" || p.key == "outbox_max")
            // The durable layer's: a backup keeps its own copy (cache_dir=) and takes no
            // writes. Never ignored silently.
            return invalid(text, p.key + " is not taken by a GitHub/HTTP source: it is a copy "
                                         "already (its own cache_dir= keeps the last good one "
                                         "on disk) and takes no writes");
        else if (uri.scheme == "github")
            return invalid(text, "github:// does not take the parameter '" + p.key +
                                     "' (it takes api_base, refresh_interval, max_stale, "
                                     "timeout, cache_dir, token_file, ca_file, name)");
        else
            passthrough.emplace_back(p.raw); // part of a plain URL: sent to its server
        if (problem)
            return *problem;
    }
    while (!api_base.empty() && api_base.back() == '/')
        api_base.pop_back();

    if (uri.scheme == "github") {
        if (auto problem = github_contents(config, text, uri, api_base))
            return *problem;
    } else if (uri.scheme == "https" || uri.scheme == "http") {
        if (uri.authority.empty())
            return invalid(text, "no host");
        std::string base(text.substr(0, text.find('?')));
        config.url = base;
        for (std::size_t i = 0; i < passthrough.size(); ++i)
            config.url += (i ? "&" : "?") + passthrough[i];
        config.name = detail::redact_url(base);
    } else {
        return invalid(text, "expected github://, https:// or http://");
    }
    if (display_name)
        config.name = std::move(*display_name);
    auto token = token_of(text, token_file, uri);
    if (!token)
        return token.error();
    config.token = std::move(token).value();
    return config;
}

} // namespace modelrepo
