// DOM and formatting helpers shared by every page. No framework: `h()` builds
// elements, the formatters turn API numbers into what people read.

/** Build an element: h('div.card#x', {onclick, class, dataset, style}, ...children) */
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(tag) || [];
  const el = document.createElement(m[1] || 'div');
  for (const part of (m[2] || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs); attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
/** Build an SVG element with attributes. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Duration in nanoseconds → "1.23 s", "45.6 ms", "789 µs". */
export function fmtDur(ns) {
  if (ns == null || !isFinite(ns)) return '—';
  const a = Math.abs(ns);
  if (a >= 60e9) return `${(ns / 60e9).toFixed(a >= 600e9 ? 0 : 1)} min`;
  if (a >= 1e9) return `${+(ns / 1e9).toFixed(2)} s`;
  if (a >= 1e6) return `${+(ns / 1e6).toFixed(a >= 100e6 ? 0 : 2)} ms`;
  if (a >= 1e3) return `${+(ns / 1e3).toFixed(a >= 100e3 ? 0 : 1)} µs`;
  return `${Math.round(ns)} ns`;
}

/** Unix ms → "2026-11-23 10:00:01.234" (local time). */
export function fmtTime(ms, withMs = true) {
  if (ms == null || !isFinite(ms)) return '—';
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const base = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return withMs ? `${base}.${p(d.getMilliseconds(), 3)}` : base;
}

/** Unix ms → "3 min ago" / "in 12 s". */
export function fmtAgo(ms, now = Date.now()) {
  if (ms == null || !isFinite(ms)) return '—';
  const d = (now - ms) / 1000, a = Math.abs(d);
  const t = a < 1 ? 'now' : a < 60 ? `${Math.floor(a)} s` : a < 3600 ? `${Math.floor(a / 60)} min` : a < 86400 ? `${Math.floor(a / 3600)} h` : `${Math.floor(a / 86400)} d`;
  if (t === 'now') return 'just now';
  return d >= 0 ? `${t} ago` : `in ${t}`;
}

export function fmtNum(n, digits = 1) {
  if (n == null || !isFinite(n)) return '—';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(digits)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(digits)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

export function fmtPct(ratio) {
  if (ratio == null || !isFinite(ratio)) return '—';
  const p = ratio * 100;
  return `${p < 10 && p > 0 ? p.toFixed(2) : p.toFixed(1)}%`;
}

const PALETTE = ['#6366f1', '#0ea5e9', '#10b981', '#f59e0b', '#ec4899', '#8b5cf6', '#14b8a6', '#f97316', '#84cc16', '#06b6d4', '#e11d48', '#a855f7'];
/** A stable colour per service name. */
export function svcColor(name) {
  let x = 2166136261;
  for (const c of String(name)) { x ^= c.charCodeAt(0); x = Math.imul(x, 16777619); }
  return PALETTE[(x >>> 0) % PALETTE.length];
}

export function chip(service) {
  return h('span.chip', h('i', { style: { background: svcColor(service) } }), service);
}

/** An empty state: title, explanation, optional <pre> snippet and actions. */
export function empty(title, text, snippet, ...actions) {
  return h('div.empty', h('h2', title), h('p', text), snippet ? h('pre', snippet) : null, actions.length ? h('div.row', { style: { justifyContent: 'center' } }, actions) : null);
}

/** How to point an OpenTelemetry SDK at this collector. */
export function sdkHint() {
  const host = location.hostname || 'localhost';
  return `export OTEL_EXPORTER_OTLP_ENDPOINT=http://${host}:4318\nexport OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\nexport OTEL_SERVICE_NAME=my-service\n# or gRPC: OTEL_EXPORTER_OTLP_ENDPOINT=http://${host}:4317`;
}

/** Render an API error (never swallowed): status, message, the request. */
export function errorBox(err, what) {
  return h('div.error-box', { role: 'alert' },
    h('strong', what ? `${what} failed` : 'Request failed'),
    err && err.status ? h('span.muted', ` — HTTP ${err.status}`) : null,
    h('pre', String(err && err.message || err)),
    err && err.url ? h('div.faint', { style: { fontSize: '11px', marginTop: '4px' } }, `${err.method || 'GET'} ${err.url}`) : null,
    err && (err.status === 401 || err.status === 403) ? tokenForm() : null);
}

// The read token for --auth-read collectors, kept in this browser only.
function tokenForm() {
  const input = h('input', { type: 'password', placeholder: 'bearer token', 'aria-label': 'Read token', autocomplete: 'off' });
  return h('form.row', { style: { marginTop: '8px' }, onsubmit: e => {
    e.preventDefault();
    if (input.value.trim()) localStorage.setItem('skein.token', input.value.trim()); else localStorage.removeItem('skein.token');
    location.reload();
  } }, input, h('button', { type: 'submit' }, 'Use token'));
}

export function kvTable(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('div.faint', 'none');
  entries.sort(([a], [b]) => a.localeCompare(b));
  return h('table.kv', h('tbody', entries.map(([k, v]) => h('tr', h('td', k), h('td', typeof v === 'object' ? JSON.stringify(v) : String(v))))));
}

export function badge(text, cls) {
  return h('span.badge', { class: String(cls || text || '').toLowerCase() }, text);
}

export function clear(el) { el.replaceChildren(); return el; }

/** Replace el's children, skipping null/false (like h()). */
export function put(el, ...children) { el.replaceChildren(); append(el, children); return el; }

export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
