// SPDX-License-Identifier: MIT
// What following the catalogue's changes costs its writers (issue 35): 8 pgbench clients
// UPDATE model_status on distinct rows of a 10,000-model catalogue, on three databases of
// one PostgreSQL 15 (wal_level = logical), in alternating rounds:
//
//   plain     schema 1: no change feed at all (the peer)
//   triggers  this modelrepo's trigger feed (row triggers, the change log), followed by a
//             watch()
//   logical   schema 1 in a publication, followed by a pgoutput reader on a temporary slot
//             (src/postgres/logical: WalStream + PgoutputDecoder) that decodes every change
//             and confirms each transaction as it commits
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
#include "postgres/logical/wal_stream.hpp"

using namespace modelrepo;
using namespace modelrepo::detail::logical;
using namespace std::chrono;
namespace test = modelrepo::test;

namespace {

/// A pgoutput reader on a temporary slot of `url`'s database, on a thread of its own,
/// decoding every change and confirming each commit.
class LogicalFollower {
public:
    explicit LogicalFollower(const std::string& url) {
        auto stream = WalStream::connect(url, 5s);
        if (!stream) {
            std::fprintf(stderr, "logical follower: %s\n", stream.error().message.c_str());
            std::exit(1);
        }
        stream_ = std::move(stream).value();
        auto slot = stream_->create_slot("bench_logical", true);
        if (!slot ||
            !stream_->start("bench_logical", slot.value().consistent_point, "modelrepo_bench")) {
            std::fprintf(stderr, "logical follower: could not start\n");
            std::exit(1);
        }
        thread_ = std::thread([this] { run(); });
    }
    ~LogicalFollower() {
        stop_ = true;
        thread_.join();
    }
    long changes() const { return changes_.load(); }
    long commits() const { return commits_.load(); }

private:
    void run() {
        PgoutputDecoder decoder;
        while (!stop_) {
            auto next = stream_->next(100ms);
            if (!next) {
                std::fprintf(stderr, "logical follower: %s\n", next.error().message.c_str());
                return;
            }
            if (!next.value())
                continue;
            if (auto* k = std::get_if<Keepalive>(&*next.value())) {
                if (k->reply_requested)
                    (void)stream_->confirm(stream_->confirmed());
                continue;
            }
            auto message = decoder.decode(std::get<XLogData>(*next.value()).payload);
            if (!message) {
                std::fprintf(stderr, "logical follower: %s\n", message.error().message.c_str());
                return;
            }
            if (std::holds_alternative<Change>(message.value()))
                ++changes_;
            else if (auto* c = std::get_if<Commit>(&message.value())) {
                ++commits_;
                (void)stream_->confirm(c->end_lsn);
            }
        }
    }

    std::unique_ptr<WalStream> stream_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<long> changes_{0}, commits_{0};
};

} // namespace

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
        !bench::make_database(server, "logical", 1, snapshot))
        return 1;
    server.psql("CREATE PUBLICATION modelrepo_bench FOR TABLE providers, models, model_status",
                "logical");
    auto repo = PostgresRepository::open(server.url("app", bench::password, "triggers")).value();
    std::atomic<long> seen{0};
    auto sub = repo->watch([&](const CatalogChange&) { ++seen; }).value();
    LogicalFollower logical(server.url("app", bench::password, "logical"));
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
    std::printf("(followers: watch() on the triggers saw %ld changes; the logical reader "
                "decoded %ld changes in %ld transactions)\n",
                seen.load(), logical.changes(), logical.commits());
    return 0;
}
