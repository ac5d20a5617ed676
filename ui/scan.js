// Scan: live status (long-poll GET /api/scans/{id}?wait=10 with If-None-Match), the event
// timeline exactly as stored (GET /api/scans/{id}/events) checked against its proof bundle
// (GET /api/scans/{id}/proof), findings by severity (GET /api/scans/{id}/findings), the
// diff against the previous completed scan (GET /api/scans/{id}/diff) and the reports
// (GET /api/scans/{id}/report?format=…).

import { getJson, request, download, ApiError } from './api.js';
import { h, clear, badge, time, short, num, score, table, errorBox, SEVERITIES } from './dom.js';
import { verifyBundle } from './ledger.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export async function scanView(main, parts, query, signal) {
  const id = parts[0];
  const head = h('section', { id: 'scan-head', class: 'card' }, 'Loading…');
  const timeline = h('section', { id: 'timeline' }, h('h2', {}, 'Event timeline'));
  const findings = h('section', { id: 'findings' }, h('h2', {}, 'Findings'));
  const diff = h('section', { id: 'diff' }, h('h2', {}, 'Compared with the previous scan'));
  main.append(h('h1', {}, 'Scan ', h('span', { class: 'mono' }, id)), head, timeline, findings, diff);

  let scan;
  try {
    scan = await getJson(`/api/scans/${encodeURIComponent(id)}`, { signal });
  } catch (e) {
    clear(head, errorBox(e));
    return;
  }
  renderHead(head, scan);
  await renderTimeline(timeline, id, scan, signal);
  if (scan.status === 'completed') {
    await Promise.all([renderFindings(findings, scan, query, signal), renderDiff(diff, scan, signal)]);
  } else {
    findings.append(h('p', { class: 'empty' }, 'Findings appear when the scan completes.'));
    diff.append(h('p', { class: 'empty' }, 'The comparison appears when the scan completes.'));
  }

  // Live: wait for each change of the scan (the server answers at once on a change, or
  // after 10 s unchanged: claims and heartbeats wake no one), until it ends or the page moves on.
  while (!TERMINAL.has(scan.status) && !signal.aborted) {
    let resp;
    try {
      resp = await request(`/api/scans/${id}?wait=10`, { signal, extraHeaders: { 'If-None-Match': `"${scan.version}"` } });
    } catch (e) {
      if (signal.aborted) return;
      head.append(errorBox(e));
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (resp.status === 304) continue;
    const next = await resp.json();
    if (next.version === scan.version) continue;
    scan = next;
    renderHead(head, scan);
    await renderTimeline(timeline, id, scan, signal);
    if (scan.status === 'completed') {
      await Promise.all([renderFindings(findings, scan, query, signal), renderDiff(diff, scan, signal)]);
    }
  }
}

function renderHead(head, s) {
  const p = s.progress;
  const sev = (s.summary && s.summary.findings_by_severity) || {};
  clear(head,
    h('dl', { class: 'facts' },
      h('dt', {}, 'Status'), h('dd', { id: 'scan-status', 'data-status': s.status }, badge(s.status)),
      h('dt', {}, 'Subscription'), h('dd', {}, h('a', { href: `#/subscription/${s.subscription_id}`, class: 'mono' }, s.subscription_id)),
      h('dt', {}, 'Attempt'), h('dd', {}, `${s.attempt} of ${s.max_attempts}`),
      h('dt', {}, 'Worker'), h('dd', { class: 'mono' }, s.worker_id || '—'),
      h('dt', {}, 'Requested'), h('dd', {}, time(s.requested_at), s.requested_by ? ` by ${s.requested_by}` : ''),
      h('dt', {}, 'Claimed'), h('dd', {}, time(s.claimed_at)),
      h('dt', {}, 'Last heartbeat'), h('dd', {}, time(s.heartbeat_at)),
      h('dt', {}, 'Finished'), h('dd', {}, time(s.finished_at)),
      !TERMINAL.has(s.status) ? [h('dt', {}, 'Progress'), h('dd', { id: 'scan-progress' },
        p ? `${p.phase}: ${num(p.resources_seen)} resources seen, ${num(p.rules_evaluated)} rule evaluations` : '—')] : null,
      s.next_attempt_at ? [h('dt', {}, 'Next attempt'), h('dd', {}, time(s.next_attempt_at))] : null,
      s.error ? [h('dt', {}, 'Error'), h('dd', { class: 'error' }, `${s.error.code}: ${s.error.message}`,
        s.error.correlation_id ? ` (correlation id ${s.error.correlation_id})` : '')] : null,
      s.summary ? [h('dt', {}, 'Score'), h('dd', { id: 'scan-score' }, score(s.summary.score)),
        h('dt', {}, 'Resources seen'), h('dd', {}, num(s.summary.resources_seen)),
        h('dt', {}, 'Findings'), h('dd', { id: 'scan-findings-total' }, num(s.summary.findings), ' ',
          SEVERITIES.filter((x) => sev[x]).map((x) => h('span', { class: `chip sev-${x}` }, `${x} ${sev[x]}`)))] : null),
    h('div', { class: 'actions' },
      s.status === 'completed' ? ['json', 'sarif', 'csv', 'ocsf'].map((f) =>
        h('button', { type: 'button', class: 'download', 'data-format': f,
          onclick: (ev) => guarded(ev, () => download(`/api/scans/${s.scan_id}/report?format=${f}`, `scan-${s.scan_id}.${f}`)) }, `Report (${f.toUpperCase()})`)) : null,
      h('button', { type: 'button', class: 'download', 'data-format': 'proof',
        onclick: (ev) => guarded(ev, () => download(`/api/scans/${s.scan_id}/proof`, `scan-${s.scan_id}.jsonl`)) }, 'Proof bundle'),
      TERMINAL.has(s.status) ? null : h('button', { type: 'button', class: 'danger', id: 'cancel',
        onclick: (ev) => guarded(ev, () => request(`/api/scans/${s.scan_id}/cancel`, { method: 'POST', body: { reason: 'cancelled from the console' } })) }, 'Cancel scan')));
}

async function guarded(ev, f) {
  const btn = ev.currentTarget;
  btn.disabled = true;
  try {
    await f();
  } catch (e) {
    btn.after(errorBox(e));
  } finally {
    btn.disabled = false;
  }
}

async function renderTimeline(section, id, scan, signal) {
  const stream = await getJson(`/api/scans/${id}/events`, { signal });
  let checks = null;
  let failure = null;
  try {
    const bundle = await (await request(`/api/scans/${id}/proof`, { signal })).text();
    checks = verifyBundle(bundle);
  } catch (e) {
    if (signal.aborted) throw e;
    failure = e;
  }
  const rows = stream.events.map((e) => {
    const c = checks && checks.get(e.version);
    return h('tr', { class: 'event', 'data-kind': e.kind, 'data-version': e.version },
      h('td', { class: 'num' }, e.version),
      h('td', {}, h('strong', {}, e.kind)),
      h('td', { class: 'num' }, e.attempt),
      h('td', { class: 'mono' }, e.worker_id || '—'),
      h('td', {}, time(e.recorded_at)),
      h('td', { class: 'mono hash', title: c ? c.hashHex : '' }, c ? c.hashHex.slice(0, 16) + '…' : '—'),
      h('td', { class: 'verify' }, mark(c)),
      h('td', {}, h('details', {}, h('summary', {}, 'payload'),
        h('pre', { class: 'payload' }, c ? c.payload : JSON.stringify(e.payload)))));
  });
  clear(section,
    h('h2', {}, 'Event timeline'),
    h('p', { class: 'hint' }, 'Each event as stored. ✓ hash: this page recomputed the event\'s hash from its stored fields and its link to the previous event (and, for Completed, the digest of its findings). ✓ checkpoint: its inclusion proof leads to that checkpoint\'s Merkle root. Check signatures offline: ',
      h('code', {}, `scanledger audit verify --bundle scan-${short(id)}.jsonl --public-key KEY`), '.'),
    failure ? errorBox(failure) : null,
    table(['v', 'kind', 'attempt', 'worker', 'recorded (UTC)', 'hash', 'integrity', ''], rows, { class: 'list', id: 'events' }),
    TERMINAL.has(scan.status) ? h('button', { type: 'button', id: 'recheck', onclick: () => renderTimeline(section, id, scan, signal) }, 'Check again') : null);
}

function mark(c) {
  if (!c) return '—';
  const ok = c.hash && c.chain && c.findings !== false;
  const parts = [h('span', { class: ok ? 'ok verified' : 'bad broken' }, ok ? '✓ hash' : '✗ broken')];
  if (!c.hash) parts.push(h('span', { class: 'bad' }, ' (contents)'));
  if (!c.chain) parts.push(h('span', { class: 'bad' }, ' (chain)'));
  if (c.findings === false) parts.push(h('span', { class: 'bad' }, ' (findings digest)'));
  if (c.proof === true) {
    parts.push(' ', h('span', { class: 'ok checkpointed', title: c.checkpoint.signed ? `signed by key ${c.checkpoint.key_id}` : 'unsigned checkpoint' },
      `✓ checkpoint #${c.checkpoint.id}${c.checkpoint.signed ? ' (signed)' : ''}`));
  } else if (c.proof === false) {
    parts.push(' ', h('span', { class: 'bad' }, `✗ checkpoint #${c.checkpoint.id}`));
  } else {
    parts.push(' ', h('span', { class: 'muted' }, 'not yet checkpointed'));
  }
  return parts;
}

async function renderFindings(section, scan, query, signal) {
  const sev = (scan.summary && scan.summary.findings_by_severity) || {};
  const state = { severity: '', category: '', rule_id: '' };
  const list = h('div', { id: 'finding-groups' });
  const form = h('form', { class: 'filters', id: 'finding-filters' },
    h('label', {}, 'Severity ', h('select', { name: 'severity' }, h('option', { value: '' }, 'any'),
      SEVERITIES.map((s) => h('option', { value: s }, `${s} (${sev[s] || 0})`)))),
    h('label', {}, 'Category ', h('input', { name: 'category', size: 12 })),
    h('label', {}, 'Rule ', h('input', { name: 'rule_id', size: 12, placeholder: 'AZ-STG-001' })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    for (const k of Object.keys(state)) state[k] = String(d.get(k) || '').trim();
    clear(list);
    loadFindings(list, scan.scan_id, state, null, signal).catch((e) => list.append(errorBox(e)));
  });
  clear(section, h('h2', {}, 'Findings'), form, list);
  await loadFindings(list, scan.scan_id, state, null, signal);
}

async function loadFindings(list, id, state, cursor, signal) {
  const q = new URLSearchParams({ limit: '500' });
  for (const [k, v] of Object.entries(state)) if (v) q.set(k, v);
  if (cursor) q.set('cursor', cursor);
  const page = await getJson(`/api/scans/${id}/findings?${q}`, { signal });
  for (const f of page.findings) {
    let group = list.querySelector(`[data-severity="${f.severity}"]`);
    if (!group) {
      // The worst are open; the others one click away.
      group = h('details', { class: `group sev-${f.severity}`, 'data-severity': f.severity, open: f.severity === 'critical' || f.severity === 'high' },
        h('summary', {}, h('span', { class: `chip sev-${f.severity}` }, f.severity), ' ', h('span', { class: 'n' }, '0')),
        table(['rule', 'title', 'resource', 'type', 'category'], [], { class: 'list' }));
      // Keep the groups in severity order.
      const after = [...list.children].find((g) => SEVERITIES.indexOf(g.dataset.severity) > SEVERITIES.indexOf(f.severity));
      list.insertBefore(group, after || list.querySelector('.more'));
    }
    group.querySelector('tbody').append(h('tr', { class: f.muted ? 'finding is-muted' : 'finding', 'data-rule': f.rule_id },
      h('td', { class: 'mono' }, f.rule_id),
      h('td', {}, f.rule_name, f.muted ? [' ', h('span', { class: 'chip muted-chip', title: `muted by ${f.muted.by}: ${f.muted.reason}` }, 'muted')] : null),
      h('td', { class: 'mono', title: f.resource_id }, f.resource_name),
      h('td', {}, f.resource_type), h('td', {}, f.category)));
    const n = group.querySelector('.n');
    n.textContent = String(Number(n.textContent) + 1);
  }
  list.querySelector('.more')?.remove();
  if (!list.querySelector('.group')) list.append(h('p', { class: 'empty' }, 'No finding matches.'));
  if (page.next_cursor) {
    list.append(h('button', { type: 'button', class: 'more', onclick: () => loadFindings(list, id, state, page.next_cursor, signal) }, 'More'));
  }
}

async function renderDiff(section, scan, signal) {
  let d;
  try {
    d = await getJson(`/api/scans/${scan.scan_id}/diff?limit=1000`, { signal });
  } catch (e) {
    if (e instanceof ApiError) { clear(section, h('h2', {}, 'Compared with the previous scan'), errorBox(e)); return; }
    throw e;
  }
  const rows = (items, kind) => items.map((f) => h('tr', { class: `diff-${kind}` },
    h('td', {}, h('span', { class: `chip diff-${kind}` }, kind)), h('td', { class: 'mono' }, f.rule_id),
    h('td', {}, h('span', { class: `chip sev-${f.severity}` }, f.severity)), h('td', { title: f.resource_id }, f.resource_name)));
  clear(section,
    h('h2', {}, 'Compared with the previous scan'),
    d.base_scan_id
      ? h('p', {}, 'Base: ', h('a', { href: `#/scan/${d.base_scan_id}`, class: 'mono' }, d.base_scan_id), '. ',
        h('span', { id: 'diff-counts' }, `${d.new.length} new, ${d.resolved.length} resolved, ${d.unchanged.length} unchanged`),
        d.next_cursor ? ' (first 1,000 findings; more in GET /api/scans/{id}/diff)' : '')
      : h('p', { id: 'diff-counts' }, `The subscription's first completed scan: ${d.new.length} findings, all new.`),
    d.base_scan_id && (d.new.length || d.resolved.length)
      ? table(['change', 'rule', 'severity', 'resource'], [...rows(d.new, 'new'), ...rows(d.resolved, 'resolved')], { class: 'list' })
      : null);
}
