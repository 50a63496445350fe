// SPDX-License-Identifier: MIT
// GithubRepository against a real HTTP server on loopback.
#include <atomic>
#include <ctime>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "http_server.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;
using test::HttpServer;

namespace {

const std::string token = "ghp_TestTokenValue0123456789abcdef";

std::string snapshot_text(int models = 32) {
    Snapshot s = builtin_snapshot();
    s.models.resize(static_cast<std::size_t>(models));
    std::erase_if(s.statuses, [&](const ModelStatus& st) {
        for (const auto& m : s.models)
            if (m.slug == st.model_slug)
                return false;
        return true;
    });
    return write_snapshot(s);
}

/// Serves `body` with an ETag and answers 304 to a matching If-None-Match.
HttpServer::Handler etag_handler(std::shared_ptr<std::string> body,
                                 std::shared_ptr<std::string> etag) {
    return [body, etag](const httplib::Request& req, httplib::Response& res) {
        if (req.get_header_value("If-None-Match") == *etag) {
            res.status = 304;
            return;
        }
        res.set_header("ETag", *etag);
        res.set_content(*body, "application/json");
    };
}

std::shared_ptr<GithubRepository> repo_for(const HttpServer& server, const std::string& query,
                                           const std::string& path = "/models.json") {
    auto repo = GithubRepository::open(server.base() + path + (query.empty() ? "" : "?" + query));
    REQUIRE(repo);
    return repo.value();
}

template <class T>
Error expect_error(const Result<T>& r, Errc code) {
    REQUIRE_FALSE(r);
    CAPTURE(r.error().to_string());
    CHECK(r.error().is(code));
    CHECK(r.error().message.find(token) == std::string::npos);
    return r.error();
}

} // namespace

TEST_CASE("200 with an ETag, then 304: no second download") {
    HttpServer server;
    auto body = std::make_shared<std::string>(snapshot_text());
    auto etag = std::make_shared<std::string>("\"v1-abc\"");
    server.handle(etag_handler(body, etag));
    auto repo = repo_for(server, "refresh_interval=0");
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->count_models().value() == 32);
    auto stats = repo->stats();
    CHECK(stats.requests == 2);
    CHECK(stats.downloads == 1);
    CHECK(stats.not_modified == 1);
    auto seen = server.seen();
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].headers.count("If-None-Match") == 0);
    CHECK(seen[1].headers.at("If-None-Match") == "\"v1-abc\""); // exactly, quotes included
    CHECK(repo->system_stats().value().source == server.base() + "/models.json");
    CHECK(repo->age().value() <= 1s);
}

TEST_CASE("within the refresh interval calls are served from memory") {
    HttpServer server;
    server.handle(etag_handler(std::make_shared<std::string>(snapshot_text()),
                               std::make_shared<std::string>("\"x\"")));
    auto repo = repo_for(server, "refresh_interval=60s");
    for (int i = 0; i < 1000; ++i)
        REQUIRE(repo->find_model("gpt-4o"));
    CHECK(server.requests() == 1);
}

TEST_CASE("changed content is picked up at the next revalidation") {
    HttpServer server;
    auto body = std::make_shared<std::string>(snapshot_text(32));
    auto etag = std::make_shared<std::string>("\"v1\"");
    server.handle(etag_handler(body, etag));
    auto repo = repo_for(server, "refresh_interval=0");
    CHECK(repo->count_models().value() == 32);
    *body = snapshot_text(10);
    *etag = "\"v2\"";
    CHECK(repo->count_models().value() == 10);
}

TEST_CASE("404 and 500 are http_status with the status and URL; no copy, no answer") {
    HttpServer server;
    server.handle([](const httplib::Request&, httplib::Response& res) { res.status = 404; });
    auto repo = repo_for(server, "");
    auto e = expect_error(repo->count_models(), Errc::http_status);
    CHECK(e.http_status == 404);
    CHECK(e.message.find("HTTP 404") != std::string::npos);
    CHECK(e.message.find("/models.json") != std::string::npos);

    server.handle([](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    auto repo500 = repo_for(server, "refresh_interval=0");
    auto e500 = expect_error(repo500->count_models(), Errc::http_status);
    CHECK(e500.http_status == 500);
}

TEST_CASE("a failed revalidation serves the last good copy (stale) until max_stale") {
    HttpServer server;
    server.handle(etag_handler(std::make_shared<std::string>(snapshot_text()),
                               std::make_shared<std::string>("\"v1\"")));
    auto repo = repo_for(server, "refresh_interval=0&max_stale=24h");
    REQUIRE(repo->count_models().value() == 32);
    server.handle([](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->stats().stale_served >= 1);
    // as_of stays the snapshot's generated_at
    CHECK(format_timestamp(repo->system_stats().value().as_of) == "2026-11-23T06:00:00Z");

    auto strict = repo_for(server, "refresh_interval=0&max_stale=0s");
    expect_error(strict->count_models(), Errc::http_status); // never had a copy
}

TEST_CASE("403 with X-RateLimit-Remaining: 0 is rate_limited; no request before the reset") {
    HttpServer server;
    auto reset = duration_cast<seconds>(system_clock::now().time_since_epoch()).count() + 3600;
    server.handle([reset](const httplib::Request&, httplib::Response& res) {
        res.status = 403;
        res.set_header("X-RateLimit-Remaining", "0");
        res.set_header("X-RateLimit-Reset", std::to_string(reset));
    });
    auto repo = repo_for(server, "refresh_interval=0");
    auto e = expect_error(repo->count_models(), Errc::rate_limited);
    REQUIRE(e.retry_after);
    CHECK(duration_cast<seconds>(e.retry_after->time_since_epoch()).count() == reset);
    expect_error(repo->count_models(), Errc::rate_limited);
    expect_error(repo->count_models(), Errc::rate_limited);
    CHECK(server.requests() == 1);
}

TEST_CASE("429 with Retry-After is rate_limited with that delay") {
    HttpServer server;
    server.handle([](const httplib::Request&, httplib::Response& res) {
        res.status = 429;
        res.set_header("Retry-After", "120");
    });
    auto repo = repo_for(server, "refresh_interval=0");
    auto e = expect_error(repo->count_models(), Errc::rate_limited);
    REQUIRE(e.retry_after);
    auto wait = duration_cast<seconds>(*e.retry_after - system_clock::now()).count();
    CHECK(wait > 100);
    CHECK(wait <= 120);
}

TEST_CASE("Retry-After as an HTTP date is honoured") {
    HttpServer server;
    auto when = system_clock::now() + 300s;
    std::time_t t = system_clock::to_time_t(when);
    char date[64];
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&t));
    server.handle([&](const httplib::Request&, httplib::Response& res) {
        res.status = 429;
        res.set_header("Retry-After", date);
    });
    auto repo = repo_for(server, "refresh_interval=0");
    auto e = expect_error(repo->count_models(), Errc::rate_limited);
    REQUIRE(e.retry_after);
    auto wait = duration_cast<seconds>(*e.retry_after - system_clock::now()).count();
    CHECK(wait > 280);
    CHECK(wait <= 301);
    expect_error(repo->count_models(), Errc::rate_limited);
    CHECK(server.requests() == 1);
}

TEST_CASE("an X-RateLimit-Reset that overflows is not trusted: a minute instead") {
    HttpServer server;
    server.handle([](const httplib::Request&, httplib::Response& res) {
        res.status = 403;
        res.set_header("X-RateLimit-Remaining", "0");
        res.set_header("X-RateLimit-Reset", "99999999999999999999");
    });
    auto repo = repo_for(server, "refresh_interval=0");
    auto e = expect_error(repo->count_models(), Errc::rate_limited);
    REQUIRE(e.retry_after);
    auto wait = duration_cast<seconds>(*e.retry_after - system_clock::now()).count();
    CHECK(wait > 50);
    CHECK(wait <= 60);
    CHECK(e.message.find("rate limited until 2") != std::string::npos); // not year 1889
}

TEST_CASE("with no copy yet, callers share one download instead of queueing for their own") {
    HttpServer server;
    server.handle([](const httplib::Request&, httplib::Response& res) {
        std::this_thread::sleep_for(3s);
        res.status = 500;
    });
    // The transfer times out at 1 s; the refresh interval is shorter than that.
    auto repo = repo_for(server, "timeout=1s&refresh_interval=100ms");
    auto start = steady_clock::now();
    std::vector<std::thread> callers;
    std::atomic<int> timeouts{0};
    for (int i = 0; i < 8; ++i)
        callers.emplace_back([&] {
            auto r = repo->count_models();
            if (!r && r.error().is(Errc::timeout))
                ++timeouts;
        });
    for (auto& t : callers)
        t.join();
    auto took = steady_clock::now() - start;
    CAPTURE(duration_cast<milliseconds>(took).count());
    CHECK(timeouts.load() == 8);
    CHECK(took < 2500ms); // one timeout, not eight in a row
    CHECK(server.requests() <= 2);
}

TEST_CASE("a slow answer past the timeout is timeout, within the deadline plus slack") {
    HttpServer server;
    server.handle([](const httplib::Request&, httplib::Response& res) {
        std::this_thread::sleep_for(2s);
        res.set_content(snapshot_text(), "application/json");
    });
    auto repo = repo_for(server, "timeout=300ms");
    auto start = steady_clock::now();
    expect_error(repo->count_models(), Errc::timeout);
    CHECK(steady_clock::now() - start < 1500ms);
}

TEST_CASE("truncated, oversized, malformed and non-snapshot bodies are bad_data") {
    HttpServer server;
    std::string good = snapshot_text();
    server.handle([good](const httplib::Request&, httplib::Response& res) {
        res.set_content_provider(good.size(), "application/json",
                                 [good](std::size_t, std::size_t, httplib::DataSink& sink) {
                                     sink.write(good.data(), good.size() / 2);
                                     return false; // the connection ends short
                                 });
    });
    auto e = expect_error(repo_for(server, "")->count_models(), Errc::bad_data);
    CHECK(e.message.find("truncated") != std::string::npos);

    server.handle([](const httplib::Request&, httplib::Response& res) {
        res.set_content(std::string(5'000'000, ' '), "application/json");
    });
    auto repo = GithubRepository::open(server.base() + "/big.json");
    REQUIRE(repo);
    GithubConfig small = GithubConfig::from_uri(server.base() + "/big.json").value();
    small.max_body_bytes = 100'000;
    auto limited = GithubRepository::create(small).value();
    auto big = expect_error(limited->count_models(), Errc::bad_data);
    CHECK(big.message.find("larger than the limit") != std::string::npos);

    server.handle([](const httplib::Request&, httplib::Response& res) {
        res.set_content("{\"format\": \"modelrepo.snapshot/1\", ", "application/json");
    });
    expect_error(repo_for(server, "")->count_models(), Errc::bad_data);
    server.handle([](const httplib::Request&, httplib::Response& res) {
        res.set_content("{\"hello\": [1, 2, 3]}", "application/json");
    });
    auto not_snapshot = expect_error(repo_for(server, "")->count_models(), Errc::bad_data);
    CHECK(not_snapshot.message.find("$.format") != std::string::npos);
}

TEST_CASE("a bad body after a good one: the last good copy stays in service") {
    HttpServer server;
    server.handle(etag_handler(std::make_shared<std::string>(snapshot_text()),
                               std::make_shared<std::string>("\"v1\"")));
    auto repo = repo_for(server, "refresh_interval=0");
    REQUIRE(repo->count_models().value() == 32);
    server.handle([](const httplib::Request&, httplib::Response& res) {
        res.set_content("{not json", "application/json");
    });
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->stats().stale_served == 1);
    CHECK(repo->stats().failures == 1);
}

TEST_CASE("the contents API: path, ref, headers; the token only when set and never shown") {
    HttpServer server;
    server.handle(etag_handler(std::make_shared<std::string>(snapshot_text()),
                               std::make_shared<std::string>("\"c1\"")));
    ::unsetenv("GITHUB_TOKEN");
    auto anonymous = GithubRepository::open(
                         "github://acme/catalogue/data/models.json@main?api_base=" + server.base())
                         .value();
    CHECK(anonymous->name() == "github://acme/catalogue/data/models.json@main");
    REQUIRE(anonymous->count_models().value() == 32);
    auto seen = server.seen();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].path == "/repos/acme/catalogue/contents/data/models.json");
    CHECK(seen[0].ref == "main");
    CHECK(seen[0].headers.at("Accept") == "application/vnd.github.raw+json");
    CHECK(seen[0].headers.count("X-GitHub-Api-Version") == 1);
    CHECK(seen[0].headers.at("User-Agent").find("modelrepo/") == 0);
    CHECK(seen[0].headers.count("Authorization") == 0);

    ::setenv("GITHUB_TOKEN", token.c_str(), 1);
    auto authed =
        GithubRepository::open("github://acme/catalogue/models.json?api_base=" + server.base())
            .value();
    ::unsetenv("GITHUB_TOKEN");
    REQUIRE(authed->count_models());
    seen = server.seen();
    CHECK(seen.back().headers.at("Authorization") == "Bearer " + token);
    CHECK(seen.back().ref.empty());
    CHECK(std::string(authed->name()).find(token) == std::string::npos);

    server.handle([](const httplib::Request&, httplib::Response& res) { res.status = 401; });
    ::setenv("GITHUB_TOKEN", token.c_str(), 1);
    auto denied =
        GithubRepository::open("github://acme/catalogue/x.json?api_base=" + server.base()).value();
    ::unsetenv("GITHUB_TOKEN");
    auto e = expect_error(denied->count_models(), Errc::auth_failed);
    CHECK(e.http_status == 401);
    CHECK(e.message.find("GITHUB_TOKEN") != std::string::npos);
}

TEST_CASE("GITHUB_TOKEN goes to GitHub only; token_file= gives a source its own token") {
    HttpServer server;
    server.handle(etag_handler(std::make_shared<std::string>(snapshot_text()),
                               std::make_shared<std::string>("\"t1\"")));
    // Another host (another modelrepo serve, a mirror): never the GitHub token.
    ::setenv("GITHUB_TOKEN", token.c_str(), 1);
    auto mirror = GithubRepository::open(server.base() + "/models.json").value();
    ::unsetenv("GITHUB_TOKEN");
    REQUIRE(mirror->count_models().value() == 32);
    CHECK(server.seen().back().headers.count("Authorization") == 0);

    // Its own token from a file, sent to that host; the parameter is not passed on.
    test::TempDir dir;
    auto file = dir.path() / "serve-read-token";
    std::ofstream(file) << "r-Mirror-Token-77\n";
    auto own =
        GithubRepository::open(server.base() + "/models.json?token_file=" + file.string() + "&v=2")
            .value();
    REQUIRE(own->count_models().value() == 32);
    auto seen = server.seen().back(); // a copy: seen() answers a new vector
    CHECK(seen.headers.at("Authorization") == "Bearer r-Mirror-Token-77");
    CHECK(std::string(own->name()).find("r-Mirror-Token-77") == std::string::npos);

    // Mistakes are named, the token never.
    std::ofstream(dir.path() / "empty") << "\n";
    auto empty = GithubConfig::from_uri(server.base() +
                                        "/m.json?token_file=" + (dir.path() / "empty").string());
    REQUIRE(!empty);
    CHECK(empty.error().message.find("token_file is empty") != std::string::npos);
    auto missing = GithubConfig::from_uri(server.base() + "/m.json?token_file=/no/such/file");
    REQUIRE(!missing);
    CHECK(missing.error().is(Errc::invalid_argument));
    auto no_ca = GithubConfig::from_uri("https://mirror.example/m.json?ca_file=");
    REQUIRE(!no_ca);
    CHECK(no_ca.error().message.find("ca_file") != std::string::npos);
    auto with_ca = GithubConfig::from_uri("https://mirror.example/m.json?ca_file=/etc/ca.pem");
    REQUIRE(with_ca);
    CHECK(with_ca.value().ca_file == "/etc/ca.pem");
    CHECK(with_ca.value().url == "https://mirror.example/m.json");
}

TEST_CASE("start with the server down and a disk cache present: still answers") {
    test::TempDir cache;
    std::string uri;
    {
        HttpServer server;
        server.handle(etag_handler(std::make_shared<std::string>(snapshot_text()),
                                   std::make_shared<std::string>("\"d1\"")));
        uri = server.base() + "/models.json?cache_dir=" + cache.path().string();
        auto repo = GithubRepository::open(uri).value();
        REQUIRE(repo->count_models().value() == 32);
    } // the server is gone now
    int files = 0;
    for ([[maybe_unused]] auto& f : std::filesystem::directory_iterator(cache.path()))
        ++files;
    CHECK(files == 2); // body and meta, no temporary left behind
    auto restarted = GithubRepository::open(uri).value();
    CHECK(restarted->count_models().value() == 32);
    CHECK(restarted->stats().stale_served == 1);
    CHECK(restarted->stats().failures == 1);
    auto fresh = GithubRepository::open(uri.substr(0, uri.find('?'))).value(); // no cache
    expect_error(fresh->count_models(), Errc::unreachable);
}

TEST_CASE("32 threads while a revalidation is in flight: one request reaches the server") {
    HttpServer server;
    auto body = std::make_shared<std::string>(snapshot_text());
    std::atomic<int> served{0};
    server.handle([&, body](const httplib::Request&, httplib::Response& res) {
        ++served;
        std::this_thread::sleep_for(300ms); // in flight while the others call
        res.set_header("ETag", "\"t1\"");
        res.set_content(*body, "application/json");
    });
    auto repo = repo_for(server, "refresh_interval=60s");
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 32; ++t)
        threads.emplace_back([&] {
            if (repo->count_models())
                ++ok;
        });
    for (auto& t : threads)
        t.join();
    CHECK(ok.load() == 32);
    CHECK(server.requests() == 1);
}

#if MODELREPO_TEST_CLI
TEST_CASE("modelrepo stats --source github://… against a loopback server") {
    HttpServer server;
    server.handle(etag_handler(std::make_shared<std::string>(snapshot_text()),
                               std::make_shared<std::string>("\"cli\"")));
    auto r = test::run_process(
        {test::require_env("MODELREPO_CLI"), "--source",
         "github://acme/catalogue/models.json@main?api_base=" + server.base(), "stats", "--json"},
        {{"MODELREPO_SOURCES", ""}, {"GITHUB_TOKEN", token}});
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"models\": 32") != std::string::npos);
    CHECK(r.out.find("github://acme/catalogue/models.json@main") != std::string::npos);
    CHECK(r.out.find(token) == std::string::npos);
    CHECK(r.err.find(token) == std::string::npos);
}
#endif
