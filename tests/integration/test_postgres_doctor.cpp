// SPDX-License-Identifier: MIT
// modelrepo doctor against a real server: a healthy URL, an MD5 verifier, an
// unreloaded pg_hba.conf, the CLI.
#include <algorithm>
#include <atomic>
#include <thread>

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "serve_process.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

namespace {

const DoctorCheck* find_check(const DoctorReport& report, const std::string& name,
                              DoctorCheck::Status status) {
    for (const auto& c : report.checks)
        if (c.name == name && c.status == status)
            return &c;
    return nullptr;
}

std::string dump(const DoctorReport& report) {
    std::string out;
    for (const auto& c : report.checks)
        out += std::string(to_string(c.status)) + " " + c.scope + " " + c.name + ": " + c.detail +
               " | " + c.fix + "\n";
    return out;
}

/// A listener on loopback that answers every connection with `answer` (after reading
/// what the client sent first, when `read_first`), then closes it; until destroyed.
class Impostor {
public:
    Impostor(std::string answer, bool read_first)
        : answer_(std::move(answer)) {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(listener_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        REQUIRE(::listen(listener_, 16) == 0);
        thread_ = std::thread([this, read_first] {
            while (!stop_) {
                pollfd p{listener_, POLLIN, 0};
                if (::poll(&p, 1, 50) <= 0)
                    continue;
                int c = ::accept(listener_, nullptr, nullptr);
                if (c < 0)
                    continue;
                char request[256];
                if (read_first)
                    (void)!::read(c, request, sizeof request);
                (void)!::write(c, answer_.data(), answer_.size());
                ::close(c);
            }
        });
    }
    ~Impostor() {
        stop_ = true;
        thread_.join();
        ::close(listener_);
    }
    int port() const { return port_; }

private:
    std::string answer_;
    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace

TEST_CASE("doctor: a healthy URL, every address of localhost") {
    auto& s = server();
    fresh_catalogue("catalogue_doctor");
    auto report = diagnose_postgres(s.url("app", password, "catalogue_doctor", "localhost"),
                                    s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK(report.value().healthy());
    CHECK(find_check(report.value(), "auth", DoctorCheck::Status::ok));
    CHECK(find_check(report.value(), "method", DoctorCheck::Status::ok)
              ->detail.find("scram-sha-256") != std::string::npos);
    CHECK(find_check(report.value(), "schema", DoctorCheck::Status::ok)->detail.find("32 models") !=
          std::string::npos);
    CHECK(find_check(report.value(), "verifier", DoctorCheck::Status::ok)->detail.find("scram") !=
          std::string::npos);
    CHECK(find_check(report.value(), "reload", DoctorCheck::Status::ok));
    int tcp = 0;
    for (const auto& c : report.value().checks)
        tcp += c.name == "tcp" && c.status == DoctorCheck::Status::ok;
    CHECK(tcp >= 1);
    CHECK(dump(report.value()).find(password) == std::string::npos);
}

TEST_CASE("doctor: statuses stored with a date in the future (by psql) are named with the "
          "UPDATE that fixes them") {
    auto& s = server();
    fresh_catalogue("catalogue_future");
    s.psql("UPDATE model_status SET checked_at = '2100-01-01T00:00:00Z' WHERE model_slug IN "
           "('gpt-5', 'gpt-4o')",
           "catalogue_future");
    auto report = diagnose_postgres(s.url("app", password, "catalogue_future"), "");
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK_FALSE(report.value().healthy());
    auto future = find_check(report.value(), "future statuses", DoctorCheck::Status::fail);
    REQUIRE(future);
    CHECK(future->detail.find("2 stored statuses are dated in the future") != std::string::npos);
    CHECK(future->detail.find("2100-01-01") != std::string::npos);
    CHECK(future->fix.find("UPDATE model_status SET checked_at = now()") != std::string::npos);
    {
        // serve's status page points them out too.
        Serve serve({s.url("app", password, "catalogue_future")});
        nlohmann::json found;
        CHECK(eventually(
            [&] {
                auto status =
                    nlohmann::json::parse(curl({serve.base() + "/v1/status"}).body, nullptr, false);
                found = status.is_object() ? status["future_statuses"] : nlohmann::json();
                return found.is_object();
            },
            15s));
        CAPTURE(found.dump());
        CHECK(found["count"] == 2);
        CHECK(found["latest"] == "2100-01-01T00:00:00Z");
        CHECK(found["models"] == nlohmann::json::array({"gpt-4o", "gpt-5"}));
    }
    // Its fix works: after it, the doctor has nothing to say of them.
    s.psql("UPDATE model_status SET checked_at = now() WHERE checked_at > now() + interval '5 "
           "minutes'",
           "catalogue_future");
    auto after = diagnose_postgres(s.url("app", password, "catalogue_future"), "");
    REQUIRE(after);
    CHECK_FALSE(find_check(after.value(), "future statuses", DoctorCheck::Status::fail));
}

TEST_CASE("doctor: an MD5 verifier under a scram-sha-256 rule is named with its fix") {
    auto& s = server();
    s.psql("SET password_encryption = 'md5'; DROP ROLE IF EXISTS legacy; "
           "CREATE ROLE legacy LOGIN PASSWORD '" +
           password + "'");
    auto report = diagnose_postgres(s.url("legacy", password, "modelrepo"), s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK_FALSE(report.value().healthy());
    CHECK(find_check(report.value(), "auth", DoctorCheck::Status::fail));
    auto hba = find_check(report.value(), "pg_hba", DoctorCheck::Status::fail);
    REQUIRE(hba);
    CHECK(hba->detail.find("MD5 verifier under a scram-sha-256 rule") != std::string::npos);
    CHECK(hba->fix.find("ALTER ROLE \"legacy\" PASSWORD") != std::string::npos);
    CHECK(find_check(report.value(), "verifier", DoctorCheck::Status::ok)->detail.find("md5") !=
          std::string::npos);
}

TEST_CASE("doctor: a pg_hba.conf edit that was never reloaded") {
    auto& s = server();
    // The incident: 127.0.0.1 -> trust written to the file, the reload never done.
    std::this_thread::sleep_for(1100ms); // file times have one-second resolution here
    s.prepend_hba("host all all 127.0.0.1/32 trust");
    auto report = diagnose_postgres(s.url("app", password), s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    auto reload = find_check(report.value(), "reload", DoctorCheck::Status::fail);
    REQUIRE(reload);
    CHECK(reload->fix.find("SELECT pg_reload_conf();") != std::string::npos);
    // The file's first matching line is the new trust line, not yet in force.
    CHECK(dump(report.value()).find("trust") != std::string::npos);

    s.reload();
    auto after = diagnose_postgres(s.url("app", password), s.admin_conninfo());
    REQUIRE(after);
    CHECK(find_check(after.value(), "reload", DoctorCheck::Status::ok));
    // Put the scram rule back in force for the tests that follow.
    std::string content = s.replace_hba("host all all 127.0.0.1/32 scram-sha-256\n"
                                        "host all all ::1/128 scram-sha-256");
    (void)content;
    s.reload();
}

TEST_CASE("doctor CLI: exit 1 with findings, flags a raw reserved character in the password") {
    auto& s = server();
    std::string cli = test::require_env("MODELREPO_CLI");
    auto bad = test::run_process({cli, "doctor", s.url("app", "wr@ng/" + password)});
    CHECK(bad.exit_code == 1);
    CHECK(bad.out.find("[fail]") != std::string::npos);
    CHECK(bad.out.find("password-encoding") != std::string::npos);
    CHECK(bad.out.find(password) == std::string::npos);
    CHECK(bad.err.find(password) == std::string::npos);
    auto good = test::run_process({cli, "doctor", s.url("app", password, "catalogue_doctor"),
                                   "--admin-url", s.admin_conninfo(), "--json"});
    CHECK(good.exit_code == 0);
    CHECK(good.out.find("\"healthy\": true") != std::string::npos);
}

TEST_CASE("doctor --json against a server answering bytes that are not UTF-8: no abort") {
    Impostor garbage("\xff\xfe\xc3(R\x80garbage\xe9\n", /*read_first=*/false);
    std::string cli = test::require_env("MODELREPO_CLI");
    auto r = test::run_process(
        {cli, "--json", "doctor",
         "postgresql://app:" + password + "@127.0.0.1:" + std::to_string(garbage.port()) + "/db"});
    CAPTURE(r.err);
    CHECK(r.exit_code == 1); // findings, not a crash (134)
    CHECK(r.out.find("\"healthy\": false") != std::string::npos);
    CHECK(r.out.find(password) == std::string::npos);
}

TEST_CASE("doctor: an HTTP server on the port is not called a PostgreSQL server") {
    Impostor http("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", /*read_first=*/true);
    auto report = diagnose_postgres("postgresql://app:" + password +
                                    "@127.0.0.1:" + std::to_string(http.port()) + "/db");
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK(!report.value().healthy());
    auto* tcp = find_check(report.value(), "tcp", DoctorCheck::Status::fail);
    REQUIRE(tcp);
    CHECK(tcp->detail.find("not as PostgreSQL") != std::string::npos);
    CHECK(tcp->detail.find("HTTP/") != std::string::npos);
    CHECK(!find_check(report.value(), "tcp", DoctorCheck::Status::ok)); // before: "answers"
}

TEST_CASE("doctor: hostaddr= is where it connects, as libpq does") {
    auto& s = server();
    fresh_catalogue("catalogue_doctor_addr");
    // The host name does not resolve; libpq never looks it up when hostaddr is given.
    std::string url = "postgresql://app:" + password + "@db.invalid:" + std::to_string(s.port()) +
                      "/catalogue_doctor_addr?hostaddr=127.0.0.1";
    auto report = diagnose_postgres(url, s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK(!find_check(report.value(), "resolve", DoctorCheck::Status::fail)); // before: failed
    CHECK(find_check(report.value(), "auth", DoctorCheck::Status::ok));
    CHECK(report.value().healthy());
}

TEST_CASE("doctor: the method and pg_hba over the TLS the URL's sslmode asks for") {
    // A server of its own: TLS on, and pg_hba.conf that lets TLS in and rejects the rest.
    PgServer s;
    require_pg(s);
    if (!have_tool("openssl", {"version"}))
        return;
    auto ca = s.enable_tls();
    s.create_role("app", password, "modelrepo");
    s.replace_hba("hostssl all all 127.0.0.1/32 scram-sha-256\n"
                  "hostnossl all all 127.0.0.1/32 reject");
    s.reload();
    auto url = [&](const std::string& query) {
        return s.url("app", password, "modelrepo", "127.0.0.1", query);
    };
    {
        auto repo = open_repo(url("sslmode=require"));
        REQUIRE(repo->migrate());
        REQUIRE(repo->import_snapshot(builtin_snapshot()));
    }
    const std::vector<std::string> queries{"sslmode=require",
                                           "sslmode=verify-full&sslrootcert=" + ca.string(), ""};
    for (const std::string& query : queries) {
        CAPTURE(query);
        auto report = diagnose_postgres(url(query), s.admin_conninfo());
        REQUIRE(report);
        CAPTURE(dump(report.value()));
        CHECK(report.value().healthy()); // before: 2 [fail] (method and pg_hba, in the clear)
        auto method = find_check(report.value(), "method", DoctorCheck::Status::ok);
        REQUIRE(method);
        CHECK(method->detail.find("(over TLS) for scram-sha-256") != std::string::npos);
        auto hba = find_check(report.value(), "pg_hba", DoctorCheck::Status::ok);
        REQUIRE(hba);
        CHECK(hba->detail.find("hostssl") != std::string::npos);
        CHECK(find_check(report.value(), "tls", DoctorCheck::Status::ok)->detail.find("uses it") !=
              std::string::npos);
    }
    // In the clear, the same server says no; so does the doctor, on the line that does.
    auto plain = diagnose_postgres(url("sslmode=disable"), s.admin_conninfo());
    REQUIRE(plain);
    CAPTURE(dump(plain.value()));
    CHECK_FALSE(plain.value().healthy());
    CHECK(find_check(plain.value(), "method", DoctorCheck::Status::fail));
    auto rejected = find_check(plain.value(), "pg_hba", DoctorCheck::Status::fail);
    REQUIRE(rejected);
    CHECK(rejected->detail.find("hostnossl") != std::string::npos);
    CHECK(rejected->detail.find("reject") != std::string::npos);
}

TEST_CASE("doctor: sslmode=require against a server without TLS is a [fail] that says so") {
    auto& s = server();
    fresh_catalogue("catalogue_doctor_notls");
    auto report = diagnose_postgres(
        s.url("app", password, "catalogue_doctor_notls", "127.0.0.1", "sslmode=require"),
        s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK_FALSE(report.value().healthy());
    auto tls = find_check(report.value(), "tls", DoctorCheck::Status::fail);
    REQUIRE(tls);
    CHECK(tls->detail.find("does not offer TLS") != std::string::npos);
    CHECK(tls->fix.find("ssl") != std::string::npos);
}

TEST_CASE("doctor: readiness for logical decoding, and a slot nobody reads named with the "
          "statement that drops it") {
    auto& s = server();
    fresh_catalogue("catalogue_slots");
    s.psql("ALTER ROLE app NOREPLICATION");
    auto before = diagnose_postgres(s.url("app", password, "catalogue_slots"), "");
    REQUIRE(before);
    CAPTURE(dump(before.value()));
    auto* logical = find_check(before.value(), "logical", DoctorCheck::Status::skipped);
    REQUIRE(logical);
    CHECK(logical->detail.find("wal_level logical") != std::string::npos);
    CHECK(logical->fix.find("ALTER ROLE \"app\" REPLICATION;") != std::string::npos);
    CHECK(before.value().healthy()); // nothing uses logical decoding yet: no failure
    auto* feed = find_check(before.value(), "feed", DoctorCheck::Status::ok);
    REQUIRE(feed);
    CHECK(feed->detail.find("the trigger feed") != std::string::npos);

    // Migrated for the logical feed while the role may not stream: a failure with the fix.
    REQUIRE(open_repo(s.url("app", password, "catalogue_slots", "127.0.0.1", "feed=logical"))
                ->migrate());
    auto stuck = diagnose_postgres(s.url("app", password, "catalogue_slots"), "");
    REQUIRE(stuck);
    CAPTURE(dump(stuck.value()));
    auto* cannot = find_check(stuck.value(), "feed", DoctorCheck::Status::fail);
    REQUIRE(cannot);
    CHECK(cannot->detail.find("modelrepo_catalogue") != std::string::npos);
    CHECK(cannot->detail.find("feed=auto polls the tables instead") != std::string::npos);
    CHECK(cannot->fix.find("REPLICATION") != std::string::npos);

    s.psql("ALTER ROLE app REPLICATION");
    s.psql("SELECT pg_create_logical_replication_slot('abandoned_slot', 'pgoutput')",
           "catalogue_slots");
    s.psql("UPDATE model_status SET availability = 0.5", "catalogue_slots");
    auto after = diagnose_postgres(s.url("app", password, "catalogue_slots"), "");
    REQUIRE(after);
    CAPTURE(dump(after.value()));
    CHECK(find_check(after.value(), "logical", DoctorCheck::Status::ok));
    auto* logical_feed = find_check(after.value(), "feed", DoctorCheck::Status::ok);
    REQUIRE(logical_feed);
    CHECK(logical_feed->detail.find("feed=auto reads it") != std::string::npos);
    auto* slot = find_check(after.value(), "slot", DoctorCheck::Status::warn);
    REQUIRE(slot);
    CHECK(slot->detail.find("abandoned_slot") != std::string::npos);
    CHECK(slot->detail.find("nobody reads it") != std::string::npos);
    CHECK(slot->fix.find("pg_drop_replication_slot('abandoned_slot')") != std::string::npos);
    s.psql("SELECT pg_drop_replication_slot('abandoned_slot')", "catalogue_slots");
    s.psql("ALTER ROLE app NOREPLICATION");
}
