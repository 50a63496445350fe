// SPDX-License-Identifier: MIT
#include "schema.hpp"

#include "../feed/feed_sql.hpp"

namespace modelrepo::detail {

namespace {

// Migrations 2 and 3 around the feed's shared objects (feed/feed_sql.hpp): their own text.
constexpr std::string_view m2_log = R"sql(
CREATE TABLE catalog_version (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    version    bigint NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO catalog_version (version) VALUES (0);
CREATE TABLE catalog_changes (
    version bigint PRIMARY KEY,
    kind    text NOT NULL,
    slug    text NOT NULL,
    at      timestamptz NOT NULL
);
CREATE FUNCTION modelrepo_note_change(change_kind text, change_slug text) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v bigint;
    at timestamptz := clock_timestamp();
BEGIN
    UPDATE catalog_version SET version = version + 1, changed_at = at RETURNING version INTO v;
    INSERT INTO catalog_changes (version, kind, slug, at) VALUES (v, change_kind, change_slug, at);
    IF v % 1000 = 0 THEN
        DELETE FROM catalog_changes WHERE version <= v - 10000;
    END IF;
    PERFORM pg_notify('modelrepo:' || current_schema(),
                      json_build_object('kind', change_kind, 'slug', change_slug, 'version', v,
                                        'at_us', (extract(epoch FROM at) * 1000000)::bigint)::text);
    RETURN v;
END $$;
)sql";
constexpr std::string_view m2_row_changed =
    R"sql(CREATE FUNCTION modelrepo_row_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    new_slug text;
    old_slug text;
BEGIN
    IF coalesce(current_setting('modelrepo.bulk', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_slug := to_jsonb(NEW) ->> TG_ARGV[1];
        PERFORM modelrepo_note_change(TG_ARGV[0], new_slug);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_slug := to_jsonb(OLD) ->> TG_ARGV[1];
        IF old_slug IS DISTINCT FROM new_slug THEN
            PERFORM modelrepo_note_change(TG_ARGV[0], old_slug);
        END IF;
    END IF;
    RETURN NULL;
END $$;
)sql";
constexpr std::string_view m2_triggers =
    R"sql(CREATE TRIGGER modelrepo_status_changed AFTER INSERT OR UPDATE OR DELETE ON model_status
    FOR EACH ROW EXECUTE FUNCTION modelrepo_row_changed('status', 'model_slug');
CREATE TRIGGER modelrepo_model_changed AFTER INSERT OR UPDATE OR DELETE ON models
    FOR EACH ROW EXECUTE FUNCTION modelrepo_row_changed('model', 'slug');
CREATE TRIGGER modelrepo_provider_changed AFTER INSERT OR UPDATE OR DELETE ON providers
    FOR EACH ROW EXECUTE FUNCTION modelrepo_row_changed('provider', 'slug');
CREATE TRIGGER modelrepo_truncated AFTER TRUNCATE ON model_status
    FOR EACH STATEMENT EXECUTE FUNCTION modelrepo_truncated();
CREATE TRIGGER modelrepo_truncated AFTER TRUNCATE ON models
    FOR EACH STATEMENT EXECUTE FUNCTION modelrepo_truncated();
CREATE TRIGGER modelrepo_truncated AFTER TRUNCATE ON providers
    FOR EACH STATEMENT EXECUTE FUNCTION modelrepo_truncated();
)sql";
constexpr std::string_view m3_log = R"sql(
LOCK TABLE providers, models, model_status IN SHARE ROW EXCLUSIVE MODE;
LOCK TABLE catalog_version, catalog_changes IN EXCLUSIVE MODE;
CREATE SEQUENCE catalog_change_seq AS bigint;
SELECT setval('catalog_change_seq', greatest(version, 1), version > 0) FROM catalog_version;
ALTER TABLE catalog_changes
    ALTER COLUMN version SET DEFAULT nextval('catalog_change_seq'),
    ALTER COLUMN at SET DEFAULT clock_timestamp(),
    ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER SEQUENCE catalog_change_seq OWNED BY catalog_changes.version;
CREATE INDEX catalog_changes_xid_idx ON catalog_changes (xid);
)sql";
constexpr std::string_view m3_mark_comment =
    R"sql(-- A feed marks its session asleep or awake (any role may: the function runs as the owner);
-- `tidy` also drops the rows of sessions that are gone; NULL `asleep` drops its own row.
)sql";
constexpr std::string_view m3_note_comment =
    R"sql(-- One change, always notified (a resync, a TRUNCATE, a caller of its own).
CREATE OR REPLACE FUNCTION )sql";
constexpr std::string_view m3_row_logged_head =
    R"sql(-- The row trigger: one log row per slug the row had or has (two when a slug changes).
CREATE FUNCTION modelrepo_row_logged() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    new_slug text;
    old_slug text;
    wake boolean;
    v bigint;
BEGIN
    IF current_setting('modelrepo.bulk', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_ARGV[0] = 'status' THEN
        IF TG_OP <> 'DELETE' THEN
            new_slug := NEW.model_slug;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            old_slug := OLD.model_slug;
        END IF;
    ELSE
        IF TG_OP <> 'DELETE' THEN
            new_slug := NEW.slug;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            old_slug := OLD.slug;
        END IF;
    END IF;
    IF old_slug = new_slug THEN
        old_slug := NULL;
    END IF;
    -- A feed that is awake polls; one asleep is woken. A transaction that is not READ
    -- COMMITTED may not see a feed's going to sleep: it always notifies.
    wake := current_setting('transaction_isolation') <> 'read committed'
            OR EXISTS (SELECT 1 FROM catalog_listeners WHERE asleep);
    IF new_slug IS NOT NULL THEN
)sql";
constexpr std::string_view m3_between = "    END IF;\n    IF old_slug IS NOT NULL THEN\n";
constexpr std::string_view m3_row_logged_end = R"sql(    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER modelrepo_status_changed ON model_status;
DROP TRIGGER modelrepo_model_changed ON models;
DROP TRIGGER modelrepo_provider_changed ON providers;
DROP FUNCTION modelrepo_row_changed();
CREATE TRIGGER modelrepo_status_logged AFTER INSERT OR UPDATE OR DELETE ON model_status
    FOR EACH ROW EXECUTE FUNCTION modelrepo_row_logged('status');
CREATE TRIGGER modelrepo_model_logged AFTER INSERT OR UPDATE OR DELETE ON models
    FOR EACH ROW EXECUTE FUNCTION modelrepo_row_logged('model');
CREATE TRIGGER modelrepo_provider_logged AFTER INSERT OR UPDATE OR DELETE ON providers
    FOR EACH ROW EXECUTE FUNCTION modelrepo_row_logged('provider');
)sql";

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
    // The change feed: every change by any client advances the catalogue version, is
    // logged for catching up, and is notified on "modelrepo:<schema>". A bulk import
    // sets modelrepo.bulk and ends with one resync instead of a change per row.
    Migration{2, "change feed",
              Joined<m2_log, feed_sql::catalog_resync, m2_row_changed, feed_sql::truncated,
                     m2_triggers>::value},
    // The change feed without a shared row: a version from a sequence and the writer's
    // transaction id (xid8) beside each change. Readers of the log go by transaction ids
    // and snapshots (ChangeFeed), never by version order, so a transaction that commits
    // after one with a later version is still seen. Writers notify only when a listener
    // is asleep (catalog_listeners; pid 0 is one that always is) or from a transaction
    // that is not READ COMMITTED; a feed that is awake polls. The log is pruned by count
    // every 1,000 changes and by age when a feed asks (catalog_feed_settings). The
    // functions run as their owner: writers need no rights on the log. The table locks
    // wait for the writers of the old triggers, so no change falls between them and the
    // new ones; catalog_version stays for older modelrepo processes, no longer advanced.
    Migration{
        3, "change feed by transaction id",
        Joined<m3_log, feed_sql::listener_tables, m3_mark_comment, feed_sql::feed_mark,
               feed_sql::prune_changes, m3_note_comment, feed_sql::note_change, m3_row_logged_head,
               feed_sql::LogSlug<feed_sql::trigger_kind, feed_sql::new_slug>::value, m3_between,
               feed_sql::LogSlug<feed_sql::trigger_kind, feed_sql::old_slug>::value,
               m3_row_logged_end>::value},
};

constexpr std::array<std::string_view, statement_count> statement_names{
    "modelrepo_count_models",   "modelrepo_count_providers", "modelrepo_list_statuses",
    "modelrepo_find_models",    "modelrepo_find_model",      "modelrepo_list_models",
    "modelrepo_system_stats",   "modelrepo_upsert_statuses", "modelrepo_list_providers",
    "modelrepo_find_providers",
};
static_assert(statement_count <= 64, "a session's prepared set is 64 bits");

} // namespace

std::span<const Migration> migrations() {
    return all_migrations;
}

std::string_view statement_name(StatementId id) {
    return statement_names[id];
}

StatementSet::StatementSet(const std::string& schema_prefix, const Mapping& mapping) {
    for (std::size_t id = 0; id < statement_count; ++id) {
        auto sid = static_cast<StatementId>(id);
        sql_[id] = statement_sql(sid, mapping, schema_prefix);
        // The names view literals: NUL-terminated.
        statements_[id] = Statement{id, statement_names[id].data(), sql_[id].c_str()};
    }
}

} // namespace modelrepo::detail
