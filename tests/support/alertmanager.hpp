// SPDX-License-Identifier: MIT
// AlertmanagerServer: Debian's prometheus-alertmanager on loopback for tests, routing every
// alert to one webhook (its notifications, firing and resolved, read back by the test).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "process.hpp"

namespace modelrepo::test {

class AlertmanagerServer {
public:
    /// Routes every alert to `webhook_url` (group_wait 1s, group_interval 1s,
    /// send_resolved). When the binary is missing or it does not start, `available()` is
    /// false and `why()` says why.
    explicit AlertmanagerServer(const std::string& webhook_url);
    ~AlertmanagerServer();
    AlertmanagerServer(const AlertmanagerServer&) = delete;
    AlertmanagerServer& operator=(const AlertmanagerServer&) = delete;

    bool available() const { return process_ != nullptr; }
    const std::string& why() const { return why_; }
    /// "http://127.0.0.1:PORT"
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    /// GET /api/v2/alerts: the alerts it holds that are not resolved.
    nlohmann::json alerts() const;

private:
    std::filesystem::path dir_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> process_;
    std::string why_;
};

/// Skips (exit 77) without prometheus-alertmanager, or fails under CI=true.
void require_alertmanager(const AlertmanagerServer& am);

} // namespace modelrepo::test
