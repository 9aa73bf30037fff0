// The virtualised waterfall: a collapsible span tree against a time axis,
// with a minimap. Only the rows in view (plus a margin) exist in the DOM, so
// 10,000-span traces scroll smoothly. Keyboard: ↑/↓ or j/k select, ←/→
// collapse/expand, Enter toggles, Home/End jump, Esc clears the selection.
import { h, fmtDur, svcColor } from './dom.js';

export const ROW_H = 28;
const OVERSCAN = 12;

export class Waterfall {
  /** model: from traces.js; onSelect(spanOrNull) */
  constructor(model, { onSelect, selected } = {}) {
    this.m = model; this.onSelect = onSelect || (() => {});
    this.collapsed = new Set();
    this.sel = selected && model.byId.get(selected) ? selected : null;
    this.span0 = model.startUs; this.total = Math.max(1, model.durUs);
    this.el = h('div.wf', { tabindex: 0, 'aria-label': 'Trace waterfall', role: 'tree' });
    this.mini = h('div.minimap', { title: 'Minimap: click or drag to scroll' });
    this.canvas = h('canvas'); this.vp = h('div.vp');
    this.mini.append(this.canvas, this.vp);
    this.ticks = h('div.ticks');
    const axis = h('div.wf-axis', h('div.namecol', 'Service · operation'), this.ticks);
    this.scroll = h('div.wf-scroll');
    this.inner = h('div', { style: { position: 'relative' } });
    this.scroll.append(this.inner);
    this.el.append(this.mini, axis, this.scroll);
    this.scroll.addEventListener('scroll', () => this.paint());
    this.el.addEventListener('keydown', e => this.key(e));
    this.inner.addEventListener('click', e => this.click(e));
    let dragging = false;
    const seek = e => {
      const r = this.mini.getBoundingClientRect();
      const frac = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
      this.scroll.scrollTop = frac * this.inner.offsetHeight - this.scroll.clientHeight / 2;
    };
    this.mini.addEventListener('mousedown', e => { dragging = true; seek(e); });
    window.addEventListener('mousemove', this._mm = e => { if (dragging) seek(e); });
    window.addEventListener('mouseup', this._mu = () => { dragging = false; });
    this.ro = new ResizeObserver(() => { this.drawMini(); this.paint(); });
    this.ro.observe(this.scroll);
    this.relayout();
  }

  destroy() { this.ro.disconnect(); window.removeEventListener('mousemove', this._mm); window.removeEventListener('mouseup', this._mu); }

  /** Recompute visible rows after a collapse/expand. */
  relayout() {
    const rows = [];
    let skipDepth = Infinity;
    for (const s of this.m.spans) {
      if (s.depth > skipDepth) continue;
      skipDepth = this.collapsed.has(s.id) ? s.depth : Infinity;
      rows.push(s);
    }
    this.rows = rows;
    this.index = new Map(rows.map((s, i) => [s.id, i]));
    this.inner.style.height = `${rows.length * ROW_H}px`;
    this.pool = new Map();
    this.inner.replaceChildren();
    this.drawTicks(); this.drawMini(); this.paint();
  }

  drawTicks() {
    this.ticks.replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map(f => h('span', { style: f === 1 ? { right: '4px', left: 'auto', transform: 'none' } : { left: `${f * 100}%` } }, fmtDur(this.total * f * 1000))));
  }

  drawMini() {
    const c = this.canvas, w = c.clientWidth || 600, hgt = c.clientHeight || 56;
    const dpr = window.devicePixelRatio || 1;
    c.width = w * dpr; c.height = hgt * dpr;
    const g = c.getContext('2d'); g.scale(dpr, dpr);
    const n = this.rows.length, rowH = hgt / Math.max(n, 1);
    const crit = this.m.critical;
    for (let i = 0; i < n; i++) {
      const s = this.rows[i];
      g.fillStyle = s.status === 'ERROR' ? '#dc2626' : crit && crit.has(s.id) ? '#f59e0b' : svcColor(s.service);
      const x = (s.startUs - this.span0) / this.total * w;
      g.fillRect(x, i * rowH, Math.max(1, s.durUs / this.total * w), Math.max(1, rowH - (rowH > 3 ? 1 : 0)));
    }
    this.paintViewport();
  }

  paintViewport() {
    const total = this.rows.length * ROW_H || 1, hgt = this.mini.clientHeight || 56;
    const top = this.scroll.scrollTop / total * hgt, vh = Math.min(1, this.scroll.clientHeight / total) * hgt;
    this.vp.style.top = `${top}px`; this.vp.style.height = `${Math.max(3, vh)}px`;
  }

  /** Render the rows in view; reuse the ones still in view. */
  paint() {
    const top = this.scroll.scrollTop, vh = this.scroll.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(this.rows.length - 1, Math.ceil((top + vh) / ROW_H) + OVERSCAN);
    const keep = new Map();
    for (let i = first; i <= last; i++) {
      const s = this.rows[i];
      let el = this.pool.get(s.id);
      if (!el) { el = this.row(s, i); this.inner.append(el); }
      el.style.top = `${i * ROW_H}px`;
      el.classList.toggle('sel', s.id === this.sel);
      keep.set(s.id, el);
    }
    for (const [id, el] of this.pool) if (!keep.has(id)) el.remove();
    this.pool = keep;
    this.paintViewport();
  }

  row(s) {
    const crit = this.m.critical && this.m.critical.get(s.id);
    const left = (s.startUs - this.span0) / this.total * 100, width = s.durUs / this.total * 100;
    const lane = h('div.lane');
    const color = s.placeholder ? 'var(--faint)' : s.status === 'ERROR' ? 'var(--err)' : svcColor(s.service);
    lane.append(h('div.bar', { style: { left: `${left}%`, width: `${width}%`, background: color, opacity: s.placeholder ? 0.35 : 0.9 } }));
    if (crit != null && crit > 0) lane.append(h('div.crit-seg', { title: `critical path: ${fmtDur(crit * 1000)} self time`, style: { left: `${left}%`, width: `${Math.max(0.2, Math.min(width, crit / this.total * 100))}%` } }));
    const labelLeft = left + width > 80;
    lane.append(h('div.dlabel', { style: labelLeft ? { right: `${100 - left + 0.5}%` } : { left: `calc(${left + width}% + 6px)` } }, fmtDur(s.durUs * 1000)));
    const hasKids = s.children.length > 0;
    const collapsed = this.collapsed.has(s.id);
    const name = h('div.namecol', { style: { paddingLeft: `${6 + s.depth * 14}px` } },
      h('span.tog', { dataset: { toggle: s.id }, 'aria-hidden': 'true' }, hasKids ? (collapsed ? '▶' : '▼') : ''),
      h('span.svcbar', { style: { background: s.placeholder ? 'var(--faint)' : svcColor(s.service) } }),
      s.service ? h('span.svcname', s.service) : null,
      h('span.opname', { title: s.name }, s.name),
      collapsed ? h('span.faint', ` (+${countDesc(s)})`) : null,
      s.status === 'ERROR' ? h('span.icon.err', { title: s.statusMessage || 'error' }, '●') : null,
      s.warnings.length ? h('span.icon.warn', { title: s.warnings.join('\n') }, '⚠') : null);
    return h('div.wf-row', {
      role: 'treeitem', 'aria-level': s.depth + 1, 'aria-expanded': hasKids ? String(!collapsed) : null,
      class: [crit != null ? 'critical' : '', s.placeholder ? 'placeholder' : ''].join(' ').trim() || null,
      dataset: { spanId: s.id, depth: s.depth, service: s.service, name: s.name, parent: s.parentId || '', critical: crit != null ? 'true' : 'false' },
    }, name, lane);
  }

  click(e) {
    const t = e.target.closest('[data-toggle]');
    if (t && t.textContent) { this.toggle(t.dataset.toggle); return; }
    const r = e.target.closest('.wf-row');
    if (r) this.select(r.dataset.spanId);
  }

  toggle(id, force) {
    const s = this.m.byId.get(id);
    if (!s || !s.children.length) return;
    const want = force ?? !this.collapsed.has(id);
    if (want === this.collapsed.has(id)) return;
    if (want) this.collapsed.add(id); else this.collapsed.delete(id);
    const top = this.scroll.scrollTop;
    this.relayout();
    this.scroll.scrollTop = top;
  }

  setAll(collapsed) {
    this.collapsed = collapsed ? new Set(this.m.spans.filter(s => s.children.length && s.depth > 0).map(s => s.id)) : new Set();
    this.relayout();
  }

  select(id, { scroll = true, notify = true } = {}) {
    this.sel = id;
    if (id) {
      // Expand collapsed ancestors so the selection is visible.
      let p = this.m.byId.get(id), changed = false;
      while (p && p.parentId && this.m.byId.get(p.parentId)) { p = this.m.byId.get(p.parentId); if (this.collapsed.delete(p.id)) changed = true; }
      if (changed) this.relayout();
      const i = this.index.get(id);
      if (scroll && i != null) {
        const y = i * ROW_H, st = this.scroll.scrollTop, vh = this.scroll.clientHeight;
        if (y < st) this.scroll.scrollTop = y; else if (y + ROW_H > st + vh) this.scroll.scrollTop = y + ROW_H - vh;
      }
    }
    this.paint();
    if (notify) this.onSelect(id ? this.m.byId.get(id) : null);
  }

  key(e) {
    if (e.target.closest('input,textarea,select')) return;
    const i = this.sel != null ? this.index.get(this.sel) : -1;
    const go = j => { const r = this.rows[Math.max(0, Math.min(this.rows.length - 1, j))]; if (r) this.select(r.id); };
    const pageRows = Math.max(1, Math.floor(this.scroll.clientHeight / ROW_H) - 1);
    switch (e.key) {
      case 'ArrowDown': case 'j': go(i + 1); break;
      case 'ArrowUp': case 'k': go(i < 0 ? 0 : i - 1); break;
      case 'PageDown': go(i + pageRows); break;
      case 'PageUp': go(i - pageRows); break;
      case 'Home': go(0); break;
      case 'End': go(this.rows.length - 1); break;
      case 'ArrowLeft': case 'h': {
        const s = this.sel && this.m.byId.get(this.sel);
        if (!s) break;
        if (s.children.length && !this.collapsed.has(s.id)) this.toggle(s.id, true);
        else if (s.parentId && this.index.has(s.parentId)) this.select(s.parentId);
        break;
      }
      case 'ArrowRight': case 'l': if (this.sel) this.toggle(this.sel, false); break;
      case 'Enter': case ' ': if (this.sel) this.toggle(this.sel); break;
      case 'Escape': this.select(null); break;
      default: return;
    }
    e.preventDefault();
  }
}

function countDesc(s) {
  let n = 0; const st = [...s.children];
  while (st.length) { const c = st.pop(); n++; st.push(...c.children); }
  return n;
}
