// SPDX-License-Identifier: MIT
// PostgresRepository's calls against a real PostgreSQL 15 on loopback: reads, writes,
// migrations, transactions, URLs.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;

TEST_CASE("SCRAM login, migrate, import, and every read") {
    auto repo = fresh_catalogue("catalogue_reads");
    CHECK(repo->name().find(password) == std::string_view::npos);
    CHECK(repo->name().find("postgresql://app@127.0.0.1:") == 0);
    CHECK(repo.pg->migrate().value() == 3); // idempotent
    CHECK(repo.pg->schema_version().value() == 3);
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->count_providers().value() == 10);
    CHECK(repo->check_health());

    auto memory = MemoryRepository::builtin();
    auto stats = repo->system_stats().value();
    auto expected = memory->system_stats().value();
    CHECK(stats.models == expected.models);
    CHECK(stats.active_models == expected.active_models);
    CHECK(stats.providers == expected.providers);
    CHECK(stats.health == expected.health);
    CHECK(stats.source == repo->name());

    std::vector<std::string> slugs{"claude-sonnet-4-5", "nope", "gpt-4o", "gemini-2.5-pro"};
    auto models = repo->find_models(slugs).value();
    REQUIRE(models.size() == 3);
    CHECK(models[0].slug == "claude-sonnet-4-5");
    CHECK(models[1].slug == "gpt-4o");
    CHECK(models[2].slug == "gemini-2.5-pro");
    CHECK(models == memory->find_models(slugs).value());
    // A slug asked for twice is answered twice, in place, as the memory backend does.
    std::vector<std::string> twice{"gpt-4o", "gpt-5", "gpt-4o", "nope"};
    auto repeated = repo->find_models(twice).value();
    REQUIRE(repeated.size() == 3);
    CHECK(repeated[0] == repeated[2]);
    CHECK(repeated == memory->find_models(twice).value());

    CHECK(repo->find_model("gpt-5").value() == memory->find_model("gpt-5").value());
    CHECK_FALSE(repo->find_model("gpt-99").value().has_value());
    CHECK(repo->find_model("claude-3-5-haiku").value()->status == std::nullopt);
    CHECK(repo->list_statuses().value() == memory->list_statuses().value());
    CHECK(repo->list_models().value() == memory->list_models().value());

    auto exported = repo->export_snapshot().value();
    Snapshot builtin = builtin_snapshot();
    CHECK(exported.providers.size() == builtin.providers.size());
    auto sorted = [](Snapshot s) {
        std::sort(s.providers.begin(), s.providers.end(),
                  [](auto& a, auto& b) { return a.slug < b.slug; });
        std::sort(s.models.begin(), s.models.end(),
                  [](auto& a, auto& b) { return a.slug < b.slug; });
        std::sort(s.statuses.begin(), s.statuses.end(),
                  [](auto& a, auto& b) { return a.model_slug < b.model_slug; });
        s.generated_at = {};
        return s;
    };
    CHECK(sorted(exported) == sorted(builtin));
}

TEST_CASE("an import the server refuses half-way is rolled back, and its connection reused") {
    // One connection, so every call below runs on the connection the import used.
    auto repo = fresh_catalogue("catalogue_rollback", "connection_limit=1");
    // A rule the client cannot know: the import deletes everything, then fails on the
    // models' INSERT. (NOT VALID: the rows already there are not checked.)
    server().psql("ALTER TABLE models ADD CONSTRAINT no_gpt5 CHECK (slug <> 'gpt-5') NOT VALID",
                  "catalogue_rollback");
    auto refused = repo.pg->import_snapshot(builtin_snapshot());
    REQUIRE_FALSE(refused);
    CHECK(refused.error().sqlstate == "23514"); // check_violation
    CHECK(refused.error().message.find("no_gpt5") != std::string::npos);

    // Nothing of the import stayed (the DELETEs were rolled back) ...
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->find_model("gpt-5").value().has_value());
    // ... and the connection came back idle, not aborted: the next transaction works.
    CHECK(repo->export_snapshot().value().models.size() == 32);
    CHECK(repo.pg->migrate().value() == 3);
    CHECK(repo.pg->pool_stats().connects == 1);
}

TEST_CASE("an import's deadline grows with its size: 30,000 models past a 1 s socket_timeout") {
    fresh_database("catalogue_big_import");
    auto repo = open_repo(
        server().url("app", password, "catalogue_big_import", "127.0.0.1", "socket_timeout=1"));
    REQUIRE(repo->migrate());
    Snapshot big;
    big.providers = {{"p", "P", ""}};
    for (int i = 0; i < 30'000; ++i) {
        Model m;
        m.slug = "m" + std::to_string(i);
        m.name = m.slug;
        m.provider_slug = "p";
        m.description = std::string(200, 'd');
        big.models.push_back(m);
        big.statuses.push_back({m.slug, Health::operational, 0.9, 10, 0.01, "eu", Clock::now()});
    }
    auto started = std::chrono::steady_clock::now();
    auto imported = repo->import_snapshot(big);
    auto took = std::chrono::steady_clock::now() - started;
    CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
    REQUIRE_MESSAGE(imported, imported.error().to_string());
    CHECK(repo->count_models().value() == 30'000);
    // The 1 s still holds for every other call.
    CHECK(repo->count_providers().value() == 1);
}

TEST_CASE("a column type changed under a prepared statement: prepared again, answered") {
    auto repo = fresh_catalogue("catalogue_retype", "connection_limit=1");
    auto before = repo->find_model("gpt-5").value(); // prepared on the one connection
    REQUIRE(before);
    // A live migration: the result type of find_model's statement changes.
    server().psql("ALTER TABLE models ALTER COLUMN description TYPE varchar(2000)",
                  "catalogue_retype");
    auto after = repo->find_model("gpt-5");
    if (!after)
        FAIL(after.error().to_string()); // 0A000 "cached plan must not change result type"
    CHECK(after.value() == before);
    CHECK(repo->list_models().value().size() == 32);
    CHECK(repo.pg->pool_stats().connects == 1);
}

TEST_CASE("upserts: newer applied, older ignored, unknown model rejects the whole batch") {
    auto repo = fresh_catalogue("catalogue_upserts");
    Timestamp t = sys_days{2026y / December / 1} + 123456us;
    std::vector<ModelStatus> batch{
        {"gpt-4o", Health::outage, 0.5, 900.0, 0.5, "eu-west", t},
        {"claude-3-5-haiku", Health::operational, 1.0, std::nullopt, 0.0, "", t},
        {"gpt-4o", Health::degraded, 0.7, 800.0, 0.3, "eu-west", t - 1s}, // older duplicate
    };
    CHECK(repo->upsert_statuses(batch).value() == 2);
    auto gpt = repo->find_model("gpt-4o").value();
    CHECK(gpt->status->health == Health::outage);
    CHECK(gpt->status->checked_at == t); // microseconds survive the round trip
    CHECK(repo->find_model("claude-3-5-haiku").value()->status->health == Health::operational);

    // A replay and an older status change nothing.
    CHECK(repo->upsert_statuses(std::span(batch).first(1)).value() == 1);
    std::vector<ModelStatus> stale{{"gpt-4o", Health::operational, 1, 1.0, 0, "", t - 1h}};
    CHECK(repo->upsert_statuses(stale).value() == 0);
    CHECK(repo->find_model("gpt-4o").value()->status->health == Health::outage);

    std::vector<ModelStatus> unknown{{"gpt-5", Health::outage, 0, 1.0, 1, "", t + 1h},
                                     {"gpt-99", Health::outage, 0, 1.0, 1, "", t + 1h}};
    auto e = expect_error(repo->upsert_statuses(unknown), Errc::invalid_argument);
    CHECK(e.sqlstate == "23503");
    CHECK(repo->find_model("gpt-5").value()->status->health == Health::operational);

    std::vector<ModelStatus> bad{{"gpt-5", Health::outage, 1.5, 1.0, 0, "", t}};
    expect_error(repo->upsert_statuses(bad), Errc::invalid_argument);
}

TEST_CASE("a database without the schema answers schema_missing with the fix") {
    auto& s = server();
    s.psql("DROP DATABASE IF EXISTS bare WITH (FORCE)");
    s.psql("CREATE DATABASE bare OWNER app");
    auto repo = open_repo(s.url("app", password, "bare"));
    CHECK(repo->schema_version().value() == 0);
    auto e = expect_error(repo->count_models(), Errc::schema_missing);
    CHECK(e.message.find("modelrepo migrate") != std::string::npos);
    CHECK(e.sqlstate == "42P01");
    REQUIRE(repo->migrate());
    CHECK(repo->count_models().value() == 0); // the same repository works after migrate
}

TEST_CASE("Prisma-style URL: schema, connection_limit, pool_timeout, socket_timeout, pgbouncer") {
    auto repo =
        fresh_catalogue("catalogue_prisma", "schema=catalog&connection_limit=3&pool_timeout=2&"
                                            "socket_timeout=4&pgbouncer=true&sslmode=disable&"
                                            "application_name=prisma-test");
    CHECK(repo.pg->config().schema == "catalog");
    CHECK(repo.pg->config().pool_size == 3);
    CHECK(repo.pg->config().acquire_timeout == 2s);
    CHECK(repo.pg->config().query_timeout == 4s);
    CHECK_FALSE(repo.pg->config().prepared_statements);
    CHECK(repo.pg->config().conninfo.find("schema=") == std::string::npos);
    CHECK(repo->count_models().value() == 32);
    CHECK(server().psql("SELECT count(*) FROM catalog.models", "catalogue_prisma") == "32");
    CHECK(repo.pg->pool_stats().max_size == 3);
}

TEST_CASE("several hosts with target_session_attrs: libpq moves past a dead first host") {
    auto& s = server();
    fresh_catalogue("catalogue_hosts");
    std::string url = "postgresql://app:" + password +
                      "@127.0.0.1:1,127.0.0.1:" + std::to_string(s.port()) +
                      "/catalogue_hosts?target_session_attrs=read-write&connect_timeout=2";
    auto repo = open_repo(url);
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->name().find("127.0.0.1:1,127.0.0.1:") != std::string_view::npos);
}

TEST_CASE("16 threads of mixed reads and upserts give correct answers") {
    auto repo = fresh_catalogue("catalogue_threads", "connection_limit=6");
    auto memory = MemoryRepository::builtin();
    std::vector<std::string> slugs;
    for (const Model& m : builtin_snapshot().models)
        slugs.push_back(m.slug);
    std::atomic<int> wrong{0};
    std::atomic<int> calls{0};
    Timestamp base = sys_days{2026y / December / 2}; // newer than the import, in the past
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 40; ++i) {
                ++calls;
                switch ((t + i) % 4) {
                case 0:
                    if (value_or<std::int64_t>(repo->count_models(), -1) != 32)
                        ++wrong;
                    break;
                case 1: {
                    std::vector<std::string> ask{slugs[(t + i) % 32], slugs[(t * 7 + i) % 32]};
                    auto r = repo->find_models(ask);
                    if (!r || r.value().size() != 2 || r.value()[0].slug != ask[0] ||
                        !r.value()[0].provider)
                        ++wrong;
                    break;
                }
                case 2: {
                    auto s = repo->system_stats();
                    if (!s || s.value().models != 32 ||
                        s.value().health.operational + s.value().health.degraded +
                                s.value().health.outage + s.value().health.unknown !=
                            32)
                        ++wrong;
                    break;
                }
                default: {
                    // Each thread owns two models and writes increasing timestamps.
                    std::vector<ModelStatus> batch{
                        {slugs[t], Health::degraded, 0.9, 10.0 + i, 0.1, "t", base + seconds(i)},
                        {slugs[t + 16], Health::outage, 0.1, std::nullopt, 0.9, "t",
                         base + seconds(i)}};
                    if (value_or<std::int64_t>(repo->upsert_statuses(batch), -1) != 2)
                        ++wrong;
                }
                }
            }
        });
    for (auto& th : threads)
        th.join();
    CHECK(wrong.load() == 0);
    CHECK(calls.load() == 640);
    auto statuses = repo->list_statuses().value();
    for (const ModelStatus& s : statuses)
        if (s.region == "t")
            CHECK(s.checked_at > base); // every owned model took a later write
    auto pool = repo.pg->pool_stats();
    CHECK(pool.open <= 6);
    CHECK(pool.busy == 0);
}

TEST_CASE("8 threads upserting overlapping models never deadlock") {
    auto repo = fresh_catalogue("catalogue_deadlock", "connection_limit=8");
    std::vector<std::string> slugs;
    for (const Model& m : builtin_snapshot().models)
        slugs.push_back(m.slug);
    Timestamp base = sys_days{2026y / December / 3}; // newer than the import, in the past
    std::atomic<int> failed{0};
    std::string first_error;
    std::mutex error_mutex;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20; ++i) {
                // Each batch names 12 models, in an order of its own, sharing most of them
                // with the other threads' batches.
                std::vector<ModelStatus> batch;
                for (int k = 0; k < 12; ++k) {
                    const std::string& slug =
                        slugs[static_cast<std::size_t>((t * 5 + k * (t % 2 ? 1 : 31)) % 32)];
                    batch.push_back(
                        {slug, Health::degraded, 0.5, 1.0, 0.1, "r", base + seconds(i * 8 + t)});
                }
                auto r = repo->upsert_statuses(batch);
                if (!r) {
                    ++failed;
                    std::lock_guard lock(error_mutex);
                    if (first_error.empty())
                        first_error = r.error().to_string();
                }
            }
        });
    for (auto& th : threads)
        th.join();
    CAPTURE(first_error);
    CHECK(failed.load() == 0);
}

TEST_CASE("every session speaks UTF-8: a LATIN1 database keeps 'Café'") {
    fresh_database("catalogue_latin1",
                   "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
    auto repo = open_repo(server().url("app", password, "catalogue_latin1"));
    REQUIRE(repo->migrate());
    Snapshot snapshot = builtin_snapshot();
    snapshot.models[0].description = "Café, naïve";
    REQUIRE(repo->import_snapshot(snapshot));
    auto model = repo->find_model(snapshot.models[0].slug).value();
    REQUIRE(model);
    CHECK(model->description == "Café, naïve");
    // What the server stored is the same text, in its own encoding (compared as LATIN1
    // bytes: psql's own client encoding plays no part).
    CHECK(server().psql("SELECT convert_to(description, 'LATIN1') = "
                        "'\\x436166e92c206e61ef7665'::bytea FROM models WHERE slug = '" +
                            snapshot.models[0].slug + "'",
                        "catalogue_latin1") == "t");
    auto exported = repo->export_snapshot().value();
    bool found = false;
    for (const Model& m : exported.models)
        found = found || m.description == "Café, naïve";
    CHECK(found);
}

TEST_CASE("a deadlock with another client's transaction is run again, not answered as an error") {
    auto repo = fresh_catalogue("catalogue_deadlock");
    std::unique_ptr<PGconn, void (*)(PGconn*)> other(
        PQconnectdb(server().url("app", password, "catalogue_deadlock").c_str()), PQfinish);
    REQUIRE(PQstatus(other.get()) == CONNECTION_OK);
    auto exec = [&](const std::string& sql) {
        PGresult* r = PQexec(other.get(), sql.c_str());
        std::string state =
            PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "";
        PQclear(r);
        return state;
    };
    int failures = 0, deadlocks_seen_by_other = 0;
    for (int round = 0; round < 4; ++round) {
        // The other client changes gpt-5's status (the feed's trigger locks the catalogue's
        // version row with it) and keeps its transaction open...
        REQUIRE(exec("BEGIN") == "");
        REQUIRE(exec("UPDATE model_status SET availability = 0.1 WHERE model_slug = 'gpt-5'") ==
                "");
        // ...while a write of two statuses takes claude-sonnet-4-5's row and waits...
        Timestamp at = floor<microseconds>(Clock::now()) + seconds(round); // newer each round
        std::vector<ModelStatus> batch{
            {"claude-sonnet-4-5", Health::degraded, 0.5, 1.0, 0.1, "", at},
            {"gpt-5", Health::degraded, 0.5, 1.0, 0.1, "", at}};
        std::string error;
        std::thread writer([&] {
            auto written = repo->upsert_statuses(batch);
            if (!written)
                error = written.error().to_string();
        });
        std::this_thread::sleep_for(300ms);
        // ...and the other client now wants that row: a deadlock, which the server breaks
        // (deadlock_timeout, 1 s) by refusing one of the two with 40P01.
        if (exec("UPDATE model_status SET availability = 0.2 WHERE model_slug = "
                 "'claude-sonnet-4-5'") == "40P01")
            ++deadlocks_seen_by_other;
        exec("ROLLBACK");
        writer.join();
        CAPTURE(error);
        failures += error.empty() ? 0 : 1;
        auto gpt5 = repo->find_model("gpt-5").value();
        REQUIRE(gpt5);
        CHECK(format_timestamp_precise(gpt5->status->checked_at) ==
              format_timestamp_precise(floor<microseconds>(at))); // the write landed
    }
    CHECK(failures == 0);
    MESSAGE(deadlocks_seen_by_other << " of 4 deadlocks were broken on the other client's side");
}

TEST_CASE("no message ever held the password") {
    check_no_password_seen(3);
}

TEST_CASE("the pool's metrics reach a chain's Prometheus text") {
    auto repo = fresh_catalogue("catalogue_metrics", "connection_limit=2");
    auto chain = FallbackRepository::create({repo.repo, MemoryRepository::builtin()}).value();
    REQUIRE(chain->count_models());
    std::string text = chain->prometheus();
    const std::string source = "source=\"" + std::string(repo->name()) + "\"";
    for (const std::string& line :
         {std::string("# TYPE modelrepo_pool_connections gauge"),
          "modelrepo_pool_connections{" + source + ",state=\"max\"} 2",
          "modelrepo_pool_connects_total{" + source + "} 1",
          "modelrepo_pool_acquire_wait_seconds_count{" + source + "} 3"}) {
        CAPTURE(line);
        CHECK(text.find(line) != std::string::npos);
    }
}

TEST_CASE("a checked_at a Timestamp cannot hold ('infinity', year 1, year 294276) reads as the "
          "nearest end it can (1678 to 2261), never failing the read, and exports and parses "
          "again") {
    auto repo = fresh_catalogue("catalogue_far_times");
    auto& s = server();
    s.psql("UPDATE model_status SET checked_at = 'infinity' WHERE model_slug = 'gpt-4o'",
           "catalogue_far_times");
    s.psql("UPDATE model_status SET checked_at = '-infinity' WHERE model_slug = 'gpt-5'",
           "catalogue_far_times");
    s.psql("UPDATE model_status SET checked_at = '0001-01-01 00:00:00+00' WHERE model_slug = "
           "'o3'",
           "catalogue_far_times");
    s.psql("UPDATE model_status SET checked_at = '294276-12-31 23:59:59+00' WHERE model_slug = "
           "'claude-sonnet-4-5'",
           "catalogue_far_times");
    auto models = repo->list_models();
    REQUIRE_MESSAGE(models, models.error().to_string());
    CHECK(models.value().size() == 32);
    const Timestamp latest = sys_days(2262y / January / 1) - seconds(1);
    const Timestamp earliest = sys_days(1678y / January / 1);
    auto checked_at = [&](const std::string& slug) {
        auto m = repo->find_model(slug);
        REQUIRE_MESSAGE(m, m.error().to_string());
        REQUIRE(m.value());
        REQUIRE(m.value()->status);
        return m.value()->status->checked_at;
    };
    CHECK(checked_at("gpt-4o") == latest);
    CHECK(checked_at("gpt-5") == earliest);
    CHECK(checked_at("o3") == earliest);
    CHECK(checked_at("claude-sonnet-4-5") == latest);
    auto snapshot = repo->export_snapshot();
    REQUIRE_MESSAGE(snapshot, snapshot.error().to_string());
    auto again = parse_snapshot(write_snapshot(snapshot.value()));
    if (!again)
        FAIL(again.error().to_string());
}
