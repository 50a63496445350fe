// SPDX-License-Identifier: MIT
#include "target.hpp"

#include <cstdlib>
#include <sstream>

#include "../core/uri.hpp"

namespace modelrepo::detail {

namespace {

std::string env_or(const char* name, const std::string& fallback) {
    const char* value = std::getenv(name);
    return value && *value ? value : fallback;
}

std::string host_port(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

} // namespace

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
    PgTarget target;
    std::string host_text;
    std::string port_text;
    if (conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://")) {
        auto uri = parse_uri(conninfo);
        if (uri) {
            std::string authority = uri.value().authority;
            if (auto at = authority.rfind('@'); at != std::string::npos) {
                std::string userinfo = authority.substr(0, at);
                authority = authority.substr(at + 1);
                auto colon = userinfo.find(':');
                target.password_given = colon != std::string::npos;
                target.user = percent_decode(userinfo.substr(0, colon)).value_or("");
            }
            // host[:port][,host[:port]]...; IPv6 in brackets
            std::stringstream list(authority);
            std::string item;
            while (std::getline(list, item, ',')) {
                std::string host = item;
                int port = 0;
                if (!item.empty() && item.front() == '[') {
                    auto close = item.find(']');
                    host =
                        item.substr(1, close == std::string::npos ? std::string::npos : close - 1);
                    if (close != std::string::npos && close + 1 < item.size() &&
                        item[close + 1] == ':')
                        port = std::atoi(item.c_str() + close + 2);
                } else if (auto colon = item.rfind(':'); colon != std::string::npos) {
                    host = item.substr(0, colon);
                    port = std::atoi(item.c_str() + colon + 1);
                }
                target.hosts.emplace_back(percent_decode(host).value_or(host), port);
            }
            std::string path = uri.value().path;
            if (!path.empty() && path.front() == '/')
                path.erase(0, 1);
            target.database = percent_decode(path).value_or(path);
            if (auto h = uri.value().param("host"))
                host_text = *h;
            if (auto p = uri.value().param("port"))
                port_text = *p;
            if (auto u = uri.value().param("user"))
                target.user = *u;
            if (auto d = uri.value().param("dbname"))
                target.database = *d;
            if (uri.value().param("password"))
                target.password_given = true;
        }
    } else {
        std::stringstream words(conninfo);
        std::string word;
        while (words >> word) {
            auto eq = word.find('=');
            if (eq == std::string::npos)
                continue;
            std::string key = word.substr(0, eq);
            std::string value = word.substr(eq + 1);
            if (key == "host" || key == "hostaddr")
                host_text = value;
            else if (key == "port")
                port_text = value;
            else if (key == "user")
                target.user = value;
            else if (key == "dbname")
                target.database = value;
            else if (key == "password")
                target.password_given = true;
        }
    }
    if (!host_text.empty()) {
        target.hosts.clear();
        std::stringstream list(host_text);
        std::string host;
        while (std::getline(list, host, ','))
            target.hosts.emplace_back(host, 0);
    }
    int default_port = std::atoi(env_or("PGPORT", "5432").c_str());
    if (!port_text.empty())
        default_port = std::atoi(port_text.c_str());
    if (target.hosts.empty() || (target.hosts.size() == 1 && target.hosts[0].first.empty()))
        target.hosts = {{env_or("PGHOST", "localhost"), 0}};
    for (auto& [host, port] : target.hosts)
        if (port == 0)
            port = default_port;
    if (target.user.empty())
        target.user = env_or("PGUSER", env_or("USER", "postgres"));
    if (target.database.empty())
        target.database = env_or("PGDATABASE", target.user);
    return target;
}

} // namespace modelrepo::detail
