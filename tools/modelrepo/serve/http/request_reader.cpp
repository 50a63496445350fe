// SPDX-License-Identifier: MIT
// Reading a request: the header, then the body, under one deadline and within the size
// limits; what the transport answers itself when a request cannot be read (400, 413, 431,
// 503 over the connection limit).
#include "session.hpp"

namespace modelrepo::serve {

void Session::read_request() {
    state_ = State::reading;
    header_done_ = false;
    if (server_.stopping.load() || shed_)
        return close_connection();
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    stream_.expires_after(over_limit_ ? std::min<std::chrono::milliseconds>(
                                            server_.options.request_timeout, refusal_read_timeout)
                                      : server_.options.request_timeout);
    // A kept-alive connection waiting for its next request may be closed to make
    // room; so may a new one that has not sent a request yet.
    idle_.store(!over_limit_);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
}

void Session::on_header(beast::error_code ec, std::size_t) {
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
        auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                          request.version());
        http::async_write(stream_, *interim,
                          [self = shared_from_this(), interim](beast::error_code e, std::size_t) {
                              if (e)
                                  return self->close_connection();
                              self->read_body();
                          });
        return;
    }
    read_body();
}

void Session::read_body() {
    // Under the deadline set for the header: one budget for the whole request.
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::on_body, shared_from_this()));
}

void Session::on_body(beast::error_code ec, std::size_t) {
    if (ec)
        return on_read_error(ec);
    handle();
}

void Session::on_read_error(beast::error_code ec) {
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
    refuse(400, "invalid_argument", "not a well-formed HTTP/1.1 request (" + ec.message() + ")");
}

void Session::refuse(int status, std::string_view code, const std::string& message,
                     bool retry_after) {
    if (!header_done_) {
        request_ = Request{};
        request_.remote = remote_;
        if (parser_) { // what of the header was parsed, for the log
            request_.method = std::string(parser_->get().method_string());
            request_.path = std::string(parser_->get().target());
        }
    }
    started_ = steady_clock::now();
    Response answer{status, "application/json", error_body(code, message), {}, {}, {}};
    if (retry_after)
        answer.headers.emplace_back("Retry-After", "1");
    std::size_t length = answer.body.size();
    write(std::move(answer), 11, /*keep_alive=*/false, length);
}

} // namespace modelrepo::serve
