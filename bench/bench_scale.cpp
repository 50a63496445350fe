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
//   serve     `modelrepo --source "feed…&cache=live" serve`: GET /v1/models whole (curl)
//             beside Debian's nginx serving the same bytes from a file; serve's RSS when
//             ready and after 5 full lists; wrk on /v1/models?slug=…×5 beside nginx; what
//             gzip would cost the full list; an UPDATE -> SSE event at 10 and 1,000
//             /v1/changes clients (10,000 at the largest size) beside a bare libpq LISTEN
//             client on schema 2's NOTIFY. With BENCH_SCALE_BEFORE=CLI (an older build's
//             modelrepo, on the schema 2 database) the same figures for it, alternating.
//
// usage: bench_scale [SECONDS_PER_ROUND=5] [ROUNDS=3] [SIZES=32,10000,100000]
//   import    `import` of the whole catalogue over itself beside psql \copy of the same
//             rows (into the plain database), the live copy's resync after it, and the
//             copy's file (cache_dir) read beside the database.
// BENCH_SCALE_APPLY_ONLY, BENCH_SCALE_SERVE_ONLY: only those parts (with import unless
// BENCH_SCALE_NO_IMPORT; with BENCH_SCALE_IMPORT_ONLY, import alone); BENCH_SCALE_NO_SSE:
// serve without the change streams; BENCH_SCALE_ONE_CLIENT_ONLY: of the streams, only the
// one-client row (with BENCH_SCALE_FEED=logical: serve against a bare slot client).
// BENCH_SCALE_FEED=logical: the "feed" database migrated with feed=logical (a publication,
// no triggers), so that its followers (watch(), serve's copy on the default feed=auto)
// read it by logical decoding.
#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <poll.h>

#include <modelrepo/modelrepo.hpp>

#include "bench_catalogue.hpp"
#include "http_peers.hpp"
#include "index/catalog.hpp"
#include "peers.hpp"
#include "pg_server.hpp"
#include "postgres/catalog/schema.hpp"
#include "temp_dir.hpp"

using namespace modelrepo;
using namespace std::chrono;
namespace test = modelrepo::test;

namespace {

using bench::catalogue;
using bench::make_database;
using bench::password;
using bench::writers_tps;

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
    /// Waits until more than `seen` notifications have arrived (at most 10 s): when the
    /// one after `seen` arrived, or nullopt.
    std::optional<steady_clock::time_point> wait_past(long seen) {
        std::unique_lock lock(mutex_);
        if (!arrived_.wait_for(lock, 10s, [&] { return received_ > seen; }))
            return std::nullopt;
        return last_;
    }

private:
    void run(const std::string& conninfo) {
        PGconn* c = PQconnectdb(conninfo.c_str());
        PQclear(PQexec(c, "LISTEN \"modelrepo:public\""));
        while (!stop_ && PQstatus(c) == CONNECTION_OK) {
            pollfd fd{PQsocket(c), POLLIN, 0};
            if (::poll(&fd, 1, 100) > 0) {
                PQconsumeInput(c);
                while (PGnotify* n = PQnotifies(c)) {
                    {
                        std::lock_guard lock(mutex_);
                        ++received_;
                        last_ = steady_clock::now();
                    }
                    arrived_.notify_all();
                    PQfreemem(n);
                }
            }
        }
        PQfinish(c);
    }
    std::atomic<bool> stop_{false};
    std::mutex mutex_; ///< guards last_; received_ changes under it
    std::condition_variable arrived_;
    std::atomic<long> received_{0};
    steady_clock::time_point last_{};
    std::thread thread_;
};

/// The logical feed's bare peer: a minimal libpq loop of the slot protocol, no modelrepo
/// code. A `replication=database` session makes a temporary pgoutput slot on the
/// catalogue's publication, START_REPLICATION, and reads XLogData, counting each
/// transaction's Commit message ('C') as it arrives; it answers the server's keepalives.
class SlotListener {
public:
    explicit SlotListener(const std::string& conninfo)
        : thread_([this, conninfo] { run(conninfo); }) {}
    ~SlotListener() {
        stop_ = true;
        thread_.join();
    }
    bool streaming() const { return streaming_; }
    long received() const { return received_; }
    /// When the commit after `seen` arrived (at most 10 s), or nullopt.
    std::optional<steady_clock::time_point> wait_past(long seen) {
        std::unique_lock lock(mutex_);
        if (!arrived_.wait_for(lock, 10s, [&] { return received_ > seen; }))
            return std::nullopt;
        return last_;
    }

private:
    static void put64(std::string& out, std::uint64_t v) {
        for (int i = 7; i >= 0; --i)
            out += static_cast<char>((v >> (8 * i)) & 0xff);
    }
    void run(const std::string& conninfo) {
        PGconn* c = PQconnectdb((conninfo + " replication=database").c_str());
        PGresult* r =
            PQexec(c, "CREATE_REPLICATION_SLOT bench_slot_peer TEMPORARY LOGICAL pgoutput");
        bool made = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        r = PQexec(c, "START_REPLICATION SLOT bench_slot_peer LOGICAL 0/0 (proto_version '1', "
                      "publication_names 'modelrepo_catalogue')");
        streaming_ = made && PQresultStatus(r) == PGRES_COPY_BOTH;
        PQclear(r);
        if (!streaming_)
            std::fprintf(stderr, "slot peer: %s", PQerrorMessage(c));
        std::uint64_t end = 0;
        while (!stop_ && streaming_) {
            char* buf = nullptr;
            int n = PQgetCopyData(c, &buf, 1);
            if (n == 0) {
                pollfd fd{PQsocket(c), POLLIN, 0};
                ::poll(&fd, 1, 100);
                PQconsumeInput(c);
                continue;
            }
            if (n < 0)
                break;
            bool reply = false;
            if (buf[0] == 'w' && n > 25) {
                std::uint64_t wal_end = 0;
                for (int i = 9; i < 17; ++i)
                    wal_end = (wal_end << 8) | static_cast<unsigned char>(buf[i]);
                end = std::max(end, wal_end);
                if (buf[25] == 'C') {
                    {
                        std::lock_guard lock(mutex_);
                        ++received_;
                        last_ = steady_clock::now();
                    }
                    arrived_.notify_all();
                }
            } else if (buf[0] == 'k' && n >= 18) {
                reply = buf[17] != 0;
            }
            PQfreemem(buf);
            if (reply) { // a standby status update: all of it applied
                std::string update(1, 'r');
                for (int i = 0; i < 3; ++i)
                    put64(update, end);
                put64(update, 0);
                update += '\0';
                PQputCopyData(c, update.data(), static_cast<int>(update.size()));
                PQflush(c);
            }
        }
        PQfinish(c);
    }
    std::atomic<bool> stop_{false};
    std::atomic<bool> streaming_{false};
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::atomic<long> received_{0};
    steady_clock::time_point last_{};
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

struct Figures {
    std::string work;
    double ours = 0, peer = 0, before = 0; ///< before 0: not measured
    const char* unit = "";
};

void print_figures(const Figures& f) {
    std::printf("  %-46s %10.2f %10.2f %10.2f %-4s %8.2fx %8.2fx\n", f.work.c_str(), f.ours, f.peer,
                f.before, f.unit, f.peer > 0 ? f.ours / f.peer : 0,
                f.before > 0 ? f.ours / f.before : 0);
    std::fflush(stdout);
}

/// psql's \copy of `snapshot`'s rows, in one transaction over what is there, into the
/// plain database (no change feed): the peer of an import. Milliseconds.
double copy_ms(const test::PgServer& server, const test::TempDir& dir, const Snapshot& snapshot) {
    // Text quoted: an empty unquoted field is NULL to COPY. (The benchmark's text has no
    // quotes of its own.)
    auto q = [](const std::string& text) { return "\"" + text + "\""; };
    std::string providers, models, statuses;
    for (const Provider& p : snapshot.providers)
        providers += q(p.slug) + "," + q(p.name) + "," + q(p.website) + "\n";
    for (const Model& m : snapshot.models)
        models += q(m.slug) + "," + q(m.name) + "," + q(m.provider_slug) + "," + q(m.description) +
                  "," + (m.context_window ? std::to_string(*m.context_window) : "") + "," +
                  (m.active ? "t" : "f") + "\n";
    for (const ModelStatus& st : snapshot.statuses)
        statuses += q(st.model_slug) + "," + std::string(to_string(st.health)) + "," +
                    std::to_string(st.availability) + "," +
                    (st.latency_ms ? std::to_string(*st.latency_ms) : "") + "," +
                    std::to_string(st.error_rate) + "," + q(st.region) + "," +
                    format_timestamp(st.checked_at) + "\n";
    auto p = dir.write("providers.csv", providers);
    auto m = dir.write("models.csv", models);
    auto st = dir.write("statuses.csv", statuses);
    auto script = dir.write(
        "copy.sql",
        "BEGIN;\nDELETE FROM model_status; DELETE FROM models; DELETE FROM providers;\n"
        "\\copy providers (slug, name, website) FROM '" +
            p.string() +
            "' WITH (FORMAT csv)\n"
            "\\copy models (slug, name, provider_slug, description, context_window, active) "
            "FROM '" +
            m.string() +
            "' WITH (FORMAT csv)\n"
            "\\copy model_status (model_slug, health, availability, latency_ms, error_rate, "
            "region, checked_at) FROM '" +
            st.string() + "' WITH (FORMAT csv)\nCOMMIT;\n");
    auto from = steady_clock::now();
    server.psql("\\i " + script.string(), "plain");
    return duration<double, std::milli>(steady_clock::now() - from).count();
}

/// `modelrepo import` of `snapshot` over what is there (the feed's database, a live copy
/// following it) beside psql \copy; the copy's resync after each import (from the import's
/// return to the copy's resync event, the whole catalogue read again); and loading the
/// copy's file (what a start with cache_dir reads) beside reading the database.
void import_rows(test::PgServer& server, const test::TempDir& dir, Snapshot snapshot, int rounds) {
    auto copy = open(server.url("app", password, "feed", "127.0.0.1", "cache=live")).value();
    auto importer = PostgresRepository::open(
                        server.url("app", password, "feed", "127.0.0.1", "socket_timeout=600"))
                        .value();
    std::mutex mutex;
    std::condition_variable resynced;
    long resyncs = 0;
    auto sub = copy->watch([&](const CatalogChange& change) {
                       if (change.kind != CatalogChange::Kind::resync)
                           return;
                       std::lock_guard lock(mutex);
                       ++resyncs;
                       resynced.notify_all();
                   })
                   .value();
    std::this_thread::sleep_for(1s);
    std::printf("%zu models, import (ours | psql \\copy | -; ours/peer)\n", snapshot.models.size());
    std::vector<double> imports, copies, resync_ms;
    for (int r = 0; r < rounds; ++r) {
        for (Model& m : snapshot.models)
            m.description = "round " + std::to_string(r);
        if (r % 2 == 1)
            copies.push_back(copy_ms(server, dir, snapshot));
        long seen = 0;
        {
            std::lock_guard lock(mutex);
            seen = resyncs;
        }
        auto from = steady_clock::now();
        auto done = importer->import_snapshot(snapshot);
        auto imported = steady_clock::now();
        if (!done) {
            std::fprintf(stderr, "import: %s\n", done.error().to_string().c_str());
            return;
        }
        imports.push_back(duration<double, std::milli>(imported - from).count());
        std::unique_lock lock(mutex);
        if (resynced.wait_for(lock, 60s, [&] { return resyncs > seen; }))
            resync_ms.push_back(
                duration<double, std::milli>(steady_clock::now() - imported).count());
        lock.unlock();
        if (r % 2 == 0)
            copies.push_back(copy_ms(server, dir, snapshot));
    }
    const std::size_t n = snapshot.models.size();
    print_figures({"import " + std::to_string(n) + " over " + std::to_string(n) + " (ms)",
                   bench::percentile(imports, 0.5), bench::percentile(copies, 0.5), 0, "ms"});
    print_figures(
        {"the copy's resync after it (ms)", bench::percentile(resync_ms, 0.5), 0, 0, "ms"});
    // The copy's file against the database: each read whole and built into a catalogue.
    auto file = dir.path() / "copy.json";
    write_snapshot_file(snapshot, file).value();
    std::vector<double> from_file, from_db;
    for (int r = 0; r < rounds; ++r) {
        auto a = steady_clock::now();
        auto read = read_snapshot_file(file);
        auto built = detail::build_catalog(read.value());
        auto b = steady_clock::now();
        auto exported = importer->export_snapshot();
        auto built_db = detail::build_catalog(exported.value());
        auto c = steady_clock::now();
        from_file.push_back(duration<double, std::milli>(b - a).count());
        from_db.push_back(duration<double, std::milli>(c - b).count());
    }
    print_figures({"load the copy: its file vs the database (ms)",
                   bench::percentile(from_file, 0.5), bench::percentile(from_db, 0.5), 0, "ms"});
}

/// A serve process and its port (-1: it did not start or load the catalogue).
struct Served {
    std::unique_ptr<test::ChildProcess> process;
    int port = -1;
};

/// `cli --source url serve` on a free port, once /v1/stats counts `models` models. The
/// limits are given to this build only (an older one may not take them).
Served start_serve(const std::string& cli, const std::string& url, int models, bool limits) {
    std::vector<std::string> argv{cli, "--source", url, "serve", "--listen", "127.0.0.1:0"};
    if (limits)
        argv.insert(argv.end(), {"--max-connections", "19000", "--max-streams", "10500"});
    Served served;
    served.process = std::make_unique<test::ChildProcess>(argv);
    int port = bench::wait_port(*served.process, "listening on http://");
    std::string want = "\"models\":" + std::to_string(models) + ",";
    for (auto until = steady_clock::now() + 300s; port > 0 && steady_clock::now() < until;) {
        if (bench::body_of(port, "/v1/stats").find(want) != std::string::npos) {
            served.port = port;
            break;
        }
        std::this_thread::sleep_for(200ms);
    }
    if (served.port < 0)
        std::fprintf(stderr, "%s did not serve %d models: %s\n", cli.c_str(), models,
                     served.process->err().c_str());
    return served;
}

/// Median of `rounds` calls of `measure` for each of the three (peer, ours, before), their
/// order turning with the round; `before` skipped when its port is < 0.
std::array<double, 3> alternate(int rounds, int ours, int peer, int before,
                                const std::function<double(int port)>& measure) {
    std::array<std::vector<double>, 3> got;
    std::array<int, 3> ports{ours, peer, before};
    for (int r = 0; r < rounds; ++r)
        for (int k = 0; k < 3; ++k) {
            int who = (k + r) % 3;
            if (ports[static_cast<std::size_t>(who)] > 0)
                got[static_cast<std::size_t>(who)].push_back(
                    measure(ports[static_cast<std::size_t>(who)]));
        }
    return {bench::percentile(got[0], 0.5), bench::percentile(got[1], 0.5),
            got[2].empty() ? 0 : bench::percentile(got[2], 0.5)};
}

/// What gzip -1 and -6 cost `bytes` (a full list): ms to compress, and the size left.
void gzip_figures(const test::TempDir& dir, const std::string& bytes, double fetch_ms) {
    auto file = dir.write("list.json", bytes);
    for (const char* level : {"-1", "-6"}) {
        auto from = steady_clock::now();
        auto r = test::run_process(
            {"sh", "-c", std::string("gzip ") + level + " -c '" + file.string() + "' | wc -c"}, {},
            120s);
        double ms = duration<double, std::milli>(steady_clock::now() - from).count();
        double out = std::atof(r.out.c_str());
        std::printf("  gzip %s of the %.1f MB list: %.0f ms (the whole uncompressed fetch: %.0f "
                    "ms), %.1f MB (%.1f%%): pays only on a link slower than %.0f Mbit/s\n",
                    level, bytes.size() / 1e6, ms, fetch_ms, out / 1e6, 100 * out / bytes.size(),
                    ms > 0 ? (bytes.size() - out) * 8 / (ms / 1000) / 1e6 : 0);
    }
}

/// UPDATE -> event figures: serve's clients (p50, p99) and the LISTEN peer (p50).
struct Latency {
    double p50 = 0, p99 = 0;
    std::size_t delivered = 0;
};

Latency latency_of(const std::vector<double>& arrivals) {
    return {bench::percentile(arrivals, 0.5), bench::percentile(arrivals, 0.99), arrivals.size()};
}

std::vector<double> sse_arrivals(int port, const std::string& conninfo, int clients, int changes) {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    auto arrivals = bench::fan_out(
        port, clients, changes,
        [&](int c) {
            std::string sql =
                "UPDATE model_status SET availability = " + std::to_string(0.5 + c / 1000.0) +
                " WHERE model_slug = 'm1'";
            PQclear(PQexec(conn, sql.c_str()));
        },
        [](int) { return std::string("\"slug\":\"m1\""); });
    PQfinish(conn);
    return arrivals;
}

Latency sse_latency(int port, const std::string& conninfo, int clients, int changes) {
    return latency_of(sse_arrivals(port, conninfo, clients, changes));
}

/// The fan-out peer: POST to nchan until each of its EventSource subscribers has the
/// message (an event of the size of serve's).
std::vector<double> nchan_arrivals(bench::Nchan& nchan, int clients, int changes) {
    auto message = [](int c) {
        return "{\"kind\":\"status\",\"slug\":\"m1\",\"version\":" + std::to_string(1000 + c) +
               ",\"at\":\"2026-12-07T05:53:51.123456Z\"}";
    };
    return bench::fan_out(
        nchan.port(), clients, changes,
        [&](int c) {
            if (!nchan.publish(message(c)))
                std::fprintf(stderr, "nchan: publish %d failed\n", c);
        },
        [](int c) { return "\"version\":" + std::to_string(1000 + c) + ","; },
        bench::nchan_stream());
}

/// The floor: the same message send()s to every client from one thread, no server.
std::vector<double> raw_arrivals(int clients, int changes) {
    bench::RawFanOut raw;
    auto message = [](int c) {
        return "data: {\"kind\":\"status\",\"slug\":\"m1\",\"version\":" +
               std::to_string(1000 + c) + ",\"at\":\"2026-12-07T05:53:51.123456Z\"}\n\n";
    };
    return bench::fan_out(
        raw.port(), clients, changes, [&](int c) { raw.publish(message(c)); },
        [](int c) { return "\"version\":" + std::to_string(1000 + c) + ","; });
}

struct FanOutFigures {
    Latency ours, nchan, floor;
};

/// serve's fan-out against nchan's and the floor's at `clients`, alternating `rounds`
/// times: serve's UPDATE -> event (the database's commit and the feed included), nchan's
/// POST -> event, the floor's hand-over -> event, each pooled over the rounds.
FanOutFigures fan_out_against_peers(int port, const std::string& conninfo, bench::Nchan& nchan,
                                    int clients, int changes, int rounds) {
    std::vector<double> ours, peer, floor;
    auto add = [](std::vector<double>& to, const std::vector<double>& from) {
        to.insert(to.end(), from.begin(), from.end());
    };
    for (int r = 0; r < rounds; ++r) {
        add(ours, sse_arrivals(port, conninfo, clients, changes));
        add(peer, nchan_arrivals(nchan, clients, changes));
        add(floor, raw_arrivals(clients, changes));
    }
    return {latency_of(ours), latency_of(peer), latency_of(floor)};
}

/// A bare peer's arrivals: an UPDATE of `slug`'s status (availability from `base` up)
/// until `peer` (a Listener or a SlotListener) has heard it, `pause` between changes.
/// Milliseconds, one per change heard.
template <class Peer>
std::vector<double> peer_arrivals(Peer& peer, const std::string& conninfo, int changes,
                                  const char* slug, double base, milliseconds pause) {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    std::vector<double> took;
    for (int c = 0; c < changes; ++c) {
        long seen = peer.received();
        auto sent = steady_clock::now();
        std::string sql =
            "UPDATE model_status SET availability = " + std::to_string(base + c / 1000.0) +
            " WHERE model_slug = '" + slug + "'";
        PQclear(PQexec(conn, sql.c_str()));
        if (auto at = peer.wait_past(seen))
            took.push_back(duration<double, std::milli>(*at - sent).count());
        std::this_thread::sleep_for(pause);
    }
    PQfinish(conn);
    return took;
}

/// The bare peer: an UPDATE on schema 2's database (its trigger NOTIFYs) until a libpq
/// session LISTENing there has the notification.
double listen_p50(Listener& listener, const std::string& conninfo, int changes) {
    return bench::percentile(peer_arrivals(listener, conninfo, changes, "m1", 0.5, 50ms), 0.5);
}

/// The slot peer: an UPDATE on the feed's database until the bare slot client has its
/// commit. Milliseconds, one per change. Paced as fan_out paces serve's (50 ms between
/// changes): with 20 ms the peer's own UPDATE returned 0.2 ms sooner than serve's rounds'
/// (0.53 against 0.75 ms, traced), a machine kept warmer, not a faster client.
std::vector<double> slot_arrivals(SlotListener& peer, const std::string& conninfo, int changes) {
    return peer_arrivals(peer, conninfo, changes, "m2", 0.25, 50ms);
}

/// The serve rows at `models` models, over the "feed" database (and "before", schema 2,
/// for an older build).
void serve_rows(test::PgServer& server, const test::TempDir& dir, int models, int seconds,
                int rounds, bool largest) {
    auto conninfo = [&](const char* db) {
        return "host=127.0.0.1 port=" + std::to_string(server.port()) + " user=app dbname=" + db +
               " password=" + password;
    };
    Served ours =
        start_serve(MODELREPO_CLI_PATH,
                    server.url("app", password, "feed", "127.0.0.1", "cache=live"), models, true);
    const char* before_cli = std::getenv("BENCH_SCALE_BEFORE");
    Served before;
    if (before_cli && *before_cli)
        before = start_serve(before_cli,
                             server.url("app", password, "before", "127.0.0.1", "cache=live"),
                             models, false);
    if (ours.port < 0)
        return;
    // Settled: the copy's first load and the feed's resync after it (a second load) are
    // done and their garbage freed before "ready" is sampled.
    std::this_thread::sleep_for(3s);
    long ready_kib = bench::rss_kib(ours.process->pid());
    long before_ready_kib = before.port > 0 ? bench::rss_kib(before.process->pid()) : 0;
    test::TempDir www;
    bench::Nginx nginx(www);
    std::string list = bench::body_of(ours.port, "/v1/models");
    nginx.put("/v1/models", list);
    std::string five_path = "/v1/models?slug=m1&slug=m2&slug=m3&slug=m4&slug=m5";
    nginx.put("/v1/five", bench::body_of(ours.port, five_path));
    for (int i = 0; i < 5; ++i) { // the first five full lists
        bench::fetch("http://127.0.0.1:" + std::to_string(ours.port) + "/v1/models");
        if (before.port > 0)
            bench::fetch("http://127.0.0.1:" + std::to_string(before.port) + "/v1/models");
    }
    long listed_kib = bench::rss_kib(ours.process->pid());
    long before_listed_kib = before.port > 0 ? bench::rss_kib(before.process->pid()) : 0;
    std::printf("%d models, serve (ours | nginx or LISTEN peer | before; ours/peer, "
                "ours/before)\n",
                models);
    auto whole = alternate(rounds, ours.port, nginx.port(), before.port, [&](int port) {
        return bench::fetch("http://127.0.0.1:" + std::to_string(port) + "/v1/models").first;
    });
    print_figures({"GET /v1/models whole, " + std::to_string(list.size() / 1000) + " kB (ms)",
                   whole[0], whole[1], whole[2], "ms"});
    print_figures(
        {"serve RSS when ready (MiB)", ready_kib / 1024.0, 0, before_ready_kib / 1024.0, "MiB"});
    print_figures({"serve RSS after 5 full lists (x ready)", double(listed_kib) / ready_kib, 1.0,
                   before_ready_kib ? double(before_listed_kib) / before_ready_kib : 0, "x"});
    auto five = alternate(rounds, ours.port, nginx.port(), before.port, [&](int port) {
        return bench::wrk(port, port == nginx.port() ? "/v1/five" : five_path, seconds).rps;
    });
    print_figures({"GET /v1/models?slug=x5, wrk -c32 (req/s)", five[0], five[1], five[2], "rps"});
    if (models >= 10'000)
        gzip_figures(dir, list, whole[0]);

    if (std::getenv("BENCH_SCALE_NO_SSE"))
        largest = false;
    Listener listener(conninfo("before"));
    std::this_thread::sleep_for(300ms);
    const char* feed_kind = std::getenv("BENCH_SCALE_FEED");
    if (!std::getenv("BENCH_SCALE_NO_SSE") && feed_kind && std::string(feed_kind) == "logical") {
        // One client on feed=logical against a bare client of the same slot protocol,
        // alternating rounds of 20 changes.
        SlotListener peer(conninfo("feed"));
        for (int i = 0; i < 100 && !peer.streaming(); ++i)
            std::this_thread::sleep_for(50ms);
        std::vector<double> ours_one, peer_one;
        for (int r = 0; r < rounds && peer.streaming(); ++r) {
            auto a = sse_arrivals(ours.port, conninfo("feed"), 1, 20);
            ours_one.insert(ours_one.end(), a.begin(), a.end());
            auto b = slot_arrivals(peer, conninfo("feed"), 20);
            peer_one.insert(peer_one.end(), b.begin(), b.end());
        }
        print_figures({"UPDATE -> SSE p50, 1 client, feed=logical (ms; bare slot client)",
                       bench::percentile(ours_one, 0.5), bench::percentile(peer_one, 0.5), 0,
                       "ms"});
        std::printf("  (%zu and %zu of %d changes arrived, %d rounds alternating)\n",
                    ours_one.size(), peer_one.size(), 20 * rounds, rounds);
    }
    if (std::getenv("BENCH_SCALE_ONE_CLIENT_ONLY"))
        largest = false;
    for (int clients : {10, 1000}) {
        if (std::getenv("BENCH_SCALE_ONE_CLIENT_ONLY"))
            break;
        if (std::getenv("BENCH_SCALE_NO_SSE"))
            break;
        Latency ours_sse = sse_latency(ours.port, conninfo("feed"), clients, 10);
        double peer = listen_p50(listener, conninfo("before"), 10);
        Latency before_sse =
            before.port > 0 ? sse_latency(before.port, conninfo("before"), clients, 10) : Latency{};
        print_figures({"UPDATE -> SSE p50, " + std::to_string(clients) + " clients (ms)",
                       ours_sse.p50, peer, before_sse.p50, "ms"});
        print_figures({"UPDATE -> SSE p99, " + std::to_string(clients) + " clients (ms)",
                       ours_sse.p99, peer, before_sse.p99, "ms"});
        std::printf("  (%zu of %d events delivered; before %zu)\n", ours_sse.delivered,
                    clients * 10, before_sse.delivered);
    }
    bench::Nchan nchan(www);
    if (!std::getenv("BENCH_SCALE_NO_SSE") && !nchan.answers())
        std::printf("  (no nchan: apt-get install libnginx-mod-nchan for the fan-out peer)\n");
    if (!std::getenv("BENCH_SCALE_NO_SSE") && !std::getenv("BENCH_SCALE_ONE_CLIENT_ONLY") &&
        nchan.answers())
        for (int clients : {1000, 10'000}) {
            if (clients == 10'000 && !largest)
                break;
            int changes = clients == 1000 ? 10 : 5;
            auto f =
                fan_out_against_peers(ours.port, conninfo("feed"), nchan, clients, changes, rounds);
            std::string what = std::to_string(clients) + " clients x " + std::to_string(changes);
            print_figures({"fan-out p50, " + what + " (ms; nchan | floor)", f.ours.p50, f.nchan.p50,
                           f.floor.p50, "ms"});
            print_figures({"fan-out p99, " + what + " (ms; nchan | floor)", f.ours.p99, f.nchan.p99,
                           f.floor.p99, "ms"});
            std::printf("  (%zu, %zu and %zu of %d events delivered, %d rounds alternating; "
                        "serve's from the UPDATE, nchan's from the POST, the floor's from the "
                        "hand-over to its writing thread)\n",
                        f.ours.delivered, f.nchan.delivered, f.floor.delivered,
                        clients * changes * rounds, rounds);
        }
    if (largest) {
        long idle_kib = bench::rss_kib(ours.process->pid());
        std::atomic<long> streaming_kib{0};
        std::thread sampler([&] {
            std::this_thread::sleep_for(2s);
            for (int i = 0; i < 200 && streaming_kib.load() == 0; ++i) {
                std::this_thread::sleep_for(100ms);
                if (bench::body_of(ours.port, "/metrics").find("modelrepo_serve_streams 10000") !=
                    std::string::npos)
                    streaming_kib = bench::rss_kib(ours.process->pid());
            }
        });
        Latency many = sse_latency(ours.port, conninfo("feed"), 10'000, 5);
        sampler.join();
        std::printf("  10,000 clients x 5 UPDATEs: %zu of 50000 events delivered, p50 %.2f ms, "
                    "p99 %.2f ms; RSS %.1f KiB per stream\n",
                    many.delivered, many.p50, many.p99,
                    streaming_kib ? double(streaming_kib - idle_kib) / 10'000 : 0.0);
    }
    for (Served* s : {&ours, &before})
        if (s->process) {
            s->process->signal(SIGTERM);
            s->process->wait(10s);
        }
}

/// The "feed" database as BENCH_SCALE_FEED says: left on the trigger feed, or migrated
/// with feed=logical. False (said why) when that fails.
bool choose_feed(test::PgServer& server) {
    const char* feed = std::getenv("BENCH_SCALE_FEED");
    if (!feed || std::string(feed) != "logical")
        return true;
    server.psql("ALTER ROLE app REPLICATION");
    auto repo =
        PostgresRepository::open(server.url("app", password, "feed", "127.0.0.1", "feed=logical"));
    auto migrated = repo ? repo.value()->migrate() : Result<int>(repo.error());
    if (!migrated)
        std::fprintf(stderr, "migrate feed=logical: %s\n", migrated.error().message.c_str());
    return bool(migrated);
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
                "PostgreSQL 15 on loopback; %u cores; the feed: %s\n",
                seconds, rounds, std::thread::hardware_concurrency(),
                std::getenv("BENCH_SCALE_FEED") ? std::getenv("BENCH_SCALE_FEED") : "triggers");
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
    bench::raise_file_limit(); // 10,000 stream clients, and serve inherits it
    const bool serve_only = std::getenv("BENCH_SCALE_SERVE_ONLY") != nullptr;
    auto [small_model_us, small_status_us] = apply_us(catalogue(32));
    for (int models : sizes) {
        Snapshot snapshot = catalogue(models);
        if (serve_only) {
            if (!make_database(server, "feed", detail::sql::feed_schema_version, snapshot) ||
                !choose_feed(server) || !make_database(server, "before", 2, snapshot))
                return 1;
            if (!std::getenv("BENCH_SCALE_NO_IMPORT")) {
                if (!make_database(server, "plain", 1, snapshot))
                    return 1;
                import_rows(server, dir, snapshot, rounds);
            }
            if (!std::getenv("BENCH_SCALE_IMPORT_ONLY"))
                serve_rows(server, dir, models, seconds, rounds, models == sizes.back());
            continue;
        }
        auto [model_us, status_us] = apply_us(snapshot);
        std::printf("\n%d models: applying one change to the copy: a model row %.2f us (32 "
                    "models: %.2f us, %.1fx), a status %.2f us (32 models: %.2f us, %.1fx)\n",
                    models, model_us, small_model_us, model_us / small_model_us, status_us,
                    small_status_us, status_us / small_status_us);
        if (!make_database(server, "plain", 1, snapshot) ||
            !make_database(server, "feed", detail::sql::feed_schema_version, snapshot) ||
            !choose_feed(server) || !make_database(server, "before", 2, snapshot))
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
        sub.reset();
        import_rows(server, dir, snapshot, rounds);
        serve_rows(server, dir, models, seconds, rounds, models == sizes.back());
    }
    return 0;
}
