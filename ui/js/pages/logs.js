// Logs: full-text search with service, minimum severity, trace id and the
// global time range; a volume histogram by severity (click a bar to zoom);
// newest-first rows that expand to their attributes, with trace links; and a
// live tail (polls for newer records every 2 s while on).
// URL: ?query=&service=&severity=&trace_id=&live=1&from=&to=
import { h, s, fmtTime, errorBox, empty, sdkHint, kvTable, badge } from '../dom.js';
import { api } from '../api.js';
import { param, setParams, timeRange, msToNs, href } from '../state.js';

const SEVS = [['', 'Any severity'], ['trace', 'Trace+'], ['debug', 'Debug+'], ['info', 'Info+'], ['warn', 'Warn+'], ['error', 'Error+'], ['fatal', 'Fatal']];
const BANDS = [['fatal', 21, '#7f1d1d'], ['error', 17, '#dc2626'], ['warn', 13, '#f59e0b'], ['info', 9, '#3b82f6'], ['debug', 5, '#8b5cf6'], ['trace', 1, '#94a3b8'], ['unset', 0, '#cbd5e1']];
const LIMIT = 1000;

const band = n => BANDS.find(([, min]) => (n || 0) >= min);

export async function render(root) {
  const qIn = h('input', { type: 'search', value: param('query'), placeholder: 'words, "phrases", AND / OR / NOT', 'aria-label': 'Log query', style: { width: '100%' } });
  const svcSel = h('select', { 'aria-label': 'Service' }, h('option', { value: '' }, 'All services'));
  const sevSel = h('select', { 'aria-label': 'Minimum severity' }, SEVS.map(([v, l]) => h('option', { value: v, selected: v === param('severity') }, l)));
  const tidIn = h('input', { type: 'text', value: param('trace_id'), placeholder: '32 hex characters', size: 34, 'aria-label': 'Trace id', class: 'mono' });
  const liveCb = h('input', { type: 'checkbox', checked: param('live') === '1' });
  const form = h('form.card.toolbar', { onsubmit: e => { e.preventDefault(); search(); } },
    h('label.field', { style: { flex: '1 1 320px' } }, 'Search', qIn), h('label.field', 'Service', svcSel), h('label.field', 'Severity', sevSel),
    h('label.field', 'Trace id', tidIn), h('button.primary', { type: 'submit' }, 'Search'),
    h('label.row', { style: { alignSelf: 'center' } }, liveCb, 'Live tail'));
  const errs = h('div'), status = h('div.muted'), histo = h('div.card.pad'), rows = h('div.card.logrows');
  root.append(h('div.stack', form, errs, h('div.row', status), histo, rows));

  api('/api/services').then(r => { for (const sv of (r.data || []).sort()) svcSel.append(h('option', { value: sv, selected: sv === param('service') }, sv)); })
    .catch(e => errs.append(errorBox(e, 'Loading services')));

  let logs = [], timer = null, stopped = false, range = timeRange();
  const ctl = new AbortController();

  function filters() {
    return { query: qIn.value.trim(), service: svcSel.value, severity: sevSel.value, trace_id: tidIn.value.trim().toLowerCase() };
  }

  async function search() {
    const f = filters();
    setParams({ ...f, live: liveCb.checked ? '1' : null });
    range = timeRange();
    errs.replaceChildren(); status.textContent = 'Searching…';
    try {
      const r = await api('/api/v1/logs', { ...f, start: msToNs(range.startMs), end: msToNs(range.endMs), limit: LIMIT }, { signal: ctl.signal });
      logs = r.logs || [];
    } catch (e) {
      if (e.name === 'AbortError') return;
      status.textContent = ''; errs.append(errorBox(e, 'Log search')); logs = []; draw(); return;
    }
    draw();
    live();
  }

  function draw() {
    status.textContent = `${logs.length}${logs.length >= LIMIT ? '+' : ''} log record${logs.length === 1 ? '' : 's'}${logs.length >= LIMIT ? ` (newest ${LIMIT} shown and counted)` : ''}`;
    drawHisto();
    rows.replaceChildren();
    if (!logs.length) {
      const f = filters();
      rows.append(f.query || f.service || f.severity || f.trace_id
        ? empty('No matching logs', 'Nothing in this time range matches. Widen the time range in the top bar or loosen the search.')
        : empty('No logs yet', 'Skein has not received log records in this time range. Send logs over OTLP, e.g. with an OpenTelemetry SDK:', sdkHint()));
      return;
    }
    rows.append(h('div.lr', { style: { cursor: 'default', fontWeight: 600, fontSize: '11px', color: 'var(--muted)', textTransform: 'uppercase' } },
      h('span', 'Time'), h('span', 'Level'), h('span', 'Service'), h('span', 'Message'), h('span', 'Trace')));
    for (const l of logs) rows.append(logRow(l));
  }

  function logRow(l) {
    const b = band(l.severity_number);
    const body = typeof l.body === 'string' ? l.body : JSON.stringify(l.body);
    const row = h('div.lr', { role: 'button', tabindex: 0, 'aria-expanded': 'false' },
      h('span.ts', fmtTime(l.timestamp_unix_nano / 1e6)),
      h('span', badge(l.severity_text || b[0], b[0])),
      h('span.svc', { title: l.service }, l.service || '—'),
      h('span.body', body),
      h('span', l.trace_id ? h('a.mono', { href: href(`/trace/${l.trace_id}`, { span: l.span_id || null }), title: `trace ${l.trace_id}`, onclick: e => e.stopPropagation() }, `${l.trace_id.slice(0, 8)}…`) : h('span.faint', '—')));
    const toggle = () => {
      const open = row.classList.toggle('open');
      row.setAttribute('aria-expanded', String(open));
      if (open) row.append(h('div.attrs', kvTable({ ...l.attributes, ...(l.trace_id ? { trace_id: l.trace_id } : {}), ...(l.span_id ? { span_id: l.span_id } : {}), severity_number: l.severity_number })));
      else row.querySelector('.attrs')?.remove();
    };
    row.addEventListener('click', e => { if (!e.target.closest('a')) toggle(); });
    row.addEventListener('keydown', e => { if (e.key === 'Enter') toggle(); });
    return row;
  }

  function drawHisto() {
    histo.replaceChildren();
    const N = 60, W = Math.max(600, histo.clientWidth - 32), H = 120, P = { l: 36, b: 18, t: 6 };
    const t0 = range.startMs, t1 = Math.max(range.endMs, t0 + 1), step = (t1 - t0) / N;
    const buckets = Array.from({ length: N }, () => new Map());
    for (const l of logs) {
      const i = Math.min(N - 1, Math.max(0, Math.floor((l.timestamp_unix_nano / 1e6 - t0) / step)));
      const k = band(l.severity_number)[0];
      buckets[i].set(k, (buckets[i].get(k) || 0) + 1);
    }
    const max = Math.max(1, ...buckets.map(m => [...m.values()].reduce((a, b) => a + b, 0)));
    const bw = (W - P.l) / N;
    const svg = s('svg', { class: 'histo', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Log volume by severity' });
    svg.append(s('text', { x: P.l - 4, y: P.t + 8, 'text-anchor': 'end', 'font-size': 10, fill: 'var(--faint)' }, String(max)),
      s('text', { x: P.l, y: H - 4, 'font-size': 10, fill: 'var(--faint)' }, fmtTime(t0, false)),
      s('text', { x: W, y: H - 4, 'text-anchor': 'end', 'font-size': 10, fill: 'var(--faint)' }, fmtTime(t1, false)));
    buckets.forEach((m, i) => {
      let y = H - P.b;
      for (const [k, , color] of [...BANDS].reverse()) {
        const n = m.get(k); if (!n) continue;
        const bh = n / max * (H - P.b - P.t);
        y -= bh;
        svg.append(s('rect', { x: P.l + i * bw + 1, y, width: Math.max(1, bw - 2), height: bh, fill: color,
          onclick: () => { setParams({ from: new Date(t0 + i * step).toISOString(), to: new Date(t0 + (i + 1) * step).toISOString() }); window.dispatchEvent(new Event('sk:navigate')); } },
        s('title', {}, `${n} ${k} · ${fmtTime(t0 + i * step, false)}`)));
      }
    });
    const legend = h('div.legend', { style: { marginTop: '4px' } }, BANDS.filter(([k]) => logs.some(l => band(l.severity_number)[0] === k)).map(([k, , c]) => h('span', h('i.sw', { style: { background: c } }), k)));
    histo.append(svg, legend);
  }

  // Live tail: fetch records newer than the newest shown, every 2 s.
  function live() {
    clearTimeout(timer);
    if (!liveCb.checked || stopped) return;
    timer = setTimeout(async () => {
      const newest = logs.length ? logs[0].timestamp_unix_nano : range.endMs * 1e6;
      // Timestamps arrive as JSON numbers (≈256 ns precision): re-ask from 1 µs
      // before the newest and drop what is already shown.
      const start = `${Math.floor(newest / 1000) - 1}000`;
      try {
        const r = await api('/api/v1/logs', { ...filters(), start, limit: LIMIT }, { signal: ctl.signal });
        const seen = new Set(logs.slice(0, 200).map(key));
        const fresh = (r.logs || []).filter(l => !seen.has(key(l)));
        if (fresh.length) {
          logs = fresh.concat(logs).slice(0, 5000);
          const head = rows.querySelector('.lr');
          if (!head || rows.querySelector('.empty')) draw();
          else { for (const l of fresh.reverse()) head.after(logRow(l)); drawHisto(); status.textContent = `${logs.length} log records · live`; }
        }
        errs.replaceChildren();
      } catch (e) {
        if (e.name === 'AbortError') return;
        errs.replaceChildren(errorBox(e, 'Live tail'));
      }
      live();
    }, 2000);
  }
  liveCb.addEventListener('change', () => { setParams({ live: liveCb.checked ? '1' : null }, { replace: true }); live(); status.prepend(); });

  search();
  return () => { stopped = true; clearTimeout(timer); ctl.abort(); };
}

const key = l => `${l.timestamp_unix_nano}|${l.span_id}|${typeof l.body === 'string' ? l.body : JSON.stringify(l.body)}`;
