// Subscriptions (GET /api/subscriptions) and one subscription: its posture over time
// (GET /api/subscriptions/{id}/posture, as an SVG chart), its findings history, open and
// resolved (GET /api/subscriptions/{id}/findings/history), its compliance per framework
// (GET /api/subscriptions/{id}/compliance) and its recent scans (GET /api/scans).

import { getJson, ApiError } from './api.js';
import { h, clear, badge, time, short, num, score, table, errorBox } from './dom.js';
import { lineChart } from './chart.js';

export async function subscriptionsView(main, _parts, _query, signal) {
  const list = h('div', { id: 'subscription-list' });
  main.append(h('h1', {}, 'Subscriptions'), list);
  await loadSubscriptions(list, null, signal);
}

async function loadSubscriptions(list, cursor, signal) {
  const q = new URLSearchParams({ limit: '100' });
  if (cursor) q.set('cursor', cursor);
  const page = await getJson(`/api/subscriptions?${q}`, { signal });
  let tbl = list.querySelector('table');
  if (!tbl) {
    tbl = table(['subscription', 'latest scan', 'status', 'requested (UTC)', 'latest completed (UTC)', 'score', 'findings', ''], [], { class: 'list' });
    list.append(tbl);
  }
  tbl.tBodies[0].append(...page.subscriptions.map((s) => {
    const c = s.latest_completed;
    return h('tr', { 'data-subscription': s.subscription_id },
      h('td', {}, h('a', { href: `#/subscription/${s.subscription_id}`, class: 'mono' }, s.subscription_id)),
      h('td', {}, h('a', { href: `#/scan/${s.latest_scan.scan_id}`, class: 'mono' }, short(s.latest_scan.scan_id))),
      h('td', {}, badge(s.latest_scan.status)),
      h('td', {}, time(s.latest_scan.requested_at)),
      h('td', {}, c ? h('a', { href: `#/scan/${c.scan_id}` }, time(c.finished_at)) : '—'),
      h('td', { class: 'num' }, c ? score(c.score) : '—'),
      h('td', { class: 'num' }, c ? num(c.findings) : '—'),
      h('td', {}, h('a', { href: `#/compliance/${s.subscription_id}` }, 'compliance')));
  }));
  list.querySelector('.more')?.remove();
  if (!page.count && !cursor) list.append(h('p', { class: 'empty' }, 'No scan yet: request one on the Scans page.'));
  if (page.next_cursor) list.append(h('button', { type: 'button', class: 'more', onclick: () => loadSubscriptions(list, page.next_cursor, signal) }, 'More'));
}

export async function subscriptionView(main, parts, query, signal) {
  const id = parts[0];
  const chart = h('section', { id: 'posture', class: 'card' }, h('h2', {}, 'Posture over time'));
  const compliance = h('section', { id: 'sub-compliance' }, h('h2', {}, 'Compliance'));
  const history = h('section', { id: 'history' }, h('h2', {}, 'Findings history'));
  const scans = h('section', { id: 'sub-scans' }, h('h2', {}, 'Recent scans'));
  main.append(h('h1', {}, 'Subscription ', h('span', { class: 'mono' }, id)), chart, compliance, history, scans);
  let posture;
  try {
    posture = await getJson(`/api/subscriptions/${encodeURIComponent(id)}/posture?limit=200`, { signal });
  } catch (e) {
    if (e instanceof ApiError) { chart.append(errorBox(e)); return; }
    throw e;
  }
  renderPosture(chart, posture);
  await Promise.all([
    renderCompliance(compliance, id, signal),
    renderHistory(history, id, query.get('state') || 'open', signal),
    renderScans(scans, id, signal),
  ]);
}

function renderPosture(section, posture) {
  const points = posture.points.slice().reverse().map((p) => ({
    t: new Date(p.finished_at),
    y: p.score,
    label: `${p.finished_at}: score ${score(p.score)}, ${p.findings} findings`,
  }));
  if (!points.length) {
    section.append(h('p', { class: 'empty' }, 'No completed scan yet.'));
    return;
  }
  const findings = posture.points.slice().reverse().map((p) => ({ t: new Date(p.finished_at), y: p.findings, label: `${p.finished_at}: ${p.findings} findings` }));
  const maxF = Math.max(1, ...findings.map((p) => p.y));
  const last = posture.points[0];
  section.append(
    h('p', {}, `Latest: score ${score(last.score)} with ${num(last.findings)} findings on ${num(last.resources_seen)} resources (`,
      h('a', { href: `#/scan/${last.scan_id}` }, time(last.finished_at)), `). ${posture.count} completed scans shown.`),
    h('div', { class: 'charts' },
      h('figure', {}, lineChart(points, { yMin: 0, yMax: 100, yLabel: 'score (0–100)', id: 'score-chart' }), h('figcaption', {}, 'Score per completed scan')),
      h('figure', {}, lineChart(findings, { yMin: 0, yMax: maxF, yLabel: 'findings' }), h('figcaption', {}, 'Findings per completed scan'))));
}

async function renderCompliance(section, id, signal) {
  let r;
  try {
    r = await getJson(`/api/subscriptions/${id}/compliance`, { signal });
  } catch (e) {
    if (e instanceof ApiError) { section.append(e.status === 409 ? h('p', { class: 'empty' }, 'No completed scan yet.') : errorBox(e)); return; }
    throw e;
  }
  section.append(h('p', {}, 'Latest completed scan ', h('a', { href: `#/scan/${r.scan_id}`, class: 'mono' }, short(r.scan_id)), ` (${time(r.completed_at)}).`),
    table(['framework', 'controls', 'pass', 'fail', 'indeterminate', 'muted', 'not evaluated', ''],
      r.frameworks.map((f) => h('tr', { 'data-framework': f.framework },
        h('td', {}, f.title), h('td', { class: 'num' }, f.controls.length),
        ['pass', 'fail', 'indeterminate', 'muted', 'not_evaluated'].map((s) => h('td', { class: `num st-${s}` }, num(f.controls_by_state[s] || 0))),
        h('td', {}, h('a', { href: `#/compliance/${id}/${f.framework}` }, 'controls')))), { class: 'list' }));
}

async function renderHistory(section, id, state, signal) {
  section.append(h('p', { class: 'tabs' }, ['open', 'resolved'].map((s) =>
    h('a', { href: `#/subscription/${id}?state=${s}`, class: s === state ? 'active' : '' }, s))),
  table(['severity', 'rule', 'resource', 'first seen', 'last seen', 'resolved', 'reopened'], [], { class: 'list' }));
  await moreHistory(section, id, state, null, signal);
}

async function moreHistory(section, id, state, cursor, signal) {
  const q = new URLSearchParams({ state, limit: '50' });
  if (cursor) q.set('cursor', cursor);
  const page = await getJson(`/api/subscriptions/${id}/findings/history?${q}`, { signal });
  section.querySelector('tbody').append(...page.history.map((f) => h('tr', {},
    h('td', {}, h('span', { class: `chip sev-${f.severity}` }, f.severity)),
    h('td', { class: 'mono', title: f.rule_name }, f.rule_id),
    h('td', { title: f.resource_id }, f.resource_name),
    h('td', {}, time(f.first_seen_at)), h('td', {}, time(f.last_seen_at)),
    h('td', {}, time(f.resolved_at)), h('td', { class: 'num' }, f.reopened_count))));
  section.querySelector('.more')?.remove();
  if (!page.count && !cursor) section.append(h('p', { class: 'empty' }, `No ${state} finding.`));
  if (page.next_cursor) {
    section.append(h('button', { type: 'button', class: 'more', onclick: () => moreHistory(section, id, state, page.next_cursor, signal) }, 'More'));
  }
}

async function renderScans(section, id, signal) {
  const page = await getJson(`/api/scans?subscription_id=${id}&limit=20`, { signal });
  section.append(table(['requested (UTC)', 'scan', 'status', 'findings', 'score'], page.scans.map((s) => h('tr', {},
    h('td', {}, time(s.requested_at)), h('td', {}, h('a', { href: `#/scan/${s.scan_id}`, class: 'mono' }, short(s.scan_id))),
    h('td', {}, badge(s.status)), h('td', { class: 'num' }, num(s.total_findings)), h('td', { class: 'num' }, score(s.summary && s.summary.score)))), { class: 'list' }),
  h('p', {}, h('a', { href: `#/scans?subscription_id=${id}` }, 'All scans of this subscription')));
}
