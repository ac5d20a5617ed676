// Scans: counts by status (GET /api/operations), a filterable list (GET /api/scans), and
// the request-a-scan form (POST /api/scans with an Idempotency-Key).

import { getJson, request, idempotencyKey, ApiError } from './api.js';
import { h, clear, badge, time, short, num, score, table, errorBox, STATES } from './dom.js';

const FILTERS = ['status', 'subscription_id', 'requested_after', 'requested_before'];

export async function scansView(main, _parts, query, signal) {
  const counts = h('div', { class: 'counts', id: 'scan-counts' }, 'Loading…');
  const list = h('div', { id: 'scan-list' });
  main.append(
    h('h1', {}, 'Scans'),
    counts,
    h('div', { class: 'columns' },
      h('section', { class: 'grow' }, filterForm(query), list),
      h('aside', {}, requestForm())));
  const ops = await getJson('/api/operations?limit=1', { signal });
  clear(counts, STATES.map((s) =>
    h('a', { class: `count st-${s}`, href: `#/scans?status=${s}`, 'data-status': s },
      h('strong', {}, num(ops.scans[s])), ' ', s)));
  await loadPage(list, query, null, signal);
}

function filterForm(query) {
  const local = (v) => {
    if (!v) return '';
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 16);
  };
  const form = h('form', { class: 'filters', id: 'scan-filters' },
    h('label', {}, 'Status ',
      h('select', { name: 'status' }, h('option', { value: '' }, 'any'),
        STATES.map((s) => h('option', { value: s, selected: query.get('status') === s }, s)))),
    h('label', {}, 'Subscription ', h('input', { name: 'subscription_id', placeholder: 'UUID', size: 38, value: query.get('subscription_id') || '' })),
    h('label', {}, 'Requested from (UTC) ', h('input', { name: 'requested_after', type: 'datetime-local', value: local(query.get('requested_after')) })),
    h('label', {}, 'to ', h('input', { name: 'requested_before', type: 'datetime-local', value: local(query.get('requested_before')) })),
    h('button', { type: 'submit' }, 'Filter'),
    h('a', { href: '#/scans', class: 'link' }, 'Clear'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    const data = new FormData(form);
    for (const k of FILTERS) {
      let v = (data.get(k) || '').trim();
      if (!v) continue;
      if (k.startsWith('requested_')) v = `${v}:00Z`;
      q.set(k, v);
    }
    location.hash = `#/scans?${q}`;
  });
  return form;
}

async function loadPage(list, query, cursor, signal) {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (query.get(k)) q.set(k, query.get(k));
  q.set('limit', '50');
  if (cursor) q.set('cursor', cursor);
  let page;
  try {
    page = await getJson(`/api/scans?${q}`, { signal });
  } catch (e) {
    if (e instanceof ApiError && e.status === 400) {
      list.append(errorBox(e));
      return;
    }
    throw e;
  }
  const rows = page.scans.map((s) => h('tr', { 'data-scan-id': s.scan_id, class: 'scan-row' },
    h('td', {}, time(s.requested_at)),
    h('td', {}, h('a', { href: `#/scan/${s.scan_id}`, class: 'scan-link mono' }, short(s.scan_id))),
    h('td', {}, h('a', { href: `#/subscription/${s.subscription_id}`, class: 'mono' }, short(s.subscription_id))),
    h('td', { class: 'scan-status' }, badge(s.status)),
    h('td', { class: 'num' }, `${s.attempt}/${s.max_attempts}`),
    h('td', { class: 'num' }, num(s.total_findings)),
    h('td', { class: 'num' }, score(s.summary && s.summary.score)),
    h('td', { class: 'mono' }, s.worker_id || '—'),
    h('td', {}, s.requested_by || '—')));
  let tbl = list.querySelector('table');
  if (!tbl) {
    tbl = table(['requested (UTC)', 'scan', 'subscription', 'status', 'attempt', 'findings', 'score', 'worker', 'requested by'], [], { class: 'list' });
    list.append(tbl);
  }
  tbl.tBodies[0].append(...rows);
  list.querySelector('.more')?.remove();
  if (!page.scans.length && !cursor) list.append(h('p', { class: 'empty' }, 'No scan matches.'));
  if (page.next_cursor) {
    list.append(h('button', { class: 'more', type: 'button', onclick: () => loadPage(list, query, page.next_cursor, signal) }, 'More'));
  }
}

function requestForm() {
  // One key per intended request: a retry after a network error reuses it (the server
  // answers the same scan); a new key only once the server has answered.
  let key = null;
  const out = h('p', { class: 'result', role: 'status', id: 'request-result' });
  const form = h('form', { id: 'request-form', class: 'card' },
    h('h2', {}, 'Request a scan'),
    h('p', { class: 'hint' }, 'Needs an operator token.'),
    h('label', {}, 'Subscription ', h('input', { name: 'subscription_id', required: true, placeholder: 'UUID', size: 38 })),
    h('label', {}, 'Rules (ids or categories, comma-separated; empty: all) ', h('input', { name: 'rules' })),
    h('label', {}, 'Priority ', h('input', { name: 'priority', type: 'number', min: -32768, max: 32767, step: 1 })),
    h('button', { type: 'submit' }, 'Request'),
    out);
  form.addEventListener('input', () => { key = null; });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const body = { subscription_id: String(data.get('subscription_id')).trim() };
    const rules = String(data.get('rules') || '').split(',').map((r) => r.trim()).filter(Boolean);
    if (rules.length) body.rules = rules;
    if (String(data.get('priority') || '').trim()) body.priority = Number(data.get('priority'));
    key = key || idempotencyKey();
    out.textContent = 'Requesting…';
    try {
      const resp = await request('/api/scans', { method: 'POST', body, extraHeaders: { 'Idempotency-Key': key } });
      const r = await resp.json();
      key = null;
      location.hash = `#/scan/${r.scan_id}`;
    } catch (e) {
      if (e instanceof ApiError) key = null;
      clear(out, errorBox(e));
    }
  });
  return form;
}
