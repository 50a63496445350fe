// SPDX-License-Identifier: MIT
// The outbox, measured: the latency of a write queued while the database is down (the
// SQLite commit with its fsync included) against a direct upsert of the same batch to a
// healthy server; and the drain's throughput against writing the same statuses directly
// in batches of the same size. The one benchmark of the drain (issue 35: "settle it").
//
//   ./build/bench/bench_outbox [BATCHES=2000] [BATCH_SIZE=5] [ROUNDS=5]
//
// Each round writes BATCHES batches directly to a healthy server, and queues as many while
// the server is down (kill -9), then a new repository on the same file drains them once it
// is back: direct first in even rounds, the drain first in odd ones (the machine is
// shared). It prints each round and the medians. The database is on the trigger feed
// (what migrate installs), so direct writes and the drain's pay the same triggers.
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

/// What one round measured.
struct Round {
    double direct_s = 0, drain_s = 0;
    std::vector<double> direct_ms, queued_ms; ///< per batch
};

/// Writes `list` through `repo` (a healthy server): the seconds, each batch's latency in
/// `latency`. False when a batch was not applied whole.
bool write_direct(ModelRepository& repo, const std::vector<std::vector<ModelStatus>>& list,
                  double& seconds, std::vector<double>& latency) {
    auto start = steady_clock::now();
    for (const auto& b : list) {
        auto t0 = steady_clock::now();
        auto r = repo.write_statuses(b);
        latency.push_back(duration<double, std::milli>(steady_clock::now() - t0).count());
        if (!r || r.value().applied != static_cast<std::int64_t>(b.size())) {
            std::fprintf(stderr, "direct write failed: %s\n",
                         r ? "not applied whole" : r.error().to_string().c_str());
            return false;
        }
    }
    seconds = duration<double>(steady_clock::now() - start).count();
    return true;
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int count = argc > 1 ? std::atoi(argv[1]) : 2000;
    int size = argc > 2 ? std::atoi(argv[2]) : 5;
    int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
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
    {
        auto setup = modelrepo::open(url).value();
        setup->capability<CatalogAdmin>()->migrate().value();
        setup->capability<CatalogAdmin>()->import_snapshot(builtin_snapshot()).value();
    }
    // Every status in the past (a future one past max_clock_skew is refused), each round's
    // newer than the last round's (an older one is ignored, not applied).
    const Timestamp base = floor<microseconds>(Clock::now()) - hours(2 * rounds + 2);
    std::printf("%d batches of %d statuses, %d rounds alternating; PostgreSQL 15 on loopback "
                "(the trigger feed), the outbox on %s\n",
                count, size, rounds, dir.path().c_str());
    std::vector<Round> all;
    bool whole = true;
    for (int r = 0; r < rounds; ++r) {
        Round round;
        const bool direct_first = r % 2 == 0;
        // Whichever comes second is newer (an older status is ignored, not applied).
        auto direct_batches = batches(count, size, base + hours(2 * r + (direct_first ? 0 : 1)));
        auto queued_batches = batches(count, size, base + hours(2 * r + (direct_first ? 1 : 0)));
        auto writer = modelrepo::open(url).value();
        if (direct_first && !write_direct(*writer, direct_batches, round.direct_s, round.direct_ms))
            return 1;
        // Queued: the batches while the database is down.
        server.kill9();
        for (const auto& b : queued_batches) {
            auto t0 = steady_clock::now();
            auto q = writer->write_statuses(b);
            round.queued_ms.push_back(
                duration<double, std::milli>(steady_clock::now() - t0).count());
            if (!q || q.value().queued != size) {
                std::fprintf(stderr, "queued write failed: %s\n",
                             q ? "applied?" : q.error().to_string().c_str());
                return 1;
            }
        }
        // Drain: a new repository on the same file, the database back.
        writer.reset();
        server.start();
        auto drainer = modelrepo::open(url).value();
        auto* control = drainer->capability<OutboxControl>();
        // Connected first, so that the drain is not timed waiting for the server.
        while (!drainer->count_models())
            std::this_thread::sleep_for(10ms);
        auto drain_start = steady_clock::now();
        for (;;) {
            auto d = control->drain_outbox();
            if (!d) {
                std::fprintf(stderr, "drain failed: %s\n", d.error().to_string().c_str());
                return 1;
            }
            if (d.value().remaining == 0)
                break;
        }
        round.drain_s = duration<double>(steady_clock::now() - drain_start).count();
        // The drainer's replay thread may have taken some batches itself; what counts is
        // that the outbox is empty and every status arrived.
        auto left = control->outbox_state().value();
        const std::string drained_models = server.psql(
            "SELECT count(*) FROM model_status WHERE region = 'bench' AND checked_at >= '" +
                format_timestamp(queued_batches.front().front().checked_at) + "'",
            "modelrepo");
        const std::string with_status = std::to_string(builtin_snapshot().statuses.size());
        if (!direct_first &&
            !write_direct(*drainer, direct_batches, round.direct_s, round.direct_ms))
            return 1;
        whole = whole && left.statuses == 0 && drained_models == with_status;
        const double total = static_cast<double>(count) * size;
        std::printf("round %d (%s first): direct %.0f statuses/s, drain %.0f statuses/s, "
                    "%.2fx; %lld left in the outbox, %s of the %s models with a status hold "
                    "a drained one\n",
                    r + 1, direct_first ? "direct" : "drain", total / round.direct_s,
                    total / round.drain_s, round.direct_s / round.drain_s,
                    static_cast<long long>(left.statuses), drained_models.c_str(),
                    with_status.c_str());
        all.push_back(std::move(round));
    }
    std::vector<double> direct_rate, drain_rate, ratio, direct_ms, queued_ms;
    const double total = static_cast<double>(count) * size;
    for (const auto& round : all) {
        direct_rate.push_back(total / round.direct_s);
        drain_rate.push_back(total / round.drain_s);
        ratio.push_back(round.direct_s / round.drain_s);
        direct_ms.insert(direct_ms.end(), round.direct_ms.begin(), round.direct_ms.end());
        queued_ms.insert(queued_ms.end(), round.queued_ms.begin(), round.queued_ms.end());
    }
    std::printf("write latency  direct to a healthy server: p50 %.3f ms, p99 %.3f ms\n",
                bench::percentile(direct_ms, 0.5), bench::percentile(direct_ms, 0.99));
    std::printf("write latency  queued in the outbox (fsync): p50 %.3f ms, p99 %.3f ms "
                "(%.2fx / %.2fx direct)\n",
                bench::percentile(queued_ms, 0.5), bench::percentile(queued_ms, 0.99),
                bench::percentile(queued_ms, 0.5) / bench::percentile(direct_ms, 0.5),
                bench::percentile(queued_ms, 0.99) / bench::percentile(direct_ms, 0.99));
    auto [lo, hi] = std::minmax_element(ratio.begin(), ratio.end());
    std::printf("throughput     direct writes: %.0f statuses/s; drain: %.0f statuses/s (medians); "
                "drain/direct per round: median %.2fx, %.2f-%.2fx (target >= 1x: %s)\n",
                bench::percentile(direct_rate, 0.5), bench::percentile(drain_rate, 0.5),
                bench::percentile(ratio, 0.5), *lo, *hi,
                bench::percentile(ratio, 0.5) >= 1 ? "met" : "missed");
    return whole ? 0 : 1;
}
