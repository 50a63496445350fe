// SPDX-License-Identifier: MIT
#include "schema.hpp"

#include <array>

namespace modelrepo::detail {

namespace {

constexpr std::array all_migrations{
    Migration{1, "catalogue tables", R"sql(
CREATE TABLE providers (
    slug    text PRIMARY KEY CHECK (slug <> ''),
    name    text NOT NULL,
    website text NOT NULL DEFAULT ''
);
CREATE TABLE models (
    slug           text PRIMARY KEY CHECK (slug <> ''),
    name           text NOT NULL,
    provider_slug  text NOT NULL REFERENCES providers (slug) ON UPDATE CASCADE,
    description    text NOT NULL DEFAULT '',
    context_window bigint CHECK (context_window > 0),
    active         boolean NOT NULL DEFAULT true
);
CREATE INDEX models_provider_slug_idx ON models (provider_slug);
CREATE TABLE model_status (
    model_slug   text PRIMARY KEY REFERENCES models (slug) ON DELETE CASCADE ON UPDATE CASCADE,
    health       text NOT NULL CHECK (health IN ('operational', 'degraded', 'outage', 'unknown')),
    availability double precision NOT NULL CHECK (availability BETWEEN 0 AND 1),
    latency_ms   double precision CHECK (latency_ms >= 0),
    error_rate   double precision NOT NULL CHECK (error_rate BETWEEN 0 AND 1),
    region       text NOT NULL DEFAULT '',
    checked_at   timestamptz NOT NULL
);
CREATE INDEX model_status_health_idx ON model_status (health);
)sql"},
};

/// Every Statement of schema.hpp, in id order (checked below).
constexpr std::array all_prepared{
    sql::count_models, sql::count_providers, sql::list_statuses, sql::find_models,
    sql::find_model,   sql::list_models,     sql::system_stats,  sql::upsert_statuses,
};

} // namespace

std::span<const Migration> migrations() {
    return all_migrations;
}

// Each Statement's id is its position in all_prepared, so ids are distinct and below 64.
static_assert(all_prepared.size() <= 64, "PooledConnection::prepared is a 64-bit set");

consteval bool ids_and_terminators_hold() {
    for (std::size_t i = 0; i < all_prepared.size(); ++i) {
        const Statement& s = all_prepared[i];
        // Reading one past the view is defined here: each views a whole literal.
        if (s.id != i || s.name.data()[s.name.size()] != '\0' || s.sql.data()[s.sql.size()] != '\0')
            return false;
    }
    return true;
}
static_assert(ids_and_terminators_hold(),
              "each Statement's id is its position in all_prepared, and views a literal");

} // namespace modelrepo::detail
