// SPDX-License-Identifier: MIT
#include "target.hpp"

#include "session_config.hpp"

namespace modelrepo::detail {

std::string host_port(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string PgTarget::host_list() const {
    std::string out;
    for (const auto& [host, port] : hosts)
        out += (out.empty() ? "" : ",") + host_port(host, port);
    return out;
}

std::string PgTarget::display() const {
    return "postgresql://" + user + "@" + host_list() + "/" + database;
}

PgTarget parse_pg_target(const std::string& conninfo) {
    if (auto session = parse_session_config(conninfo))
        return session.value().target;
    return parse_session_config("").value().target;
}

} // namespace modelrepo::detail
