// SPDX-License-Identifier: MIT
// What following the catalogue's changes costs its writers (issue 35): 8 pgbench clients
// UPDATE model_status on distinct rows of a 10,000-model catalogue, on three databases of
// one PostgreSQL 15 (wal_level = logical), in alternating rounds:
//
//   plain     schema 1: no change feed at all (the peer)
//   triggers  this modelrepo's trigger feed (row triggers, the change log), followed by a
//             watch()
//   logical   migrated with feed=logical (no triggers, a publication), followed by a
//             watch() with feed=logical (src/postgres/logical: a temporary slot, pgoutput
//             decoded, each transaction confirmed once it is visible)
//
// With fsync off (the harness's default) and on. Each follower's count of changes is
// printed after the rounds: the logical reader must have kept up with its writers.
//
// usage: bench_logical [SECONDS_PER_ROUND=5] [ROUNDS=3] [MODELS=10000]
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "bench_catalogue.hpp"
#include "postgres/catalog/schema.hpp"

using namespace modelrepo;
using namespace std::chrono;
namespace test = modelrepo::test;

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    int models = argc > 3 ? std::atoi(argv[3]) : 10'000;
    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", bench::password, "modelrepo");
    server.psql("ALTER ROLE app REPLICATION");
    test::TempDir dir;
    Snapshot snapshot = bench::catalogue(models);
    if (!bench::make_database(server, "plain", 1, snapshot) ||
        !bench::make_database(server, "triggers", detail::sql::feed_schema_version, snapshot) ||
        !bench::make_database(server, "logical", detail::sql::feed_schema_version, snapshot))
        return 1;
    // The logical database: migrate with feed=logical drops the triggers, makes the publication.
    auto logical_repo = PostgresRepository::open(server.url("app", bench::password, "logical",
                                                            "127.0.0.1", "feed=logical"))
                            .value();
    if (auto migrated = logical_repo->migrate(); !migrated) {
        std::fprintf(stderr, "migrate feed=logical: %s\n", migrated.error().message.c_str());
        return 1;
    }
    auto repo = PostgresRepository::open(server.url("app", bench::password, "triggers")).value();
    std::atomic<long> seen{0}, seen_logical{0};
    auto sub = repo->watch([&](const CatalogChange&) { ++seen; }).value();
    auto logical_sub = logical_repo->watch([&](const CatalogChange&) { ++seen_logical; }).value();
    std::this_thread::sleep_for(500ms);

    std::printf("bench_logical: %d models, 8 writers on distinct rows, %d s per round, %d rounds "
                "alternating; PostgreSQL 15 on loopback; %u cores\n",
                models, seconds, rounds, std::thread::hardware_concurrency());
    std::printf("%-12s %10s %10s %10s %11s %11s\n", "fsync", "plain", "triggers", "logical",
                "trig/plain", "logi/plain");
    for (bool fsync : {false, true}) {
        server.psql(std::string("ALTER SYSTEM SET fsync = ") + (fsync ? "on" : "off"));
        server.psql("SELECT pg_reload_conf()");
        std::vector<double> plain, triggers, logi;
        for (int r = 0; r < rounds; ++r) {
            std::vector<std::pair<const char*, std::vector<double>*>> order{
                {"plain", &plain}, {"triggers", &triggers}, {"logical", &logi}};
            std::rotate(order.begin(), order.begin() + r % 3, order.end());
            for (auto& [db, out] : order)
                out->push_back(bench::writers_tps(server, dir, db, models, true, seconds));
        }
        double p = bench::percentile(plain, 0.5), t = bench::percentile(triggers, 0.5),
               l = bench::percentile(logi, 0.5);
        std::printf("%-12s %10.0f %10.0f %10.0f %10.2fx %10.2fx\n", fsync ? "on" : "off", p, t, l,
                    p > 0 ? t / p : 0, p > 0 ? l / p : 0);
        std::fflush(stdout);
    }
    server.psql("ALTER SYSTEM RESET fsync");
    server.psql("SELECT pg_reload_conf()");
    // The followers catch up with the last round before they are counted.
    std::this_thread::sleep_for(2s);
    std::printf("(followers: watch() with feed=triggers saw %ld changes, with feed=logical %ld)\n",
                seen.load(), seen_logical.load());
    return 0;
}
