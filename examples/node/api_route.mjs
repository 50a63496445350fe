// SPDX-License-Identifier: MIT
// The seed's REST route (GET /api/stats) in plain node: the system stats and the
// priority models from `modelrepo serve`, each call bounded by a timeout, an error
// answered as JSON with the status modelrepo chose. No dependencies (node >= 18).
//
//   MODELREPO_URL=http://127.0.0.1:8080 node api_route.mjs            # one answer on stdout
//   MODELREPO_URL=… node api_route.mjs --listen 3000                    # as an HTTP route
import http from 'node:http';

const base = process.env.MODELREPO_URL ?? 'http://127.0.0.1:8080';
const timeoutMs = Number(process.env.MODELREPO_TIMEOUT_MS ?? 2000);
const priority = (process.env.PRIORITY_MODELS ??
    'gpt-5,gpt-4o,claude-sonnet-4-5,gemini-2.5-pro,llama-4-maverick').split(',');

class UpstreamError extends Error {
    constructor(status, code, message) {
        super(message);
        this.status = status;
        this.code = code;
    }
}

/// GET `path` from modelrepo as JSON; modelrepo's error bodies become UpstreamError.
async function get(path) {
    let response;
    try {
        response = await fetch(base + path, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (e) {
        const timedOut = e.name === 'TimeoutError';
        throw new UpstreamError(timedOut ? 504 : 503, timedOut ? 'timeout' : 'unreachable',
            `modelrepo at ${base}: ${timedOut ? `no answer within ${timeoutMs} ms` : e.cause?.code ?? e.message}`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok)
        throw new UpstreamError(response.status, body?.error?.code ?? 'http_status',
            body?.error?.message ?? `HTTP ${response.status}`);
    return body;
}

/// What the seed's route answered: stats, where they came from, and the priority models.
export async function apiStats() {
    const query = priority.map((slug) => 'slug=' + encodeURIComponent(slug)).join('&');
    const [stats, models] = await Promise.all([get('/v1/stats'), get('/v1/models?' + query)]);
    return {
        source: stats.source,
        backup: stats.backup,
        as_of: stats.as_of,
        totals: { models: stats.models, active: stats.active_models, providers: stats.providers },
        health: stats.health,
        priority: models.models.map((m) => ({
            slug: m.slug, name: m.name, provider: m.provider?.name ?? m.provider_slug,
            health: m.status?.health ?? 'unknown',
        })),
    };
}

async function answer(res) {
    try {
        const body = JSON.stringify(await apiStats());
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } catch (e) {
        const status = e instanceof UpstreamError ? e.status : 500;
        res.writeHead(status, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: { code: e.code ?? 'internal', message: e.message } }));
    }
}

const listen = process.argv.indexOf('--listen');
if (listen > 0) {
    const port = Number(process.argv[listen + 1]);
    http.createServer((req, res) => answer(res)).listen(port, '127.0.0.1',
        () => console.error(`api_route: GET http://127.0.0.1:${port}/api/stats`));
} else {
    try {
        console.log(JSON.stringify(await apiStats(), null, 2));
    } catch (e) {
        console.error(`api_route: ${e.code ?? 'error'}: ${e.message}`);
        process.exit(1);
    }
}
