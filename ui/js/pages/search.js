// Search page: time range (global), service/operation pickers, the query box
// with autocomplete and parse errors at their position, min/max duration;
// results as a duration-over-time scatter plot and a newest-first list with
// "load more" (cursor). URL: ?q=&service=&operation=&min=&max=&limit=&from=&to=
import { h, s, fmtDur, fmtTime, fmtAgo, chip, empty, errorBox, sdkHint, svcColor } from '../dom.js';
import { api } from '../api.js';
import { param, setParams, timeRange, navigate, href } from '../state.js';
import { searchTraces, nativeTraces } from '../traces.js';

const FIELDS = ['service', 'operation', 'kind', 'status', 'duration', 'trace_id'];

export async function render(root) {
  const native = await nativeTraces();
  const ctl = new AbortController();
  const f = {
    q: param('q'), service: param('service'), operation: param('operation'),
    minDuration: param('min'), maxDuration: param('max'), limit: Number(param('limit', '20')) || 20,
  };
  const svcSel = h('select', { 'aria-label': 'Service' }, h('option', { value: '' }, 'All services'));
  const opSel = h('select', { 'aria-label': 'Operation' }, h('option', { value: '' }, 'All operations'));
  if (f.service) svcSel.append(h('option', { value: f.service, selected: true }, f.service));
  if (f.operation) opSel.append(h('option', { value: f.operation, selected: true }, f.operation));
  const qIn = h('input', { type: 'text', name: 'q', value: f.q, autocomplete: 'off', spellcheck: false, 'aria-label': 'Query',
    placeholder: native ? 'http.status_code>=500 OR error=true' : 'tags, e.g. http.status_code=500 error=true' });
  const minIn = h('input', { type: 'text', value: f.minDuration, placeholder: 'e.g. 250ms', size: 8, 'aria-label': 'Min duration' });
  const maxIn = h('input', { type: 'text', value: f.maxDuration, placeholder: 'e.g. 2s', size: 8, 'aria-label': 'Max duration' });
  const limitSel = h('select', { 'aria-label': 'Results per page' }, [20, 50, 100, 200].map(n => h('option', { value: n, selected: n === f.limit }, n)));
  const parseErr = h('div.parse-error', { hidden: true });
  const ac = new Autocomplete(qIn, svcSel);
  const qbox = h('div.qbox', h('label.field', 'Query', qIn), ac.el, parseErr,
    h('div.hint', native ? 'Fields: service, operation, kind, status, duration, trace_id, any attribute · AND OR NOT ( ) · = != > >= < <= =~ · * wildcards'
      : 'This collector serves the Jaeger API only: tags as key=value pairs, all must match one span.'));
  const form = h('form.card.toolbar', { onsubmit: e => { e.preventDefault(); submit(); } },
    qbox,
    h('label.field', 'Service', svcSel), h('label.field', 'Operation', opSel),
    h('label.field', 'Min duration', minIn), h('label.field', 'Max duration', maxIn), h('label.field', 'Limit', limitSel),
    h('button.primary', { type: 'submit' }, 'Search'));
  const status = h('div.muted');
  const plot = h('div.card.pad', { hidden: true });
  const list = h('div.card.results', { hidden: true });
  const more = h('div', { style: { textAlign: 'center', padding: '12px' } });
  const cmpBar = h('div.row', { style: { marginLeft: 'auto' } });
  root.append(h('div.search-layout', form, h('div.row', status, cmpBar), plot, list, more));

  const selected = new Set();
  let shown = [];
  function updateCompare() {
    cmpBar.replaceChildren(...[selected.size ? h('span.muted', `${selected.size} selected`) : '',
      h('button', { type: 'button', disabled: selected.size !== 2, title: 'Select two traces to compare', onclick: () => {
        const [a, b] = [...selected]; navigate('/compare', { a, b });
      } }, 'Compare selected')]);
  }
  updateCompare();

  // Pickers.
  api('/api/services').then(r => {
    for (const sv of (r.data || []).sort()) if (sv !== f.service) svcSel.append(h('option', { value: sv, selected: sv === f.service }, sv));
    ac.services = r.data || [];
  }).catch(e => form.after(errorBox(e, 'Loading services')));
  async function loadOps(service) {
    opSel.replaceChildren(h('option', { value: '' }, 'All operations'));
    if (service && service === f.service && f.operation) opSel.append(h('option', { value: f.operation, selected: true }, f.operation));
    if (!service) return;
    try {
      const r = await api(`/api/services/${encodeURIComponent(service)}/operations`);
      for (const op of (r.data || []).sort()) if (!(service === f.service && op === f.operation)) opSel.append(h('option', { value: op, selected: op === f.operation }, op));
      ac.operations = r.data || [];
    } catch (e) { form.after(errorBox(e, 'Loading operations')); }
  }
  svcSel.addEventListener('change', () => loadOps(svcSel.value));
  loadOps(f.service);

  async function submit(initial) {
    if (initial) { shown = []; await run({ ...f, startMs: timeRange().startMs, endMs: timeRange().endMs }, false); return; }
    setParams({ q: qIn.value.trim(), service: svcSel.value, operation: opSel.value, min: minIn.value.trim(), max: maxIn.value.trim(), limit: limitSel.value === '20' ? null : limitSel.value });
    Object.assign(f, { q: qIn.value.trim(), service: svcSel.value, operation: opSel.value, minDuration: minIn.value.trim(), maxDuration: maxIn.value.trim(), limit: Number(limitSel.value) });
    shown = []; selected.clear(); updateCompare();
    await run({ ...f, startMs: timeRange().startMs, endMs: timeRange().endMs }, false);
  }

  async function run(filter, append) {
    parseErr.hidden = true;
    status.textContent = 'Searching…';
    more.replaceChildren();
    for (const e of root.querySelectorAll('.search-layout > .error-box')) e.remove();
    let page;
    try {
      page = await searchTraces(filter, { signal: ctl.signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      status.textContent = '';
      if (e.position != null) showParseError(e, filter);
      list.before(errorBox(e, 'Search'));
      if (!append) { list.replaceChildren(); plot.replaceChildren(); }
      return;
    }
    shown = append ? shown.concat(page.traces) : page.traces;
    for (const t of page.traces) for (const k of Object.keys(t)) ac.seen(k);
    status.textContent = `${shown.length} trace${shown.length === 1 ? '' : 's'}${page.next ? ' (more available)' : ''} · ${page.source === 'native' ? 'native search' : 'Jaeger API'}`;
    drawPlot(plot, shown);
    drawList(list, shown, selected, updateCompare, filter);
    if (page.next) more.append(h('button', { type: 'button', onclick: () => run(page.next, true) }, 'Load more'));
  }

  function showParseError(e, filter) {
    const q = filter.q || '';
    const pos = Math.max(0, Math.min(q.length, (e.position || 0) - (filter.qOffset || 0)));
    parseErr.hidden = false;
    parseErr.textContent = `${q}\n${' '.repeat(pos)}^ ${e.message}`;
    qIn.focus(); qIn.setSelectionRange(pos, pos);
  }

  submit(true);
  return () => ctl.abort();
}

function drawPlot(el, traces) {
  el.replaceChildren();
  el.hidden = !traces.length;
  if (!traces.length) return;
  const W = Math.max(600, el.clientWidth - 32), H = 180, P = { l: 56, r: 12, t: 10, b: 22 };
  const xs = traces.map(t => t.startUs), ys = traces.map(t => t.durUs);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 === x0) { x0 -= 1e6; x1 += 1e6; }
  const y1 = Math.max(...ys) * 1.1 || 1;
  const X = v => P.l + (v - x0) / (x1 - x0) * (W - P.l - P.r), Y = v => H - P.b - v / y1 * (H - P.t - P.b);
  const axis = s('g', { class: 'axis' });
  for (let i = 0; i <= 4; i++) {
    const v = y1 * i / 4, y = Y(v);
    axis.append(s('line', { x1: P.l, x2: W - P.r, y1: y, y2: y }), s('text', { x: P.l - 6, y: y + 3, 'text-anchor': 'end' }, fmtDur(v * 1000)));
  }
  for (let i = 0; i <= 4; i++) {
    const v = x0 + (x1 - x0) * i / 4;
    axis.append(s('text', { x: X(v), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, fmtTime(v / 1000, false).slice(11)));
  }
  const maxSpans = Math.max(...traces.map(t => t.spanCount || 1));
  const dots = traces.map(t => s('circle', {
    cx: X(t.startUs), cy: Y(t.durUs), r: 3 + 5 * Math.sqrt((t.spanCount || 1) / maxSpans),
    fill: t.errorCount ? 'var(--err)' : svcColor(t.rootService), onclick: () => navigate(`/trace/${t.traceId}`),
  }, s('title', {}, `${t.rootService}: ${t.rootName}\n${fmtDur(t.durUs * 1000)} · ${t.spanCount} spans`)));
  el.append(s('svg', { class: 'scatter', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Trace durations over time' }, axis, dots));
}

function drawList(el, traces, selected, onSel, filter) {
  el.replaceChildren();
  el.hidden = false;
  if (!traces.length) {
    const anyFilter = filter.q || filter.service || filter.operation || filter.minDuration || filter.maxDuration;
    el.append(anyFilter
      ? empty('No traces match', 'Nothing in this time range matches the query. Widen the time range in the top bar or loosen the filters.')
      : empty('No traces yet', 'Skein has not received any spans in this time range. Point an OpenTelemetry SDK at this collector:', sdkHint()));
    return;
  }
  const maxDur = Math.max(...traces.map(t => t.durUs)) || 1;
  for (const t of traces) {
    const cb = h('input', { type: 'checkbox', 'aria-label': 'Select for compare', checked: selected.has(t.traceId), onchange: () => {
      if (cb.checked) selected.add(t.traceId); else selected.delete(t.traceId); onSel();
    } });
    el.append(h('div.result', { dataset: { traceId: t.traceId } },
      cb,
      h('div',
        h('a.title', { href: href(`/trace/${t.traceId}`) }, h('span.svc', `${t.rootService || '?'}: `), t.rootName || '(unknown root)'),
        h('div.meta', `${t.spanCount ?? '?'} spans · `, t.errorCount ? h('span.badge.err', `${t.errorCount} error${t.errorCount > 1 ? 's' : ''}`) : 'no errors',
          ' · ', h('span.mono', t.traceId.slice(0, 16))),
        h('div', { style: { marginTop: '4px' } }, (t.services || []).map(chip))),
      h('div.when', h('div', fmtAgo(t.startUs / 1000)), h('div.faint', fmtTime(t.startUs / 1000))),
      h('div', h('div.dur', fmtDur(t.durUs * 1000)), h('div.durbar', h('i', { style: { width: `${Math.max(2, t.durUs / maxDur * 100)}%` } })))));
  }
}

/** Suggestions for the token under the caret: fields, operators, values. */
class Autocomplete {
  constructor(input, svcSel) {
    this.input = input; this.services = []; this.operations = []; this.keys = new Set(FIELDS); this.svcSel = svcSel;
    this.el = h('div.ac', { hidden: true, role: 'listbox' });
    this.items = []; this.on = -1;
    input.addEventListener('input', () => this.update());
    input.addEventListener('blur', () => setTimeout(() => this.hide(), 150));
    input.addEventListener('keydown', e => this.key(e));
  }
  seen(k) { if (!['traceId', 'startUs', 'durUs', 'spanCount', 'errorCount', 'services', 'rootService', 'rootName'].includes(k)) this.keys.add(k); }
  token() {
    const v = this.input.value, c = this.input.selectionStart ?? v.length;
    const start = v.slice(0, c).search(/[^\s()]*$/);
    return { start, end: c, text: v.slice(start, c) };
  }
  update() {
    const t = this.token();
    const m = /^([\w.\-]+)(=|!=|=~)"?([^"]*)$/.exec(t.text);
    let items = [];
    if (m && (m[1] === 'service' || m[1] === 'operation')) {
      const pool = m[1] === 'service' ? this.services : this.operations;
      items = pool.filter(x => x.toLowerCase().includes(m[3].toLowerCase())).map(x => ({ label: x, insert: `${m[1]}${m[2]}${/^[\w.\-/]+$/.test(x) ? x : JSON.stringify(x)}`, note: m[1] }));
    } else if (t.text && !/[=<>!~]/.test(t.text)) {
      const low = t.text.toLowerCase();
      items = [...this.keys].filter(k => k.toLowerCase().startsWith(low) && k !== t.text).map(k => ({ label: k, insert: k, note: FIELDS.includes(k) ? 'field' : 'attribute' }));
      for (const w of ['AND', 'OR', 'NOT']) if (w.startsWith(t.text.toUpperCase()) && t.text.length > 0) items.push({ label: w, insert: w, note: 'operator' });
    }
    this.items = items.slice(0, 12); this.on = this.items.length ? 0 : -1; this.t = t;
    this.el.replaceChildren(...this.items.map((it, i) => h('div', { role: 'option', class: i === this.on ? 'on' : '', onmousedown: e => { e.preventDefault(); this.pick(i); } }, it.label, h('span', it.note))));
    this.el.hidden = !this.items.length;
  }
  pick(i) {
    const it = this.items[i]; if (!it) return;
    const v = this.input.value;
    this.input.value = v.slice(0, this.t.start) + it.insert + v.slice(this.t.end);
    const c = this.t.start + it.insert.length;
    this.input.setSelectionRange(c, c); this.hide();
  }
  hide() { this.el.hidden = true; this.items = []; }
  key(e) {
    if (this.el.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      this.on = (this.on + (e.key === 'ArrowDown' ? 1 : -1) + this.items.length) % this.items.length;
      [...this.el.children].forEach((c, i) => c.classList.toggle('on', i === this.on));
    } else if (e.key === 'Tab' || (e.key === 'Enter' && this.on >= 0)) { e.preventDefault(); this.pick(this.on); }
    else if (e.key === 'Escape') this.hide();
  }
}
