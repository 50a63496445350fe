// SPDX-License-Identifier: MIT
// diagnose_postgres(): every host and address of the URL (and the server behind PgBouncer
// through direct_url), then the server's own view with an administrator's session. The
// checks are in checks.hpp's files.
#include <pqxx/connection>

#include <modelrepo/durable.hpp>
#include <modelrepo/postgres_config.hpp>
#include <modelrepo/postgres_doctor.hpp>

#include "checks.hpp"

namespace modelrepo {

using Status = DoctorCheck::Status;

std::string_view to_string(DoctorCheck::Status s) noexcept {
    switch (s) {
    case Status::ok:
        return "ok";
    case Status::warn:
        return "warn";
    case Status::fail:
        return "fail";
    case Status::skipped:
        break;
    }
    return "skipped";
}

bool DoctorReport::healthy() const noexcept {
    for (const auto& c : checks)
        if (c.status == Status::fail)
            return false;
    return true;
}

namespace {

using namespace detail::doctor;

Result<DoctorReport> run_checks(const std::string& url, const std::string& admin_url) {
    DoctorReport report;
    auto& checks = report.checks;
    check_url(url, checks);
    // The durable layer's parameters (cache=live, outbox=) are not the database's.
    std::string database_url = url;
    if (auto durable = DurableConfig::take_from(database_url); !durable)
        return std::move(durable).error();
    auto config = PostgresConfig::from_url(database_url);
    if (!config) {
        if (!config.error().is(Errc::invalid_argument))
            return config.error();
        checks.push_back({"url", "parse", Status::fail, config.error().message,
                          "fix the URL; libpq refuses it as it is"});
        return report;
    }
    auto session = detail::parse_session_config(config.value().conninfo).value();
    const auto& target = session.target;
    std::vector<Address> first_addresses;
    // Every host of the URL (a primary and its standbys), every address it resolves to.
    for (const detail::HostParams& h : session.hosts) {
        const std::string& host = h.host;
        const int port = h.port;
        std::string resolve_error;
        // libpq connects to hostaddr= when it is given (host= then names the server for
        // TLS and pg_hba): so does the doctor.
        std::string hostaddr;
        for (const auto& [key, value] : h.params)
            if (key == "hostaddr")
                hostaddr = value;
        auto addresses = resolve(hostaddr.empty() ? host : hostaddr, port, resolve_error);
        if (addresses.empty()) {
            checks.push_back({host, "resolve", Status::fail,
                              "'" + host + "' does not resolve: " + resolve_error,
                              "fix the host name in the URL"});
            continue;
        }
        checks.push_back({host, "resolve", Status::ok,
                          hostaddr.empty()
                              ? "'" + host + "' resolves to " + std::to_string(addresses.size()) +
                                    " address(es); pg_hba.conf may treat them differently"
                              : "'" + host + "' is reached at hostaddr " + hostaddr +
                                    " (not looked up, as libpq does)",
                          ""});
        for (Address& address : addresses)
            check_address(address, port, h, session, config.value(), checks);
        if (first_addresses.empty())
            first_addresses = addresses; // with whether each connection there is TLS
    }
    // Behind PgBouncer: the server itself, through direct_url (what the feed uses): its
    // addresses are the ones pg_hba.conf and the verifier are checked for.
    if (config.value().pgbouncer && !config.value().direct_url.empty()) {
        auto direct = PostgresConfig::from_url(config.value().direct_url);
        if (direct) {
            auto direct_session = detail::parse_session_config(direct.value().conninfo);
            if (direct_session) {
                direct.value().schema = config.value().schema;
                direct.value().mapping = config.value().mapping;
                direct.value().max_clock_skew = config.value().max_clock_skew;
                std::vector<Address> direct_addresses;
                for (const detail::HostParams& h : direct_session.value().hosts) {
                    std::string resolve_error;
                    auto found = resolve(h.host, h.port, resolve_error);
                    for (Address& address : found) {
                        address.label = "server " + address.label;
                        check_address(address, h.port, h, direct_session.value(), direct.value(),
                                      checks);
                    }
                    if (direct_addresses.empty())
                        direct_addresses = found;
                }
                if (!direct_addresses.empty())
                    first_addresses = direct_addresses;
            }
        }
    }
    const auto& addresses = first_addresses;

    if (admin_url.empty()) {
        checks.push_back({"server", "admin", Status::skipped,
                          "no --admin-url: verifier, pg_hba and reload checks skipped", ""});
        return report;
    }
    auto admin_config = PostgresConfig::from_url(admin_url);
    if (!admin_config)
        return admin_config.error();
    try {
        pqxx::connection admin(admin_config.value().conninfo);
        admin_checks(admin, target, addresses, checks);
    } catch (const std::exception& e) {
        checks.push_back({"server", "admin", Status::fail,
                          redact("the administrator connection failed: " + std::string(e.what())),
                          "pass a superuser URL (or run as a role with pg_read_server_files)"});
    }
    return report;
}

} // namespace

Result<DoctorReport> diagnose_postgres(const std::string& url, const std::string& admin_url) {
    auto report = run_checks(url, admin_url);
    if (report)
        for (auto& c : report.value().checks) {
            c.detail = redact(c.detail);
            c.fix = redact(c.fix);
        }
    return report;
}

} // namespace modelrepo
