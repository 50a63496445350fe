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

#include "hook_receiver.hpp"
#include "process.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"
#include "tls_files.hpp"

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
            std::string value = line.substr(line.find_first_not_of(' ', colon + 1));
            std::string& held = out.headers[name]; // a repeated header: joined, as HTTP reads it
            held += (held.empty() ? "" : ", ") + value;
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
    CHECK(denied.headers["www-authenticate"].find("Bearer realm=\"modelrepo\"") !=
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
    // Until the entry is past its max-age (nginx keeps time in whole seconds: up to 2 s),
    // nginx answers it as a HIT; then it must ask serve, cannot, and answers it STALE.
    Full stale;
    for (auto until = steady_clock::now() + 15s; steady_clock::now() < until;) {
        stale = curl_full({nginx.base() + "/v1/models"});
        if (stale.headers["x-cache-status"] != "HIT")
            break;
        std::this_thread::sleep_for(100ms);
    }
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

namespace {

/// serve's log (stderr) comes to hold `needle`: read as it comes, for 20 s at most.
bool log_says(Serve& serve, const std::string& needle) {
    for (auto until = steady_clock::now() + 20s; steady_clock::now() < until;) {
        if (serve.process().err().find(needle) != std::string::npos)
            return true;
        serve.process().read_line_until([](const std::string&) { return false; }, 50ms);
    }
    return false;
}

/// The serial number of the certificate a TLS server on `port` presents now.
std::string served_serial(int port) {
    auto r = run_process({"bash", "-c",
                          "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                              " </dev/null 2>/dev/null | openssl x509 -noout -serial"},
                         {}, seconds(30));
    return r.out;
}

} // namespace

TEST_CASE("HTTPS: --tls-cert/--tls-key, plain HTTP refused, TLS 1.2 and later, tokens over "
          "TLS; SIGHUP rereads the certificate and the tokens") {
    if (!have_tool("openssl", {"version"}))
        return;
    TempDir dir;
    auto first = make_certificates(dir, "server1", 1001);
    std::filesystem::copy_file(first.cert, dir.path() / "cert.pem");
    std::filesystem::copy_file(first.key, dir.path() / "key.pem");
    auto reads = write_file(dir, "readers", "r-Tls-1\n");
    Serve serve({"builtin:"}, {"--tls-cert", (dir.path() / "cert.pem").string(), "--tls-key",
                               (dir.path() / "key.pem").string(), "--read-token-file", reads});
    const std::string base = "https://127.0.0.1:" + std::to_string(serve.port());
    auto wait_log = [&](const std::string& needle) { return log_says(serve, needle); };
    auto ok = curl_full(
        {"--cacert", first.ca, "-H", "Authorization: Bearer r-Tls-1", base + "/v1/stats"});
    CHECK(ok.status == 200);
    CHECK(json::parse(ok.body)["models"].get<int>() > 0);
    CHECK(curl_full({"--cacert", first.ca, base + "/v1/stats"}).status == 401);
    // A client that does not trust the CA does not get through.
    CHECK(run_process({"curl", "-sS", "--max-time", "10", base + "/healthz"}).exit_code != 0);
    // Plain HTTP to the TLS port: closed at the handshake, nothing answered in the clear.
    auto plain = run_process({"curl", "-sS", "--max-time", "10",
                              "http://127.0.0.1:" + std::to_string(serve.port()) + "/healthz"});
    CHECK(plain.exit_code != 0);
    CHECK(plain.out.find("alive") == std::string::npos);
    // TLS 1.1 and older are refused.
    CHECK(run_process({"curl", "-sS", "--max-time", "10", "--cacert", first.ca, "--tls-max", "1.1",
                       base + "/healthz"})
              .exit_code != 0);
    CHECK(served_serial(serve.port()).find("serial=03E9") != std::string::npos); // 1001

    // A renewal: new files in place, SIGHUP; new connections get the new certificate.
    auto second = make_certificates(dir, "server2", 1002);
    std::filesystem::copy_file(second.cert, dir.path() / "cert.pem",
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(second.key, dir.path() / "key.pem",
                               std::filesystem::copy_options::overwrite_existing);
    std::ofstream(reads, std::ios::app) << "r-Tls-2\n";
    serve.process().signal(SIGHUP);
    REQUIRE_MESSAGE(wait_log("certificate and key read again"), serve.process().err());
    CHECK(served_serial(serve.port()).find("serial=03EA") != std::string::npos); // 1002
    CHECK(
        curl_full({"--cacert", first.ca, "-H", "Authorization: Bearer r-Tls-2", base + "/v1/stats"})
            .status == 200);
    CHECK(
        curl_full({"--cacert", first.ca, "-H", "Authorization: Bearer r-Tls-1", base + "/v1/stats"})
            .status == 200);
    // A broken renewal keeps the old certificate, and says so.
    std::ofstream(dir.path() / "key.pem", std::ios::trunc) << "not a key\n";
    serve.process().signal(SIGHUP);
    CHECK_MESSAGE(wait_log("the certificate stays as it was"), serve.process().err());
    CHECK(served_serial(serve.port()).find("serial=03EA") != std::string::npos);
    CHECK(serve.process().err().find("r-Tls-") == std::string::npos);
}

TEST_CASE("one serve follows another over HTTPS: the HTTP source's token_file= and ca_file=, "
          "and name=") {
    if (!have_tool("openssl", {"version"}))
        return;
    TempDir dir;
    auto certs = make_certificates(dir, "upstream", 3001);
    auto readers = write_file(dir, "readers", "r-Upstream-61\n");
    Serve upstream({"builtin:"}, {"--listen", "0.0.0.0:0", "--tls-cert", certs.cert, "--tls-key",
                                  certs.key, "--read-token-file", readers});
    const std::string snapshot = upstream.base() + "/v1/snapshot";
    auto token = write_file(dir, "token", "r-Upstream-61\n");

    // Trusting the private CA, with the read token: the upstream answers.
    Serve follower({snapshot + "?token_file=" + token + "&ca_file=" + certs.ca +
                        "&name=upstream&refresh_interval=1s",
                    "builtin:"},
                   {});
    auto stats = json::parse(curl_full({follower.base() + "/v1/stats"}).body);
    CHECK(stats["source"] == "upstream");
    CHECK(stats["backup"] == false);
    CHECK(stats["models"].get<int>() > 0);
    // The upstream's log shows the follower's reads, never its token.
    CHECK(upstream.process().err().find("r-Upstream-61") == std::string::npos);

    // Without the CA, or without the token, the upstream is refused and says why; the
    // bundled catalogue answers meanwhile.
    struct Case {
        std::string query, why;
    };
    for (const Case& c :
         {Case{"?token_file=" + token, "ca_file="}, Case{"?ca_file=" + certs.ca, "token_file="}}) {
        CAPTURE(c.query);
        Serve refused({snapshot + c.query + "&name=upstream", "builtin:"}, {});
        auto answer = json::parse(curl_full({refused.base() + "/v1/stats"}).body);
        CHECK(answer["source"] == "builtin");
        auto ready = ready_when(refused, checked);
        const std::string cause = json::parse(ready.body)["sources"][0]["health"]["cause"].dump();
        CHECK_MESSAGE(cause.find(c.why) != std::string::npos, ready.body);
        CHECK(ready.body.find("r-Upstream-61") == std::string::npos);
    }
}

TEST_CASE("SIGHUP rereads --admin-url-file and --alert-header-file; what cannot be read leaves "
          "the old in force") {
    TempDir dir;
    HookReceiver hooks;
    auto upstream = std::make_unique<Serve>(std::vector<std::string>{"builtin:"});
    auto header = write_file(dir, "alert-header", "Authorization: Bearer hook-Old-1\n");
    auto admin = write_file(dir, "admin-url", "postgresql://admin:Adm-Old-7@127.0.0.1:1/x\n");
    Serve serve({upstream->base() + "/v1/snapshot?refresh_interval=1s&timeout=2s", "builtin:"},
                {"--alert-webhook", hooks.url(), "--alert-header-file", header,
                 "--alert-resolve-after", "1s", "--admin-url-file", admin});
    auto wait_log = [&](const std::string& needle) { return log_says(serve, needle); };
    std::ofstream(header, std::ios::trunc) << "Authorization: Bearer hook-New-2\n";
    std::ofstream(admin, std::ios::trunc) << "postgresql://admin:Adm-New-8@127.0.0.1:1/x\n";
    serve.process().signal(SIGHUP);
    REQUIRE_MESSAGE(wait_log("the alert header read again"), serve.process().err());
    REQUIRE_MESSAGE(wait_log("the admin URL read again"), serve.process().err());

    // The first source goes down: its alert carries the new header.
    upstream.reset();
    REQUIRE(eventually([&] { return !hooks.headers().empty(); }, 30s));
    CHECK(hooks.headers().front() == "Bearer hook-New-2");

    // Files that cannot be used: said, and the old stays.
    std::ofstream(header, std::ios::trunc) << "no colon here\n";
    std::ofstream(admin, std::ios::trunc) << "\n";
    serve.process().signal(SIGHUP);
    CHECK_MESSAGE(wait_log("the alert header stays as it was"), serve.process().err());
    CHECK_MESSAGE(wait_log("the admin URL stays as it was"), serve.process().err());
    for (std::string secret : {"hook-Old-1", "hook-New-2", "Adm-Old-7", "Adm-New-8"})
        CHECK(serve.process().err().find(secret) == std::string::npos);
}
