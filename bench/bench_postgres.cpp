// SPDX-License-Identifier: MIT
// PostgresRepository throughput against pgbench and node-postgres, same SQL, same
// server, same run; then fail-fast and recovery times around a kill -9 and restart.
//
//   ./build/bench/bench_postgres [SECONDS=5]
//
// Starts its own PostgreSQL 15 (tests/support/pg_server), imports the builtin catalogue,
// and for each query (count_models, find_models of 5 slugs, system_stats) measures
// transactions per second with 4 clients:
//   modelrepo   4 threads on one PostgresRepository (pool of 4)
//   pgbench     pgbench -M prepared -c 4 -j 2 with the very same SQL (and -j 4, one
//               connection per thread, for reference)
//   node-pg     pg.Pool(max 4) with 4 async loops, named (prepared) query
// and, as the floor for any library that makes blocking calls from 4 threads:
//   libpq       4 threads, each PQexecPrepared on its own connection, results discarded
#include <modelrepo/modelrepo.hpp>

// The harness reports through doctest; its implementation, without a test runner.
#define DOCTEST_CONFIG_IMPLEMENT
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <regex>
#include <thread>

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include "peers.hpp"
#include "pg_server.hpp"
#include "postgres/catalog/schema.hpp"
#include "process.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

const std::string password = "bench-Pw-4411";
constexpr int clients = 4;

struct Workload {
    const char* name;
    std::string sql;   // with $1 for the parameter, if any
    std::string param; // text form of $1; empty for none
    std::function<bool(PostgresRepository&)> call;
};

double modelrepo_tps(PostgresRepository& repo, const Workload& w, int seconds) {
    return bench::threads_tps("modelrepo", clients, seconds, [&](int) { return w.call(repo); });
}

/// 4 threads, each on its own libpq connection: the same prepared statement, the result
/// checked for success and dropped (no pool, no deadline, no decoding).
double libpq_tps(const std::string& conninfo, const Workload& w, int seconds) {
    std::vector<PGconn*> conns;
    auto close_all = [&] {
        for (PGconn* c : conns)
            PQfinish(c);
    };
    for (int t = 0; t < clients; ++t) {
        PGconn* c = PQconnectdb(conninfo.c_str());
        PGresult* r = PQprepare(c, "q", std::string(w.sql).c_str(), 0, nullptr);
        bool ok = PQstatus(c) == CONNECTION_OK && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        conns.push_back(c);
        if (!ok) {
            std::fprintf(stderr, "libpq: %s", PQerrorMessage(c));
            close_all();
            return 0;
        }
    }
    const char* params[1] = {w.param.c_str()};
    int n = w.param.empty() ? 0 : 1;
    double tps = bench::threads_tps("libpq", clients, seconds, [&](int t) {
        PGresult* r =
            PQexecPrepared(conns[static_cast<std::size_t>(t)], "q", n, params, nullptr, nullptr, 0);
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        return ok;
    });
    close_all();
    return tps;
}

/// pgbench -M prepared -c 4 -j `jobs`: with 2 jobs each pgbench thread drives 2
/// connections asynchronously (the issue's peer); with 4, one connection per thread, the
/// shape of 4 callers making blocking calls.
double pgbench_tps(const test::PgServer& server, const test::TempDir& dir, const Workload& w,
                   int jobs, int seconds) {
    return bench::pgbench_tps(server, dir, w.name, w.sql, w.param, "app", password, clients, jobs,
                              seconds);
}

double node_tps(const test::PgServer& server, const test::TempDir& dir, const Workload& w,
                int seconds, const std::string& node_dir) {
    auto file = dir.write(std::string(w.name) + ".node.sql", std::string(w.sql));
    std::string params = w.param.empty() ? "[]" : "[\"" + w.param + "\"]";
    auto r =
        test::run_process({"node", node_dir + "/pool_bench.js", server.url("app", password),
                           file.string(), params, std::to_string(seconds), std::to_string(clients)},
                          {}, seconds * 1s + 60s);
    std::smatch m;
    std::regex tps(R"("tps":([0-9.eE+-]+))");
    if (r.exit_code != 0 || !std::regex_search(r.out, m, tps)) {
        std::fprintf(stderr, "node-postgres failed (%d): %s %s\n", r.exit_code, r.out.c_str(),
                     r.err.c_str());
        return 0;
    }
    return std::stod(m[1]);
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
    std::string node_dir = std::string(MODELREPO_SOURCE_ROOT) + "/bench/node";
    if (!bench::ensure_node_pg(node_dir))
        return 1;

    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", password, "modelrepo");
    auto repo = PostgresRepository::open(server.url("app", password, "modelrepo", "127.0.0.1",
                                                    "connection_limit=" + std::to_string(clients)))
                    .value();
    repo->migrate().value();
    if (auto r = repo->import_snapshot(builtin_snapshot()); !r) {
        std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
        return 1;
    }
    test::TempDir dir;
    const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(server.port()) +
                                 " user=app dbname=modelrepo password=" + password;

    const std::vector<std::string> five{"gpt-5", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro",
                                        "llama-4-maverick"};
    // The library's own statement texts, without a schema (the tables are in public).
    auto sql = [](detail::StatementId id) {
        return detail::statement_sql(id, detail::Mapping::builtin_tables(), "");
    };
    std::vector<Workload> workloads{
        {"count_models", sql(detail::count_models), "",
         [](PostgresRepository& r) { return r.count_models().has_value(); }},
        {"find_models_5", sql(detail::find_models),
         "{gpt-5,gpt-4o,claude-sonnet-4-5,gemini-2.5-pro,llama-4-maverick}",
         [&](PostgresRepository& r) {
             auto m = r.find_models(five);
             return m && m.value().size() == 5;
         }},
        {"system_stats", sql(detail::system_stats), "",
         [](PostgresRepository& r) { return r.system_stats().has_value(); }},
    };

    // pgbench -j 2 swings between two speeds here: five rounds give its fast one a chance.
    constexpr int rounds = 5;
    std::printf("PostgreSQL 15 on loopback, %d clients, %d s per run after 1 s warm-up; "
                "medians of %d interleaved rounds\n",
                clients, seconds, rounds);
    std::printf("%-14s %11s %11s %11s %11s %11s %8s %8s %8s %8s\n", "query", "modelrepo",
                "pgbench-j2", "pgbench-j4", "node-pg", "libpq", "vs pgb", "vs best", "vs node",
                "vs libpq");
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    std::string rounds_seen;
    for (const Workload& w : workloads) {
        std::vector<double> ours, pgb, pgb4, node, raw;
        // Interleaved, so a noisy neighbour hits all alike.
        for (int r = 0; r < rounds; ++r) {
            ours.push_back(modelrepo_tps(*repo, w, seconds));
            pgb.push_back(pgbench_tps(server, dir, w, 2, seconds));
            node.push_back(node_tps(server, dir, w, seconds, node_dir));
            raw.push_back(libpq_tps(conninfo, w, seconds));
            pgb4.push_back(pgbench_tps(server, dir, w, clients, seconds));
        }
        double o = median(ours), p = median(pgb), best = *std::max_element(pgb.begin(), pgb.end());
        double p4 = median(pgb4), n = median(node), l = median(raw);
        std::printf("%-14s %9.0f/s %9.0f/s %9.0f/s %9.0f/s %9.0f/s %7.2fx %7.2fx %7.2fx %7.2fx\n",
                    w.name, o, p, p4, n, l, ratio(o, p), ratio(o, best), ratio(o, n), ratio(o, l));
        std::fflush(stdout);
        auto list = [](const std::vector<double>& v) {
            std::string out;
            for (double x : v)
                out += (out.empty() ? "" : "/") + std::to_string(static_cast<long>(x));
            return out;
        };
        std::string line =
            std::string(w.name) + ": modelrepo " + list(ours) + ", pgbench-j2 " + list(pgb) + "\n";
        rounds_seen += line;
    }
    std::printf("\nvs pgb: against pgbench -j 2's median; vs best: against its fastest round "
                "(pgbench swings between two speeds here).\nEach round (per second):\n%s",
                rounds_seen.c_str());

    // Failover: kill -9, then the first failed call; restart, then the first success.
    std::printf("\nkill -9 and restart (query_timeout 5 s, connect_timeout 2 s)\n");
    auto watched = PostgresRepository::open(
                       server.url("app", password, "modelrepo", "127.0.0.1", "connect_timeout=2"))
                       .value();
    watched->count_models().value();
    auto killed = steady_clock::now();
    server.kill9();
    auto first = watched->count_models();
    auto fail_ms = duration<double, std::milli>(steady_clock::now() - killed).count();
    std::printf("kill -> first call returns %s: %.1f ms\n",
                first ? "a value (!)" : std::string(to_string(*first.error().errc())).c_str(),
                fail_ms);
    auto fast_start = steady_clock::now();
    int fast = 0;
    while (steady_clock::now() - fast_start < 1s) {
        (void)watched->count_models();
        ++fast;
    }
    std::printf("while down: %d calls in 1 s (%.3f ms each: fail-fast)\n", fast, 1000.0 / fast);
    std::this_thread::sleep_for(2s); // a real outage lasts a while
    auto restart = steady_clock::now();
    server.start();
    auto ready = steady_clock::now();
    Result<std::int64_t> back = make_error(Errc::unreachable, "");
    while (!(back = watched->count_models()))
        std::this_thread::sleep_for(1ms);
    auto served = steady_clock::now();
    std::printf("restart command -> server ready: %.1f ms\n",
                duration<double, std::milli>(ready - restart).count());
    std::printf("server ready -> first successful call: %.1f ms (reconnect backoff, max %lld ms)\n",
                duration<double, std::milli>(served - ready).count(),
                static_cast<long long>(watched->config().reconnect_backoff_max.count()));
    return 0;
}
