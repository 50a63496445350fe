// SPDX-License-Identifier: MIT
// HttpServer on Boost.Beast: the listener accepts connections and starts a Session for
// each (serve/http/session.hpp); the limits on connections, the worker lanes, shutdown
// and the transport's metrics.
#include "http_server.hpp"

#include <cerrno>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "listener.hpp"
#include "session.hpp"

namespace modelrepo::serve {

std::string error_body(std::string_view code, std::string_view message) {
    nlohmann::ordered_json body;
    body["error"] = {{"code", code}, {"message", message}};
    return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

/// OpenSSL's last reason, in words ("no such file", "key values mismatch").
std::string openssl_reason(const beast::error_code& ec) {
    std::string text = ec.message();
    return text.empty() ? "unknown error" : text;
}

} // namespace

Result<std::shared_ptr<net::ssl::context>> make_tls_context(const std::string& cert,
                                                            const std::string& key) {
    auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
    beast::error_code ec;
    context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                             net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                             net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use,
                         ec);
    if (!ec)
        context->use_certificate_chain_file(cert, ec);
    if (ec)
        return make_error(Errc::invalid_argument, "--tls-cert '" + cert +
                                                      "' cannot be used: " + openssl_reason(ec) +
                                                      " (a PEM certificate, its chain after it)");
    context->use_private_key_file(key, net::ssl::context::pem, ec);
    if (ec)
        return make_error(Errc::invalid_argument,
                          "--tls-key '" + key + "' cannot be used: " + openssl_reason(ec) +
                              " (a PEM private key, readable by this user, matching --tls-cert)");
    return context;
}

std::vector<std::unique_ptr<net::io_context>>
HttpServer::Listener::make_iocs(const ServerOptions& o) {
    int threads = o.threads > 0
                      ? o.threads
                      : std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < threads; ++i)
        out.push_back(std::make_unique<net::io_context>(1)); // one thread runs it
    return out;
}

void HttpServer::Listener::accept() {
    // No strand: the one thread that runs a connection's io_context runs its handlers one
    // at a time, and other threads post to it.
    net::any_io_executor next = iocs[next_ioc++ % iocs.size()]->get_executor();
    acceptor.async_accept(next, beast::bind_front_handler(&Listener::on_accept, this));
}

void HttpServer::Listener::on_accept(beast::error_code ec, tcp::socket socket) {
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
        // No Nagle: an answer written in two parts (a head, then a body made as it is
        // written; events of a stream) must not wait for the client's delayed ACK, up to
        // 40 ms a write on Linux.
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
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

bool HttpServer::Listener::shed_idle() {
    for (auto& [raw, weak] : sessions) {
        auto session = weak.lock();
        if (session && session->claim_idle())
            return true; // counted (idle_closed) when it closes
    }
    return false;
}

void HttpServer::Listener::shutdown() {
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
    for (auto& ioc : iocs)
        ioc->stop();
    for (auto& t : threads)
        if (t.joinable())
            t.join();
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(ServerOptions options, Handler handler) {
    auto listener = std::make_shared<Listener>(std::move(options), std::move(handler));
    const ServerOptions& o = listener->options;
    if (o.tls_cert.empty() != o.tls_key.empty())
        return make_error(Errc::invalid_argument,
                          "TLS needs both --tls-cert FILE and --tls-key FILE");
    if (!o.tls_cert.empty()) {
        auto context = make_tls_context(o.tls_cert, o.tls_key);
        if (!context)
            return context.error();
        listener->tls_context = std::move(context).value();
    }
    beast::error_code ec;
    auto address = net::ip::make_address(o.host, ec);
    if (ec)
        return make_error(Errc::invalid_argument, "cannot listen on '" + o.host +
                                                      "': not an IP address (use 127.0.0.1, "
                                                      "::1, or 0.0.0.0 for every interface)");
    tcp::endpoint endpoint(address, o.port);
    std::string where =
        (address.is_v6() ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
    auto& acceptor = listener->acceptor;
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
        listener->read_pool = std::make_unique<WorkPool>("read", o.read_workers, o.max_queued);
        listener->write_pool = std::make_unique<WorkPool>("write", o.write_workers, o.max_queued);
    }
    listener->accept();
    for (auto& ioc : listener->iocs)
        listener->threads.emplace_back([raw = ioc.get()] {
            // Runs until shutdown() stops it, also while it has no connection.
            auto busy = net::make_work_guard(*raw);
            raw->run();
        });
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(listener)));
}

HttpServer::HttpServer(std::shared_ptr<Listener> listener)
    : listener_(std::move(listener)) {}

HttpServer::~HttpServer() {
    listener_->shutdown();
}

std::uint16_t HttpServer::port() const noexcept {
    beast::error_code ec;
    auto endpoint = listener_->acceptor.local_endpoint(ec);
    return ec ? listener_->options.port : endpoint.port();
}

void HttpServer::shutdown() {
    listener_->shutdown();
}

bool HttpServer::tls() const noexcept {
    return listener_->tls() != nullptr;
}

Result<void> HttpServer::reload_tls() {
    const ServerOptions& o = listener_->options;
    if (o.tls_cert.empty())
        return success();
    auto context = make_tls_context(o.tls_cert, o.tls_key);
    if (!context)
        return context.error();
    std::lock_guard lock(listener_->tls_mutex);
    listener_->tls_context = std::move(context).value();
    return success();
}

std::vector<MetricFamily> HttpServer::metrics() const {
    using Type = MetricFamily::Type;
    std::vector<MetricFamily> out;
    MetricFamily answers{
        "modelrepo_serve_requests_total", Type::counter, "HTTP answers sent, by status.", {}};
    for (std::size_t status = 0; status < listener_->answers.size(); ++status)
        if (auto n = listener_->answers[status].load(std::memory_order_relaxed))
            answers.add({{"code", std::to_string(status)}}, static_cast<double>(n));
    out.push_back(std::move(answers));
    std::size_t connections = 0;
    {
        std::lock_guard lock(listener_->mutex);
        connections = listener_->sessions.size();
    }
    out.push_back({"modelrepo_serve_connections", Type::gauge, "Open HTTP connections.", {}});
    out.back().add({}, static_cast<double>(connections));
    out.push_back({"modelrepo_serve_connection_limit",
                   Type::gauge,
                   "Connections served at once (--max-connections); more are answered 503.",
                   {}});
    out.back().add({}, static_cast<double>(listener_->options.max_connections));
    out.push_back({"modelrepo_serve_idle_closed_total",
                   Type::counter,
                   "Idle keep-alive connections closed to make room for new ones.",
                   {}});
    out.back().add({}, static_cast<double>(listener_->idle_closed.load()));
    out.push_back({"modelrepo_serve_accept_backoffs_total",
                   Type::counter,
                   "Times accept() failed for want of file descriptors and waited 100 ms.",
                   {}});
    out.back().add({}, static_cast<double>(listener_->accept_backoffs.load()));
    MetricFamily busy{"modelrepo_serve_lane_busy",
                      Type::gauge,
                      "Workers running a request, by lane (read, write).",
                      {}};
    MetricFamily queued{
        "modelrepo_serve_lane_queued", Type::gauge, "Requests waiting for a worker, by lane.", {}};
    for (const auto* pool : {listener_->read_pool.get(), listener_->write_pool.get()})
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
    out.back().add({}, static_cast<double>(listener_->streams.load()));
    out.push_back({"modelrepo_serve_stream_events_total",
                   Type::counter,
                   "Events (and comments) written to server-sent-event streams.",
                   {}});
    out.back().add({}, static_cast<double>(listener_->stream_events.load()));
    out.push_back({"modelrepo_serve_stream_writes_total",
                   Type::counter,
                   "Writes that carried them: the events queued for a client go in one.",
                   {}});
    out.back().add({}, static_cast<double>(listener_->stream_writes.load()));
    MetricFamily rejected{"modelrepo_serve_rejected_total",
                          Type::counter,
                          "Requests and connections the transport refused or cut, by reason.",
                          {}};
    for (std::size_t i = 0; i < rejected_names.size(); ++i)
        rejected.add({{"reason", rejected_names[i]}},
                     static_cast<double>(listener_->rejected[i].load()));
    out.push_back(std::move(rejected));
    return out;
}

} // namespace modelrepo::serve
