// SPDX-License-Identifier: MIT
// The mapping file (modelrepo.mapping/1) and the SQL generated from a mapping, without a
// server: what is quoted, what is cast, what goes by id and what by slug. The statements
// run against a real PostgreSQL in tests/integration/test_prisma.cpp.
#include <doctest/doctest.h>

#include "postgres/catalog/mapping.hpp"
#include "postgres/catalog/schema.hpp"

using namespace modelrepo;
using namespace modelrepo::detail;

namespace {

const std::string prisma = R"({
  "format": "modelrepo.mapping/1",
  "providers": { "table": "Provider", "id": "id", "slug": "slug", "name": "name",
                 "website": "website", "updated_at": "updatedAt" },
  "models":    { "table": "Model", "id": "id", "provider_id": "providerId", "slug": "slug",
                 "name": "name", "description": "description",
                 "context_window": "contextWindow", "active": "isActive",
                 "updated_at": "updatedAt" },
  "statuses":  { "table": "ModelStatus", "id": "id", "model_id": "modelId",
                 "health": "status", "availability": "availability",
                 "latency_ms": "responseTime", "error_rate": "errorRate",
                 "region": "region", "checked_at": "lastChecked",
                 "updated_at": "updatedAt" },
  "health_values": { "operational": "OPERATIONAL", "outage": "OUTAGE" } })";

bool has(const std::string& text, const std::string& part) {
    INFO(text);
    return text.find(part) != std::string::npos;
}

/// The facts a database with Prisma's DDL gives (an enum health, TIMESTAMP(3) columns).
Mapping checked(Mapping m) {
    for (MappedField& f : m.fields()) {
        if (!f.column->mapped())
            continue;
        f.column->type = f.accepts.empty() ? ColumnType::text : f.accepts.front();
        f.column->unique = f.key == "slug" || f.key == "model_id";
    }
    m.statuses.health.type = ColumnType::enumerated;
    m.statuses.health.type_sql = "\"platform\".\"HealthStatus\"";
    for (Column* c : {&m.statuses.checked_at, &m.statuses.updated_at, &m.models.updated_at,
                      &m.providers.updated_at})
        c->type = ColumnType::timestamp;
    m.models.context_window.type = ColumnType::integer;
    return m;
}

} // namespace

TEST_CASE("the format's example parses; optional fields left out or null read as absent") {
    auto m = parse_mapping(prisma, "m.json");
    REQUIRE(m);
    CHECK_FALSE(m.value().builtin);
    CHECK(m.value().models.table == "Model");
    CHECK(m.value().models.provider_id.name == "providerId");
    CHECK(m.value().statuses.latency_ms.name == "responseTime");
    CHECK(m.value().health_values.size() == 2);
    auto minimal = parse_mapping(R"({"format": "modelrepo.mapping/1",
        "providers": {"table": "p", "slug": "s", "name": "n", "website": null},
        "models": {"table": "m", "slug": "s", "name": "n", "provider_id": "p"},
        "statuses": {"table": "st", "model_id": "m", "health": "h", "checked_at": "c"}})",
                                 "min.json");
    REQUIRE(minimal);
    CHECK_FALSE(minimal.value().providers.website.mapped());
    CHECK_FALSE(minimal.value().models.id.mapped());
    // Without ids the slugs are the keys: no join to find a status's model.
    std::string statuses = statement_sql(list_statuses, minimal.value(), "");
    CHECK(has(statuses, "SELECT s.\"m\", "));
    CHECK_FALSE(has(statuses, "JOIN"));
    CHECK(has(statement_sql(list_models, minimal.value(), ""), "''")); // no description column
}

TEST_CASE("a malformed mapping is invalid_argument naming the file and the key") {
    struct Case {
        std::string text, names;
    };
    for (const Case& c : {
             Case{"[]", "must be a JSON object"},
             Case{"{", "not valid JSON"},
             Case{R"({"format": "modelrepo.mapping/1"})", "missing \"providers\""},
             Case{R"({"format": "x"})", "\"format\" must be"},
             Case{R"({"format": "modelrepo.mapping/1", "extra": 1})", "unknown key \"extra\""},
             Case{R"({"format": "modelrepo.mapping/1", "providers": {"table": "p", "slug": "",
                  "name": "n"}})",
                  "providers.slug must not be empty"},
             Case{R"({"format": "modelrepo.mapping/1", "providers": {"table": "p", "slug": "s",
                  "name": "n"}, "models": []})",
                  "models must be an object"},
         }) {
        auto m = parse_mapping(c.text, "bad.json");
        REQUIRE_FALSE(m);
        CAPTURE(m.error().message);
        CHECK(m.error().is(Errc::invalid_argument));
        CHECK(has(m.error().message, "mapping file 'bad.json'"));
        CHECK(has(m.error().message, c.names));
    }
    std::string bad_health = prisma;
    bad_health.replace(bad_health.find("\"outage\": \"OUTAGE\""), 18, "\"broken\": \"X\"");
    auto m = parse_mapping(bad_health, "h.json");
    REQUIRE_FALSE(m);
    CHECK(has(m.error().message, "health_values.broken: not a health"));
    std::string long_name = prisma;
    long_name.replace(long_name.find("\"Provider\""), 10, "\"" + std::string(64, 'x') + "\"");
    CHECK_FALSE(parse_mapping(long_name, "l.json"));
}

TEST_CASE("names are quoted as identifiers, never spliced; values as literals") {
    std::string evil = R"({"format": "modelrepo.mapping/1",
        "providers": {"table": "p\"; DROP TABLE x; --", "slug": "s", "name": "n"},
        "models": {"table": "m", "slug": "s", "name": "n", "provider_id": "p"},
        "statuses": {"table": "st", "model_id": "m", "health": "h", "checked_at": "c"},
        "health_values": {"outage": "it's down"}})";
    auto m = parse_mapping(evil, "evil.json");
    REQUIRE(m);
    std::string sql = statement_sql(count_providers, m.value(), "\"app\".");
    CHECK(sql == "SELECT count(*) FROM \"app\".\"p\"\"; DROP TABLE x; --\"");
    CHECK(has(statement_sql(list_statuses, m.value(), ""), "WHEN 'it''s down' THEN 'outage'"));
}

TEST_CASE("Prisma's tables: relations by id, the enum cast, UTC in TIMESTAMP(3), ids made, "
          "updatedAt set") {
    Mapping m = checked(parse_mapping(prisma, "m.json").value());
    std::string upsert = statement_sql(upsert_statuses, m, "\"platform\".");
    CHECK(has(upsert, "INSERT INTO \"platform\".\"ModelStatus\" AS cur (\"id\", \"modelId\", "
                      "\"status\""));
    CHECK(has(upsert, "replace(gen_random_uuid()::text, '-', '')"));
    CHECK(has(upsert, "coalesce(m.\"id\", 'modelrepo: no model ' || u.slug)"));
    CHECK(has(upsert, "CAST(CASE u.health WHEN 'operational' THEN 'OPERATIONAL' WHEN 'outage' "
                      "THEN 'OUTAGE' ELSE u.health END AS \"platform\".\"HealthStatus\")"));
    CHECK(has(upsert, "(u.checked_at AT TIME ZONE 'UTC')"));
    CHECK(has(upsert, "\"updatedAt\" = EXCLUDED.\"updatedAt\""));
    CHECK(has(upsert, "ON CONFLICT (\"modelId\")"));
    std::string models = statement_sql(find_models, m, "");
    CHECK(has(models, "JOIN \"Provider\" p ON p.\"id\" = m.\"providerId\""));
    CHECK(has(models, "LEFT JOIN \"ModelStatus\" s ON s.\"modelId\" = m.\"id\""));
    CHECK(has(models, "s.\"status\"::text"));
    CHECK(has(models, "m.\"contextWindow\"::bigint"));
    // A column with a default (an identity id) is left to the database.
    m.statuses.id.has_default = true;
    CHECK_FALSE(has(statement_sql(upsert_statuses, m, ""), "gen_random_uuid"));
    ImportSql import = import_sql(m, "");
    CHECK(has(import.models, "JOIN \"Provider\" p ON p.\"slug\" = u.c"));
    CHECK(has(import.models, "IS DISTINCT FROM"));
    CHECK(has(import.delete_models, "NOT EXISTS"));
    std::string feed = mapped_feed_sql(m, "");
    CHECK(has(feed, "(SELECT m.\"slug\" FROM \"Model\" m WHERE m.\"id\" = NEW.\"modelId\")"));
    CHECK(has(feed, "CREATE TRIGGER modelrepo_status_logged AFTER INSERT OR UPDATE OR DELETE ON "
                    "\"ModelStatus\""));
    CHECK_FALSE(has(feed, "ALTER TABLE \"Model"));
}

TEST_CASE("what writes need: unique slugs and model ids, ids it can make") {
    Mapping m = checked(parse_mapping(prisma, "m.json").value());
    CHECK(write_problems(m, "").empty());
    m.models.slug.unique = false;
    m.statuses.id.type = ColumnType::integer;
    auto problems = write_problems(m, "\"platform\".");
    REQUIRE(problems.size() == 2);
    CHECK(has(problems[0].what, "no unique index on \"platform\".\"Model\".\"slug\""));
    CHECK(problems[0].fix == "CREATE UNIQUE INDEX ON \"platform\".\"Model\" (\"slug\")");
    CHECK(has(problems[1].what, "(statuses.id) has no default and is neither text nor uuid"));
    CHECK(Mapping::builtin_tables().builtin);
    CHECK(write_problems(Mapping::builtin_tables(), "").empty());
}
