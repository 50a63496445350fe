// SPDX-License-Identifier: MIT
// modelrepo's tables and the SQL of every repository call.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace modelrepo::detail {

struct Migration {
    int version;
    std::string_view name;
    std::string_view sql;
};

/// Every migration, in order. Append only: a released migration never changes.
std::span<const Migration> migrations();

/// Key of the advisory lock that serializes migrate() across processes.
inline constexpr long long migration_lock_key = 0x6d6f64656c7265; // "modelre"

/// A statement with the name it is prepared under. `name` and `sql` view string
/// literals, so `data()` is NUL-terminated (libpq takes C strings; schema.cpp checks).
struct Statement {
    std::size_t id; ///< its bit in PooledConnection::prepared (checked in schema.cpp)
    std::string_view name;
    std::string_view sql;
};

namespace sql {

inline constexpr Statement count_models{0, "modelrepo_count_models", "SELECT count(*) FROM models"};
inline constexpr Statement count_providers{1, "modelrepo_count_providers",
                                           "SELECT count(*) FROM providers"};
inline constexpr Statement list_statuses{
    2, "modelrepo_list_statuses",
    "SELECT model_slug, health, availability, latency_ms, error_rate, region, "
    "(extract(epoch FROM checked_at) * 1000000)::bigint "
    "FROM model_status ORDER BY model_slug"};

// Columns: 0 slug, 1 name, 2 provider_slug, 3 description, 4 context_window, 5 active,
// 6 provider name, 7 provider website, 8 health, 9 availability, 10 latency_ms,
// 11 error_rate, 12 region, 13 checked_at (µs since the epoch)
#define MODELREPO_MODEL_COLUMNS                                                                    \
    "SELECT m.slug, m.name, m.provider_slug, m.description, m.context_window, m.active, "          \
    "p.name, p.website, s.health, s.availability, s.latency_ms, s.error_rate, s.region, "          \
    "(extract(epoch FROM s.checked_at) * 1000000)::bigint "                                        \
    "FROM models m JOIN providers p ON p.slug = m.provider_slug "                                  \
    "LEFT JOIN model_status s ON s.model_slug = m.slug "

inline constexpr Statement find_models{3, "modelrepo_find_models",
                                       MODELREPO_MODEL_COLUMNS "WHERE m.slug = ANY($1::text[])"};
inline constexpr Statement find_model{4, "modelrepo_find_model",
                                      MODELREPO_MODEL_COLUMNS "WHERE m.slug = $1"};
inline constexpr Statement list_models{5, "modelrepo_list_models",
                                       MODELREPO_MODEL_COLUMNS "ORDER BY m.slug"};
#undef MODELREPO_MODEL_COLUMNS

inline constexpr Statement system_stats{
    6, "modelrepo_system_stats",
    "SELECT count(*), count(*) FILTER (WHERE m.active), "
    "(SELECT count(*) FROM providers), "
    "count(*) FILTER (WHERE s.health = 'operational'), "
    "count(*) FILTER (WHERE s.health = 'degraded'), "
    "count(*) FILTER (WHERE s.health = 'outage'), "
    "count(*) FILTER (WHERE s.health IS NULL OR s.health = 'unknown'), "
    "(extract(epoch FROM now()) * 1000000)::bigint "
    "FROM models m LEFT JOIN model_status s ON s.model_slug = m.slug"};

// One multi-row upsert; a row older than the stored one is left alone.
inline constexpr Statement upsert_statuses{
    7, "modelrepo_upsert_statuses",
    "INSERT INTO model_status AS cur "
    "(model_slug, health, availability, latency_ms, error_rate, region, checked_at) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], "
    "$6::text[], $7::timestamptz[]) "
    "ON CONFLICT (model_slug) DO UPDATE SET health = EXCLUDED.health, "
    "availability = EXCLUDED.availability, latency_ms = EXCLUDED.latency_ms, "
    "error_rate = EXCLUDED.error_rate, region = EXCLUDED.region, "
    "checked_at = EXCLUDED.checked_at "
    "WHERE cur.checked_at <= EXCLUDED.checked_at"};

// Two steps: a statement naming a missing table fails even in an untaken CASE branch.
inline constexpr std::string_view has_migrations_table =
    "SELECT to_regclass('schema_migrations') IS NOT NULL";
inline constexpr std::string_view schema_version =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";

} // namespace sql

} // namespace modelrepo::detail
