// SPDX-License-Identifier: MIT
// feed=logical on a mapping (mapping=), against a real PostgreSQL 15 with wal_level =
// logical: Prisma's tables (tests/prisma/owned), keyed by ids, where a status names its
// model by id and a DELETE carries only the key. migrate puts them in a publication
// (refusing a table without a replica identity, with the fix) and back on triggers; the
// feed names every change by slug, once, in commit order.
#include <algorithm>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>

#include <doctest/doctest.h>

#include "pg_catalogue.hpp"
#include "process.hpp"
#include "watching.hpp"

using namespace modelrepo;
using namespace modelrepo::test;
using namespace std::chrono;

namespace {

std::string source_file(const std::string& relative) {
    std::ifstream in(require_env("MODELREPO_SOURCE_ROOT") + "/" + relative);
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string mapping_file() {
    return require_env("MODELREPO_SOURCE_ROOT") + "/tests/prisma/owned/mapping.json";
}

/// A fresh database holding Prisma's tables (owned by "app", as `prisma migrate` run by
/// the application's role makes them), `ddl_edit` applied to the DDL first, and one
/// provider, one model and its status.
void prisma_database(const std::string& name,
                     const std::function<std::string(std::string)>& ddl_edit = {}) {
    auto& s = server();
    fresh_database(name);
    std::string ddl = source_file("tests/prisma/owned/migration.sql");
    if (ddl_edit)
        ddl = ddl_edit(ddl);
    s.psql("SET ROLE app;\n" + ddl + R"sql(
        INSERT INTO "Provider" (id, slug, name, "updatedAt") VALUES ('p1', 'openai', 'OpenAI', now());
        INSERT INTO "Model" (id, slug, name, "providerId", "updatedAt")
            VALUES ('m1', 'gpt-4o', 'GPT-4o', 'p1', now());
        INSERT INTO "ModelStatus" (id, "modelId", status, availability, "errorRate", "lastChecked", "updatedAt")
            VALUES ('s1', 'm1', 'OPERATIONAL', 1, 0, now(), now());
    )sql",
           name);
}

/// Model m<n> (`slug`, provider p1) and its status s<n>, in one transaction.
void add_model(const std::string& name, const std::string& n, const std::string& slug,
               double availability) {
    server().psql("BEGIN; INSERT INTO \"Model\" (id, slug, name, \"providerId\", \"updatedAt\") "
                  "VALUES ('m" +
                      n + "', '" + slug + "', '" + slug +
                      "', 'p1', now()); "
                      "INSERT INTO \"ModelStatus\" (id, \"modelId\", availability, \"errorRate\", "
                      "\"lastChecked\", \"updatedAt\") VALUES ('s" +
                      n + "', 'm" + n + "', " + std::to_string(availability) +
                      ", 0, now(), now()); COMMIT;",
                  name);
}

std::string url(const std::string& name, const std::string& feed) {
    return server().url("app", password, name, "127.0.0.1",
                        (feed.empty() ? "" : "feed=" + feed + "&") + "mapping=" + mapping_file());
}

/// Row and truncate triggers on Prisma's three tables.
std::string triggers(const std::string& name) {
    return server().psql("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
                         "('\"Model\"'::regclass, '\"Provider\"'::regclass, "
                         "'\"ModelStatus\"'::regclass)",
                         name);
}

std::string publications(const std::string& name) {
    return server().psql(
        "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'modelrepo_catalogue'", name);
}

/// Versions increase along what `seen` received.
bool versions_increase(ChangeCollector& seen) {
    auto changes = seen.copy();
    for (std::size_t i = 1; i < changes.size(); ++i)
        if (changes[i].version <= changes[i - 1].version)
            return false;
    return true;
}

using Kind = CatalogChange::Kind;

/// The doctor's "feed" check on `name` through the mapping.
std::string doctor_feed(const std::string& name) {
    auto report = diagnose_postgres(url(name, ""));
    REQUIRE_MESSAGE(report, report.error().to_string());
    for (const auto& check : report.value().checks)
        if (check.name == "feed")
            return std::string(to_string(check.status)) + ": " + check.detail;
    return "";
}

} // namespace

TEST_CASE("feed=logical on Prisma's tables, keyed by ids: migrate makes the publication and "
          "drops the triggers; inserts, a renamed slug, a status by its model's id, a DELETE "
          "that carries only the id and its cascade reach watch() by slug, once each, in "
          "commit order; migrate with feed=triggers puts them back") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_mapped";
    prisma_database(name);
    auto pg = open_repo(url(name, "logical"));
    auto migrated = pg->migrate();
    REQUIRE_MESSAGE(migrated, migrated.error().to_string());
    REQUIRE(pg->migrate()); // twice is a no-op
    CHECK(triggers(name) == "0");
    CHECK(publications(name) == "3");
    const std::string told = doctor_feed(name);
    CAPTURE(told);
    CHECK(told.find("ok: the logical feed: publication modelrepo_catalogue") == 0);
    {
        // Migrated for the logical feed, which cannot run: on a mapping feed=auto runs the
        // trigger feed (there is nothing to poll), and the doctor says so.
        s.psql("ALTER ROLE app NOREPLICATION");
        const std::string stuck = doctor_feed(name);
        CAPTURE(stuck);
        CHECK(stuck.find("fail: ") == 0);
        CHECK(stuck.find("a mapping's feed=auto runs the trigger feed") != std::string::npos);
        auto chosen = open_repo(url(name, ""));
        auto sub = chosen->watch([](const CatalogChange&) {});
        REQUIRE_MESSAGE(sub, sub.error().to_string());
        CHECK(eventually([&] { return feed_kind(*chosen) == "triggers"; }, 20s));
        s.psql("ALTER ROLE app REPLICATION");
    }

    ChangeCollector seen;
    auto sub = pg->watch(std::ref(seen));
    REQUIRE_MESSAGE(sub, sub.error().to_string());
    REQUIRE(eventually([&] { return seen.count(Kind::resync) == 1; }, 20s));
    CHECK(feed_kind(*pg) == "logical");

    // A status, by its model's id.
    s.psql(R"(UPDATE "ModelStatus" SET availability = 0.5 WHERE id = 's1')", name);
    REQUIRE(eventually([&] { return seen.count(Kind::status, "gpt-4o") == 1; }, 20s));
    // A model and its status made in one transaction.
    add_model(name, "2", "claude", 0.9);
    REQUIRE(eventually([&] { return seen.count(Kind::status, "claude") == 1; }, 20s));
    CHECK(seen.count(Kind::model, "claude") == 1);
    // A slug renamed: the key (the id) did not change, so the stream sends no old row;
    // the old slug is news all the same (a copy drops it).
    s.psql(R"(UPDATE "Model" SET slug = 'gpt-4o-2024' WHERE id = 'm1')", name);
    REQUIRE(eventually([&] { return seen.count(Kind::model, "gpt-4o-2024") == 1; }, 20s));
    // Told in one batch, the old slug after the new: waited for, not read at once.
    CHECK(eventually([&] { return seen.count(Kind::model, "gpt-4o") == 1; }, 20s));
    // A status of the renamed model: named by the new slug.
    s.psql(R"(UPDATE "ModelStatus" SET availability = 0.25 WHERE "modelId" = 'm1')", name);
    REQUIRE(eventually([&] { return seen.count(Kind::status, "gpt-4o-2024") == 1; }, 20s));
    // A DELETE carries the id only; its cascade deletes the status, named by the status's
    // id, after the model's row is gone.
    s.psql(R"(DELETE FROM "Model" WHERE id = 'm2')", name);
    REQUIRE(eventually([&] { return seen.count(Kind::status, "claude") == 2; }, 20s));
    CHECK(seen.count(Kind::model, "claude") == 2);
    // A provider made and deleted.
    s.psql(
        R"(INSERT INTO "Provider" (id, slug, name, "updatedAt") VALUES ('p2', 'mistral', 'Mistral', now()))",
        name);
    s.psql(R"(DELETE FROM "Provider" WHERE id = 'p2')", name);
    REQUIRE(eventually([&] { return seen.count(Kind::provider, "mistral") == 2; }, 20s));
    CHECK(seen.count(Kind::resync) == 1); // every change was named: no resync
    CHECK(versions_increase(seen));
    // The copy's reads through the mapping agree.
    auto model = pg->find_model("gpt-4o-2024");
    REQUIRE(model);
    REQUIRE(model.value());
    CHECK(model.value()->status->availability == doctest::Approx(0.25));
    CHECK(seen.copy().size() == 11); // the resync and ten changes

    // TRUNCATE is one resync; the maps start again from what follows.
    s.psql(R"(TRUNCATE "ModelStatus")", name);
    REQUIRE(eventually([&] { return seen.count(Kind::resync) == 2; }, 20s));
    s.psql(
        R"(INSERT INTO "ModelStatus" (id, "modelId", availability, "errorRate", "lastChecked", "updatedAt")
              VALUES ('s3', 'm1', 0.75, 0, now(), now()))",
        name);
    REQUIRE(eventually([&] { return seen.count(Kind::status, "gpt-4o-2024") == 2; }, 20s));
    sub.value().cancel();

    // Back to triggers: the trigger feed names the same changes.
    auto back = open_repo(url(name, "triggers"));
    REQUIRE(back->migrate());
    CHECK(triggers(name) == "6");
    CHECK(publications(name) == "0");
    CHECK(doctor_feed(name).find("ok: the trigger feed") == 0);
    auto chosen = open_repo(url(name, "")); // feed=auto follows what migrate installed
    ChangeCollector heard;
    auto again = chosen->watch(std::ref(heard));
    REQUIRE(again);
    REQUIRE(eventually([&] { return heard.count(Kind::resync) == 1; }, 20s));
    CHECK(feed_kind(*chosen) == "triggers");
    s.psql(R"(UPDATE "ModelStatus" SET availability = 0.125 WHERE id = 's3')", name);
    CHECK(eventually([&] { return heard.count(Kind::status, "gpt-4o-2024") == 1; }, 20s));
}

TEST_CASE("feed=logical on a mapped table without a primary key: migrate refuses, naming the "
          "table and the fix, and changes nothing; with REPLICA IDENTITY USING INDEX it goes "
          "on, and a DELETE names the status by the index's column") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_mapped_no_key";
    prisma_database(name, [](std::string ddl) {
        const std::string key = ",\n\n    CONSTRAINT \"ModelStatus_pkey\" PRIMARY KEY (\"id\")";
        auto at = ddl.find(key);
        REQUIRE(at != std::string::npos);
        return ddl.erase(at, key.size());
    });
    auto pg = open_repo(url(name, "logical"));
    auto refused = pg->migrate();
    REQUIRE_FALSE(refused);
    seen_messages().push_back(refused.error().message);
    CAPTURE(refused.error().message);
    CHECK(refused.error().is(Errc::schema_missing));
    CHECK(refused.error().message.find("\"ModelStatus\"") != std::string::npos);
    CHECK(refused.error().message.find("REPLICA IDENTITY USING INDEX") != std::string::npos);
    // One transaction: nothing of the migration stayed.
    CHECK(triggers(name) == "0");
    CHECK(s.psql("SELECT count(*) FROM pg_publication", name) == "0");
    CHECK(s.psql("SELECT to_regclass('schema_migrations') IS NULL", name) == "t");
    // An UPDATE of the table still works (it is in no publication).
    s.psql(R"(UPDATE "ModelStatus" SET availability = 0.5)", name);

    s.psql(R"(ALTER TABLE "ModelStatus" REPLICA IDENTITY USING INDEX "ModelStatus_modelId_key")",
           name);
    auto migrated = pg->migrate();
    REQUIRE_MESSAGE(migrated, migrated.error().to_string());
    ChangeCollector seen;
    auto sub = pg->watch(std::ref(seen));
    REQUIRE(sub);
    REQUIRE(eventually([&] { return seen.count(Kind::resync) == 1; }, 20s));
    s.psql(R"(DELETE FROM "ModelStatus" WHERE id = 's1')", name);
    CHECK(eventually([&] { return seen.count(Kind::status, "gpt-4o") == 1; }, 20s));
    CHECK(seen.count(Kind::resync) == 1);
}

TEST_CASE("cache=live on Prisma's tables with feed=logical: the copy's re-read and the feed's "
          "ids share the slot's snapshot; psql's writes reach the copy's reads by slug") {
    auto& s = server();
    s.psql("ALTER ROLE app REPLICATION");
    const std::string name = "logical_mapped_live";
    prisma_database(name);
    REQUIRE(open_repo(url(name, "logical"))->migrate());
    auto layered = open_layered(url(name, "logical") + "&cache=live");
    ChangeCollector seen;
    auto sub = layered->watch(std::ref(seen));
    REQUIRE_MESSAGE(sub, sub.error().to_string());
    REQUIRE(eventually([&] { return layered.copy_state().in_sync; }, 20s));
    auto availability = [&](const std::string& slug) {
        auto model = layered->find_model(slug);
        return model && model.value() && model.value()->status ? model.value()->status->availability
                                                               : -1.0;
    };
    CHECK(availability("gpt-4o") == doctest::Approx(1.0));
    s.psql(R"(UPDATE "ModelStatus" SET availability = 0.625 WHERE "modelId" = 'm1')", name);
    CHECK(eventually([&] { return availability("gpt-4o") == 0.625; }, 20s));
    // A new model with its status, then the model deleted (its status by cascade): the
    // copy has it, then has it no more.
    add_model(name, "7", "o3", 0.875);
    CHECK(eventually([&] { return availability("o3") == 0.875; }, 20s));
    s.psql(R"(DELETE FROM "Model" WHERE slug = 'o3')", name);
    CHECK(eventually(
        [&] {
            auto model = layered->find_model("o3");
            return model && !model.value();
        },
        20s));
    CHECK(seen.count(CatalogChange::Kind::resync) == 1);
    CHECK(layered.copy_state().in_sync);
}

TEST_CASE("no message ever held the password") {
    for (const auto& message : seen_messages())
        CHECK(message.find(password) == std::string::npos);
}
