// SPDX-License-Identifier: MIT
// Writing an answer: whole (with a Content-Length; HEAD without the body), a body shared
// between answers (written from where it is kept), or made as it is written and sent
// chunked, a part at a time; then the next request or the connection's orderly end.
#include <boost/asio/write.hpp>

#include "session.hpp"

namespace modelrepo::serve {

void Session::answer(Response response) {
    auto& message = parser_->get();
    request_.authorization.clear();
    request_.body.clear();
    if (response.on_stream)
        return start_stream(std::move(response), message.version());
    if (response.shared_body)
        return start_shared(std::move(response), message.version(), message.keep_alive(),
                            message.method() == http::verb::head);
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
        answer->insert(name, value); // a header may come twice (WWW-Authenticate)
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

void Session::write(std::shared_ptr<http::response<http::string_body>> answer) {
    state_ = State::writing;
    answer_ = std::move(answer);
    stream_.expires_after(server_.options.write_timeout);
    http::async_write(stream_, *answer_,
                      beast::bind_front_handler(&Session::on_write, shared_from_this()));
}

void Session::on_write(beast::error_code ec, std::size_t bytes) {
    int status = static_cast<int>(answer_->result_int());
    log(status, bytes);
    bool keep_alive = answer_->keep_alive();
    answer_.reset();
    next_request(ec, keep_alive);
}

void Session::next_request(beast::error_code ec, bool keep_alive) {
    if (ec == beast::error::timeout)
        server_.count(Rejected::timeout);
    if (ec || !keep_alive || server_.stopping.load())
        return close_connection();
    read_request();
}

void Session::log(int status, std::size_t bytes) {
    server_.count_answer(status);
    if (server_.options.on_request)
        server_.options.on_request(
            request_, status, bytes,
            std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - started_));
}

void Session::close_connection() {
    if (stream_.is_tls()) {
        // close_notify, then the peer's (or the timeout): the client reads all of it.
        stream_.expires_after(std::chrono::seconds(2));
        return stream_.tls().async_shutdown([self = shared_from_this()](beast::error_code) {
            self->stream_.close();
            self->finished();
        });
    }
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
        stream_.close();
        return finished();
    }
    stream_.expires_after(std::chrono::seconds(2));
    drain();
}

void Session::drain() {
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code e, std::size_t) {
                                if (e) {
                                    self->stream_.close();
                                    return self->finished();
                                }
                                self->drain();
                            });
}

void Session::start_parts(Response response, unsigned version, bool keep_alive) {
    parts_ = std::move(response.parts);
    part_ = std::move(response.body);
    parts_more_ = true;
    write_head(response, version, keep_alive, std::nullopt, &Session::write_part);
}

void Session::write_head(const Response& response, unsigned version, bool keep_alive,
                         std::optional<std::size_t> length, void (Session::*then)()) {
    state_ = State::writing;
    parts_status_ = response.status;
    parts_bytes_ = 0;
    parts_head_ = std::make_shared<http::response<http::empty_body>>(
        static_cast<http::status>(response.status), version);
    parts_head_->set(http::field::server, "modelrepo");
    parts_head_->set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers)
        parts_head_->insert(name, value);
    if (length)
        parts_head_->content_length(*length);
    else
        parts_head_->chunked(true);
    parts_head_->keep_alive(keep_alive && !server_.stopping.load());
    parts_serializer_ = std::make_shared<http::response_serializer<http::empty_body>>(*parts_head_);
    stream_.expires_after(server_.options.write_timeout);
    http::async_write_header(
        stream_, *parts_serializer_,
        [self = shared_from_this(), then](beast::error_code ec, std::size_t bytes) {
            self->parts_bytes_ += bytes;
            if (ec)
                return self->parts_done(ec);
            ((*self).*then)();
        });
}

void Session::write_part() {
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

void Session::start_shared(Response response, unsigned version, bool keep_alive, bool head) {
    shared_body_ = std::move(response.shared_body);
    write_head(response, version, keep_alive, shared_body_->size(),
               head ? &Session::head_done : &Session::write_shared);
}

void Session::write_shared() {
    net::async_write(stream_, net::buffer(*shared_body_),
                     [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                         self->parts_bytes_ += bytes;
                         self->parts_done(ec);
                     });
}

void Session::head_done() {
    parts_done({});
}

void Session::parts_done(beast::error_code ec) {
    log(parts_status_, parts_bytes_);
    parts_ = nullptr; // what it holds (a catalogue) is let go now
    shared_body_.reset();
    std::string().swap(part_);
    bool keep_alive = parts_head_->keep_alive();
    parts_head_.reset();
    parts_serializer_.reset();
    next_request(ec, keep_alive);
}

} // namespace modelrepo::serve
