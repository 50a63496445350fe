// SPDX-License-Identifier: MIT
// HttpServer's listener (for serve/http only): the acceptor and its I/O threads, the
// sessions it holds (for the connection limit, shedding idle ones, shutdown), the worker
// pools of the lanes and the transport's counters.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http_server.hpp"
#include "work_pool.hpp"

namespace modelrepo::serve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::steady_clock;

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
    deadline,
    tls_handshake
};
inline constexpr std::array<const char*, 9> rejected_names{
    "timeout",     "body_too_large", "header_too_large", "malformed",    "connections",
    "slow_stream", "queue_full",     "deadline",         "tls_handshake"};

/// A TLS server context of `cert` and `key` (PEM): TLS 1.2 and later. Errors:
/// `Errc::invalid_argument` naming the file that could not be used and why.
Result<std::shared_ptr<net::ssl::context>> make_tls_context(const std::string& cert,
                                                            const std::string& key);

/// How long a connection over the limit may take to send the request its 503 answers.
inline constexpr std::chrono::seconds refusal_read_timeout{2};
/// accept() failed for want of descriptors (or memory): wait this long before the next.
inline constexpr std::chrono::milliseconds accept_backoff{100};
/// …and close this many idle connections to make room.
inline constexpr int shed_on_backoff = 8;

struct HttpServer::Listener {
    Listener(ServerOptions o, Handler h)
        : options(std::move(o))
        , handler(std::move(h))
        , iocs(make_iocs(options)) {}
    ~Listener() { shutdown(); }

    ServerOptions options;
    Handler handler;
    std::atomic<bool> stopping{false};

    mutable std::mutex tls_mutex; ///< guards tls_context
    /// What new connections handshake with; null: plain HTTP. Replaced by reload_tls().
    std::shared_ptr<net::ssl::context> tls_context;
    std::shared_ptr<net::ssl::context> tls() const {
        std::lock_guard lock(tls_mutex);
        return tls_context;
    }

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
    std::atomic<std::uint64_t> stream_events{0};           ///< events written to streams
    std::atomic<std::uint64_t> stream_writes{0};           ///< the writes that carried them
    std::array<std::atomic<std::uint64_t>, 600> answers{}; ///< by HTTP status
    std::array<std::atomic<std::uint64_t>, rejected_names.size()> rejected{};

    // Declared after what sessions touch in their destructors: an io_context destroys
    // the sessions its handlers still hold when it goes, and they unregister.
    //
    // One io_context per I/O thread, each run by its thread alone: a connection's reads,
    // writes and timers stay on one thread, and no thread wakes another to run them (one
    // io_context shared by every thread did, about one wake-up per operation). Connections
    // are dealt to them in turn; others (the workers, the change stream) post to a
    // connection's.
    std::vector<std::unique_ptr<net::io_context>> iocs;
    std::size_t next_ioc = 0; ///< the acceptor's strand only
    tcp::acceptor acceptor{net::make_strand(*iocs.front())};
    net::steady_timer accept_timer{acceptor.get_executor()};
    std::vector<std::thread> threads;

    /// `options.threads` io_contexts (0: the number of cores, at least 2), each to be run
    /// by one thread.
    static std::vector<std::unique_ptr<net::io_context>> make_iocs(const ServerOptions& o);

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

/// Beast 1.74 speaks boost::string_view.
inline std::string_view view(beast::string_view text) {
    return {text.data(), text.size()};
}

} // namespace modelrepo::serve
