// SPDX-License-Identifier: MIT
// modelrepo's tables and the SQL of every repository call.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "connection.hpp"

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

/// The SQL of one statement, `{t}` where a table's schema goes ("" or `"schema".`).
struct StatementText {
    StatementId id;
    std::string_view name;
    std::string_view sql;
};

/// Every statement's text, in id order (checked in schema.cpp).
std::span<const StatementText> statement_texts();

/// The statements of one repository: the texts with its schema filled in, so that no
/// statement depends on a session's search_path (PgBouncer's transaction mode shares
/// sessions between clients).
class StatementSet {
public:
    /// `schema_prefix`: a quoted identifier and a dot (`"app".`), or "" for none.
    explicit StatementSet(const std::string& schema_prefix);
    StatementSet(const StatementSet&) = delete;
    StatementSet& operator=(const StatementSet&) = delete;

    const Statement& operator[](StatementId id) const noexcept { return statements_[id]; }

private:
    std::array<std::string, statement_count> sql_;
    std::array<Statement, statement_count> statements_;
};

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
