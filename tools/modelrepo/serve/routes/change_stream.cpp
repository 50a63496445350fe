// SPDX-License-Identifier: MIT
#include "change_stream.hpp"

#include <algorithm>
#include <charconv>

#include "../../json_form.hpp"
#include "answers.hpp"

namespace modelrepo::serve {

using std::chrono::system_clock;

ChangeStream::ChangeStream(std::shared_ptr<FallbackRepository> c, ChangeStreamOptions o)
    : chain_(std::move(c))
    , options_(o) {}

ChangeStream::~ChangeStream() {
    std::vector<std::shared_ptr<EventStream>> open;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        open.swap(streams_);
    }
    wake_.notify_all();
    if (heartbeat_.joinable())
        heartbeat_.join();
    if (subscription_)
        subscription_->cancel();
    for (auto& stream : open)
        stream->close();
}

void ChangeStream::add_to(RouteTable& table) {
    table.add({"GET",
               "/v1/changes",
               Lane::read,
               Scope::read,
               "the catalogue's changes as server-sent events (resumes after Last-Event-ID)",
               [this](const RouteCall& c) {
                   return c.head ? Response{200, "text/event-stream", {}, {}, {}, {}}
                                 : changes(c.request, c.query);
               },
               [this](const Request&) { return in_memory(); },
               {"ChangeEvent",
                "text/event-stream",
                {{"since", "resume after this version (as Last-Event-ID does)", false, "integer"}},
                {},
                {400}}});
}

bool ChangeStream::in_memory() const {
    std::lock_guard lock(mutex_);
    return subscription_ || chain_->reads_from_memory();
}

std::size_t ChangeStream::streams() const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(streams_.begin(), streams_.end(),
                      [](const std::shared_ptr<EventStream>& s) { return s->is_open(); }));
}

/// Sends `text` to every stream; kept for resuming streams when it has a version.
void ChangeStream::broadcast(std::shared_ptr<const std::string> text, std::int64_t version) {
    std::lock_guard lock(mutex_);
    if (version > 0 && options_.replay_events > 0) {
        recent_.emplace_back(version, text);
        while (recent_.size() > options_.replay_events)
            recent_.pop_front();
    }
    std::erase_if(streams_, [&](const std::shared_ptr<EventStream>& s) { return !s->send(text); });
}

void ChangeStream::on_change(const CatalogChange& change) {
    std::string id;
    if (change.version > 0) {
        id = "id: " + std::to_string(change.version) + "\n";
        std::lock_guard lock(mutex_);
        latest_version_ = std::max(latest_version_, change.version);
    } else if (change.kind == CatalogChange::Kind::resync) {
        // What happened before it is not known change by change: a stream resuming
        // from before it gets a resync too. Streams resume after it from a point of
        // its own (its id), so that a reconnect does not resync again.
        std::lock_guard lock(mutex_);
        recent_.clear();
        if (auto point = resume_point(); point > 0)
            id = "id: " + std::to_string(point) + "\n";
    }
    std::string event = id;
    if (change.kind == CatalogChange::Kind::resync)
        event += "event: resync\n";
    event += "data: " + to_json(change) + "\n\n";
    broadcast(std::make_shared<const std::string>(std::move(event)), change.version);
}

/// Where a stream told to resync resumes from (its id; 0 when nothing is known): the
/// last event kept, else the newest version seen (or the copy's), kept as a point with
/// nothing to replay. Under `mutex`.
std::int64_t ChangeStream::resume_point() {
    if (!recent_.empty())
        return recent_.back().first;
    std::int64_t point = latest_version_;
    if (point <= 0)
        if (auto* copy = chain_->capability<CopyControl>())
            point = copy->copy_state().version;
    if (point > 0 && options_.replay_events > 0)
        recent_.emplace_back(point, nullptr);
    return point;
}

/// A stream resuming after `since`: what it missed from the events kept, or, when they
/// do not reach back that far (or this server never saw `since`), one resync telling
/// it to read again. Events are kept in the order they were sent, which is not always
/// version order (a transaction can commit after one with a later version): what
/// follows the last event with id `since` is what the stream missed. Under `mutex`, so
/// that nothing is sent twice or missed.
void ChangeStream::resume(EventStream& stream, std::int64_t since) {
    auto seen = std::find_if(recent_.rbegin(), recent_.rend(),
                             [&](const auto& event) { return event.first == since; });
    if (seen == recent_.rend()) {
        CatalogChange resync;
        resync.kind = CatalogChange::Kind::resync;
        resync.at = system_clock::now();
        // With an id to resume from, so that the next reconnect resumes there (also
        // after a restart, when nothing is kept yet).
        std::int64_t point = resume_point();
        std::string id = point > 0 ? "id: " + std::to_string(point) + "\n" : "";
        stream.send(std::make_shared<const std::string>(
            id + "event: resync\ndata: " + to_json(resync) + "\n\n"));
        return;
    }
    for (auto next = seen.base(); next != recent_.end(); ++next)
        if (next->second)
            stream.send(next->second);
}

void ChangeStream::beat() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        wake_.wait_for(lock, options_.heartbeat);
        if (stopping_)
            break;
        lock.unlock();
        broadcast(std::make_shared<const std::string>(": heartbeat\n\n"));
        lock.lock();
    }
}

Response ChangeStream::changes(const Request& request, const std::vector<QueryParam>& query) {
    std::optional<std::int64_t> since;
    std::string given = request.last_event_id;
    for (const auto& param : query) {
        if (param.key != "since")
            return error_answer(400, "invalid_argument",
                                "unknown query parameter '" + param.key +
                                    "' (this path takes since=VERSION)");
        given = param.value;
    }
    if (!given.empty()) {
        std::int64_t v = 0;
        auto [end, ec] = std::from_chars(given.data(), given.data() + given.size(), v);
        if (ec != std::errc() || end != given.data() + given.size() || v < 0)
            return error_answer(400, "invalid_argument",
                                "Last-Event-ID and since= take a version (the id: of an "
                                "event), not '" +
                                    given + "'");
        since = v;
    }
    std::unique_lock lock(mutex_);
    std::erase_if(streams_, [](const std::shared_ptr<EventStream>& s) { return !s->is_open(); });
    if (streams_.size() >= options_.max_streams)
        return error_answer(429, "too_many_connections",
                            "this server keeps at most " + std::to_string(options_.max_streams) +
                                " change streams open; try again later");
    if (!subscription_) {
        lock.unlock(); // watch() may deliver at once, on another thread, into broadcast()
        auto sub = chain_->watch([this](const CatalogChange& change) { on_change(change); });
        if (!sub)
            return error_answer(sub.error());
        lock.lock();
        if (!subscription_) {
            subscription_.emplace(std::move(sub).value());
            heartbeat_ = std::thread([this] { beat(); });
        }
    }
    Response answer;
    answer.on_stream = [this, since](std::shared_ptr<EventStream> stream) {
        // retry: how long EventSource clients wait before they reconnect.
        stream->send(std::make_shared<const std::string>("retry: 1000\n: connected\n\n"));
        std::lock_guard lock(mutex_);
        if (stopping_ || streams_.size() >= options_.max_streams)
            return stream->close();
        if (since)
            resume(*stream, *since);
        streams_.push_back(std::move(stream));
    };
    return answer;
}

} // namespace modelrepo::serve
