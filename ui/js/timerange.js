// <sk-timerange>: the global time range picker in the top bar. Relative
// presets and absolute from/to; writes `from`/`to` into the URL and tells
// the app to re-render the current page.
import { h } from './dom.js';
import { PRESETS, timeRange, setParams, parseTime } from './state.js';

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

function clockIcon() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 16 16'); svg.setAttribute('width', '14'); svg.setAttribute('height', '14'); svg.setAttribute('aria-hidden', 'true');
  svg.innerHTML = '<circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="1.5"/><path d="M8 4.5V8l2.5 1.5" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round"/>';
  return svg;
}

class TimeRange extends HTMLElement {
  connectedCallback() {
    this.render();
    window.addEventListener('sk:navigate', () => this.render());
    window.addEventListener('popstate', () => this.render());
    document.addEventListener('click', e => { if (this.pop && !this.contains(e.target)) this.close(); });
  }

  render() {
    const tr = timeRange();
    this.replaceChildren(h('button', { type: 'button', 'aria-haspopup': 'dialog', title: 'Time range', onclick: () => (this.pop ? this.close() : this.open()) },
      clockIcon(), tr.label));
    this.pop = null;
  }

  close() { if (this.pop) { this.pop.remove(); this.pop = null; } }

  apply(from, to) {
    setParams({ from, to: to === 'now' ? null : to });
    this.render();
    window.dispatchEvent(new Event('sk:navigate'));
  }

  open() {
    const tr = timeRange();
    const fromIn = h('input', { type: 'datetime-local', value: toLocalInput(tr.startMs), 'aria-label': 'From' });
    const toIn = h('input', { type: 'datetime-local', value: toLocalInput(tr.endMs), 'aria-label': 'To' });
    const relIn = h('input', { type: 'text', placeholder: 'e.g. now-90m', value: tr.relative ? tr.from : '', 'aria-label': 'Relative start' });
    const err = h('div.field-error');
    this.pop = h('div.tr-pop', { role: 'dialog', 'aria-label': 'Time range' },
      h('div.presets', PRESETS.map(([v, label]) => h('button', { type: 'button', onclick: () => this.apply(v, 'now') }, label))),
      h('div.abs',
        h('label.field', 'Relative (to now)', relIn),
        h('button', { type: 'button', onclick: () => {
          if (parseTime(relIn.value) == null || !/^now-/.test(relIn.value)) { err.textContent = 'Use now-<number><s|m|h|d|w>, e.g. now-90m'; return; }
          this.apply(relIn.value, 'now');
        } }, 'Apply relative'),
        h('label.field', 'From', fromIn), h('label.field', 'To', toIn),
        err,
        h('button.primary', { type: 'button', onclick: () => {
          const a = Date.parse(fromIn.value), b = Date.parse(toIn.value);
          if (!(a < b)) { err.textContent = '"From" must be before "To".'; return; }
          this.apply(new Date(a).toISOString(), new Date(b).toISOString());
        } }, 'Apply absolute range')));
    this.append(this.pop);
  }
}
customElements.define('sk-timerange', TimeRange);
