// SPDX-License-Identifier: MIT
// The seed's own stack, as the peer of `modelrepo serve` in bench/bench_serve: a node
// `http` server answering GET /v1/stats and GET /v1/models?slug=… with the same JSON,
// each request a query to PostgreSQL through pg.Pool (max 4), named (prepared)
// statements, the same SQL as modelrepo's.
// usage: node serve_peer.js DATABASE_URL PORT     (prints "listening PORT" when ready)
'use strict';
const http = require('http');
const { Pool } = require('pg');

const [url, port] = process.argv.slice(2);
const pool = new Pool({ connectionString: url, max: 4 });

const statsQuery = {
  name: 'stats',
  text: "SELECT count(*)::int AS models, (count(*) FILTER (WHERE m.active))::int AS active, " +
    "(SELECT count(*) FROM providers)::int AS providers, " +
    "(count(*) FILTER (WHERE s.health = 'operational'))::int AS operational, " +
    "(count(*) FILTER (WHERE s.health = 'degraded'))::int AS degraded, " +
    "(count(*) FILTER (WHERE s.health = 'outage'))::int AS outage, " +
    "(count(*) FILTER (WHERE s.health IS NULL OR s.health = 'unknown'))::int AS unknown, now() AS as_of " +
    "FROM models m LEFT JOIN model_status s ON s.model_slug = m.slug",
};
const modelsText =
  'SELECT m.slug, m.name, m.provider_slug, m.description, m.context_window, m.active, ' +
  'p.name AS provider_name, p.website, s.health, s.availability, s.latency_ms, s.error_rate, ' +
  's.region, s.checked_at FROM models m JOIN providers p ON p.slug = m.provider_slug ' +
  'LEFT JOIN model_status s ON s.model_slug = m.slug WHERE m.slug = ANY($1::text[])';

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function model(row) {
  return {
    slug: row.slug, name: row.name, provider_slug: row.provider_slug, description: row.description,
    context_window: row.context_window === null ? null : Number(row.context_window), active: row.active,
    provider: { slug: row.provider_slug, name: row.provider_name, website: row.website },
    status: row.health === null ? null : {
      model: row.slug, health: row.health, availability: row.availability, latency_ms: row.latency_ms,
      error_rate: row.error_rate, region: row.region, checked_at: row.checked_at.toISOString(),
    },
  };
}

async function handle(req, res) {
  const u = new URL(req.url, 'http://localhost');
  if (u.pathname === '/v1/stats') {
    const r = (await pool.query(statsQuery)).rows[0];
    return send(res, 200, {
      source: 'postgresql', as_of: r.as_of.toISOString(), models: r.models, active_models: r.active,
      providers: r.providers,
      health: { operational: r.operational, degraded: r.degraded, outage: r.outage, unknown: r.unknown },
      backup: false,
    });
  }
  if (u.pathname === '/v1/models') {
    const slugs = u.searchParams.getAll('slug');
    const rows = (await pool.query({ name: 'models', text: modelsText, values: [slugs] })).rows;
    const bySlug = new Map(rows.map((row) => [row.slug, row]));
    const models = slugs.filter((s) => bySlug.has(s)).map((s) => model(bySlug.get(s)));
    return send(res, 200, { source: 'postgresql', models });
  }
  send(res, 404, { error: { code: 'not_found', message: 'no such path' } });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((e) => send(res, 503, { error: { code: 'unreachable', message: e.message } }));
});
server.keepAliveTimeout = 60000;
server.listen(Number(port), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
