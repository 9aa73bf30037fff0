// Compare two traces side by side: the span-structure diff by
// (service, operation) path from /api/v1/traces/compare, with span counts
// and duration deltas. URL: /compare?a=<trace id>&b=<trace id>
import { h, fmtDur, errorBox, empty } from '../dom.js';
import { api } from '../api.js';
import { param, setParams, href } from '../state.js';

export async function render(root) {
  const aIn = h('input', { type: 'text', value: param('a'), size: 34, placeholder: 'trace id A', class: 'mono', 'aria-label': 'Trace A' });
  const bIn = h('input', { type: 'text', value: param('b'), size: 34, placeholder: 'trace id B', class: 'mono', 'aria-label': 'Trace B' });
  const out = h('div');
  root.append(h('div.page-head', h('h1', 'Compare traces')),
    h('form.card.toolbar', { onsubmit: e => { e.preventDefault(); setParams({ a: aIn.value.trim(), b: bIn.value.trim() }); run(); } },
      h('label.field', 'A (baseline)', aIn), h('label.field', 'B', bIn), h('button.primary', { type: 'submit' }, 'Compare')),
    out);

  async function run() {
    const a = aIn.value.trim().toLowerCase(), b = bIn.value.trim().toLowerCase();
    out.replaceChildren();
    if (!a || !b) { out.append(h('div.card', empty('Pick two traces', 'Select two traces in Search and press "Compare selected", or paste two trace ids above.'))); return; }
    let r;
    try { r = await api('/api/v1/traces/compare', { a, b }); } catch (e) { out.append(errorBox(e, 'Comparing traces')); return; }
    const rows = (r.diff || r.paths || r.nodes || []).map(d => {
      const path = Array.isArray(d.path) ? d.path.map(p => (typeof p === 'string' ? p : `${p.service}: ${p.operation ?? p.name}`)).join(' › ') : String(d.path ?? `${d.service}: ${d.operation}`);
      const ca = Number(d.count_a ?? d.a?.count ?? 0), cb = Number(d.count_b ?? d.b?.count ?? 0);
      const da = d.duration_a_ns ?? d.a?.duration_ns ?? null, db = d.duration_b_ns ?? d.b?.duration_ns ?? null;
      return { path, ca, cb, da: da == null ? null : Number(da), db: db == null ? null : Number(db), delta: d.duration_delta_ns != null ? Number(d.duration_delta_ns) : (da != null && db != null ? Number(db) - Number(da) : null) };
    });
    const head = (t, label) => t ? h('div.card.pad.grow', h('div.faint', label), h('a.mono', { href: href(`/trace/${t.trace_id}`) }, t.trace_id),
      h('div', `${t.span_count ?? '?'} spans · ${t.duration_ns != null ? fmtDur(Number(t.duration_ns)) : '?'}`)) : null;
    out.append(h('div.row', { style: { alignItems: 'stretch', margin: '12px 0' } }, head(r.a, 'A (baseline)'), head(r.b, 'B')));
    if (!rows.length) { out.append(h('div.card', empty('Same structure', 'Both traces have the same spans by service and operation.'))); return; }
    out.append(h('div.card', h('table.grid.diff', h('thead', h('tr', h('th', 'Service › operation path'), h('th.num', 'Spans A'), h('th.num', 'Spans B'), h('th.num', 'Duration A'), h('th.num', 'Duration B'), h('th.num', 'Δ'))),
      h('tbody', rows.map(d => h('tr', { class: d.cb === 0 ? 'only-a' : d.ca === 0 ? 'only-b' : null },
        h('td', d.path, d.ca === 0 ? h('span.badge.err', { style: { marginLeft: '6px' } }, 'only in B') : d.cb === 0 ? h('span.badge.ok', { style: { marginLeft: '6px' } }, 'only in A') : null),
        h('td.num', String(d.ca)), h('td.num', String(d.cb)),
        h('td.num', d.da == null ? '—' : fmtDur(d.da)), h('td.num', d.db == null ? '—' : fmtDur(d.db)),
        h('td.num', { class: d.delta > 0 ? 'plus' : d.delta < 0 ? 'minus' : null }, d.delta == null ? '—' : `${d.delta > 0 ? '+' : ''}${fmtDur(d.delta)}`)))))));
  }
  run();
}
