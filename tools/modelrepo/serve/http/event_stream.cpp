// SPDX-License-Identifier: MIT
// A server-sent-event stream: the header, then the queued events, all that are queued in one
// chunk and one write (one post to the strand takes all that came meanwhile); a client that
// does not keep up is dropped, never waited for; a one-byte read notices it leaving.
#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "session.hpp"

namespace modelrepo::serve {

bool Session::send(std::shared_ptr<const std::string> text) {
    if (!stream_open_.load())
        return false;
    if (queued_.fetch_add(1) >= server_.options.stream_queue_limit) {
        queued_.fetch_sub(1);
        server_.count(Rejected::slow_stream);
        close();
        return false;
    }
    bool first = false;
    {
        std::lock_guard lock(inbox_mutex_);
        first = inbox_.empty();
        inbox_.push_back(std::move(text));
    }
    if (first)
        net::post(stream_.get_executor(), [self = shared_from_this()] { self->take_inbox(); });
    return true;
}

void Session::take_inbox() {
    {
        std::lock_guard lock(inbox_mutex_);
        for (auto& text : inbox_)
            queue_.push_back(std::move(text));
        inbox_.clear();
    }
    pump();
}

void Session::close() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->end_stream(); });
}

void Session::start_stream(Response response, unsigned version) {
    state_ = State::streaming;
    stream_attach_ = std::move(response.on_stream);
    response.content_type = "text/event-stream";
    auto named = [&](beast::string_view name) {
        return std::any_of(response.headers.begin(), response.headers.end(),
                           [&](const auto& h) { return beast::iequals(h.first, name); });
    };
    if (!named("Cache-Control"))
        response.headers.emplace_back("Cache-Control", "no-cache");
    // Chunked, and the connection ends with the stream.
    format_head(head_, response, version, /*keep_alive=*/false, std::nullopt);
    stream_.expires_after(server_.options.write_timeout);
    net::async_write(stream_, net::buffer(head_),
                     beast::bind_front_handler(&Session::on_stream_head, shared_from_this()));
}

void Session::on_stream_head(beast::error_code ec, std::size_t bytes) {
    log(200, bytes);
    if (ec)
        return teardown();
    stream_.expires_never();
    stream_open_.store(true);
    watch_peer();
    auto attach = std::move(stream_attach_);
    attach(shared_from_this());
    // Counted once attached: a client that sees the count (modelrepo_serve_streams) and
    // then makes a change gets that change (before, it could be counted before its route
    // had it, and miss it).
    was_stream_ = true;
    server_.streams.fetch_add(1);
    if (server_.stopping.load())
        end_stream();
}

void Session::watch_peer() {
    stream_.async_read_some(
        net::buffer(scratch_),
        [self = shared_from_this()](beast::error_code, std::size_t) { self->teardown(); });
}

void Session::pump() {
    if (writing_ || queue_.empty() || !stream_open_.load())
        return;
    writing_ = true;
    // What is queued goes as one chunk in one write (a batch of events, one syscall).
    constexpr std::size_t most = 60; // with the chunk's head and end, within one writev (64)
    in_flight_ = std::min(queue_.size(), most);
    std::vector<net::const_buffer> events;
    events.reserve(in_flight_);
    for (std::size_t i = 0; i < in_flight_; ++i)
        events.push_back(net::buffer(*queue_[i]));
    server_.stream_events.fetch_add(in_flight_, std::memory_order_relaxed);
    server_.stream_writes.fetch_add(1, std::memory_order_relaxed);
    stream_.expires_after(server_.options.write_timeout);
    net::async_write(stream_, http::make_chunk(std::move(events)),
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                         self->writing_ = false;
                         for (; self->in_flight_ > 0; --self->in_flight_) {
                             self->queue_.pop_front();
                             self->queued_.fetch_sub(1);
                         }
                         if (ec)
                             return self->teardown();
                         if (self->ending_)
                             return self->write_last_chunk();
                         self->stream_.expires_never();
                         self->pump();
                     });
}

void Session::end_stream() {
    if (!stream_open_.exchange(false) || ending_)
        return;
    ending_ = true;
    // What was queued but not started is dropped: the client is told the stream
    // ended (the last chunk) and reconnects.
    while (queue_.size() > (writing_ ? in_flight_ : 0u)) {
        queue_.pop_back();
        queued_.fetch_sub(1);
    }
    if (!writing_)
        write_last_chunk();
}

void Session::write_last_chunk() {
    stream_.expires_after(std::chrono::seconds(2));
    net::async_write(
        stream_, http::make_chunk_last(),
        [self = shared_from_this()](beast::error_code, std::size_t) { self->teardown(); });
}

void Session::teardown() {
    stream_open_.store(false);
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    finished();
}

} // namespace modelrepo::serve
