// Trace view: header (root, duration, services, errors), warnings (clock-skew
// adjustments, orphans), the waterfall (critical path marked) and the span
// detail panel with attributes, resource, events, links, status and logs of
// this span and of the whole trace. URL: /trace/<id>?span=<span id>
import { h, fmtDur, fmtTime, chip, errorBox, kvTable, badge, empty, put } from '../dom.js';
import { api } from '../api.js';
import { param, setParams, navigate, href } from '../state.js';
import { getTrace } from '../traces.js';
import { Waterfall } from '../waterfall.js';

export async function render(root, { match }) {
  const id = match[1].toLowerCase();
  root.className = 'fill';
  const t0 = performance.now();
  const ctl = new AbortController();
  const loading = h('div.loading', `Loading trace ${id}…`);
  root.append(loading);
  let model;
  try {
    model = await getTrace(id, { signal: ctl.signal });
  } catch (e) {
    loading.remove();
    if (e.status === 404) root.append(h('div', { style: { padding: '16px' } }, errorBox(e, `Fetching trace ${id}`),
      empty('Trace not found', 'No spans with this trace id are stored. It may be outside retention, or its spans have not arrived yet.', null,
        h('a.btn', { href: href('/search') }, 'Back to search'))));
    else root.append(h('div', { style: { padding: '16px' } }, errorBox(e, `Fetching trace ${id}`)));
    return () => ctl.abort();
  }
  loading.remove();
  const fetched = performance.now();

  const rootSpan = model.roots.find(r => !r.placeholder) || model.spans[0];
  const detail = h('aside.detail', { hidden: true, 'aria-label': 'Span details' });
  let traceLogs = null;
  const logsPromise = api('/api/v1/logs', { trace_id: model.traceId, limit: 1000 }, { signal: ctl.signal })
    .then(r => (traceLogs = r.logs || []), e => { if (e.name !== 'AbortError') traceLogs = e; return traceLogs; });

  const wf = new Waterfall(model, {
    selected: param('span') || null,
    onSelect: s => {
      setParams({ span: s ? s.id : null }, { replace: true });
      showDetail(s);
    },
  });

  const warnings = [];
  if (model.adjustments.size) warnings.push(`${model.adjustments.size} span(s) shifted to correct clock skew (marked ⚠).`);
  const orphanCount = model.spans.filter(s => s.placeholder).reduce((n, p) => n + p.children.length, 0);
  if (orphanCount) warnings.push(`${orphanCount} orphan span(s): their parent never arrived; shown under a "missing span" placeholder.`);
  const traceWarn = model.spans.filter(s => s.warnings.length && !s.placeholder).length;
  if (traceWarn && !model.adjustments.size) warnings.push(`${traceWarn} span(s) carry warnings (⚠).`);

  const head = h('div.trace-head',
    h('div.row',
      h('h1', h('span.muted', `${rootSpan ? rootSpan.service : '?'}: `), rootSpan ? rootSpan.name : '(empty trace)'),
      h('span.grow'),
      h('div.legend',
        h('span', h('i.sw', { style: { background: 'var(--err)' } }), 'error'),
        model.critical ? h('span', h('i.sw', { style: { background: 'var(--crit)' } }), 'critical path') : null,
        h('span', h('kbd', '↑'), h('kbd', '↓'), ' select ', h('kbd', '←'), h('kbd', '→'), ' fold')),
      h('button', { type: 'button', onclick: () => wf.setAll(false) }, 'Expand all'),
      h('button', { type: 'button', onclick: () => wf.setAll(true) }, 'Collapse all'),
      h('a.btn', { href: href('/logs', { trace_id: model.traceId, from: 'now-30d' }) }, 'Trace logs'),
      h('form.row', { onsubmit: e => {
        e.preventDefault();
        const other = e.target.elements.other.value.trim().toLowerCase();
        if (/^[0-9a-f]{16,32}$/.test(other)) navigate('/compare', { a: model.traceId, b: other });
        else e.target.elements.other.setCustomValidity('16–32 hex characters'), e.target.reportValidity();
      } }, h('input.mono', { name: 'other', type: 'text', size: 20, placeholder: 'other trace id', 'aria-label': 'Compare with trace id', oninput: e => e.target.setCustomValidity('') }),
      h('button', { type: 'submit' }, 'Compare with…'))),
    h('div.facts',
      h('span', 'Trace ', h('b.mono', model.traceId)),
      h('span', 'Start ', h('b', fmtTime(model.startUs / 1000))),
      h('span', 'Duration ', h('b', fmtDur(model.durUs * 1000))),
      h('span', 'Spans ', h('b', String(model.spans.filter(s => !s.placeholder).length))),
      h('span', 'Depth ', h('b', String(1 + Math.max(0, ...model.spans.map(s => s.depth))))),
      h('span', 'Errors ', model.errorCount ? badge(String(model.errorCount), 'err') : h('b', '0')),
      h('span', model.services.map(chip)),
      model.source === 'jaeger' ? h('span.faint', { title: 'The native trace API is not served by this collector' }, 'via Jaeger API') : null));
  root.append(h('div.trace-page', head,
    warnings.length ? h('div.trace-warnings', { role: 'status' }, '⚠ ', warnings.join(' ')) : null,
    h('div.trace-body', wf.el, detail)));
  // Timings for the benchmark: fetch (+ normalise) and build + first paint.
  const drawn = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => {
    root.dataset.fetchMs = String(Math.round(fetched - t0 - model.buildMs));
    root.dataset.renderMs = String(Math.round(performance.now() - fetched + model.buildMs));
    root.dataset.buildMs = String(Math.round(model.buildMs));
    root.dataset.drawMs = String(Math.round(drawn - fetched));
  }));
  wf.el.focus({ preventScroll: true });
  if (wf.sel) wf.select(wf.sel);

  function showDetail(s) {
    detail.hidden = !s;
    if (!s) return;
    const offset = (s.startUs - model.startUs) * 1000;
    const spanLogs = h('div.loglist'), allLogs = h('div.loglist');
    put(detail,
      h('button.close', { type: 'button', 'aria-label': 'Close', onclick: () => wf.select(null) }, '✕'),
      h('h2', s.name),
      h('div.sub', s.placeholder ? 'placeholder for a span that never arrived' : `${s.service} · ${s.kind || 'span'} · ${fmtDur(s.durUs * 1000)} · starts at +${fmtDur(offset)}`),
      h('div.row', { style: { flexWrap: 'wrap' } }, s.status === 'ERROR' ? badge('error', 'err') : badge(s.status.toLowerCase(), s.status === 'OK' ? 'ok' : 'neutral'),
        model.critical && model.critical.has(s.id) ? badge(`critical path · ${fmtDur(model.critical.get(s.id) * 1000)} self`, 'warn') : null,
        s.statusMessage ? h('span', s.statusMessage) : null),
      s.warnings.length ? h('div.warn-box', { style: { marginTop: '8px' } }, s.warnings.map(w => h('div', '⚠ ', w))) : null,
      h('h3', 'Span'),
      kvTable({ span_id: s.id, parent_span_id: s.parentId || '(root)', start: fmtTime(s.startUs / 1000), duration: fmtDur(s.durUs * 1000) }),
      h('h3', 'Attributes'), h('div.attrs', kvTable(s.attributes)),
      h('h3', 'Resource'), kvTable(s.resource),
      h('h3', `Events (${s.events.length})`),
      s.events.length ? h('div', s.events.map(ev => h('div', { style: { marginBottom: '6px' } },
        h('div', h('b', ev.name || '(event)'), h('span.faint', ` +${fmtDur((ev.timeUs - s.startUs) * 1000)}`)), Object.keys(ev.attributes).length ? kvTable(ev.attributes) : null))) : h('div.faint', 'none'),
      h('h3', `Links (${s.links.length})`),
      s.links.length ? h('div', s.links.map(l => h('div', h('a.mono', { href: href(`/trace/${l.traceId}`, { span: l.spanId }) }, `${l.traceId.slice(0, 16)}… / ${l.spanId}`)))) : h('div.faint', 'none'),
      h('h3', "This span's logs"), spanLogs,
      h('h3', "This trace's logs"), allLogs);
    const fill = logs => {
      if (logs instanceof Error) { spanLogs.replaceChildren(errorBox(logs, 'Loading logs')); allLogs.replaceChildren(); return; }
      const mine = logs.filter(l => l.span_id === s.id);
      spanLogs.replaceChildren(...(mine.length ? mine.map(logRow) : [h('div.faint', 'no logs recorded in this span')]));
      put(allLogs, ...(logs.length ? logs.slice(0, 50).map(logRow) : [h('div.faint', 'no logs for this trace')]),
        logs.length > 50 ? h('a', { href: href('/logs', { trace_id: model.traceId, from: 'now-30d' }) }, `all ${logs.length} logs →`) : null);
    };
    if (traceLogs) fill(traceLogs); else { spanLogs.textContent = 'loading…'; logsPromise.then(fill); }
  }

  function logRow(l) {
    const sev = (l.severity_text || '').toLowerCase() || 'neutral';
    return h('div.log', h('div.row', badge(l.severity_text || String(l.severity_number || '—'), sev), h('span.faint', fmtTime(l.timestamp_unix_nano / 1e6)), h('span.muted', l.service)),
      h('div.body', typeof l.body === 'string' ? l.body : JSON.stringify(l.body)));
  }

  return () => { ctl.abort(); wf.destroy(); };
}
