// SPDX-License-Identifier: MIT
// serve on a network, tried from outside with curl and Debian's nginx: scoped tokens over
// HTTP (Bearer, Basic, 401 with its challenge, 403), the Host a loopback listener answers,
// CORS preflights through the real transport, ETag/304, and nginx as a caching proxy that
// keeps answering /v1/models from its cache while serve is stopped.
#include <filesystem>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "process.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;
using nlohmann::json;

namespace {

/// curl with -D - : the status, the headers (lower-case names) and the body.
struct Full {
    int status = 0;
    std::map<std::string, std::string> headers;
    std::string body;
};
Full curl_full(std::vector<std::string> args) {
    std::vector<std::string> argv{"curl", "-sS", "--max-time", "20", "-D", "-"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_process(argv, {}, seconds(30));
    REQUIRE_MESSAGE(r.exit_code == 0, "curl failed: " << r.err);
    Full out;
    std::string& text = r.out;
    auto end = text.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    std::string head = text.substr(0, end);
    out.body = text.substr(end + 4);
    out.status = std::stoi(head.substr(head.find(' ') + 1, 3));
    std::size_t at = head.find("\r\n");
    while (at != std::string::npos) {
        auto next = head.find("\r\n", at + 2);
        std::string line = head.substr(at + 2, next == std::string::npos ? next : next - at - 2);
        auto colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (char& c : name)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            out.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        at = next;
    }
    return out;
}

std::string write_file(const TempDir& dir, const std::string& name, const std::string& text) {
    auto path = dir.path() / name;
    std::ofstream(path) << text;
    return path.string();
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t length = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
    ::close(fd);
    return ntohs(addr.sin_port);
}

/// Debian's nginx as a caching reverse proxy in front of `upstream_port`, as
/// docs/serve.md recommends: the cache obeys serve's Cache-Control, and serves stale
/// answers while serve cannot answer.
class CachingNginx {
public:
    CachingNginx(const TempDir& dir, int upstream_port)
        : port_(free_port()) {
        auto root = dir.path();
        std::filesystem::create_directories(root / "cache");
        std::filesystem::create_directories(root / "tmp");
        std::filesystem::permissions(root, std::filesystem::perms::owner_all |
                                               std::filesystem::perms::group_exec |
                                               std::filesystem::perms::others_exec);
        auto conf = root / "nginx.conf";
        std::ofstream(conf)
            << (::geteuid() == 0 ? "user root;\n" : "") << "daemon off;\nworker_processes 1;\n"
            << "error_log " << (root / "error.log").string() << ";\npid "
            << (root / "nginx.pid").string() << ";\nevents { worker_connections 256; }\n"
            << "http {\n  access_log off;\n"
            << "  client_body_temp_path " << (root / "tmp").string() << ";\n"
            << "  proxy_temp_path " << (root / "tmp").string() << ";\n"
            << "  fastcgi_temp_path " << (root / "tmp").string() << ";\n"
            << "  uwsgi_temp_path " << (root / "tmp").string() << ";\n"
            << "  scgi_temp_path " << (root / "tmp").string() << ";\n"
            << "  proxy_cache_path " << (root / "cache").string()
            << " levels=1:2 keys_zone=modelrepo:1m max_size=64m inactive=1d "
               "use_temp_path=off;\n"
            << "  server {\n    listen 127.0.0.1:" << port_ << ";\n"
            << "    location / {\n"
            << "      proxy_pass http://127.0.0.1:" << upstream_port << ";\n"
            << "      proxy_http_version 1.1;\n"
            << "      proxy_cache modelrepo;\n"
            << "      proxy_cache_revalidate on;\n"
            << "      proxy_cache_lock on;\n"
            << "      proxy_cache_use_stale error timeout updating http_502 http_503 "
               "http_504;\n"
            << "      proxy_cache_background_update on;\n"
            << "      add_header X-Cache-Status $upstream_cache_status always;\n"
            << "    }\n  }\n}\n";
        process_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{"nginx", "-c", conf.string(), "-p", root.string()});
        for (int i = 0; i < 200 && !answers(); ++i)
            std::this_thread::sleep_for(25ms);
        REQUIRE_MESSAGE(answers(), "nginx did not start");
    }
    ~CachingNginx() {
        process_->signal(SIGQUIT);
        process_->wait(10s);
    }
    std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
    bool answers() const {
        return run_process({"curl", "-s", "-o", "/dev/null", base() + "/healthz"}, {}, 5s)
                   .exit_code == 0;
    }

private:
    int port_;
    std::unique_ptr<ChildProcess> process_;
};

} // namespace

TEST_CASE("tokens over HTTP: Bearer and Basic, 401 with both challenges, 403 for a reader "
          "writing, /healthz open") {
    TempDir dir;
    auto writes = write_file(dir, "writers", "# the sync service\nw-Secret-1\nw-Secret-2\n");
    auto reads = write_file(dir, "readers", "r-Secret-1\n");
    Serve serve({"builtin:"}, {"--token-file", writes, "--read-token-file", reads, "--log"});
    auto denied = curl_full({serve.base() + "/v1/stats"});
    CHECK(denied.status == 401);
    CHECK(denied.headers["www-authenticate"].find("Basic realm=\"modelrepo\"") !=
          std::string::npos);
    CHECK(curl_full({serve.base() + "/healthz"}).status == 200);
    CHECK(
        curl_full({"-H", "Authorization: Bearer r-Secret-1", serve.base() + "/v1/stats"}).status ==
        200);
    // curl -u sends Basic: what a browser does after its prompt.
    CHECK(curl_full({"-u", "ops:r-Secret-1", serve.base() + "/"}).status == 200);
    CHECK(curl_full({"-u", "ops:nope", serve.base() + "/"}).status == 401);
    const std::string body =
        R"([{"model":"gpt-4o","health":"degraded","availability":0.9,"latency_ms":12,)"
        R"("error_rate":0.1,"region":"eu","checked_at":"2026-12-01T00:00:00Z"}])";
    auto reader = curl_full({"-X", "PUT", "-H", "Authorization: Bearer r-Secret-1", "--data", body,
                             serve.base() + "/v1/statuses"});
    CHECK(reader.status == 403);
    auto writer = curl_full({"-X", "PUT", "-H", "Authorization: Bearer w-Secret-2", "--data", body,
                             serve.base() + "/v1/statuses"});
    CHECK(writer.status == 200);
    // No token in the log, whatever was sent.
    serve.process().signal(SIGTERM);
    serve.process().wait(10s);
    for (const char* secret : {"r-Secret-1", "w-Secret-1", "w-Secret-2", "nope"})
        CHECK(serve.process().err().find(secret) == std::string::npos);
}

TEST_CASE("Host and CORS through the transport") {
    Serve serve({"builtin:"}, {"--cors-origin", "https://app.example.com"});
    auto rebinding = curl_full({"-H", "Host: attacker.example", serve.base() + "/v1/status"});
    CHECK(rebinding.status == 421);
    auto preflight =
        curl_full({"-X", "OPTIONS", "-H", "Origin: https://app.example.com", "-H",
                   "Access-Control-Request-Method: GET", "-H",
                   "Access-Control-Request-Headers: authorization", serve.base() + "/v1/models"});
    CHECK(preflight.status == 204);
    CHECK(preflight.headers["access-control-allow-origin"] == "https://app.example.com");
    CHECK(preflight.headers["vary"] == "Origin");
    auto read = curl_full({"-H", "Origin: https://app.example.com", serve.base() + "/v1/stats"});
    CHECK(read.status == 200);
    CHECK(read.headers["access-control-expose-headers"].find("ETag") != std::string::npos);
    auto other = curl_full({"-H", "Origin: https://evil.example", serve.base() + "/v1/stats"});
    CHECK(other.headers.count("access-control-allow-origin") == 0);
}

TEST_CASE("HTTP caching: ETag and 304 over HTTP; nginx keeps answering from its cache while "
          "serve is stopped") {
    if (!have_tool("nginx", {"-v"}))
        return;
    TempDir dir;
    auto serve = std::make_unique<Serve>(std::vector<std::string>{"builtin:"});
    auto direct = curl_full({serve->base() + "/v1/models"});
    REQUIRE(direct.status == 200);
    const std::string tag = direct.headers["etag"];
    REQUIRE(!tag.empty());
    CHECK(direct.headers["cache-control"].find("stale-if-error") != std::string::npos);
    CHECK(curl_full({"-H", "If-None-Match: " + tag, serve->base() + "/v1/models"}).status == 304);

    CachingNginx nginx(dir, serve->port());
    auto first = curl_full({nginx.base() + "/v1/models"});
    CHECK(first.status == 200);
    CHECK(first.body == direct.body);
    CHECK(first.headers["etag"] == tag);
    auto second = curl_full({nginx.base() + "/v1/models"});
    CHECK(second.body == direct.body);
    CHECK_MESSAGE((second.headers["x-cache-status"] == "HIT" ||
                   second.headers["x-cache-status"] == "REVALIDATED" ||
                   second.headers["x-cache-status"] == "UPDATING" ||
                   second.headers["x-cache-status"] == "STALE"),
                  second.headers["x-cache-status"]);

    serve->process().signal(SIGTERM);
    serve->process().wait(10s);
    serve.reset();
    std::this_thread::sleep_for(1500ms); // past max-age: nginx must ask serve, and cannot
    auto stale = curl_full({nginx.base() + "/v1/models"});
    CHECK(stale.status == 200);
    CHECK(stale.body == direct.body);
    CHECK_MESSAGE(stale.headers["x-cache-status"] == "STALE", stale.headers["x-cache-status"]);
    // Through nginx, a client's conditional request still ends in a 304.
    CHECK(curl_full({"-H", "If-None-Match: " + tag, nginx.base() + "/v1/models"}).status == 304);
}

TEST_CASE("OpenAPI: the document serve answers lints clean with @redocly/cli") {
    const std::filesystem::path redocly =
        std::filesystem::path(require_env("OPENAPI_TOOLS_DIR")) / "node_modules/.bin/redocly";
    if (!std::filesystem::exists(redocly)) {
        if (in_ci())
            FAIL("@redocly/cli is required in CI (scripts/setup test installs tests/openapi)");
        MESSAGE("skipped: @redocly/cli is not installed (scripts/setup test)");
        return;
    }
    TempDir dir;
    auto writes = write_file(dir, "writers", "w-Secret-1\n");
    auto reads = write_file(dir, "readers", "r-Secret-1\n");
    Serve serve({"builtin:"},
                {"--token-file", writes, "--read-token-file", reads, "--public-catalogue"});
    auto doc = curl_full({serve.base() + "/v1/openapi.json"});
    REQUIRE(doc.status == 200);
    CHECK(json::parse(doc.body)["openapi"] == "3.1.0");
    auto file = write_file(dir, "openapi.json", doc.body);
    auto lint = run_process({redocly.string(), "lint", file, "--format=stylish"},
                            {{"REDOCLY_TELEMETRY", "off"},
                             {"REDOCLY_SUPPRESS_UPDATE_NOTICE", "true"},
                             {"NO_COLOR", "1"}},
                            seconds(120));
    INFO(lint.out << lint.err);
    CHECK(lint.exit_code == 0);
    CHECK((lint.out + lint.err).find(" error ") == std::string::npos);
    CHECK((lint.out + lint.err).find(" warning ") == std::string::npos);
}
