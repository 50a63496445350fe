// SPDX-License-Identifier: MIT
// Prisma 7 clients (prisma, @prisma/client, @prisma/adapter-pg from npm; tsx runs them)
// and modelrepo on one database: modelrepo's own tables through contrib/prisma's schema,
// and a Prisma-owned schema through mapping=. tests/prisma holds the clients.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <modelrepo/modelrepo.hpp>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "temp_dir.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace std::chrono;
using namespace modelrepo::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path source_root() {
    return require_env("MODELREPO_SOURCE_ROOT");
}

/// tests/prisma: the clients, their packages and the schemas.
fs::path prisma_path() {
    return source_root() / "tests" / "prisma";
}

/// Statuses in slug order (byte order: the database's collation may differ).
json by_slug(json statuses) {
    std::sort(statuses.begin(), statuses.end(), [](const json& a, const json& b) {
        return a["model_slug"].get<std::string>() < b["model_slug"].get<std::string>();
    });
    return statuses;
}

/// The npm packages (scripts/setup test installs them): in CI their absence fails.
bool have_prisma() {
    bool have = fs::exists(prisma_path() / "node_modules" / ".bin" / "prisma") &&
                fs::exists(prisma_path() / "node_modules" / ".bin" / "tsx");
    if (!have && in_ci())
        FAIL("tests/prisma/node_modules is missing: scripts/setup test runs npm ci there");
    return have;
}

/// A generated Prisma client: `prisma generate` on a copy of `schema` under
/// tests/prisma/work/<name> (node finds the packages from there).
struct Client {
    std::string flavor; ///< "owned" or "contrib"
    fs::path client_ts;
    std::string url;    ///< node-postgres's connection string
    std::string schema; ///< the PostgreSQL schema, "" for public

    /// Runs services.ts; its one JSON line.
    json run(const std::vector<std::string>& args) const {
        std::vector<std::string> argv{(prisma_path() / "node_modules" / ".bin" / "tsx").string(),
                                      (prisma_path() / "services.ts").string()};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = run_process(argv,
                             {{"CLIENT", client_ts.string()},
                              {"DATABASE_URL", url},
                              {"DB_SCHEMA", schema},
                              {"FLAVOR", flavor}},
                             60s);
        INFO("tsx services.ts " << args.front() << ": " << r.err);
        if (r.exit_code != 0) {
            // A Prisma call killed at the limit (seen twice under ASan): what each session
            // of the server was doing or waiting for then, for a run no one watches.
            auto sessions = server().try_psql(
                "SELECT string_agg(format('%s %s %s/%s %s: %s', pid, application_name, "
                "wait_event_type, wait_event, state, left(query, 100)), E'\\n') "
                "FROM pg_stat_activity WHERE backend_type = 'client backend'");
            MESSAGE("sessions: " << (sessions ? *sessions : std::string("(psql failed)")));
        }
        REQUIRE(r.exit_code == 0);
        CHECK(r.err.find(password) == std::string::npos);
        json answer = json::parse(r.out);
        if (answer.contains("statuses"))
            answer["statuses"] = by_slug(answer["statuses"]);
        return answer;
    }
};

Client generate(const std::string& flavor, const fs::path& schema, const std::string& url,
                const std::string& db_schema) {
    fs::path work = prisma_path() / "work" / flavor;
    fs::remove_all(work);
    fs::create_directories(work);
    fs::copy_file(schema, work / "schema.prisma");
    auto r = run_process({(prisma_path() / "node_modules" / ".bin" / "prisma").string(), "generate",
                          "--schema", (work / "schema.prisma").string()},
                         {{"PRISMA_SCHEMA_ENGINE_BINARY", "/bin/true"},
                          {"PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING", "1"},
                          {"PRISMA_HIDE_UPDATE_MESSAGE", "1"}},
                         120s);
    INFO("prisma generate: " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::exists(work / "generated" / "client.ts"));
    return {flavor, work / "generated" / "client.ts", url, db_schema};
}

/// A status as both sides print it.
json status_json(const ModelStatus& s) {
    return {
        {"model_slug", s.model_slug},
        {"health", std::string(to_string(s.health))},
        {"availability", s.availability},
        {"latency_ms", s.latency_ms ? json(*s.latency_ms) : json(nullptr)},
        {"error_rate", s.error_rate},
        {"region", s.region},
        {"checked_at_ms", duration_cast<milliseconds>(s.checked_at.time_since_epoch()).count()}};
}

json model_json(const Model& m) {
    return {{"slug", m.slug},
            {"name", m.name},
            {"provider_slug", m.provider_slug},
            {"description", m.description},
            {"context_window", m.context_window ? json(*m.context_window) : json(nullptr)},
            {"active", m.active},
            {"provider",
             {{"slug", m.provider->slug},
              {"name", m.provider->name},
              {"website", m.provider->website}}},
            {"status", m.status ? status_json(*m.status) : json(nullptr)}};
}

/// The four queries of the seed's services, answered by modelrepo.
json modelrepo_answers(ModelRepository& repo, const std::vector<std::string>& slugs) {
    json statuses = json::array();
    auto listed = repo.list_statuses();
    REQUIRE(listed);
    for (const auto& s : listed.value())
        statuses.push_back(status_json(s));
    json found = json::array();
    auto found_models = repo.find_models(slugs);
    REQUIRE(found_models);
    std::vector<Model> models = std::move(found_models).value();
    std::sort(models.begin(), models.end(),
              [](const Model& a, const Model& b) { return a.slug < b.slug; });
    for (const auto& m : models)
        found.push_back(model_json(m));
    return {{"models", repo.count_models().value()},
            {"providers", repo.count_providers().value()},
            {"statuses", by_slug(statuses)},
            {"found", found}};
}

/// Timestamps at millisecond precision (TIMESTAMP(3)), latencies whole (an Int column).
Snapshot prisma_sized(Snapshot s) {
    for (auto& st : s.statuses) {
        st.checked_at = floor<milliseconds>(st.checked_at);
        if (st.latency_ms)
            st.latency_ms = std::round(*st.latency_ms);
    }
    return s;
}

std::string snapshot_file(const TempDir& dir, const Snapshot& s) {
    fs::path file = dir.path() / "seed.json";
    std::ofstream(file) << write_snapshot(s);
    return file.string();
}

const std::vector<std::string> asked{"gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro",
                                     "llama-4-maverick", "no-such-model"};

/// The columns of the user's tables, as information_schema has them.
std::string user_columns(const std::string& db) {
    return server().psql(
        "SELECT string_agg(table_name || '.' || column_name || ':' || data_type || ':' || "
        "is_nullable || ':' || coalesce(column_default, ''), ',' ORDER BY table_name, "
        "ordinal_position) FROM information_schema.columns WHERE table_schema = 'platform' "
        "AND table_name IN ('Provider', 'Model', 'ModelStatus')",
        db);
}

fs::path owned_schema() {
    return prisma_path() / "owned" / "schema.prisma";
}

/// A database with the Prisma-owned schema "platform" (owned/migration.sql, as prisma
/// migrate would have run it), seeded with the builtin catalogue through Prisma.
Client prisma_owned_database(const std::string& db, const TempDir& dir) {
    fresh_database(db);
    auto& s = server();
    // Sessions in another time zone: TIMESTAMP(3) still holds UTC, both ways.
    s.psql("ALTER DATABASE " + db + " SET timezone = 'Asia/Seoul'");
    std::ifstream in(prisma_path() / "owned" / "migration.sql");
    std::string ddl((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    s.psql("SET ROLE app; CREATE SCHEMA platform; SET search_path TO platform; " + ddl, db);
    Client c = generate("owned", owned_schema(), s.url("app", password, db), "platform");
    auto seeded = c.run({"seed", snapshot_file(dir, prisma_sized(builtin_snapshot()))});
    CHECK(seeded["models"] == 32);
    return c;
}

std::string mapped_url(const std::string& db, const std::string& query = "") {
    std::string mapping = (prisma_path() / "owned" / "mapping.json").string();
    return server().url("app", password, db, "127.0.0.1",
                        "schema=platform&mapping=" + mapping + (query.empty() ? "" : "&" + query));
}

} // namespace

TEST_CASE("Prisma on modelrepo's own tables (contrib/prisma/schema.prisma) agrees with "
          "modelrepo; writes on either side reach the other") {
    if (!have_prisma())
        return;
    auto& s = server();
    auto repo = fresh_catalogue("prisma_contrib");
    Client c = generate("contrib", source_root() / "contrib" / "prisma" / "schema.prisma",
                        s.url("app", password, "prisma_contrib"), "");
    json theirs = c.run({"queries", "gpt-5,claude-sonnet-4-5,gemini-2.5-pro,llama-4-maverick,"
                                    "no-such-model"});
    json ours = modelrepo_answers(*repo.repo, asked);
    CHECK(theirs["models"] == 32);
    CHECK(theirs["found"].size() == 4);
    CHECK(theirs == ours);

    // A Prisma write reaches watch().
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen));
    REQUIRE(sub);
    auto written = c.run({"set-status", "gpt-5", "outage"});
    auto at = steady_clock::now();
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::status, "gpt-5"), 10s));
    MESSAGE("Prisma's update -> watch(): "
            << duration_cast<milliseconds>(steady_clock::now() - at).count()
            << " ms after tsx returned");
    CHECK(repo->find_model("gpt-5").value()->status->health == Health::outage);
    (void)written;

    // A modelrepo upsert is read back by Prisma.
    Timestamp t = floor<milliseconds>(system_clock::now()) + 1s;
    std::vector<ModelStatus> up{{"gpt-4o", Health::degraded, 0.5, 120.0, 0.25, "eu", t}};
    REQUIRE(repo->upsert_statuses(up).value() == 1);
    json back = c.run({"get-status", "gpt-4o"});
    CHECK(back["health"] == "degraded");
    CHECK(back["checked_at_ms"] == duration_cast<milliseconds>(t.time_since_epoch()).count());
}

TEST_CASE("a Prisma-owned schema through mapping=: migrate adds only the feed, the services' "
          "queries agree, writes go both ways with updatedAt and ids filled in") {
    if (!have_prisma())
        return;
    auto& s = server();
    TempDir dir;
    Client c = prisma_owned_database("prisma_owned", dir);
    const std::string url = mapped_url("prisma_owned");

    // Before migrate: reads already work through the mapping (no feed needed to read).
    auto repo = open_repo(url);
    CHECK(repo->count_models().value() == 32);

    std::string before = user_columns("prisma_owned");
    CHECK(before.find("Model.isActive:boolean") != std::string::npos);
    REQUIRE(repo->migrate().value() == 3);
    CHECK(repo->migrate().value() == 3); // twice: nothing more
    CHECK(user_columns("prisma_owned") == before);
    // Nothing else was made in the user's schema but the feed's own tables.
    CHECK(s.psql("SELECT string_agg(table_name, ',' ORDER BY table_name COLLATE \"C\") FROM "
                 "information_schema.tables WHERE table_schema = 'platform'",
                 "prisma_owned") ==
          "Model,ModelStatus,Provider,catalog_changes,catalog_feed_settings,catalog_listeners,"
          "schema_migrations");

    json theirs = c.run({"queries", "gpt-5,claude-sonnet-4-5,gemini-2.5-pro,llama-4-maverick,"
                                    "no-such-model"});
    json ours = modelrepo_answers(*repo, asked);
    CHECK(theirs["statuses"].size() == builtin_snapshot().statuses.size());
    CHECK(theirs == ours);
    auto stats = repo->system_stats().value();
    CHECK(stats.models == 32);
    CHECK(stats.active_models == 30);
    auto expected = open("builtin:").value()->system_stats().value();
    CHECK(stats.health.operational == expected.health.operational);
    CHECK(stats.health.degraded == expected.health.degraded);
    CHECK(stats.health.outage == expected.health.outage);
    CHECK(stats.health.unknown == expected.health.unknown);
    CHECK(stats.providers == expected.providers);

    // The CLI on the user's tables.
    std::string cli = require_env("MODELREPO_CLI");
    auto cli_stats = run_process({cli, "--source", url, "stats"}, {{"MODELREPO_SOURCES", ""}});
    CHECK(cli_stats.exit_code == 0);
    CHECK(cli_stats.out.find("32 (30 active)") != std::string::npos);
    auto priority =
        run_process({cli, "--source", url, "models", "--priority", "gpt-5,claude-sonnet-4-5"},
                    {{"MODELREPO_SOURCES", ""}});
    CHECK(priority.exit_code == 0);
    CHECK(priority.out.find("gpt-5") != std::string::npos);
    auto doctor = run_process({cli, "doctor", url}, {{"MODELREPO_SOURCES", ""}});
    CAPTURE(doctor.out);
    CHECK(doctor.exit_code == 0);
    CHECK(doctor.out.find("owned/mapping.json' fits \"platform\".\"Model\"") != std::string::npos);
    CHECK(doctor.out.find("the change feed is installed") != std::string::npos);

    // A Prisma write to a status reaches watch(), as a change of the model's slug.
    ChangeCollector seen;
    auto sub = repo->watch(std::ref(seen));
    REQUIRE(sub);
    c.run({"set-status", "claude-sonnet-4-5", "degraded"});
    auto at = steady_clock::now();
    REQUIRE(seen.wait_for(is(CatalogChange::Kind::status, "claude-sonnet-4-5"), 10s));
    MESSAGE("Prisma's update of \"ModelStatus\" -> watch(): "
            << duration_cast<milliseconds>(steady_clock::now() - at).count()
            << " ms after tsx returned");
    CHECK(repo->find_model("claude-sonnet-4-5").value()->status->health == Health::degraded);

    // modelrepo's upsert: an update (updatedAt advances) ...
    json old = c.run({"get-status", "gpt-5"});
    REQUIRE(old["found"] == true);
    Timestamp t = floor<milliseconds>(system_clock::now()) + 1s;
    std::vector<ModelStatus> up{{"gpt-5", Health::outage, 0.5, 812.0, 0.5, "us-east", t}};
    REQUIRE(repo->upsert_statuses(up).value() == 1);
    json now = c.run({"get-status", "gpt-5"});
    CHECK(now["health"] == "outage");
    CHECK(now["latency_ms"] == 812);
    CHECK(now["checked_at_ms"] == duration_cast<milliseconds>(t.time_since_epoch()).count());
    CHECK(now["id"] == old["id"]);
    CHECK(now["updated_at_ms"].get<long long>() > old["updated_at_ms"].get<long long>());
    // ... and an insert of a status row that did not exist: an id is made for it.
    s.psql("DELETE FROM platform.\"ModelStatus\" WHERE \"modelId\" = (SELECT id FROM "
           "platform.\"Model\" WHERE slug = 'gpt-4o')",
           "prisma_owned");
    CHECK(c.run({"get-status", "gpt-4o"})["found"] == false);
    std::vector<ModelStatus> fresh{{"gpt-4o", Health::operational, 1.0, 90.0, 0.0, "eu", t}};
    REQUIRE(repo->upsert_statuses(fresh).value() == 1);
    json inserted = c.run({"get-status", "gpt-4o"});
    CHECK(inserted["found"] == true);
    CHECK(inserted["health"] == "operational");
    CHECK(inserted["id"].get<std::string>().size() >= 20);
    CHECK(inserted["updated_at_ms"].get<long long>() >=
          duration_cast<milliseconds>(t.time_since_epoch()).count() - 60'000);
    // A status for a model that is not there: the whole batch is refused.
    std::vector<ModelStatus> unknown{{"no-such-model", Health::outage, 0, {}, 1, "", t}};
    auto refused = repo->upsert_statuses(unknown);
    expect_error(refused, Errc::invalid_argument);

    // Export and import round trip through the mapping: ids of kept rows stay.
    std::string id_before =
        s.psql("SELECT id FROM platform.\"Model\" WHERE slug = 'gpt-5'", "prisma_owned");
    auto exported = repo->export_snapshot().value();
    CHECK(exported.models.size() == 32);
    const std::string dropped = exported.models.back().slug;
    exported.models.pop_back();
    std::erase_if(exported.statuses,
                  [&](const ModelStatus& st) { return st.model_slug == dropped; });
    auto imported = repo->import_snapshot(exported);
    if (!imported)
        FAIL(imported.error().to_string());
    CHECK(repo->count_models().value() == 31);
    CHECK(s.psql("SELECT id FROM platform.\"Model\" WHERE slug = 'gpt-5'", "prisma_owned") ==
          id_before);
    CHECK(c.run({"queries", ""})["models"] == 31);
}

TEST_CASE("a mapping that is malformed, names a missing column or a wrong type: typed errors "
          "naming the key") {
    auto& s = server();
    TempDir dir;
    fresh_database("prisma_bad");
    s.psql("SET ROLE app; CREATE SCHEMA platform; SET search_path TO platform; "
           "CREATE TABLE \"Provider\" (id text PRIMARY KEY, slug text UNIQUE, name text);"
           "CREATE TABLE \"Model\" (id text PRIMARY KEY, slug text UNIQUE, name text, "
           "\"providerId\" text, \"contextWindow\" text);"
           "CREATE TABLE \"ModelStatus\" (id text PRIMARY KEY, \"modelId\" text UNIQUE, "
           "status text, \"lastChecked\" timestamp(3))",
           "prisma_bad");
    auto write = [&](const std::string& name, const std::string& text) {
        fs::path file = dir.path() / name;
        std::ofstream(file) << text;
        return file.string();
    };
    auto url_with = [&](const std::string& file) {
        return s.url("app", password, "prisma_bad", "127.0.0.1", "schema=platform&mapping=" + file);
    };
    const std::string good_tables =
        R"("providers": {"table": "Provider", "id": "id", "slug": "slug", "name": "name"},
           "statuses": {"table": "ModelStatus", "id": "id", "model_id": "modelId",
                        "health": "status", "checked_at": "lastChecked"})";
    auto mapping = [&](const std::string& models) {
        return R"({"format": "modelrepo.mapping/1", )" + good_tables + R"(, "models": )" + models +
               "}";
    };

    // Malformed: open() fails at once, naming the key.
    struct Bad {
        std::string text, names;
    };
    for (const Bad& bad : {
             Bad{"{not json", "not valid JSON"},
             Bad{R"({"format": "modelrepo.mapping/2"})", "\"format\""},
             Bad{mapping(R"({"table": "Model", "id": "id", "slug": "slug", "name": "name"})"),
                 "models.provider_id"},
             Bad{mapping(R"({"table": "Model", "slug": "slug", "name": 7, "provider_id": "p"})"),
                 "models.name"},
             Bad{mapping(R"({"table": "Model", "slug": "slug", "name": "name",
                             "provider_id": "providerId", "colour": "c"})"),
                 "models.colour"},
         }) {
        auto opened = PostgresRepository::open(url_with(write("bad.json", bad.text)));
        Error e = expect_error(opened, Errc::invalid_argument);
        CHECK(e.message.find(bad.names) != std::string::npos);
    }
    auto fifo = dir.path() / "fifo.json";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    expect_error(PostgresRepository::open(url_with(fifo.string())), Errc::invalid_argument);

    // A column the table lacks: schema_missing naming it, never a generic SQL error.
    auto missing = open_repo(url_with(write(
        "missing.json", mapping(R"({"table": "Model", "id": "id", "slug": "slug", "name": "name",
                                    "provider_id": "providerId", "active": "isActive"})"))));
    Error e = expect_error(missing->count_models(), Errc::schema_missing);
    CHECK(e.message.find("\"platform\".\"Model\".\"isActive\" (models.active) does not exist") !=
          std::string::npos);
    CHECK(e.sqlstate.empty());
    // A column whose type cannot be read as what it maps.
    auto wrong = open_repo(url_with(write(
        "wrong.json", mapping(R"({"table": "Model", "id": "id", "slug": "slug", "name": "name",
                                  "provider_id": "providerId",
                                  "context_window": "contextWindow"})"))));
    e = expect_error(wrong->list_models(), Errc::schema_missing);
    CHECK(e.message.find("(models.context_window) is text") != std::string::npos);
    // A table that is not there.
    auto no_table = open_repo(
        url_with(write("table.json", mapping(R"({"table": "Models", "slug": "slug", "name": "name",
                                  "provider_id": "providerId"})"))));
    e = expect_error(no_table->migrate(), Errc::schema_missing);
    CHECK(e.message.find("\"platform\".\"Models\"") != std::string::npos);
    // The doctor names every problem of a mapping, each with its fix.
    std::string cli = require_env("MODELREPO_CLI");
    auto doctor = run_process(
        {cli, "doctor", url_with(write("two.json", mapping(R"({"table": "Model", "id": "id",
            "slug": "slug", "name": "name", "provider_id": "providerId", "active": "isActive",
            "context_window": "contextWindow"})")))},
        {{"MODELREPO_SOURCES", ""}});
    CAPTURE(doctor.out);
    CHECK(doctor.exit_code == 1);
    CHECK(doctor.out.find("(models.active) does not exist") != std::string::npos);
    CHECK(doctor.out.find("(models.context_window) is text") != std::string::npos);
    CHECK(doctor.out.find("fix models.active in the mapping") != std::string::npos);
    CHECK(doctor.out.find(password) == std::string::npos);
    s.psql("ALTER TABLE platform.\"ModelStatus\" DROP CONSTRAINT \"ModelStatus_modelId_key\"",
           "prisma_bad");
    auto no_unique = run_process(
        {cli, "doctor", url_with(write("plain.json", mapping(R"({"table": "Model", "id": "id",
            "slug": "slug", "name": "name", "provider_id": "providerId"})")))},
        {{"MODELREPO_SOURCES", ""}});
    CAPTURE(no_unique.out);
    CHECK(no_unique.exit_code == 1);
    CHECK(no_unique.out.find("no unique index on \"platform\".\"ModelStatus\".\"modelId\"") !=
          std::string::npos);
    CHECK(no_unique.out.find("CREATE UNIQUE INDEX ON \"platform\".\"ModelStatus\" (\"modelId\")") !=
          std::string::npos);

    // Nothing was created by the failed migrate.
    CHECK(s.psql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'modelrepo%'", "prisma_bad") ==
          "0");
    check_no_password_seen(8);
}

TEST_CASE("the live copy, cache=live and the outbox over a mapped schema: a write during an "
          "outage lands in the user's table after the restart") {
    if (!have_prisma())
        return;
    auto& s = server();
    TempDir dir;
    Client c = prisma_owned_database("prisma_durable", dir);
    REQUIRE(open_repo(mapped_url("prisma_durable"))->migrate().value() == 3);
    auto repo = open_layered(mapped_url(
        "prisma_durable", "connect_timeout=2&cache=live&cache_dir=" + dir.path().string() +
                              "&outbox=" + (dir.path() / "outbox.db").string()));
    REQUIRE(eventually([&] { return repo.copy_state().in_sync; }, 10s));
    // The copy follows a Prisma write (through the feed's triggers on the user's table).
    c.run({"set-status", "gemini-2.5-pro", "outage"});
    CHECK(eventually(
        [&] {
            auto m = repo->find_model("gemini-2.5-pro");
            return m && m.value() && m.value()->status->health == Health::outage;
        },
        10s));

    s.kill9();
    RestartOnExit restart{s};
    Timestamp t = floor<milliseconds>(system_clock::now()) + 1s;
    std::vector<ModelStatus> batch{
        {"gpt-5", Health::degraded, 0.75, 300.0, 0.25, "outage-test", t}};
    auto queued = repo->write_statuses(batch);
    if (!queued)
        FAIL(queued.error().to_string());
    CHECK(queued.value().queued == 1);
    // Read your write: the copy that stands in for the database has it.
    CHECK(repo->find_model("gpt-5").value()->status->region == "outage-test");
    CHECK(repo->count_models().value() == 32);

    s.start();
    REQUIRE_MESSAGE(s.available(), s.why());
    REQUIRE(eventually([&] { return repo.outbox().outbox_state().value().statuses == 0; }, 30s));
    CHECK(s.psql("SELECT s.status || ',' || s.region FROM platform.\"ModelStatus\" s JOIN "
                 "platform.\"Model\" m ON m.id = s.\"modelId\" WHERE m.slug = 'gpt-5'",
                 "prisma_durable") == "DEGRADED,outage-test");
    json back = c.run({"get-status", "gpt-5"});
    CHECK(back["region"] == "outage-test");
    CHECK(back["checked_at_ms"] == duration_cast<milliseconds>(t.time_since_epoch()).count());
}
