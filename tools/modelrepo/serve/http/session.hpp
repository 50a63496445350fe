// SPDX-License-Identifier: MIT
// One connection of HttpServer, all of its work on its own strand. Its jobs are in a file
// each: the connection's life and the lanes its requests run on (session.cpp), reading a
// request within its limits and deadline (request_reader.cpp), writing an answer whole or
// in parts (response_writer.cpp), and the server-sent-event stream (event_stream.cpp).
// For serve/http only.
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "flex_stream.hpp"
#include "listener.hpp"

namespace modelrepo::serve {

/// The head of an answer as HTTP/1.x text, into `out` (its capacity kept from answer to
/// answer): the status line, Server, Content-Type, the answer's headers in order (one may
/// come twice; one with CR, LF or NUL in it is left out), then Content-Length (`length`)
/// or, without one, chunked (neither for 1xx, 204 and 304); Connection when it is not the
/// version's default. What Beast's serializer wrote, without a field container and a
/// serializer per answer.
void format_head(std::string& out, const Response& response, unsigned version, bool keep_alive,
                 std::optional<std::size_t> length);

class Session : public std::enable_shared_from_this<Session>, public EventStream {
public:
    Session(tcp::socket socket, HttpServer::Listener& server)
        : stream_(std::move(socket), server.tls())
        , server_(server) {
        beast::error_code ec;
        auto peer = stream_.socket().remote_endpoint(ec);
        if (!ec)
            remote_ = (peer.address().is_v6() ? "[" + peer.address().to_string() + "]"
                                              : peer.address().to_string()) +
                      ":" + std::to_string(peer.port());
    }

    ~Session() override { finished(); }

    /// The connection is closed: shutdown() no longer waits for it (whoever still holds
    /// the session, an event-stream subscriber, may drop it later).
    void finished();

    /// Gives back its place under max_connections (or among the refused); once. Under
    /// the server's mutex.
    void release_slot();

    /// Registers with the server and reads. `over_limit`: the server is full, and the
    /// request this connection sends is answered 503 (under the server's mutex).
    void start(bool over_limit);

    /// Claims this connection for closing when it waits for its next request (false:
    /// it does not, or another claimed it). Under the server's mutex.
    bool claim_idle();

    /// From shutdown(): idle connections and streams end; a request being handled
    /// finishes, and its connection closes after the answer.
    void stop();

    // EventStream
    bool send(std::shared_ptr<const std::string> text) override;
    bool is_open() const noexcept override { return stream_open_.load(); }
    void close() override;

private:
    enum class State { reading, handling, writing, streaming };

    // --- requests ---------------------------------------------------------------------

    /// TLS: the handshake, within the request timeout, then read_request().
    void handshake();

    void read_request();

    void on_header(beast::error_code ec, std::size_t);

    void read_body();

    void on_body(beast::error_code ec, std::size_t);

    void on_read_error(beast::error_code ec);

    /// An answer from the transport (the request was not read whole): sent, then the
    /// connection is closed.
    void refuse(int status, std::string_view code, const std::string& message,
                bool retry_after = false);

    void handle();

    Response call_handler(const Request& request);

    /// A request on a worker lane: queued (503 when the queue is full), answered by the
    /// worker, or at the deadline with 503 (it never started) or 504 (it is still running;
    /// its late answer is dropped).
    struct Job {
        enum : int { queued, running, late, done };
        std::atomic<int> state{queued};
        Request request;
    };

    void hand_to(Lane lane);

    /// Writes the handler's answer (or starts its stream), on the strand.
    void answer(Response response);

    /// Starts writing an answer: its status and keep-alive kept for the log and what comes
    /// after, its head formatted into head_, the write timeout set.
    void begin_answer(const Response& response, unsigned version, bool keep_alive,
                      std::optional<std::size_t> length);

    /// Writes a whole answer: its head (with the Content-Length `length`; a HEAD's body is
    /// already empty) and its body, in one write.
    void write(Response response, unsigned version, bool keep_alive, std::size_t length);

    /// After an answer is written (or failed to be): the next request on a kept-alive
    /// connection, else the connection's end.
    void next_request(beast::error_code ec, bool keep_alive);

    void log(int status, std::size_t bytes);

    /// Ends the connection after an answer: our side first, so the client reads all of
    /// it; then whatever the client still sends is drained for a moment rather than
    /// answered with a reset that could destroy the answer in flight.
    void close_connection();

    void drain();

    // --- answers made as they are written ----------------------------------------------

    void start_parts(Response response, unsigned version, bool keep_alive);

    /// Writes the header of an answer made as it is written or of a shared body: with
    /// the Content-Length `length`, or chunked without one; then calls `then` (or
    /// parts_done() with the error).
    void write_head(const Response& response, unsigned version, bool keep_alive,
                    std::optional<std::size_t> length, void (Session::*then)());

    /// Writes the part made, then makes the next; the last chunk after the last part.
    void write_part();

    void parts_done(beast::error_code ec);

    /// A shared body: the header (with its Content-Length), then the body from where it
    /// is kept, no copy (`head`: the header alone).
    void start_shared(Response response, unsigned version, bool keep_alive, bool head);
    void head_done(); ///< a HEAD of a shared body: the header was all

    // --- event streams ----------------------------------------------------------------

    void start_stream(Response response, unsigned version);

    void on_stream_head(beast::error_code ec, std::size_t bytes);

    /// Nothing is expected from the client of a stream: a read that completes means it
    /// left (or sent something it should not have; both end the stream).
    void watch_peer();

    /// On the strand: moves what send() left in the inbox to the queue, and writes.
    void take_inbox();
    /// On the strand: writes what is queued (all of it, up to 60 events, as one chunk)
    /// unless a write is under way.
    void pump();

    void end_stream();

    void write_last_chunk();

    void teardown();

    FlexStream stream_;
    HttpServer::Listener& server_;
    std::string remote_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    State state_ = State::reading;
    bool header_done_ = false;
    Request request_;
    steady_clock::time_point started_{};
    net::steady_timer deadline_{stream_.get_executor()}; ///< of a request on a worker lane
    std::string head_;        ///< the head of the answer being written (capacity kept)
    std::string body_;        ///< the body of a whole answer being written
    int status_ = 0;          ///< of the answer being written
    bool keep_alive_ = false; ///< of the answer being written
    std::array<char, 512> scratch_{};

    std::function<bool(std::string&)> parts_; ///< an answer being made as it is written
    std::string part_;                        ///< the part being written
    bool parts_more_ = false;                 ///< parts_ has more to make
    std::size_t parts_bytes_ = 0;
    std::shared_ptr<const std::string> shared_body_; ///< a shared body being written

    bool was_stream_ = false;
    std::function<void(std::shared_ptr<EventStream>)> stream_attach_;
    std::deque<std::shared_ptr<const std::string>> queue_; ///< the strand's
    /// Events sent from other threads, not yet taken by the strand: one post takes all
    /// that came meanwhile.
    std::mutex inbox_mutex_;
    std::vector<std::shared_ptr<const std::string>> inbox_; ///< inbox_mutex_
    bool writing_ = false;                                  ///< the strand's
    std::size_t in_flight_ = 0; ///< the strand's: events in the write under way
    bool ending_ = false;       ///< the strand's
    std::atomic<bool> stream_open_{false};
    std::atomic<bool> registered_{false};
    std::atomic<bool> idle_{false}; ///< waiting for a request's first bytes: may be shed
    bool shed_ = false;             ///< the strand's: closed to make room
    bool over_limit_ = false;       ///< set before the first read: answered 503
    bool counted_ = false;          ///< the server's mutex: holds a place (release_slot)
    std::atomic<std::size_t> queued_{0};
};

} // namespace modelrepo::serve
