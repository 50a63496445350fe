
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
CREATE FUNCTION modelrepo_catalog_resync() RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$ SELECT modelrepo_note_change('resync', '') $$;
CREATE FUNCTION modelrepo_row_changed() RETURNS trigger
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
CREATE FUNCTION modelrepo_truncated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF coalesce(current_setting('modelrepo.bulk', true), '') <> 'on' THEN
        PERFORM modelrepo_catalog_resync();
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER modelrepo_status_changed AFTER INSERT OR UPDATE OR DELETE ON model_status
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
