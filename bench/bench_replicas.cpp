// SPDX-License-Identifier: MIT
// Beyond one server, measured: reads per second through a real PgBouncer (transaction
// mode) against the same reads direct, 4 threads; and a failover timeline under 4
// readers (read_target=prefer-standby) and 1 writer: primary killed -> standby promoted
// -> first acknowledged write, with the reads that failed during the switch.
//
//   ./build/bench/bench_replicas [SECONDS=3]
#include <modelrepo/modelrepo.hpp>

#define DOCTEST_CONFIG_IMPLEMENT
#include <atomic>
#include <cstdio>
#include <thread>

#include <doctest/doctest.h>

#include "peers.hpp"
#include "pg_server.hpp"
#include "pgbouncer.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

const std::string password = "bench-Pw-7744";
constexpr int clients = 4;

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int seconds = argc > 1 ? std::atoi(argv[1]) : 3;
    test::PgServer primary;
    if (!primary.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", primary.why().c_str());
        return 1;
    }
    primary.create_role("app", password, "modelrepo");
    {
        auto loader = PostgresRepository::open(primary.url("app", password)).value();
        loader->migrate().value();
        loader->import_snapshot(builtin_snapshot()).value();
    }

    // --- PgBouncer vs direct ------------------------------------------------------------
    test::PgBouncerServer bouncer(primary, {{"app", password}});
    if (!bouncer.available()) {
        std::fprintf(stderr, "no pgbouncer: %s\n", bouncer.why().c_str());
        return 1;
    }
    auto direct = PostgresRepository::open(
                      primary.url("app", password, "modelrepo", "127.0.0.1", "connection_limit=4"))
                      .value();
    // The same protocol as through PgBouncer (no named prepared statements), direct: splits
    // the cost of the protocol from the cost of the extra hop.
    auto unprepared =
        PostgresRepository::open(primary.url("app", password, "modelrepo", "127.0.0.1",
                                             "pgbouncer=true&connection_limit=4"))
            .value();
    auto bounced = PostgresRepository::open(bouncer.url("app", password, "modelrepo",
                                                        "pgbouncer=true&connection_limit=4"))
                       .value();
    const std::vector<std::string> five{"gpt-5", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro",
                                        "llama-4-maverick"};
    std::printf("reads: %d threads, %d s after 1 s warm-up; PgBouncer 1.18 transaction mode "
                "(default_pool_size 8) in front of PostgreSQL 15, loopback\n",
                clients, seconds);
    std::printf("%-14s %12s %14s %12s %8s\n", "query", "direct", "direct-unprep", "pgbouncer",
                "ratio");
    for (const char* name : {"system_stats", "find_models_5"}) {
        bool stats = std::string(name) == "system_stats";
        auto call = [&](PostgresRepository& r) {
            return stats ? r.system_stats().has_value() : r.find_models(five).has_value();
        };
        double d =
            bench::threads_tps("direct", clients, seconds, [&](int) { return call(*direct); });
        double u = bench::threads_tps("direct-unprep", clients, seconds,
                                      [&](int) { return call(*unprepared); });
        double b =
            bench::threads_tps("pgbouncer", clients, seconds, [&](int) { return call(*bounced); });
        std::printf("%-14s %10.0f/s %12.0f/s %10.0f/s %7.2fx\n", name, d, u, b, b / d);
    }
    direct.reset();
    unprepared.reset();
    bounced.reset();

    // --- Failover -----------------------------------------------------------------------
    test::PgServer standby(primary, test::PgServer::Standby{});
    if (!standby.available()) {
        std::fprintf(stderr, "no standby: %s\n", standby.why().c_str());
        return 1;
    }
    std::string url = "postgresql://app:" + password +
                      "@127.0.0.1:" + std::to_string(primary.port()) +
                      ",127.0.0.1:" + std::to_string(standby.port()) +
                      "/modelrepo?read_target=prefer-standby&connect_timeout=2&socket_timeout=3";
    auto repo = PostgresRepository::open(url).value();
    while (!repo->count_models())
        std::this_thread::sleep_for(10ms);
    std::atomic<bool> stop{false}, promoted{false};
    std::atomic<long> reads{0}, failed_reads{0}, writes{0}, failed_writes{0};
    std::atomic<long long> first_write_ms{-1};
    steady_clock::time_point promoted_at;
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t)
        threads.emplace_back([&] {
            while (!stop) {
                auto m = repo->find_models(five);
                ++reads;
                if (!m || m.value().size() != 5)
                    ++failed_reads;
                std::this_thread::sleep_for(1ms);
            }
        });
    threads.emplace_back([&] {
        long i = 0;
        while (!stop) {
            std::vector<ModelStatus> st{{"gpt-4o", Health::degraded, 0.5, 1.0, 0.1, "bench",
                                         system_clock::now() + microseconds(++i)}};
            bool ok = repo->write_statuses(st).has_value();
            (ok ? writes : failed_writes)++;
            if (ok && promoted && first_write_ms < 0)
                first_write_ms =
                    duration_cast<milliseconds>(steady_clock::now() - promoted_at).count();
            std::this_thread::sleep_for(5ms);
        }
    });
    std::this_thread::sleep_for(1s);
    long reads_before = reads, writes_before = writes;
    auto killed = steady_clock::now();
    primary.kill9();
    auto first_failed_write = steady_clock::now();
    std::this_thread::sleep_for(1s);
    promoted_at = steady_clock::now();
    standby.promote();
    auto promote_ms = duration_cast<milliseconds>(steady_clock::now() - promoted_at).count();
    promoted = true;
    for (int i = 0; i < 1000 && first_write_ms < 0; ++i)
        std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(500ms);
    stop = true;
    for (auto& t : threads)
        t.join();
    (void)first_failed_write;
    std::printf("failover under %d readers (prefer-standby) and 1 writer:\n", clients);
    std::printf("  primary killed -> promote command: %lld ms (waited on purpose)\n",
                static_cast<long long>(duration_cast<milliseconds>(promoted_at - killed).count()));
    std::printf("  pg_ctl promote -w took: %lld ms\n", static_cast<long long>(promote_ms));
    std::printf("  promote command -> first acknowledged write: %lld ms\n",
                static_cast<long long>(first_write_ms.load()));
    std::printf("  reads during the switch: %ld, failed %ld (target 0); writes %ld, failed %ld "
                "(no outbox here: each failed write was reported to its caller)\n",
                reads.load() - reads_before, failed_reads.load(), writes.load() - writes_before,
                failed_writes.load());
    return failed_reads == 0 && first_write_ms >= 0 ? 0 : 1;
}
