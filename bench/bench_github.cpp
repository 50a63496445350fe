// SPDX-License-Identifier: MIT
// GithubRepository against a loopback HTTP server (cpp-httplib):
//   1. 10,000 calls with a 1 s refresh interval: how many requests reach the server
//      and the time per call (almost all must be served from memory);
//   2. the cost of a revalidation answered 304 against a full 200 download and parse,
//      with the 32-model catalogue and a generated 10,000-model snapshot.
//
//   ./build/bench/bench_github
#include <algorithm>
#include <cstdio>

#include <modelrepo/modelrepo.hpp>

#include "http_server.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

std::string large_snapshot() {
    Snapshot s;
    s.generated_at = sys_days{2026y / November / 1};
    for (int p = 0; p < 50; ++p)
        s.providers.push_back({"provider-" + std::to_string(p), "Provider", ""});
    for (int m = 0; m < 10'000; ++m) {
        std::string slug = "model-" + std::to_string(m);
        s.models.push_back({slug,
                            "Model",
                            "provider-" + std::to_string(m % 50),
                            "generated",
                            128'000,
                            true,
                            {},
                            {}});
        s.statuses.push_back({slug, Health::operational, 0.99, 250.0, 0.01, "us", s.generated_at});
    }
    return write_snapshot(s);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// Median time of check_health() (one revalidation) when the server answers 304, and
/// when it answers 200 with the body (a new ETag each time, so every call downloads).
void revalidation_cost(const char* label, const std::string& body) {
    test::HttpServer server;
    bool always_changed = false;
    int version = 0;
    server.handle([&](const httplib::Request& req, httplib::Response& res) {
        std::string etag = "\"v" + std::to_string(always_changed ? ++version : 0) + "\"";
        if (!always_changed && req.get_header_value("If-None-Match") == etag) {
            res.status = 304;
            return;
        }
        res.set_header("ETag", etag);
        // octet-stream: cpp-httplib would brotli-compress JSON on every request, and the
        // figure would be the test server's compression time, not the client's cost.
        res.set_content(body, "application/octet-stream");
    });
    auto repo = GithubRepository::open(server.base() + "/models.json").value();
    if (!repo->check_health()) {
        std::printf("first fetch failed\n");
        return;
    }
    auto time_calls = [&](int n) {
        std::vector<double> ms;
        for (int i = 0; i < n; ++i) {
            auto start = steady_clock::now();
            auto r = repo->check_health();
            ms.push_back(duration<double, std::milli>(steady_clock::now() - start).count());
            if (!r)
                std::printf("revalidation failed: %s\n", r.error().to_string().c_str());
        }
        return median(ms);
    };
    double not_modified = time_calls(50);
    always_changed = true;
    double full = time_calls(body.size() > 1'000'000 ? 9 : 50);
    auto stats = repo->stats();
    std::printf("%-18s body %8zu bytes: 304 revalidation %8.3f ms, 200 download+parse %8.3f ms, "
                "ratio %.1fx (%llu x 304, %llu x 200)\n",
                label, body.size(), not_modified, full, full / not_modified,
                static_cast<unsigned long long>(stats.not_modified),
                static_cast<unsigned long long>(stats.downloads));
}

} // namespace

int main() {
    // 1. 10,000 calls, refresh every second.
    {
        test::HttpServer server;
        std::string body = write_snapshot(builtin_snapshot());
        server.handle([&](const httplib::Request& req, httplib::Response& res) {
            if (req.get_header_value("If-None-Match") == "\"same\"") {
                res.status = 304;
                return;
            }
            res.set_header("ETag", "\"same\"");
            res.set_content(body, "application/json");
        });
        auto repo =
            GithubRepository::open(server.base() + "/models.json?refresh_interval=1s").value();
        const std::vector<std::string> slugs{"gpt-5", "gpt-4o", "claude-sonnet-4-5"};
        std::vector<double> us;
        auto start = steady_clock::now();
        for (int i = 0; i < 10'000; ++i) {
            auto t = steady_clock::now();
            auto r =
                (i % 2) ? repo->find_models(slugs).has_value() : repo->system_stats().has_value();
            us.push_back(duration<double, std::micro>(steady_clock::now() - t).count());
            if (!r)
                std::printf("call %d failed\n", i);
            if (i % 100 == 0)
                std::this_thread::sleep_for(20ms); // spread the calls over ~2 s
        }
        double wall = duration<double>(steady_clock::now() - start).count();
        std::sort(us.begin(), us.end());
        std::printf("10,000 calls over %.1f s, refresh 1 s: %d requests reached the server "
                    "(%llu downloads, %llu not modified); per call median %.2f us, p99 %.2f us, "
                    "max %.0f us\n",
                    wall, server.requests(),
                    static_cast<unsigned long long>(repo->stats().downloads),
                    static_cast<unsigned long long>(repo->stats().not_modified), us[us.size() / 2],
                    us[us.size() * 99 / 100], us.back());
    }
    // 2. 304 against 200.
    revalidation_cost("32 models", write_snapshot(builtin_snapshot()));
    revalidation_cost("10,000 models", large_snapshot());
}
