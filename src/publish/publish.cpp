// SPDX-License-Identifier: MIT
// publish_snapshot(): the destination's scheme picks the writer; file:// is here.
#include "publish.hpp"

#include "../core/files.hpp"

namespace modelrepo {

namespace detail {

std::string publish_text(const Snapshot& snapshot) {
    return write_snapshot(sorted_by_slug(snapshot));
}

bool same_catalogue(std::string_view stored, const Snapshot& snapshot) {
    auto parsed = parse_snapshot(stored);
    if (!parsed)
        return false;
    Snapshot before = std::move(parsed).value();
    before.generated_at = snapshot.generated_at;
    return publish_text(before) == publish_text(snapshot);
}

} // namespace detail

namespace {

constexpr std::size_t max_stored_bytes = 64 * 1024 * 1024;

Error invalid(std::string_view destination, const std::string& what) {
    return make_error(Errc::invalid_argument,
                      "cannot publish to '" + detail::redact_url(destination) + "': " + what);
}

Result<PublishResult> publish_file(const Snapshot& snapshot, const detail::Uri& uri,
                                   std::string_view destination) {
    if (!uri.authority.empty() && uri.authority != "localhost")
        return invalid(destination, "expected file:///absolute/path.json (no host)");
    auto path = detail::percent_decode(uri.path);
    if (!path || path->empty() || path->front() != '/')
        return invalid(destination, "expected file:///absolute/path.json");
    PublishResult result;
    result.destination = "file://" + *path;
    std::error_code ec;
    if (std::filesystem::exists(*path, ec)) {
        auto stored = detail::read_file_limited(*path, max_stored_bytes);
        if (stored && detail::same_catalogue(stored.value(), snapshot))
            return result;
    }
    if (auto written = detail::write_file_atomically(*path, detail::publish_text(snapshot),
                                                     /*durable=*/true);
        !written)
        return written.error();
    result.changed = true;
    result.writes = 1;
    return result;
}

} // namespace

Result<PublishResult> publish_snapshot(const Snapshot& snapshot, std::string_view destination,
                                       const PublishOptions& options) {
    if (auto valid = validate(snapshot); !valid)
        return valid.error();
    auto parsed = detail::parse_uri(destination);
    if (!parsed)
        return parsed.error();
    const detail::Uri& uri = parsed.value();
    if (uri.scheme == "file")
        return publish_file(snapshot, uri, destination);
    if (uri.scheme == "github") {
#if MODELREPO_HAS_GITHUB
        return detail::publish_github(snapshot, uri, destination, options);
#else
        (void)options;
        return make_error(Errc::not_supported,
                          "publishing to github:// needs a build with libcurl (the GitHub "
                          "backend); this one has none");
#endif
    }
    return invalid(destination, "expected github://OWNER/REPO/PATH@BRANCH or file:///path.json");
}

} // namespace modelrepo
