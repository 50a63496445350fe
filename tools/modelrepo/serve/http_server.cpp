// SPDX-License-Identifier: MIT
// HttpServer on Boost.Beast. One Session per connection, all of its work on its own
// strand: read a request (header, then body, both under one deadline), call the
// handler, write the answer, read the next one; or, for an event stream, write the
// header and then chunks as they are queued, while a one-byte read notices the client
// leaving.
#include "http_server.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "work_pool.hpp"

namespace modelrepo::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::steady_clock;

std::string error_body(std::string_view code, std::string_view message) {
    nlohmann::ordered_json body;
    body["error"] = {{"code", code}, {"message", message}};
    return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

class Session;

/// Why a connection was closed or a request refused by the transport itself.
enum class Rejected {
    timeout,
    body_too_large,
    header_too_large,
    malformed,
    connections,
    slow_stream,
    queue_full,
    deadline
};
constexpr std::array<const char*, 8> rejected_names{
    "timeout",     "body_too_large", "header_too_large", "malformed",
    "connections", "slow_stream",    "queue_full",       "deadline"};

/// How long a connection over the limit may take to send the request its 503 answers.
constexpr std::chrono::seconds refusal_read_timeout{2};
/// accept() failed for want of descriptors (or memory): wait this long before the next.
constexpr std::chrono::milliseconds accept_backoff{100};
/// …and close this many idle connections to make room.
constexpr int shed_on_backoff = 8;

} // namespace

struct HttpServer::Impl {
    Impl(ServerOptions o, Handler h)
        : options(std::move(o))
        , handler(std::move(h)) {}
    ~Impl() { shutdown(); }

    ServerOptions options;
    Handler handler;
    std::atomic<bool> stopping{false};

    std::mutex mutex; ///< guards sessions, admitted, refusing, shut_down
    std::condition_variable sessions_gone;
    std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
    std::size_t admitted = 0; ///< sessions under max_connections (the others are refused)
    std::size_t refusing = 0; ///< sessions over it, being answered 503
    bool shut_down = false;

    std::atomic<std::uint64_t> idle_closed{0};
    std::atomic<std::uint64_t> accept_backoffs{0};
    std::unique_ptr<WorkPool> read_pool, write_pool;

    std::atomic<std::size_t> streams{0};
    std::array<std::atomic<std::uint64_t>, 600> answers{}; ///< by HTTP status
    std::array<std::atomic<std::uint64_t>, rejected_names.size()> rejected{};

    // Declared after what sessions touch in their destructors: the io_context destroys
    // the sessions its handlers still hold when it goes, and they unregister.
    net::io_context ioc;
    tcp::acceptor acceptor{net::make_strand(ioc)};
    net::steady_timer accept_timer{acceptor.get_executor()};
    std::vector<std::thread> threads;

    void count(Rejected why) { rejected[static_cast<std::size_t>(why)].fetch_add(1); }
    void count_answer(int status) {
        if (status >= 0 && status < static_cast<int>(answers.size()))
            answers[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
    }

    WorkPool* pool(Lane lane) { return lane == Lane::write ? write_pool.get() : read_pool.get(); }

    void accept();
    void on_accept(beast::error_code ec, tcp::socket socket);
    /// Closes one idle keep-alive connection (true), to make room; under `mutex`.
    bool shed_idle();
    void shutdown();
};

namespace {

/// Beast 1.74 speaks boost::string_view.
std::string_view view(beast::string_view text) {
    return {text.data(), text.size()};
}

class Session : public std::enable_shared_from_this<Session>, public EventStream {
public:
    Session(tcp::socket socket, HttpServer::Impl& server)
        : stream_(std::move(socket))
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
    void finished() {
        if (!registered_.exchange(false))
            return;
        if (was_stream_)
            server_.streams.fetch_sub(1);
        std::lock_guard lock(server_.mutex);
        release_slot();
        server_.sessions.erase(this);
        if (server_.sessions.empty())
            server_.sessions_gone.notify_all();
    }

    /// Gives back its place under max_connections (or among the refused); once. Under
    /// the server's mutex.
    void release_slot() {
        if (!counted_)
            return;
        counted_ = false;
        if (over_limit_)
            --server_.refusing;
        else
            --server_.admitted;
    }

    /// Registers with the server and reads. `over_limit`: the server is full, and the
    /// request this connection sends is answered 503 (under the server's mutex).
    void start(bool over_limit) {
        over_limit_ = over_limit;
        counted_ = true;
        ++(over_limit ? server_.refusing : server_.admitted);
        server_.sessions.emplace(this, weak_from_this());
        registered_.store(true);
        net::dispatch(stream_.get_executor(),
                      beast::bind_front_handler(&Session::read_request, shared_from_this()));
    }

    /// Claims this connection for closing when it waits for its next request (false:
    /// it does not, or another claimed it). Under the server's mutex.
    bool claim_idle() {
        if (!idle_.exchange(false))
            return false;
        release_slot();
        net::post(stream_.get_executor(), [self = shared_from_this()] {
            if (self->state_ == State::reading && !self->header_done_) {
                self->shed_ = true;
                self->stream_.cancel();
            }
        });
        return true;
    }

    /// From shutdown(): idle connections and streams end; a request being handled
    /// finishes, and its connection closes after the answer.
    void stop() {
        net::post(stream_.get_executor(), [self = shared_from_this()] {
            if (self->state_ == State::reading && !self->header_done_)
                self->stream_.cancel(); // the read ends with operation_aborted
            else if (self->state_ == State::streaming)
                self->end_stream();
        });
    }

    // EventStream
    bool send(std::shared_ptr<const std::string> text) override {
        if (!stream_open_.load())
            return false;
        if (queued_.fetch_add(1) >= server_.options.stream_queue_limit) {
            queued_.fetch_sub(1);
            server_.count(Rejected::slow_stream);
            close();
            return false;
        }
        net::post(stream_.get_executor(), [self = shared_from_this(), text = std::move(text)] {
            self->queue_.push_back(text);
            self->pump();
        });
        return true;
    }
    bool is_open() const noexcept override { return stream_open_.load(); }
    void close() override {
        net::post(stream_.get_executor(), [self = shared_from_this()] { self->end_stream(); });
    }

private:
    enum class State { reading, handling, writing, streaming };

    // --- requests ---------------------------------------------------------------------

    void read_request() {
        state_ = State::reading;
        header_done_ = false;
        if (server_.stopping.load() || shed_)
            return close_connection();
        parser_.emplace();
        parser_->body_limit(server_.options.max_body_bytes);
        parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
        stream_.expires_after(over_limit_
                                  ? std::min<std::chrono::milliseconds>(
                                        server_.options.request_timeout, refusal_read_timeout)
                                  : server_.options.request_timeout);
        // A kept-alive connection waiting for its next request may be closed to make
        // room; so may a new one that has not sent a request yet.
        idle_.store(!over_limit_);
        http::async_read_header(stream_, buffer_, *parser_,
                                beast::bind_front_handler(&Session::on_header, shared_from_this()));
    }

    void on_header(beast::error_code ec, std::size_t) {
        idle_.store(false);
        if (ec)
            return on_read_error(ec);
        header_done_ = true;
        started_ = steady_clock::now();
        if (over_limit_) {
            server_.count(Rejected::connections);
            return refuse(503, "too_many_connections",
                          "this server has its limit of " +
                              std::to_string(server_.options.max_connections) +
                              " connections open (--max-connections); try again shortly",
                          /*retry_after=*/true);
        }
        auto& request = parser_->get();
        if (parser_->is_done())
            return handle();
        if (beast::iequals(request[http::field::expect], "100-continue")) {
            auto interim = std::make_shared<http::response<http::empty_body>>(
                http::status::continue_, request.version());
            http::async_write(
                stream_, *interim,
                [self = shared_from_this(), interim](beast::error_code e, std::size_t) {
                    if (e)
                        return self->close_connection();
                    self->read_body();
                });
            return;
        }
        read_body();
    }

    void read_body() {
        // Under the deadline set for the header: one budget for the whole request.
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&Session::on_body, shared_from_this()));
    }

    void on_body(beast::error_code ec, std::size_t) {
        if (ec)
            return on_read_error(ec);
        handle();
    }

    void on_read_error(beast::error_code ec) {
        if (ec == net::error::operation_aborted && (server_.stopping.load() || shed_)) {
            if (shed_)
                server_.idle_closed.fetch_add(1, std::memory_order_relaxed);
            // An idle connection at shutdown: nothing of an answer is in flight.
            beast::error_code ignored;
            stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
            stream_.close();
            return finished();
        }
        if (ec == http::error::end_of_stream || ec == net::error::eof ||
            ec == net::error::operation_aborted || ec == net::error::connection_reset)
            return close_connection();
        if (ec == beast::error::timeout) {
            server_.count(Rejected::timeout); // the stream closed the socket
            return finished();
        }
        if (ec == http::error::body_limit) {
            server_.count(Rejected::body_too_large);
            return refuse(413, "bad_data",
                          "the request body is larger than the limit of " +
                              std::to_string(server_.options.max_body_bytes) + " bytes");
        }
        if (ec == http::error::header_limit) {
            server_.count(Rejected::header_too_large);
            return refuse(431, "bad_data",
                          "the request's headers are larger than the limit of " +
                              std::to_string(server_.options.max_header_bytes) + " bytes");
        }
        server_.count(Rejected::malformed);
        refuse(400, "invalid_argument",
               "not a well-formed HTTP/1.1 request (" + ec.message() + ")");
    }

    /// An answer from the transport (the request was not read whole): sent, then the
    /// connection is closed.
    void refuse(int status, std::string_view code, const std::string& message,
                bool retry_after = false) {
        if (!header_done_) {
            request_ = Request{};
            request_.remote = remote_;
            if (parser_) { // what of the header was parsed, for the log
                request_.method = std::string(parser_->get().method_string());
                request_.path = std::string(parser_->get().target());
            }
        }
        started_ = steady_clock::now();
        auto answer = std::make_shared<http::response<http::string_body>>(
            static_cast<http::status>(status), 11);
        answer->set(http::field::server, "modelrepo");
        answer->set(http::field::content_type, "application/json");
        answer->body() = error_body(code, message);
        if (retry_after)
            answer->set(http::field::retry_after, "1");
        answer->keep_alive(false);
        answer->prepare_payload();
        write(std::move(answer));
    }

    void handle() {
        state_ = State::handling;
        auto& message = parser_->get();
        request_.method = std::string(message.method_string());
        std::string_view target = view(message.target());
        auto question = target.find('?');
        request_.path = std::string(target.substr(0, question));
        request_.query = question == std::string_view::npos
                             ? std::string()
                             : std::string(target.substr(question + 1));
        request_.authorization = std::string(message[http::field::authorization]);
        request_.if_none_match = std::string(message[http::field::if_none_match]);
        request_.last_event_id = std::string(message["Last-Event-ID"]);
        request_.host = std::string(message[http::field::host]);
        request_.body = std::move(message.body());
        request_.remote = remote_;

        Lane lane = server_.options.lane ? server_.options.lane(request_) : Lane::io;
        if (lane == Lane::io || !server_.pool(lane))
            return answer(call_handler(request_));
        hand_to(lane);
    }

    Response call_handler(const Request& request) {
        try {
            return server_.handler(request);
        } catch (const std::exception& e) {
            return Response{500,
                            "application/json",
                            error_body("internal", std::string("the handler failed: ") + e.what()),
                            {},
                            {},
                            {}};
        }
    }

    /// A request on a worker lane: queued (503 when the queue is full), answered by the
    /// worker, or at the deadline with 503 (it never started) or 504 (it is still running;
    /// its late answer is dropped).
    struct Job {
        enum : int { queued, running, late, done };
        std::atomic<int> state{queued};
        Request request;
    };

    void hand_to(Lane lane) {
        auto job = std::make_shared<Job>();
        job->request = request_;
        request_.authorization.clear();
        request_.body.clear();
        WorkPool& pool = *server_.pool(lane);
        bool queued = pool.submit([self = shared_from_this(), job] {
            int expected = Job::queued;
            if (!job->state.compare_exchange_strong(expected, Job::running))
                return; // answered at its deadline
            Response response =
                self->server_.stopping.load()
                    ? Response{503,
                               "application/json",
                               error_body("unavailable", "the server is shutting down"),
                               {{"Retry-After", "1"}},
                               {},
                               {}}
                    : self->call_handler(job->request);
            job->request = Request{};
            net::post(self->stream_.get_executor(),
                      [self, job, response = std::move(response)]() mutable {
                          int running = Job::running;
                          if (!job->state.compare_exchange_strong(running, Job::done))
                              return;
                          self->deadline_.cancel();
                          self->answer(std::move(response));
                      });
        });
        if (!queued) {
            server_.count(Rejected::queue_full);
            return answer(Response{503,
                                   "application/json",
                                   error_body("too_many_connections",
                                              "all " + std::to_string(pool.threads()) + " " +
                                                  pool.name() + " workers are busy and " +
                                                  std::to_string(pool.max_queued()) +
                                                  " requests wait for them; try again shortly"),
                                   {{"Retry-After", "1"}},
                                   {},
                                   {}});
        }
        deadline_.expires_after(server_.options.deadline);
        deadline_.async_wait([self = shared_from_this(), job](beast::error_code ec) {
            if (ec)
                return; // answered in time
            int was = job->state.load();
            while (was < Job::late && !job->state.compare_exchange_weak(was, Job::late)) {
            }
            if (was >= Job::late)
                return;
            self->server_.count(Rejected::deadline);
            auto took = std::to_string(self->server_.options.deadline.count()) + " ms";
            self->answer(was == Job::queued
                             ? Response{503,
                                        "application/json",
                                        error_body("timeout", "the request waited " + took +
                                                                  " for a worker without starting"),
                                        {{"Retry-After", "1"}},
                                        {},
                                        {}}
                             : Response{504,
                                        "application/json",
                                        error_body("timeout",
                                                   "no answer within " + took +
                                                       " (the server's deadline): the database is "
                                                       "slow or locked; a write may still apply"),
                                        {},
                                        {},
                                        {}});
        });
    }

    /// Writes the handler's answer (or starts its stream), on the strand.
    void answer(Response response) {
        auto& message = parser_->get();
        request_.authorization.clear();
        request_.body.clear();
        if (response.on_stream)
            return start_stream(std::move(response), message.version());
        std::optional<std::size_t> head_length;
        if (response.parts) {
            bool more = response.parts(response.body);
            if (more && message.method() == http::verb::head) {
                // The length a GET would get, without keeping what it counts.
                std::size_t length = response.body.size();
                std::string part;
                while (more) {
                    more = response.parts(part);
                    length += part.size();
                    part.clear();
                }
                head_length = length;
            } else if (more && message.version() < 11) {
                while (more)
                    more = response.parts(response.body); // no chunks in HTTP/1.0
            } else if (more) {
                return start_parts(std::move(response), message.version(), message.keep_alive());
            }
        }

        auto answer = std::make_shared<http::response<http::string_body>>(
            static_cast<http::status>(response.status), message.version());
        answer->set(http::field::server, "modelrepo");
        answer->set(http::field::content_type, response.content_type);
        for (auto& [name, value] : response.headers)
            answer->set(name, value);
        answer->body() = std::move(response.body);
        answer->keep_alive(message.keep_alive() && !server_.stopping.load());
        answer->prepare_payload();
        if (message.method() == http::verb::head) {
            // The headers a GET would get, Content-Length included, and no body.
            auto length = head_length.value_or(answer->body().size());
            answer->body().clear();
            answer->content_length(length);
        }
        write(std::move(answer));
    }

    void write(std::shared_ptr<http::response<http::string_body>> answer) {
        state_ = State::writing;
        answer_ = std::move(answer);
        stream_.expires_after(server_.options.write_timeout);
        http::async_write(stream_, *answer_,
                          beast::bind_front_handler(&Session::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t bytes) {
        int status = static_cast<int>(answer_->result_int());
        log(status, bytes);
        bool keep_alive = answer_->keep_alive();
        answer_.reset();
        next_request(ec, keep_alive);
    }

    /// After an answer is written (or failed to be): the next request on a kept-alive
    /// connection, else the connection's end.
    void next_request(beast::error_code ec, bool keep_alive) {
        if (ec == beast::error::timeout)
            server_.count(Rejected::timeout);
        if (ec || !keep_alive || server_.stopping.load())
            return close_connection();
        read_request();
    }

    void log(int status, std::size_t bytes) {
        server_.count_answer(status);
        if (server_.options.on_request)
            server_.options.on_request(request_, status, bytes,
                                       std::chrono::duration_cast<std::chrono::microseconds>(
                                           steady_clock::now() - started_));
    }

    /// Ends the connection after an answer: our side first, so the client reads all of
    /// it; then whatever the client still sends is drained for a moment rather than
    /// answered with a reset that could destroy the answer in flight.
    void close_connection() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) {
            stream_.close();
            return finished();
        }
        stream_.expires_after(std::chrono::seconds(2));
        drain();
    }

    void drain() {
        stream_.async_read_some(net::buffer(scratch_),
                                [self = shared_from_this()](beast::error_code e, std::size_t) {
                                    if (e) {
                                        self->stream_.close();
                                        return self->finished();
                                    }
                                    self->drain();
                                });
    }

    // --- answers made as they are written ----------------------------------------------

    void start_parts(Response response, unsigned version, bool keep_alive) {
        state_ = State::writing;
        parts_ = std::move(response.parts);
        part_ = std::move(response.body);
        parts_more_ = true;
        parts_status_ = response.status;
        parts_bytes_ = 0;
        parts_head_ = std::make_shared<http::response<http::empty_body>>(
            static_cast<http::status>(response.status), version);
        parts_head_->set(http::field::server, "modelrepo");
        parts_head_->set(http::field::content_type, response.content_type);
        for (auto& [name, value] : response.headers)
            parts_head_->set(name, value);
        parts_head_->chunked(true);
        parts_head_->keep_alive(keep_alive && !server_.stopping.load());
        parts_serializer_ =
            std::make_shared<http::response_serializer<http::empty_body>>(*parts_head_);
        stream_.expires_after(server_.options.write_timeout);
        http::async_write_header(
            stream_, *parts_serializer_,
            [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                self->parts_bytes_ += bytes;
                if (ec)
                    return self->parts_done(ec);
                self->write_part();
            });
    }

    /// Writes the part made, then makes the next; the last chunk after the last part.
    void write_part() {
        while (part_.empty() && parts_more_)
            parts_more_ = parts_(part_);
        stream_.expires_after(server_.options.write_timeout);
        if (part_.empty()) // an empty chunk would end the body: the last one does
            return net::async_write(
                stream_, http::make_chunk_last(),
                [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                    self->parts_bytes_ += bytes;
                    self->parts_done(ec);
                });
        net::async_write(stream_, http::make_chunk(net::buffer(part_)),
                         [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                             self->parts_bytes_ += bytes;
                             if (ec)
                                 return self->parts_done(ec);
                             self->part_.clear();
                             if (self->parts_more_)
                                 self->parts_more_ = self->parts_(self->part_);
                             self->write_part();
                         });
    }

    void parts_done(beast::error_code ec) {
        log(parts_status_, parts_bytes_);
        parts_ = nullptr; // what it holds (a catalogue) is let go now
        std::string().swap(part_);
        bool keep_alive = parts_head_->keep_alive();
        parts_head_.reset();
        parts_serializer_.reset();
        next_request(ec, keep_alive);
    }

    // --- event streams ----------------------------------------------------------------

    void start_stream(Response response, unsigned version) {
        state_ = State::streaming;
        was_stream_ = true;
        server_.streams.fetch_add(1);
        stream_attach_ = std::move(response.on_stream);
        stream_head_ =
            std::make_shared<http::response<http::empty_body>>(http::status::ok, version);
        stream_head_->set(http::field::server, "modelrepo");
        stream_head_->set(http::field::content_type, "text/event-stream");
        stream_head_->set(http::field::cache_control, "no-cache");
        for (auto& [name, value] : response.headers)
            stream_head_->set(name, value);
        stream_head_->chunked(true);
        stream_head_->keep_alive(false);
        stream_serializer_ =
            std::make_shared<http::response_serializer<http::empty_body>>(*stream_head_);
        stream_.expires_after(server_.options.write_timeout);
        http::async_write_header(
            stream_, *stream_serializer_,
            beast::bind_front_handler(&Session::on_stream_head, shared_from_this()));
    }

    void on_stream_head(beast::error_code ec, std::size_t bytes) {
        log(200, bytes);
        if (ec)
            return teardown();
        stream_.expires_never();
        stream_open_.store(true);
        watch_peer();
        auto attach = std::move(stream_attach_);
        attach(shared_from_this());
        if (server_.stopping.load())
            end_stream();
    }

    /// Nothing is expected from the client of a stream: a read that completes means it
    /// left (or sent something it should not have; both end the stream).
    void watch_peer() {
        stream_.async_read_some(
            net::buffer(scratch_),
            [self = shared_from_this()](beast::error_code, std::size_t) { self->teardown(); });
    }

    void pump() {
        if (writing_ || queue_.empty() || !stream_open_.load())
            return;
        writing_ = true;
        stream_.expires_after(server_.options.write_timeout);
        net::async_write(stream_, http::make_chunk(net::buffer(*queue_.front())),
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             self->writing_ = false;
                             self->queue_.pop_front();
                             self->queued_.fetch_sub(1);
                             if (ec)
                                 return self->teardown();
                             if (self->ending_)
                                 return self->write_last_chunk();
                             self->stream_.expires_never();
                             self->pump();
                         });
    }

    void end_stream() {
        if (!stream_open_.exchange(false) || ending_)
            return;
        ending_ = true;
        // What was queued but not started is dropped: the client is told the stream
        // ended (the last chunk) and reconnects.
        while (queue_.size() > (writing_ ? 1u : 0u)) {
            queue_.pop_back();
            queued_.fetch_sub(1);
        }
        if (!writing_)
            write_last_chunk();
    }

    void write_last_chunk() {
        stream_.expires_after(std::chrono::seconds(2));
        net::async_write(
            stream_, http::make_chunk_last(),
            [self = shared_from_this()](beast::error_code, std::size_t) { self->teardown(); });
    }

    void teardown() {
        stream_open_.store(false);
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        stream_.close();
        finished();
    }

    beast::tcp_stream stream_;
    HttpServer::Impl& server_;
    std::string remote_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    State state_ = State::reading;
    bool header_done_ = false;
    Request request_;
    steady_clock::time_point started_{};
    net::steady_timer deadline_{stream_.get_executor()}; ///< of a request on a worker lane
    std::shared_ptr<http::response<http::string_body>> answer_;
    std::array<char, 512> scratch_{};

    std::function<bool(std::string&)> parts_; ///< an answer being made as it is written
    std::string part_;                        ///< the part being written
    bool parts_more_ = false;                 ///< parts_ has more to make
    int parts_status_ = 0;
    std::size_t parts_bytes_ = 0;
    std::shared_ptr<http::response<http::empty_body>> parts_head_;
    std::shared_ptr<http::response_serializer<http::empty_body>> parts_serializer_;

    bool was_stream_ = false;
    std::function<void(std::shared_ptr<EventStream>)> stream_attach_;
    std::shared_ptr<http::response<http::empty_body>> stream_head_;
    std::shared_ptr<http::response_serializer<http::empty_body>> stream_serializer_;
    std::deque<std::shared_ptr<const std::string>> queue_; ///< the strand's
    bool writing_ = false;                                 ///< the strand's
    bool ending_ = false;                                  ///< the strand's
    std::atomic<bool> stream_open_{false};
    std::atomic<bool> registered_{false};
    std::atomic<bool> idle_{false}; ///< waiting for a request's first bytes: may be shed
    bool shed_ = false;             ///< the strand's: closed to make room
    bool over_limit_ = false;       ///< set before the first read: answered 503
    bool counted_ = false;          ///< the server's mutex: holds a place (release_slot)
    std::atomic<std::size_t> queued_{0};
};

} // namespace

void HttpServer::Impl::accept() {
    acceptor.async_accept(net::make_strand(ioc), beast::bind_front_handler(&Impl::on_accept, this));
}

void HttpServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
    if (stopping.load() || !acceptor.is_open())
        return;
    if (ec == net::error::no_descriptors || ec.value() == ENFILE ||
        ec == net::error::no_buffer_space || ec == net::error::no_memory) {
        // Out of descriptors: retrying at once would spin. Make room, wait, try again.
        // A few idle connections at a time, so that a queue of new ones drains.
        accept_backoffs.fetch_add(1, std::memory_order_relaxed);
        {
            std::lock_guard lock(mutex);
            for (int i = 0; i < shed_on_backoff && shed_idle(); ++i) {
            }
        }
        accept_timer.expires_after(accept_backoff);
        accept_timer.async_wait([this](beast::error_code e) {
            if (!e && !stopping.load())
                accept();
        });
        return;
    }
    if (!ec) {
        auto session = std::make_shared<Session>(std::move(socket), *this);
        std::lock_guard lock(mutex);
        bool full = admitted >= options.max_connections && !shed_idle();
        // Refusals hold a descriptor for at most refusal_read_timeout; past a bound on
        // them, the connection is closed unanswered (still counted).
        if (full && refusing >= std::max<std::size_t>(64, options.max_connections / 8))
            count(Rejected::connections);
        else
            session->start(full);
    }
    accept();
}

bool HttpServer::Impl::shed_idle() {
    for (auto& [raw, weak] : sessions) {
        auto session = weak.lock();
        if (session && session->claim_idle())
            return true; // counted (idle_closed) when it closes
    }
    return false;
}

void HttpServer::Impl::shutdown() {
    {
        std::lock_guard lock(mutex);
        if (shut_down)
            return;
        shut_down = true;
    }
    stopping.store(true);
    net::post(acceptor.get_executor(), [this] {
        beast::error_code ec;
        acceptor.close(ec);
    });
    std::vector<std::shared_ptr<Session>> live;
    {
        std::lock_guard lock(mutex);
        for (auto& [raw, weak] : sessions)
            if (auto session = weak.lock())
                live.push_back(std::move(session));
    }
    for (auto& session : live)
        session->stop();
    live.clear();
    {
        std::unique_lock lock(mutex);
        sessions_gone.wait_for(lock, options.shutdown_grace, [&] { return sessions.empty(); });
    }
    // The workers post to the sessions' strands: they go before the io_context stops.
    for (auto* pool : {read_pool.get(), write_pool.get()})
        if (pool)
            pool->stop();
    ioc.stop();
    for (auto& t : threads)
        if (t.joinable())
            t.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options, Handler handler) {
    auto impl = std::make_shared<Impl>(std::move(options), std::move(handler));
    const ServerOptions& o = impl->options;
    beast::error_code ec;
    auto address = net::ip::make_address(o.host, ec);
    if (ec)
        return make_error(Errc::invalid_argument, "cannot listen on '" + o.host +
                                                      "': not an IP address (use 127.0.0.1, "
                                                      "::1, or 0.0.0.0 for every interface)");
    tcp::endpoint endpoint(address, o.port);
    std::string where =
        (address.is_v6() ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
    auto& acceptor = impl->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec)
        acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(endpoint, ec);
    if (!ec)
        acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error(Errc::io_error, "cannot listen on " + where + ": " + ec.message() +
                                              (ec == net::error::address_in_use
                                                   ? " (another process has the port: choose "
                                                     "another with --listen HOST:PORT)"
                                                   : ""));
    if (o.lane) {
        impl->read_pool = std::make_unique<WorkPool>("read", o.read_workers, o.max_queued);
        impl->write_pool = std::make_unique<WorkPool>("write", o.write_workers, o.max_queued);
    }
    impl->accept();
    int threads = o.threads > 0
                      ? o.threads
                      : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
    for (int i = 0; i < threads; ++i)
        impl->threads.emplace_back([raw = impl.get()] { raw->ioc.run(); });
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::shared_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
    impl_->shutdown();
}

std::uint16_t HttpServer::port() const noexcept {
    beast::error_code ec;
    auto endpoint = impl_->acceptor.local_endpoint(ec);
    return ec ? impl_->options.port : endpoint.port();
}

void HttpServer::shutdown() {
    impl_->shutdown();
}

std::vector<MetricFamily> HttpServer::metrics() const {
    using Type = MetricFamily::Type;
    std::vector<MetricFamily> out;
    MetricFamily answers{
        "modelrepo_serve_requests_total", Type::counter, "HTTP answers sent, by status.", {}};
    for (std::size_t status = 0; status < impl_->answers.size(); ++status)
        if (auto n = impl_->answers[status].load(std::memory_order_relaxed))
            answers.add({{"code", std::to_string(status)}}, static_cast<double>(n));
    out.push_back(std::move(answers));
    std::size_t connections = 0;
    {
        std::lock_guard lock(impl_->mutex);
        connections = impl_->sessions.size();
    }
    out.push_back({"modelrepo_serve_connections", Type::gauge, "Open HTTP connections.", {}});
    out.back().add({}, static_cast<double>(connections));
    out.push_back({"modelrepo_serve_connection_limit",
                   Type::gauge,
                   "Connections served at once (--max-connections); more are answered 503.",
                   {}});
    out.back().add({}, static_cast<double>(impl_->options.max_connections));
    out.push_back({"modelrepo_serve_idle_closed_total",
                   Type::counter,
                   "Idle keep-alive connections closed to make room for new ones.",
                   {}});
    out.back().add({}, static_cast<double>(impl_->idle_closed.load()));
    out.push_back({"modelrepo_serve_accept_backoffs_total",
                   Type::counter,
                   "Times accept() failed for want of file descriptors and waited 100 ms.",
                   {}});
    out.back().add({}, static_cast<double>(impl_->accept_backoffs.load()));
    MetricFamily busy{"modelrepo_serve_lane_busy",
                      Type::gauge,
                      "Workers running a request, by lane (read, write).",
                      {}};
    MetricFamily queued{
        "modelrepo_serve_lane_queued", Type::gauge, "Requests waiting for a worker, by lane.", {}};
    for (const auto* pool : {impl_->read_pool.get(), impl_->write_pool.get()})
        if (pool) {
            busy.add({{"lane", pool->name()}}, static_cast<double>(pool->busy()));
            queued.add({{"lane", pool->name()}}, static_cast<double>(pool->queued()));
        }
    out.push_back(std::move(busy));
    out.push_back(std::move(queued));
    out.push_back({"modelrepo_serve_streams",
                   Type::gauge,
                   "Open server-sent-event streams (GET /v1/changes).",
                   {}});
    out.back().add({}, static_cast<double>(impl_->streams.load()));
    MetricFamily rejected{"modelrepo_serve_rejected_total",
                          Type::counter,
                          "Requests and connections the transport refused or cut, by reason.",
                          {}};
    for (std::size_t i = 0; i < rejected_names.size(); ++i)
        rejected.add({{"reason", rejected_names[i]}},
                     static_cast<double>(impl_->rejected[i].load()));
    out.push_back(std::move(rejected));
    return out;
}

} // namespace modelrepo::serve
