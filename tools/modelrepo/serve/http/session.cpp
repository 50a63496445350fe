// SPDX-License-Identifier: MIT
// A session's life (registered with the listener, its place under max_connections, shed
// when idle, stopped at shutdown) and where its requests run: on the I/O thread, or queued
// for a worker lane under the server's deadline.
#include "session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace modelrepo::serve {

void Session::finished() {
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

void Session::release_slot() {
    if (!counted_)
        return;
    counted_ = false;
    if (over_limit_)
        --server_.refusing;
    else
        --server_.admitted;
}

void Session::start(bool over_limit) {
    over_limit_ = over_limit;
    counted_ = true;
    ++(over_limit ? server_.refusing : server_.admitted);
    server_.sessions.emplace(this, weak_from_this());
    registered_.store(true);
    net::dispatch(
        stream_.get_executor(),
        beast::bind_front_handler(stream_.is_tls() ? &Session::handshake : &Session::read_request,
                                  shared_from_this()));
}

void Session::handshake() {
    stream_.expires_after(server_.options.request_timeout);
    stream_.tls().async_handshake(
        net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
            if (!ec)
                return self->read_request();
            // Plain HTTP to the TLS port, a client that does not trust the certificate, or
            // one too slow: closed, counted; nothing is answered in the clear.
            if (!self->server_.stopping.load())
                self->server_.count(Rejected::tls_handshake);
            beast::error_code ignored;
            self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
            self->stream_.close();
            self->finished();
        });
}

bool Session::claim_idle() {
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

void Session::stop() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
        if (self->state_ == State::reading && !self->header_done_)
            self->stream_.cancel(); // the read ends with operation_aborted
        else if (self->state_ == State::streaming)
            self->end_stream();
    });
}

void Session::handle() {
    state_ = State::handling;
    auto& message = parser_->get();
    request_.method = std::string(message.method_string());
    std::string_view target = view(message.target());
    auto question = target.find('?');
    request_.path = std::string(target.substr(0, question));
    request_.query = question == std::string_view::npos ? std::string()
                                                        : std::string(target.substr(question + 1));
    request_.authorization = std::string(message[http::field::authorization]);
    request_.if_none_match = std::string(message[http::field::if_none_match]);
    request_.last_event_id = std::string(message["Last-Event-ID"]);
    request_.host = std::string(message[http::field::host]);
    request_.origin = std::string(message[http::field::origin]);
    request_.cors_method = std::string(message[http::field::access_control_request_method]);
    request_.body = std::move(message.body());
    request_.remote = remote_;

    Lane lane = server_.options.lane ? server_.options.lane(request_) : Lane::io;
    if (lane == Lane::io || !server_.pool(lane))
        return answer(call_handler(request_));
    hand_to(lane);
}

Response Session::call_handler(const Request& request) {
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

void Session::hand_to(Lane lane) {
    auto job = std::make_shared<Job>();
    job->request = request_;
    request_.authorization.clear();
    request_.body.clear();
    WorkPool& pool = *server_.pool(lane);
    bool queued = pool.submit([self = shared_from_this(), job] {
        int expected = Job::queued;
        if (!job->state.compare_exchange_strong(expected, Job::running))
            return; // answered at its deadline
        Response response = self->server_.stopping.load()
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
        return answer(
            Response{503,
                     "application/json",
                     error_body("too_many_connections",
                                "all " + std::to_string(pool.threads()) + " " + pool.name() +
                                    " workers are busy and " + std::to_string(pool.max_queued()) +
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
        self->answer(
            was == Job::queued
                ? Response{503,
                           "application/json",
                           error_body("timeout", "the request waited " + took +
                                                     " for a worker without starting"),
                           {{"Retry-After", "1"}},
                           {},
                           {}}
                : Response{504,
                           "application/json",
                           error_body("timeout", "no answer within " + took +
                                                     " (the server's deadline): the database is "
                                                     "slow or locked; a write may still apply"),
                           {},
                           {},
                           {}});
    });
}

} // namespace modelrepo::serve
