// SPDX-License-Identifier: MIT
// parse_session_config: libpq reads the conninfo; modelrepo checks what libpq would only
// check when connecting, splits the hosts, and remembers the password to mask it.
#include "session_config.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <sstream>

#include <libpq-fe.h>

#include "../../core/uri.hpp"

namespace modelrepo::detail {

namespace {

std::string env_or(const char* name, const std::string& fallback) {
    const char* value = std::getenv(name);
    return value && *value ? value : fallback;
}

/// The password as written in `conninfo`: the URI's userinfo as libpq finds it (from
/// "://" to the first '@' or '/'; after the first ':'), or a `password=` word.
std::string written_password(const std::string& conninfo) {
    auto scheme = conninfo.find("://");
    if (conninfo.starts_with("postgres") && scheme != std::string::npos) {
        std::size_t start = scheme + 3;
        std::size_t stop = conninfo.find_first_of("@/", start);
        if (stop == std::string::npos || conninfo[stop] != '@')
            return {};
        std::size_t colon = conninfo.find(':', start);
        return colon < stop ? conninfo.substr(colon + 1, stop - colon - 1) : std::string();
    }
    auto at = conninfo.find("password");
    if (at == std::string::npos)
        return {};
    auto eq = conninfo.find('=', at);
    if (eq == std::string::npos)
        return {};
    std::size_t start = conninfo.find_first_not_of(' ', eq + 1);
    if (start == std::string::npos)
        return {};
    if (conninfo[start] == '\'') {
        auto close = conninfo.find('\'', start + 1);
        return conninfo.substr(start + 1,
                               close == std::string::npos ? std::string::npos : close - start - 1);
    }
    return conninfo.substr(start, conninfo.find(' ', start) - start);
}

std::vector<std::string> secrets_of(const std::string& written, const char* parsed) {
    std::vector<std::string> out;
    auto add = [&](std::string s) {
        if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end())
            out.push_back(std::move(s));
    };
    add(written);
    if (auto decoded = percent_decode(written))
        add(*decoded);
    if (parsed)
        add(parsed);
    return out;
}

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> items;
    std::stringstream list(text);
    std::string item;
    while (std::getline(list, item, ','))
        items.push_back(item);
    if (!text.empty() && text.back() == ',')
        items.emplace_back();
    return items;
}

std::optional<long> whole_number(std::string_view text) {
    long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

struct Choice {
    std::string_view keyword;
    std::array<std::string_view, 6> values; ///< the words libpq 15 accepts (empty: unused)
};

// What libpq 15's connectOptions2 accepts; it checks only when connecting.
constexpr std::array choices{
    Choice{"sslmode", {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}},
    Choice{"gssencmode", {"disable", "prefer", "require"}},
    Choice{"channel_binding", {"disable", "prefer", "require"}},
    Choice{"target_session_attrs",
           {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"}},
    Choice{"ssl_min_protocol_version", {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}},
    Choice{"ssl_max_protocol_version", {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}},
};
constexpr std::array integer_options{
    std::string_view("connect_timeout"),  std::string_view("keepalives"),
    std::string_view("keepalives_idle"),  std::string_view("keepalives_interval"),
    std::string_view("keepalives_count"), std::string_view("tcp_user_timeout"),
    std::string_view("sslcompression"),
};

/// modelrepo's and Prisma's parameters, which PostgresConfig::from_url takes out.
constexpr std::array own_parameters{
    std::string_view("schema"),
    std::string_view("connection_limit"),
    std::string_view("pool_timeout"),
    std::string_view("socket_timeout"),
    std::string_view("pgbouncer"),
    std::string_view("statement_cache_size"),
    std::string_view("acquire_timeout_ms"),
    std::string_view("query_timeout_ms"),
    std::string_view("max_lifetime_s"),
    std::string_view("cache_dir"),
    std::string_view("max_stale"),
    std::string_view("cache"),
    std::string_view("feed_keepalive"),
    std::string_view("poll_interval"),
    std::string_view("outbox"),
    std::string_view("outbox_max"),
    std::string_view("read_target"),
    std::string_view("max_replication_lag"),
    std::string_view("direct_url"),
    std::string_view("feed"),
    std::string_view("name"),
    std::string_view("mapping"),
};

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

/// " (did you mean sslmode?)" when `word` is a near miss of a parameter name.
std::string suggestion(std::string_view word) {
    std::string best;
    std::size_t best_distance = 3;
    auto consider = [&](std::string_view name) {
        std::size_t d = edit_distance(word, name);
        if (d < best_distance) {
            best_distance = d;
            best = name;
        }
    };
    std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> defaults(PQconndefaults(),
                                                                            PQconninfoFree);
    for (auto* o = defaults.get(); o && o->keyword; ++o)
        consider(o->keyword);
    for (auto name : own_parameters)
        consider(name);
    return best.empty() ? "" : " (did you mean " + best + "?)";
}

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    return text;
}

Error invalid(const std::string& conninfo, const std::string& what,
              const std::vector<std::string>& secrets) {
    return make_error(
        Errc::invalid_argument,
        mask_secrets("invalid PostgreSQL connection string '" + redact_url(conninfo) + "': " + what,
                     secrets));
}

} // namespace

std::string quote_identifier(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"')
            out.push_back('"');
        out.push_back(c);
    }
    return out + "\"";
}

std::string quote_literal(std::string_view text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'')
            out.push_back('\'');
        out.push_back(c);
    }
    return out + "'";
}

std::string mask_secrets(std::string text, const std::vector<std::string>& secrets) {
    std::vector<const std::string*> order;
    for (const auto& s : secrets)
        if (!s.empty())
            order.push_back(&s);
    std::sort(order.begin(), order.end(),
              [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
    for (const std::string* secret : order)
        for (auto at = text.find(*secret); at != std::string::npos; at = text.find(*secret, at + 3))
            text.replace(at, secret->size(), "***");
    return text;
}

namespace {

/// The hosts of the URL (`host`, `hostaddr`, `port`, comma-separated lists), each with
/// the libpq parameters `common` to all, into `config`.
std::optional<Error> read_hosts(SessionConfig& config, const std::string& conninfo,
                                const std::string& host_text, const std::string& hostaddr_text,
                                const std::string& port_text,
                                const std::vector<std::pair<std::string, std::string>>& common) {
    auto hosts = split_commas(host_text);
    auto addresses = split_commas(hostaddr_text);
    auto ports = split_commas(port_text);
    std::size_t count = std::max({hosts.size(), addresses.size(), std::size_t{1}});
    if (!hosts.empty() && !addresses.empty() && hosts.size() != addresses.size())
        return invalid(conninfo,
                       "host names " + std::to_string(hosts.size()) + " and hostaddr values " +
                           std::to_string(addresses.size()) + " differ in number",
                       config.secrets);
    if (ports.size() > 1 && ports.size() != count)
        return invalid(conninfo,
                       std::to_string(ports.size()) + " ports for " + std::to_string(count) +
                           " hosts (give one port for all, or one per host)",
                       config.secrets);
    int default_port = static_cast<int>(whole_number(env_or("PGPORT", "5432")).value_or(5432));
    for (std::size_t i = 0; i < count; ++i) {
        HostParams h;
        std::string host = i < hosts.size() ? hosts[i] : "";
        std::string address = i < addresses.size() ? addresses[i] : "";
        std::string port = ports.empty() ? "" : ports.size() == 1 ? ports[0] : ports[i];
        h.port = default_port;
        if (!port.empty()) {
            auto n = whole_number(port);
            if (!n || *n < 1 || *n > 65'535)
                return invalid(conninfo,
                               "port must be a number from 1 to 65535, got '" + port + "'",
                               config.secrets);
            h.port = static_cast<int>(*n);
        }
        h.host = !host.empty() ? host : !address.empty() ? address : env_or("PGHOST", "localhost");
        h.label = host_port(h.host, h.port);
        h.params = common;
        if (!host.empty())
            h.params.emplace_back("host", host);
        if (!address.empty())
            h.params.emplace_back("hostaddr", address);
        if (!port.empty())
            h.params.emplace_back("port", port);
        // Every session speaks UTF-8: the catalogue's text is decoded as UTF-8, whatever
        // the database's encoding.
        h.params.emplace_back("client_encoding", "UTF8");
        config.target.hosts.emplace_back(h.host, h.port);
        config.hosts.push_back(std::move(h));
    }
    return std::nullopt;
}

} // namespace

Result<SessionConfig> parse_session_config(const std::string& conninfo) {
    std::string written = written_password(conninfo);
    char* message = nullptr;
    std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> options(
        PQconninfoParse(conninfo.c_str(), &message), PQconninfoFree);
    if (!options) {
        std::string what = message ? trim(message) : "out of memory";
        if (message)
            PQfreemem(message);
        // libpq names the parameter in quotes: offer the nearest known one.
        if (what.find("invalid URI query parameter") != std::string::npos ||
            what.find("invalid connection option") != std::string::npos) {
            auto open = what.find('"');
            auto close = open == std::string::npos ? open : what.find('"', open + 1);
            if (close != std::string::npos) {
                std::string word = what.substr(open + 1, close - open - 1);
                what = "'" + word + "' is not a libpq or modelrepo parameter" + suggestion(word) +
                       " (libpq: " + what + ")";
            }
        } else {
            what = "libpq cannot read it: " + what;
        }
        return invalid(conninfo, what, secrets_of(written, nullptr));
    }

    SessionConfig config;
    std::vector<std::pair<std::string, std::string>> common;
    std::string host_text, hostaddr_text, port_text;
    const char* password = nullptr;
    for (auto* o = options.get(); o->keyword; ++o) {
        if (!o->val)
            continue;
        std::string keyword = o->keyword;
        std::string value = o->val;
        if (keyword == "host")
            host_text = value;
        else if (keyword == "hostaddr")
            hostaddr_text = value;
        else if (keyword == "port")
            port_text = value;
        else if (keyword != "client_encoding")
            common.emplace_back(keyword, value);
        if (keyword == "user")
            config.target.user = value;
        else if (keyword == "dbname")
            config.target.database = value;
        else if (keyword == "password") {
            config.target.password_given = true;
            password = o->val;
        }
    }
    config.secrets = secrets_of(written, password);

    for (auto& [keyword, value] : common) {
        for (const Choice& choice : choices) {
            if (keyword != choice.keyword)
                continue;
            std::string allowed;
            bool ok = false;
            for (auto v : choice.values) {
                if (v.empty())
                    continue;
                ok = ok || v == value;
                allowed += (allowed.empty() ? "" : ", ") + std::string(v);
            }
            if (!ok)
                return invalid(conninfo,
                               keyword + " must be one of " + allowed + ", got '" + value + "'",
                               config.secrets);
        }
        for (auto name : integer_options)
            if (keyword == name && !whole_number(value))
                return invalid(conninfo, keyword + " must be a whole number, got '" + value + "'",
                               config.secrets);
        if (keyword == "connect_timeout") {
            // libpq: values below 2 s are raised to 2 s; 0 means none (modelrepo: 5 s).
            long seconds = *whole_number(value);
            config.connect_timeout = std::chrono::seconds(seconds <= 0 ? 5 : std::max(2L, seconds));
        }
    }

    if (auto problem = read_hosts(config, conninfo, host_text, hostaddr_text, port_text, common))
        return *problem;
    if (config.target.user.empty())
        config.target.user = env_or("PGUSER", env_or("USER", "postgres"));
    if (config.target.database.empty())
        config.target.database = env_or("PGDATABASE", config.target.user);
    config.source = config.target.display();
    return config;
}

} // namespace modelrepo::detail
