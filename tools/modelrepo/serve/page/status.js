// SPDX-License-Identifier: MIT
// modelrepo serve's status page: /v1/status every 2 s (the first screen, the sources, the
// incidents, the doctor, the primary's parts), the models from /v1/models and then
// /v1/changes, the timeline from /v1/events/stream. At most one request a second besides
// the two streams. Text from the server goes in with textContent only, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
/**
 * Puts `text` in `e` as words that never break inside: a line may break only at a space
 * (browsers also break after a hyphen or a slash: "2026-12-06", "last-known", a URL), and
 * a word too long for its box scrolls in it. textContent only: never HTML.
 */
function setText(e, text) {
  e.replaceChildren();
  for (const part of String(text).split(/(\s+)/)) {
    if (!part) continue;
    if (/^\s+$/.test(part) || !/[-/.:@_=?&%+,;()]/.test(part)) {
      e.append(document.createTextNode(part));
    } else {
      const w = document.createElement('span');
      w.className = 'w';
      w.textContent = part;
      e.append(w);
    }
  }
  return e;
}
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) setText(e, text);
  if (cls) e.className = cls;
  return e;
};
const words = (text) => setText(document.createElement('span'), text);
/**
 * A source's name (a URL) that may break after its separators ("postgresql://app@",
 * "db:5432/", "catalogue"), never inside a part: on a phone it takes two lines, not a
 * scroll bar.
 */
function urlEl(text, cls) {
  const e = document.createElement('span');
  if (cls) e.className = cls;
  for (const part of String(text).match(/[^/@?&]*[/@?&]*/g).filter(Boolean)) {
    const w = document.createElement('span');
    w.className = 'w';
    w.textContent = part;
    e.append(w, document.createElement('wbr'));
  }
  return e;
}
/** A long message cut to its first sentence or so, the whole of it on hover. */
function brief(text, limit = 140) {
  const s = String(text || '');
  const e = words(s.length > limit ? s.slice(0, s.lastIndexOf(' ', limit)) + ' …' : s);
  if (s.length > limit) e.title = s;
  return e;
}

// --- times: relative, with the absolute time on hover -----------------------------------
const span = (seconds) => {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + ' s';
  if (s < 7200) return Math.round(s / 60) + ' min';
  if (s < 172800) return Math.round(s / 3600) + ' h';
  return Math.round(s / 86400) + ' days';
};
const relative = (iso) => {
  if (!iso) return '—';
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  return seconds >= 0 ? span(seconds) + ' ago' : 'in ' + span(-seconds);
};
const absolute = (iso) => new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
function timeEl(iso, text) {
  const t = el('time', iso ? (text || relative(iso)) : '—');
  if (iso) {
    t.dateTime = iso;
    t.title = absolute(iso);
  }
  return t;
}
function setTime(t, iso, prefix) {
  t.textContent = iso ? (prefix || '') + relative(iso) : '—';
  t.dateTime = iso || '';
  t.title = iso ? absolute(iso) : '';
}

// --- the first screen -----------------------------------------------------------------
const levelWords = { ok: 'All systems operational', minor: 'Degraded', major: 'Partial outage',
                     critical: 'Major outage' };
function renderHero(status) {
  const s = status.summary || {};
  const hero = $('hero');
  hero.className = 'hero level-' + (s.level || 'loading');
  $('level').textContent = levelWords[s.level] || 'Loading';
  setText($('headline'), s.headline || '');
  const show = (id, value) => {
    $(id).hidden = !value;
    return value;
  };
  if (show('detail', s.detail)) setText($('detail'), s.detail);
  if (show('fact-fix', s.fix)) setText($('fix'), s.fix);
  if (show('fact-meanwhile', s.meanwhile)) setText($('meanwhile'), s.meanwhile);
  if (show('fact-since', s.since)) setTime($('since'), s.since);
  const f = status.future_statuses;
  if (show('future', f))
    setText($('future'), f.count + ' stored statuses are dated in the future (the latest ' +
        f.latest + '; ' + f.models.join(', ') + (f.count > f.models.length ? ', …' : '') +
        '): every real status of those models is ignored as older. ' + f.fix + '.');
  $('updated').textContent = 'updated ' + new Date(status.generated_at).toLocaleTimeString();
}

// --- sources ---------------------------------------------------------------------------
function stateOf(s) {
  if (s.health && s.health.state === 'down') return ['down', 'Down: ' + s.health.errc];
  if (s.breaker === 'open') return ['cut', 'Cut off (breaker open)'];
  if (s.breaker === 'half-open') return ['trial', 'Trial calls'];
  return ['up', 'Up'];
}

/** The last hour of `source`, a bar a minute, from the incidents. */
function history(source, incidents, startedAt) {
  const bar = el('div', null, 'history');
  const now = Date.now();
  const started = Date.parse(startedAt);
  const spans = incidents.filter((i) => i.source === source)
      .map((i) => [Date.parse(i.started), i.resolved ? Date.parse(i.resolved) : now]);
  for (let k = 59; k >= 0; --k) {
    const from = now - (k + 1) * 60000, to = now - k * 60000;
    const down = spans.some(([a, b]) => a < to && b > from);
    const cell = el('span', null, to < started ? 'none' : down ? 'down' : 'up');
    cell.title = new Date(from).toLocaleTimeString() + ': ' +
        (to < started ? 'before serve started' : down ? 'down' : 'up');
    bar.append(cell);
  }
  const legend = el('div', null, 'history-legend');
  legend.append(el('span', '60 min ago'), el('span', 'now'));
  const box = el('div');
  box.append(bar, legend);
  return box;
}

function renderSources(status) {
  const list = $('sources');
  list.replaceChildren();
  for (const s of status.sources) {
    const item = el('li', null, 'source');
    item.dataset.source = s.source;
    const head = el('div', null, 'head');
    const [cls, label] = stateOf(s);
    head.append(urlEl(s.source, 'name'), el('span', label, 'pill ' + cls),
                el('span', s.position === 0 ? 'primary' : 'backup ' + s.position, 'role'));
    if (s.serving) head.append(el('span', '● serving', 'serving'));
    const cause = el('div', null, 'cause');
    if (s.health && s.health.state === 'down') {
      // The cause's words are the first screen's; here, since when and who saw it.
      cause.append(document.createTextNode('since '), timeEl(s.health.since),
                   words(', seen by the ' + s.health.seen_by + ' (' + s.health.errc + ')'));
    } else if (s.last_error) {
      cause.append(words('last error ' + s.last_error + ', '), timeEl(s.last_error_at));
    } else {
      cause.textContent = 'no error since serve started';
    }
    const data = el('div');
    data.append(document.createTextNode('data '),
                s.data_as_of ? timeEl(s.data_as_of, span(s.data_age_seconds) + ' old') : el('span', '—'));
    data.append(history(s.source, status.incidents || [], status.started_at));
    item.append(head, cause, data);
    list.append(item);
  }
}

// --- incidents and the doctor ----------------------------------------------------------
function renderIncidents(status) {
  const list = $('incidents');
  list.replaceChildren();
  const incidents = status.incidents || [];
  $('no-incidents').hidden = incidents.length > 0;
  for (const i of incidents) {
    const item = el('li', null, i.resolved ? 'resolved' : 'open');
    item.id = 'incident-' + i.id;
    const title = el('h3');
    title.append(urlEl(i.source), words((i.resolved ? ' was down' : ' is down') +
                                         (i.errc ? ' (' + i.errc + ')' : '')));
    item.append(title);
    const when = el('p', null, 'muted');
    when.append(document.createTextNode('from '), timeEl(i.started));
    if (i.resolved) when.append(document.createTextNode(' to '), timeEl(i.resolved));
    else when.append(document.createTextNode(i.identified ? ', identified' : ', investigating'));
    item.append(when);
    const updates = el('ol');
    for (const u of [...i.updates].reverse().slice(0, 8)) {
      const line = el('li');
      line.append(timeEl(u.at), el('strong', ' ' + u.event.replaceAll('_', ' ') + ': '),
                  brief(u.body));
      updates.append(line);
    }
    item.append(updates);
    list.append(item);
  }
}

function renderDiagnosis(status) {
  const d = status.diagnosis;
  const level = (status.summary || {}).level;
  const show = d && d.failed && d.failed.length > 0 && level && level !== 'ok';
  $('diagnosis-panel').hidden = !show;
  if (!show) return;
  $('diagnosis-about').replaceChildren(words(d.source + ', ' + d.error + ', checked '),
                                       timeEl(d.ran_at));
  const list = $('diagnosis-checks');
  list.replaceChildren();
  for (const c of d.failed) {
    const item = el('li');
    item.append(el('strong', c.scope + ' ' + c.name + ': '), words(c.detail));
    if (c.fix) item.append(el('span', c.fix, 'fix'));
    list.append(item);
  }
}

// --- the primary's parts ---------------------------------------------------------------
function renderBackend(status) {
  const dl = $('backend');
  dl.replaceChildren();
  const first = status.sources[0] || {};
  const h = first.health || {};
  const down = h.state === 'down';
  const add = (k, v) => dl.append(el('dt', k), el('dd', v));
  // The cause once, where each part that sees it says so: the same words as the headline.
  const sees = (part) => (down && h.seen_by && h.seen_by.includes(part) ? '; fails: ' + h.errc : '');
  if (first.pool) add('pool', first.pool.busy + ' busy, ' + first.pool.idle + ' idle of ' +
                      first.pool.max + '; ' + first.pool.waiting + ' waiting; ' +
                      first.pool.acquire_timeouts + ' acquire timeouts' + sees('pool'));
  if (first.feed) add('feed', (first.feed.kind ? first.feed.kind + ', ' : '') +
                      (first.feed.connected ? 'connected' : 'not connected') + '; version ' +
                      first.feed.version + ', ' + first.feed.changes + ' changes, ' +
                      first.feed.reconnects + ' reconnects' + sees('feed'));
  if (first.copy) add('copy', (first.copy.in_sync ? 'in sync' : 'not in sync') +
                      (first.copy.age_seconds ? ', ' + span(first.copy.age_seconds) + ' old' : '') +
                      (first.copy.served_while_down ? ', answered ' + first.copy.served_while_down +
                                                      ' reads for the database' : ''));
  if (first.outbox) add('outbox', first.outbox.pending + ' statuses pending (' + first.outbox.batches +
                        ' batches)' + (first.outbox.pending ? ', the oldest ' + span(first.outbox.oldest_age_seconds) + ' old' : '') +
                        ', ' + first.outbox.dead_letters + ' dead letters');
  if (!dl.children.length)
    add('source', first.parts_read === false ? 'reading its parts…' : 'no pool, feed, copy or outbox');
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

// --- the timeline ----------------------------------------------------------------------
const events = new Map();
function addEvents(list) {
  for (const e of list) events.set(e.id, e);
  const ol = $('timeline');
  ol.replaceChildren();
  [...events.values()].sort((a, b) => b.id - a.id).slice(0, 200).forEach((e) => {
    const item = el('li');
    item.dataset.event = e.event;
    const text = el('span', null, 'text');
    text.append(brief(e.source + (e.cause ? ': ' + e.cause : '')));
    item.append(timeEl(e.at), el('span', e.event.replaceAll('_', ' ') + (e.errc ? ' (' + e.errc + ')' : ''),
                                 'what ev-' + e.event), text);
    ol.append(item);
  });
}

let lastStatus = null;
async function poll() {
  try {
    const r = await fetch('/v1/status', { cache: 'no-store' });
    if (r.ok) {
      const status = await r.json();
      lastStatus = status;
      renderHero(status);
      renderSources(status);
      renderIncidents(status);
      renderDiagnosis(status);
      renderBackend(status);
      renderShare(status);
      addEvents(status.events);
    }
  } catch (e) {
    if (!(e instanceof TypeError && String(e.message).includes('fetch'))) console.error(e);
    $('hero').className = 'hero level-critical';
    $('level').textContent = 'No answer';
    setText($('headline'), 'serve does not answer this page');
  }
  setTimeout(poll, 2000);
}

// --- models: once, then by change ------------------------------------------------------
const labels = ['Model', 'Provider', 'Health', 'Availability', 'Latency', 'Checked'];
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
                 s && s.latency_ms !== null && s.latency_ms !== undefined ? Math.round(s.latency_ms) + ' ms' : '—'];
  const old = row.dataset.cells;
  const tds = cells.map((c, i) => {
    const td = el('td', c, i === 2 ? 'health health-' + (s ? s.health : 'unknown') : '');
    td.dataset.label = labels[i];
    return td;
  });
  const checked = el('td');
  checked.dataset.label = labels[5];
  checked.append(s ? timeEl(s.checked_at) : el('span', '—'));
  row.replaceChildren(...tds, checked);
  row.dataset.cells = cells.join('|');
  if (old && old !== row.dataset.cells) {
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
    addEvents([JSON.parse(m.data)]);
    poll.soon();
  });
}
// An event makes the next /v1/status come sooner (the first screen follows it at once).
let soonTimer = null;
poll.soon = () => {
  if (soonTimer) return;
  soonTimer = setTimeout(() => {
    soonTimer = null;
    fetch('/v1/status', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : null)).then((status) => {
      if (!status) return;
      lastStatus = status;
      renderHero(status);
      renderSources(status);
      renderIncidents(status);
      renderDiagnosis(status);
      renderBackend(status);
    }).catch((e) => console.error(e));
  }, 1000);
};

loadModels(null).catch(() => {});
poll();
listen();
