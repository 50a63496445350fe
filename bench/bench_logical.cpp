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
// With `prisma` as the fourth argument, the same on Prisma's tables (tests/prisma/owned:
// text ids, "ModelStatus" keyed by its own id) read through their mapping: plain has no
// feed, triggers was migrated through the mapping (its row triggers), logical with
// feed=logical (the three tables in a publication, the feed naming rows through RowNames).
// The writers UPDATE "ModelStatus" by id, as Prisma's `update({where: {id}})` does.
//
// With BENCH_LOGICAL_COPY=1, each follower keeps a live copy (cache=live) as serve does:
// with feed=logical its status rows then go the copy's row path (no re-read).
//
// usage: bench_logical [SECONDS_PER_ROUND=5] [ROUNDS=3] [MODELS=10000] [prisma]
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

namespace {

/// Database `db` with Prisma's tables (owned by "app", as `prisma migrate` run by the
/// application's role makes them): 10 providers, `models` models m1 … mN and their statuses
/// s1 … sN.
bool make_prisma_database(test::PgServer& server, const std::string& db, int models) {
    const std::string ddl = bench::prisma_ddl(MODELREPO_SOURCE_ROOT);
    if (ddl.empty()) {
        std::fprintf(stderr, "cannot read tests/prisma/owned/migration.sql\n");
        return false;
    }
    const std::string n = std::to_string(models);
    server.psql("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    server.psql("CREATE DATABASE " + db + " OWNER app");
    server.psql("SET ROLE app;\n" + ddl + R"sql(
        INSERT INTO "Provider" (id, slug, name, "updatedAt")
            SELECT 'p' || p, 'p' || p, 'Provider ' || p, now() FROM generate_series(0, 9) p;
        INSERT INTO "Model" (id, slug, name, description, "contextWindow", "providerId", "updatedAt")
            SELECT 'm' || i, 'm' || i, 'Model ' || i, 'a model of the benchmark''s catalogue',
                   128000, 'p' || (i % 10), now() FROM generate_series(1, )sql" +
                    n + R"sql() i;
        INSERT INTO "ModelStatus" (id, "modelId", status, availability, "responseTime",
                                   "errorRate", region, "lastChecked", "updatedAt")
            SELECT 's' || i, 'm' || i, 'OPERATIONAL', 0.99, 120, 0.01, 'eu-west', now(), now()
            FROM generate_series(1, )sql" +
                    n + R"sql() i;)sql",
                db);
    server.psql("VACUUM ANALYZE", db);
    return server.psql("SELECT count(*) FROM \"ModelStatus\"", db).find(n) != std::string::npos;
}

/// modelrepo's migrate on `db` with `query` in its URL.
bool migrate(test::PgServer& server, const std::string& db, const std::string& query) {
    auto repo =
        PostgresRepository::open(server.url("app", bench::password, db, "127.0.0.1", query));
    if (!repo) {
        std::fprintf(stderr, "open %s: %s\n", db.c_str(), repo.error().message.c_str());
        return false;
    }
    auto migrated = repo.value()->migrate();
    if (!migrated)
        std::fprintf(stderr, "migrate %s (%s): %s\n", db.c_str(), query.c_str(),
                     migrated.error().message.c_str());
    return static_cast<bool>(migrated);
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    int models = argc > 3 ? std::atoi(argv[3]) : 10'000;
    const bool prisma = argc > 4 && std::string(argv[4]) == "prisma";
    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", bench::password, "modelrepo");
    server.psql("ALTER ROLE app REPLICATION");
    test::TempDir dir;
    // The URL's query through which the catalogue is read (and migrated).
    const std::string mapped =
        prisma ? "mapping=" + bench::prisma_mapping_file(MODELREPO_SOURCE_ROOT) : "";
    auto with = [&](const std::string& feed) {
        return feed + (feed.empty() || mapped.empty() ? "" : "&") + mapped;
    };
    if (prisma) {
        if (!make_prisma_database(server, "plain", models) ||
            !make_prisma_database(server, "triggers", models) ||
            !make_prisma_database(server, "logical", models) ||
            !migrate(server, "triggers", with("feed=triggers")))
            return 1;
    } else {
        Snapshot snapshot = bench::catalogue(models);
        if (!bench::make_database(server, "plain", 1, snapshot) ||
            !bench::make_database(server, "triggers", detail::sql::feed_schema_version, snapshot) ||
            !bench::make_database(server, "logical", detail::sql::feed_schema_version, snapshot))
            return 1;
    }
    // The logical database: migrate with feed=logical drops the triggers, makes the publication.
    if (!migrate(server, "logical", with("feed=logical")))
        return 1;
    // BENCH_LOGICAL_COPY=1: each follower keeps a live copy (cache=live), as serve does.
    const bool copy = std::getenv("BENCH_LOGICAL_COPY") != nullptr;
    auto follower = [&](const char* db, std::string query) {
        if (copy)
            query += (query.empty() ? "" : "&") + std::string("cache=live");
        auto opened = open(server.url("app", bench::password, db, "127.0.0.1", query));
        if (!opened)
            std::fprintf(stderr, "open %s: %s\n", db, opened.error().message.c_str());
        return std::move(opened).value();
    };
    auto logical_repo = follower("logical", with("feed=logical"));
    auto repo = follower("triggers", with(""));
    std::atomic<long> seen{0}, seen_logical{0};
    auto sub = repo->watch([&](const CatalogChange&) { ++seen; }).value();
    auto logical_sub = logical_repo->watch([&](const CatalogChange&) { ++seen_logical; }).value();
    std::this_thread::sleep_for(500ms);

    std::printf("bench_logical: %d models (%s), 8 writers on distinct rows, %d s per round, %d "
                "rounds alternating; followers %s; PostgreSQL 15 on loopback; %u cores\n",
                models, prisma ? "Prisma's tables, read through the mapping" : "modelrepo's tables",
                seconds, rounds, copy ? "with a live copy (cache=live)" : "watch() alone",
                std::thread::hardware_concurrency());
    // Client c writes rows c+1, c+9, c+17, …: no two clients share a row.
    const auto prisma_writers = dir.write(
        "prisma_writers.sql",
        "\\set id 1 + :client_id + 8 * random(0, " + std::to_string(std::max(models / 8 - 1, 0)) +
            ")\nUPDATE \"ModelStatus\" SET availability = random(), \"lastChecked\" "
            "= now(), \"updatedAt\" = now() WHERE id = 's' || :id;\n");
    auto writers = [&](const std::string& db) {
        return prisma ? bench::pgbench_file_tps(server, prisma_writers, db, "app", bench::password,
                                                8, 2, seconds)
                      : bench::writers_tps(server, dir, db, models, true, seconds);
    };
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
                out->push_back(writers(db));
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
