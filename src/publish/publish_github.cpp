// SPDX-License-Identifier: MIT
// publish_snapshot() to github://OWNER/REPO/PATH@BRANCH through the contents API:
// GET the file (its blob sha and content), PUT the new content with that sha.
#include <array>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include <modelrepo/version.hpp>

#include "../github/http_fetch.hpp"
#include "publish.hpp"

namespace modelrepo::detail {

namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        auto n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16 |
                 static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8 |
                 static_cast<unsigned char>(in[i + 2]);
        for (int shift : {18, 12, 6, 0})
            out.push_back(alphabet[(n >> shift) & 63]);
    }
    if (std::size_t rest = in.size() - i) {
        unsigned n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16;
        if (rest == 2)
            n |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8;
        out.push_back(alphabet[(n >> 18) & 63]);
        out.push_back(alphabet[(n >> 12) & 63]);
        out.push_back(rest == 2 ? alphabet[(n >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

/// The contents API's base64: line breaks allowed, padding optional. nullopt when a
/// character is outside the alphabet.
std::optional<std::string> base64_decode(std::string_view in) {
    std::array<int, 256> value;
    value.fill(-1);
    for (std::size_t i = 0; i < alphabet.size(); ++i)
        value[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '\n' || c == '\r' || c == '=')
            continue;
        int v = value[static_cast<unsigned char>(c)];
        if (v < 0)
            return std::nullopt;
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
        }
    }
    return out;
}

struct Target {
    std::string api;     ///< {api_base}/repos/OWNER/REPO/contents/PATH
    std::string branch;  ///< empty: the repository's default branch
    std::string display; ///< github://OWNER/REPO/PATH@BRANCH
};

Result<Target> parse_target(const Uri& uri, std::string_view text) {
    auto invalid = [&](const std::string& what) {
        return make_error(Errc::invalid_argument,
                          "cannot publish to '" + redact_url(text) + "': " + what);
    };
    std::string owner = uri.authority;
    std::string rest = uri.path.empty() ? "" : uri.path.substr(1);
    auto slash = rest.find('/');
    if (owner.empty() || slash == std::string::npos || slash == 0 || slash + 1 >= rest.size())
        return invalid("expected github://OWNER/REPO/PATH@BRANCH");
    Target t;
    std::string repo = rest.substr(0, slash);
    std::string path = rest.substr(slash + 1);
    if (auto at = path.rfind('@'); at != std::string::npos) {
        t.branch = path.substr(at + 1);
        path = path.substr(0, at);
        if (t.branch.empty() || path.empty())
            return invalid("expected github://OWNER/REPO/PATH@BRANCH");
    }
    std::string api_base = uri.param("api_base").value_or("https://api.github.com");
    while (!api_base.empty() && api_base.back() == '/')
        api_base.pop_back();
    if (!api_base.starts_with("https://") && !api_base.starts_with("http://"))
        return invalid("api_base must be an http:// or https:// URL");
    for (const auto& [key, value] : uri.query)
        if (key != "api_base")
            return invalid("unknown parameter '" + key + "' (publish knows api_base)");
    t.api = api_base + "/repos/" + owner + "/" + repo + "/contents/" + path;
    t.display =
        "github://" + owner + "/" + repo + "/" + path + (t.branch.empty() ? "" : "@" + t.branch);
    return t;
}

/// The contents API's own words for a failure ("Bad credentials"), when it sent some.
std::string api_message(const HttpResponse& r) {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_object() && body.contains("message") && body["message"].is_string())
        return ": " + body["message"].get<std::string>();
    return "";
}

Error status_error(const std::string& what, const Target& t, const HttpResponse& r) {
    std::string said = redact(api_message(r));
    std::string prefix = what + " " + t.display + ": HTTP " + std::to_string(r.status);
    Error e;
    if (r.status == 401) {
        e = make_error(Errc::auth_failed, prefix + said +
                                              " (the token in GITHUB_TOKEN was refused: "
                                              "expired, revoked or mistyped)");
    } else if (r.status == 429 || (r.status == 403 && r.ratelimit_remaining == 0)) {
        e = make_error(Errc::rate_limited, prefix + said + " (GitHub's rate limit)");
        e.retry_after =
            std::chrono::system_clock::now() + std::chrono::seconds(r.retry_after.value_or(60));
    } else if (r.status == 403 || r.status == 404) {
        e = make_error(Errc::http_status,
                       prefix + said +
                           " (no such repository or branch, or the token may not write its "
                           "contents: it needs contents:write on the repository)");
    } else {
        e = make_error(Errc::http_status, prefix + said);
    }
    e.http_status = static_cast<int>(r.status);
    e.target = t.display;
    return e;
}

struct Stored {
    std::string sha;                    ///< empty: no file yet
    std::optional<std::string> content; ///< decoded, when the API sent it
};

class ContentsApi {
public:
    ContentsApi(Target target, std::string token, const PublishOptions& options)
        : target_(std::move(target))
        , token_(std::move(token))
        , options_(options) {}

    Result<Stored> get() {
        HttpRequest request = base("GET");
        request.url = target_.api + (target_.branch.empty() ? "" : "?ref=" + target_.branch);
        auto r = client_.send(request, target_.display);
        if (!r)
            return r.error();
        const HttpResponse& response = r.value();
        if (response.status == 404)
            return Stored{};
        if (response.status != 200)
            return status_error("GET", target_, response);
        auto body = nlohmann::json::parse(response.body, nullptr, false);
        if (!body.is_object() || !body.contains("sha") || !body["sha"].is_string())
            return bad_answer("GET", "no blob sha in the answer");
        Stored stored;
        stored.sha = body["sha"].get<std::string>();
        if (body.value("encoding", "") == "base64" && body.contains("content") &&
            body["content"].is_string())
            stored.content = base64_decode(body["content"].get<std::string>());
        return stored;
    }

    /// The new commit's sha; a conflict is `Errc::http_status` with http_status 409/422.
    Result<std::string> put(std::string_view text, const std::string& sha) {
        nlohmann::json body{{"message", options_.message}, {"content", base64_encode(text)}};
        if (!target_.branch.empty())
            body["branch"] = target_.branch;
        if (!sha.empty())
            body["sha"] = sha;
        HttpRequest request = base("PUT");
        request.url = target_.api;
        request.headers.push_back("Content-Type: application/json");
        request.body = body.dump();
        auto r = client_.send(request, target_.display);
        if (!r)
            return r.error();
        const HttpResponse& response = r.value();
        if (response.status != 200 && response.status != 201)
            return status_error("PUT", target_, response);
        auto answer = nlohmann::json::parse(response.body, nullptr, false);
        if (!answer.is_object() || !answer.contains("commit") || !answer["commit"].is_object())
            return bad_answer("PUT", "no commit in the answer");
        return answer["commit"].value("sha", "");
    }

    const Target& target() const { return target_; }

private:
    HttpRequest base(const char* method) const {
        HttpRequest request;
        request.method = method;
        request.timeout = options_.timeout;
        request.max_body_bytes = 64 * 1024 * 1024;
        request.headers = {"User-Agent: modelrepo/" + std::string(MODELREPO_VERSION),
                           "Accept: application/vnd.github+json",
                           "X-GitHub-Api-Version: 2022-11-28", "Authorization: Bearer " + token_};
        return request;
    }

    Error bad_answer(const char* method, const std::string& what) const {
        Error e = make_error(Errc::bad_data, std::string(method) + " " + target_.display +
                                                 ": not a contents API answer (" + what + ")");
        e.target = target_.display;
        return e;
    }

    Target target_;
    std::string token_;
    const PublishOptions& options_;
    HttpClient client_;
};

bool is_conflict(const Error& e) {
    return e.errc() == Errc::http_status && (e.http_status == 409 || e.http_status == 422);
}

} // namespace

Result<PublishResult> publish_github(const Snapshot& snapshot, const Uri& uri,
                                     std::string_view text, const PublishOptions& options) {
    auto target = parse_target(uri, text);
    if (!target)
        return target.error();
    std::string token = options.token;
    if (token.empty())
        if (const char* env = std::getenv("GITHUB_TOKEN"))
            token = env;
    if (token.empty())
        return make_error(Errc::invalid_argument,
                          "publishing to " + target.value().display +
                              " needs a GitHub token that may write its contents: set "
                              "GITHUB_TOKEN");
    ContentsApi api(std::move(target).value(), std::move(token), options);
    PublishResult result;
    result.destination = api.target().display;
    const std::string content = publish_text(snapshot);
    for (int attempt = 0;; ++attempt) {
        auto stored = api.get();
        if (!stored)
            return stored.error();
        if (stored.value().content && same_catalogue(*stored.value().content, snapshot))
            return result;
        auto commit = api.put(content, stored.value().sha);
        ++result.writes;
        if (commit) {
            result.changed = true;
            result.commit = std::move(commit).value();
            return result;
        }
        // Someone committed between our GET and PUT: read again, once.
        if (!is_conflict(commit.error()) || attempt > 0) {
            Error e = std::move(commit).error();
            if (is_conflict(e))
                e.message += " (a conflict again after reading the file anew: another "
                             "publisher is writing it)";
            return e;
        }
    }
}

} // namespace modelrepo::detail
