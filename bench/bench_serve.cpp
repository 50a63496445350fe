// SPDX-License-Identifier: MIT
// `modelrepo serve` against the seed's own stack, in one run on one machine:
//
//   serve     modelrepo --source "URL&cache=live" --source builtin: serve
//   node-pg   bench/node/serve_peer.js: node's http server, every request a query through
//             pg.Pool (max 4), named statements, the same SQL and JSON
//   nginx     Debian's nginx serving serve's own answers as static files (sendfile, every
//             core a worker): the ceiling of an HTTP server on this machine
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

#include "http_peers.hpp"
#include "peers.hpp"

using namespace modelrepo;
using namespace std::chrono;
namespace test = modelrepo::test;

namespace {

const std::string password = "bench-Serve-Pw-3141";

double median(std::vector<double> v) {
    return bench::percentile(std::move(v), 0.5);
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
    int serve_port = bench::wait_port(*serve, "listening on http://");
    const char* before_cli = std::getenv("BENCH_SERVE_BEFORE");
    std::unique_ptr<test::ChildProcess> before;
    int before_port = 0;
    if (before_cli && *before_cli) {
        before = start_serve(before_cli);
        before_port = bench::wait_port(*before, "listening on http://");
        if (before_port < 0)
            return 1;
    }
    test::ChildProcess node({"node", node_dir + "/serve_peer.js", url, "0"});
    int node_port = bench::wait_port(node, "listening ");
    if (serve_port < 0 || node_port < 0)
        return 1;

    const std::string five = "/v1/models?slug=gpt-5&slug=gpt-4o&slug=claude-sonnet-4-5"
                             "&slug=gemini-2.5-pro&slug=llama-4-maverick";
    test::TempDir www;
    bench::Nginx nginx(www);
    if (!nginx.answers()) {
        std::fprintf(stderr, "nginx did not start (scripts/setup test installs it)\n");
        return 1;
    }
    nginx.put("/v1/stats", bench::body_of(serve_port, "/v1/stats"));
    nginx.put("/v1/models", bench::body_of(serve_port, five)); // a static file ignores ?slug=
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
    std::printf(" %11s %12s", "nginx rps", "serve/nginx");
    if (before)
        std::printf(" %11s %9s %13s", "before rps", "p99 ms", "serve/before");
    std::printf("\n");
    for (const Endpoint& e :
         {Endpoint{"/v1/stats", "/v1/stats"}, Endpoint{"/v1/models?slug=x5", five}}) {
        std::vector<double> s_rps, s_p50, s_p99, n_rps, n_p50, n_p99, b_rps, b_p99, x_rps;
        long errors = 0;
        bench::wrk(serve_port, e.path, 2); // warm-up
        bench::wrk(node_port, e.path, 2);
        bench::wrk(nginx.port(), e.path, 2);
        if (before)
            bench::wrk(before_port, e.path, 2);
        for (int r = 0; r < rounds; ++r) {
            // before goes first in odd rounds, so neither build always follows node-pg
            bench::WrkResult c{};
            if (before && r % 2 == 1)
                c = bench::wrk(before_port, e.path, seconds);
            auto a = bench::wrk(serve_port, e.path, seconds);
            auto b = bench::wrk(node_port, e.path, seconds);
            auto x = bench::wrk(nginx.port(), e.path, seconds);
            if (before && r % 2 == 0)
                c = bench::wrk(before_port, e.path, seconds);
            std::printf("  round %d: serve %.0f rps p99 %.2f ms | node-pg %.0f rps p99 %.2f ms",
                        r + 1, a.rps, a.p99_ms, b.rps, b.p99_ms);
            std::printf(" | nginx %.0f rps p99 %.2f ms", x.rps, x.p99_ms);
            if (before)
                std::printf(" | before %.0f rps p99 %.2f ms", c.rps, c.p99_ms);
            std::printf("\n");
            s_rps.push_back(a.rps), s_p50.push_back(a.p50_ms), s_p99.push_back(a.p99_ms);
            n_rps.push_back(b.rps), n_p50.push_back(b.p50_ms), n_p99.push_back(b.p99_ms);
            b_rps.push_back(c.rps), b_p99.push_back(c.p99_ms);
            x_rps.push_back(x.rps);
            errors += a.errors + b.errors + c.errors + x.errors;
        }
        double ratio = median(n_rps) > 0 ? median(s_rps) / median(n_rps) : 0;
        std::printf("%-22s %12.0f %9.2f %9.2f %12.0f %9.2f %9.2f %7.2fx %8ld", e.name,
                    median(s_rps), median(s_p50), median(s_p99), median(n_rps), median(n_p50),
                    median(n_p99), ratio, errors);
        std::printf(" %11.0f %11.2fx", median(x_rps),
                    median(x_rps) > 0 ? median(s_rps) / median(x_rps) : 0);
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
        PGconn* conn = PQconnectdb(conninfo.c_str());
        auto arrivals = bench::fan_out(
            port, 100, 20,
            [&](int c) {
                std::string sql =
                    "UPDATE model_status SET availability = " + std::to_string(0.5 + c / 1000.0) +
                    " WHERE model_slug = 'gpt-4o'";
                PQclear(PQexec(conn, sql.c_str()));
            },
            [](int) { return std::string("\"slug\":\"gpt-4o\""); });
        PQfinish(conn);
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
