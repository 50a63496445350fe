// SPDX-License-Identifier: MIT
// Writing an answer: whole (with a Content-Length; HEAD without the body), a body shared
// between answers (written from where it is kept), or made as it is written and sent
// chunked, a part at a time; then the next request or the connection's orderly end.
#include <array>

#include <boost/asio/write.hpp>

#include "session.hpp"

namespace modelrepo::serve {

namespace {

/// A header name or value that would end its line early (CR, LF, NUL): left out of the head
/// rather than letting it split the answer.
bool fits_one_line(std::string_view text) {
    return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

/// No body, and no Content-Length or chunking to say so (RFC 9110 section 8.6).
bool bodiless(int status) {
    return status / 100 == 1 || status == 204 || status == 304;
}

} // namespace

void format_head(std::string& out, const Response& response, unsigned version, bool keep_alive,
                 std::optional<std::size_t> length) {
    out.clear();
    out += version >= 11 ? "HTTP/1.1 " : "HTTP/1.0 ";
    out += std::to_string(response.status);
    out += ' ';
    beast::string_view reason =
        http::obsolete_reason(http::int_to_status(static_cast<unsigned>(response.status)));
    out.append(reason.data(), reason.size());
    out += "\r\nServer: modelrepo\r\n";
    auto line = [&](std::string_view name, std::string_view value) {
        if (name.empty() || !fits_one_line(name) || !fits_one_line(value))
            return;
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    };
    line("Content-Type", response.content_type);
    for (const auto& [name, value] : response.headers)
        line(name, value);
    if (!bodiless(response.status))
        line(length ? "Content-Length" : "Transfer-Encoding",
             length ? std::to_string(*length) : "chunked");
    if (version >= 11 && !keep_alive)
        out += "Connection: close\r\n";
    else if (version < 11 && keep_alive)
        out += "Connection: keep-alive\r\n";
    out += "\r\n";
}

void Session::answer(Response response) {
    auto& message = parser_->get();
    request_.authorization.clear();
    request_.body.clear();
    const bool head = message.method() == http::verb::head;
    if (response.on_stream)
        return start_stream(std::move(response), message.version());
    if (response.shared_body)
        return start_shared(std::move(response), message.version(), message.keep_alive(), head);
    std::optional<std::size_t> head_length;
    if (response.parts) {
        bool more = response.parts(response.body);
        if (more && head) {
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
    // HEAD: the headers a GET would get, Content-Length included, and no body.
    std::size_t length = head_length.value_or(response.body.size());
    if (head)
        response.body.clear();
    write(std::move(response), message.version(), message.keep_alive(), length);
}

void Session::begin_answer(const Response& response, unsigned version, bool keep_alive,
                           std::optional<std::size_t> length) {
    state_ = State::writing;
    status_ = response.status;
    parts_bytes_ = 0;
    keep_alive_ = keep_alive && !server_.stopping.load();
    format_head(head_, response, version, keep_alive_, length);
    stream_.expires_after(server_.options.write_timeout);
}

void Session::write(Response response, unsigned version, bool keep_alive, std::size_t length) {
    begin_answer(response, version, keep_alive, length);
    body_ = std::move(response.body);
    if (bodiless(status_))
        body_.clear();
    // The head and the body in one write: one system call for most answers.
    std::array<net::const_buffer, 2> both{net::buffer(head_), net::buffer(body_)};
    net::async_write(stream_, both,
                     [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                         self->log(self->status_, bytes);
                         std::string().swap(self->body_);
                         self->next_request(ec, self->keep_alive_);
                     });
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
    begin_answer(response, version, keep_alive, length);
    net::async_write(stream_, net::buffer(head_),
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
    if (head)
        return write_head(response, version, keep_alive, response.shared_body->size(),
                          &Session::head_done);
    begin_answer(response, version, keep_alive, response.shared_body->size());
    shared_body_ = std::move(response.shared_body);
    // The head, then the body from where it is kept, no copy; one write.
    std::array<net::const_buffer, 2> both{net::buffer(head_), net::buffer(*shared_body_)};
    net::async_write(stream_, both,
                     [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                         self->parts_bytes_ += bytes;
                         self->parts_done(ec);
                     });
}

void Session::head_done() {
    parts_done({});
}

void Session::parts_done(beast::error_code ec) {
    log(status_, parts_bytes_);
    parts_ = nullptr; // what it holds (a catalogue) is let go now
    shared_body_.reset();
    std::string().swap(part_);
    next_request(ec, keep_alive_);
}

} // namespace modelrepo::serve
