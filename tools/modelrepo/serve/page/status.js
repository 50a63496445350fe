// SPDX-License-Identifier: MIT
// modelrepo serve's status page: /v1/status every 2 s, the models from /v1/models and
// then /v1/changes, the timeline from /v1/events/stream. At most one request a second
// besides the two streams. Text from the server goes in with textContent only.
'use strict';

const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};
const ago = (seconds) => {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.round(s / 60) + ' min';
  if (s < 172800) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' d';
};
const since = (iso) => (iso ? ago((Date.now() - Date.parse(iso)) / 1000) + ' ago' : '—');

// --- status, every 2 s -----------------------------------------------------------------
// A source's own health (its pool, feed, fetches) says more than its last failed call: a
// live copy answers reads through an outage, and the outage is still told.
function lastError(s) {
  if (s.health && s.health.state === 'down')
    return s.health.errc + ' (' + since(s.health.since) + ', seen by the ' + s.health.seen_by + ')';
  return s.last_error ? s.last_error + ' (' + since(s.last_error_at) + ')' : '—';
}

function renderSources(status) {
  const body = $('sources').tBodies[0];
  body.replaceChildren();
  for (const s of status.sources) {
    const row = el('tr');
    row.dataset.source = s.source;
    row.append(el('td', s.position), el('td', s.source, 'source'), el('td', s.breaker, s.breaker),
               el('td', s.serving ? 'serving' : '', s.serving ? 'yes' : ''),
               el('td', since(s.breaker_since)),
               el('td', lastError(s), s.health && s.health.state === 'down' || s.last_error ? 'open' : ''),
               el('td', ago(s.data_age_seconds)));
    body.append(row);
  }
}

function renderState(status) {
  const state = $('state');
  const serving = status.serving || 'nothing';
  state.className = 'state ' + status.state;
  const first = (status.sources || [])[0];
  const down = first && first.health && first.health.state === 'down';
  state.textContent = status.state + ' — ' +
      (down ? first.source + ' is down: ' + first.health.errc + ' (since ' +
              new Date(first.health.since).toLocaleTimeString() + '): ' + first.health.cause + '. ' : '') +
      (status.backup ? 'a backup is serving: ' : 'serving: ') + serving;
}

function renderShare(status) {
  const share = status.backup_share;
  $('share-figure').textContent = Math.round(share.share * 1000) / 10 + ' % of ' +
      share.points.reduce((n, p) => n + p.answers, 0) + ' answers';
  const svg = $('share-chart');
  svg.replaceChildren();
  const n = Math.max(1, share.window_seconds / share.sample_seconds);
  share.points.slice(-n).forEach((p, i, all) => {
    const h = p.answers ? (60 * p.backup) / p.answers : 0;
    const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    r.setAttribute('x', String((300 * (n - all.length + i)) / n));
    r.setAttribute('width', String(Math.max(1, 300 / n - 0.5)));
    r.setAttribute('y', String(60 - h));
    r.setAttribute('height', String(h));
    svg.append(r);
  });
}

function renderBackend(status) {
  const dl = $('backend');
  dl.replaceChildren();
  const first = status.sources[0] || {};
  const add = (k, v) => dl.append(el('dt', k), el('dd', v));
  if (first.pool) add('pool', first.pool.busy + ' busy, ' + first.pool.idle + ' idle of ' + first.pool.max +
                      '; ' + first.pool.waiting + ' waiting; ' + first.pool.acquire_timeouts + ' acquire timeouts' +
                      (first.health && first.health.state === 'down' && first.health.seen_by.includes('pool')
                           ? '; cannot connect: ' + first.health.errc
                           : first.pool.server_down ? '; connects failing' : ''));
  if (first.feed) add('feed', (first.feed.connected ? 'connected' : 'disconnected') + '; version ' +
                      first.feed.version + ', ' + first.feed.changes + ' changes, ' +
                      first.feed.reconnects + ' reconnects');
  if (first.copy) add('copy', (first.copy.in_sync ? 'in sync' : 'not in sync') +
                      (first.copy.age_seconds ? ', ' + ago(first.copy.age_seconds) + ' old' : ''));
  if (first.outbox) add('outbox', first.outbox.pending + ' pending (' + first.outbox.batches + ' batches), oldest ' +
                        ago(first.outbox.oldest_age_seconds) + ', ' + first.outbox.dead_letters + ' dead letters');
  if (!dl.children.length) add('source', 'no pool, feed, copy or outbox');
}

function renderFuture(status) {
  const f = status.future_statuses;
  const note = $('future');
  note.hidden = !f;
  if (!f) return;
  note.textContent = f.count + ' stored statuses are dated in the future (the latest ' + f.latest +
      '; ' + f.models.join(', ') + (f.count > f.models.length ? ', …' : '') +
      '): every real status of those models is ignored as older. ' + f.fix + '.';
}

function renderDiagnosis(status) {
  const d = status.diagnosis;
  const first = (status.sources || [])[0];
  const down = first && first.health && first.health.state === 'down';
  const show = d && d.failed && d.failed.length > 0 && (status.state !== 'ready' || down);
  $('diagnosis').hidden = !show;
  if (!show) return;
  $('diagnosis-error').textContent = d.source + ': ' + d.error + ' (checked ' + since(d.ran_at) + ')';
  const list = $('diagnosis-checks');
  list.replaceChildren();
  for (const c of d.failed) {
    const item = el('li');
    item.append(el('strong', c.scope + ' ' + c.name + ': '), document.createTextNode(c.detail));
    if (c.fix) item.append(el('span', c.fix, 'fix'));
    list.append(item);
  }
}

const events = new Map();
function addEvents(list) {
  for (const e of list) events.set(e.id, e);
  const ol = $('timeline');
  ol.replaceChildren();
  [...events.values()].sort((a, b) => b.id - a.id).slice(0, 200).forEach((e) => {
    const item = el('li', null, 'event ' + e.event);
    item.dataset.event = e.event;
    item.append(el('time', new Date(e.at).toLocaleTimeString() + ' '), el('strong', e.event + ' '),
                document.createTextNode(e.source + (e.cause ? ': ' + e.cause : '')));
    ol.append(item);
  });
}

async function poll() {
  try {
    const r = await fetch('/v1/status', { cache: 'no-store' });
    if (r.ok) {
      const status = await r.json();
      renderState(status);
      renderSources(status);
      renderShare(status);
      renderBackend(status);
      renderDiagnosis(status);
      renderFuture(status);
      addEvents(status.events);
    }
  } catch (e) {
    $('state').textContent = 'serve does not answer';
    $('state').className = 'state unavailable';
  }
  setTimeout(poll, 2000);
}

// --- models: once, then by change ------------------------------------------------------
const rows = new Map();
function renderModel(m) {
  let row = rows.get(m.slug);
  if (!row) {
    row = el('tr');
    row.dataset.slug = m.slug;
    rows.set(m.slug, row);
    const body = $('models').tBodies[0];
    const after = [...rows.keys()].sort().indexOf(m.slug);
    body.insertBefore(row, body.children[after] || null);
  }
  const s = m.status;
  const cells = [m.slug, m.provider ? m.provider.name : m.provider_slug, s ? s.health : 'unknown',
                 s ? Math.round(s.availability * 10000) / 100 + ' %' : '—',
                 s && s.latency_ms !== null && s.latency_ms !== undefined ? Math.round(s.latency_ms) + ' ms' : '—',
                 s ? since(s.checked_at) : '—'];
  const old = [...row.children].map((c) => c.textContent);
  row.replaceChildren(...cells.map((c, i) => el('td', c, i === 2 ? 'health ' + (s ? s.health : 'unknown') : '')));
  if (old.length && old.join('|') !== cells.join('|')) {
    row.classList.add('flash');
    setTimeout(() => row.classList.remove('flash'), 1500);
  }
}

async function loadModels(slugs) {
  const query = slugs ? '?' + slugs.map((s) => 'slug=' + encodeURIComponent(s)).join('&') : '';
  const r = await fetch('/v1/models' + query, { cache: 'no-store' });
  if (!r.ok) return;
  const body = await r.json();
  for (const m of body.models) renderModel(m);
}

const pending = new Set();
let reloadAll = false;
setInterval(() => {
  if (reloadAll) {
    reloadAll = false;
    pending.clear();
    loadModels(null).catch(() => {});
  } else if (pending.size) {
    const slugs = [...pending].slice(0, 500);
    slugs.forEach((s) => pending.delete(s));
    loadModels(slugs).catch(() => {});
  }
}, 1000);

function listen() {
  const changes = new EventSource('/v1/changes');
  changes.onmessage = (m) => {
    const change = JSON.parse(m.data);
    if (change.slug && change.kind !== 'provider') pending.add(change.slug);
    else reloadAll = true;
  };
  changes.addEventListener('resync', () => { reloadAll = true; });
  const timeline = new EventSource('/v1/events/stream');
  timeline.addEventListener('chain', (m) => {
    const e = JSON.parse(m.data);
    addEvents([e]);
    // Say who serves at once; the next /v1/status fills in the rest.
    if (e.event === 'served_by_backup')
      renderState({ state: 'degraded', backup: true, serving: e.source });
    else if (e.event === 'primary_recovered')
      renderState({ state: 'ready', backup: false, serving: e.source });
  });
}

loadModels(null).catch(() => {});
poll();
listen();
