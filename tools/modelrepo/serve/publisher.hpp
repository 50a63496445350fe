// SPDX-License-Identifier: MIT
// `modelrepo serve --publish DEST`: a thread that stores the catalogue at DEST after it
// changes, at most once per interval, so the backup follows the database by itself.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <modelrepo/fallback_repository.hpp>
#include <modelrepo/publish.hpp>

namespace modelrepo::serve {

struct PublisherOptions {
    std::string destination; ///< github://… or file:///… (publish_snapshot())
    /// At most one publish per interval; the first is made at start.
    std::chrono::milliseconds interval{std::chrono::minutes(5)};
    PublishOptions publish;
    /// One line per publish or failure (the log), on the publisher's thread.
    std::function<void(const std::string&)> log;
};

/// Publishes what the chain's first source holds: at start, then after each change the
/// chain reports (watch()), at most once per `interval`. Without a change feed (a
/// source that cannot watch) it publishes once per interval, which writes only when
/// the catalogue differs. An export answered by a backup is never published (it would
/// overwrite the backup with itself, or with something older): it is retried later.
///
/// Thread safety: metrics() may be called from any thread.
class Publisher {
public:
    /// Errors: `Errc::invalid_argument` for an unusable destination (checked at start).
    static Result<std::unique_ptr<Publisher>> start(std::shared_ptr<FallbackRepository> chain,
                                                    PublisherOptions options);
    /// Stops the thread; a publish in progress finishes first (its own timeouts bound it).
    ~Publisher();
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    /// `modelrepo_publish_total{result="changed|unchanged|failed|skipped"}`,
    /// `modelrepo_publish_last_success_timestamp_seconds`.
    std::vector<MetricFamily> metrics() const;

    struct Impl;

private:
    explicit Publisher(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// "5m", "30s", "1500ms", "1h": a duration for --publish-interval. nullopt otherwise.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

} // namespace modelrepo::serve
