// SPDX-License-Identifier: MIT
// `modelrepo serve` against the seed's own stack, in one run on one machine:
//
//   serve     modelrepo --source "URL&cache=live" --source builtin: serve
//   node-pg   bench/node/serve_peer.js: node's http server, every request a query through
//             pg.Pool (max 4), named statements, the same SQL and JSON
//
// Load: Debian's wrk, 2 threads x 32 connections, on GET /v1/stats and GET
// /v1/models?slug=…×5; rounds alternate between the two servers; medians of the rounds.
// Then the SSE fan-out: 100 clients on /v1/changes, an UPDATE made by a plain libpq
// session (what psql does), the time until each client has the event: p50/p99.
//
// With BENCH_SERVE_BEFORE=PATH (another build's modelrepo CLI, e.g. an older commit's built
// in a worktree) a third server, "before", runs the same command from PATH beside the other
// two, in the same alternating rounds, and the table adds its figures and serve/before: a
// before-and-after measured in one run.
//
// usage: bench_serve [SECONDS_PER_ROUND=8] [ROUNDS=3]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <regex>
#include <thread>

#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

// The harness reports through doctest; its implementation, without a test runner.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "peers.hpp"

using namespace modelrepo;
using namespace std::chrono;
namespace test = modelrepo::test;

namespace {

const std::string password = "bench-Serve-Pw-3141";

struct WrkResult {
    double rps = 0;
    double p50_ms = 0;
    double p99_ms = 0;
    long errors = 0;
};

double to_ms(const std::string& number, const std::string& unit) {
    double v = std::stod(number);
    if (unit == "us")
        return v / 1000;
    if (unit == "s")
        return v * 1000;
    return v; // ms
}

WrkResult wrk(int port, const std::string& path, int seconds) {
    auto r = test::run_process({"wrk", "-t2", "-c32", "-d" + std::to_string(seconds) + "s",
                                "--latency", "http://127.0.0.1:" + std::to_string(port) + path},
                               {}, seconds * 1000ms + 60s);
    WrkResult out;
    std::smatch m;
    if (std::regex_search(r.out, m, std::regex(R"(Requests/sec:\s+([0-9.]+))")))
        out.rps = std::stod(m[1]);
    if (std::regex_search(r.out, m, std::regex(R"(\n\s+50%\s+([0-9.]+)(us|ms|s))")))
        out.p50_ms = to_ms(m[1], m[2]);
    if (std::regex_search(r.out, m, std::regex(R"(\n\s+99%\s+([0-9.]+)(us|ms|s))")))
        out.p99_ms = to_ms(m[1], m[2]);
    if (std::regex_search(r.out, m, std::regex(R"(Non-2xx or 3xx responses:\s+(\d+))")))
        out.errors += std::stol(m[1]);
    if (std::regex_search(
            r.out, m,
            std::regex(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))")))
        out.errors += std::stol(m[1]) + std::stol(m[2]) + std::stol(m[3]) + std::stol(m[4]);
    if (r.exit_code != 0 || out.rps == 0)
        std::fprintf(stderr, "wrk failed (%d): %s %s\n", r.exit_code, r.out.c_str(), r.err.c_str());
    return out;
}

double median(std::vector<double> v) {
    return bench::percentile(std::move(v), 0.5);
}

int connect_loopback(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// 100 clients on /v1/changes; `changes` UPDATEs through a plain libpq session, one at a
/// time; for each, the time from sending it to each client's having the event.
std::vector<double> fan_out(int port, const std::string& conninfo, int clients, int changes) {
    std::vector<int> fds;
    std::vector<std::string> got(static_cast<std::size_t>(clients));
    for (int i = 0; i < clients; ++i) {
        int fd = connect_loopback(port);
        const char* request = "GET /v1/changes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        if (fd < 0 || ::send(fd, request, std::strlen(request), MSG_NOSIGNAL) < 0) {
            std::fprintf(stderr, "fan-out: connect failed\n");
            return {};
        }
        fds.push_back(fd);
    }
    auto read_until = [&](const std::function<bool(const std::string&)>& done, milliseconds limit,
                          std::vector<double>* arrival, steady_clock::time_point from) {
        std::vector<bool> finished(fds.size(), false);
        std::size_t left = fds.size();
        auto deadline = steady_clock::now() + limit;
        std::vector<pollfd> polls(fds.size());
        while (left > 0 && steady_clock::now() < deadline) {
            for (std::size_t i = 0; i < fds.size(); ++i)
                polls[i] = {finished[i] ? -1 : fds[i], POLLIN, 0};
            if (::poll(polls.data(), polls.size(), 100) <= 0)
                continue;
            auto now = steady_clock::now();
            for (std::size_t i = 0; i < fds.size(); ++i) {
                if (finished[i] || !(polls[i].revents & POLLIN))
                    continue;
                char buf[4096];
                ssize_t n = ::recv(fds[i], buf, sizeof buf, 0);
                if (n <= 0) {
                    finished[i] = true;
                    --left;
                    continue;
                }
                got[i].append(buf, static_cast<std::size_t>(n));
                if (done(got[i])) {
                    finished[i] = true;
                    --left;
                    if (arrival)
                        arrival->push_back(duration<double, std::milli>(now - from).count());
                    got[i].clear();
                }
            }
        }
        return left == 0;
    };
    if (!read_until([](const std::string& s) { return s.find(": connected") != std::string::npos; },
                    30s, nullptr, steady_clock::now())) {
        std::fprintf(stderr, "fan-out: not every client connected\n");
        return {};
    }
    PGconn* conn = PQconnectdb(conninfo.c_str());
    std::vector<double> arrivals;
    for (int c = 0; c < changes; ++c) {
        std::string marker = std::to_string(0.5 + c / 1000.0);
        std::string sql =
            "UPDATE model_status SET availability = " + marker + " WHERE model_slug = 'gpt-4o'";
        auto sent = steady_clock::now();
        PQclear(PQexec(conn, sql.c_str()));
        read_until(
            [](const std::string& s) { return s.find("\"slug\":\"gpt-4o\"") != std::string::npos; },
            10s, &arrivals, sent);
        std::this_thread::sleep_for(50ms);
    }
    PQfinish(conn);
    for (int fd : fds)
        ::close(fd);
    return arrivals;
}

int wait_port(test::ChildProcess& process, const std::string& prefix) {
    auto line =
        process.read_line_until([&](const std::string& l) { return l.starts_with(prefix); }, 60s);
    if (!line) {
        std::fprintf(stderr, "did not start: %s\n", process.err().c_str());
        return -1;
    }
    return std::stoi(line->substr(line->find_last_of(": ") + 1));
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int seconds = argc > 1 ? std::atoi(argv[1]) : 8;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    std::string node_dir = std::string(MODELREPO_SOURCE_ROOT) + "/bench/node";
    if (!bench::ensure_node_pg(node_dir))
        return 1;
    if (test::run_process({"wrk", "--version"}).out.find("wrk") == std::string::npos) {
        std::fprintf(stderr, "wrk is missing (scripts/setup test installs it)\n");
        return 1;
    }
    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", password, "modelrepo");
    {
        auto repo = PostgresRepository::open(server.url("app", password, "modelrepo")).value();
        repo->migrate().value();
        if (auto r = repo->import_snapshot(builtin_snapshot()); !r) {
            std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
            return 1;
        }
    }
    const std::string url = server.url("app", password, "modelrepo");
    const std::string live_url =
        server.url("app", password, "modelrepo", "127.0.0.1", "cache=live");
    auto start_serve = [&](const std::string& cli) {
        return std::make_unique<test::ChildProcess>(std::vector<std::string>{
            cli, "--source", live_url, "--source", "builtin:", "serve", "--listen", "127.0.0.1:0"});
    };
    auto serve = start_serve(MODELREPO_CLI_PATH);
    int serve_port = wait_port(*serve, "listening on http://");
    const char* before_cli = std::getenv("BENCH_SERVE_BEFORE");
    std::unique_ptr<test::ChildProcess> before;
    int before_port = 0;
    if (before_cli && *before_cli) {
        before = start_serve(before_cli);
        before_port = wait_port(*before, "listening on http://");
        if (before_port < 0)
            return 1;
    }
    test::ChildProcess node({"node", node_dir + "/serve_peer.js", url, "0"});
    int node_port = wait_port(node, "listening ");
    if (serve_port < 0 || node_port < 0)
        return 1;

    const std::string five = "/v1/models?slug=gpt-5&slug=gpt-4o&slug=claude-sonnet-4-5"
                             "&slug=gemini-2.5-pro&slug=llama-4-maverick";
    struct Endpoint {
        const char* name;
        std::string path;
    };
    std::printf("wrk -t2 -c32, %d s per round, %d rounds alternating; PostgreSQL 15 on loopback; "
                "%u cores%s\n",
                seconds, rounds, std::thread::hardware_concurrency(),
                before ? "; before = BENCH_SERVE_BEFORE" : "");
    std::printf("%-22s %12s %9s %9s %12s %9s %9s %8s %8s", "endpoint", "serve rps", "p50 ms",
                "p99 ms", "node-pg rps", "p50 ms", "p99 ms", "ratio", "errors");
    if (before)
        std::printf(" %11s %9s %13s", "before rps", "p99 ms", "serve/before");
    std::printf("\n");
    for (const Endpoint& e :
         {Endpoint{"/v1/stats", "/v1/stats"}, Endpoint{"/v1/models?slug=x5", five}}) {
        std::vector<double> s_rps, s_p50, s_p99, n_rps, n_p50, n_p99, b_rps, b_p99;
        long errors = 0;
        wrk(serve_port, e.path, 2); // warm-up
        wrk(node_port, e.path, 2);
        if (before)
            wrk(before_port, e.path, 2);
        for (int r = 0; r < rounds; ++r) {
            // before goes first in odd rounds, so neither build always follows node-pg
            WrkResult c{};
            if (before && r % 2 == 1)
                c = wrk(before_port, e.path, seconds);
            auto a = wrk(serve_port, e.path, seconds);
            auto b = wrk(node_port, e.path, seconds);
            if (before && r % 2 == 0)
                c = wrk(before_port, e.path, seconds);
            std::printf("  round %d: serve %.0f rps p99 %.2f ms | node-pg %.0f rps p99 %.2f ms",
                        r + 1, a.rps, a.p99_ms, b.rps, b.p99_ms);
            if (before)
                std::printf(" | before %.0f rps p99 %.2f ms", c.rps, c.p99_ms);
            std::printf("\n");
            s_rps.push_back(a.rps), s_p50.push_back(a.p50_ms), s_p99.push_back(a.p99_ms);
            n_rps.push_back(b.rps), n_p50.push_back(b.p50_ms), n_p99.push_back(b.p99_ms);
            b_rps.push_back(c.rps), b_p99.push_back(c.p99_ms);
            errors += a.errors + b.errors + c.errors;
        }
        double ratio = median(n_rps) > 0 ? median(s_rps) / median(n_rps) : 0;
        std::printf("%-22s %12.0f %9.2f %9.2f %12.0f %9.2f %9.2f %7.2fx %8ld", e.name,
                    median(s_rps), median(s_p50), median(s_p99), median(n_rps), median(n_p50),
                    median(n_p99), ratio, errors);
        if (before)
            std::printf(" %11.0f %9.2f %12.2fx", median(b_rps), median(b_p99),
                        median(b_rps) > 0 ? median(s_rps) / median(b_rps) : 0);
        std::printf("\n");
    }
    node.signal(SIGTERM);
    node.wait(10s);

    const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(server.port()) +
                                 " user=app dbname=modelrepo password=" + password;
    auto report_fan_out = [&](const char* who, int port) {
        auto arrivals = fan_out(port, conninfo, 100, 20);
        std::printf("SSE fan-out (%s): 100 clients x 20 UPDATEs (plain libpq session) -> "
                    "/v1/changes: %zu of 2000 events, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                    who, arrivals.size(), bench::percentile(arrivals, 0.5),
                    bench::percentile(arrivals, 0.99), bench::percentile(arrivals, 1.0));
    };
    report_fan_out("serve", serve_port);
    if (before) {
        report_fan_out("before", before_port);
        report_fan_out("serve, again", serve_port);
        before->signal(SIGTERM);
        before->wait(10s);
    }
    serve->signal(SIGTERM);
    serve->wait(10s);
    return 0;
}
