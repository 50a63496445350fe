// SPDX-License-Identifier: MIT
// Who may call serve's routes and what browsers and caches are told (serve/routes/access,
// the Service's dispatch): scoped tokens (Bearer and Basic), 401/403, --public-catalogue,
// the Host a loopback listener answers, CORS, ETag/304 and Cache-Control.
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <modelrepo/modelrepo.hpp>

#include "scripted_repository.hpp"
#include "serve/serve_plan.hpp"
#include "serve/service.hpp"

using namespace modelrepo;
using namespace modelrepo::serve;
using nlohmann::json;

namespace {

const std::string write_token = "w-Token-81";
const std::string read_token = "r-Token-27";

/// The header's value; its values joined by ", " when it comes more than once.
std::string header(const Response& r, std::string_view name) {
    std::string out;
    for (auto& [k, v] : r.headers)
        if (k == name)
            out += (out.empty() ? "" : ", ") + v;
    return out;
}

std::string code_of(const Response& r) {
    return json::parse(r.body)["error"]["code"];
}

/// "Basic base64(user:password)".
std::string basic(const std::string& user, const std::string& password) {
    static const char* alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string in = user + ":" + password, out;
    unsigned bits = 0;
    int count = 0;
    for (unsigned char c : in) {
        bits = (bits << 8) | c;
        for (count += 8; count >= 6; count -= 6)
            out += alphabet[(bits >> (count - 6)) & 63];
    }
    if (count > 0)
        out += alphabet[(bits << (6 - count)) & 63];
    while (out.size() % 4)
        out += '=';
    return "Basic " + out;
}

const std::string one_status =
    R"([{"model":"gpt-4o","health":"outage","availability":0.25,"latency_ms":null,)"
    R"("error_rate":0.75,"region":"eu","checked_at":"2026-12-02T10:00:00Z"}])";

struct Server {
    std::shared_ptr<ModelRepository> primary =
        MemoryRepository::create(builtin_snapshot(), "primary").value();
    std::shared_ptr<FallbackRepository> chain;
    std::unique_ptr<Service> service;

    explicit Server(AccessOptions access) {
        chain = std::shared_ptr<FallbackRepository>(FallbackRepository::create({primary}).value());
        ServiceOptions options;
        options.access = std::move(access);
        service = std::make_unique<Service>(chain, options);
    }
    Response call(std::string method, std::string path, std::string auth = "",
                  std::function<void(Request&)> more = {}) {
        Request r;
        r.method = std::move(method);
        auto q = path.find('?');
        r.path = path.substr(0, q);
        r.query = q == std::string::npos ? "" : path.substr(q + 1);
        r.authorization = std::move(auth);
        if (r.method == "PUT")
            r.body = one_status;
        if (more)
            more(r);
        return service->handle(r);
    }
};

AccessOptions scoped() {
    AccessOptions a;
    a.read_tokens = {"other-read", read_token};
    a.write_tokens = {write_token, "other-write"};
    return a;
}

} // namespace

TEST_CASE("tokens: a read-token file closes every route but /healthz and /readyz") {
    Server s(scoped());
    for (std::string path :
         {"/v1/stats", "/v1/models", "/v1/models/gpt-4o", "/v1/statuses", "/v1/snapshot",
          "/v1/status", "/v1/events", "/v1/diagnosis", "/metrics", "/"}) {
        CAPTURE(path);
        auto refused = s.call("GET", path);
        CHECK(refused.status == 401);
        CHECK(code_of(refused) == "auth_failed");
        // A browser opening the page prompts for Basic; a client sees Bearer.
        CHECK(header(refused, "WWW-Authenticate").find("Basic realm=\"modelrepo\"") !=
              std::string::npos);
        CHECK(header(refused, "WWW-Authenticate").find("Bearer") != std::string::npos);
        CHECK(s.call("GET", path, "Bearer wrong").status == 401);
        CHECK(s.call("GET", path, "Bearer " + read_token).status == 200);
        CHECK(s.call("GET", path, "Bearer " + write_token).status == 200); // writers read
        CHECK(s.call("GET", path, basic("anyone", read_token)).status == 200);
        CHECK(s.call("GET", path, basic("anyone", "wrong")).status == 401);
    }
    CHECK(s.call("GET", "/healthz").status == 200);
    CHECK(s.call("GET", "/readyz").status != 401);
    // Every token of each file counts, not only the first line.
    CHECK(s.call("GET", "/v1/stats", "Bearer other-read").status == 200);
}

TEST_CASE("tokens: writes need a write token; a read token gets 403; none is ever echoed") {
    Server s(scoped());
    auto none = s.call("PUT", "/v1/statuses");
    CHECK(none.status == 401);
    auto reader = s.call("PUT", "/v1/statuses", "Bearer " + read_token);
    CHECK(reader.status == 403);
    CHECK(code_of(reader) == "forbidden");
    auto wrong = s.call("PUT", "/v1/statuses", "Bearer " + read_token + "x");
    CHECK(wrong.status == 401);
    auto written = s.call("PUT", "/v1/statuses", basic("sync", "other-write"));
    CHECK(written.status == 200);
    CHECK(json::parse(written.body)["applied"] == 1);
    for (auto* r : {&none, &reader, &wrong, &written})
        for (const auto& t : {read_token, write_token})
            CHECK(r->body.find(t) == std::string::npos);

    AccessOptions read_only;
    read_only.read_tokens = {read_token};
    Server r(read_only);
    auto refused = r.call("PUT", "/v1/statuses", "Bearer " + read_token);
    CHECK(refused.status == 403);
    CHECK(code_of(refused) == "read_only");
}

TEST_CASE("--public-catalogue: catalogue reads open, the operator's routes still closed") {
    AccessOptions a = scoped();
    a.public_catalogue = true;
    Server s(a);
    for (std::string path : {"/v1/stats", "/v1/models", "/v1/statuses", "/v1/snapshot"})
        CHECK(s.call("GET", path).status == 200);
    for (std::string path : {"/v1/status", "/v1/events", "/v1/diagnosis", "/metrics", "/"})
        CHECK(s.call("GET", path).status == 401);
    CHECK(s.call("PUT", "/v1/statuses").status == 401);
}

TEST_CASE("Host: a loopback listener answers loopback names and --allow-host only") {
    AccessOptions a;
    a.loopback = true;
    a.allowed_hosts = {"modelrepo.internal"};
    Server s(a);
    auto with_host = [&](std::string host) {
        return s.call("GET", "/v1/stats", "", [&](Request& r) { r.host = host; });
    };
    for (std::string ok : {"localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080",
                           "LOCALHOST", "modelrepo.internal:443", ""})
        CHECK_MESSAGE(with_host(ok).status == 200, ok);
    for (std::string bad : {"attacker.example", "attacker.example:8080", "127.0.0.1.evil.example",
                            "localhost.evil.example:80"}) {
        auto refused = with_host(bad);
        CHECK_MESSAGE(refused.status == 421, bad);
        CHECK(code_of(refused) == "misdirected_request");
    }
    AccessOptions network; // --listen 0.0.0.0: any Host
    Server open(network);
    CHECK(open.call("GET", "/v1/stats", "", [](Request& r) { r.host = "x.example"; }).status ==
          200);
}

TEST_CASE("CORS: preflight and answers for allowed origins only, Vary: Origin") {
    AccessOptions a = scoped();
    a.cors_origins = {"https://app.example.com"};
    Server s(a);
    auto preflight = s.call("OPTIONS", "/v1/statuses", "", [](Request& r) {
        r.origin = "https://app.example.com";
        r.cors_method = "PUT";
    });
    CHECK(preflight.status == 204);
    CHECK(header(preflight, "Access-Control-Allow-Origin") == "https://app.example.com");
    CHECK(header(preflight, "Access-Control-Allow-Methods").find("PUT") != std::string::npos);
    CHECK(header(preflight, "Access-Control-Allow-Headers").find("Authorization") !=
          std::string::npos);
    CHECK(header(preflight, "Vary") == "Origin");

    auto other = s.call("OPTIONS", "/v1/statuses", "", [](Request& r) {
        r.origin = "https://evil.example";
        r.cors_method = "PUT";
    });
    CHECK(other.status == 403);
    CHECK(header(other, "Access-Control-Allow-Origin").empty());

    auto read = s.call("GET", "/v1/stats", "Bearer " + read_token,
                       [](Request& r) { r.origin = "https://app.example.com"; });
    CHECK(read.status == 200);
    CHECK(header(read, "Access-Control-Allow-Origin") == "https://app.example.com");
    CHECK(header(read, "Access-Control-Expose-Headers").find("ETag") != std::string::npos);
    // A refusal carries them too, so that the app can read why.
    auto refused =
        s.call("GET", "/v1/stats", "", [](Request& r) { r.origin = "https://app.example.com"; });
    CHECK(refused.status == 401);
    CHECK(header(refused, "Access-Control-Allow-Origin") == "https://app.example.com");
    auto foreign = s.call("GET", "/v1/stats", "Bearer " + read_token,
                          [](Request& r) { r.origin = "https://evil.example"; });
    CHECK(header(foreign, "Access-Control-Allow-Origin").empty());
    CHECK(header(foreign, "Vary") == "Origin");

    Server none(scoped()); // no --cors-origin: no CORS header at all
    auto plain = none.call("GET", "/v1/stats", "Bearer " + read_token,
                           [](Request& r) { r.origin = "https://app.example.com"; });
    CHECK(header(plain, "Access-Control-Allow-Origin").empty());
    CHECK(header(plain, "Vary").empty());
}

TEST_CASE("caching: every catalogue read has an ETag that follows its body; 304; "
          "Cache-Control public or private") {
    Server s(AccessOptions{});
    for (std::string path : {"/v1/stats", "/v1/models", "/v1/models/gpt-4o",
                             "/v1/models?slug=gpt-4o&slug=gpt-5", "/v1/statuses", "/v1/snapshot"}) {
        CAPTURE(path);
        auto first = s.call("GET", path);
        REQUIRE(first.status == 200);
        std::string tag = header(first, "ETag");
        REQUIRE(tag.size() == 18);
        CHECK(header(first, "Cache-Control").find("public") != std::string::npos);
        CHECK(header(first, "Cache-Control").find("stale-if-error") != std::string::npos);
        auto again = s.call("GET", path, "", [&](Request& r) { r.if_none_match = tag; });
        CHECK(again.status == 304);
        CHECK(again.body.empty());
        CHECK_FALSE(again.shared_body);
        CHECK(header(again, "ETag") == tag);
        auto weak =
            s.call("GET", path, "", [&](Request& r) { r.if_none_match = "\"x\", W/" + tag; });
        CHECK(weak.status == 304);
    }
    // A status written changes the bodies, and so the tags.
    std::string before = header(s.call("GET", "/v1/models/gpt-4o"), "ETag");
    std::string stats_before = header(s.call("GET", "/v1/stats"), "ETag");
    REQUIRE(s.chain->write_statuses(parse_statuses(one_status).value()));
    auto after =
        s.call("GET", "/v1/models/gpt-4o", "", [&](Request& r) { r.if_none_match = before; });
    CHECK(after.status == 200);
    CHECK(header(after, "ETag") != before);
    CHECK(header(s.call("GET", "/v1/stats"), "ETag") != stats_before);
    // The operator's routes and errors carry no catalogue tag.
    CHECK(header(s.call("GET", "/v1/status"), "ETag").empty());
    CHECK(header(s.call("GET", "/v1/models/no-such-model"), "ETag").empty());

    Server closed(scoped()); // reads need a token: private
    auto r = closed.call("GET", "/v1/models", "Bearer " + read_token);
    CHECK(header(r, "Cache-Control") == "private, no-cache");
    CHECK(!header(r, "ETag").empty());
}

TEST_CASE("token files: one a line, trimmed, comments and blank lines skipped") {
    CHECK(token_lines("a\n  b  \r\n\n# a comment\nc") == std::vector<std::string>{"a", "b", "c"});
    CHECK(token_lines("\n\n").empty());
    CHECK(etag_matches("*", "\"1\""));
    CHECK(etag_matches(" \"2\" ,\t\"1\"", "\"1\""));
    CHECK(!etag_matches("\"2\"", "\"1\""));
    CHECK(!etag_matches("", "\"1\""));
    CHECK(etag_of("abc") == etag_of("abc"));
    CHECK(etag_of("abc") != etag_of("abd"));
}

namespace {

/// A service over one source that fails with a message naming where it is, as a
/// PostgreSQL source's do ("cannot connect to postgresql://app@db.internal/models …").
struct FailingServer {
    std::shared_ptr<test::ScriptedRepository> primary =
        std::make_shared<test::ScriptedRepository>("app@db.internal");
    std::shared_ptr<FallbackRepository> chain;
    std::unique_ptr<Service> service;

    explicit FailingServer(AccessOptions access) {
        primary->fail_with(Errc::unreachable);
        chain = std::shared_ptr<FallbackRepository>(FallbackRepository::create({primary}).value());
        ServiceOptions options;
        options.access = std::move(access);
        options.ready_interval = std::chrono::milliseconds(20);
        service = std::make_unique<Service>(chain, options);
    }
    Response call(const std::string& path, const std::string& auth = "") {
        Request r;
        r.method = "GET";
        r.path = path;
        r.authorization = auth;
        return service->handle(r);
    }
    /// /readyz once its first check is in (it never waits for one).
    Response ready(const std::string& auth = "") {
        for (int i = 0; i < 500; ++i) {
            auto r = call("/readyz", auth);
            if (json::parse(r.body)["state"] != "starting")
                return r;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        FAIL("no readiness check in 5 s");
        return {};
    }
};

} // namespace

TEST_CASE("a network listener keeps details to token holders: the operator's routes need a "
          "token, and what is answered without one carries no message") {
    AccessOptions network;
    network.discreet = true;
    {
        FailingServer s(network); // no token file at all
        for (std::string path : {"/v1/status", "/v1/diagnosis", "/v1/events", "/metrics", "/"}) {
            auto r = s.call(path);
            CHECK_MESSAGE(r.status == 403, path);
            CHECK(code_of(r) == "forbidden");
            CHECK(r.body.find("--read-token-file") != std::string::npos);
            CHECK(r.body.find("--expose-details") != std::string::npos);
        }
        auto stats = s.call("/v1/stats");
        CHECK(stats.status == 503);
        CHECK(code_of(stats) == "all_sources_failed");
        CHECK(stats.body.find("db.internal") == std::string::npos);
        auto ready = s.ready();
        CHECK(ready.status == 503);
        CHECK_MESSAGE(ready.body.find("db.internal scripted failure") == std::string::npos,
                      ready.body);
        CHECK(json::parse(ready.body)["sources"][0]["last_error"] ==
              "(told to token holders, in /v1/status)");
        CHECK(s.call("/healthz").status == 200);
    }
    {
        AccessOptions tokens = network;
        tokens.read_tokens = {read_token};
        FailingServer s(tokens);
        CHECK(s.call("/v1/status").status == 401);
        CHECK(s.call("/metrics", "Bearer " + read_token).status == 200);
        // A token holder is told everything, /readyz's messages included.
        auto ready = s.ready("Bearer " + read_token);
        CHECK_MESSAGE(ready.body.find("db.internal scripted failure") != std::string::npos,
                      ready.body);
        CHECK(s.ready().body.find("db.internal scripted failure") == std::string::npos);
        auto stats = s.call("/v1/stats", "Bearer " + read_token);
        CHECK(stats.body.find("scripted failure") != std::string::npos);
    }
    {
        AccessOptions loopback; // or --expose-details: as before
        FailingServer s(loopback);
        CHECK(s.call("/v1/status").status == 200);
        CHECK(s.ready().body.find("db.internal scripted failure") != std::string::npos);
    }
}

TEST_CASE("served_sources: on a network listener, sources without name= are named by kind and "
          "position") {
    using cli::served_sources;
    std::vector<std::string> given{
        "postgresql://app:Pw-1@db.internal:5432/models?cache=live",
        "postgres://app@db/models?name=prod",
        "host=db.internal user=app dbname=models",
        "host=db name = 'x y'",
        "github://acme/cat/models.json@main",
        "https://mirror.example/models.json#top",
        "builtin:",
        "postgresql://app:p%3Fw@db/models",
        "host=::1 name=own user=app",
    };
    auto named = served_sources(given, true);
    REQUIRE(named.size() == given.size());
    CHECK(named[0] == "postgresql://app:Pw-1@db.internal:5432/models?cache=live&name=postgresql-1");
    CHECK(named[1] == given[1]);
    CHECK(named[2] == "host=db.internal user=app dbname=models name=postgresql-3");
    CHECK(named[3] == given[3]);
    CHECK(named[4] == "github://acme/cat/models.json@main?name=github-5");
    CHECK(named[5] == "https://mirror.example/models.json?name=https-6#top");
    CHECK(named[6] == "builtin:");
    CHECK(named[7] == "postgresql://app:p%3Fw@db/models?name=postgresql-8");
    CHECK(named[8] == given[8]); // a conninfo with a ':' in a value names itself too
    CHECK(served_sources(given, false) == given);
#if MODELREPO_HAS_POSTGRES
    for (std::size_t i : {0u, 2u})
        CHECK(open(named[i]).value()->name() == "postgresql-" + std::to_string(i + 1));
#endif
}
