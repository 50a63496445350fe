// SPDX-License-Identifier: MIT
#include "auth_probe.hpp"

#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
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

bool read_exact(int fd, char* out, std::size_t size, Clock::time_point deadline) {
    std::size_t got = 0;
    while (got < size) {
        if (!wait_for(fd, POLLIN, deadline))
            return false;
        ssize_t n = ::recv(fd, out + got, size - got, 0);
        if (n <= 0)
            return false;
        got += static_cast<std::size_t>(n);
    }
    return true;
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

} // namespace

AuthProbe probe_auth_method(const std::string& host, int port, const std::string& user,
                            const std::string& database, std::chrono::milliseconds timeout) {
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
        int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        bool connected = ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        if (!connected && errno == EINPROGRESS && wait_for(fd, POLLOUT, deadline)) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            connected = err == 0;
            if (!connected)
                probe.message = probe.address + ": " + std::strerror(err);
        } else if (!connected) {
            probe.message = probe.address + ": " + std::strerror(errno);
        }
        if (connected) {
            std::string body;
            auto put32 = [&](std::uint32_t v) {
                v = htonl(v);
                body.append(reinterpret_cast<const char*>(&v), 4);
            };
            put32(0);      // length, patched below
            put32(196608); // protocol 3.0
            body += "user";
            body.push_back('\0');
            body += user;
            body.push_back('\0');
            body += "database";
            body.push_back('\0');
            body += database;
            body.push_back('\0');
            body.push_back('\0');
            std::uint32_t length = htonl(static_cast<std::uint32_t>(body.size()));
            std::memcpy(body.data(), &length, 4);
            bool sent = wait_for(fd, POLLOUT, deadline) &&
                        ::send(fd, body.data(), body.size(), MSG_NOSIGNAL) ==
                            static_cast<ssize_t>(body.size());
            char header[5];
            if (sent && read_exact(fd, header, 5, deadline)) {
                std::uint32_t size = be32(header + 1);
                std::string payload(size >= 4 && size < 65536 ? size - 4 : 0, '\0');
                probe.postgres = header[0] == 'R' || header[0] == 'E';
                if (!probe.postgres) {
                    // An HTTP server, say: whatever it sent, printable, for the message.
                    probe.reached = true;
                    std::string said(header, 5);
                    for (char& c : said)
                        if (static_cast<unsigned char>(c) < 0x20 ||
                            static_cast<unsigned char>(c) > 0x7e)
                            c = '.';
                    probe.message = probe.address +
                                    " answered, but not as PostgreSQL (its first "
                                    "bytes: '" +
                                    said + "')";
                } else if (read_exact(fd, payload.data(), payload.size(), deadline)) {
                    probe.reached = true;
                    if (header[0] == 'R' && payload.size() >= 4) {
                        probe.method = method_name(be32(payload.data()), payload.substr(4));
                    } else if (header[0] == 'E') {
                        // Fields: one type byte, a NUL-terminated string, ...
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
                }
            } else if (probe.message.empty()) {
                probe.message =
                    probe.address + ": no answer within " + std::to_string(timeout.count()) + " ms";
            }
        }
        ::close(fd);
    }
    ::freeaddrinfo(list);
    return probe;
}

} // namespace modelrepo::detail
