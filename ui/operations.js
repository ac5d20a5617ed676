// Operations: scans by state, the queue's depth and oldest wait, running attempts with
// their lease time left and last heartbeat, workers seen lately, failures by code
// (GET /api/operations), refreshed every 5 s while shown.

import { getJson } from './api.js';
import { h, clear, time, short, num, ago, table, STATES } from './dom.js';

export async function operationsView(main, _parts, query, signal) {
  const window = Number(query.get('window')) || 900;
  const body = h('div', { id: 'operations' });
  main.append(h('h1', {}, 'Operations'), body);
  for (;;) {
    const ops = await getJson(`/api/operations?window=${window}`, { signal });
    render(body, ops);
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 5000);
      signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
    if (signal.aborted) return;
  }
}

function render(body, o) {
  const mins = Math.round(o.window_seconds / 60);
  clear(body,
    h('p', { class: 'hint' }, `As of ${time(o.as_of)} (database clock). Workers and failures: the last ${mins} min.`),
    h('div', { class: 'counts' }, STATES.map((s) => h('a', { class: `count st-${s}`, href: `#/scans?status=${s}` }, h('strong', {}, num(o.scans[s])), ` ${s}`))),
    h('section', { class: 'card', id: 'queue' }, h('h2', {}, 'Queue'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Claimable now'), h('dd', { id: 'queue-depth' }, num(o.queue.claimable)),
        h('dt', {}, 'Waiting out a retry back-off'), h('dd', {}, num(o.queue.backing_off)),
        h('dt', {}, 'Oldest claimable waits'), h('dd', { id: 'queue-oldest' }, o.queue.oldest_claimable_seconds === null ? '—'
          : `${ago(o.queue.oldest_claimable_seconds)} (since ${time(o.queue.oldest_claimable_since)})`))),
    h('section', { id: 'running' }, h('h2', {}, `Running (${num(o.scans.running)})`),
      o.running.length ? table(['scan', 'subscription', 'worker', 'attempt', 'claimed', 'last heartbeat', 'lease left', 'progress'],
        o.running.map((r) => h('tr', { class: r.lease_seconds_left < 0 ? 'late' : '' },
          h('td', {}, h('a', { href: `#/scan/${r.scan_id}`, class: 'mono' }, short(r.scan_id))),
          h('td', { class: 'mono' }, short(r.subscription_id)), h('td', { class: 'mono' }, r.worker_id || '—'),
          h('td', { class: 'num' }, r.attempt), h('td', {}, time(r.claimed_at)), h('td', {}, time(r.heartbeat_at)),
          h('td', { class: 'num' }, ago(r.lease_seconds_left)),
          h('td', {}, r.progress ? `${r.progress.phase}, ${num(r.progress.resources_seen)} resources` : '—'))), { class: 'list' })
        : h('p', { class: 'empty' }, 'No attempt is running.')),
    h('section', { id: 'workers' }, h('h2', {}, 'Workers seen'),
      h('p', { class: 'hint' }, `From the attempts running now and the latest ${num(o.workers_sample)} scans that ended in the window (at most 1,000).`),
      o.workers.length ? table(['worker', 'last seen', 'running', 'completed', 'failed'],
        o.workers.map((w) => h('tr', {}, h('td', { class: 'mono' }, w.worker_id), h('td', {}, time(w.last_seen)),
          h('td', { class: 'num' }, w.running), h('td', { class: 'num' }, num(w.completed)), h('td', { class: 'num' }, num(w.failed)))), { class: 'list' })
        : h('p', { class: 'empty' }, 'No worker held, completed or failed a scan in the window.')),
    h('section', { id: 'failures' }, h('h2', {}, 'Failures by code'),
      o.failures.length ? table(['code', 'failed (window)', 'retrying now'],
        o.failures.map((f) => h('tr', {}, h('td', { class: 'mono' }, f.code), h('td', { class: 'num' }, num(f.failed)), h('td', { class: 'num' }, num(f.retrying)))), { class: 'list' })
        : h('p', { class: 'empty' }, 'No failure in the window, none waiting to be retried.')));
}
