// SPDX-License-Identifier: MIT
// `modelrepo serve` and `modelrepo publish` from outside: the CLI started as a process,
// asked by real clients (curl, node's fetch, cpp-httplib, raw sockets, the library's own
// HTTP source), over the embedded catalogue and over a real PostgreSQL killed under
// load; publish against a loopback stand-in of GitHub's contents API.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;
using nlohmann::json;

namespace {

const std::string token = "tok-Qv93-serve-Lm27";

std::string status_json(const std::string& slug, const std::string& health, double availability) {
    json s = json::array({{{"model", slug},
                           {"health", health},
                           {"availability", availability},
                           {"latency_ms", 321.0},
                           {"error_rate", 1 - availability},
                           {"region", "eu-west"},
                           {"checked_at", "2026-12-02T10:00:00Z"}}});
    return s.dump();
}

} // namespace

TEST_CASE("serve on the embedded catalogue: every read endpoint, over curl") {
    if (!have_tool("curl"))
        return;
    Serve serve({"builtin:"});
    auto stats = curl({serve.base() + "/v1/stats"});
    CHECK(stats.status == 200);
    auto s = json::parse(stats.body);
    CHECK(s["source"] == "builtin");
    CHECK(s["models"] == 32);
    CHECK(s["backup"] == false);
    CHECK(s["health"]["operational"].is_number());
    // The same object `modelrepo --json stats` prints, plus "backup".
    auto cli = run_process({require_env("MODELREPO_CLI"), "--json", "stats"});
    REQUIRE(cli.exit_code == 0);
    auto printed = json::parse(cli.out);
    printed["backup"] = false;
    CHECK(printed == s);

    auto all = json::parse(curl({serve.base() + "/v1/models"}).body);
    CHECK(all["models"].size() == 32);
    auto some = curl({serve.base() + "/v1/models?slug=gpt-5&slug=no-such-model&slug=gpt-4o"});
    CHECK(some.status == 200);
    auto picked = json::parse(some.body)["models"];
    REQUIRE(picked.size() == 2); // in the order asked, the unknown one skipped
    CHECK(picked[0]["slug"] == "gpt-5");
    CHECK(picked[1]["slug"] == "gpt-4o");
    CHECK(picked[1]["provider"]["slug"] == "openai");
    CHECK(picked[1]["status"]["health"].is_string());

    auto one = curl({serve.base() + "/v1/models/claude-sonnet-4-5"});
    CHECK(one.status == 200);
    CHECK(json::parse(one.body)["model"]["slug"] == "claude-sonnet-4-5");
    auto missing = curl({serve.base() + "/v1/models/no-such-model"});
    CHECK(missing.status == 404);
    CHECK(error_of(missing.body)["code"] == "not_found");

    auto outage = json::parse(curl({serve.base() + "/v1/statuses?health=outage"}).body);
    CHECK(!outage["statuses"].empty());
    for (auto& st : outage["statuses"])
        CHECK(st["health"] == "outage");
    auto cli_statuses = run_process({require_env("MODELREPO_CLI"), "--json", "statuses"});
    REQUIRE(cli_statuses.exit_code == 0);
    CHECK(json::parse(curl({serve.base() + "/v1/statuses"}).body)["statuses"].size() ==
          json::parse(cli_statuses.out)["statuses"].size());
    auto bad_health = curl({serve.base() + "/v1/statuses?health=sideways"});
    CHECK(bad_health.status == 400);
    CHECK(error_of(bad_health.body)["code"] == "invalid_argument");
    auto bad_param = curl({serve.base() + "/v1/models?slgu=gpt-4o"});
    CHECK(bad_param.status == 400);
    auto bad_escape = curl({serve.base() + "/v1/models?slug=%zz"});
    CHECK(bad_escape.status == 400);

    auto nowhere = curl({serve.base() + "/v2/anything"});
    CHECK(nowhere.status == 404);
    CHECK(error_of(nowhere.body)["code"] == "not_found");
    auto wrong_method = curl({"-X", "DELETE", serve.base() + "/v1/stats"});
    CHECK(wrong_method.status == 405);
    CHECK(error_of(wrong_method.body)["code"] == "invalid_argument");
    // HEAD: a GET's headers, no body; OPTIONS: what the path allows.
    auto head = curl({"-I", serve.base() + "/v1/stats"});
    CHECK(head.status == 200);
    CHECK(head.body.find("\"models\"") == std::string::npos); // -I: the headers only
    CHECK(head.body.find("Content-Length: 0") == std::string::npos);
    CHECK(head.body.find("Content-Length: ") != std::string::npos);
    auto options = curl({"-X", "OPTIONS", "-i", serve.base() + "/v1/statuses"});
    CHECK(options.status == 204);
    CHECK(options.body.find("GET, HEAD, OPTIONS, PUT") != std::string::npos);

    auto health = curl({serve.base() + "/healthz"});
    CHECK(health.status == 200);
    auto ready = ready_when(serve, checked);
    CHECK(ready.status == 200);
    auto r = json::parse(ready.body);
    CHECK(r["state"] == "ready");
    REQUIRE(r["sources"].size() == 1);
    CHECK(r["sources"][0]["breaker"] == "closed");
    CHECK(r["sources"][0]["data_as_of"].is_string());

    auto metrics = curl({serve.base() + "/metrics"});
    CHECK(metrics.status == 200);
    CHECK(metrics.body.find("modelrepo_source_calls_total{source=\"builtin\"}") !=
          std::string::npos);
    CHECK(metrics.body.find("modelrepo_serve_requests_total{code=\"404\"}") != std::string::npos);
    CHECK(metrics.body.find("modelrepo_serve_connections") != std::string::npos);
}

TEST_CASE("keep-alive: 200 whole lists on one connection, none held for the client's delayed ACK") {
    // The whole list from memory went out as two writes (its head, then the shared body):
    // with Nagle on, the second waited for the client's delayed ACK, about 40 ms a request
    // (8 s for these 200). Now one write, and no Nagle on serve's sockets.
    Serve serve({"builtin:"});
    httplib::Client c("127.0.0.1", serve.port());
    c.set_keep_alive(true);
    auto first = c.Get("/v1/models");
    REQUIRE(first);
    REQUIRE(first->status == 200);
    const std::string expected = first->body;
    CHECK(json::parse(expected)["models"].size() == 32);
    auto began = steady_clock::now();
    int same = 0;
    for (int i = 0; i < 200; ++i) {
        auto again = c.Get("/v1/models");
        REQUIRE(again);
        same += again->status == 200 && again->body == expected;
    }
    auto took = duration_cast<milliseconds>(steady_clock::now() - began);
    CHECK(same == 200);
    // Generous slack for a busy or sanitized run; the delayed ACKs alone took 8 s.
    CHECK_MESSAGE(took < seconds(5), "200 requests took " << took.count() << " ms");
}

TEST_CASE("serve with its first source down: answers from the backup say so, /readyz is degraded") {
    Serve serve({"postgresql://nobody:Hidden-Pw-1@127.0.0.1:1/models", "builtin:"});
    auto c = serve.client();
    auto stats = c.Get("/v1/stats");
    REQUIRE(stats);
    CHECK(stats->status == 200);
    auto s = json::parse(stats->body);
    CHECK(s["source"] == "builtin");
    CHECK(s["backup"] == true);
    auto ready = ready_when(serve, checked);
    CHECK(ready.status == 200);
    auto r = json::parse(ready.body);
    CHECK(r["state"] == "degraded");
    CHECK(r["serving"] == "builtin");
    REQUIRE(r["sources"].size() == 2);
    CHECK(r["sources"][0]["last_error"] == "unreachable");
    CHECK(r["sources"][1]["serving"] == true);
    auto write = c.Put("/v1/statuses", status_json("gpt-4o", "outage", 0.1), "application/json");
    REQUIRE(write);
    CHECK(write->status == 403); // no token file: read-only, before anything is tried
    for (auto* body : {&stats->body, &ready.body})
        CHECK(body->find("Hidden-Pw-1") == std::string::npos);

    Serve nothing({"postgresql://nobody:Hidden-Pw-1@127.0.0.1:1/models"});
    auto down = nothing.client().Get("/v1/stats");
    REQUIRE(down);
    CHECK(down->status == 503);
    CHECK(!down->get_header_value("Retry-After").empty());
    CHECK(error_of(down->body)["code"].is_string());
    auto unready = ready_when(nothing, checked);
    CHECK(unready.status == 503);
    CHECK(json::parse(unready.body)["state"] == "unavailable");
    CHECK(nothing.client().Get("/healthz")->status == 200);
}

TEST_CASE("the library's own HTTP source reads /v1/snapshot, with an ETag") {
    Serve serve({"builtin:"});
    auto c = serve.client();
    auto first = c.Get("/v1/snapshot");
    REQUIRE(first);
    CHECK(first->status == 200);
    std::string etag = first->get_header_value("ETag");
    CHECK(!etag.empty());
    auto again = c.Get("/v1/snapshot", {{"If-None-Match", etag}});
    REQUIRE(again);
    CHECK(again->status == 304);
    CHECK(again->body.empty());

    auto remote = modelrepo::open(serve.base() + "/v1/snapshot");
    REQUIRE_MESSAGE(remote, remote.error().to_string());
    auto count = remote.value()->count_models();
    REQUIRE(count);
    CHECK(count.value() == 32);
    auto model = remote.value()->find_model("gpt-4o");
    REQUIRE(model);
    REQUIRE(model.value());
    REQUIRE(model.value()->provider);
    CHECK(model.value()->provider->slug == "openai");
}

TEST_CASE("10,000 models: lists sent in chunks equal the CLI's, HEAD's length, HTTP/1.0, "
          "keep-alive, and the library's HTTP source reads the chunked snapshot") {
    if (!have_tool("curl"))
        return;
    TempDir dir;
    Snapshot big = builtin_snapshot();
    for (int i = 0; i < 10'000; ++i) {
        Model m = big.models[static_cast<std::size_t>(i) % big.models.size()];
        m.slug = "bulk-" + std::to_string(i);
        big.models.push_back(m);
        big.statuses.push_back(big.statuses[static_cast<std::size_t>(i) % big.statuses.size()]);
        big.statuses.back().model_slug = m.slug;
    }
    auto file = dir.path() / "big.json";
    REQUIRE(write_snapshot_file(big, file));
    std::string source = "file://" + file.string();
    Serve serve({source});

    // A long list is chunked (no Content-Length) ...
    auto headers =
        run_process({"curl", "-sS", "-D", "-", "-o", "/dev/null", serve.base() + "/v1/statuses"});
    REQUIRE(headers.exit_code == 0);
    CHECK(headers.out.find("Transfer-Encoding: chunked") != std::string::npos);
    CHECK(headers.out.find("Content-Length") == std::string::npos);
    // ... but the whole model list is made once per catalogue version and kept: sent with
    // its length, byte for byte what `modelrepo --json models` prints.
    auto models = curl({serve.base() + "/v1/models"});
    REQUIRE(models.status == 200);
    auto whole =
        run_process({"curl", "-sS", "-D", "-", "-o", "/dev/null", serve.base() + "/v1/models"});
    CHECK(whole.out.find("Content-Length: " + std::to_string(models.body.size())) !=
          std::string::npos);
    CHECK(whole.out.find("chunked") == std::string::npos);
    auto listed = json::parse(models.body);
    CHECK(listed["models"].size() == big.models.size());
    auto cli = run_process({require_env("MODELREPO_CLI"), "--source", source, "--json", "models"});
    REQUIRE(cli.exit_code == 0);
    auto printed = json::parse(cli.out);
    CHECK(printed["models"] == listed["models"]);

    // HEAD: the length a GET's body has, no body.
    auto head = run_process({"curl", "-sS", "-I", serve.base() + "/v1/models"});
    REQUIRE(head.exit_code == 0);
    CHECK(head.out.find("Content-Length: " + std::to_string(models.body.size())) !=
          std::string::npos);
    // HTTP/1.0 has no chunks: the whole body with its length.
    auto old = run_process({"curl", "-sS", "-0", "-D", "-", serve.base() + "/v1/statuses"});
    REQUIRE(old.exit_code == 0);
    CHECK(old.out.find("Content-Length: ") != std::string::npos);
    CHECK(old.out.find("chunked") == std::string::npos);
    auto body_at = old.out.find("\r\n\r\n");
    REQUIRE(body_at != std::string::npos);
    CHECK(json::parse(old.out.substr(body_at + 4))["statuses"].size() == big.statuses.size());

    // Two chunked answers and a small one on one kept-alive connection (curl says when
    // it reuses one).
    auto reused = run_process({"curl", "-sS", "-v", "-o", "/dev/null", "-o", "/dev/null", "-o",
                               "/dev/null", serve.base() + "/v1/models",
                               serve.base() + "/v1/snapshot", serve.base() + "/v1/stats"});
    REQUIRE(reused.exit_code == 0);
    CHECK(reused.err.find("Re-using existing connection") != std::string::npos);
    CHECK(reused.err.find("Connected to") == reused.err.rfind("Connected to")); // one connect

    // The chunked snapshot is what the file holds, and another modelrepo reads it.
    auto snapshot = curl({serve.base() + "/v1/snapshot"});
    REQUIRE(snapshot.status == 200);
    auto served = parse_snapshot(snapshot.body);
    REQUIRE(served);
    CHECK(sorted_by_slug(served.value()) ==
          sorted_by_slug(parse_snapshot(write_snapshot(big)).value()));
    auto remote = modelrepo::open(serve.base() + "/v1/snapshot");
    REQUIRE_MESSAGE(remote, remote.error().to_string());
    CHECK(remote.value()->count_models().value() == static_cast<std::int64_t>(big.models.size()));
}

TEST_CASE("writes: 403 without a token file, 401 without or with a wrong token, applied with it") {
    if (!have_tool("curl"))
        return;
    TempDir dir;
    {
        Serve read_only({"builtin:"});
        auto refused =
            curl({"-X", "PUT", "-H", "Authorization: Bearer " + token, "--data-binary",
                  status_json("gpt-4o", "outage", 0.1), read_only.base() + "/v1/statuses"});
        CHECK(refused.status == 403);
        CHECK(error_of(refused.body)["code"] == "read_only");
    }
    Serve serve({"builtin:"}, {"--token-file", token_file(dir, token), "--log"});
    const std::string body = status_json("gpt-4o", "outage", 0.125);
    auto none = curl({"-X", "PUT", "--data-binary", body, serve.base() + "/v1/statuses"});
    CHECK(none.status == 401);
    CHECK(error_of(none.body)["code"] == "auth_failed");
    auto wrong = curl({"-X", "PUT", "-H", "Authorization: Bearer " + token + "x", "--data-binary",
                       body, serve.base() + "/v1/statuses"});
    CHECK(wrong.status == 401);
    auto shorter = curl({"-X", "PUT", "-H", "Authorization: Bearer tok", "--data-binary", body,
                         serve.base() + "/v1/statuses"});
    CHECK(shorter.status == 401);
    auto basic = curl({"-X", "PUT", "-H", "Authorization: Basic " + token, "--data-binary", body,
                       serve.base() + "/v1/statuses"});
    CHECK(basic.status == 401);

    auto malformed = curl({"-X", "PUT", "-H", "Authorization: Bearer " + token, "--data-binary",
                           "[{\"model\": ", serve.base() + "/v1/statuses"});
    CHECK(malformed.status == 400);
    CHECK(error_of(malformed.body)["code"] == "bad_data");
    auto unknown =
        curl({"-X", "PUT", "-H", "Authorization: Bearer " + token, "--data-binary",
              status_json("no-such-model", "outage", 0.5), serve.base() + "/v1/statuses"});
    CHECK(unknown.status / 100 == 4);

    auto applied = curl({"-X", "PUT", "-H", "Authorization: Bearer " + token, "--data-binary", body,
                         serve.base() + "/v1/statuses"});
    CHECK(applied.status == 200);
    CHECK(json::parse(applied.body)["applied"] == 1);
    auto after = json::parse(curl({serve.base() + "/v1/models/gpt-4o"}).body);
    CHECK(after["model"]["status"]["health"] == "outage");
    CHECK(after["model"]["status"]["availability"] == doctest::Approx(0.125));

    // A body over the cap (1 MiB) is refused before it is read.
    std::string big(2 * 1024 * 1024, ' ');
    auto path = dir.path() / "big.json";
    std::ofstream(path) << big;
    auto too_big = curl({"-X", "PUT", "-H", "Authorization: Bearer " + token, "--data-binary",
                         "@" + path.string(), serve.base() + "/v1/statuses"});
    CHECK(too_big.status == 413);
    CHECK(error_of(too_big.body)["code"] == "bad_data");
    // Headers over the cap (16 KiB).
    auto huge_header =
        curl({"-H", "X-Filler: " + std::string(20'000, 'a'), serve.base() + "/v1/stats"});
    CHECK(huge_header.status == 431);

    // A secret a client puts in a query string is not logged either.
    auto in_query = curl({serve.base() + "/v1/models?slug=gpt-4o&token=" + token +
                          "&password=Qq-9-secret-in-query"});
    CHECK(in_query.status == 400); // token= is not a parameter of this path

    // The token is in no answer and in no log line; every request has one.
    for (auto* answer : {&none, &wrong, &applied, &malformed, &too_big})
        CHECK(answer->body.find(token) == std::string::npos);
    serve.process().signal(SIGTERM);
    CHECK(serve.process().wait(10s) == 0);
    const std::string& log = serve.process().err();
    CHECK(log.find(token) == std::string::npos);
    CHECK(log.find("PUT /v1/statuses 401") != std::string::npos);
    CHECK(log.find("PUT /v1/statuses 200") != std::string::npos);
    CHECK(log.find("GET /v1/models/gpt-4o 200") != std::string::npos);
    CHECK(log.find("Qq-9-secret-in-query") == std::string::npos);
    CHECK(log.find("GET /v1/models?slug=***&token=***&password=*** 400") != std::string::npos);
}

TEST_CASE("a client that sends its headers a byte a second is cut and holds no worker") {
    Serve serve({"builtin:"}, {"--request-timeout", "2s"});
    // More drippers than the server has I/O threads (at least 2).
    std::vector<std::unique_ptr<RawSocket>> drippers;
    for (int i = 0; i < 6; ++i)
        drippers.push_back(std::make_unique<RawSocket>(serve.port()));
    const std::string request = "GET /v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n\r\n";
    auto started = steady_clock::now();
    std::atomic<int> answered{0};
    std::thread others([&] {
        auto c = serve.client();
        for (int i = 0; i < 20; ++i) {
            auto r = c.Get("/v1/stats");
            if (r && r->status == 200)
                ++answered;
            std::this_thread::sleep_for(50ms);
        }
    });
    // A dripper the server has closed gets no more bytes: the server may close in two
    // steps (FIN, then the socket), and a send between them still succeeds.
    std::vector<bool> cut(drippers.size(), false);
    std::size_t sent = 0;
    bool all_closed = false;
    while (sent < request.size() && steady_clock::now() - started < 20s) {
        bool any_open = false;
        for (std::size_t i = 0; i < drippers.size(); ++i) {
            if (!cut[i] && drippers[i]->send(request.substr(sent, 1)))
                any_open = true;
            else
                cut[i] = true;
        }
        ++sent;
        if (!any_open) {
            all_closed = true;
            break;
        }
        for (std::size_t i = 0; i < drippers.size(); ++i)
            if (!cut[i] && drippers[i]->closed_within(1000ms / static_cast<long>(drippers.size())))
                cut[i] = true;
    }
    others.join();
    CHECK(answered == 20); // served while the drippers were connected
    // Cut at the deadline: long before the ~50-second request was complete.
    for (auto& d : drippers)
        CHECK(d->closed_within(5s));
    CHECK(all_closed);
    CHECK(sent < request.size());
    // Counted once the handler of the closed read runs, which may be just after the
    // client saw the close.
    CHECK(eventually(
        [&] { return serve.metric("modelrepo_serve_rejected_total{reason=\"timeout\"}") >= 6; },
        10s));
}

TEST_CASE("one PUT of every model's status: each of 20 streams gets every change, in fewer "
          "writes than events (what is queued for a client goes in one)") {
    TempDir dir;
    Serve serve({"builtin:"}, {"--token-file", token_file(dir, token)});
    std::vector<std::unique_ptr<RawSocket>> streams;
    for (int i = 0; i < 20; ++i)
        streams.push_back(open_stream(serve.port()));
    REQUIRE(eventually([&] { return serve.metric("modelrepo_serve_streams") == 20; }, 10s));
    for (auto& s : streams)
        REQUIRE(s->wait_for(": connected", 10s));
    // Dated now: newer than every status the catalogue holds, so each one is a change.
    std::time_t now = std::time(nullptr);
    char checked_at[32];
    std::strftime(checked_at, sizeof checked_at, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    json all = json::array();
    for (const Model& m : builtin_snapshot().models) {
        all.push_back(json::parse(status_json(m.slug, "degraded", 0.5))[0]);
        all.back()["checked_at"] = checked_at;
    }
    REQUIRE(all.size() >= 10);
    double events = serve.metric("modelrepo_serve_stream_events_total");
    double writes = serve.metric("modelrepo_serve_stream_writes_total");
    auto put = serve.client().Put("/v1/statuses", {{"Authorization", "Bearer " + token}},
                                  all.dump(), "application/json");
    REQUIRE(put);
    REQUIRE(put->status == 200);
    const std::string last = "\"slug\":\"" + all.back()["model"].get<std::string>() + "\"";
    for (auto& s : streams) {
        REQUIRE(s->wait_for(last, 10s));
        for (const auto& status : all)
            CHECK(s->received().find("\"slug\":\"" + status["model"].get<std::string>() + "\"") !=
                  std::string::npos);
    }
    // Every change to every stream, counted once it is written.
    REQUIRE(eventually(
        [&] {
            return serve.metric("modelrepo_serve_stream_events_total") - events >=
                   20.0 * static_cast<double>(all.size());
        },
        10s));
    double wrote = serve.metric("modelrepo_serve_stream_writes_total") - writes;
    double sent = serve.metric("modelrepo_serve_stream_events_total") - events;
    MESSAGE(sent << " events in " << wrote << " writes");
    CHECK(wrote > 0);
    CHECK(wrote < sent);
}

TEST_CASE("200 change streams connect, half drop, the rest get the change; the cap answers 429") {
    TempDir dir;
    Serve serve({"builtin:"}, {"--token-file", token_file(dir, token)});
    std::vector<std::unique_ptr<RawSocket>> streams;
    for (int i = 0; i < 200; ++i)
        streams.push_back(open_stream(serve.port()));
    CHECK(eventually([&] { return serve.metric("modelrepo_serve_streams") == 200; }, 10s));
    for (int i = 0; i < 100; ++i)
        streams[static_cast<std::size_t>(i)]->close();
    CHECK(eventually([&] { return serve.metric("modelrepo_serve_streams") == 100; }, 10s));

    auto c = serve.client();
    auto put = c.Put("/v1/statuses", {{"Authorization", "Bearer " + token}},
                     status_json("gemini-2.5-pro", "degraded", 0.75), "application/json");
    REQUIRE(put);
    CHECK(put->status == 200);
    int got = 0;
    for (int i = 100; i < 200; ++i)
        if (streams[static_cast<std::size_t>(i)]->wait_for("\"slug\":\"gemini-2.5-pro\"", 10s))
            ++got;
    CHECK(got == 100);
    CHECK(streams[150]->received().find("data: {\"kind\":\"status\"") != std::string::npos);
    streams.clear();
    CHECK(eventually([&] { return serve.metric("modelrepo_serve_streams") == 0; }, 10s));

    Serve capped({"builtin:"}, {"--max-streams", "3"});
    std::vector<std::unique_ptr<RawSocket>> held;
    for (int i = 0; i < 3; ++i)
        held.push_back(open_stream(capped.port()));
    auto more = capped.client().Get("/v1/changes");
    REQUIRE(more);
    CHECK(more->status == 429);
    CHECK(error_of(more->body)["code"] == "too_many_connections");
}

TEST_CASE("a change stream resumes after Last-Event-ID or ?since=: every change once, or a "
          "resync") {
    TempDir dir;
    Serve serve({"builtin:"}, {"--token-file", token_file(dir, token)});
    auto put = [&](const std::string& slug, double availability) {
        auto c = serve.client();
        auto r = c.Put("/v1/statuses", {{"Authorization", "Bearer " + token}},
                       status_json(slug, "degraded", availability), "application/json");
        REQUIRE(r);
        REQUIRE(r->status == 200);
    };
    auto first = open_stream(serve.port());
    put("gpt-5", 0.5);
    put("gpt-4o", 0.5);
    REQUIRE(first->wait_for("\"slug\":\"gpt-4o\"", 10s));
    auto seen = event_ids(first->received());
    REQUIRE(seen.size() == 2);
    first->close();
    put("gpt-5", 0.6); // missed while away
    put("claude-sonnet-4-5", 0.6);

    auto resumed = open_stream(serve.port(), "/v1/changes",
                               "Last-Event-ID: " + std::to_string(seen[1]) + "\r\n");
    REQUIRE(resumed->wait_for("\"slug\":\"claude-sonnet-4-5\"", 10s));
    put("gpt-4o", 0.7); // live after the replay
    REQUIRE(resumed->wait_for("\"slug\":\"gpt-4o\"", 10s));
    auto ids = event_ids(resumed->received());
    REQUIRE(ids.size() == 3); // the two missed and the live one, each once, in order
    CHECK(ids[0] == seen[1] + 1);
    CHECK(ids[1] == seen[1] + 2);
    CHECK(ids[2] == seen[1] + 3);
    CHECK(resumed->received().find("event: resync") == std::string::npos);

    auto since = open_stream(serve.port(), "/v1/changes?since=" + std::to_string(seen[0]));
    CHECK(since->wait_for("\"slug\":\"gpt-4o\",\"version\":" + std::to_string(ids[2]), 10s));
    CHECK(event_ids(since->received()).size() == 4);

    // A version this server never saw (another server's, or before its restart): resync.
    auto stranger = open_stream(serve.port(), "/v1/changes", "Last-Event-ID: 999999\r\n");
    CHECK(stranger->wait_for("event: resync", 10s));
    auto bad = curl({"-H", "Last-Event-ID: seven", serve.base() + "/v1/changes"});
    CHECK(bad.status == 400);
    CHECK(error_of(bad.body)["code"] == "invalid_argument");

    // After a restart of serve, what it kept is gone: the client is told to read again.
    Serve restarted({"builtin:"}, {"--token-file", token_file(dir, token)});
    auto after = open_stream(restarted.port(), "/v1/changes",
                             "Last-Event-ID: " + std::to_string(ids[2]) + "\r\n");
    CHECK(after->wait_for("event: resync", 10s));
}

TEST_CASE("a change stream resumes across a PostgreSQL kill -9: every change once, or a resync") {
    PgServer& pg = server();
    fresh_catalogue("serve_resume");
    const std::string url =
        pg.url("app", password, "serve_resume", "127.0.0.1", "cache=live&connect_timeout=2");
    Serve serve({url});
    auto first = open_stream(serve.port());
    REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));
    pg.psql("UPDATE model_status SET availability = 0.11 WHERE model_slug = 'gpt-5'",
            "serve_resume");
    REQUIRE(first->wait_for("\"slug\":\"gpt-5\"", 10s));
    auto seen = event_ids(first->received());
    REQUIRE(!seen.empty());
    first->close();

    pg.kill9();
    pg.start();
    // Changes made once it is back, while this client is away.
    pg.psql("UPDATE model_status SET availability = 0.22 WHERE model_slug = 'gpt-4o'",
            "serve_resume");
    pg.psql("UPDATE model_status SET availability = 0.33 WHERE model_slug = 'gpt-5'",
            "serve_resume");
    auto made = pg.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                        "catalog_changes WHERE version > " +
                            std::to_string(seen.back()),
                        "serve_resume");
    std::vector<long long> expected;
    for (std::size_t at = 0; at < made.size();) {
        auto comma = made.find(',', at);
        expected.push_back(std::stoll(made.substr(at, comma - at)));
        at = comma == std::string::npos ? made.size() : comma + 1;
    }
    REQUIRE(expected.size() >= 2);
    // Once serve's feed caught up, a resuming client gets what it missed.
    auto resumed = open_stream(serve.port(), "/v1/changes",
                               "Last-Event-ID: " + std::to_string(seen.back()) + "\r\n");
    bool all = eventually(
        [&] {
            resumed->wait_for("\x01", 200ms); // reads what came, for up to 200 ms
            auto ids = event_ids(resumed->received());
            return std::find(ids.begin(), ids.end(), expected.back()) != ids.end() ||
                   resumed->received().find("event: resync") != std::string::npos;
        },
        30s);
    CHECK_MESSAGE(all, resumed->received());
    // The changes (not the resync, which carries the version it stands at), by version.
    std::vector<long long> changes;
    const std::string& text = resumed->received();
    for (auto at = text.find("data: {"); at != std::string::npos;
         at = text.find("data: {", at + 1)) {
        auto line = json::parse(text.substr(at + 6, text.find('\n', at) - at - 6));
        if (line["kind"] != "resync")
            changes.push_back(line["version"].get<long long>());
    }
    for (std::size_t k = 1; k < changes.size(); ++k)
        CHECK_MESSAGE(changes[k] > changes[k - 1], text); // once each, in order
    if (text.find("event: resync") == std::string::npos)
        for (auto v : expected) // no resync: every change, exactly once
            CHECK(std::count(changes.begin(), changes.end(), v) == 1);
}

TEST_CASE("after serve restarts, a resuming client's resync carries an id: the next reconnect "
          "resumes from it instead of resyncing again") {
    PgServer& pg = server();
    fresh_catalogue("serve_restart");
    const std::string url = pg.url("app", password, "serve_restart", "127.0.0.1", "cache=live");
    long long last_seen = 0;
    {
        Serve serve({url});
        auto stream = open_stream(serve.port());
        REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));
        pg.psql("UPDATE model_status SET availability = 0.41 WHERE model_slug = 'gpt-5'",
                "serve_restart");
        REQUIRE(stream->wait_for("\"slug\":\"gpt-5\"", 10s));
        auto ids = event_ids(stream->received());
        REQUIRE(!ids.empty());
        last_seen = ids.back();
    }
    // A new serve never saw that version: one resync, with an id to resume from.
    Serve serve({url});
    REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));
    auto resumed = open_stream(serve.port(), "/v1/changes",
                               "Last-Event-ID: " + std::to_string(last_seen) + "\r\n");
    REQUIRE(resumed->wait_for("event: resync", 10s));
    const std::string& text = resumed->received();
    auto resync = text.find("event: resync");
    auto id_at = text.rfind("id: ", resync);
    REQUIRE_MESSAGE(id_at != std::string::npos, text);
    REQUIRE_MESSAGE(text.find("\n\n", id_at) > resync, text); // the resync's own id
    long long point = std::stoll(text.substr(id_at + 4));
    CHECK(point > 0);
    resumed->close();
    // Reconnecting from it (as EventSource does) resumes: no second resync; a change made
    // meanwhile comes as itself.
    pg.psql("UPDATE model_status SET availability = 0.42 WHERE model_slug = 'gpt-4o'",
            "serve_restart");
    auto again = open_stream(serve.port(), "/v1/changes",
                             "Last-Event-ID: " + std::to_string(point) + "\r\n");
    CHECK_MESSAGE(again->wait_for("\"slug\":\"gpt-4o\"", 10s), again->received());
    CHECK(again->received().find("event: resync") == std::string::npos);
}

TEST_CASE("SIGTERM during requests: answers in flight complete, streams end, exit 0") {
    Serve serve({"builtin:"});
    auto stream = open_stream(serve.port());
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, bad{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t)
        clients.emplace_back([&] {
            httplib::Client c("127.0.0.1", serve.port());
            c.set_read_timeout(10, 0);
            while (!stop) {
                auto r = c.Get("/v1/models?slug=gpt-4o&slug=gpt-5");
                if (!r)
                    continue; // refused or closed before a request was taken: not an answer
                if (r->status == 200 && json::parse(r->body)["models"].size() == 2)
                    ++ok;
                else
                    ++bad;
            }
        });
    std::this_thread::sleep_for(500ms);
    auto signalled = steady_clock::now();
    serve.process().signal(SIGTERM);
    int code = serve.process().wait(15s);
    auto took = steady_clock::now() - signalled;
    stop = true;
    for (auto& t : clients)
        t.join();
    CHECK(code == 0);
    CHECK(took < 7s); // the grace is 5 s; generous for a loaded machine
    CHECK(ok > 0);
    CHECK(bad == 0); // no answer was cut or wrong
    CHECK(stream->closed_within(5s));
    CHECK(stream->received().find("0\r\n\r\n") != std::string::npos); // the last chunk
    CHECK(serve.process().err().find("stopped") != std::string::npos);
}

TEST_CASE("node's fetch: the seed's API route and realtime consumer (examples/node)") {
    if (!have_tool("node"))
        return;
    TempDir dir;
    Serve serve({"builtin:"}, {"--token-file", token_file(dir, token)});
    const std::string examples = require_env("EXAMPLES_NODE_DIR");
    auto route =
        run_process({"node", examples + "/api_route.mjs"}, {{"MODELREPO_URL", serve.base()}});
    REQUIRE_MESSAGE(route.exit_code == 0, route.err);
    auto answer = json::parse(route.out);
    CHECK(answer["source"] == "builtin");
    CHECK(answer["backup"] == false);
    CHECK(answer["totals"]["models"] == 32);
    REQUIRE(answer["priority"].size() == 5);
    CHECK(answer["priority"][0]["slug"] == "gpt-5");
    CHECK(answer["priority"][1]["provider"] == "OpenAI");

    ChildProcess realtime({"node", examples + "/realtime.mjs", "--count", "1"},
                          {{"MODELREPO_URL", serve.base()}});
    REQUIRE(eventually([&] { return serve.metric("modelrepo_serve_streams") == 1; }, 20s));
    auto c = serve.client();
    auto put = c.Put("/v1/statuses", {{"Authorization", "Bearer " + token}},
                     status_json("llama-4-maverick", "outage", 0.2), "application/json");
    REQUIRE(put);
    CHECK(put->status == 200);
    auto line = realtime.read_line(15s);
    REQUIRE(line);
    CHECK(*line == "change status llama-4-maverick 1");
    CHECK(realtime.wait(10s) == 0);

    // Nothing listening: a typed error in a second, not a hang.
    int closed_port = serve.port();
    serve.process().signal(SIGTERM);
    REQUIRE(serve.process().wait(10s) == 0);
    auto down = run_process({"node", examples + "/api_route.mjs"},
                            {{"MODELREPO_URL", "http://127.0.0.1:" + std::to_string(closed_port)}},
                            seconds(30));
    CHECK(down.exit_code == 1);
    CHECK(down.err.find("unreachable") != std::string::npos);
}

// --- PostgreSQL -------------------------------------------------------------------------

TEST_CASE("serve on PostgreSQL (cache=live) and builtin: psql changes stream, PUTs show, the "
          "database killed under load") {
    if (!have_tool("curl"))
        return;
    PgServer& pg = server();
    fresh_catalogue("serve_pg");
    TempDir dir;
    const std::string url =
        server().url("app", password, "serve_pg", "127.0.0.1",
                     "cache=live&outbox=" + (dir.path() / "outbox.db").string());
    Serve serve({url, "builtin:"}, {"--token-file", token_file(dir, token)});

    auto stream = open_stream(serve.port());
    REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));
    server().psql("UPDATE model_status SET availability = 0.4321 WHERE model_slug = 'gpt-5'",
                  "serve_pg");
    CHECK_MESSAGE(stream->wait_for("\"slug\":\"gpt-5\"", 10s), stream->received());

    auto put = curl({"-X", "PUT", "-H", "Authorization: Bearer " + token, "--data-binary",
                     status_json("gpt-4o", "degraded", 0.625), serve.base() + "/v1/statuses"});
    CHECK(put.status == 200);
    CHECK(json::parse(put.body)["applied"] == 1);
    auto seen = json::parse(curl({serve.base() + "/v1/models/gpt-4o"}).body);
    CHECK(seen["model"]["status"]["availability"] == doctest::Approx(0.625));
    // A ?slug= list is kept while the copy's catalogue is the same: a PUT and a psql change
    // show in it as they do everywhere else.
    auto picked = [&] {
        return json::parse(curl({serve.base() + "/v1/models?slug=gpt-4o&slug=gpt-5"}).body);
    };
    auto listed = picked();
    REQUIRE(listed["models"].size() == 2);
    CHECK(listed["models"][0]["status"]["availability"] == doctest::Approx(0.625));
    CHECK(picked() == listed);
    server().psql("UPDATE model_status SET availability = 0.875 WHERE model_slug = 'gpt-5'",
                  "serve_pg");
    CHECK(eventually(
        [&] { return picked()["models"][1]["status"]["availability"].get<double>() == 0.875; },
        10s));
    CHECK(server()
              .psql("SELECT availability FROM model_status WHERE model_slug = 'gpt-4o'", "serve_pg")
              .find("0.625") != std::string::npos);
    auto stats = json::parse(curl({serve.base() + "/v1/stats"}).body);
    CHECK(stats["backup"] == false);
    CHECK(std::string(stats["source"]).starts_with("postgresql://"));
    CHECK(stats["source"].get<std::string>().find(password) == std::string::npos);
    CHECK(json::parse(ready_when(serve, checked).body)["state"] == "ready");

    // Load, then the database dies under it.
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0};
    std::vector<std::thread> load;
    for (int t = 0; t < 2; ++t)
        load.emplace_back([&] {
            httplib::Client c("127.0.0.1", serve.port());
            c.set_read_timeout(10, 0);
            while (!stop) {
                auto r = c.Get(ok % 2 ? "/v1/stats" : "/v1/models?slug=gpt-4o&slug=gpt-5");
                (r && r->status == 200 ? ok : failed)++;
            }
        });
    std::this_thread::sleep_for(500ms);
    int before = ok;
    pg.kill9();
    std::this_thread::sleep_for(1500ms);
    stop = true;
    for (auto& t : load)
        t.join();
    CHECK(ok > before);
    CHECK(failed == 0);

    auto down_stats = curl({serve.base() + "/v1/stats"});
    CHECK(down_stats.status == 200);
    auto ready = ready_when(serve, [](const json& r) { return r["state"] == "degraded"; });
    CHECK(ready.status == 200);
    auto r = json::parse(ready.body);
    CHECK(r["state"] == "degraded");
    CHECK(r["primary_error"]["code"].is_string());
    CHECK(ready.body.find(password) == std::string::npos);

    // A write while it is down is kept in the outbox (202), and applied after.
    auto queued = curl({"-X", "PUT", "-H", "Authorization: Bearer " + token, "--data-binary",
                        status_json("gpt-4o", "outage", 0.0625), serve.base() + "/v1/statuses"});
    CHECK(queued.status == 202);
    CHECK(json::parse(queued.body)["queued"] == 1);
    CHECK(queued.body.find(password) == std::string::npos);

    pg.start(); // not server(): it skips while the server is down
    CHECK(eventually(
        [&] {
            auto out = pg.try_psql(
                "SELECT availability FROM model_status WHERE model_slug = 'gpt-4o'", "serve_pg");
            return out && out->find("0.0625") != std::string::npos;
        },
        30s));
    CHECK(eventually(
        [&] { return json::parse(curl({serve.base() + "/readyz"}).body)["state"] == "ready"; },
        30s));
    // The list answered while the database was down (by the backup) is not what comes now.
    CHECK(eventually(
        [&] {
            auto now = picked();
            return now["source"].get<std::string>().starts_with("postgresql://") &&
                   now["models"][0]["status"]["availability"].get<double>() == 0.0625;
        },
        30s));
    serve.process().signal(SIGTERM);
    CHECK(serve.process().wait(10s) == 0);
    CHECK(serve.process().err().find(password) == std::string::npos);
}

// --- publish ----------------------------------------------------------------------------

namespace {

std::string base64(std::string_view in) {
    static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v =
            (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], table[v & 63]};
    }
    if (i + 1 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16;
        out += {table[v >> 18], table[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
        out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], '='};
    }
    // The API wraps at 60 columns; the client must not care.
    std::string wrapped;
    for (std::size_t at = 0; at < out.size(); at += 60)
        wrapped += out.substr(at, 60) + "\n";
    return wrapped;
}

std::string unbase64(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '+')
            return 62;
        if (c == '/')
            return 63;
        return -1;
    };
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = value(c);
        if (v < 0)
            continue;
        acc = acc << 6 | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

/// GitHub's contents API for one file, on loopback: GET answers its sha and base64
/// content (404 before the first PUT); PUT needs the current sha, makes a "commit".
class ContentsStandIn {
public:
    ContentsStandIn() {
        const std::string path = "/repos/acme/catalogue/contents/data/models.json";
        server_.Get(path, [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock(mutex_);
            ++gets_;
            auths_.push_back(req.get_header_value("Authorization"));
            refs_.push_back(req.get_param_value("ref"));
            if (status_override_) {
                res.status = status_override_;
                res.set_content(R"({"message":"Bad credentials"})", "application/json");
                return;
            }
            if (content_.empty()) {
                res.status = 404;
                res.set_content(R"({"message":"Not Found"})", "application/json");
                return;
            }
            json body{{"type", "file"},
                      {"encoding", "base64"},
                      {"sha", sha_},
                      {"content", base64(content_)}};
            res.set_content(body.dump(), "application/json");
        });
        server_.Put(path, [this](const httplib::Request& req, httplib::Response& res) {
            std::lock_guard lock(mutex_);
            ++puts_;
            auths_.push_back(req.get_header_value("Authorization"));
            auto body = json::parse(req.body);
            std::string sent_sha = body.value("sha", "");
            if (conflicts_ > 0) {
                --conflicts_;
                // Someone else committed in between: the file changed under the client.
                content_ += " ";
                sha_ = "other" + std::to_string(puts_);
                res.status = 409;
                res.set_content(R"({"message":"is at a different sha"})", "application/json");
                return;
            }
            if (sent_sha != sha_) {
                res.status = 409;
                res.set_content(R"({"message":"sha mismatch"})", "application/json");
                return;
            }
            content_ = unbase64(body["content"].get<std::string>());
            branch_ = body.value("branch", "");
            message_ = body.value("message", "");
            sha_ = "blob" + std::to_string(puts_);
            res.status = 201;
            res.set_content(json{{"content", {{"sha", sha_}}},
                                 {"commit", {{"sha", "commit" + std::to_string(puts_)}}}}
                                .dump(),
                            "application/json");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        for (int i = 0; i < 500 && !server_.is_running(); ++i)
            std::this_thread::sleep_for(2ms);
    }
    ~ContentsStandIn() {
        server_.stop();
        thread_.join();
    }
    std::string destination() const {
        return "github://acme/catalogue/data/models.json@main?api_base=http://127.0.0.1:" +
               std::to_string(port_);
    }
    int puts() const {
        std::lock_guard lock(mutex_);
        return puts_;
    }
    int gets() const {
        std::lock_guard lock(mutex_);
        return gets_;
    }
    std::string content() const {
        std::lock_guard lock(mutex_);
        return content_;
    }
    std::string branch() const {
        std::lock_guard lock(mutex_);
        return branch_;
    }
    std::vector<std::string> auths() const {
        std::lock_guard lock(mutex_);
        return auths_;
    }
    std::vector<std::string> refs() const {
        std::lock_guard lock(mutex_);
        return refs_;
    }
    void conflict(int n) {
        std::lock_guard lock(mutex_);
        conflicts_ = n;
    }
    void answer(int status) {
        std::lock_guard lock(mutex_);
        status_override_ = status;
    }

private:
    httplib::Server server_;
    std::thread thread_;
    int port_ = 0;
    mutable std::mutex mutex_;
    std::string content_, sha_, branch_, message_;
    int puts_ = 0, gets_ = 0, conflicts_ = 0, status_override_ = 0;
    std::vector<std::string> auths_, refs_;
};

const std::string github_token = "ghp_TestOnly0123456789abcdefABCDEF0123";

ProcessResult publish(const std::vector<std::string>& sources, const std::string& dest,
                      std::map<std::string, std::string> env = {{"GITHUB_TOKEN", github_token}}) {
    std::vector<std::string> argv{require_env("MODELREPO_CLI")};
    for (auto& s : sources) {
        argv.push_back("--source");
        argv.push_back(s);
    }
    argv.push_back("publish");
    argv.push_back(dest);
    return run_process(argv, env);
}

} // namespace

TEST_CASE(
    "publish github://: one commit per change, none when unchanged, a conflict retried once") {
    ContentsStandIn github;
    auto first = publish({"builtin:"}, github.destination());
    CHECK_MESSAGE(first.exit_code == 0, first.err);
    CHECK(first.out.find("published 32 models") != std::string::npos);
    CHECK(github.puts() == 1);
    CHECK(github.branch() == "main");
    REQUIRE(!github.refs().empty());
    CHECK(github.refs().back() == "main");
    auto stored = parse_snapshot(github.content());
    REQUIRE_MESSAGE(stored, stored.error().to_string());
    CHECK(stored.value().models.size() == 32);
    for (auto& auth : github.auths())
        CHECK(auth == "Bearer " + github_token);

    auto unchanged = publish({"builtin:"}, github.destination());
    CHECK(unchanged.exit_code == 0);
    CHECK(unchanged.out.find("unchanged") != std::string::npos);
    CHECK(github.puts() == 1);

    // A changed catalogue: a snapshot file with one status changed.
    TempDir dir;
    Snapshot changed = stored.value();
    changed.statuses[0].availability = 0.5;
    changed.statuses[0].health = Health::degraded;
    auto file = dir.path() / "changed.json";
    std::ofstream(file) << write_snapshot(changed);
    auto next = publish({"file://" + file.string()}, github.destination());
    CHECK_MESSAGE(next.exit_code == 0, next.err);
    CHECK(github.puts() == 2);
    CHECK(parse_snapshot(github.content()).value().statuses == changed.statuses);

    // Someone commits between our GET and PUT: read again and retry, once.
    github.conflict(1);
    auto retried = publish({"builtin:"}, github.destination());
    CHECK_MESSAGE(retried.exit_code == 0, retried.err);
    CHECK(github.puts() == 4);
    CHECK(parse_snapshot(github.content()).value().statuses == stored.value().statuses);
    github.conflict(2);
    auto gave_up = publish({"file://" + file.string()}, github.destination());
    CHECK(gave_up.exit_code == 1);
    CHECK(gave_up.err.find("http_status") != std::string::npos);
    CHECK(github.puts() == 6);

    github.answer(401);
    auto refused = publish({"builtin:"}, github.destination());
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("auth_failed") != std::string::npos);
    github.answer(0);

    auto no_token = publish({"builtin:"}, github.destination(), {{"GITHUB_TOKEN", ""}});
    CHECK(no_token.exit_code == 1);
    CHECK(no_token.err.find("GITHUB_TOKEN") != std::string::npos);
    auto bad = publish({"builtin:"}, "github://acme");
    CHECK(bad.exit_code == 1);
    CHECK(bad.err.find("invalid_argument") != std::string::npos);
    auto nowhere = publish({"builtin:"},
                           "github://acme/catalogue/models.json@main?api_base=http://127.0.0.1:1");
    CHECK(nowhere.exit_code == 1);
    CHECK(nowhere.err.find("unreachable") != std::string::npos);

    for (auto* r : {&first, &unchanged, &next, &retried, &gave_up, &refused, &no_token, &nowhere}) {
        CHECK(r->out.find(github_token) == std::string::npos);
        CHECK(r->err.find(github_token) == std::string::npos);
    }
}

TEST_CASE("publish file://: atomic, and nothing written when unchanged") {
    TempDir dir;
    auto target = dir.path() / "backup.json";
    auto first = publish({"builtin:"}, "file://" + target.string());
    CHECK_MESSAGE(first.exit_code == 0, first.err);
    auto stored = parse_snapshot([&] {
        std::ifstream in(target);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }());
    REQUIRE(stored);
    CHECK(stored.value().models.size() == 32);
    auto written = std::filesystem::last_write_time(target);
    std::this_thread::sleep_for(20ms);
    auto again = publish({"builtin:"}, "file://" + target.string());
    CHECK(again.out.find("unchanged") != std::string::npos);
    CHECK(std::filesystem::last_write_time(target) == written);
    // No temporary file is left beside it.
    int files = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.path()))
        (void)e, ++files;
    CHECK(files == 1);
    auto relative = publish({"builtin:"}, "file:backup.json");
    CHECK(relative.exit_code == 1);
    CHECK(relative.err.find("invalid_argument") != std::string::npos);
}

TEST_CASE("serve --publish: the backup follows the changes, at most once per interval") {
    ContentsStandIn github;
    TempDir dir;
    Serve serve({"builtin:"},
                {"--token-file", token_file(dir, token), "--publish", github.destination(),
                 "--publish-interval", "1s"},
                {{"GITHUB_TOKEN", github_token}});
    REQUIRE(eventually([&] { return github.puts() == 1; }, 10s)); // at start
    auto c = serve.client();
    for (double a : {0.25, 0.5, 0.75}) {
        auto put = c.Put("/v1/statuses", {{"Authorization", "Bearer " + token}},
                         status_json("gpt-5", "degraded", a), "application/json");
        REQUIRE(put);
        CHECK(put->status == 200);
    }
    REQUIRE(eventually(
        [&] {
            auto s = parse_snapshot(github.content());
            if (!s)
                return false;
            for (auto& st : s.value().statuses)
                if (st.model_slug == "gpt-5")
                    return st.availability == 0.75;
            return false;
        },
        15s));
    int after_changes = github.puts();
    CHECK(after_changes >= 2);
    CHECK(after_changes <= 3);           // three changes within one interval: not three commits
    std::this_thread::sleep_for(2500ms); // nothing changed: nothing published
    CHECK(github.puts() == after_changes);
    CHECK(serve.metric("modelrepo_publish_total{result=\"changed\"}") == after_changes);
    serve.process().signal(SIGTERM);
    CHECK(serve.process().wait(10s) == 0);
    CHECK(serve.process().err().find(github_token) == std::string::npos);
}

TEST_CASE("serve on a database migrated for feed=logical (feed=auto follows it): a psql change "
          "reaches the copy and /v1/changes from the WAL, with no trigger on the writer's table") {
    PgServer& pg = server();
    pg.psql("ALTER ROLE app REPLICATION");
    fresh_catalogue("serve_logical", "feed=logical");
    CHECK(pg.psql("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = "
                  "'model_status'::regclass",
                  "serve_logical") == "0");
    // The README's URL: no feed= (auto), a live copy.
    Serve serve(
        {pg.url("app", password, "serve_logical", "127.0.0.1", "cache=live&connect_timeout=2")});
    REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));
    // /v1/status says which feed runs (the source's parts are read every few seconds).
    CHECK(eventually(
        [&] {
            auto status = json::parse(curl({serve.base() + "/v1/status"}).body, nullptr, false);
            return status.is_object() && status["sources"][0]["feed"]["kind"] == "logical";
        },
        20s));
    auto stream = open_stream(serve.port());
    pg.psql("UPDATE model_status SET availability = 0.1234 WHERE model_slug = 'gpt-5'",
            "serve_logical");
    REQUIRE(stream->wait_for("\"slug\":\"gpt-5\"", 10s));
    CHECK(eventually(
        [&] {
            return curl({serve.base() + "/v1/statuses"}).body.find("0.1234") != std::string::npos;
        },
        10s));
    pg.psql("ALTER ROLE app NOREPLICATION");
}

namespace {

/// What a stream received after a point, chunk by chunk, each with when it arrived.
struct Received {
    std::vector<std::pair<steady_clock::time_point, std::string>> chunks;
};

/// One SSE event of a stream: a status change of `slug`, or a resync; when its last byte
/// came.
struct Arrived {
    bool resync = false;
    std::string slug;
    steady_clock::time_point at;
};

std::vector<Arrived> events_of(const Received& r) {
    std::vector<Arrived> out;
    std::string text;
    std::vector<std::pair<std::size_t, steady_clock::time_point>> ends; // chunk end -> time
    for (const auto& [at, chunk] : r.chunks) {
        text += chunk;
        ends.emplace_back(text.size(), at);
    }
    std::size_t from = 0;
    for (std::size_t end; (end = text.find("\n\n", from)) != std::string::npos; from = end + 2) {
        std::string event = text.substr(from, end - from);
        auto came = std::find_if(ends.begin(), ends.end(),
                                 [&](const auto& e) { return e.first >= end + 2; });
        Arrived a{event.find("event: resync") != std::string::npos, "", came->second};
        auto slug = event.find("\"slug\":\"");
        if (!a.resync &&
            (event.find("\"kind\":\"status\"") == std::string::npos || slug == std::string::npos))
            continue; // a comment, a heartbeat
        if (!a.resync)
            a.slug = event.substr(slug + 8, event.find('"', slug + 8) - slug - 8);
        out.push_back(std::move(a));
    }
    return out;
}

} // namespace

TEST_CASE("feed=logical, 50 streams, kill -9 of PostgreSQL twice while a client writes: every "
          "committed change reaches every stream, as its event or as a resync after it") {
    PgServer& pg = server();
    pg.psql("ALTER ROLE app REPLICATION");
    fresh_catalogue("serve_kill9", "feed=logical");
    // A model of its own for each change (3,000: more than the test makes), so that a
    // later change of the same model never stands for a lost one.
    pg.psql("INSERT INTO models (slug, name, provider_slug) SELECT 'k' || g, 'K ' || g, "
            "(SELECT min(slug) FROM providers) FROM generate_series(1, 3000) g; "
            "INSERT INTO model_status (model_slug, health, availability, error_rate, "
            "checked_at) SELECT 'k' || g, 'operational', 0.9, 0.1, now() FROM "
            "generate_series(1, 3000) g",
            "serve_kill9");
    Serve serve({pg.url("app", password, "serve_kill9", "127.0.0.1",
                        "cache=live&connect_timeout=2&socket_timeout=2")});
    REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));
    std::vector<std::unique_ptr<RawSocket>> streams;
    for (int i = 0; i < 50; ++i)
        streams.push_back(open_stream(serve.port()));

    // Every stream read on one thread, each chunk with its time.
    std::vector<Received> received(streams.size());
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop) {
            std::vector<pollfd> fds;
            for (auto& s : streams)
                fds.push_back({s->fd(), POLLIN, 0});
            if (::poll(fds.data(), fds.size(), 50) <= 0)
                continue;
            auto now = steady_clock::now();
            for (std::size_t i = 0; i < fds.size(); ++i)
                if (fds[i].revents & POLLIN) {
                    char buf[16384];
                    ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
                    if (n > 0)
                        received[i].chunks.emplace_back(
                            now, std::string(buf, static_cast<std::size_t>(n)));
                }
        }
    });
    // One client writes the statuses in turn; what committed is kept with when it began
    // and when its commit was acknowledged.
    struct Change {
        std::string slug;
        steady_clock::time_point began, committed;
    };
    std::vector<Change> changes;
    std::mutex changes_mutex;
    std::thread writer([&] {
        std::vector<std::string> slugs;
        for (int k = 1; k <= 3000; ++k)
            slugs.push_back("k" + std::to_string(k));
        PGconn* conn = PQconnectdb(
            pg.url("app", password, "serve_kill9", "127.0.0.1", "connect_timeout=2").c_str());
        for (std::size_t i = 0; !stop; ++i) {
            const std::string& slug = slugs[i % slugs.size()];
            auto began = steady_clock::now();
            PGresult* r = PQexec(conn, ("UPDATE model_status SET availability = " +
                                        std::to_string((i % 1000) / 1000.0) +
                                        " WHERE model_slug = '" + slug + "'")
                                           .c_str());
            bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
            if (ok) {
                std::lock_guard lock(changes_mutex);
                changes.push_back({slug, began, steady_clock::now()});
            } else {
                std::this_thread::sleep_for(50ms);
                PQreset(conn);
            }
            std::this_thread::sleep_for(5ms);
        }
        PQfinish(conn);
    });
    struct Joiner {
        std::atomic<bool>& stop;
        std::thread &a, &b;
        ~Joiner() {
            stop = true;
            for (std::thread* t : {&a, &b})
                if (t->joinable())
                    t->join();
        }
    } joiner{stop, reader, writer};
    auto committed = [&] {
        std::lock_guard lock(changes_mutex);
        return changes.size();
    };
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        auto before = committed();
        REQUIRE(eventually([&] { return committed() >= before + 100; }, 30s));
        pg.kill9();
        std::this_thread::sleep_for(300ms);
        pg.start();
        REQUIRE_MESSAGE(pg.available(), pg.why());
    }
    auto before = committed();
    REQUIRE(eventually([&] { return committed() >= before + 100; }, 30s));
    // The last change, then what every stream was sent: a change, a last marker.
    std::this_thread::sleep_for(200ms);
    {
        std::lock_guard lock(changes_mutex);
        stop = true;
    }
    writer.join();
    auto marker = steady_clock::now();
    pg.psql("UPDATE model_status SET availability = 0.4321 WHERE model_slug = 'gpt-5'",
            "serve_kill9");
    auto all_marked = [&] {
        // (the reader has stopped: read the rest here)
        for (std::size_t i = 0; i < streams.size(); ++i) {
            char buf[16384];
            for (ssize_t n; (n = ::recv(streams[i]->fd(), buf, sizeof buf, MSG_DONTWAIT)) > 0;)
                received[i].chunks.emplace_back(steady_clock::now(),
                                                std::string(buf, static_cast<std::size_t>(n)));
        }
        for (const Received& r : received) {
            auto events = events_of(r);
            if (std::none_of(events.begin(), events.end(), [&](const Arrived& a) {
                    return (a.resync || a.slug == "gpt-5") && a.at >= marker;
                }))
                return false;
        }
        return true;
    };
    reader.join();
    REQUIRE(eventually(all_marked, 30s));

    CAPTURE(changes.size());
    REQUIRE(changes.size() <= 3000);
    std::size_t resyncs = 0, by_resync = 0;
    for (std::size_t s = 0; s < received.size(); ++s) {
        CAPTURE(s);
        auto events = events_of(received[s]);
        resyncs += static_cast<std::size_t>(
            std::count_if(events.begin(), events.end(), [](const Arrived& a) { return a.resync; }));
        std::size_t lost = 0;
        for (const Change& c : changes) {
            bool evented = std::any_of(events.begin(), events.end(), [&](const Arrived& a) {
                return !a.resync && a.slug == c.slug && a.at >= c.began;
            });
            bool resynced = std::any_of(events.begin(), events.end(), [&](const Arrived& a) {
                return a.resync && a.at >= c.committed;
            });
            lost += !evented && !resynced;
            by_resync += !evented && resynced;
        }
        CHECK(lost == 0);
    }
    MESSAGE(changes.size() << " changes committed through 2 kill -9s; " << resyncs
                           << " resyncs over 50 streams; " << by_resync
                           << " times a change reached a stream only as a resync after it");
    CHECK(resyncs >= 2 * streams.size()); // one per restart at least, on every stream
    pg.psql("ALTER ROLE app NOREPLICATION");
}
