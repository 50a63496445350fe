// SPDX-License-Identifier: MIT
// The HTTP/1.1 transport of `modelrepo serve`, on Boost.Beast: accepts connections,
// reads requests within their limits and deadlines, hands each one to a handler, and
// keeps server-sent-event streams. Nothing of Beast or Asio crosses this header; the
// routes are the Service's (service.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <modelrepo/error.hpp>
#include <modelrepo/metrics.hpp>

namespace modelrepo::serve {

/// One request as the handler sees it; the body is complete and within its limit.
struct Request {
    std::string method;        ///< "GET", "PUT", …
    std::string path;          ///< the target's path, still percent-encoded ("/v1/models/gpt-4o")
    std::string query;         ///< the target's query string without '?', still encoded
    std::string authorization; ///< the Authorization header's value; never logged
    std::string if_none_match; ///< the If-None-Match header's value
    std::string last_event_id; ///< the Last-Event-ID header's value (an event stream resuming)
    std::string host;          ///< the Host header's value
    std::string origin;        ///< the Origin header's value (a browser's, for CORS)
    std::string cors_method;   ///< Access-Control-Request-Method (a CORS preflight's)
    std::string body;
    std::string remote; ///< the peer's address and port
};

class EventStream;

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; ///< e.g. Retry-After, Allow
    /// Set: the answer is a stream of server-sent events. The server writes a 200 with
    /// `text/event-stream`, then calls this with the stream (on one of its threads).
    std::function<void(std::shared_ptr<EventStream>)> on_stream;
    /// Set (and `body` empty): the body is made as it is written. Called on the
    /// connection's thread, again after each part is written, until it returns false; each
    /// call appends about a part (64 KiB) to its argument. An answer whose first part is
    /// its last goes out with a Content-Length, as a `body` would; a longer one is sent
    /// chunked, so no more than a part of it is held at a time (HTTP/1.0 and HEAD: made
    /// whole first, for the Content-Length). Must not block: it runs on an I/O thread.
    std::function<bool(std::string& out)> parts;
    /// Set (`body` empty, no `parts`): a body made once and shared between answers (the
    /// whole model list of a catalogue version), sent as it is, with a Content-Length.
    std::shared_ptr<const std::string> shared_body = nullptr;
};

/// How much an answer's `parts` should append per call.
inline constexpr std::size_t answer_part_bytes = 64 * 1024;

/// The body of every error answer: {"error": {"code": "<errc>", "message": "…"}}.
std::string error_body(std::string_view code, std::string_view message);

/// One open server-sent-events response. Thread-safe: send() and close() may be called
/// from any thread; the connection's own thread writes.
class EventStream {
public:
    virtual ~EventStream() = default;
    /// Queues `text` (whole events) for the client. False, and the stream is closed,
    /// when the client is gone or has not taken what was queued before (over the
    /// server's `stream_queue_limit`): a slow client is dropped, never waited for.
    virtual bool send(std::shared_ptr<const std::string> text) = 0;
    /// False once the client went away or the stream was closed.
    virtual bool is_open() const noexcept = 0;
    /// Ends the stream (the last chunk) and the connection.
    virtual void close() = 0;
};

/// Where a request's handler runs: on the I/O thread that read it (`io`: answers from
/// memory, never waiting), or on one of the worker pools (`read`, `write`: anything that
/// may wait on a database or a network), so that a slow database never stalls the I/O
/// threads nor, through them, /healthz and the answers from memory.
enum class Lane { io, read, write };

/// serve's limits. What a client gets at each (README, "Limits"):
///   max_connections   at it, an idle connection (kept alive, or not done with its
///                     headers) is closed to make room; if none is idle, the new
///                     connection's request is answered 503 with Retry-After, then it
///                     is closed.
///   max_queued        a request for a lane whose workers are busy and whose queue is
///                     full: 503 with Retry-After.
///   deadline          a request on a lane not started within it: 503; not done within
///                     it: 504 (its handler still finishes; a write it made stands).
///   event streams     the Service's max_streams: 429.
/// File descriptors: accept() failing for want of them (EMFILE, ENFILE) backs off for
/// 100 ms, counted, and closes up to 8 idle connections; it never spins.
struct ServerOptions {
    std::string host = "127.0.0.1";           ///< loopback unless told otherwise
    std::uint16_t port = 8080;                ///< 0: any free port (see HttpServer::port())
    int threads = 0;                          ///< I/O threads; 0: the number of cores, at least 2
    std::size_t max_body_bytes = 1024 * 1024; ///< larger: 413, before the body is read
    std::size_t max_header_bytes = 16 * 1024; ///< larger: 431
    /// A request's headers and body must arrive within this of the first wait for it
    /// (on a kept-alive connection: of the previous answer). A client that sends a byte
    /// a second is closed when it passes; it holds no thread meanwhile.
    std::chrono::milliseconds request_timeout{10'000};
    std::chrono::milliseconds write_timeout{10'000};
    std::size_t max_connections = 10'000;       ///< see above; serve derives it from RLIMIT_NOFILE
    std::size_t stream_queue_limit = 256;       ///< events queued for one stream client
    std::size_t read_workers = 16;              ///< threads of the `read` lane
    std::size_t write_workers = 8;              ///< threads of the `write` lane
    std::size_t max_queued = 1'024;             ///< requests waiting for a worker, per lane
    std::chrono::milliseconds deadline{30'000}; ///< of a request on a worker lane
    /// The lane of a request (called on the I/O thread; must not block). Unset: `io`.
    std::function<Lane(const Request&)> lane;
    /// On shutdown(): how long in-flight requests may take to finish.
    std::chrono::milliseconds shutdown_grace{5'000};
    /// TLS on the listening port (both set): PEM files of the certificate (with its chain)
    /// and its private key. TLS 1.2 and later; a plain-HTTP client is closed at the
    /// handshake. Empty: plain HTTP.
    std::string tls_cert;
    std::string tls_key;
    /// Called once per answered request (the access log), on an I/O thread.
    std::function<void(const Request&, int status, std::size_t bytes,
                       std::chrono::microseconds took)>
        on_request;
};

/// Thread safety: shutdown(), port() and metrics() may be called from any thread.
/// Handlers run several at a time, on the I/O threads (Lane::io: they must not block) or
/// on the workers of their lane.
class HttpServer {
public:
    using Handler = std::function<Response(const Request&)>;

    /// Binds and starts the I/O threads. Errors: `Errc::invalid_argument` (an address
    /// that is not one), `Errc::io_error` (the port is taken, no permission).
    static Result<std::unique_ptr<HttpServer>> start(ServerOptions options, Handler handler);
    /// shutdown(), then joins the threads.
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// The bound port (useful with port 0).
    std::uint16_t port() const noexcept;
    /// Stops accepting, closes idle connections and streams, lets requests being
    /// handled finish and their answers be written (up to `shutdown_grace`), then stops.
    /// Idempotent; returns when it is done.
    void shutdown();
    /// `modelrepo_serve_requests_total{code}`, `modelrepo_serve_connections`,
    /// `modelrepo_serve_connection_limit`, `modelrepo_serve_streams`,
    /// `modelrepo_serve_rejected_total{reason}`, `modelrepo_serve_idle_closed_total`,
    /// `modelrepo_serve_accept_backoffs_total`, `modelrepo_serve_lane_busy{lane}`,
    /// `modelrepo_serve_lane_queued{lane}`.
    std::vector<MetricFamily> metrics() const;
    /// Reads the certificate and key files again (after a renewal): new connections use
    /// them, open ones keep theirs. On an error the old ones stay. Errors:
    /// `Errc::invalid_argument` naming the file and what OpenSSL said of it.
    Result<void> reload_tls();
    /// Whether the port speaks TLS.
    bool tls() const noexcept;

    struct Listener; ///< the acceptor, the sessions, the lanes (serve/http/listener.hpp)

private:
    explicit HttpServer(std::shared_ptr<Listener> listener);
    std::shared_ptr<Listener> listener_;
};

} // namespace modelrepo::serve
