// SPDX-License-Identifier: MIT
// The live catalogue, measured: reads with cache=live against pgbench -M prepared on the
// same query and server, and against MemoryRepository; propagation of a commit by another
// client to a watch() callback; a 10,000-model catalogue's load, resync and one change.
//
//   ./build/bench/bench_live [SECONDS=3]
//
// Starts its own PostgreSQL 15 (tests/support/pg_server) on loopback.
#include <modelrepo/modelrepo.hpp>

#define DOCTEST_CONFIG_IMPLEMENT
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include "peers.hpp"
#include "pg_server.hpp"
#include "postgres/catalog/schema.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

const std::string password = "bench-Pw-5522";
constexpr int clients = 4;

std::string sql_of(detail::StatementId id) {
    return detail::statement_sql(id, detail::Mapping::builtin_tables(), "");
}

/// Waits for watch() callbacks by version.
struct Arrivals {
    std::mutex mutex;
    std::condition_variable cv;
    std::int64_t last_version = -1; ///< none yet
    CatalogChange::Kind last_kind = CatalogChange::Kind::resync;
    steady_clock::time_point at;

    void operator()(const CatalogChange& c) {
        std::lock_guard lock(mutex);
        last_version = c.version;
        last_kind = c.kind;
        at = steady_clock::now();
        cv.notify_all();
    }
    /// The arrival time of a change past `version`, or nullopt after `limit`.
    std::optional<steady_clock::time_point> after(std::int64_t version, milliseconds limit,
                                                  std::optional<CatalogChange::Kind> kind = {}) {
        std::unique_lock lock(mutex);
        bool ok = cv.wait_for(
            lock, limit, [&] { return last_version > version && (!kind || last_kind == *kind); });
        if (!ok)
            return std::nullopt;
        return at;
    }
    std::int64_t version() {
        std::lock_guard lock(mutex);
        return last_version;
    }
};

bool wait_in_sync(ModelRepository& repo, milliseconds limit) {
    auto deadline = steady_clock::now() + limit;
    auto* copy = repo.capability<CopyControl>();
    while (copy && steady_clock::now() < deadline) {
        if (copy->copy_state().in_sync)
            return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

Snapshot large_snapshot(int models) {
    Snapshot s;
    s.generated_at = floor<microseconds>(Clock::now());
    for (int p = 0; p < 50; ++p)
        s.providers.push_back({"provider-" + std::to_string(p), "Provider " + std::to_string(p),
                               "https://provider" + std::to_string(p) + ".example"});
    for (int m = 0; m < models; ++m) {
        std::string slug = "model-" + std::to_string(m);
        s.models.push_back({slug,
                            "Model " + std::to_string(m),
                            "provider-" + std::to_string(m % 50),
                            "A generated model used to measure the live copy.",
                            128'000 + m,
                            m % 10 != 0,
                            {},
                            {}});
        s.statuses.push_back({slug, static_cast<Health>(m % 4), 0.99, 250.0 + m % 1000, 0.01,
                              "us-east", s.generated_at});
    }
    return s;
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int seconds = argc > 1 ? std::atoi(argv[1]) : 3;
    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", password, "modelrepo");
    test::TempDir dir;

    // --- Reads ------------------------------------------------------------------------
    auto live = modelrepo::open(server.url("app", password, "modelrepo", "127.0.0.1",
                                           "cache=live&connection_limit=4"))
                    .value();
    live->capability<CatalogAdmin>()->migrate().value();
    if (auto r = live->capability<CatalogAdmin>()->import_snapshot(builtin_snapshot()); !r) {
        std::fprintf(stderr, "%s\n", r.error().to_string().c_str());
        return 1;
    }
    if (!wait_in_sync(*live, 10s)) {
        std::fprintf(stderr, "the copy did not get in sync\n");
        return 1;
    }
    auto memory = MemoryRepository::builtin();
    const std::string slug = "claude-sonnet-4-5";

    std::printf("reads: %d threads, %d s after 1 s warm-up; PostgreSQL 15 on loopback\n", clients,
                seconds);
    double live_find = bench::threads_tps("live", clients, seconds, [&](int) {
        auto m = live->find_model(slug);
        return m && m.value().has_value();
    });
    double memory_find = bench::threads_tps("memory", clients, seconds, [&](int) {
        auto m = memory->find_model(slug);
        return m && m.value().has_value();
    });
    double pgbench_find = bench::pgbench_tps(server, dir, "find_model", sql_of(detail::find_model),
                                             slug, "app", password, clients, 2, seconds);
    double live_count = bench::threads_tps("live", clients, seconds,
                                           [&](int) { return live->count_models().has_value(); });
    double pgbench_count =
        bench::pgbench_tps(server, dir, "count_models", sql_of(detail::count_models), "", "app",
                           password, clients, 2, seconds);
    double live_stats = bench::threads_tps("live", clients, seconds,
                                           [&](int) { return live->system_stats().has_value(); });
    double pgbench_stats =
        bench::pgbench_tps(server, dir, "system_stats", sql_of(detail::system_stats), "", "app",
                           password, clients, 2, seconds);
    std::printf("%-14s %14s %14s %14s %10s\n", "query", "cache=live", "pgbench -M p", "memory",
                "vs pgbench");
    std::printf("%-14s %12.0f/s %12.0f/s %12.0f/s %9.1fx\n", "find_model", live_find, pgbench_find,
                memory_find, live_find / pgbench_find);
    std::printf("%-14s %12.0f/s %12.0f/s %14s %9.1fx\n", "count_models", live_count, pgbench_count,
                "", live_count / pgbench_count);
    std::printf("%-14s %12.0f/s %12.0f/s %14s %9.1fx\n", "system_stats", live_stats, pgbench_stats,
                "", live_stats / pgbench_stats);
    double live_ns = bench::ns_per_call(1'000'000, [&] { (void)live->find_model(slug); });
    double memory_ns = bench::ns_per_call(1'000'000, [&] { (void)memory->find_model(slug); });
    std::printf("find_model, one thread: cache=live %.1f ns, MemoryRepository %.1f ns: %.2fx "
                "(target <= 1.2x: %s)\n",
                live_ns, memory_ns, live_ns / memory_ns,
                live_ns / memory_ns <= 1.2 ? "met" : "missed");
    std::printf("reads vs pgbench -M prepared (target >= 50x): find_model %.1fx, count_models "
                "%.1fx, system_stats %.1fx\n",
                live_find / pgbench_find, live_count / pgbench_count, live_stats / pgbench_stats);

    // --- Propagation ------------------------------------------------------------------
    PGconn* other = PQconnectdb(("host=127.0.0.1 port=" + std::to_string(server.port()) +
                                 " user=app dbname=modelrepo password=" + password)
                                    .c_str());
    if (PQstatus(other) != CONNECTION_OK) {
        std::fprintf(stderr, "%s", PQerrorMessage(other));
        return 1;
    }
    std::vector<std::string> with_status;
    for (const ModelStatus& s : builtin_snapshot().statuses)
        with_status.push_back(s.model_slug);
    auto plain = PostgresRepository::open(server.url("app", password)).value();
    for (ModelRepository* repo : {static_cast<ModelRepository*>(plain.get()), live.get()}) {
        Arrivals arrivals;
        auto sub = repo->watch(std::ref(arrivals)).value();
        // A new feed says resync once it listens; the copy's feed listens already.
        if (repo == static_cast<ModelRepository*>(plain.get()) &&
            !arrivals.after(-1, 10s, CatalogChange::Kind::resync)) {
            std::fprintf(stderr, "the feed did not start\n");
            return 1;
        }
        // The slugs of models that have a status row, one after another.
        std::vector<double> ms;
        for (int i = 0; i < 1000; ++i) {
            std::int64_t before = arrivals.version();
            std::string sql =
                "UPDATE model_status SET availability = " + std::to_string((i % 100) / 100.0) +
                ", checked_at = now() WHERE model_slug = '" +
                with_status[static_cast<std::size_t>(i) % with_status.size()] + "'";
            auto sent = steady_clock::now();
            PGresult* r = PQexec(other, sql.c_str());
            PQclear(r);
            if (auto arrived = arrivals.after(before, 5s, CatalogChange::Kind::status))
                ms.push_back(duration<double, std::milli>(*arrived - sent).count());
            else
                std::fprintf(stderr, "change %d (after version %lld) did not arrive in 5 s\n", i,
                             static_cast<long long>(before));
        }
        std::printf("propagation (%s): UPDATE by a plain libpq session -> callback, %zu changes: "
                    "p50 %.2f ms, p99 %.2f ms, max %.2f ms (target p99 <= 5 ms: %s)\n",
                    repo == plain.get() ? "feed only" : "cache=live: re-read and applied first",
                    ms.size(), bench::percentile(ms, 0.5), bench::percentile(ms, 0.99),
                    bench::percentile(ms, 1.0),
                    bench::percentile(ms, 0.99) <= 5 ? "met" : "missed");
    }

    // --- A 10,000-model catalogue ---------------------------------------------------------
    server.psql("CREATE DATABASE large OWNER app");
    auto large_url = server.url("app", password, "large", "127.0.0.1", "cache=live");
    Snapshot big = large_snapshot(10'000);
    {
        auto loader = PostgresRepository::open(server.url("app", password, "large")).value();
        loader->migrate().value();
        loader->import_snapshot(big).value();
    }
    auto opened_at = steady_clock::now();
    auto large = modelrepo::open(large_url).value();
    if (!wait_in_sync(*large, 30s)) {
        std::fprintf(stderr, "the 10k copy did not get in sync\n");
        return 1;
    }
    double initial_ms = duration<double, std::milli>(steady_clock::now() - opened_at).count();
    Arrivals arrivals;
    auto sub = large->watch(std::ref(arrivals)).value();
    std::vector<double> resync_ms;
    for (int i = 0; i < 5; ++i) {
        big.statuses[static_cast<std::size_t>(i)].availability = 0.5; // a different catalogue
        auto loader = PostgresRepository::open(server.url("app", password, "large")).value();
        std::int64_t before = arrivals.version();
        loader->import_snapshot(big).value();
        auto committed = steady_clock::now();
        if (auto arrived = arrivals.after(before, 30s, CatalogChange::Kind::resync))
            resync_ms.push_back(duration<double, std::milli>(*arrived - committed).count());
    }
    std::vector<double> change_ms;
    PQfinish(other);
    other = PQconnectdb(("host=127.0.0.1 port=" + std::to_string(server.port()) +
                         " user=app dbname=large password=" + password)
                            .c_str());
    for (int i = 0; i < 200; ++i) {
        std::int64_t before = arrivals.version();
        std::string sql = "UPDATE model_status SET availability = 0." + std::to_string(i % 10) +
                          ", checked_at = now() WHERE model_slug = 'model-" +
                          std::to_string(i * 37 % 10'000) + "'";
        auto sent = steady_clock::now();
        PQclear(PQexec(other, sql.c_str()));
        if (auto arrived = arrivals.after(before, 5s, CatalogChange::Kind::status))
            change_ms.push_back(duration<double, std::milli>(*arrived - sent).count());
    }
    PQfinish(other);
    auto mem_large = MemoryRepository::create(big, "large").value();
    Timestamp t = Clock::now();
    long n = 0;
    double apply_ns = bench::ns_per_call(2'000, [&] {
        std::vector<ModelStatus> one{{"model-" + std::to_string(n++ % 10'000), Health::degraded,
                                      0.5, 1.0, 0.1, "", t + microseconds(n)}};
        (void)mem_large->upsert_statuses(one);
    });
    std::printf("10,000 models: open -> copy in sync %.1f ms; import committed -> resync applied "
                "(full reload) p50 %.1f ms, max %.1f ms (target <= 200 ms: %s)\n",
                initial_ms, bench::percentile(resync_ms, 0.5), bench::percentile(resync_ms, 1.0),
                initial_ms <= 200 && bench::percentile(resync_ms, 1.0) <= 200 ? "met" : "missed");
    std::printf("10,000 models: one status change, UPDATE -> re-read and applied in the copy -> "
                "callback: p50 %.2f ms, p99 %.2f ms; applying one status in memory %.1f us "
                "(target <= 1 ms: %s)\n",
                bench::percentile(change_ms, 0.5), bench::percentile(change_ms, 0.99),
                apply_ns / 1000, apply_ns <= 1e6 ? "met" : "missed");
    return 0;
}
