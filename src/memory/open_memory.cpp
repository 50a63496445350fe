// SPDX-License-Identifier: MIT
// The openers of builtin: and file: URIs.
#include <modelrepo/memory_repository.hpp>

#include "../core/registration.hpp"

namespace modelrepo::detail {

namespace {

/// The query parameters an in-memory source takes (`max_clock_skew`), set on `repo`; any
/// other is refused by name, so that nothing asked for is silently ignored.
Result<std::shared_ptr<ModelRepository>> with_params(std::shared_ptr<MemoryRepository> repo,
                                                     std::string_view text, const Uri& uri) {
    for (const auto& [key, value] : uri.query) {
        if (key == "max_clock_skew") {
            auto skew = parse_duration(value);
            if (!skew)
                return make_error(Errc::invalid_argument,
                                  "invalid source URI '" + redact_url(text) +
                                      "': max_clock_skew must be a duration like 5m or 90s, got '" +
                                      value + "'");
            repo->set_max_clock_skew(*skew);
            continue;
        }
        return make_error(Errc::invalid_argument, "invalid source URI '" + redact_url(text) +
                                                      "': " + uri.scheme +
                                                      ": does not take the parameter '" + key +
                                                      "' (it takes max_clock_skew only)");
    }
    return std::shared_ptr<ModelRepository>(std::move(repo));
}

} // namespace

Result<std::shared_ptr<ModelRepository>> open_builtin(std::string_view text, const Uri& uri) {
    if (!uri.path.empty() && uri.path != "/")
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': builtin: takes no path (write just \"builtin:\")");
    return with_params(MemoryRepository::builtin(), text, uri);
}

Result<std::shared_ptr<ModelRepository>> open_file(std::string_view text, const Uri& uri) {
    // file:///abs/path, file://localhost/abs/path, file:relative/path
    if (uri.has_authority && !uri.authority.empty() && uri.authority != "localhost")
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': file URIs name a local file (file:///abs/path.json); host '" +
                              uri.authority + "' is not supported");
    auto path = percent_decode(uri.path);
    if (!path || path->empty())
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': expected file:///absolute/path.json or file:relative.json");
    if (path->find('\0') != std::string::npos)
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': the path holds a NUL (%00), which no file name can");
    auto repo = MemoryRepository::from_file(*path);
    if (!repo)
        return repo.error();
    return with_params(std::move(repo).value(), text, uri);
}

} // namespace modelrepo::detail
