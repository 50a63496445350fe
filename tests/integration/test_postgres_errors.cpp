// SPDX-License-Identifier: MIT
// What a failed connect says: wrong password, MD5 verifier, missing database or role,
// no pg_hba line, refused; and that no message ever holds the password.
#include <algorithm>
#include <atomic>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "postgres/driver/errors.hpp"
#include "postgres/driver/session_config.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

TEST_CASE("wrong password: auth_failed, 28P01, host and port and method named, no password") {
    auto& s = server();
    auto repo = open_repo(s.url("app", "not-" + password));
    auto e = expect_error(repo->count_models(), Errc::auth_failed);
    CHECK(e.sqlstate == "28P01");
    CHECK(e.message.find(std::to_string(s.port())) != std::string::npos);
    CHECK(e.message.find("127.0.0.1") != std::string::npos);
    CHECK(e.message.find("scram-sha-256") != std::string::npos);
    CHECK(e.target == "127.0.0.1:" + std::to_string(s.port()));
    // The next call fails fast from the pool's memory of the failure.
    auto start = steady_clock::now();
    expect_error(repo->count_models(), Errc::auth_failed);
    CHECK(steady_clock::now() - start < 2s);
}

TEST_CASE("an MD5 verifier under a scram-sha-256 rule fails like a wrong password") {
    auto& s = server();
    s.psql("SET password_encryption = 'md5'; DROP ROLE IF EXISTS legacy; "
           "CREATE ROLE legacy LOGIN PASSWORD '" +
           password + "'");
    auto repo = open_repo(s.url("legacy", password, "modelrepo"));
    auto e = expect_error(repo->count_models(), Errc::auth_failed);
    CHECK(e.sqlstate == "28P01");
    CHECK(e.message.find("MD5") != std::string::npos);
}

TEST_CASE("missing database, unknown role, no pg_hba entry, refused") {
    auto& s = server();
    auto missing = open_repo(s.url("app", password, "no_such_db"));
    auto e = expect_error(missing->count_models(), Errc::database_missing);
    CHECK(e.sqlstate == "3D000");

    auto ghost = open_repo(s.url("ghost", password, "modelrepo"));
    expect_error(ghost->count_models(), Errc::auth_failed);

    // Only 'app' may connect over TCP now: 'outsider' has no pg_hba line.
    s.psql("DROP ROLE IF EXISTS outsider; CREATE ROLE outsider LOGIN PASSWORD '" + password + "'");
    std::string saved = s.replace_hba("host all app 127.0.0.1/32 scram-sha-256\n"
                                      "host all app ::1/128 scram-sha-256");
    s.reload();
    auto outsider = open_repo(s.url("outsider", password, "modelrepo"));
    auto hba = expect_error(outsider->count_models(), Errc::auth_failed);
    CHECK(hba.sqlstate == "28000");
    CHECK(hba.message.find("pg_hba.conf") != std::string::npos);
    s.restore_hba(saved);
    s.reload();

    // A port where nothing listens.
    auto refused = open_repo("postgresql://app:" + password + "@127.0.0.1:1/modelrepo");
    auto r = expect_error(refused->count_models(), Errc::unreachable);
    CHECK(r.message.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("an auth failure on [::1] names [::1]:PORT, never the password") {
    auto& s = server();
    auto repo = open_repo(s.url("app", "not-" + password, "modelrepo", "::1"));
    CHECK(repo->name().find("[::1]:" + std::to_string(s.port())) != std::string_view::npos);
    auto e = expect_error(repo->count_models(), Errc::auth_failed);
    CHECK(e.message.find("[::1]:" + std::to_string(s.port())) != std::string::npos);
    CHECK(e.target == "[::1]:" + std::to_string(s.port()));
    CHECK(e.message.find("not-" + password) == std::string::npos);
    // And the right password works over ::1 (pg_hba has a scram line for it).
    auto ok = open_repo(s.url("app", password, "modelrepo", "::1"));
    CHECK(ok->check_health());
}

TEST_CASE("a parameter libpq would refuse is invalid_argument from open(), naming it") {
    auto& s = server();
    const std::string base = s.url("app", password, "modelrepo");
    struct Case {
        std::string query;
        std::string named;
    };
    for (const Case& c : {Case{"foo=bar", "'foo'"}, Case{"sslmode=bogus", "sslmode"},
                          Case{"sslmod=require", "did you mean sslmode?"},
                          Case{"target_session_attrs=rw", "target_session_attrs"},
                          Case{"keepalives_idle=soon", "keepalives_idle"}}) {
        CAPTURE(c.query);
        auto started = steady_clock::now();
        auto repo = modelrepo::open(base + "?" + c.query);
        auto e = expect_error(repo, Errc::invalid_argument);
        CHECK(e.message.find(c.named) != std::string::npos);
        CHECK(steady_clock::now() - started < 1s); // no connect was tried
        // In a chain it is a configuration error too, not a source to fail over from.
        std::vector<std::string> chain{base + "?" + c.query, "builtin:"};
        expect_error(open_chain(chain), Errc::invalid_argument);
    }
    // libpq's own parameters pass, as do modelrepo's.
    CHECK(modelrepo::open(base + "?sslmode=disable&target_session_attrs=read-write&"
                                 "keepalives_idle=30&schema=x&connection_limit=2"));
}

TEST_CASE("a password libpq would misread is refused without printing it") {
    auto& s = server();
    const std::string port = std::to_string(s.port());
    // An unencoded '/': libpq takes "hunter2" for the port and prints it.
    auto slash = modelrepo::open("postgresql://acc:hunter2/x@127.0.0.1:" + port + "/db");
    auto e = expect_error(slash, Errc::invalid_argument);
    CHECK(e.message.find("hunter2") == std::string::npos);
    CHECK(e.message.find("%2F") != std::string::npos);
    // A %00 in the password: libpq's message quotes the whole password.
    auto nul = modelrepo::open("postgresql://acc:hunter2%00x@127.0.0.1:" + port + "/db");
    auto n = expect_error(nul, Errc::invalid_argument);
    CHECK(n.message.find("hunter2") == std::string::npos);
    CHECK(n.message.find("%00") != std::string::npos);
}

TEST_CASE("'#' and '?' in a password are part of it, as libpq reads the URL") {
    auto& s = server();
    const std::string tricky = "h#sh?q-" + password;
    s.psql("DROP ROLE IF EXISTS tricky; CREATE ROLE tricky LOGIN PASSWORD '" + tricky + "'");
    s.psql("GRANT ALL ON DATABASE modelrepo TO tricky");
    const std::string hostport = "127.0.0.1:" + std::to_string(s.port());
    auto repo = open_repo("postgresql://tricky:" + tricky + "@" + hostport + "/modelrepo");
    CHECK(repo->name() == "postgresql://tricky@" + hostport + "/modelrepo");
    CHECK(repo->check_health());
    auto wrong =
        open_repo("postgresql://tricky:" + tricky + "x@" + hostport + "/modelrepo?sslmode=disable");
    auto e = expect_error(wrong->count_models(), Errc::auth_failed);
    CHECK(e.target == hostport);
    CHECK(e.message.find(hostport) != std::string::npos);
    CHECK(e.message.find("h#sh") == std::string::npos);
}

TEST_CASE("TLS causes are told from libpq's own words, never by a bare \"does not exist\"") {
    auto config = detail::parse_session_config("postgresql://app@127.0.0.1:5432/catalogue").value();
    const auto& host = config.hosts.front();
    auto cause_of = [&](const std::string& libpq) {
        return detail::connect_error(libpq, config, host, std::chrono::milliseconds(0));
    };
    // libpq 15's words for a missing sslrootcert (sslmode=verify-full&sslrootcert=/nope.crt).
    auto ca = cause_of("root certificate file \"/nope.crt\" does not exist\nEither provide the "
                       "file, use the system's trusted roots with sslrootcert=system, or change "
                       "sslmode to disable server certificate verification.");
    CHECK(ca.is(Errc::tls_failed));
    CHECK(ca.message.find("sslrootcert") != std::string::npos);
    CHECK(ca.message.find("createdb") == std::string::npos);
    CHECK(cause_of("could not open certificate file \"/c.crt\": No such file or directory")
              .is(Errc::tls_failed));
    CHECK(cause_of("private key file \"/k.key\" has group or world access").is(Errc::tls_failed));
    CHECK(cause_of("server does not support SSL, but SSL was required").is(Errc::tls_failed));
    // The database's and the role's own sentences keep their causes.
    auto db = cause_of("FATAL:  database \"nope\" does not exist");
    CHECK(db.is(Errc::database_missing));
    CHECK(db.sqlstate == "3D000");
    CHECK(cause_of("FATAL:  role \"nobody\" does not exist").is(Errc::auth_failed));
    // Something else that "does not exist" is not a missing database.
    CHECK_FALSE(cause_of("relation \"x\" does not exist").is(Errc::database_missing));
    // And a real server without TLS, asked for it.
    auto& s = server();
    auto required = open_repo(s.url("app", password, "modelrepo", "127.0.0.1", "sslmode=require"));
    auto e = expect_error(required->count_models(), Errc::tls_failed);
    CHECK(e.message.find("does not offer it") != std::string::npos);
}

TEST_CASE("no message ever held the password") {
    check_no_password_seen(12);
}
