// SPDX-License-Identifier: MIT
/// @file
/// `publish_snapshot()`: store the catalogue where a backup source reads it, so the
/// backup follows the database (`modelrepo publish`, `modelrepo serve --publish`).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <modelrepo/error.hpp>
#include <modelrepo/snapshot.hpp>

namespace modelrepo {

struct PublishOptions {
    /// The GitHub token for `github://`; empty: `$GITHUB_TOKEN`. Never in a message.
    std::string token;
    /// The commit message for `github://`.
    std::string message = "modelrepo: publish the model catalogue";
    /// Per HTTP request.
    std::chrono::milliseconds timeout{10'000};
};

struct PublishResult {
    /// False when the destination already held this catalogue (nothing was written;
    /// `generated_at` alone does not count as a change).
    bool changed = false;
    std::string destination; ///< the destination as messages show it (no secrets)
    std::string commit;      ///< `github://`: the new commit's sha, when changed
    int writes = 0;          ///< PUTs or file writes made (2 after a sha conflict)
};

/// Stores `snapshot` as snapshot JSON (`write_snapshot()`) at `destination`:
///
/// - `file:///absolute/path.json`: written atomically (a temporary file beside it,
///   fsync'ed, renamed over it).
/// - `github://OWNER/REPO/PATH@BRANCH[?api_base=URL]`: through the contents API: GET the
///   current file (its blob sha), PUT the new content with that sha on BRANCH (one
///   commit); nothing when unchanged. A sha conflict (HTTP 409 or 422: someone committed
///   in between) reads the file again and retries once. Needs a token
///   (`PublishOptions::token` or `$GITHUB_TOKEN`) that may write contents.
///
/// Errors: `Errc::invalid_argument` (an unusable destination, no token),
/// `Errc::auth_failed` (HTTP 401), `Errc::http_status` (403, 404: no such repository
/// or branch, or the token may not write; a second conflict), `Errc::rate_limited`,
/// `Errc::unreachable`, `Errc::timeout`, `Errc::bad_data` (an answer that is not the
/// contents API's), `Errc::io_error` (file), `Errc::not_supported` (github:// in a build
/// without libcurl).
///
/// Thread safety: independent calls may run concurrently; two publishers of one
/// destination race like any two committers (the loser retries once, then fails).
Result<PublishResult> publish_snapshot(const Snapshot& snapshot, std::string_view destination,
                                       const PublishOptions& options = {});

} // namespace modelrepo
