// SPDX-License-Identifier: MIT
// The doctor's look at the catalogue at one address: modelrepo's tables or a mapping's,
// the change feed, statuses stored with a future date.
#include <pqxx/nontransaction>

#include "../catalog/mapping.hpp"
#include "checks.hpp"

namespace modelrepo::detail::doctor {

namespace {

/// Statuses stored with a `checked_at` further ahead of this clock than the allowed skew
/// (written by psql, Prisma or a writer with a wrong clock): each silently keeps every real
/// status of its model out, since an older `checked_at` is ignored. `table` and `checked_at`
/// are quoted SQL; `utc_column`: a timestamp without time zone holding UTC.
void check_future_statuses(pqxx::nontransaction& tx, const std::string& table,
                           const std::string& checked_at, bool utc_column,
                           const PostgresConfig& config, const std::string& label, Checks& checks) {
    std::string limit = format_timestamp(Clock::now() + config.max_clock_skew);
    std::string column = utc_column ? "(" + checked_at + " AT TIME ZONE 'UTC')" : checked_at;
    auto row = tx.exec_params("SELECT count(*), max(" + column + ") FROM " + table + " WHERE " +
                                  column + " > $1::timestamptz",
                              limit)[0];
    if (std::string(row[0].c_str()) == "0")
        return;
    checks.push_back({label, "future statuses", Status::fail,
                      std::string(row[0].c_str()) +
                          " stored statuses are dated in the future (the latest " + row[1].c_str() +
                          "), past the allowed skew: every real status of those models is "
                          "ignored as older until then",
                      "UPDATE " + table + " SET " + checked_at + " = " +
                          (utc_column ? "(now() AT TIME ZONE 'UTC')" : "now()") + " WHERE " +
                          column + " > '" + limit + "'; (then the next writes land)"});
}

} // namespace

void check_schema(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                  Checks& checks) {
    bool has = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0].as<bool>();
    if (!has) {
        checks.push_back({label, "schema", Status::fail, "modelrepo's tables are missing",
                          "modelrepo --source URL migrate"});
        return;
    }
    auto row = tx.exec("SELECT (SELECT max(version) FROM schema_migrations), "
                       "(SELECT count(*) FROM models), (SELECT count(*) FROM providers), "
                       "(SELECT count(*) FROM model_status)")[0];
    checks.push_back(
        {label, "schema", Status::ok,
         "schema version " + std::string(row[0].c_str()) + "; " + row[1].c_str() + " models, " +
             row[2].c_str() + " providers, " + row[3].c_str() + " statuses",
         std::string(row[1].c_str()) == "0" ? "empty catalogue: modelrepo --source URL import FILE"
                                            : ""});
    check_future_statuses(tx, "model_status", "checked_at", false, config, label, checks);
}

/// A mapping (mapping=) against information_schema: every missing table or column, every
/// type that cannot be read, a missing unique index, each with its fix; then the feed.
void check_mapping(pqxx::nontransaction& tx, const PostgresConfig& config, const std::string& label,
                   Checks& checks) {
    auto loaded = load_mapping(config.mapping);
    if (!loaded) {
        checks.push_back({label, "mapping", Status::fail, loaded.error().message,
                          "fix the mapping file (format modelrepo.mapping/1)"});
        return;
    }
    Mapping mapping = std::move(loaded).value();
    auto rows = tx.exec_params(std::string(mapping_facts_sql()), config.schema,
                               mapped_tables_literal(mapping));
    std::vector<ColumnFact> facts;
    for (const auto& r : rows)
        facts.push_back({r[0].c_str(), r[1].c_str(), r[2].c_str(), r[3].c_str(), r[4].as<bool>(),
                         r[5].as<bool>()});
    std::string shown = config.schema.empty() ? "" : quote_identifier(config.schema) + ".";
    auto problems = apply_facts(mapping, facts, shown);
    if (problems.empty())
        problems = write_problems(mapping, shown);
    for (const auto& p : problems)
        checks.push_back({label, "mapping", Status::fail, p.what, p.fix});
    if (!problems.empty())
        return;
    checks.push_back({label, "mapping", Status::ok,
                      "the mapping '" + config.mapping + "' fits " + shown +
                          quote_identifier(mapping.models.table) + ", " +
                          quote_identifier(mapping.providers.table) + " and " +
                          quote_identifier(mapping.statuses.table),
                      ""});
    bool has = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0].as<bool>();
    std::string version =
        has ? tx.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].c_str()
            : "0";
    auto count = tx.exec("SELECT (SELECT count(*) FROM " + shown +
                         quote_identifier(mapping.models.table) + "), (SELECT count(*) FROM " +
                         shown + quote_identifier(mapping.providers.table) + ")")[0];
    check_future_statuses(tx, shown + quote_identifier(mapping.statuses.table),
                          quote_identifier(mapping.statuses.checked_at.name),
                          mapping.statuses.checked_at.type == ColumnType::timestamp, config, label,
                          checks);
    checks.push_back({label, "schema", version == "3" ? Status::ok : Status::fail,
                      std::string(count[0].c_str()) + " models, " + count[1].c_str() +
                          " providers in the mapped tables; " +
                          (version == "3" ? "the change feed is installed"
                                          : "the change feed is not installed (watch, cache=live "
                                            "and serve's /v1/changes need it)"),
                      version == "3" ? ""
                                     : "modelrepo --source URL migrate (adds only the "
                                       "feed's tables and triggers)"});
}

} // namespace modelrepo::detail::doctor
