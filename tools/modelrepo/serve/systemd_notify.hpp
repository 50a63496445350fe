// SPDX-License-Identifier: MIT
// systemd's service notifications (sd_notify(3)) without libsystemd: one datagram per
// state to the socket $NOTIFY_SOCKET names (a path, or '@' for the abstract namespace).
// serve tells READY=1 once it answers from any source, RELOADING=1 and READY=1 around a
// SIGHUP, STOPPING=1 at SIGTERM; with Type=notify in its unit, `systemctl start` returns
// when it is ready. Without $NOTIFY_SOCKET it does nothing.
//
// Thread safety: send() may be called from any thread.
#pragma once

#include <string>
#include <string_view>

namespace modelrepo::serve {

class SystemdNotifier {
public:
    /// Reads $NOTIFY_SOCKET (and leaves it: a child serve starts has no business with it,
    /// but serve starts none).
    SystemdNotifier();
    SystemdNotifier(const SystemdNotifier&) = delete;
    SystemdNotifier& operator=(const SystemdNotifier&) = delete;

    /// Whether systemd (or a test) listens.
    bool enabled() const noexcept { return !address_.empty(); }

    /// Sends `state` ("READY=1\nSTATUS=…"); false when it could not be sent (nothing is
    /// retried: systemd's own timeouts tell).
    bool send(std::string_view state) const noexcept;

private:
    std::string address_; ///< sun_path's bytes; a leading NUL for the abstract namespace
};

} // namespace modelrepo::serve
