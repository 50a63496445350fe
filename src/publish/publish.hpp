// SPDX-License-Identifier: MIT
// What the destinations of publish_snapshot() share.
#pragma once

#include <string>
#include <string_view>

#include <modelrepo/publish.hpp>
#include <modelrepo/version.hpp> // MODELREPO_HAS_GITHUB

#include "../core/uri.hpp"

namespace modelrepo::detail {

/// The snapshot JSON publish_snapshot() stores: sorted by slug, so one catalogue is one text.
std::string publish_text(const Snapshot& snapshot);

/// True when `stored` (what the destination holds) is the same catalogue as `snapshot`,
/// `generated_at` aside: publishing it again would change nothing but the date.
bool same_catalogue(std::string_view stored, const Snapshot& snapshot);

#if MODELREPO_HAS_GITHUB
/// github://OWNER/REPO/PATH@BRANCH through the contents API (publish_github.cpp).
Result<PublishResult> publish_github(const Snapshot& snapshot, const Uri& uri,
                                     std::string_view text, const PublishOptions& options);
#endif

} // namespace modelrepo::detail
