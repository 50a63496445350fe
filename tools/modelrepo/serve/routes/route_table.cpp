// SPDX-License-Identifier: MIT
#include "route_table.hpp"

#include <algorithm>

namespace modelrepo::serve {

std::string_view to_string(Scope scope) noexcept {
    switch (scope) {
    case Scope::read:
        return "read";
    case Scope::write:
        return "write";
    case Scope::none:
        return "none";
    case Scope::operate:
        break;
    }
    return "operate";
}

void RouteTable::add(Route route) {
    routes_.push_back(std::move(route));
}

bool RouteTable::matches(const Route& route, std::string_view path, std::string_view& param) {
    const std::string_view pattern = route.pattern;
    auto brace = pattern.find('{');
    if (brace == std::string_view::npos)
        return path == pattern;
    // "/v1/models/{slug}": the prefix, then anything (the handler checks it).
    if (!path.starts_with(pattern.substr(0, brace)))
        return false;
    param = path.substr(brace);
    return true;
}

std::optional<RouteTable::Match> RouteTable::find(std::string_view method,
                                                  std::string_view path) const {
    const std::string_view wanted = method == "HEAD" ? std::string_view("GET") : method;
    for (const Route& route : routes_) {
        std::string_view param;
        if (route.method == wanted && matches(route, path, param))
            return Match{&route, param};
    }
    return std::nullopt;
}

bool RouteTable::knows(std::string_view path) const {
    std::string_view param;
    return std::any_of(routes_.begin(), routes_.end(),
                       [&](const Route& r) { return matches(r, path, param); });
}

std::string RouteTable::allow(std::string_view path) const {
    std::vector<std::string_view> methods;
    for (const Route& route : routes_) {
        std::string_view param;
        if ((path == "*" || matches(route, path, param)) &&
            std::find(methods.begin(), methods.end(), route.method) == methods.end())
            methods.push_back(route.method);
    }
    if (methods.empty())
        return {};
    // GET, HEAD, OPTIONS first, then the others by name.
    std::string out;
    const bool get = std::find(methods.begin(), methods.end(), "GET") != methods.end();
    out = get ? "GET, HEAD, OPTIONS" : "OPTIONS";
    std::sort(methods.begin(), methods.end());
    for (std::string_view m : methods)
        if (m != "GET")
            out += ", " + std::string(m);
    return out;
}

Lane RouteTable::lane_of(const Route& route, const Request& request) {
    if (route.lane == Lane::read && route.in_memory && route.in_memory(request))
        return Lane::io;
    return route.lane;
}

} // namespace modelrepo::serve
