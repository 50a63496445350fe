// SPDX-License-Identifier: MIT
// Reads through a mapping (mapping=, a Prisma-owned schema) against the same reads on
// modelrepo's own tables: same server, same 32 models, same run, alternating rounds.
//
//   ./build/bench/bench_mapping [SECONDS=2] [ROUNDS=5]
//
// Starts its own PostgreSQL 15 (tests/support/pg_server). Database "modelrepo" holds the
// builtin catalogue twice: in modelrepo's tables (public) and in the Prisma schema of
// tests/prisma/owned (schema "platform": text ids, relations by id, an enum health,
// TIMESTAMP(3)), with the same rows. For each read, 4 threads on one repository:
//   own      postgresql://…                          (modelrepo's tables)
//   mapped   postgresql://…?schema=platform&mapping=tests/prisma/owned/mapping.json
// then the same through cache=live (answers from the live copy). Prints each round and
// the median ratio mapped/own (target: >= 0.95 pooled; cache=live unchanged).
#include <modelrepo/modelrepo.hpp>

#define DOCTEST_CONFIG_IMPLEMENT
#include <algorithm>
#include <cstdio>

#include <doctest/doctest.h>

#include "bench_catalogue.hpp"
#include "peers.hpp"
#include "pg_server.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

const std::string password = "bench-Pw-7310";
constexpr int clients = 4;

/// The builtin catalogue copied into the Prisma-owned tables, ids made from the slugs.
constexpr const char* copy_into_platform = R"sql(
INSERT INTO platform."Provider" (id, slug, name, website, "updatedAt")
    SELECT 'p' || md5(slug), slug, name, nullif(website, ''), now() FROM public.providers;
INSERT INTO platform."Model" (id, slug, name, description, "contextWindow", "isActive",
                              "providerId", "updatedAt")
    SELECT 'm' || md5(slug), slug, name, nullif(description, ''), context_window, active,
           'p' || md5(provider_slug), now() FROM public.models;
INSERT INTO platform."ModelStatus" (id, "modelId", status, availability, "responseTime",
                                    "errorRate", region, "lastChecked", "updatedAt")
    SELECT 's' || md5(model_slug), 'm' || md5(model_slug),
           upper(health)::platform."HealthStatus", availability, round(latency_ms), error_rate,
           nullif(region, ''), checked_at AT TIME ZONE 'UTC', now() FROM public.model_status;
ANALYZE;
)sql";

struct Read {
    const char* name;
    std::function<bool(ModelRepository&)> call;
};

std::shared_ptr<ModelRepository> open_or_die(const std::string& url) {
    auto repo = open(url);
    if (!repo) {
        std::fprintf(stderr, "%s\n", repo.error().to_string().c_str());
        std::exit(1);
    }
    return repo.value();
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    const int seconds = argc > 1 ? std::atoi(argv[1]) : 2;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
    const std::string root = MODELREPO_SOURCE_ROOT;

    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", password, "modelrepo");
    const std::string base = server.url("app", password, "modelrepo", "127.0.0.1",
                                        "connection_limit=" + std::to_string(clients));
    {
        auto own = PostgresRepository::open(base).value();
        own->migrate().value();
        if (auto r = own->import_snapshot(builtin_snapshot()); !r) {
            std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
            return 1;
        }
    }
    server.psql("SET ROLE app; CREATE SCHEMA platform; SET search_path TO platform; " +
                    bench::prisma_ddl(root),
                "modelrepo");
    server.psql(std::string("SET ROLE app; ") + copy_into_platform, "modelrepo");
    const std::string mapped =
        base + "&schema=platform&mapping=" + bench::prisma_mapping_file(root);
    PostgresRepository::open(mapped).value()->migrate().value();

    const std::vector<std::string> five{"gpt-5", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro",
                                        "llama-4-maverick"};
    std::vector<Read> reads{
        {"count_models", [](ModelRepository& r) { return r.count_models().has_value(); }},
        {"find_models_5",
         [&](ModelRepository& r) {
             auto m = r.find_models(five);
             return m && m.value().size() == 5;
         }},
        {"system_stats", [](ModelRepository& r) { return r.system_stats().has_value(); }},
        {"list_models_32",
         [](ModelRepository& r) {
             auto m = r.list_models();
             return m && m.value().size() == 32;
         }},
    };
    test::TempDir dir;
    struct Pair {
        const char* label;
        std::shared_ptr<ModelRepository> own, mapped;
    };
    std::vector<Pair> pairs{
        {"pooled", open_or_die(base), open_or_die(mapped)},
        {"cache=live", open_or_die(base + "&cache=live&cache_dir=" + (dir.path() / "a").string()),
         open_or_die(mapped + "&cache=live&cache_dir=" + (dir.path() / "b").string())},
    };
    // The answers agree before they are timed.
    for (const Pair& p : pairs) {
        auto a = p.own->find_models(five).value();
        auto b = p.mapped->find_models(five).value();
        if (a.size() != 5 || b.size() != 5 || a[0].name != b[0].name ||
            a[0].status->health != b[0].status->health) {
            std::fprintf(stderr, "%s: the two catalogues answer differently\n", p.label);
            return 1;
        }
    }
    std::printf("bench_mapping: %d threads, %d s per side, %d alternating rounds; calls/s\n",
                clients, seconds, rounds);
    std::printf("%-11s %-15s %10s %10s %7s   rounds (mapped/own)\n", "", "read", "own", "mapped",
                "ratio");
    for (const Pair& p : pairs) {
        for (const Read& read : reads) {
            std::vector<double> own, map, ratios;
            for (int r = 0; r < rounds; ++r) {
                // Alternate which goes first: the machine is shared and noisy.
                auto run = [&](ModelRepository& repo) {
                    return bench::threads_tps(read.name, clients, seconds,
                                              [&](int) { return read.call(repo); });
                };
                double a, b;
                if (r % 2 == 0) {
                    a = run(*p.own);
                    b = run(*p.mapped);
                } else {
                    b = run(*p.mapped);
                    a = run(*p.own);
                }
                own.push_back(a);
                map.push_back(b);
                ratios.push_back(b / a);
            }
            std::string seen;
            for (double x : ratios) {
                char buf[16];
                std::snprintf(buf, sizeof buf, " %.2f", x);
                seen += buf;
            }
            std::printf("%-11s %-15s %10.0f %10.0f %6.2fx  %s\n", p.label, read.name,
                        bench::percentile(own, 0.5), bench::percentile(map, 0.5),
                        bench::percentile(ratios, 0.5), seen.c_str());
        }
    }
    return 0;
}
