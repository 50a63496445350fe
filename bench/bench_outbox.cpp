// SPDX-License-Identifier: MIT
// The outbox, measured: the latency of a write queued while the database is down (the
// SQLite commit with its fsync included) against a direct upsert of the same batch to a
// healthy server; and the drain's throughput against writing the same statuses directly
// in batches of the same size.
//
//   ./build/bench/bench_outbox [BATCHES=2000] [BATCH_SIZE=5]
//
// Starts its own PostgreSQL 15 (tests/support/pg_server) on loopback; the outbox file is
// in a temporary directory under /tmp.
#include <modelrepo/modelrepo.hpp>

#define DOCTEST_CONFIG_IMPLEMENT
#include <algorithm>
#include <cstdio>
#include <thread>

#include <doctest/doctest.h>

#include "peers.hpp"
#include "pg_server.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;

namespace {

const std::string password = "bench-Pw-6633";

/// `count` batches of `size` statuses, each newer than the last.
std::vector<std::vector<ModelStatus>> batches(int count, int size, Timestamp from) {
    std::vector<std::string> slugs;
    for (const auto& s : builtin_snapshot().statuses)
        slugs.push_back(s.model_slug);
    std::vector<std::vector<ModelStatus>> out;
    for (int b = 0; b < count; ++b) {
        std::vector<ModelStatus> batch;
        for (int i = 0; i < size; ++i)
            batch.push_back({slugs[static_cast<std::size_t>(b * size + i) % slugs.size()],
                             Health::degraded, 0.5, 12.5, 0.1, "bench",
                             from + microseconds(b * size + i)});
        out.push_back(std::move(batch));
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int count = argc > 1 ? std::atoi(argv[1]) : 2000;
    int size = argc > 2 ? std::atoi(argv[2]) : 5;
    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", password, "modelrepo");
    test::TempDir dir;
    auto outbox = dir.path() / "outbox.db";
    const std::string url =
        server.url("app", password, "modelrepo", "127.0.0.1",
                   "connection_limit=1&connect_timeout=2&outbox=" + outbox.string());
    auto repo = modelrepo::open(url).value();
    repo->capability<CatalogAdmin>()->migrate().value();
    repo->capability<CatalogAdmin>()->import_snapshot(builtin_snapshot()).value();
    Timestamp base = floor<microseconds>(Clock::now());

    // Direct: the batches to a healthy server, one after another.
    auto direct_batches = batches(count, size, base);
    std::vector<double> direct_ms;
    auto direct_start = steady_clock::now();
    for (const auto& b : direct_batches) {
        auto t0 = steady_clock::now();
        auto r = repo->write_statuses(b);
        direct_ms.push_back(duration<double, std::milli>(steady_clock::now() - t0).count());
        if (!r || r.value().applied != size) {
            std::fprintf(stderr, "direct write failed\n");
            return 1;
        }
    }
    double direct_s = duration<double>(steady_clock::now() - direct_start).count();

    // Queued: the same number of batches while the database is down.
    server.kill9();
    auto queued_batches = batches(count, size, base + hours(1));
    std::vector<double> queued_ms;
    for (const auto& b : queued_batches) {
        auto t0 = steady_clock::now();
        auto r = repo->write_statuses(b);
        queued_ms.push_back(duration<double, std::milli>(steady_clock::now() - t0).count());
        if (!r || r.value().queued != size) {
            std::fprintf(stderr, "queued write failed: %s\n",
                         r ? "applied?" : r.error().to_string().c_str());
            return 1;
        }
    }
    // Drain: a fresh repository on the same file, the database back.
    repo.reset();
    server.start();
    auto drainer = modelrepo::open(server.url("app", password, "modelrepo", "127.0.0.1",
                                              "connection_limit=1&outbox=" + outbox.string()))
                       .value();
    auto drain_start = steady_clock::now();
    std::int64_t drained = 0;
    for (;;) {
        auto d = drainer->capability<OutboxControl>()->drain_outbox();
        if (!d) {
            std::this_thread::sleep_for(10ms); // the server is still starting
            continue;
        }
        drained += d.value().statuses;
        if (d.value().remaining == 0)
            break;
    }
    double drain_s = duration<double>(steady_clock::now() - drain_start).count();
    // The replay thread of the drainer may have taken some of the batches itself; what
    // counts is that the outbox is empty and every status arrived.
    auto left = drainer->capability<OutboxControl>()->outbox_state().value();
    auto in_db = server.psql("SELECT count(*) FROM model_status WHERE region = 'bench' AND "
                             "checked_at >= '" +
                                 format_timestamp(base + hours(1)) + "'",
                             "modelrepo");

    double total = static_cast<double>(count) * size;
    std::printf("%d batches of %d statuses; PostgreSQL 15 on loopback, the outbox on %s\n", count,
                size, dir.path().c_str());
    std::printf("write latency  direct to a healthy server: p50 %.3f ms, p99 %.3f ms\n",
                bench::percentile(direct_ms, 0.5), bench::percentile(direct_ms, 0.99));
    std::printf("write latency  queued in the outbox (fsync): p50 %.3f ms, p99 %.3f ms "
                "(%.2fx / %.2fx direct)\n",
                bench::percentile(queued_ms, 0.5), bench::percentile(queued_ms, 0.99),
                bench::percentile(queued_ms, 0.5) / bench::percentile(direct_ms, 0.5),
                bench::percentile(queued_ms, 0.99) / bench::percentile(direct_ms, 0.99));
    std::printf("throughput     direct writes: %.0f statuses/s; drain: %.0f statuses/s (%.2fx; "
                "target >= 1x: %s)\n",
                total / direct_s, total / drain_s, direct_s / drain_s,
                direct_s / drain_s >= 1 ? "met" : "missed");
    std::printf("after the drain: %lld statuses pending, %s of the %d models with a status "
                "hold a replayed one\n",
                static_cast<long long>(left.statuses), in_db.c_str(),
                static_cast<int>(builtin_snapshot().statuses.size()));
    (void)drained;
    return left.statuses == 0 ? 0 : 1;
}
