// SPDX-License-Identifier: MIT
#include "auth_probe.hpp"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace modelrepo::detail {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
    pollfd p{fd, events, 0};
    for (;;) {
        int n = ::poll(&p, 1, remaining_ms(deadline));
        if (n < 0 && errno == EINTR)
            continue;
        return n > 0;
    }
}

std::uint32_t be32(const char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return ntohl(v);
}

std::string describe(const sockaddr* addr) {
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (addr->sa_family == AF_INET) {
        auto* in = reinterpret_cast<const sockaddr_in*>(addr);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        return std::string(host) + ":" + std::to_string(port);
    }
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
}

std::string method_name(std::uint32_t code, const std::string& mechanisms) {
    switch (code) {
    case 0:
        return "trust";
    case 2:
        return "kerberos";
    case 3:
        return "password";
    case 5:
        return "md5";
    case 7:
        return "gss";
    case 9:
        return "sspi";
    case 10:
        return mechanisms.find("SCRAM-SHA-256") != std::string::npos ? "scram-sha-256" : "sasl";
    default:
        return "unknown (" + std::to_string(code) + ")";
    }
}

/// One connection: plain until start_tls(), then through OpenSSL. Non-blocking, every
/// step bounded by the probe's deadline.
class Channel {
public:
    Channel(int fd, Clock::time_point deadline)
        : fd_(fd)
        , deadline_(deadline) {}
    ~Channel() {
        if (ssl_)
            SSL_free(ssl_);
        if (ctx_)
            SSL_CTX_free(ctx_);
    }
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    /// The TLS handshake; on failure, `why` says what OpenSSL said.
    bool start_tls(std::string& why) {
        ERR_clear_error();
        ctx_ = SSL_CTX_new(TLS_client_method());
        if (ctx_) {
            SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
            SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr); // see the header
            ssl_ = SSL_new(ctx_);
        }
        if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) {
            why = "cannot set up TLS: " + openssl_error();
            return false;
        }
        for (;;) {
            int rc = SSL_connect(ssl_);
            if (rc == 1)
                return true;
            if (!wait_for_ssl(rc)) {
                why = "the TLS handshake failed: " + openssl_error();
                return false;
            }
        }
    }

    bool send_all(const char* data, std::size_t size) {
        return transfer(const_cast<char*>(data), size, true); // send() only reads it
    }
    bool read_exact(char* out, std::size_t size) { return transfer(out, size, false); }

    /// Up to `size` bytes more, whatever arrives within `wait` (plain only): for quoting
    /// something that is not PostgreSQL.
    std::string read_some(std::size_t size, std::chrono::milliseconds wait) {
        std::string out(size, '\0');
        auto until = std::min(deadline_, Clock::now() + wait);
        std::size_t got = 0;
        while (got < size && wait_for(fd_, POLLIN, until)) {
            ssize_t n = ::recv(fd_, out.data() + got, size - got, 0);
            if (n <= 0)
                break;
            got += static_cast<std::size_t>(n);
        }
        out.resize(got);
        return out;
    }

    bool tls() const { return ssl_ != nullptr; }

private:
    /// Sends (`writing`) or receives exactly `size` bytes, through TLS once it is on.
    bool transfer(char* data, std::size_t size, bool writing) {
        std::size_t done = 0;
        while (done < size) {
            if (ssl_) {
                int left = static_cast<int>(size - done);
                int n = writing ? SSL_write(ssl_, data + done, left)
                                : SSL_read(ssl_, data + done, left);
                if (n > 0)
                    done += static_cast<std::size_t>(n);
                else if (!wait_for_ssl(n))
                    return false;
                continue;
            }
            if (!wait_for(fd_, writing ? POLLOUT : POLLIN, deadline_))
                return false;
            ssize_t n = writing ? ::send(fd_, data + done, size - done, MSG_NOSIGNAL)
                                : ::recv(fd_, data + done, size - done, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0)
                return false;
            done += static_cast<std::size_t>(n);
        }
        return true;
    }

    /// After an OpenSSL call returned `rc`: waits for what it wants; false on an error.
    bool wait_for_ssl(int rc) {
        switch (SSL_get_error(ssl_, rc)) {
        case SSL_ERROR_WANT_READ:
            return wait_for(fd_, POLLIN, deadline_);
        case SSL_ERROR_WANT_WRITE:
            return wait_for(fd_, POLLOUT, deadline_);
        default:
            return false;
        }
    }
    static std::string openssl_error() {
        unsigned long code = ERR_get_error();
        if (code == 0)
            return "the connection ended or timed out";
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        return text;
    }

    int fd_;
    Clock::time_point deadline_;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
};

std::string startup_message(const std::string& user, const std::string& database) {
    std::string body;
    auto put32 = [&](std::uint32_t v) {
        v = htonl(v);
        body.append(reinterpret_cast<const char*>(&v), 4);
    };
    put32(0);      // length, patched below
    put32(196608); // protocol 3.0
    for (const std::string* field : {&user, &database}) {
        body += field == &user ? "user" : "database";
        body.push_back('\0');
        body += *field;
        body.push_back('\0');
    }
    body.push_back('\0');
    std::uint32_t length = htonl(static_cast<std::uint32_t>(body.size()));
    std::memcpy(body.data(), &length, 4);
    return body;
}

/// `said`, printable, for a message.
std::string printable(std::string said) {
    for (char& c : said)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
            c = '.';
    return said;
}

/// The SSLRequest, and the handshake when the server offers TLS. False when the probe
/// ends here (`probe` says why).
bool negotiate_tls(Channel& channel, ProbeTls tls, AuthProbe& probe) {
    const char request[8] = {0, 0, 0, 8, 0x04, static_cast<char>(0xd2), 0x16, 0x2f}; // 80877103
    char reply = 0;
    if (!channel.send_all(request, sizeof request) || !channel.read_exact(&reply, 1))
        return false;
    probe.reached = true;
    if (reply != 'S' && reply != 'N') {
        std::string said = reply + channel.read_some(15, std::chrono::milliseconds(200));
        probe.message = probe.address + " answered, but not as PostgreSQL (its first bytes: '" +
                        printable(said) + "')";
        return false;
    }
    probe.postgres = true;
    probe.tls_offered = reply == 'S';
    if (reply == 'N') {
        if (tls == ProbeTls::require) {
            probe.message = "the server does not offer TLS, which the URL's sslmode requires";
            return false;
        }
        return true; // sslmode=prefer: on, in the clear
    }
    std::string why;
    if (!channel.start_tls(why)) {
        probe.message = probe.address + ": " + why;
        return false;
    }
    probe.tls = true;
    return true;
}

/// The startup message and the server's first answer: the method, or its error.
void ask_method(Channel& channel, const std::string& user, const std::string& database,
                std::chrono::milliseconds timeout, AuthProbe& probe) {
    std::string body = startup_message(user, database);
    char header[5];
    if (!channel.send_all(body.data(), body.size()) || !channel.read_exact(header, 5)) {
        if (probe.message.empty())
            probe.message =
                probe.address + ": no answer within " + std::to_string(timeout.count()) + " ms";
        return;
    }
    std::uint32_t size = be32(header + 1);
    std::string payload(size >= 4 && size < 65536 ? size - 4 : 0, '\0');
    probe.postgres = header[0] == 'R' || header[0] == 'E';
    if (!probe.postgres) {
        // An HTTP server, say: whatever it sent, printable, for the message.
        probe.reached = true;
        probe.message = probe.address + " answered, but not as PostgreSQL (its first bytes: '" +
                        printable(std::string(header, 5)) + "')";
        return;
    }
    if (!channel.read_exact(payload.data(), payload.size()))
        return;
    probe.reached = true;
    if (header[0] == 'R' && payload.size() >= 4) {
        probe.method = method_name(be32(payload.data()), payload.substr(4));
        return;
    }
    // An error. Fields: one type byte, a NUL-terminated string, ...
    for (std::size_t i = 0; i < payload.size() && payload[i];) {
        char type = payload[i++];
        std::string value(payload.c_str() + i);
        i += value.size() + 1;
        if (type == 'C')
            probe.sqlstate = value;
        else if (type == 'M')
            probe.message = value;
    }
}

/// A non-blocking connect to `ai` within `deadline`; -1 (and `probe.message`) on failure.
int connect_to(const addrinfo* ai, Clock::time_point deadline, AuthProbe& probe) {
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        probe.message = probe.address + ": " + std::strerror(errno);
        return -1;
    }
    bool connected = ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!connected && errno == EINPROGRESS && wait_for(fd, POLLOUT, deadline)) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        connected = err == 0;
        if (!connected)
            probe.message = probe.address + ": " + std::strerror(err);
    } else if (!connected) {
        probe.message =
            probe.address + ": " + std::strerror(errno == EINPROGRESS ? ETIMEDOUT : errno);
    }
    if (!connected) {
        ::close(fd);
        return -1;
    }
    return fd;
}

} // namespace

AuthProbe probe_auth_method(const std::string& host, int port, const std::string& user,
                            const std::string& database, std::chrono::milliseconds timeout,
                            ProbeTls tls) {
    AuthProbe probe;
    auto deadline = Clock::now() + timeout;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0) {
        probe.message = "cannot resolve '" + host + "': " + ::gai_strerror(rc);
        return probe;
    }
    for (addrinfo* ai = list; ai && !probe.reached; ai = ai->ai_next) {
        probe.address = describe(ai->ai_addr);
        int fd = connect_to(ai, deadline, probe);
        if (fd < 0)
            continue;
        {
            Channel channel(fd, deadline);
            if (tls == ProbeTls::off || negotiate_tls(channel, tls, probe))
                ask_method(channel, user, database, timeout, probe);
            else if (!probe.reached)
                probe.message =
                    probe.address + ": no answer within " + std::to_string(timeout.count()) + " ms";
        }
        ::close(fd);
    }
    ::freeaddrinfo(list);
    return probe;
}

} // namespace modelrepo::detail
