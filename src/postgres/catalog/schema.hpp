// SPDX-License-Identifier: MIT
// modelrepo's tables and the SQL of every repository call.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "../driver/connection.hpp"
#include "mapping.hpp"

namespace modelrepo::detail {

struct Migration {
    int version;
    std::string_view name;
    std::string_view sql; ///< runs with search_path set to the repository's schema
};

/// Every migration, in order. Append only: a released migration never changes.
std::span<const Migration> migrations();

/// Key of the advisory lock that serializes migrate() across processes.
inline constexpr long long migration_lock_key = 0x6d6f64656c7265; // "modelre"

/// The statements of the repository's calls, by id (`Statement::id`).
enum StatementId : std::size_t {
    count_models,
    count_providers,
    list_statuses,
    find_models,
    find_model,
    list_models,
    system_stats,
    upsert_statuses,
    list_providers,
    find_providers,
    statement_count
};

/// A statement's prepared name (`modelrepo_<call>`), in id order.
std::string_view statement_name(StatementId id);

/// The SQL of one statement for `mapping`, tables prefixed with `schema_prefix` (""
/// or `"schema".`): generated, so that modelrepo's own tables and a user's are one path.
std::string statement_sql(StatementId id, const Mapping& mapping, const std::string& schema_prefix);

/// The statements of one repository: generated from its mapping with its schema filled
/// in, so that no statement depends on a session's search_path (PgBouncer's transaction
/// mode shares sessions between clients).
class StatementSet {
public:
    /// `schema_prefix`: a quoted identifier and a dot (`"app".`), or "" for none.
    StatementSet(const std::string& schema_prefix, const Mapping& mapping);
    StatementSet(const StatementSet&) = delete;
    StatementSet& operator=(const StatementSet&) = delete;

    const Statement& operator[](StatementId id) const noexcept { return statements_[id]; }

private:
    std::array<std::string, statement_count> sql_;
    std::array<Statement, statement_count> statements_;
};

/// An import's statements (in one transaction, the feed quiet): providers and models
/// merged by slug ($1.. the columns as arrays), then the rows the snapshot lacks deleted
/// ($1 its slugs), statuses replaced.
struct ImportSql {
    std::string providers;        ///< $1 slug, $2 name, $3 website
    std::string models;           ///< $1 slug, $2 name, $3 provider, $4 description,
                                  ///< $5 context_window, $6 active
    std::string delete_statuses;  ///< every status row (the snapshot's are upserted)
    std::string delete_models;    ///< $1 the slugs to keep
    std::string delete_providers; ///< $1 the slugs to keep
};
ImportSql import_sql(const Mapping& mapping, const std::string& schema_prefix);

/// The change feed on a mapped schema: its tables and functions (migration 3's, made
/// afresh), then row triggers on the user's tables that log slugs; a status row's
/// looks up its model's slug. Runs with search_path set to the schema.
std::string mapped_feed_sql(const Mapping& mapping, const std::string& schema_prefix);

namespace sql {

// Two steps: a statement naming a missing table fails even in an untaken CASE branch.
inline constexpr std::string_view has_migrations_table =
    "SELECT to_regclass('schema_migrations') IS NOT NULL";
inline constexpr std::string_view schema_version =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";
/// The schema version whose change feed this library reads (by transaction id; 2 had a
/// version row that serialized writers).
inline constexpr int feed_schema_version = 3;

} // namespace sql

} // namespace modelrepo::detail
