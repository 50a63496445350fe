// SPDX-License-Identifier: MIT
// What modelrepo costs as the catalogue and the writers grow (issue 20), each figure beside
// a peer measured in the same run, in alternating rounds:
//
//   writers   8 pgbench clients UPDATE model_status (on distinct rows, then all on the same
//             8 rows) on three databases of one server: "plain" (schema 1, no change
//             feed: the peer), "feed" (this modelrepo's schema, a watch() following it)
//             and "schema 2" (the feed before issue 20: one version row, a NOTIFY per
//             change; a LISTEN session following it). With fsync off (the harness's
//             default) and on (what a database server runs with).
//   apply     one change applied to an in-memory copy of the catalogue (what the live
//             copy does per change: a model row re-read, or a status): time per change,
//             in this process, beside the same edit at 32 models.
//
// usage: bench_scale [SECONDS_PER_ROUND=5] [ROUNDS=3] [SIZES=32,10000,100000]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <poll.h>

#include <modelrepo/modelrepo.hpp>

#include "memory/catalog.hpp"
#include "peers.hpp"
#include "pg_server.hpp"
#include "postgres/schema.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;
namespace test = modelrepo::test;

namespace {

const std::string password = "bench-Scale-Pw-2718";

/// A catalogue of `n` models (slugs m1 … mN) under 10 providers, each with a status.
Snapshot catalogue(int n) {
    Snapshot s;
    for (int p = 0; p < 10; ++p)
        s.providers.push_back({"p" + std::to_string(p), "Provider " + std::to_string(p), ""});
    auto now = system_clock::now();
    for (int i = 1; i <= n; ++i) {
        Model m;
        m.slug = "m" + std::to_string(i);
        m.name = "Model " + std::to_string(i);
        m.provider_slug = "p" + std::to_string(i % 10);
        m.description = "a model of the benchmark's catalogue";
        m.context_window = 128'000;
        s.models.push_back(std::move(m));
        ModelStatus st;
        st.model_slug = "m" + std::to_string(i);
        st.health = Health::operational;
        st.availability = 0.99;
        st.latency_ms = 120;
        st.error_rate = 0.01;
        st.region = "eu-west";
        st.checked_at = now;
        s.statuses.push_back(std::move(st));
    }
    return s;
}

/// Database `db` at schema `version` (the migrations up to it), owned by "app", holding
/// `snapshot`.
bool make_database(test::PgServer& server, const std::string& db, int version,
                   const Snapshot& snapshot) {
    server.psql("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    server.psql("CREATE DATABASE " + db + " OWNER app");
    std::string sql = "SET ROLE app; CREATE TABLE schema_migrations (version integer PRIMARY "
                      "KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());";
    for (const auto& m : detail::migrations())
        if (m.version <= version)
            sql += std::string(m.sql) + "; INSERT INTO schema_migrations (version, name) VALUES (" +
                   std::to_string(m.version) + ", 'bench');";
    server.psql(sql, db);
    auto repo = PostgresRepository::open(
        server.url("app", password, db, "127.0.0.1", "socket_timeout=600"));
    if (!repo) {
        std::fprintf(stderr, "%s\n", repo.error().to_string().c_str());
        return false;
    }
    if (auto imported = repo.value()->import_snapshot(snapshot); !imported) {
        std::fprintf(stderr, "import into %s: %s\n", db.c_str(),
                     imported.error().to_string().c_str());
        return false;
    }
    server.psql("VACUUM ANALYZE", db);
    return true;
}

/// pgbench, 8 clients, each UPDATE one status: on rows of its own (`distinct`), or all
/// on the same 8 rows. Transactions per second, 0 on failure.
double writers_tps(const test::PgServer& server, const test::TempDir& dir, const std::string& db,
                   int models, bool distinct, int seconds) {
    // Client c writes rows c+1, c+9, c+17, …: no two clients share a row.
    std::string pick = distinct ? "\\set id 1 + :client_id + 8 * random(0, " +
                                      std::to_string(std::max(models / 8 - 1, 0)) + ")\n"
                                : "\\set id random(1, 8)\n";
    auto file = dir.write("writers.sql", pick + "UPDATE model_status SET availability = "
                                                "random(), checked_at = now() WHERE model_slug "
                                                "= 'm' || :id;\n");
    return bench::pgbench_file_tps(server, file, db, "app", password, 8, 2, seconds);
}

/// A plain libpq session that LISTENs on schema 2's channel and reads what comes: the
/// follower of the old feed (this modelrepo does not read schema 2).
class Listener {
public:
    Listener(const std::string& conninfo)
        : thread_([this, conninfo] { run(conninfo); }) {}
    ~Listener() {
        stop_ = true;
        thread_.join();
    }
    long received() const { return received_; }

private:
    void run(const std::string& conninfo) {
        PGconn* c = PQconnectdb(conninfo.c_str());
        PQclear(PQexec(c, "LISTEN \"modelrepo:public\""));
        while (!stop_ && PQstatus(c) == CONNECTION_OK) {
            pollfd fd{PQsocket(c), POLLIN, 0};
            if (::poll(&fd, 1, 100) > 0) {
                PQconsumeInput(c);
                while (PGnotify* n = PQnotifies(c)) {
                    ++received_;
                    PQfreemem(n);
                }
            }
        }
        PQfinish(c);
    }
    std::atomic<bool> stop_{false};
    std::atomic<long> received_{0};
    std::thread thread_;
};

struct Row {
    std::string work;
    double feed = 0, plain = 0, before = 0;
};

void print_row(const Row& r) {
    std::printf("%-44s %10.0f %10.0f %10.0f %8.2fx %8.2fx\n", r.work.c_str(), r.feed, r.plain,
                r.before, r.plain > 0 ? r.feed / r.plain : 0, r.plain > 0 ? r.before / r.plain : 0);
}

/// One change applied to a copy of `snapshot`'s catalogue, as the live copy applies it:
/// a model row re-read (with_models), and a status alone (with_statuses).
std::pair<double, double> apply_us(const Snapshot& snapshot) {
    auto catalog = detail::build_catalog(snapshot);
    std::shared_ptr<const detail::Catalog> current = catalog;
    const int n = static_cast<int>(snapshot.models.size());
    auto now = system_clock::now();
    int k = 0; // every call a change not made before
    int i = 0;
    double model_ns = bench::ns_per_call(500, [&] {
        ++i;
        Model m = snapshot.models[static_cast<std::size_t>(i * 7919 % n)];
        m.description = "changed " + std::to_string(++k);
        auto edit = detail::with_models(*current, std::span<const Model>(&m, 1), {});
        if (edit.next)
            current = std::move(edit.next);
    });
    double status_ns = bench::ns_per_call(500, [&] {
        ++i;
        ModelStatus st = snapshot.statuses[static_cast<std::size_t>(i * 7919 % n)];
        st.availability = 0.5;
        st.checked_at = now + microseconds(++k);
        auto edit = detail::with_statuses(*current, std::span<const ModelStatus>(&st, 1));
        if (edit.next)
            current = std::move(edit.next);
    });
    return {model_ns / 1000, status_ns / 1000};
}

std::vector<int> parse_sizes(const char* text) {
    std::vector<int> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ','))
        out.push_back(std::atoi(item.c_str()));
    return out;
}

} // namespace

int main(int argc, char** argv) {
    test::report_with_doctest = false;
    int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    std::vector<int> sizes = parse_sizes(argc > 3 ? argv[3] : "32,10000,100000");
    test::PgServer server;
    if (!server.available()) {
        std::fprintf(stderr, "no PostgreSQL: %s\n", server.why().c_str());
        return 1;
    }
    server.create_role("app", password, "modelrepo");
    test::TempDir dir;
    std::printf("bench_scale: %d s per round, %d rounds alternating (feed, plain, schema 2); "
                "PostgreSQL 15 on loopback; %u cores\n",
                seconds, rounds, std::thread::hardware_concurrency());
    if (std::getenv("BENCH_SCALE_APPLY_ONLY")) {
        auto [small_model_us, small_status_us] = apply_us(catalogue(32));
        for (int models : sizes) {
            auto [model_us, status_us] = apply_us(catalogue(models));
            std::printf("%d models: one change applied: a model row %.2f us (%.1fx 32 models), "
                        "a status %.2f us (%.1fx)\n",
                        models, model_us, model_us / small_model_us, status_us,
                        status_us / small_status_us);
        }
        return 0;
    }
    auto [small_model_us, small_status_us] = apply_us(catalogue(32));
    for (int models : sizes) {
        Snapshot snapshot = catalogue(models);
        auto [model_us, status_us] = apply_us(snapshot);
        std::printf("\n%d models: applying one change to the copy: a model row %.2f us (32 "
                    "models: %.2f us, %.1fx), a status %.2f us (32 models: %.2f us, %.1fx)\n",
                    models, model_us, small_model_us, model_us / small_model_us, status_us,
                    small_status_us, status_us / small_status_us);
        if (!make_database(server, "plain", 1, snapshot) ||
            !make_database(server, "feed", detail::sql::feed_schema_version, snapshot) ||
            !make_database(server, "before", 2, snapshot))
            return 1;
        // The followers: a watch() on the feed, a LISTEN session on schema 2.
        auto repo = PostgresRepository::open(server.url("app", password, "feed")).value();
        std::atomic<long> seen{0};
        std::optional<Subscription> sub;
        if (!std::getenv("BENCH_SCALE_NO_FOLLOWER"))
            sub = repo->watch([&](const CatalogChange&) { ++seen; }).value();
        Listener listener("host=127.0.0.1 port=" + std::to_string(server.port()) +
                          " user=app dbname=before password=" + password);
        std::this_thread::sleep_for(500ms);

        std::printf("%d models\n%-44s %10s %10s %10s %9s %9s\n", models, "work (tps)", "feed",
                    "plain", "schema 2", "feed/pl", "s2/pl");
        for (bool fsync : {false, true}) {
            server.psql(std::string("ALTER SYSTEM SET fsync = ") + (fsync ? "on" : "off"));
            server.psql("SELECT pg_reload_conf()");
            for (bool distinct : {true, false}) {
                std::vector<double> feed, plain, before;
                for (int r = 0; r < rounds; ++r) {
                    // Who goes first turns with the round.
                    std::vector<std::pair<const char*, std::vector<double>*>> order{
                        {"feed", &feed}, {"plain", &plain}, {"before", &before}};
                    std::rotate(order.begin(), order.begin() + r % 3, order.end());
                    for (auto& [db, out] : order)
                        out->push_back(writers_tps(server, dir, db, models, distinct, seconds));
                }
                Row row{std::string("8 writers, ") +
                            (distinct ? "distinct rows" : "the same 8 rows") +
                            (fsync ? ", fsync on" : ", fsync off"),
                        bench::percentile(feed, 0.5), bench::percentile(plain, 0.5),
                        bench::percentile(before, 0.5)};
                print_row(row);
                std::fflush(stdout);
            }
        }
        server.psql("ALTER SYSTEM RESET fsync");
        server.psql("SELECT pg_reload_conf()");
        std::printf("(followers: watch() saw %ld changes, the schema 2 listener %ld "
                    "notifications)\n",
                    seen.load(), listener.received());
        for (const auto& family : repo->backend_metrics())
            if (family.name.starts_with("modelrepo_feed_") && !family.samples.empty())
                std::printf("  %s %.0f\n", family.name.c_str(), family.samples[0].value);
    }
    return 0;
}
