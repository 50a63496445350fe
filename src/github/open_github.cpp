// SPDX-License-Identifier: MIT
// The opener of github://, https:// and http:// URIs.
#include <modelrepo/github_repository.hpp>

#include "../core/registration.hpp"

namespace modelrepo::detail {

Result<std::shared_ptr<ModelRepository>> open_github(std::string_view text, const Uri&) {
    auto repo = GithubRepository::open(text);
    if (!repo)
        return std::move(repo).error();
    return std::shared_ptr<ModelRepository>(std::move(repo).value());
}

} // namespace modelrepo::detail
