// SPDX-License-Identifier: MIT
#include "alertmanager.hpp"

#include <fstream>
#include <thread>

#include <doctest/doctest.h>
#include <unistd.h>

#include "pg_server.hpp"

namespace modelrepo::test {

namespace {

const char* const binary = "/usr/bin/prometheus-alertmanager";

/// One GET of `url` with curl: the body, or "" when it failed.
std::string fetch(const std::string& url) {
    auto r = run_process({"curl", "-sS", "--max-time", "5", url}, {}, std::chrono::seconds(10));
    return r.exit_code == 0 ? r.out : "";
}

} // namespace

AlertmanagerServer::AlertmanagerServer(const std::string& webhook_url) {
    if (!std::filesystem::exists(binary)) {
        why_ = std::string(binary) +
               " is missing (scripts/setup test installs prometheus-alertmanager)";
        return;
    }
    char pattern[] = "/tmp/modelrepo-alertmanager-XXXXXX";
    if (!::mkdtemp(pattern)) {
        why_ = "mkdtemp failed";
        return;
    }
    dir_ = pattern;
    port_ = free_loopback_port();
    {
        std::ofstream config(dir_ / "alertmanager.yml");
        config << "route:\n"
               << "  receiver: hook\n"
               << "  group_by: ['alertname', 'source']\n"
               << "  group_wait: 1s\n"
               << "  group_interval: 1s\n"
               << "  repeat_interval: 1h\n"
               << "receivers:\n"
               << "  - name: hook\n"
               << "    webhook_configs:\n"
               << "      - url: '" << webhook_url << "'\n"
               << "        send_resolved: true\n";
    }
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary, "--config.file=" + (dir_ / "alertmanager.yml").string(),
                                 "--storage.path=" + (dir_ / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                 "--cluster.listen-address=", "--log.level=warn"});
    for (int i = 0; i < 300; ++i) {
        if (fetch(url() + "/-/ready").find("OK") != std::string::npos)
            return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    why_ = "prometheus-alertmanager did not become ready: " + process_->err();
    process_.reset();
}

AlertmanagerServer::~AlertmanagerServer() {
    process_.reset();
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
}

nlohmann::json AlertmanagerServer::alerts() const {
    auto body = nlohmann::json::parse(fetch(url() + "/api/v2/alerts"), nullptr, false);
    return body.is_array() ? body : nlohmann::json::array();
}

void require_alertmanager(const AlertmanagerServer& am) {
    if (am.available())
        return;
    if (in_ci())
        FAIL("no alertmanager in CI: " << am.why());
    MESSAGE("skipping: " << am.why());
    std::exit(77);
}

} // namespace modelrepo::test
