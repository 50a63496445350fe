// SPDX-License-Identifier: MIT
// A connection's stream, plain TCP or TLS (Boost.Beast's ssl_stream over OpenSSL), chosen
// when the connection is accepted; the session's reads and writes go through it either
// way, and its timeouts and closing reach the TCP stream below. For serve/http only.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

namespace modelrepo::serve {

class FlexStream {
public:
    using executor_type = boost::beast::tcp_stream::executor_type;
    using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

    /// TLS with `tls` (kept alive as long as the stream), plain TCP when it is null.
    FlexStream(boost::asio::ip::tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> tls)
        : context_(std::move(tls)) {
        if (context_)
            tls_.emplace(std::move(socket), *context_);
        else
            plain_.emplace(std::move(socket));
    }

    bool is_tls() const noexcept { return tls_.has_value(); }
    tls_stream& tls() { return *tls_; }
    boost::beast::tcp_stream& tcp() {
        return tls_ ? boost::beast::get_lowest_layer(*tls_) : *plain_;
    }

    executor_type get_executor() { return tcp().get_executor(); }

    template <class MutableBufferSequence, class ReadHandler>
    void async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
        if (tls_)
            tls_->async_read_some(buffers, std::forward<ReadHandler>(handler));
        else
            plain_->async_read_some(buffers, std::forward<ReadHandler>(handler));
    }
    template <class ConstBufferSequence, class WriteHandler>
    void async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
        if (tls_)
            tls_->async_write_some(buffers, std::forward<WriteHandler>(handler));
        else
            plain_->async_write_some(buffers, std::forward<WriteHandler>(handler));
    }

    // The TCP stream's, whichever layer is on top.
    boost::asio::ip::tcp::socket& socket() { return tcp().socket(); }
    template <class Duration>
    void expires_after(Duration d) {
        tcp().expires_after(d);
    }
    void expires_never() { tcp().expires_never(); }
    void cancel() { tcp().cancel(); }
    void close() { tcp().close(); }

private:
    std::shared_ptr<boost::asio::ssl::context> context_; ///< outlives tls_ (declared first)
    std::optional<boost::beast::tcp_stream> plain_;
    std::optional<tls_stream> tls_;
};

} // namespace modelrepo::serve
