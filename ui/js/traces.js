// Trace data: fetch a trace or a search page from the native API
// (`/api/v1/traces…`) when this collector serves it, else from the Jaeger
// API, and normalise both into one model the pages draw:
//   {traceId, startUs, endUs, durUs, spans:[…], byId, roots, services,
//    errorCount, critical: Map(spanId→selfUs)|null, adjustments: Map,
//    orphans: Set, source: 'native'|'jaeger'}
// Times are µs as Numbers (exact up to 2^53 µs; Unix µs fit).
import { api, has } from './api.js';
import { msToNs, msToUs } from './state.js';

const num = v => (v == null ? null : Number(v));
const nsToUs = v => (v == null ? null : Number(v) / 1000);

function normStatus(s) {
  const v = String(s ?? '').toUpperCase();
  if (v === '2' || v.endsWith('ERROR')) return 'ERROR';
  if (v === '1' || v.endsWith('OK')) return 'OK';
  return 'UNSET';
}
function normKind(k) {
  const map = { 1: 'INTERNAL', 2: 'SERVER', 3: 'CLIENT', 4: 'PRODUCER', 5: 'CONSUMER' };
  if (k == null || k === '') return '';
  return (map[k] || String(k)).replace(/^SPAN_KIND_/, '').toUpperCase();
}

export async function nativeTraces() { return has('/api/v1/traces'); }

/** Fetch and normalise one trace. */
export async function getTrace(id, { signal } = {}) {
  if (await nativeTraces()) {
    const t = await api(`/api/v1/traces/${encodeURIComponent(id)}`, null, { signal });
    return timed(() => fromNative(t));
  }
  const j = await api(`/api/traces/${encodeURIComponent(id)}`, null, { signal });
  const t = j && j.data && j.data[0];
  if (!t) throw new Error(`trace ${id} not found`);
  return timed(() => fromJaeger(t));
}

function timed(f) {
  const t0 = performance.now();
  const m = f();
  m.buildMs = performance.now() - t0;
  return m;
}

export function fromNative(t) {
  const spans = (t.spans || []).map(s => ({
    id: s.span_id, parentId: s.parent_span_id || '', service: s.service || '', name: s.name || '',
    kind: normKind(s.kind), startUs: nsToUs(s.start_unix_nano), endUs: nsToUs(s.end_unix_nano),
    status: normStatus(s.status_code), statusMessage: s.status_message || '',
    attributes: s.attributes || {}, resource: s.resource || {},
    events: (s.events || []).map(e => ({ timeUs: nsToUs(e.time_unix_nano ?? e.timestamp_unix_nano), name: e.name || '', attributes: e.attributes || {} })),
    links: (s.links || []).map(l => ({ traceId: l.trace_id, spanId: l.span_id, attributes: l.attributes || {} })),
    warnings: [...(s.warnings || [])], placeholder: !!s.placeholder,
  }));
  const adjustments = new Map((t.adjustments || []).map(a => [a.span_id, { shiftUs: nsToUs(a.shift_ns), reason: a.reason || '' }]));
  for (const [id, a] of adjustments) {
    const s = spans.find(x => x.id === id);
    if (s && !s.warnings.some(w => /skew/i.test(w))) s.warnings.push(`clock skew adjusted by ${(a.shiftUs / 1000).toFixed(3)}ms${a.reason ? ` (${a.reason})` : ''}`);
  }
  const critical = Array.isArray(t.critical_path) ? new Map(t.critical_path.map(c => [c.span_id, nsToUs(c.self_ns)])) : null;
  return build(t.trace_id, spans, { critical, adjustments, orphans: new Set(t.orphans || []), source: 'native' });
}

export function fromJaeger(t) {
  const procs = t.processes || {};
  const HIDDEN = new Set(['span.kind', 'otel.status_code', 'otel.status_description', 'error']);
  const spans = (t.spans || []).map(s => {
    const attributes = {};
    let kind = '', status = 'UNSET', statusMessage = '';
    for (const tag of s.tags || []) {
      if (tag.key === 'span.kind') kind = normKind(tag.value);
      else if (tag.key === 'otel.status_code') status = normStatus(tag.value);
      else if (tag.key === 'otel.status_description') statusMessage = String(tag.value);
      else if (tag.key === 'error') { if (tag.value === true || tag.value === 'true') status = 'ERROR'; }
      if (!HIDDEN.has(tag.key)) attributes[tag.key] = tag.value;
    }
    const proc = procs[s.processID] || {};
    const resource = { 'service.name': proc.serviceName };
    for (const tag of proc.tags || []) resource[tag.key] = tag.value;
    const refs = s.references || [];
    const parent = refs.find(r => r.refType === 'CHILD_OF' && r.traceID === s.traceID) || null;
    return {
      id: s.spanID, parentId: parent ? parent.spanID : '', service: proc.serviceName || '', name: s.operationName || '',
      kind, startUs: num(s.startTime), endUs: num(s.startTime) + num(s.duration), status, statusMessage, attributes, resource,
      events: (s.logs || []).map(l => {
        const attrs = {}; let name = '';
        for (const f of l.fields || []) { if (f.key === 'event') name = String(f.value); else attrs[f.key] = f.value; }
        return { timeUs: num(l.timestamp), name, attributes: attrs };
      }),
      links: refs.filter(r => r.refType === 'FOLLOWS_FROM').map(r => ({ traceId: r.traceID, spanId: r.spanID, attributes: {} })),
      warnings: [...(s.warnings || [])], placeholder: false,
    };
  });
  return build(t.traceID, spans, { critical: null, adjustments: new Map(), orphans: new Set(), source: 'jaeger' });
}

/** Tree, placeholders for missing parents, depth-first order, totals. */
function build(traceId, spans, extra) {
  const byId = new Map();
  for (const s of spans) { if (!byId.has(s.id)) byId.set(s.id, s); }
  spans = [...byId.values()];
  // A parent that never arrived gets a placeholder row, so the orphans stay
  // visible under it (unless the API already sent one).
  for (const s of spans) {
    if (s.parentId && !byId.has(s.parentId)) {
      const kids = spans.filter(x => x.parentId === s.parentId);
      const startUs = Math.min(...kids.map(k => k.startUs)), endUs = Math.max(...kids.map(k => k.endUs));
      const ph = { id: s.parentId, parentId: '', service: '', name: 'missing span', kind: '', startUs, endUs, status: 'UNSET', statusMessage: '',
        attributes: {}, resource: {}, events: [], links: [], warnings: [`span ${s.parentId} never arrived; ${kids.length} span(s) are orphans under it`], placeholder: true };
      byId.set(ph.id, ph); spans.push(ph);
    }
  }
  for (const s of spans) { s.children = []; s.durUs = Math.max(0, s.endUs - s.startUs); }
  const roots = [];
  for (const s of spans) {
    const p = s.parentId && byId.get(s.parentId);
    if (p && p !== s) p.children.push(s); else roots.push(s);
  }
  const byStart = (a, b) => a.startUs - b.startUs || a.name.localeCompare(b.name);
  for (const s of spans) s.children.sort(byStart);
  roots.sort(byStart);
  // Depth-first order, iterative (10k-deep chains must not overflow the stack).
  const order = [];
  const stack = roots.slice().reverse().map(r => [r, 0]);
  while (stack.length) {
    const [s, d] = stack.pop();
    s.depth = d; order.push(s);
    for (let i = s.children.length - 1; i >= 0; i--) stack.push([s.children[i], d + 1]);
  }
  let startUs = Infinity, endUs = -Infinity, errorCount = 0;
  const services = new Set();
  for (const s of order) {
    if (s.startUs < startUs) startUs = s.startUs;
    if (s.endUs > endUs) endUs = s.endUs;
    if (s.status === 'ERROR') errorCount++;
    if (s.service) services.add(s.service);
    if (extra.orphans.has(s.id) && !s.warnings.some(w => /orphan/i.test(w))) s.warnings.push('orphan: its parent span never arrived');
  }
  if (!order.length) { startUs = 0; endUs = 0; }
  return { traceId, spans: order, byId, roots, startUs, endUs, durUs: endUs - startUs, services: [...services], errorCount, ...extra };
}

/**
 * One page of search results: {traces:[summary], next:{…}|null, source}.
 * summary: {traceId, rootService, rootName, startUs, durUs, spanCount, errorCount, services}
 * `f` = {q, service, operation, minDuration, maxDuration, limit, startMs, endMs, cursor}.
 */
export async function searchTraces(f, { signal } = {}) {
  const limit = f.limit || 20;
  if (await nativeTraces()) {
    const parts = [];
    if (f.service) parts.push(`service=${quote(f.service)}`);
    if (f.operation) parts.push(`operation=${quote(f.operation)}`);
    if (f.minDuration) parts.push(`duration>=${f.minDuration}`);
    if (f.maxDuration) parts.push(`duration<=${f.maxDuration}`);
    if (f.q) parts.push(parts.length ? `(${f.q})` : f.q);
    const r = await api('/api/v1/traces', { q: parts.join(' AND '), start: msToNs(f.startMs), end: msToNs(f.endMs), limit, cursor: f.cursor }, { signal });
    const traces = (r.traces || r.data || []).map(t => ({
      traceId: t.trace_id, rootService: t.root_service ?? t.root_service_name ?? '', rootName: t.root_operation ?? t.root_name ?? t.root_span_name ?? '',
      startUs: nsToUs(t.start_unix_nano), durUs: nsToUs(t.duration_ns), spanCount: num(t.span_count), errorCount: num(t.error_count) || 0, services: t.services || [],
    }));
    const cursor = r.next_cursor ?? r.cursor ?? null;
    return { traces, next: cursor ? { ...f, cursor } : null, source: 'native', qOffset: f.q && parts.length > 1 ? parts.join(' AND ').length - f.q.length - 1 : 0 };
  }
  // Jaeger fallback: the box holds tags (key=value …); paging moves `end`
  // to just before the oldest trace shown.
  const end = f.cursor ? Number(f.cursor) : f.endMs;
  const r = await api('/api/traces', {
    service: f.service, operation: f.operation, tags: f.q || null, minDuration: f.minDuration, maxDuration: f.maxDuration,
    limit, start: msToUs(f.startMs), end: `${Math.round(end * 1000)}`,
  }, { signal });
  const traces = (r.data || []).map(t => summarize(fromJaeger(t)));
  traces.sort((a, b) => b.startUs - a.startUs);
  const oldest = traces.length ? traces[traces.length - 1].startUs : null;
  const next = traces.length >= limit && oldest != null ? { ...f, cursor: String(oldest / 1000 - 0.001) } : null;
  return { traces, next, source: 'jaeger', qOffset: 0 };
}

export function summarize(m) {
  const root = m.roots.find(r => !r.placeholder) || m.spans[0] || {};
  return { traceId: m.traceId, rootService: root.service || '', rootName: root.name || '', startUs: m.startUs, durUs: m.durUs,
    spanCount: m.spans.filter(s => !s.placeholder).length, errorCount: m.errorCount, services: m.services };
}

function quote(v) { return /^[\w.\-/]+$/.test(v) ? v : JSON.stringify(v); }
