// SPDX-License-Identifier: MIT
// The doctor's look with an administrator's session: password_encryption, the role's
// verifier, the pg_hba.conf line each address matches, and a pg_hba.conf never reloaded.
#include <cstring>
#include <optional>

#include <arpa/inet.h>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include "checks.hpp"

namespace modelrepo::detail::doctor {

namespace {

/// Does `ip` fall in pg_hba's address/netmask?
bool address_matches(const std::string& ip, const std::string& rule_address,
                     const std::string& netmask) {
    if (rule_address == "all" || rule_address.empty())
        return true;
    if (rule_address == "samehost" || rule_address == "samenet")
        return ip == "127.0.0.1" || ip == "::1";
    unsigned char a[16]{}, r[16]{}, m[16]{};
    bool v6 = ip.find(':') != std::string::npos;
    int family = v6 ? AF_INET6 : AF_INET;
    std::size_t size = v6 ? 16 : 4;
    if (::inet_pton(family, ip.c_str(), a) != 1 ||
        ::inet_pton(family, rule_address.c_str(), r) != 1)
        return false;
    if (netmask.empty() || ::inet_pton(family, netmask.c_str(), m) != 1)
        std::memset(m, 0xff, size);
    for (std::size_t i = 0; i < size; ++i)
        if ((a[i] & m[i]) != (r[i] & m[i]))
            return false;
    return true;
}

/// "{all}" / "{app,other}" from pg_hba_file_rules' text[] columns.
bool list_matches(std::string list, const std::string& name) {
    if (list.size() >= 2 && list.front() == '{')
        list = list.substr(1, list.size() - 2);
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t comma = list.find(',', start);
        std::string item =
            list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item.size() >= 2 && item.front() == '"')
            item = item.substr(1, item.size() - 2);
        if (item == "all" || item == name || item == "sameuser" || item == "samerole")
            return true;
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return false;
}

} // namespace

namespace {

/// password_encryption, then the role's stored verifier ("scram-sha-256", "md5", "plain",
/// "none"), which the pg_hba lines are read against.
std::string verifier_checks(pqxx::nontransaction& tx, const PgTarget& target, Checks& checks) {
    std::string encryption = tx.exec("SHOW password_encryption")[0][0].c_str();
    checks.push_back({"server", "password_encryption",
                      encryption == "scram-sha-256" ? Status::ok : Status::warn,
                      "new passwords are stored as " + encryption,
                      encryption == "scram-sha-256"
                          ? ""
                          : "ALTER SYSTEM SET password_encryption = 'scram-sha-256'; SELECT "
                            "pg_reload_conf(); then reset the role's password"});
    auto role = tx.exec_params("SELECT rolpassword FROM pg_authid WHERE rolname = $1", target.user);
    if (role.empty()) {
        checks.push_back({"server", "role", Status::fail,
                          "role \"" + target.user + "\" does not exist",
                          "CREATE ROLE \"" + target.user + "\" LOGIN PASSWORD '…';"});
        return "none";
    }
    std::string stored = role[0][0].is_null() ? "" : role[0][0].c_str();
    std::string verifier = stored.starts_with("SCRAM-SHA-256$") ? "scram-sha-256"
                           : stored.starts_with("md5")          ? "md5"
                           : stored.empty()                     ? "none"
                                                                : "plain";
    checks.push_back({"server", "verifier", Status::ok,
                      "role \"" + target.user + "\" has a stored " + verifier + " verifier", ""});
    return verifier;
}

/// The first line of pg_hba.conf (`rules`: pg_hba_file_rules) that `address`'s
/// connection matches, if any.
std::optional<pqxx::row> first_match(const pqxx::result& rules, const Address& address,
                                     const PgTarget& target) {
    for (const auto& row : rules) {
        std::string type = row[1].c_str();
        if (!row[7].is_null() && std::strlen(row[7].c_str()) > 0)
            continue;
        // The kinds of line this client's connection can match.
        if (type != "host" && type != (address.tls ? "hostssl" : "hostnossl"))
            continue;
        if (!list_matches(row[2].c_str(), target.database) ||
            !list_matches(row[3].c_str(), target.user) ||
            !address_matches(address.ip, row[4].c_str(), row[5].c_str()))
            continue;
        return row;
    }
    return std::nullopt;
}

/// The pg_hba.conf line for `address`: none (fail, with the line to add), one that rejects,
/// or scram-sha-256 over an MD5 verifier (fail: the same 28P01 as a wrong password).
DoctorCheck hba_check(const pqxx::result& rules, const Address& address, const PgTarget& target,
                      const std::string& verifier) {
    std::optional<pqxx::row> first = first_match(rules, address, target);
    if (!first)
        return {address.label, "pg_hba", Status::fail,
                "no pg_hba.conf line matches host " + address.ip + ", user \"" + target.user +
                    "\", database \"" + target.database + "\"" +
                    (address.tls ? " over TLS" : " in the clear"),
                "add e.g. '" + std::string(address.tls ? "hostssl " : "host ") + target.database +
                    " " + target.user + " " + address.ip +
                    (address.family == AF_INET6 ? "/128" : "/32") +
                    " scram-sha-256' and SELECT pg_reload_conf();"};
    const pqxx::row& row = *first;
    std::string method = row[6].c_str();
    auto plain = [](std::string list) {
        if (list.size() >= 2 && list.front() == '{')
            list = list.substr(1, list.size() - 2);
        return list;
    };
    std::string line =
        "line " + std::string(row[0].c_str()) + ": " + row[1].c_str() + " " +
        plain(row[2].c_str()) + " " + plain(row[3].c_str()) + " " + row[4].c_str() +
        (row[5].is_null() || !*row[5].c_str() ? "" : " " + std::string(row[5].c_str())) + " " +
        method;
    const bool md5_under_scram = method == "scram-sha-256" && verifier == "md5";
    Status status = Status::ok;
    std::string fix;
    if (md5_under_scram) {
        status = Status::fail;
        fix = "the role's verifier is MD5 but this line asks for scram-sha-256, which "
              "fails exactly like a wrong password (28P01). As a superuser: SET "
              "password_encryption = 'scram-sha-256'; ALTER ROLE \"" +
              target.user + "\" PASSWORD '…';";
    } else if (method == "reject") {
        status = Status::fail;
        fix = "this line rejects the client; change it and SELECT pg_reload_conf();";
    }
    return {address.label, "pg_hba", status,
            "first matching pg_hba.conf " + line +
                (md5_under_scram ? " (MD5 verifier under a scram-sha-256 rule)" : ""),
            fix};
}

/// pg_hba.conf edited after the configuration was last loaded: the rules read above are
/// the file's, not the ones in force.
DoctorCheck reload_check(pqxx::nontransaction& tx) {
    auto reload = tx.exec("SELECT (pg_stat_file(current_setting('hba_file'))).modification > "
                          "pg_conf_load_time(), (pg_stat_file(current_setting('hba_file')))"
                          ".modification::text, pg_conf_load_time()::text");
    bool stale = reload[0][0].as<bool>();
    return {"server", "reload", stale ? Status::fail : Status::ok,
            stale ? "pg_hba.conf changed at " + std::string(reload[0][1].c_str()) +
                        " after the configuration was last loaded at " + reload[0][2].c_str() +
                        ": the server still uses the old rules (the pg_hba lines above are the "
                        "file's, not the ones in force)"
                  : "pg_hba.conf has not changed since the last reload at " +
                        std::string(reload[0][2].c_str()),
            stale ? "SELECT pg_reload_conf(); from any superuser session applies it; no OS "
                    "service rights are needed"
                  : ""};
}

} // namespace

void admin_checks(pqxx::connection& admin, const PgTarget& target,
                  const std::vector<Address>& addresses, Checks& checks) {
    pqxx::nontransaction tx(admin);
    const std::string verifier = verifier_checks(tx, target, checks);
    auto rules = tx.exec("SELECT line_number, type, database::text, user_name::text, "
                         "coalesce(address, ''), coalesce(netmask, ''), coalesce(auth_method, ''), "
                         "coalesce(error, '') FROM pg_hba_file_rules ORDER BY line_number");
    for (const Address& address : addresses)
        checks.push_back(hba_check(rules, address, target, verifier));
    checks.push_back(reload_check(tx));
}

} // namespace modelrepo::detail::doctor
