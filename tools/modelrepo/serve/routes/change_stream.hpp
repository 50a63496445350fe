// SPDX-License-Identifier: MIT
// GET /v1/changes: the chain's changes as server-sent events. One subscription to the
// chain, made for the first stream, fanned out to every open stream; the last events kept
// so that a stream resuming (Last-Event-ID, since=) gets what it missed, else a resync; a
// heartbeat keeps idle streams alive.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <modelrepo/fallback_repository.hpp>

#include "route_table.hpp"

namespace modelrepo::serve {

struct ChangeStreamOptions {
    std::size_t max_streams = 256;               ///< clients; more: 429
    std::chrono::milliseconds heartbeat{15'000}; ///< a comment on every stream this often
    std::size_t replay_events = 10'000;          ///< the last events kept for resuming
};

/// Thread safety: its calls may run on several threads at once; events arrive on the
/// chain's delivery thread.
class ChangeStream {
public:
    ChangeStream(std::shared_ptr<FallbackRepository> chain, ChangeStreamOptions options);
    /// Ends every stream and the subscription behind them.
    ~ChangeStream();
    ChangeStream(const ChangeStream&) = delete;
    ChangeStream& operator=(const ChangeStream&) = delete;

    void add_to(RouteTable& table);
    Response changes(const Request& request, const std::vector<QueryParam>& query);
    /// Streams open now.
    std::size_t streams() const;

private:
    void broadcast(std::shared_ptr<const std::string> text, std::int64_t version = 0);
    void on_change(const CatalogChange& change);
    std::int64_t resume_point();
    void resume(EventStream& stream, std::int64_t since);
    void beat();
    /// A new stream only joins the fan-out once subscribed (or when the chain reads from
    /// memory): then it runs on the I/O thread.
    bool in_memory() const;

    std::shared_ptr<FallbackRepository> chain_;
    ChangeStreamOptions options_;
    // GET /v1/changes: one subscription to the chain, made for the first stream, fanned
    // out to every open stream; a heartbeat thread keeps idle streams alive.
    mutable std::mutex mutex_; ///< guards all below
    std::vector<std::shared_ptr<EventStream>> streams_;
    /// The last events with a version, oldest first, for streams that resume. A null text
    /// marks a resume point with nothing to replay at it (after a resync with no version,
    /// or before the first change).
    std::deque<std::pair<std::int64_t, std::shared_ptr<const std::string>>> recent_;
    /// The highest version any change carried (resyncs included).
    std::int64_t latest_version_ = 0;
    std::optional<Subscription> subscription_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread heartbeat_;
};

} // namespace modelrepo::serve
