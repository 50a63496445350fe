// SPDX-License-Identifier: MIT
// PostgresRepository against a real PostgreSQL 15 started by the harness on loopback.
#include <algorithm>
#include <atomic>
#include <thread>

#include <doctest/doctest.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_server.hpp"
#if MODELREPO_HAS_GITHUB
#include "http_server.hpp"
#endif
#include "process.hpp"

using namespace modelrepo;
using namespace std::chrono;
using test::shared_pg_server;

namespace {

// A distinctive password: every message and log line is scanned for it.
const std::string password = "Pw-Zx81-qUuX-7745";
std::vector<std::string> seen_messages;

test::PgServer& server() {
    auto& s = shared_pg_server();
    test::require_pg(s);
    static bool prepared = [&] {
        s.create_role("app", password, "modelrepo");
        return true;
    }();
    (void)prepared;
    return s;
}

std::shared_ptr<PostgresRepository> open_repo(const std::string& url) {
    auto repo = PostgresRepository::open(url);
    REQUIRE(repo);
    return repo.value();
}

/// A repository on a fresh database with the builtin catalogue imported.
std::shared_ptr<PostgresRepository> fresh_catalogue(const std::string& db,
                                                    const std::string& query = "") {
    auto& s = server();
    s.psql("DROP DATABASE IF EXISTS \"" + db + "\" WITH (FORCE)");
    s.psql("CREATE DATABASE \"" + db + "\" OWNER app");
    auto repo = open_repo(s.url("app", password, db, "127.0.0.1", query));
    auto version = repo->migrate();
    if (!version)
        FAIL(version.error().to_string());
    REQUIRE(version.value() == 1);
    auto imported = repo->import_snapshot(builtin_snapshot());
    if (!imported)
        FAIL(imported.error().to_string());
    return repo;
}

/// The value, or `fallback` when the call failed.
template <class T>
T value_or(const Result<T>& r, T fallback) {
    return r ? r.value() : fallback;
}

template <class T>
Error expect_error(const Result<T>& r, Errc code) {
    REQUIRE_FALSE(r);
    CAPTURE(r.error().to_string());
    CHECK(r.error().is(code));
    seen_messages.push_back(r.error().message);
    return r.error();
}

} // namespace

TEST_CASE("SCRAM login, migrate, import, and every read") {
    auto repo = fresh_catalogue("catalogue_reads");
    CHECK(repo->name().find(password) == std::string_view::npos);
    CHECK(repo->name().find("postgresql://app@127.0.0.1:") == 0);
    CHECK(repo->migrate().value() == 1); // idempotent
    CHECK(repo->schema_version().value() == 1);
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
    auto refused = repo->import_snapshot(builtin_snapshot());
    REQUIRE_FALSE(refused);
    CHECK(refused.error().sqlstate == "23514"); // check_violation
    CHECK(refused.error().message.find("no_gpt5") != std::string::npos);

    // Nothing of the import stayed (the DELETEs were rolled back) ...
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->find_model("gpt-5").value().has_value());
    // ... and the connection came back idle, not aborted: the next transaction works.
    CHECK(repo->export_snapshot().value().models.size() == 32);
    CHECK(repo->migrate().value() == 1);
    CHECK(repo->pool_stats().connects == 1);
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
    CHECK(repo->pool_stats().connects == 1);
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
    CHECK(repo->config().schema == "catalog");
    CHECK(repo->config().pool_size == 3);
    CHECK(repo->config().acquire_timeout == 2s);
    CHECK(repo->config().query_timeout == 4s);
    CHECK_FALSE(repo->config().prepared_statements);
    CHECK(repo->config().conninfo.find("schema=") == std::string::npos);
    CHECK(repo->count_models().value() == 32);
    CHECK(server().psql("SELECT count(*) FROM catalog.models", "catalogue_prisma") == "32");
    CHECK(repo->pool_stats().max_size == 3);
}

TEST_CASE("wrong password: auth_failed, 28P01, host and port and method named, no password") {
    auto& s = server();
    auto repo = open_repo(s.url("app", "not-" + password));
    auto e = expect_error(repo->count_models(), Errc::auth_failed);
    CHECK(e.sqlstate == "28P01");
    CHECK(e.message.find(std::to_string(s.port())) != std::string::npos);
    CHECK(e.message.find("127.0.0.1") != std::string::npos);
    CHECK(e.message.find("scram-sha-256") != std::string::npos);
    CHECK(e.target == "127.0.0.1:" + std::to_string(s.port()));
    // The next call fails fast from the pool's memory of the failure.
    auto start = steady_clock::now();
    expect_error(repo->count_models(), Errc::auth_failed);
    CHECK(steady_clock::now() - start < 2s);
}

TEST_CASE("an MD5 verifier under a scram-sha-256 rule fails like a wrong password") {
    auto& s = server();
    s.psql("SET password_encryption = 'md5'; DROP ROLE IF EXISTS legacy; "
           "CREATE ROLE legacy LOGIN PASSWORD '" +
           password + "'");
    auto repo = open_repo(s.url("legacy", password, "modelrepo"));
    auto e = expect_error(repo->count_models(), Errc::auth_failed);
    CHECK(e.sqlstate == "28P01");
    CHECK(e.message.find("MD5") != std::string::npos);
}

TEST_CASE("missing database, unknown role, no pg_hba entry, refused") {
    auto& s = server();
    auto missing = open_repo(s.url("app", password, "no_such_db"));
    auto e = expect_error(missing->count_models(), Errc::database_missing);
    CHECK(e.sqlstate == "3D000");

    auto ghost = open_repo(s.url("ghost", password, "modelrepo"));
    expect_error(ghost->count_models(), Errc::auth_failed);

    // Only 'app' may connect over TCP now: 'outsider' has no pg_hba line.
    s.psql("DROP ROLE IF EXISTS outsider; CREATE ROLE outsider LOGIN PASSWORD '" + password + "'");
    std::string saved = s.replace_hba("host all app 127.0.0.1/32 scram-sha-256\n"
                                      "host all app ::1/128 scram-sha-256");
    s.reload();
    auto outsider = open_repo(s.url("outsider", password, "modelrepo"));
    auto hba = expect_error(outsider->count_models(), Errc::auth_failed);
    CHECK(hba.sqlstate == "28000");
    CHECK(hba.message.find("pg_hba.conf") != std::string::npos);
    s.restore_hba(saved);
    s.reload();

    // A port where nothing listens.
    auto refused = open_repo("postgresql://app:" + password + "@127.0.0.1:1/modelrepo");
    auto r = expect_error(refused->count_models(), Errc::unreachable);
    CHECK(r.message.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("pool exhaustion returns pool_exhausted after the acquire timeout") {
    auto repo = fresh_catalogue("catalogue_pool",
                                "connection_limit=1&acquire_timeout_ms=300&socket_timeout=5");
    // Hold the only connection: a statement that waits on a lock psql holds for 2 s.
    std::thread locker([&] {
        server().try_psql("BEGIN; LOCK TABLE models IN ACCESS EXCLUSIVE MODE; "
                          "SELECT pg_sleep(2); COMMIT;",
                          "catalogue_pool");
    });
    std::this_thread::sleep_for(300ms);
    std::thread holder([&] { (void)repo->count_models(); });
    std::this_thread::sleep_for(200ms);
    auto start = steady_clock::now();
    auto e = expect_error(repo->count_providers(), Errc::pool_exhausted);
    auto waited = steady_clock::now() - start;
    CHECK(waited >= 250ms);
    CHECK(waited < 3s);
    holder.join();
    locker.join();
    CHECK(repo->pool_stats().acquire_timeouts >= 1);
    CHECK(repo->count_providers().value() == 10);
}

TEST_CASE("8 threads on one connection: each release hands it to a waiter at once") {
    auto repo = fresh_catalogue("catalogue_handoff", "connection_limit=1&acquire_timeout_ms=5000");
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 25; ++i)
                if (value_or<std::int64_t>(repo->count_models(), -1) != 32)
                    ++wrong;
        });
    for (auto& th : threads)
        th.join();
    CHECK(wrong.load() == 0);
    auto pool = repo->pool_stats();
    CHECK(pool.open == 1);
    CHECK(pool.acquire_timeouts == 0);
    // A missed wake-up would leave a caller asleep until its 5 s acquire deadline: no
    // acquire may have waited past 2.5 s (calls here take about a millisecond).
    auto n = pool.acquire_wait_buckets.size();
    CHECK(pool.acquire_wait_buckets[n - 1] == 0);
    std::uint64_t acquires = 0;
    for (auto b : pool.acquire_wait_buckets)
        acquires += b;
    CHECK(acquires >= 200);
}

TEST_CASE("16 threads of mixed reads and upserts give correct answers") {
    auto repo = fresh_catalogue("catalogue_threads", "connection_limit=6");
    auto memory = MemoryRepository::builtin();
    std::vector<std::string> slugs;
    for (const Model& m : builtin_snapshot().models)
        slugs.push_back(m.slug);
    std::atomic<int> wrong{0};
    std::atomic<int> calls{0};
    Timestamp base = sys_days{2027y / January / 1};
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
    auto pool = repo->pool_stats();
    CHECK(pool.open <= 6);
    CHECK(pool.busy == 0);
}

TEST_CASE("server stopped with SIGSTOP: calls return timeout within the deadline") {
    auto repo = fresh_catalogue("catalogue_sigstop", "query_timeout_ms=1000&connect_timeout=2");
    REQUIRE(repo->count_models().value() == 32);
    auto& s = server();
    s.stop_processes();
    auto start = steady_clock::now();
    auto e = expect_error(repo->count_models(), Errc::timeout);
    auto took = steady_clock::now() - start;
    s.continue_processes();
    CAPTURE(duration_cast<milliseconds>(took).count());
    CHECK(took < 1000ms + 1500ms); // deadline plus generous slack
    CHECK(took >= 900ms);
    CHECK(repo->pool_stats().broken_replaced >= 1);
    // The server answers again; the same repository serves.
    auto again = repo->count_models();
    CHECK(value_or<std::int64_t>(again, -1) == 32);
}

TEST_CASE("server killed (kill -9) and restarted: the same repository recovers by itself") {
    auto repo = fresh_catalogue("catalogue_kill", "connect_timeout=2");
    REQUIRE(repo->count_models().value() == 32);
    auto& s = shared_pg_server();
    s.kill9();
    auto down = repo->count_models();
    REQUIRE_FALSE(down);
    CHECK((down.error().is(Errc::unreachable) || down.error().is(Errc::timeout)));
    // While down, calls fail fast instead of each paying a connect timeout.
    auto start = steady_clock::now();
    for (int i = 0; i < 20; ++i)
        CHECK_FALSE(repo->count_models());
    CHECK(steady_clock::now() - start < 3s);
    CHECK(repo->pool_stats().server_down);

    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    auto deadline = steady_clock::now() + 20s;
    Result<std::int64_t> back = make_error(Errc::unreachable, "not yet");
    while (steady_clock::now() < deadline) {
        back = repo->count_models();
        if (back)
            break;
        std::this_thread::sleep_for(100ms);
    }
    if (!back)
        FAIL(back.error().to_string());
    CHECK(back.value() == 32);
    CHECK_FALSE(repo->pool_stats().server_down);
}

TEST_CASE("no message ever held the password") {
    CHECK(seen_messages.size() >= 8);
    for (const std::string& m : seen_messages) {
        CAPTURE(m);
        CHECK(m.find(password) == std::string::npos);
    }
}

TEST_CASE("CLI: migrate, import, stats, export against PostgreSQL; errors exit 1") {
    auto& s = server();
    s.psql("DROP DATABASE IF EXISTS catalogue_cli WITH (FORCE)");
    s.psql("CREATE DATABASE catalogue_cli OWNER app");
    std::string url = s.url("app", password, "catalogue_cli");
    std::string cli = test::require_env("MODELREPO_CLI");
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {cli, "--source", url});
        return test::run_process(args, {{"MODELREPO_SOURCES", ""}});
    };
    auto before = run({"stats"});
    CHECK(before.exit_code == 1);
    CHECK(before.err.find("schema_missing") != std::string::npos);
    CHECK(before.err.find("modelrepo migrate") != std::string::npos);

    auto migrated = run({"migrate"});
    CHECK(migrated.exit_code == 0);
    CHECK(migrated.out.find("schema version 1") != std::string::npos);
    auto imported = run({"import", "builtin:"});
    CHECK(imported.exit_code == 0);
    CHECK(imported.out.find("imported 32 models") != std::string::npos);

    auto stats = run({"stats"});
    CHECK(stats.exit_code == 0);
    CHECK(stats.out.find("32 (30 active)") != std::string::npos);
    CHECK(stats.out.find("postgresql://app@127.0.0.1:") != std::string::npos);

    auto exported = run({"export"});
    REQUIRE(exported.exit_code == 0);
    auto snapshot = parse_snapshot(exported.out);
    REQUIRE(snapshot);
    CHECK(snapshot.value().models.size() == 32);

    for (const auto& r : {before, migrated, imported, stats, exported}) {
        CHECK(r.out.find(password) == std::string::npos);
        CHECK(r.err.find(password) == std::string::npos);
    }
    auto wrong = test::run_process(
        {cli, "--source", s.url("app", "Wrong-" + password, "catalogue_cli"), "stats"});
    CHECK(wrong.exit_code == 1);
    CHECK(wrong.err.find("auth_failed") != std::string::npos);
    CHECK(wrong.err.find(password) == std::string::npos);
}

namespace {

const DoctorCheck* find_check(const DoctorReport& report, const std::string& name,
                              DoctorCheck::Status status) {
    for (const auto& c : report.checks)
        if (c.name == name && c.status == status)
            return &c;
    return nullptr;
}

std::string dump(const DoctorReport& report) {
    std::string out;
    for (const auto& c : report.checks)
        out += std::string(to_string(c.status)) + " " + c.scope + " " + c.name + ": " + c.detail +
               " | " + c.fix + "\n";
    return out;
}

} // namespace

TEST_CASE("doctor: a healthy URL, every address of localhost") {
    auto& s = server();
    fresh_catalogue("catalogue_doctor");
    auto report = diagnose_postgres(s.url("app", password, "catalogue_doctor", "localhost"),
                                    s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK(report.value().healthy());
    CHECK(find_check(report.value(), "auth", DoctorCheck::Status::ok));
    CHECK(find_check(report.value(), "method", DoctorCheck::Status::ok)
              ->detail.find("scram-sha-256") != std::string::npos);
    CHECK(find_check(report.value(), "schema", DoctorCheck::Status::ok)->detail.find("32 models") !=
          std::string::npos);
    CHECK(find_check(report.value(), "verifier", DoctorCheck::Status::ok)->detail.find("scram") !=
          std::string::npos);
    CHECK(find_check(report.value(), "reload", DoctorCheck::Status::ok));
    int tcp = 0;
    for (const auto& c : report.value().checks)
        tcp += c.name == "tcp" && c.status == DoctorCheck::Status::ok;
    CHECK(tcp >= 1);
    CHECK(dump(report.value()).find(password) == std::string::npos);
}

TEST_CASE("doctor: an MD5 verifier under a scram-sha-256 rule is named with its fix") {
    auto& s = server();
    s.psql("SET password_encryption = 'md5'; DROP ROLE IF EXISTS legacy; "
           "CREATE ROLE legacy LOGIN PASSWORD '" +
           password + "'");
    auto report = diagnose_postgres(s.url("legacy", password, "modelrepo"), s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    CHECK_FALSE(report.value().healthy());
    CHECK(find_check(report.value(), "auth", DoctorCheck::Status::fail));
    auto hba = find_check(report.value(), "pg_hba", DoctorCheck::Status::fail);
    REQUIRE(hba);
    CHECK(hba->detail.find("MD5 verifier under a scram-sha-256 rule") != std::string::npos);
    CHECK(hba->fix.find("ALTER ROLE \"legacy\" PASSWORD") != std::string::npos);
    CHECK(find_check(report.value(), "verifier", DoctorCheck::Status::ok)->detail.find("md5") !=
          std::string::npos);
}

TEST_CASE("doctor: a pg_hba.conf edit that was never reloaded") {
    auto& s = server();
    // The incident: 127.0.0.1 -> trust written to the file, the reload never done.
    std::this_thread::sleep_for(1100ms); // file times have one-second resolution here
    s.prepend_hba("host all all 127.0.0.1/32 trust");
    auto report = diagnose_postgres(s.url("app", password), s.admin_conninfo());
    REQUIRE(report);
    CAPTURE(dump(report.value()));
    auto reload = find_check(report.value(), "reload", DoctorCheck::Status::fail);
    REQUIRE(reload);
    CHECK(reload->fix.find("SELECT pg_reload_conf();") != std::string::npos);
    // The file's first matching line is the new trust line, not yet in force.
    CHECK(dump(report.value()).find("trust") != std::string::npos);

    s.reload();
    auto after = diagnose_postgres(s.url("app", password), s.admin_conninfo());
    REQUIRE(after);
    CHECK(find_check(after.value(), "reload", DoctorCheck::Status::ok));
    // Put the scram rule back in force for the tests that follow.
    std::string content = s.replace_hba("host all all 127.0.0.1/32 scram-sha-256\n"
                                        "host all all ::1/128 scram-sha-256");
    (void)content;
    s.reload();
}

TEST_CASE("doctor CLI: exit 1 with findings, flags a raw reserved character in the password") {
    auto& s = server();
    std::string cli = test::require_env("MODELREPO_CLI");
    auto bad = test::run_process({cli, "doctor", s.url("app", "wr@ng/" + password)});
    CHECK(bad.exit_code == 1);
    CHECK(bad.out.find("[fail]") != std::string::npos);
    CHECK(bad.out.find("password-encoding") != std::string::npos);
    CHECK(bad.out.find(password) == std::string::npos);
    CHECK(bad.err.find(password) == std::string::npos);
    auto good = test::run_process({cli, "doctor", s.url("app", password, "catalogue_doctor"),
                                   "--admin-url", s.admin_conninfo(), "--json"});
    CHECK(good.exit_code == 0);
    CHECK(good.out.find("\"healthy\": true") != std::string::npos);
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

TEST_CASE("connections are validated after idling, replaced when the server ended them, "
          "and retired at max lifetime") {
    auto& s = server();
    fresh_catalogue("catalogue_lifecycle");
    auto config = PostgresConfig::from_url(s.url("app", password, "catalogue_lifecycle")).value();
    config.pool_size = 2;
    config.validate_after_idle = 0ms; // validate on every reuse
    auto repo = PostgresRepository::create(config).value();
    REQUIRE(repo->count_models().value() == 32);
    // The server ends every session of this database behind the pool's back.
    s.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE datname = 'catalogue_lifecycle' AND pid <> pg_backend_pid()");
    std::this_thread::sleep_for(100ms);
    // The next call still succeeds: the dead connection fails validation and is replaced.
    CHECK(repo->count_models().value() == 32);
    CHECK(repo->pool_stats().broken_replaced >= 1);
    CHECK(repo->pool_stats().connects >= 2);

    config.max_lifetime = 200ms;
    config.validate_after_idle = 30s;
    auto short_lived = PostgresRepository::create(config).value();
    REQUIRE(short_lived->count_models().value() == 32);
    std::this_thread::sleep_for(300ms);
    CHECK(short_lived->count_models().value() == 32);
    CHECK(short_lived->pool_stats().expired_replaced >= 1);
}

TEST_CASE("chaos: PostgreSQL -> GitHub (loopback) -> builtin under 8 readers while "
          "PostgreSQL is killed and restarted twice") {
    fresh_catalogue("catalogue_chaos", "connect_timeout=2&query_timeout_ms=2000");
    auto& s = shared_pg_server();
    auto primary = open_repo(s.url("app", password, "catalogue_chaos", "127.0.0.1",
                                   "connect_timeout=2&query_timeout_ms=2000"));
    std::vector<std::shared_ptr<ModelRepository>> sources{primary};
#if MODELREPO_HAS_GITHUB
    test::HttpServer github;
    std::string backup_body = write_snapshot(builtin_snapshot());
    github.handle([&](const httplib::Request& req, httplib::Response& res) {
        if (req.get_header_value("If-None-Match") == "\"chaos\"") {
            res.status = 304;
            return;
        }
        res.set_header("ETag", "\"chaos\"");
        res.set_content(backup_body, "application/json");
    });
    sources.push_back(
        GithubRepository::open("github://acme/catalogue/models.json@main?refresh_interval=1s&"
                               "api_base=" +
                               github.base())
            .value());
#endif
    sources.push_back(MemoryRepository::builtin());
    FallbackConfig config;
    config.breaker.consecutive_failures = 3;
    config.breaker.open_duration = 500ms;
    config.breaker.max_open_duration = 2s;
    config.probe_interval = 200ms;
    auto chain = FallbackRepository::create(sources, config).value();
    const std::string primary_name(primary->name());

    std::atomic<bool> stop{false};
    std::atomic<int> failed{0}, reads{0};
    std::vector<std::thread> readers;
    // Joins the readers however the test ends (a failed REQUIRE throws).
    struct Joiner {
        std::atomic<bool>& stop;
        std::vector<std::thread>& threads;
        ~Joiner() {
            stop = true;
            for (auto& t : threads)
                if (t.joinable())
                    t.join();
        }
    } joiner{stop, readers};
    for (int t = 0; t < 8; ++t)
        readers.emplace_back([&] {
            std::vector<std::string> slugs{"gpt-5", "claude-sonnet-4-5"};
            while (!stop) {
                auto models = chain->find_models(slugs);
                auto stats = chain->system_stats();
                if (!models || models.value().size() != 2 || !stats || stats.value().models != 32)
                    ++failed;
                ++reads;
                std::this_thread::sleep_for(2ms);
            }
        });
    auto wait_until = [&](auto predicate, milliseconds limit) {
        auto deadline = steady_clock::now() + limit;
        while (steady_clock::now() < deadline) {
            if (predicate())
                return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    };
    for (int round = 0; round < 2; ++round) {
        CAPTURE(round);
        CHECK(wait_until([&] { return chain->breaker(0).state() == BreakerState::closed; }, 5s));
        s.kill9();
        // The breaker opens within its window: 3 consecutive failures.
        CHECK(wait_until([&] { return chain->breaker(0).state() == BreakerState::open; }, 3s));
        std::this_thread::sleep_for(500ms);
        auto answered_before = chain->metrics().sources[0].answers;
        s.start();
        REQUIRE_MESSAGE(s.available(), s.why());
        auto restarted = steady_clock::now();
        // PostgreSQL serves again within the probe interval (and the pool's reconnect
        // backoff) plus slack.
        bool back = wait_until(
            [&] {
                return chain->breaker(0).state() == BreakerState::closed &&
                       chain->metrics().sources[0].answers > answered_before;
            },
            8s);
        CHECK(back);
        MESSAGE("round " << round << ": primary back after "
                         << duration_cast<milliseconds>(steady_clock::now() - restarted).count()
                         << " ms");
    }
    std::this_thread::sleep_for(200ms);
    stop = true;
    for (auto& t : readers)
        t.join();
    CHECK(failed.load() == 0);
    CHECK(reads.load() > 100);
    auto m = chain->metrics();
    CHECK(m.sources[1].answers > 0); // the first backup (GitHub) served during the outages
    CHECK(m.sources[0].answers > 0);
    CHECK(m.all_failed == 0);
    CHECK(m.sources[0].source == primary_name);
}

TEST_CASE("examples against the chain PostgreSQL -> builtin") {
    auto& s = server();
    if (!std::getenv("EXAMPLE_API_STATS")) {
        MESSAGE("examples not built (-Dexamples=false)");
        return;
    }
    fresh_catalogue("catalogue_examples");
    std::string url = s.url("app", password, "catalogue_examples");
    auto run = [&](const char* env, std::vector<std::string> args) {
        args.insert(args.begin(), {test::require_env(env), "-s", url, "-s", "builtin:"});
        return test::run_process(args, {{"MODELREPO_SOURCES", ""}});
    };
    auto api = run("EXAMPLE_API_STATS", {});
    REQUIRE(api.exit_code == 0);
    CHECK(api.out.find("\"source\":\"postgresql://app@127.0.0.1:") != std::string::npos);
    CHECK(api.out.find("\"backup\":false") != std::string::npos);

    auto sync = run("EXAMPLE_PRIORITY_SYNC", {"-n", "1"});
    CHECK(sync.exit_code == 0);
    CHECK(sync.out.find("wrote 5 statuses to the primary") != std::string::npos);
    // The write reached PostgreSQL: five statuses are newer than the bundled ones.
    CHECK(s.psql("SELECT count(*) FROM model_status WHERE checked_at > '2026-11-24'",
                 "catalogue_examples") == "5");

    auto realtime = run("EXAMPLE_REALTIME_STATS", {"-n", "2", "-i", "0.05"});
    CHECK(realtime.exit_code == 0);
    CHECK(realtime.out.find("from postgresql://app@") != std::string::npos);
    for (const auto& r : {api, sync, realtime})
        CHECK(r.out.find(password) == std::string::npos);
}
