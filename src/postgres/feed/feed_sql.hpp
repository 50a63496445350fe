// SPDX-License-Identifier: MIT
// The change feed's SQL objects, defined once: migrations 2 and 3 (modelrepo's own tables)
// and the feed installed on a mapping's tables (catalog/statements.cpp) are made of these.
// Migrations are history databases already ran: tests/unit/test_migrations.cpp checks that
// each one's text is byte for byte what shipped (tests/unit/migrations/*.sql), so a change
// here that would alter one fails there; a new behaviour is a new migration.
#pragma once

#include <algorithm>
#include <array>
#include <string_view>

namespace modelrepo::detail {

/// `Parts...` joined at compile time: `Joined<a, b>::value` is a string_view of static
/// storage.
template <const std::string_view&... Parts>
struct Joined {
    static constexpr auto storage = [] {
        std::array<char, (Parts.size() + ... + 0)> out{};
        std::size_t at = 0;
        ((std::copy(Parts.begin(), Parts.end(), out.begin() + at), at += Parts.size()), ...);
        return out;
    }();
    static constexpr std::string_view value{storage.data(), storage.size()};
};

namespace feed_sql {

/// The feed's settings (how many changes and how long the log keeps) and its listeners
/// (a session asleep is woken by NOTIFY; one awake polls).
inline constexpr std::string_view listener_tables = R"sql(CREATE TABLE catalog_feed_settings (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    keep_changes bigint NOT NULL DEFAULT 10000 CHECK (keep_changes > 0),
    keep_for     interval NOT NULL DEFAULT '7 days' CHECK (keep_for > '0'::interval)
);
INSERT INTO catalog_feed_settings DEFAULT VALUES;
CREATE TABLE catalog_listeners (
    pid    integer PRIMARY KEY,
    since  timestamptz NOT NULL DEFAULT now(),
    asleep boolean NOT NULL DEFAULT false
);
)sql";

/// A feed marks its session asleep or awake; `tidy` drops the rows of sessions that are
/// gone; NULL drops its own row. SECURITY DEFINER: any role may.
inline constexpr std::string_view feed_mark =
    R"sql(CREATE FUNCTION modelrepo_feed_mark(asleep boolean, tidy boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF tidy THEN
        DELETE FROM catalog_listeners l WHERE l.pid > 0
            AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.pid);
    END IF;
    IF $1 IS NULL THEN
        DELETE FROM catalog_listeners WHERE pid = pg_backend_pid();
    ELSE
        INSERT INTO catalog_listeners (pid, asleep) VALUES (pg_backend_pid(), $1)
        ON CONFLICT (pid) DO UPDATE SET asleep = EXCLUDED.asleep, since = now();
    END IF;
END $$;
)sql";

/// The log pruned by count (every 1,000 changes) and, when a feed asks, by age; one
/// pruner at a time per schema.
inline constexpr std::string_view prune_changes =
    R"sql(CREATE FUNCTION modelrepo_prune_changes(by_age boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    keep bigint;
    keep_age interval;
    newest bigint;
    gone bigint;
    aged bigint := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('modelrepo_prune_changes:' || current_schema())) THEN
        RETURN 0;
    END IF;
    SELECT keep_changes, keep_for INTO keep, keep_age FROM catalog_feed_settings;
    SELECT last_value INTO newest FROM catalog_change_seq;
    DELETE FROM catalog_changes WHERE version IN (
        SELECT version FROM catalog_changes WHERE version <= newest - keep
        FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS gone = ROW_COUNT;
    IF by_age THEN
        DELETE FROM catalog_changes WHERE version IN (
            SELECT version FROM catalog_changes WHERE at < clock_timestamp() - keep_age
            FOR UPDATE SKIP LOCKED);
        GET DIAGNOSTICS aged = ROW_COUNT;
    END IF;
    RETURN gone + aged;
END $$;
)sql";

/// One change, always notified (a resync, a TRUNCATE, a caller of its own): the
/// function's name, arguments and body, after "CREATE FUNCTION " or "CREATE OR REPLACE
/// FUNCTION ".
inline constexpr std::string_view note_change =
    R"sql(modelrepo_note_change(change_kind text, change_slug text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v bigint := nextval('catalog_change_seq');
BEGIN
    INSERT INTO catalog_changes (version, kind, slug) VALUES (v, change_kind, change_slug);
    PERFORM pg_notify('modelrepo:' || current_schema(),
                      json_build_object('kind', change_kind, 'slug', change_slug, 'version', v,
                                        'at_us', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                                        'xid', pg_current_xact_id()::text::bigint)::text);
    IF v % 1000 = 0 THEN
        PERFORM modelrepo_prune_changes();
    END IF;
    RETURN v;
END $$;
)sql";

/// A resync for every feed: what an import or a TRUNCATE says.
inline constexpr std::string_view catalog_resync =
    R"sql(CREATE FUNCTION modelrepo_catalog_resync() RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$ SELECT modelrepo_note_change('resync', '') $$;
)sql";

/// The TRUNCATE trigger's function: a resync unless the session is bulk-loading.
inline constexpr std::string_view truncated =
    R"sql(CREATE FUNCTION modelrepo_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF coalesce(current_setting('modelrepo.bulk', true), '') <> 'on' THEN
        PERFORM modelrepo_catalog_resync();
    END IF;
    RETURN NULL;
END $$;
)sql";

/// One slug's change, logged by a trigger body: its version, its row in catalog_changes,
/// the NOTIFY when a feed is asleep (`wake`), a prune every 1,000 versions. `Kind` and
/// `Slug` are the body's expressions for them. Migration 3's row trigger (twice: the new
/// and the old slug) and the mapped feed's modelrepo_log_slugs (in a loop) are made of it.
inline constexpr std::string_view log_slug_a = R"sql(        v := nextval('catalog_change_seq');
        INSERT INTO catalog_changes (version, kind, slug) VALUES (v, )sql";
inline constexpr std::string_view log_slug_b = R"sql(, )sql";
inline constexpr std::string_view log_slug_c = R"sql();
        IF wake THEN
            PERFORM pg_notify('modelrepo:' || current_schema(),
                              json_build_object('kind', )sql";
inline constexpr std::string_view log_slug_d = R"sql(, 'slug', )sql";
inline constexpr std::string_view log_slug_e = R"sql(, 'version', v,
                                                'at_us', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                                                'xid', pg_current_xact_id()::text::bigint)::text);
        END IF;
        IF v % 1000 = 0 THEN
            PERFORM modelrepo_prune_changes();
        END IF;
)sql";
template <const std::string_view& Kind, const std::string_view& Slug>
struct LogSlug {
    static constexpr std::string_view value = Joined<log_slug_a, Kind, log_slug_b, Slug, log_slug_c,
                                                     Kind, log_slug_d, Slug, log_slug_e>::value;
};
/// The expressions LogSlug takes: migration 3's trigger and the mapped feed's function.
inline constexpr std::string_view trigger_kind = "TG_ARGV[0]";
inline constexpr std::string_view new_slug = "new_slug";
inline constexpr std::string_view old_slug = "old_slug";
inline constexpr std::string_view loop_kind = "change_kind";
inline constexpr std::string_view loop_slug = "slug";

} // namespace feed_sql

} // namespace modelrepo::detail
