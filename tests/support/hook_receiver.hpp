// SPDX-License-Identifier: MIT
// HookReceiver: a webhook receiver on loopback (cpp-httplib) that records what is POSTed to
// it and answers 200, 500, or hangs until the test ends: alerts' and Alertmanager's peer.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace modelrepo::test {

class HookReceiver {
public:
    enum class Mode { ok, fail, hang };
    explicit HookReceiver(Mode mode = Mode::ok)
        : mode_(mode) {
        server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
            {
                std::lock_guard lock(mutex_);
                bodies_.push_back(req.body);
                headers_.push_back(req.get_header_value("Authorization"));
            }
            if (mode_ == Mode::hang)
                for (int i = 0; i < 600 && !stop_; ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
            res.status = mode_ == Mode::fail ? 500 : 200;
            res.set_content("{}", "application/json");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    ~HookReceiver() {
        stop_ = true;
        server_.stop();
        thread_.join();
    }
    HookReceiver(const HookReceiver&) = delete;
    HookReceiver& operator=(const HookReceiver&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
    /// Every body received, parsed (a discarded value for one that is not JSON).
    std::vector<nlohmann::json> alerts() {
        std::lock_guard lock(mutex_);
        std::vector<nlohmann::json> out;
        for (const auto& b : bodies_)
            out.push_back(nlohmann::json::parse(b, nullptr, false));
        return out;
    }
    std::vector<std::string> bodies() {
        std::lock_guard lock(mutex_);
        return bodies_;
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

} // namespace modelrepo::test
