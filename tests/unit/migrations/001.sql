
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
