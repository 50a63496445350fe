// SPDX-License-Identifier: MIT
// The seed's realtime consumer in plain node: reads the server-sent events of
// `modelrepo serve`'s GET /v1/changes from a streaming fetch, prints one line per
// change, re-reads the stats after a resync, and reconnects (after `retry:` ms) when
// the stream ends. No dependencies (node >= 18).
//
//   MODELREPO_URL=http://127.0.0.1:8080 node realtime.mjs [--count N]
// --count N: exit 0 after N changes (for scripts and tests).
const base = process.env.MODELREPO_URL ?? 'http://127.0.0.1:8080';
const countAt = process.argv.indexOf('--count');
const wanted = countAt > 0 ? Number(process.argv[countAt + 1]) : Infinity;
let seen = 0;
let retryMs = 1000;
let lastId = null;

async function refreshStats() {
    const response = await fetch(base + '/v1/stats', { signal: AbortSignal.timeout(2000) });
    const stats = await response.json();
    console.log(`stats ${stats.source} models=${stats.models} outage=${stats.health?.outage}`);
}

/// One SSE event (its fields), as the spec reads them: "field: value" lines.
function parseEvent(block) {
    const event = { event: 'message', data: [] };
    for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':'))
            continue; // a comment: the heartbeat, ": connected"
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') event.data.push(value);
        else if (field === 'event') event.event = value;
        else if (field === 'id') event.id = value;
        else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
    }
    return event.data.length ? { ...event, data: event.data.join('\n') } : null;
}

async function follow() {
    const headers = { accept: 'text/event-stream' };
    if (lastId) headers['last-event-id'] = lastId;
    const response = await fetch(base + '/v1/changes', { headers });
    if (!response.ok)
        throw new Error(`GET /v1/changes: HTTP ${response.status} ${await response.text()}`);
    console.error('realtime: connected');
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = parseEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            if (!event) continue;
            if (event.id) lastId = event.id;
            const change = JSON.parse(event.data);
            console.log(`${event.event === 'resync' ? 'resync' : 'change'} ${change.kind} ${change.slug} ${change.version}`);
            if (event.event === 'resync') await refreshStats();
            if (++seen >= wanted) process.exit(0);
        }
    }
}

for (;;) {
    try {
        await follow();
        console.error('realtime: the stream ended; reconnecting');
    } catch (e) {
        console.error(`realtime: ${e.cause?.code ?? e.message}; reconnecting in ${retryMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
}
