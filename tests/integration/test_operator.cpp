// SPDX-License-Identifier: MIT
// The operator's view against real parts: serve's /metrics holds every metric that
// contrib/prometheus/alerts.yml and contrib/grafana/modelrepo.json name, and Debian's
// prometheus, scraping serve on loopback, fires the backup-serving alert when the
// database is killed and resolves it after the restart.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "serve_process.hpp"
#include "temp_dir.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path contrib() {
    return fs::path(require_env("MODELREPO_SOURCE_ROOT")) / "contrib";
}

std::string read_all(const fs::path& file) {
    std::ifstream in(file);
    REQUIRE_MESSAGE(in, "cannot read " << file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Every modelrepo_* name in `text` (a histogram's _bucket/_sum/_count as its series).
std::set<std::string> metric_names(const std::string& text) {
    std::set<std::string> names;
    std::regex name("modelrepo_[a-z_]+");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), name);
         it != std::sregex_iterator(); ++it)
        names.insert(it->str());
    return names;
}

/// GET `url` with curl; the body, or "" while nothing answers there.
std::string fetch(const std::string& url) {
    auto r = run_process({"curl", "-s", "--max-time", "5", url});
    return r.exit_code == 0 ? r.out : std::string();
}

} // namespace

TEST_CASE("every metric alerts.yml and the Grafana dashboard name is in serve's /metrics") {
    if (!have_tool("curl"))
        return;
    fresh_catalogue("operator_metrics");
    TempDir dir;
    const std::string url = server().url("app", password, "operator_metrics", "127.0.0.1",
                                         "cache=live&outbox=" + (dir.path() / "o.db").string());
    Serve serve({url, "builtin:"});
    REQUIRE(copy_in_sync(json::parse(ready_when(serve, copy_in_sync).body)));
    curl({serve.base() + "/v1/stats"});
    std::string metrics = curl({serve.base() + "/metrics"}).body;
    std::set<std::string> exposed = metric_names(metrics);
    std::set<std::string> named = metric_names(read_all(contrib() / "prometheus" / "alerts.yml"));
    auto dashboard = metric_names(read_all(contrib() / "grafana" / "modelrepo.json"));
    named.insert(dashboard.begin(), dashboard.end());
    CHECK(named.size() >= 20);
    for (const std::string& name : named) {
        CAPTURE(name);
        CHECK(exposed.count(name) == 1);
    }
    // The dashboard is JSON Grafana reads: panels with a query each.
    auto board = json::parse(read_all(contrib() / "grafana" / "modelrepo.json"));
    CHECK(board["panels"].size() >= 10);
    for (const auto& panel : board["panels"])
        CHECK_FALSE(panel["targets"].empty());
}

TEST_CASE("a real Prometheus scraping serve: the backup-serving alert fires when the database "
          "is killed and resolves after the restart") {
    if (!have_tool("prometheus", {"--version"}) || !have_tool("curl"))
        return;
    auto& s = server();
    fresh_catalogue("operator_prometheus");
    TempDir dir;
    // No copy here: with the database gone the chain's backup (builtin:) answers.
    const std::string url =
        s.url("app", password, "operator_prometheus", "127.0.0.1", "connect_timeout=2");
    Serve serve({url, "builtin:"});
    // The rules as shipped, with their `for:` shortened so that the test takes seconds.
    std::string rules = std::regex_replace(read_all(contrib() / "prometheus" / "alerts.yml"),
                                           std::regex("for: [0-9]+m"), "for: 0s");
    auto rules_file = dir.write("alerts.yml", rules);
    const int port = free_loopback_port();
    auto config =
        dir.write("prometheus.yml", "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                    "rule_files: ['" +
                                        rules_file.string() +
                                        "']\nscrape_configs:\n  - job_name: modelrepo\n"
                                        "    static_configs:\n      - targets: ['127.0.0.1:" +
                                        std::to_string(serve.port()) + "']\n");
    ChildProcess prometheus({"prometheus", "--config.file=" + config.string(),
                             "--storage.tsdb.path=" + (dir.path() / "tsdb").string(),
                             "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                            {});
    const std::string api = "http://127.0.0.1:" + std::to_string(port) + "/api/v1/";
    auto firing = [&](const std::string& alert) {
        auto body = json::parse(fetch(api + "alerts"), nullptr, false);
        if (body.is_discarded())
            return false;
        for (const auto& a : body["data"]["alerts"])
            if (a["labels"]["alertname"] == alert && a["state"] == "firing")
                return true;
        return false;
    };
    // Prometheus is up and scraping: serve's target is healthy.
    REQUIRE_MESSAGE(
        eventually(
            [&] { return fetch(api + "targets").find("\"health\":\"up\"") != std::string::npos; },
            30s),
        prometheus.err());
    auto read = [&] { fetch(serve.base() + "/v1/stats"); };
    read();
    std::this_thread::sleep_for(3s);
    CHECK_FALSE(firing("ModelrepoServingFromBackup"));

    s.kill9();
    RestartOnExit restart{s};
    const auto killed = steady_clock::now();
    CHECK(eventually(
        [&] {
            read();
            return firing("ModelrepoServingFromBackup");
        },
        30s));
    MESSAGE("ModelrepoServingFromBackup firing "
            << duration_cast<milliseconds>(steady_clock::now() - killed).count()
            << " ms after kill -9 (for: shortened to 0s)");
    CHECK(eventually([&] { return firing("ModelrepoPrimaryBreakerOpen"); }, 30s));

    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    CHECK(eventually(
        [&] {
            read();
            return !firing("ModelrepoServingFromBackup");
        },
        60s));
    auto metrics = fetch(serve.base() + "/metrics");
    CHECK(metrics.find("modelrepo_serving_position 0") != std::string::npos);
    CHECK(metrics.find(password) == std::string::npos);
}

TEST_CASE("promtool: the rules are valid and their unit tests pass") {
    if (!have_tool("promtool", {"--version"}))
        return;
    auto check = run_process(
        {"promtool", "check", "rules", (contrib() / "prometheus" / "alerts.yml").string()});
    INFO(check.out << check.err);
    CHECK(check.exit_code == 0);
    CHECK(check.out.find("SUCCESS: 10 rules found") != std::string::npos);
    auto tested = run_process(
        {"promtool", "test", "rules", (contrib() / "prometheus" / "alerts_test.yml").string()});
    INFO(tested.out << tested.err);
    CHECK(tested.exit_code == 0);
    CHECK(tested.out.find("SUCCESS") != std::string::npos);
}

namespace {

/// A webhook receiver on loopback: answers 200, 500, or hangs (until the test ends).
class Receiver {
public:
    enum class Mode { ok, fail, hang };
    explicit Receiver(Mode mode)
        : mode_(mode) {
        server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
            {
                std::lock_guard lock(mutex_);
                bodies_.push_back(req.body);
                headers_.push_back(req.get_header_value("Authorization"));
            }
            if (mode_ == Mode::hang)
                for (int i = 0; i < 600 && !stop_; ++i)
                    std::this_thread::sleep_for(50ms);
            res.status = mode_ == Mode::fail ? 500 : 200;
            res.set_content("{}", "application/json");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    ~Receiver() {
        stop_ = true;
        server_.stop();
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
    std::vector<json> alerts() {
        std::lock_guard lock(mutex_);
        std::vector<json> out;
        for (const auto& b : bodies_)
            out.push_back(json::parse(b, nullptr, false));
        return out;
    }
    std::vector<std::string> headers() {
        std::lock_guard lock(mutex_);
        return headers_;
    }
    std::size_t count() {
        std::lock_guard lock(mutex_);
        return bodies_.size();
    }

private:
    Mode mode_;
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<std::string> bodies_, headers_;
};

} // namespace

TEST_CASE("webhooks: one alert and one resolved per outage, with the secret header; a "
          "receiver that hangs or answers 500 never slows /v1/stats; overflow is counted") {
    if (!have_tool("curl"))
        return;
    auto& s = server();
    fresh_catalogue("operator_webhooks");
    TempDir dir;
    Receiver good(Receiver::Mode::ok), failing(Receiver::Mode::fail), hanging(Receiver::Mode::hang);
    auto header = dir.write("hook-header", "Authorization: Bearer hook-Secret-42\n");
    const std::string url =
        s.url("app", password, "operator_webhooks", "127.0.0.1", "connect_timeout=2");
    Serve serve({url, "builtin:"},
                {"--alert-webhook", good.url(), "--alert-webhook", failing.url(), "--alert-webhook",
                 hanging.url(), "--alert-header-file", header.string(), "--alert-interval", "1s",
                 "--alert-queue", "1"});
    auto stats_ms = [&] {
        auto from = steady_clock::now();
        fetch(serve.base() + "/v1/stats");
        return static_cast<long long>(
            duration_cast<milliseconds>(steady_clock::now() - from).count());
    };
    stats_ms();
    std::this_thread::sleep_for(1500ms);
    CHECK(good.count() == 0); // nothing to say while all is well

    s.kill9();
    RestartOnExit restart{s};
    long long slowest = 0;
    CHECK(eventually(
        [&] {
            slowest = std::max(slowest, stats_ms());
            return good.count() >= 1;
        },
        20s));
    // The hanging and failing receivers are being retried meanwhile.
    for (int i = 0; i < 20; ++i)
        slowest = std::max(slowest, stats_ms());
    MESSAGE("slowest /v1/stats while the receivers hang or fail: " << slowest << " ms");
    CHECK(slowest < 2'000);

    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    CHECK(eventually(
        [&] {
            stats_ms();
            return good.count() >= 2;
        },
        30s));
    std::this_thread::sleep_for(3s); // a third would have come by now
    auto alerts = good.alerts();
    REQUIRE(alerts.size() == 2);
    CHECK((alerts[0]["event"] == "source_down" || alerts[0]["event"] == "served_by_backup" ||
           alerts[0]["event"] == "breaker_opened"));
    CHECK(alerts[1]["event"] == "resolved");
    for (const auto& a : alerts) {
        CAPTURE(a.dump());
        for (const char* field : {"event", "source", "cause", "at", "text"})
            CHECK(a.contains(field));
        CHECK_FALSE(a["text"].get<std::string>().empty());
        CHECK(a.dump().find(password) == std::string::npos);
    }
    for (const auto& h : good.headers())
        CHECK(h == "Bearer hook-Secret-42");
    CHECK(failing.count() >= 2); // tried again after its 500

    std::string metrics = fetch(serve.base() + "/metrics");
    CAPTURE(metrics);
    CHECK(metrics.find("modelrepo_alert_sent_total{receiver=\"1\"} 2") != std::string::npos);
    CHECK(metrics.find("modelrepo_alert_sent_total{receiver=\"2\"} 0") != std::string::npos);
    CHECK(metrics.find("modelrepo_alert_failed_attempts_total{receiver=\"2\"} 0") ==
          std::string::npos);
    // The hanging receiver holds its first alert: the second found its queue (1) full.
    CHECK(metrics.find("modelrepo_alert_dropped_total{receiver=\"3\"} 0") == std::string::npos);
    CHECK(metrics.find("modelrepo_alert_dropped_total{receiver=\"1\"} 0") != std::string::npos);
    CHECK(metrics.find("hook-Secret-42") == std::string::npos);
    CHECK(serve.process().err().find("hook-Secret-42") == std::string::npos);
}

TEST_CASE("/v1/diagnosis and /v1/status: the incident's MD5 verifier under scram-sha-256 named "
          "with its fix (--admin-url-file), no password anywhere") {
    if (!have_tool("curl"))
        return;
    auto& s = server();
    fresh_catalogue("operator_diagnosis");
    s.psql("SET password_encryption = 'md5'; DROP ROLE IF EXISTS legacy; "
           "CREATE ROLE legacy LOGIN PASSWORD '" +
           password + "'");
    TempDir dir;
    auto admin = dir.write("admin-url", s.admin_conninfo() + "\n");
    Serve serve({s.url("legacy", password, "operator_diagnosis"), "builtin:"},
                {"--admin-url-file", admin.string()});
    json diagnosis;
    CHECK(eventually(
        [&] {
            auto body = json::parse(fetch(serve.base() + "/v1/diagnosis"), nullptr, false);
            if (body.is_discarded() || body["diagnosis"].is_null())
                return false;
            diagnosis = body["diagnosis"];
            return true;
        },
        30s));
    CAPTURE(diagnosis.dump(2));
    CHECK(diagnosis["error"] == "auth_failed");
    CHECK(diagnosis["admin"] == true);
    bool named = false;
    for (const auto& c : diagnosis["failed"])
        if (c["name"] == "pg_hba" &&
            c["detail"].get<std::string>().find("MD5 verifier under a scram-sha-256 rule") !=
                std::string::npos &&
            c["fix"].get<std::string>().find("ALTER ROLE \"legacy\" PASSWORD") != std::string::npos)
            named = true;
    CHECK(named);
    auto status = fetch(serve.base() + "/v1/status");
    CHECK(status.find("MD5 verifier") != std::string::npos);
    for (const std::string& body : {diagnosis.dump(), status, fetch(serve.base() + "/v1/events")})
        CHECK(body.find(password) == std::string::npos);
}
