// SPDX-License-Identifier: MIT
#include <set>

#include <doctest/doctest.h>

#include <modelrepo/error.hpp>

using namespace modelrepo;

TEST_CASE("Errc is a std::error_code category named modelrepo") {
    std::error_code ec = Errc::timeout;
    CHECK(ec.category() == error_category());
    CHECK(std::string(ec.category().name()) == "modelrepo");
    CHECK(ec.message() == "deadline passed");
    CHECK(ec != std::error_code(Errc::unreachable));
    CHECK(to_string(Errc::auth_failed) == "auth_failed");
    CHECK(to_string(Errc::all_sources_failed) == "all_sources_failed");
    CHECK(to_string(static_cast<Errc>(999)) == "unknown");
    CHECK(error_category().message(999) == "unknown modelrepo error");
}

TEST_CASE("every Errc has a distinct name and message") {
    std::set<std::string_view> names;
    for (int v = 1; v <= static_cast<int>(last_errc); ++v) {
        auto e = static_cast<Errc>(v);
        CHECK(to_string(e) != "unknown");
        CHECK(names.insert(to_string(e)).second);
        CHECK(error_category().message(v) != "unknown modelrepo error");
    }
}

TEST_CASE("Error knows its Errc and prints with its name") {
    Error error = make_error(Errc::bad_data, "$.models[0].slug: must not be empty");
    CHECK(error.errc() == Errc::bad_data);
    CHECK(error.is(Errc::bad_data));
    CHECK_FALSE(error.is(Errc::timeout));
    CHECK(error.to_string() == "bad_data: $.models[0].slug: must not be empty");

    Error foreign;
    foreign.code = std::make_error_code(std::errc::io_error);
    foreign.message = "x";
    CHECK_FALSE(foreign.errc().has_value());
    CHECK(foreign.to_string().starts_with("generic:"));
}

TEST_CASE("redact hides passwords and tokens in every shape") {
    const std::string secret = "Zq9-SeCrEt-Pw";
    CHECK(redact("postgresql://app:" + secret + "@db.internal:5432/models") ==
          "postgresql://app:***@db.internal:5432/models");
    // An unencoded '@' or '/' in the password is still hidden.
    CHECK(redact("postgres://app:p@ss/w" + secret + "@host/db").find(secret) == std::string::npos);
    CHECK(redact("host=db user=app password=" + secret + " dbname=x") ==
          "host=db user=app password=*** dbname=x");
    CHECK(redact("password='" + secret + " with space' host=db") == "password=*** host=db");
    CHECK(redact("https://x/?token=" + secret + "&a=1") == "https://x/?token=***&a=1");
    CHECK(redact("Authorization: Bearer " + secret) == "Authorization: Bearer ***");
    CHECK(redact("{\"token\": \"" + secret + "\"}").find(secret) == std::string::npos);
    CHECK(redact("using ghp_abcdefghijklmnopqrstuvwxyz0123456789 now") == "using *** now");
    CHECK(redact("github_pat_11ABCDEFG_xyz failed") == "*** failed");
    // Nothing to hide: unchanged.
    const std::string plain = "connection to 127.0.0.1:5432 refused; is the server running?";
    CHECK(redact(plain) == plain);
    CHECK(redact("postgresql://app@host/db") == "postgresql://app@host/db");
    // A mistyped '@' leaves the password where a port would be (found by fuzz_uri).
    CHECK(redact("postgres://u:" + secret + "\bhost/db?x=1") == "postgres://u:***/db?x=1");
    CHECK(redact("postgres://u:" + secret + " host/db").find(secret) == std::string::npos);
    // A mistyped "://": still a user:password@host shape (found by fuzz_uri).
    CHECK(redact("'postgresql2//app:" + secret + "@h1:5432/db'") ==
          "'postgresql2//app:***@h1:5432/db'");
    CHECK(redact("app:" + secret + "@host") == "app:***@host");
    // A quote inside the password (fuzz_uri found it): the userinfo runs past it.
    CHECK(redact("postgresql://app:'" + secret + "@h1:5432/db") ==
          "postgresql://app:***@h1:5432/db");
    CHECK(redact("see 'postgresql://app:" + secret + "@h1/db' now") ==
          "see 'postgresql://app:***@h1/db' now");
    // An '@' before the quote and the last one after it (fuzz_uri): masked to the last.
    CHECK(redact("postgresql://:@u:'" + secret + "@h:1/db").find(secret) == std::string::npos);
    CHECK(redact("mail me at ops@example.com") == "mail me at ops@example.com");
    const std::string ports = "postgresql://h1:5432,h2:5433/db and https://[::1]:8080/x";
    CHECK(redact(ports) == ports);
    CHECK(redact("a bearer token is required") == "a bearer token is required");
    const std::string prose = "the server rejected the password: it is wrong";
    CHECK(redact(prose) == prose);
    CHECK(redact("password: '" + secret + "'") == "password: ***");
}

TEST_CASE("IPv6 hosts and zones survive redaction; their passwords do not") {
    const std::string secret = "Zq9-SeCrEt-Pw";
    // The incident's addresses: ::1 and 127.0.0.1 are different pg_hba lines.
    for (std::string_view kept :
         {"postgresql://aigo@[::1]:5432/ai_server_info", "postgresql://[::1]:5432/db",
          "postgresql://aigo@[::1]:5432,127.0.0.1:5433/db",
          "postgresql://aigo@[fe80::1%25eth0]:5432/db", "postgresql://aigo@[2001:db8::7]/db",
          "cannot connect to postgresql://app@[::1]:41234/modelrepo as user \"app\""}) {
        CAPTURE(kept);
        CHECK(redact(kept) == std::string(kept));
    }
    CHECK(redact("postgresql://aigo:" + secret + "@[::1]:5432/ai_server_info") ==
          "postgresql://aigo:***@[::1]:5432/ai_server_info");
    CHECK(redact("postgresql://aigo:" + secret + "@[fe80::1%25eth0]:5432/db") ==
          "postgresql://aigo:***@[fe80::1%25eth0]:5432/db");
    // A bracketed host followed by a non-numeric "port" is still masked.
    CHECK(redact("postgresql://[::1]:" + secret + "/db").find(secret) == std::string::npos);
}

TEST_CASE("make_error redacts the message") {
    Error error = make_error(Errc::auth_failed, "login to postgresql://u:hunter22@h/db failed");
    CHECK(error.message.find("hunter22") == std::string::npos);
}

TEST_CASE("Result holds a value or an Error; value() on an error throws BadResultAccess") {
    Result<int> ok = 42;
    REQUIRE(ok);
    CHECK(ok.value() == 42);

    Result<int> failed = make_error(Errc::timeout, "query took longer than 5 s");
    REQUIRE_FALSE(failed);
    CHECK(failed.error().is(Errc::timeout));
    try {
        (void)failed.value();
        FAIL("value() did not throw");
    } catch (const BadResultAccess& e) {
        CHECK(e.error().is(Errc::timeout));
        CHECK(std::string(e.what()) == "timeout: query took longer than 5 s");
    }
    CHECK_THROWS_AS((void)ok.error(), BadResultAccess);

    Result<void> done = success();
    CHECK(done);
}

TEST_CASE("one classification of every Errc") {
    auto kind = [](Errc code) { return classify(make_error(code, "x")); };
    // What stands in for the source (a copy answers, an outbox keeps the write).
    for (Errc e :
         {Errc::unreachable, Errc::timeout, Errc::auth_failed, Errc::tls_failed,
          Errc::too_many_connections, Errc::pool_exhausted, Errc::circuit_open, Errc::read_only})
        CHECK_MESSAGE(kind(e).outage, to_string(e));
    for (Errc e : {Errc::invalid_argument, Errc::not_found, Errc::bad_data, Errc::query_failed,
                   Errc::schema_missing, Errc::database_missing, Errc::io_error, Errc::outbox_full,
                   Errc::disk_full, Errc::not_supported})
        CHECK_FALSE_MESSAGE(kind(e).outage, to_string(e));
    // Answers, not failures: a chain returns them.
    CHECK(kind(Errc::invalid_argument).answer);
    CHECK(kind(Errc::not_found).answer);
    CHECK_FALSE(kind(Errc::timeout).answer);
    // The table is consistent: an answer is the caller's, an outage never is, and what is
    // the caller's fault never trips a breaker.
    for (int i = 1; i <= static_cast<int>(last_errc); ++i) {
        auto e = static_cast<Errc>(i);
        ErrorClass c = kind(e);
        CHECK_MESSAGE(std::string(to_string(e)) != "unknown", i);
        if (c.answer)
            CHECK_MESSAGE(c.caller_fault, to_string(e));
        // read_only is both: a standby where the primary was (an outage for writes) and a
        // source that takes none; bad_data is the caller's in a write, a source's fault in
        // its answer.
        const bool outage_blamed_on_caller = c.outage && c.caller_fault && e != Errc::read_only;
        const bool callers_fault_trips = c.caller_fault && c.trips_breaker && e != Errc::bad_data;
        CHECK_FALSE_MESSAGE(outage_blamed_on_caller, to_string(e));
        CHECK_FALSE_MESSAGE(callers_fault_trips, to_string(e));
        CHECK_MESSAGE(c.http_status >= 400, to_string(e));
    }
    // Details refine the kind.
    Error http = make_error(Errc::http_status, "x");
    http.http_status = 502;
    CHECK(classify(http).trips_breaker);
    http.http_status = 404;
    CHECK_FALSE(classify(http).trips_breaker);
    Error sql = make_error(Errc::query_failed, "x");
    sql.sqlstate = "23503";
    CHECK(classify(sql).caller_fault);
    CHECK(classify(sql).http_status == 400);
    sql.sqlstate = "40P01";
    CHECK(classify(sql).retryable);
    CHECK_FALSE(classify(sql).caller_fault);
    CHECK(classify(sql).http_status == 503); // come back shortly, not a server fault
    sql.sqlstate = "40001";
    CHECK(classify(sql).http_status == 503);
    sql.sqlstate = "42P01";
    CHECK(classify(sql).http_status == 500);
    Error foreign;
    foreign.code = std::make_error_code(std::errc::io_error);
    CHECK(classify(foreign) == ErrorClass{});
}
