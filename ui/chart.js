// A small SVG line chart (SVG attributes only: no inline style, which the CSP forbids).

const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, ...children) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/**
 * points: [{t: Date, y: number|null, label}] in time order; y between yMin and yMax.
 * Returns an <svg> with axes, the line, a dot per point (with a <title>), and labels.
 */
export function lineChart(points, { yMin = 0, yMax = 100, yLabel = '', width = 720, height = 240, id } = {}) {
  const pad = { l: 44, r: 16, t: 12, b: 36 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': yLabel, ...(id ? { id } : {}) });
  const ts = points.map((p) => p.t.getTime());
  const t0 = Math.min(...ts);
  const t1 = Math.max(...ts);
  const x = (t) => pad.l + (t1 === t0 ? w / 2 : ((t - t0) / (t1 - t0)) * w);
  const y = (v) => pad.t + hgt - ((v - yMin) / (yMax - yMin || 1)) * hgt;
  for (let i = 0; i <= 4; i++) {
    const v = yMin + ((yMax - yMin) * i) / 4;
    svg.append(el('line', { x1: pad.l, x2: pad.l + w, y1: y(v), y2: y(v), class: 'grid' }),
      el('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, Math.round(v)));
  }
  svg.append(el('text', { x: 4, y: pad.t + 4, class: 'axis', 'text-anchor': 'start' }, ''));
  const dated = points.filter((p) => p.y !== null && p.y !== undefined);
  if (dated.length) {
    svg.append(el('polyline', { class: 'line', fill: 'none', points: dated.map((p) => `${x(p.t.getTime()).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ') }));
    for (const p of dated) {
      svg.append(el('circle', { cx: x(p.t.getTime()).toFixed(1), cy: y(p.y).toFixed(1), r: 3.5, class: 'dot' },
        el('title', {}, p.label)));
    }
  }
  const fmt = (t) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
  svg.append(el('text', { x: pad.l, y: height - 10, class: 'axis', 'text-anchor': 'start' }, fmt(t0)),
    el('text', { x: pad.l + w, y: height - 10, class: 'axis', 'text-anchor': 'end' }, t1 === t0 ? '' : fmt(t1)),
    el('text', { x: pad.l + w / 2, y: height - 10, class: 'axis', 'text-anchor': 'middle' }, yLabel));
  return svg;
}
