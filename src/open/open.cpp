// SPDX-License-Identifier: MIT
// open() and open_chain(): the composition root. It reads a URI and wires the parts;
// nothing below it knows which backends exist.
#include <modelrepo/durable.hpp>
#include <modelrepo/fallback_repository.hpp>
#include <modelrepo/open.hpp>
#include <modelrepo/version.hpp>

#include "../core/registration.hpp"

namespace modelrepo {

namespace {

#if MODELREPO_HAS_POSTGRES
constexpr detail::Opener postgres_opener = &detail::open_postgres;
#else
constexpr detail::Opener postgres_opener = nullptr;
#endif
#if MODELREPO_HAS_GITHUB
constexpr detail::Opener github_opener = &detail::open_github;
#else
constexpr detail::Opener github_opener = nullptr;
#endif

// Every backend, one line each: a new backend is its folder and a line here.
constexpr std::array<detail::Backend, 4> backends{{
    {"the bundled catalogue", {"builtin"}, &detail::open_builtin, "", false},
    {"snapshot files", {"file"}, &detail::open_file, "", false},
    {"PostgreSQL", {"postgresql", "postgres"}, postgres_opener, "-Dpostgres=enabled", true},
    {"GitHub/HTTP", {"github", "https", "http"}, github_opener, "-Dgithub=enabled", false},
}};

/// The backend of `text`, with the durable layer its URI asks for around it.
Result<std::shared_ptr<ModelRepository>> open_with(const detail::Backend& backend,
                                                   std::string_view text, const detail::Uri& uri) {
    if (!backend.durable)
        return backend.open(text, uri);
    std::string rest(text);
    auto durable = DurableConfig::take_from(rest);
    if (!durable)
        return std::move(durable).error();
    if (rest == text)
        return backend.open(text, uri); // nothing of the layer's in the URI
    auto rest_uri = detail::parse_uri(rest);
    if (!rest_uri)
        return rest_uri.error();
    auto opened = backend.open(rest, rest_uri.value());
    if (!opened || durable.value().empty())
        return opened;
    return make_durable(std::move(opened).value(), durable.value());
}

/// "host=db dbname=models": words of `key=value`, the first a lower-case keyword, no "://".
bool looks_like_conninfo(std::string_view text) {
    if (text.find("://") != std::string_view::npos)
        return false;
    std::size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0)
        return false;
    for (char c : text.substr(0, eq))
        if (!(c >= 'a' && c <= 'z') && c != '_')
            return false;
    return true;
}

std::string known_schemes() {
    std::string known;
    for (const auto& backend : backends)
        for (auto scheme : backend.schemes)
            if (!scheme.empty())
                known += (known.empty() ? "" : ", ") + std::string(scheme) + ":";
    return known;
}

} // namespace

Result<std::shared_ptr<ModelRepository>> open(std::string_view text) {
    if (text.empty())
        return make_error(Errc::invalid_argument,
                          "empty source URI (expected e.g. builtin:, file:///path.json, "
                          "postgresql://host/db, github://owner/repo/path)");
    // A libpq key=value conninfo ("host=db dbname=models user=app") names PostgreSQL.
    auto uri =
        detail::parse_uri(looks_like_conninfo(text) ? std::string_view("postgresql:") : text);
    if (!uri)
        return uri.error();
    for (const auto& backend : backends)
        for (auto scheme : backend.schemes) {
            if (scheme.empty() || scheme != uri.value().scheme)
                continue;
            if (!backend.open)
                return make_error(Errc::not_supported, "cannot open '" + detail::redact_url(text) +
                                                           "': this build of modelrepo has no " +
                                                           std::string(backend.title) +
                                                           " backend (rebuild with " +
                                                           std::string(backend.build_option) + ")");
            return open_with(backend, text, uri.value());
        }
    return make_error(Errc::invalid_argument, "unknown scheme '" + uri.value().scheme +
                                                  "' in source URI '" + detail::redact_url(text) +
                                                  "' (known: " + known_schemes() + ")");
}

Result<std::shared_ptr<ModelRepository>> open_chain(std::span<const std::string> uris) {
    if (uris.empty())
        return make_error(Errc::invalid_argument, "open_chain needs at least one source URI");
    if (uris.size() == 1)
        return open(uris.front());
    auto chain = open_fallback(uris);
    if (!chain)
        return chain.error();
    return std::shared_ptr<ModelRepository>(std::move(chain).value());
}

Result<std::shared_ptr<FallbackRepository>> open_fallback(std::span<const std::string> uris) {
    if (uris.empty())
        return make_error(Errc::invalid_argument, "open_fallback needs at least one source URI");
    std::vector<std::shared_ptr<ModelRepository>> sources;
    for (const std::string& uri : uris) {
        auto source = open(uri);
        if (!source)
            return source.error();
        sources.push_back(std::move(source).value());
    }
    return FallbackRepository::create(std::move(sources));
}

} // namespace modelrepo
