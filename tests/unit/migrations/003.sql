
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
CREATE TABLE catalog_feed_settings (
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
-- A feed marks its session asleep or awake (any role may: the function runs as the owner);
-- `tidy` also drops the rows of sessions that are gone; NULL `asleep` drops its own row.
CREATE FUNCTION modelrepo_feed_mark(asleep boolean, tidy boolean DEFAULT false) RETURNS void
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
CREATE FUNCTION modelrepo_prune_changes(by_age boolean DEFAULT false) RETURNS bigint
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
-- One change, always notified (a resync, a TRUNCATE, a caller of its own).
CREATE OR REPLACE FUNCTION modelrepo_note_change(change_kind text, change_slug text)
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
-- The row trigger: one log row per slug the row had or has (two when a slug changes).
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
        v := nextval('catalog_change_seq');
        INSERT INTO catalog_changes (version, kind, slug) VALUES (v, TG_ARGV[0], new_slug);
        IF wake THEN
            PERFORM pg_notify('modelrepo:' || current_schema(),
                              json_build_object('kind', TG_ARGV[0], 'slug', new_slug, 'version', v,
                                                'at_us', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                                                'xid', pg_current_xact_id()::text::bigint)::text);
        END IF;
        IF v % 1000 = 0 THEN
            PERFORM modelrepo_prune_changes();
        END IF;
    END IF;
    IF old_slug IS NOT NULL THEN
        v := nextval('catalog_change_seq');
        INSERT INTO catalog_changes (version, kind, slug) VALUES (v, TG_ARGV[0], old_slug);
        IF wake THEN
            PERFORM pg_notify('modelrepo:' || current_schema(),
                              json_build_object('kind', TG_ARGV[0], 'slug', old_slug, 'version', v,
                                                'at_us', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                                                'xid', pg_current_xact_id()::text::bigint)::text);
        END IF;
        IF v % 1000 = 0 THEN
            PERFORM modelrepo_prune_changes();
        END IF;
    END IF;
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
