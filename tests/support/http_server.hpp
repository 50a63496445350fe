// SPDX-License-Identifier: MIT
// HttpServer: a real HTTP server on 127.0.0.1 (cpp-httplib), scripted per test, that
// records the requests it got.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

namespace modelrepo::test {

class HttpServer {
public:
    using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

    HttpServer() {
        server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
            {
                std::lock_guard lock(mutex_);
                ++requests_;
                std::map<std::string, std::string> headers;
                for (const auto& [k, v] : req.headers)
                    headers[k] = v;
                seen_.push_back(
                    {req.path, req.params.count("ref") ? req.get_param_value("ref") : "", headers});
            }
            Handler h;
            {
                std::lock_guard lock(mutex_);
                h = handler_;
            }
            if (h)
                h(req, res);
            else
                res.status = 500;
        });
        // Without it the split header/body writes wait for delayed ACKs (~40 ms each).
        server_.set_tcp_nodelay(true);
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        // listen_after_bind() starts accepting at once: the socket is already bound, so
        // connections queue until the loop runs; wait for it anyway.
        for (int i = 0; i < 500 && !server_.is_running(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ~HttpServer() {
        server_.stop();
        if (thread_.joinable())
            thread_.join();
    }

    void handle(Handler h) {
        std::lock_guard lock(mutex_);
        handler_ = std::move(h);
    }
    int port() const { return port_; }
    std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
    int requests() const {
        std::lock_guard lock(mutex_);
        return requests_;
    }

    struct Seen {
        std::string path;
        std::string ref;
        std::map<std::string, std::string> headers;
    };
    std::vector<Seen> seen() const {
        std::lock_guard lock(mutex_);
        return seen_;
    }

private:
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_; ///< guards handler_, requests_, seen_
    Handler handler_;
    int requests_ = 0;
    std::vector<Seen> seen_;
};

} // namespace modelrepo::test
