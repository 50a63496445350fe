// SPDX-License-Identifier: MIT
// The openers of builtin: and file: URIs.
#include <modelrepo/memory_repository.hpp>

#include "../open/backend.hpp"

namespace modelrepo::detail {

Result<std::shared_ptr<ModelRepository>> open_builtin(std::string_view text, const Uri& uri) {
    if (!uri.path.empty() && uri.path != "/")
        return make_error(Errc::invalid_argument,
                          "invalid source URI '" + redact_url(text) +
                              "': builtin: takes no path (write just \"builtin:\")");
    return std::shared_ptr<ModelRepository>(MemoryRepository::builtin());
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
    auto repo = MemoryRepository::from_file(*path);
    if (!repo)
        return repo.error();
    return std::shared_ptr<ModelRepository>(std::move(repo).value());
}

} // namespace modelrepo::detail
