// Alerts: firing and pending alerts with their annotations (blast radius:
// callers, last errors, last trace link), the history of resolved ones, and
// silences (create from an alert, list, expire). URL: ?tab=active|history|silences
import { h, fmtAgo, fmtTime, errorBox, empty, badge } from '../dom.js';
import { api } from '../api.js';
import { param, setParams, timeRange, msToNs, href } from '../state.js';

export async function render(root) {
  let tab = param('tab', 'active');
  const tabs = h('div.tabs', { role: 'tablist' });
  const errs = h('div'), body = h('div');
  root.append(h('div.page-head', h('h1', 'Alerts'), h('span.spacer'), h('span.muted', 'refreshes every 10 s')), tabs, errs, body);
  const timers = [];

  function drawTabs() {
    tabs.replaceChildren(...[['active', 'Firing & pending'], ['history', 'History'], ['silences', 'Silences']].map(([k, l]) =>
      h('a', { href: '#', role: 'tab', class: k === tab ? 'active' : null, 'aria-selected': String(k === tab), onclick: e => { e.preventDefault(); tab = k; setParams({ tab: k === 'active' ? null : k }); load(); } }, l)));
  }

  async function load() {
    drawTabs();
    errs.replaceChildren();
    try {
      if (tab === 'active') drawActive((await api('/api/v1/alerts')).alerts || []);
      else if (tab === 'history') {
        const tr = timeRange();
        drawHistory((await api('/api/v1/alerts/history', { start: msToNs(tr.startMs), end: msToNs(tr.endMs) })).alerts || []);
      } else drawSilences(await loadSilences());
    } catch (e) { body.replaceChildren(); errs.append(errorBox(e, `Loading ${tab === 'silences' ? 'silences' : 'alerts'}`)); }
  }

  async function loadSilences() {
    const r = await api('/api/v1/silences');
    return Array.isArray(r) ? r : r.silences || [];
  }

  function labelsChips(labels) {
    return Object.entries(labels || {}).filter(([k]) => k !== 'alertname').map(([k, v]) => h('span.chip.lbl', h('b', k), `=${v}`));
  }

  function annotations(a) {
    const an = a.annotations || {};
    const order = ['summary', 'description', 'callers', 'last_errors', 'last_heartbeat', 'last_trace'];
    const keys = [...order.filter(k => an[k] != null), ...Object.keys(an).filter(k => !order.includes(k))];
    return h('div.annots', keys.map(k => {
      const v = an[k];
      if (k === 'last_trace') {
        const m = /([0-9a-f]{32})/.exec(String(v));
        return h('div', h('b', 'last trace: '), m ? h('a.mono', { href: href(`/trace/${m[1]}`) }, m[1]) : String(v));
      }
      if (k === 'summary') return h('div', String(v));
      return h('div', h('b', `${k.replace(/_/g, ' ')}: `), typeof v === 'object' ? JSON.stringify(v) : String(v));
    }));
  }

  function drawActive(alerts) {
    body.replaceChildren();
    if (!alerts.length) {
      body.append(h('div.card', empty('Nothing is firing', 'No alert is pending or firing. Alerts come from the built-in liveness rules (a registered instance that stops renewing) and from your rules.', null,
        h('a.btn', { href: href('/rules') }, 'Manage rules'))));
      return;
    }
    alerts.sort((a, b) => (a.state === 'firing' ? 0 : 1) - (b.state === 'firing' ? 0 : 1) || String(a.name).localeCompare(String(b.name)));
    body.append(h('div.card', h('table.grid', h('thead', h('tr', h('th', 'State'), h('th', 'Alert'), h('th', 'Details'), h('th.num', 'Value'), h('th', 'Since'), h('th', ''))),
      h('tbody', alerts.map(a => h('tr', { dataset: { fingerprint: a.fingerprint || '' } },
        h('td', badge(a.state, a.state)),
        h('td', h('b', a.name || a.labels?.alertname), h('div', labelsChips(a.labels))),
        h('td', annotations(a)),
        h('td.num', a.value == null ? '—' : String(typeof a.value === 'number' ? +a.value.toFixed(4) : a.value)),
        h('td', { title: fmtTime(Date.parse(a.fired_at || a.active_at)) }, fmtAgo(Date.parse(a.fired_at || a.active_at))),
        h('td', h('button', { type: 'button', onclick: () => silenceForm(a.labels || {}) }, 'Silence'))))))));
  }

  function drawHistory(alerts) {
    body.replaceChildren();
    if (!alerts.length) { body.append(h('div.card', empty('No alert history in this time range', 'Resolved and firing alerts of the selected time range appear here. Widen the range in the top bar.'))); return; }
    body.append(h('div.card', h('table.grid', h('thead', h('tr', h('th', 'State'), h('th', 'Alert'), h('th', 'Details'), h('th', 'Fired'), h('th', 'Resolved'))),
      h('tbody', alerts.map(a => h('tr',
        h('td', badge(a.state || (a.resolved_at ? 'resolved' : 'firing'), a.state || (a.resolved_at ? 'resolved' : 'firing'))),
        h('td', h('b', a.name || a.labels?.alertname), h('div', labelsChips(a.labels))),
        h('td', annotations(a)),
        h('td', fmtTime(Date.parse(a.fired_at || a.active_at), false)),
        h('td', a.resolved_at ? fmtTime(Date.parse(a.resolved_at), false) : '—')))))));
  }

  function drawSilences(list) {
    body.replaceChildren(h('div.page-head', h('span.spacer'), h('button.primary', { type: 'button', onclick: () => silenceForm({}) }, 'New silence')));
    if (!list.length) { body.append(h('div.card', empty('No silences', 'Silence an alert from the "Firing & pending" tab, or create one with matchers here.'))); return; }
    const stateOf = sl => sl.status?.state || sl.state || (Date.parse(sl.endsAt) < Date.now() ? 'expired' : 'active');
    body.append(h('div.card', h('table.grid', h('thead', h('tr', h('th', 'State'), h('th', 'Matchers'), h('th', 'Starts'), h('th', 'Ends'), h('th', 'Created by'), h('th', 'Comment'), h('th', ''))),
      h('tbody', list.map(sl => {
        const st = stateOf(sl);
        return h('tr', h('td', badge(st, st === 'active' ? 'info' : st === 'expired' ? 'neutral' : 'pending')),
          h('td', (sl.matchers || []).map(m => h('span.chip', `${m.name}${m.isEqual === false ? '!' : ''}${m.isRegex ? '=~' : '='}${m.value}`))),
          h('td', fmtTime(Date.parse(sl.startsAt), false)), h('td', fmtTime(Date.parse(sl.endsAt), false)),
          h('td', sl.createdBy || '—'), h('td', sl.comment || ''),
          h('td', st !== 'expired' ? h('button.danger', { type: 'button', onclick: async () => {
            try { await api(`/api/v1/silences/${encodeURIComponent(sl.id)}`, null, { method: 'DELETE' }); load(); } catch (e) { errs.append(errorBox(e, 'Expiring the silence')); }
          } }, 'Expire') : null));
      })))));
  }

  function silenceForm(labels) {
    tab = 'silences'; setParams({ tab: 'silences' }); drawTabs();
    const rows = h('div.stack');
    const addRow = (name = '', value = '') => rows.append(h('div.row.matcher', h('input', { type: 'text', value: name, placeholder: 'label', 'aria-label': 'Label name' }), h('span', '='),
      h('input', { type: 'text', value, placeholder: 'value', 'aria-label': 'Label value' }), h('button.link', { type: 'button', onclick: e => e.target.closest('.matcher').remove() }, 'remove')));
    const entries = Object.entries(labels);
    if (entries.length) entries.forEach(([k, v]) => addRow(k, v)); else addRow();
    const dur = h('select', { 'aria-label': 'Duration' }, [['1h', 3600e3], ['2h', 7200e3], ['4h', 14400e3], ['1d', 86400e3], ['7d', 604800e3]].map(([l, ms]) => h('option', { value: ms }, l)));
    const by = h('input', { type: 'text', value: localStorage.getItem('skein.user') || '', placeholder: 'your name', 'aria-label': 'Created by' });
    const comment = h('input', { type: 'text', placeholder: 'why (ticket, maintenance…)', 'aria-label': 'Comment', style: { width: '100%' } });
    const ferr = h('div');
    const form = h('form.card.pad.stack', { onsubmit: async e => {
      e.preventDefault(); ferr.replaceChildren();
      const matchers = [...rows.querySelectorAll('.matcher')].map(r => { const [n, v] = r.querySelectorAll('input'); return { name: n.value.trim(), value: v.value, isRegex: false, isEqual: true }; }).filter(m => m.name);
      if (!matchers.length) { ferr.append(h('div.field-error', 'Add at least one matcher.')); return; }
      if (!by.value.trim()) { ferr.append(h('div.field-error', 'Say who creates the silence.')); return; }
      localStorage.setItem('skein.user', by.value.trim());
      const now = Date.now();
      try {
        await api('/api/v1/silences', null, { method: 'POST', body: { matchers, startsAt: new Date(now).toISOString(), endsAt: new Date(now + Number(dur.value)).toISOString(), createdBy: by.value.trim(), comment: comment.value } });
        load();
      } catch (err) { ferr.append(errorBox(err, 'Creating the silence')); }
    } },
    h('h2', 'New silence'), rows, h('button.link', { type: 'button', onclick: () => addRow() }, '+ matcher'),
    h('div.form-grid', h('label.field', 'Duration', dur), h('label.field', 'Created by', by)), h('label.field', 'Comment', comment), ferr,
    h('div.row', h('button.primary', { type: 'submit' }, 'Create silence'), h('button', { type: 'button', onclick: () => load() }, 'Cancel')));
    body.replaceChildren(form);
  }

  await load();
  timers.push(setInterval(() => { if (tab !== 'silences' && !body.querySelector('form')) load(); }, 10000));
  return () => timers.forEach(clearInterval);
}
