// A few helpers to build the page with the DOM: data always becomes text nodes, never markup.

/** h('a', {href: '#/x', class: 'c'}, 'text', child…) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
export const STATES = ['pending', 'running', 'completed', 'failed', 'cancelled'];

export function badge(value, prefix = 'st') {
  return h('span', { class: `badge ${prefix}-${value}` }, String(value).replace('_', ' '));
}

/** `2026-01-02 03:04:05Z` (UTC, as stored), or an em dash. */
export function time(t) {
  if (!t) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function ago(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  const a = Math.abs(s);
  const txt = a < 120 ? `${a} s` : a < 7200 ? `${Math.round(a / 60)} min` : `${(a / 3600).toFixed(1)} h`;
  return s < 0 ? `-${txt}` : txt;
}

export function short(id) {
  return id ? String(id).slice(0, 8) : '—';
}

export function num(n) {
  return n === null || n === undefined ? '—' : Number(n).toLocaleString('en');
}

export function score(s) {
  return s === null || s === undefined ? '—' : Number(s).toFixed(1);
}

/** Read `#/view/a/b?x=1` → { parts: ['view','a','b'], query: URLSearchParams }. */
export function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, q] = hash.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q || '') };
}

export function table(headings, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, headings.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows));
}

export function errorBox(e) {
  const p = e && e.problem ? e.problem : {};
  return h('p', { class: 'error', role: 'alert' },
    e && e.status ? `${e.status} ${p.code || ''}: ${e.message}` : String(e && e.message ? e.message : e),
    p.correlation_id ? ` (correlation id ${p.correlation_id})` : '');
}
