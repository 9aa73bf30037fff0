// Service map: the dependency graph for the global time range. Edges carry
// call rate, error % and p99; nodes are coloured by health (expired in the
// registry or named by a firing alert stand out). Click a node → its service
// page; click an edge → traces of the callee.
import { h, s, fmtNum, fmtPct, fmtDur, errorBox, empty, sdkHint, svcColor } from '../dom.js';
import { api, has } from '../api.js';
import { timeRange, msToNs, navigate } from '../state.js';

const DEPS = '/api/v1/dependencies';

export async function render(root) {
  const tr = timeRange();
  const errs = h('div'), body = h('div.card.mapwrap');
  root.append(h('div.page-head', h('h1', 'Service map'), h('span.muted', tr.label), h('span.spacer'),
    h('div.legend', h('span', h('i.sw', { style: { background: 'var(--ok)' } }), 'alive'), h('span', h('i.sw', { style: { background: 'var(--err)' } }), 'down or alerting'),
      h('span', h('i.sw', { style: { background: 'var(--faint)' } }), 'calls'), h('span', h('i.sw', { style: { background: 'var(--err)', height: '3px' } }), 'calls with errors'))),
    errs, body);

  let edges;
  try {
    const r = await api(DEPS, { start: msToNs(tr.startMs), end: msToNs(tr.endMs) });
    edges = (r.edges || r.dependencies || r.data || []).map(e => ({
      from: e.parent ?? e.caller ?? e.client, to: e.child ?? e.callee ?? e.server,
      calls: Number(e.call_count ?? e.callCount ?? 0), errors: Number(e.error_count ?? e.errorCount ?? 0),
      p50: nsOf(e.p50_ns, e.latency_p50_ms), p99: nsOf(e.p99_ns, e.latency_p99_ms),
    })).filter(e => e.from && e.to);
  } catch (e) {
    errs.append(errorBox(e, 'Loading the dependency graph'));
    return;
  }
  // Health: registry (all instances expired) and firing alerts by service.
  const bad = new Set(), good = new Set();
  const extra = [];
  if (await has('/api/v1/registry/services')) extra.push(api('/api/v1/registry/services').then(r => {
    for (const sv of r.services || []) {
      const insts = sv.instances || [];
      if (insts.length && !insts.some(i => i.state === 'alive')) bad.add(sv.service); else if (insts.length) good.add(sv.service);
    }
  }, e => errs.append(errorBox(e, 'Loading the registry'))));
  if (await has('/api/v1/alerts')) extra.push(api('/api/v1/alerts').then(r => {
    for (const a of r.alerts || []) if (a.state === 'firing' && a.labels && a.labels.service) bad.add(a.labels.service);
  }, e => errs.append(errorBox(e, 'Loading alerts'))));
  await Promise.all(extra);

  if (!edges.length) {
    body.append(empty('No calls in this time range', 'The map is built from client → server span pairs. Send traces that cross services (propagate the trace context), or widen the time range.', sdkHint()));
    return;
  }
  body.append(draw(edges, tr, bad, good));
}

// A latency in ns from either the ns field or the API's millisecond field.
function nsOf(ns, ms) {
  if (ns != null) return Number(ns);
  return ms != null ? Number(ms) * 1e6 : null;
}

function draw(edges, tr, bad, good) {
  const nodes = new Map();
  for (const e of edges) for (const n of [e.from, e.to]) if (!nodes.has(n)) nodes.set(n, { name: n, layer: 0, out: [], inCalls: 0 });
  for (const e of edges) { nodes.get(e.from).out.push(e); nodes.get(e.to).inCalls += e.calls; }
  // Longest-path layering (cycles cut at the layer count).
  const N = nodes.size;
  for (let it = 0; it < N; it++) {
    let changed = false;
    for (const e of edges) {
      if (e.from === e.to) continue;
      const a = nodes.get(e.from), b = nodes.get(e.to);
      if (b.layer < a.layer + 1 && a.layer + 1 < N) { b.layer = a.layer + 1; changed = true; }
    }
    if (!changed) break;
  }
  // Cycles can leave layer numbers unused: drop the empty layers.
  const sparse = [];
  for (const n of nodes.values()) (sparse[n.layer] ||= []).push(n);
  const layers = sparse.filter(Boolean);
  const NW = 170, NH = 46, GX = 200, GY = 40;
  const maxRows = Math.max(...layers.map(l => (l ? l.length : 0)));
  const W = layers.length * (NW + GX) - GX + 80, H = Math.max(200, maxRows * (NH + GY) - GY + 80);
  layers.forEach((l, li) => (l || []).sort((a, b) => a.name.localeCompare(b.name)).forEach((n, i) => {
    n.x = 40 + li * (NW + GX); n.y = 40 + (H - 80 - (l.length * (NH + GY) - GY)) / 2 + i * (NH + GY);
  }));
  const secs = Math.max(1, (tr.endMs - tr.startMs) / 1000);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, style: `max-height:${Math.max(320, H)}px`, role: 'img', 'aria-label': 'Service dependency graph' },
    s('defs', {}, s('marker', { id: 'arr', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', fill: 'var(--faint)' }))));
  for (const e of edges) {
    const a = nodes.get(e.from), b = nodes.get(e.to);
    let d, lx, ly;
    if (a === b) { d = `M${a.x + NW - 30},${a.y} C${a.x + NW},${a.y - 50} ${a.x + NW + 40},${a.y} ${a.x + NW},${a.y + 12}`; lx = a.x + NW; ly = a.y - 30; }
    else {
      const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`; lx = mx; ly = (y1 + y2) / 2 - 6;
    }
    const ratio = e.calls ? e.errors / e.calls : 0;
    const label = `${fmtNum(e.calls / secs * 60, 1)}/min · ${fmtPct(ratio)}${e.p99 != null ? ` · p99 ${fmtDur(e.p99)}` : ''}`;
    svg.append(s('g', { class: `edge${ratio > 0 ? ' err' : ''}`, onclick: () => navigate('/search', { service: e.to }) , dataset: null },
      s('title', {}, `${e.from} → ${e.to}\n${e.calls} calls, ${e.errors} errors${e.p50 != null ? `\np50 ${fmtDur(e.p50)}` : ''}${e.p99 != null ? `, p99 ${fmtDur(e.p99)}` : ''}\nclick: search traces of this call`),
      s('path', { d, 'marker-end': 'url(#arr)', 'stroke-width': 1.2 + Math.min(4, Math.log10(1 + e.calls)) }),
      s('text', { x: lx, y: ly, 'text-anchor': 'middle' }, label)));
  }
  for (const n of nodes.values()) {
    const state = bad.has(n.name) ? 'dead' : good.has(n.name) ? 'healthy' : '';
    svg.append(s('g', { class: `node ${state}`, 'data-service': n.name, onclick: () => navigate(`/services/${encodeURIComponent(n.name)}`) },
      s('rect', { x: n.x, y: n.y, width: NW, height: NH, rx: 8 }),
      s('rect', { x: n.x, y: n.y + 8, width: 4, height: NH - 16, rx: 2, style: `fill:${svcColor(n.name)};stroke:none` }),
      s('text', { x: n.x + 14, y: n.y + 19 }, n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name),
      s('text', { x: n.x + 14, y: n.y + 35, class: 'sub' }, state === 'dead' ? 'down / alerting' : n.inCalls ? `${fmtNum(n.inCalls / secs * 60, 1)} req/min in` : 'entry point')));
  }
  return svg;
}
