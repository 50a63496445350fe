// SPDX-License-Identifier: MIT
#include "systemd_notify.hpp"

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace modelrepo::serve {

SystemdNotifier::SystemdNotifier() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    if (!socket || !*socket)
        return;
    std::string address = socket;
    if (address.front() == '@')
        address.front() = '\0'; // the abstract namespace
    else if (address.front() != '/')
        return; // neither a path nor abstract (vsock addresses are not for serve)
    if (address.size() >= sizeof(sockaddr_un::sun_path))
        return;
    address_ = std::move(address);
}

bool SystemdNotifier::send(std::string_view state) const noexcept {
    if (address_.empty())
        return false;
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_un to{};
    to.sun_family = AF_UNIX;
    std::memcpy(to.sun_path, address_.data(), address_.size());
    auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                            reinterpret_cast<const sockaddr*>(&to), length);
    ::close(fd);
    return sent == static_cast<ssize_t>(state.size());
}

} // namespace modelrepo::serve
