// SPDX-License-Identifier: MIT
// open() and open_chain(): from a source URI to a repository.
#include <array>

#include <modelrepo/fallback_repository.hpp>
#include <modelrepo/memory_repository.hpp>
#include <modelrepo/open.hpp>

#include "uri.hpp"

#if MODELREPO_WITH_POSTGRES
#include <modelrepo/postgres_repository.hpp>
#endif
#if MODELREPO_WITH_GITHUB
#include <modelrepo/github_repository.hpp>
#endif

namespace modelrepo {

namespace {

using Opener = Result<std::shared_ptr<ModelRepository>> (*)(std::string_view text,
                                                            const detail::Uri& uri);

Result<std::shared_ptr<ModelRepository>> open_builtin(std::string_view text,
                                                      const detail::Uri& uri) {
    if (!uri.path.empty() && uri.path != "/")
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + detail::redact_url(text) +
                              "': builtin: takes no path (write just \"builtin:\")");
    return std::shared_ptr<ModelRepository>(MemoryRepository::builtin());
}

Result<std::shared_ptr<ModelRepository>> open_file(std::string_view text, const detail::Uri& uri) {
    // file:///abs/path, file://localhost/abs/path, file:relative/path
    if (uri.has_authority && !uri.authority.empty() && uri.authority != "localhost")
        return make_error(Errc::invalid_argument, "invalid source URI '" +
                                                      detail::redact_url(text) +
                                                      "': file URIs name a "
                                                      "local file (file:///abs/path.json); host '" +
                                                      uri.authority + "' is not supported");
    auto path = detail::percent_decode(uri.path);
    if (!path || path->empty())
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + detail::redact_url(text) +
                              "': expected file:///absolute/path.json or file:relative.json");
    auto repo = MemoryRepository::from_file(*path);
    if (!repo)
        return repo.error();
    return std::shared_ptr<ModelRepository>(std::move(repo).value());
}

[[maybe_unused]] Result<std::shared_ptr<ModelRepository>> not_built(std::string_view text,
                                                                    const detail::Uri& uri) {
    bool postgres = uri.scheme.starts_with("postgres");
    return make_error(Errc::not_supported,
                      "cannot open '" + detail::redact_url(text) +
                          "': this build of modelrepo has no " +
                          (postgres ? "PostgreSQL backend (rebuild with -Dpostgres=enabled)"
                                    : "GitHub/HTTP backend (rebuild with -Dgithub=enabled)"));
}

/// A backend whose `Repo::open(uri)` takes the whole URI.
template <class Repo>
Result<std::shared_ptr<ModelRepository>> open_whole(std::string_view text, const detail::Uri&) {
    auto repo = Repo::open(text);
    if (!repo)
        return repo.error();
    return std::shared_ptr<ModelRepository>(std::move(repo).value());
}

#if MODELREPO_WITH_POSTGRES
constexpr Opener open_postgres = open_whole<PostgresRepository>;
#else
constexpr Opener open_postgres = not_built;
#endif

#if MODELREPO_WITH_GITHUB
constexpr Opener open_github = open_whole<GithubRepository>;
#else
constexpr Opener open_github = not_built;
#endif

struct Scheme {
    std::string_view name;
    Opener opener;
};

constexpr std::array schemes{
    Scheme{"builtin", open_builtin},     Scheme{"file", open_file},
    Scheme{"postgresql", open_postgres}, Scheme{"postgres", open_postgres},
    Scheme{"github", open_github},       Scheme{"https", open_github},
    Scheme{"http", open_github},
};

} // namespace

Result<std::shared_ptr<ModelRepository>> open(std::string_view text) {
    if (text.empty())
        return make_error(Errc::invalid_argument,
                          "empty source URI (expected e.g. builtin:, file:///path.json, "
                          "postgresql://host/db, github://owner/repo/path)");
    auto uri = detail::parse_uri(text);
    if (!uri)
        return uri.error();
    for (const Scheme& scheme : schemes)
        if (scheme.name == uri.value().scheme)
            return scheme.opener(text, uri.value());
    std::string known;
    for (const Scheme& scheme : schemes)
        known += (known.empty() ? "" : ", ") + std::string(scheme.name) + ":";
    return make_error(Errc::invalid_argument, "unknown scheme '" + uri.value().scheme +
                                                  "' in source URI '" + detail::redact_url(text) +
                                                  "' (known: " + known + ")");
}

Result<std::shared_ptr<ModelRepository>> open_chain(std::span<const std::string> uris) {
    if (uris.empty())
        return make_error(Errc::invalid_argument, "open_chain needs at least one source URI");
    if (uris.size() == 1)
        return open(uris.front());
    std::vector<std::shared_ptr<ModelRepository>> sources;
    for (const std::string& uri : uris) {
        auto source = open(uri);
        if (!source)
            return source.error();
        sources.push_back(std::move(source).value());
    }
    auto chain = FallbackRepository::create(std::move(sources));
    if (!chain)
        return chain.error();
    return std::shared_ptr<ModelRepository>(std::move(chain).value());
}

} // namespace modelrepo
