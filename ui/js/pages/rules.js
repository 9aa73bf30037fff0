// Rules: the rule groups from the rules API, and an editor with a form per
// rule kind and a YAML view of the same rule. Saving PUTs the rule; the
// API's validation errors are shown next to the field they name.
// URL: ?group=&alert= (the rule being edited) or ?new=1
import { h, errorBox, empty, badge } from '../dom.js';
import { api } from '../api.js';
import { param, setParams } from '../state.js';

const KINDS = {
  instance_down: { label: 'Instance stopped renewing', fields: [['service', 'Service', 'checkout', true], ['severity', 'Severity', 'critical']] },
  too_few_instances: { label: 'Too few live instances', fields: [['service', 'Service', 'checkout', true], ['min', 'Minimum alive', '2', true, 'number']] },
  error_rate: { label: 'Span error rate', fields: [['service', 'Service', 'checkout', true], ['operation', 'Operation (optional)', 'POST /pay'], ['threshold', 'Threshold (ratio)', '0.05', true, 'number'], ['window', 'Window', '5m', true]] },
  latency: { label: 'Latency quantile', fields: [['service', 'Service', 'checkout', true], ['quantile', 'Quantile', '0.99', true, 'number'], ['threshold', 'Threshold', '500ms', true], ['window', 'Window', '5m', true]] },
  log_match: { label: 'Log query match count', fields: [['query', 'Log query', 'error AND timeout', true], ['threshold', 'Threshold (count)', '10', true, 'number'], ['window', 'Window', '5m', true]] },
};
const COMMON = [['for', 'For', '1m'], ['keep_firing_for', 'Keep firing for', '0s']];

let yamlLib = null;
const yaml = async () => (yamlLib ||= await import('../../vendor/js-yaml.mjs'));

export async function render(root) {
  const errs = h('div'), list = h('div.card.rulelist'), editor = h('div');
  root.append(h('div.page-head', h('h1', 'Rules'), h('span.spacer'),
    h('button.primary', { type: 'button', onclick: () => { setParams({ new: '1', group: null, alert: null }); edit(null); } }, 'New rule')),
  errs, h('div.rules-layout', list, editor));
  let groups = [];

  async function loadList() {
    try {
      const r = await api('/api/v1/rules');
      groups = Array.isArray(r) ? r : r.groups || [];
    } catch (e) { errs.replaceChildren(errorBox(e, 'Loading rules')); groups = []; list.replaceChildren(h('div.empty', 'The rule list could not be loaded (see the error above).')); return; }
    errs.replaceChildren();
    list.replaceChildren();
    if (!groups.length) { list.append(empty('No rule groups', 'The built-in liveness alerts run without rules. Add rules here, or load YAML files with --rules.')); return; }
    for (const g of groups) {
      list.append(h('div.group', { dataset: { group: g.name } }, h('div', h('span', g.name), h('span.faint', g.interval ? `every ${g.interval}` : '')),
        (g.rules || []).map(r => h('div.rule', { class: g.name === param('group') && r.alert === param('alert') ? 'sel' : null, dataset: { alert: r.alert },
          onclick: () => { setParams({ group: g.name, alert: r.alert, new: null }); loadList(); edit({ group: g.name, rule: r }); } },
        h('span', r.alert), badge(r.kind || 'rule', 'info')))));
    }
  }

  function edit(current) {
    editor.replaceChildren();
    const rule = current ? { ...current.rule } : { alert: '', kind: 'error_rate', for: '1m' };
    const state = { group: current ? current.group : '', rule, mode: 'form' };
    const formBox = h('div'), yamlBox = h('div', { hidden: true });
    const top = h('div');
    const modeTabs = h('div.tabs');
    const drawTabs = () => modeTabs.replaceChildren(...[['form', 'Form'], ['yaml', 'YAML']].map(([m, l]) => h('a', { href: '#', class: state.mode === m ? 'active' : null, onclick: async e => { e.preventDefault(); await switchMode(m); } }, l)));

    const inputs = new Map();
    function field(name, label, placeholder, required, type) {
      const v = state.rule[name];
      const input = name === 'kind'
        ? h('select', { name }, Object.entries(KINDS).map(([k, d]) => h('option', { value: k, selected: k === state.rule.kind }, `${k} — ${d.label}`)))
        : (name === 'labels' || name === 'annotations')
          ? h('textarea', { name, rows: 3, placeholder }, Object.entries(v || {}).map(([k, x]) => `${k}: ${x}`).join('\n'))
          : h('input', { type: 'text', name, placeholder, value: v == null ? '' : String(v), inputMode: type === 'number' ? 'decimal' : null, required: required || null });
      inputs.set(name, input);
      return h('label.field', { dataset: { field: name } }, `${label}${required ? ' *' : ''}`, input, h('span.field-error'));
    }
    function readForm() {
      const r = {};
      for (const [name, input] of inputs) {
        const v = input.value.trim();
        if (name === 'group') continue;
        if (name === 'labels' || name === 'annotations') {
          const o = {};
          for (const line of v.split('\n')) { const i = line.indexOf(':'); if (i > 0) o[line.slice(0, i).trim()] = line.slice(i + 1).trim(); }
          if (Object.keys(o).length) r[name] = o;
        } else if (v !== '') r[name] = /^-?\d+(\.\d+)?$/.test(v) && !['alert', 'service', 'operation', 'query'].includes(name) ? Number(v) : v;
      }
      return r;
    }
    function drawForm() {
      inputs.clear();
      const kind = KINDS[state.rule.kind] ? state.rule.kind : 'error_rate';
      formBox.replaceChildren(
        h('div.form-grid', field('group', 'Group', 'checkout', true), field('alert', 'Alert name', 'CheckoutErrors', true), field('kind', 'Kind', '', true)),
        h('h3', KINDS[kind].label),
        h('div.form-grid', KINDS[kind].fields.map(f => field(...f)), COMMON.map(f => field(...f))),
        h('div.form-grid', { style: { marginTop: '12px' } }, field('labels', 'Labels (key: value per line)', 'severity: page'), field('annotations', 'Annotations', 'summary: {{ $labels.service }} errors at {{ $value }}')));
      inputs.get('group').value = state.group;
      inputs.get('kind').addEventListener('change', () => { state.rule = { ...readForm(), kind: inputs.get('kind').value }; state.group = inputs.get('group').value.trim(); drawForm(); });
    }
    async function switchMode(m) {
      if (m === state.mode) return;
      top.replaceChildren();
      if (m === 'yaml') {
        state.rule = readForm(); state.group = inputs.get('group').value.trim();
        const y = await yaml();
        yamlArea.value = y.dump(state.rule, { lineWidth: 120 });
      } else {
        try {
          const y = await yaml();
          const parsed = y.load(yamlArea.value);
          if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the YAML must be one rule (a mapping with alert, kind, …)');
          state.rule = parsed;
        } catch (e) { top.append(errorBox(e, 'Reading the YAML')); return; }
        drawForm();
      }
      state.mode = m; formBox.hidden = m !== 'form'; yamlBox.hidden = m !== 'yaml'; drawTabs();
    }
    const yamlArea = h('textarea', { rows: 18, spellcheck: false, 'aria-label': 'Rule YAML' });
    yamlBox.append(h('div.faint', { style: { marginBottom: '6px' } }, 'One rule as YAML (the same keys as in a --rules file\'s rules: list). The group is set in the form.'), yamlArea);

    function showFieldErrors(e) {
      for (const el of editor.querySelectorAll('label.field.invalid')) { el.classList.remove('invalid'); el.querySelector('.field-error').textContent = ''; }
      const list = e.fieldErrors.length ? e.fieldErrors.map(x => [x.field, x.message || x.msg || e.message]) : e.field ? [[e.field, e.message]] : [];
      if (!list.length) { const m = /(?:field|key|parameter)\s+'?([\w.\[\]]+)'?/i.exec(e.message) || /'([\w]+)'/.exec(e.message); if (m) list.push([m[1], e.message]); }
      let placed = 0;
      for (const [f, msg] of list) {
        const name = String(f).split(/[.\[\]]/).filter(Boolean).pop();
        const label = editor.querySelector(`label.field[data-field="${CSS.escape(name)}"]`);
        if (label && state.mode === 'form') { label.classList.add('invalid'); label.querySelector('.field-error').textContent = msg; placed++; }
      }
      return placed;
    }

    async function save() {
      top.replaceChildren();
      let group, rule;
      if (state.mode === 'yaml') {
        try { rule = (await yaml()).load(yamlArea.value); } catch (e) { top.append(errorBox(e, 'Reading the YAML')); return; }
        group = state.group;
      } else { rule = readForm(); group = inputs.get('group').value.trim(); }
      if (!group || !rule || !rule.alert) { top.append(h('div.error-box', h('strong', 'Group and alert name are required.'))); return; }
      try {
        await api(`/api/v1/rules/${encodeURIComponent(group)}/${encodeURIComponent(rule.alert)}`, null, { method: 'PUT', body: rule });
        if (current && (current.group !== group || current.rule.alert !== rule.alert)) {
          await api(`/api/v1/rules/${encodeURIComponent(current.group)}/${encodeURIComponent(current.rule.alert)}`, null, { method: 'DELETE' });
        }
        setParams({ group, alert: rule.alert, new: null });
        current = { group, rule }; state.group = group; state.rule = rule;
        top.append(h('div.info-box', { role: 'status' }, `Saved ${group} / ${rule.alert}.`));
        await loadList();
      } catch (e) {
        const placed = showFieldErrors(e);
        top.append(errorBox(e, placed ? 'Saving the rule (see the marked field)' : 'Saving the rule'));
      }
    }

    drawForm(); drawTabs();
    editor.append(h('form.card.pad', { onsubmit: e => { e.preventDefault(); save(); }, 'aria-label': 'Rule editor' },
      h('div.row', h('h2', { style: { margin: 0 } }, current ? `Edit ${current.rule.alert}` : 'New rule'), h('span.grow'),
        current ? h('button.danger', { type: 'button', onclick: async () => {
          if (!confirm(`Delete rule ${current.group} / ${current.rule.alert}?`)) return;
          try { await api(`/api/v1/rules/${encodeURIComponent(current.group)}/${encodeURIComponent(current.rule.alert)}`, null, { method: 'DELETE' }); setParams({ group: null, alert: null }); await loadList(); edit(null); }
          catch (e) { top.append(errorBox(e, 'Deleting the rule')); }
        } }, 'Delete') : null),
      modeTabs, top, formBox, yamlBox,
      h('div.row', { style: { marginTop: '14px' } }, h('button.primary', { type: 'submit' }, 'Save rule'))));
  }

  await loadList();
  const g = param('group'), a = param('alert');
  const found = g && a && groups.find(x => x.name === g)?.rules?.find(r => r.alert === a);
  edit(found ? { group: g, rule: found } : null);
}
