// Compliance: per framework, each control with its rules and their pass / fail /
// indeterminate / muted resource counts on a subscription's latest completed scan
// (GET /api/subscriptions/{id}/compliance?framework=…), downloadable as CSV (&format=csv).

import { getJson, download, ApiError } from './api.js';
import { h, clear, badge, time, num, table, errorBox } from './dom.js';

const FRAMEWORKS = [
  ['cis_azure', 'CIS Microsoft Azure Foundations v2.1.0'],
  ['cis_v3', 'CIS Microsoft Azure Foundations v3.0.0'],
  ['nist_csf', 'NIST CSF'],
  ['iso27001', 'ISO/IEC 27001:2022'],
];

export async function complianceView(main, parts, _query, signal) {
  let [sub, framework] = parts;
  framework = framework || 'cis_azure';
  const subs = await getJson('/api/subscriptions?limit=500', { signal });
  if (!sub && subs.subscriptions.length) sub = subs.subscriptions[0].subscription_id;
  const picker = h('form', { class: 'filters', id: 'compliance-picker' },
    h('label', {}, 'Subscription ', h('select', { name: 'sub' },
      subs.subscriptions.map((s) => h('option', { value: s.subscription_id, selected: s.subscription_id === sub }, s.subscription_id)))),
    h('label', {}, 'Framework ', h('select', { name: 'framework' },
      FRAMEWORKS.map(([k, t]) => h('option', { value: k, selected: k === framework }, t)))));
  picker.addEventListener('change', () => {
    const d = new FormData(picker);
    location.hash = `#/compliance/${d.get('sub')}/${d.get('framework')}`;
  });
  const body = h('section', { id: 'compliance' });
  main.append(h('h1', {}, 'Compliance'), picker, body);
  if (!sub) {
    body.append(h('p', { class: 'empty' }, 'No subscription has been scanned yet.'));
    return;
  }
  let r;
  try {
    r = await getJson(`/api/subscriptions/${sub}/compliance?framework=${framework}`, { signal });
  } catch (e) {
    if (e instanceof ApiError) { body.append(e.status === 409 ? h('p', { class: 'empty' }, 'No scan of this subscription has completed yet.') : errorBox(e)); return; }
    throw e;
  }
  const f = r.frameworks[0];
  const rows = f.controls.map((c) => h('tr', { class: 'control', 'data-control': c.control_id, 'data-state': c.state },
    h('td', { class: 'mono' }, c.control_id),
    h('td', {}, badge(c.state)),
    h('td', { class: 'num' }, num(c.pass)), h('td', { class: 'num' }, num(c.fail)),
    h('td', { class: 'num' }, num(c.indeterminate)), h('td', { class: 'num' }, num(c.muted)),
    h('td', {}, h('details', {}, h('summary', {}, `${c.rules.length} rule${c.rules.length === 1 ? '' : 's'}`),
      h('ul', { class: 'rules' }, c.rules.map((x) => h('li', {},
        badge(x.state), ' ', h('span', { class: 'mono' }, x.rule_id), ` ${x.title} — `,
        `${x.evaluated} evaluated: ${x.pass} pass, ${x.fail} fail, ${x.indeterminate} indeterminate, ${x.muted} muted`)))))));
  clear(body,
    h('h2', {}, f.title),
    h('p', {}, 'Latest completed scan ', h('a', { href: `#/scan/${r.scan_id}`, class: 'mono' }, r.scan_id), ` (${time(r.completed_at)}). `,
      'Counts are resources: each resource a rule was given counts once per rule. ',
      h('button', { type: 'button', id: 'compliance-csv', onclick: async (ev) => {
        try { await download(`/api/subscriptions/${sub}/compliance?framework=${framework}&format=csv`, `compliance-${sub}-${framework}.csv`); } catch (e) { ev.target.after(errorBox(e)); }
      } }, 'Download CSV')),
    h('p', { class: 'counts', id: 'control-states' }, ['pass', 'fail', 'indeterminate', 'muted', 'not_evaluated'].map((s) =>
      h('span', { class: `count st-${s}` }, h('strong', {}, num(f.controls_by_state[s] || 0)), ` ${s.replace('_', ' ')}`))),
    table(['control', 'state', 'pass', 'fail', 'indeterminate', 'muted', 'rules'], rows, { class: 'list', id: 'controls' }));
}
