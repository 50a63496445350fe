// SPDX-License-Identifier: MIT
// The doctor's look at the network: addresses, whether the server offers TLS.
#include <cstdlib>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checks.hpp"

namespace modelrepo::detail::doctor {

ProbeTls probe_tls_for(const HostParams& host) {
    std::string mode;
    for (const auto& [key, value] : host.params)
        if (key == "sslmode")
            mode = value;
    if (mode.empty())
        if (const char* env = std::getenv("PGSSLMODE"))
            mode = env;
    if (mode == "disable" || mode == "allow") // allow: in the clear first, as libpq tries
        return ProbeTls::off;
    if (mode == "require" || mode == "verify-ca" || mode == "verify-full")
        return ProbeTls::require;
    return ProbeTls::prefer;
}

std::vector<Address> resolve(const std::string& host, int port, std::string& error) {
    std::vector<Address> out;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list); rc != 0) {
        error = ::gai_strerror(rc);
        return out;
    }
    for (addrinfo* ai = list; ai; ai = ai->ai_next) {
        char buf[INET6_ADDRSTRLEN] = "";
        if (ai->ai_family == AF_INET)
            ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, buf,
                        sizeof buf);
        else if (ai->ai_family == AF_INET6)
            ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, buf,
                        sizeof buf);
        else
            continue;
        std::string ip = buf;
        bool seen = false;
        for (const auto& a : out)
            seen = seen || a.ip == ip;
        if (seen)
            continue;
        std::string label = ai->ai_family == AF_INET6 ? "[" + ip + "]:" + std::to_string(port)
                                                      : ip + ":" + std::to_string(port);
        out.push_back({ip, label, ai->ai_family});
    }
    ::freeaddrinfo(list);
    return out;
}

std::optional<bool> server_offers_tls(const Address& address, int port) {
    int fd = ::socket(address.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return std::nullopt;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_storage storage{};
    socklen_t len = 0;
    if (address.family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&storage);
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET, address.ip.c_str(), &in->sin_addr);
        len = sizeof *in;
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET6, address.ip.c_str(), &in6->sin6_addr);
        len = sizeof *in6;
    }
    std::optional<bool> answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), len) == 0) {
        const unsigned char request[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}; // 80877103
        char reply = 0;
        if (::send(fd, request, sizeof request, MSG_NOSIGNAL) == 8 && ::recv(fd, &reply, 1, 0) == 1)
            answer = reply == 'S';
    }
    ::close(fd);
    return answer;
}

std::string conninfo_at(const HostParams& host, const std::string& ip) {
    std::string out;
    auto quoted = [](const std::string& v) {
        std::string q = "'";
        for (char c : v) {
            if (c == '\\' || c == '\'')
                q.push_back('\\');
            q.push_back(c);
        }
        return q + "'";
    };
    for (const auto& [key, value] : host.params)
        if (key != "hostaddr")
            out += key + "=" + quoted(value) + " ";
    return out + "hostaddr=" + quoted(ip);
}

} // namespace modelrepo::detail::doctor
