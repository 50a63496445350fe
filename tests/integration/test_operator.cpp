// SPDX-License-Identifier: MIT
// The operator's view against real parts: serve's /metrics holds every metric that
// contrib/prometheus/alerts.yml and contrib/grafana/modelrepo.json name, and Debian's
// prometheus, scraping serve on loopback, fires the backup-serving alert when the
// database is killed and resolves it after the restart.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <doctest/doctest.h>
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

/// Restarts the server when the test ends, however it ends.
struct Restart {
    PgServer& s;
    ~Restart() {
        if (!s.available())
            s.start();
    }
};

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
    Restart restart{s};
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
    CHECK(check.out.find("SUCCESS: 8 rules found") != std::string::npos);
    auto tested = run_process(
        {"promtool", "test", "rules", (contrib() / "prometheus" / "alerts_test.yml").string()});
    INFO(tested.out << tested.err);
    CHECK(tested.exit_code == 0);
    CHECK(tested.out.find("SUCCESS") != std::string::npos);
}
