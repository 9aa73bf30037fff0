// URL state: every page keeps its query, time range and selection in the
// address, so a copied link reopens the same view. The global time range is
// `from`/`to`: relative (`now-1h`, `now`) or absolute (RFC 3339 / Unix ms).

export const PRESETS = [
  ['now-5m', 'Last 5 minutes'], ['now-15m', 'Last 15 minutes'], ['now-1h', 'Last 1 hour'],
  ['now-6h', 'Last 6 hours'], ['now-24h', 'Last 24 hours'], ['now-7d', 'Last 7 days'], ['now-30d', 'Last 30 days'],
];
const UNIT = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 };

export function params() { return new URLSearchParams(location.search); }
export function param(name, dflt = '') { return params().get(name) ?? dflt; }

/** Change the query string of the current page (push or replace). */
export function setParams(changes, { replace = false } = {}) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v == null || v === '' || v === false) p.delete(k); else p.set(k, v);
  }
  const url = `${location.pathname}${p.toString() ? '?' + p : ''}`;
  if (url === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
}

/** Go to another page, keeping the global time range. */
export function navigate(path, extra = {}, { keepTime = true } = {}) {
  const p = new URLSearchParams();
  if (keepTime) for (const k of ['from', 'to']) { const v = param(k); if (v) p.set(k, v); }
  for (const [k, v] of Object.entries(extra)) if (v != null && v !== '') p.set(k, v);
  history.pushState(null, '', `${path}${p.toString() ? '?' + p : ''}`);
  window.dispatchEvent(new Event('sk:navigate'));
}

/** A link that navigates inside the app and keeps the time range. */
export function href(path, extra = {}) {
  const p = new URLSearchParams();
  for (const k of ['from', 'to']) { const v = param(k); if (v) p.set(k, v); }
  for (const [k, v] of Object.entries(extra)) if (v != null && v !== '') p.set(k, v);
  return `${path}${p.toString() ? '?' + p : ''}`;
}

/** Parse one end of a range → Unix ms, or null when malformed. */
export function parseTime(v, now = Date.now()) {
  if (!v || v === 'now') return now;
  const rel = /^now-(\d+(?:\.\d+)?)([smhdw])$/.exec(v);
  if (rel) return now - Number(rel[1]) * UNIT[rel[2]];
  if (/^\d{12,14}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/** The global range: {from, to, startMs, endMs, label, relative}. */
export function timeRange() {
  const from = param('from', 'now-1h'), to = param('to', 'now');
  const now = Date.now();
  let startMs = parseTime(from, now), endMs = parseTime(to, now);
  if (startMs == null) startMs = now - 3600e3;
  if (endMs == null) endMs = now;
  const preset = PRESETS.find(([v]) => v === from);
  const label = to === 'now' && preset ? preset[1] : to === 'now' && /^now-/.test(from) ? `Last ${from.slice(4)}` : `${fmtShort(startMs)} → ${fmtShort(endMs)}`;
  return { from, to, startMs, endMs, label, relative: to === 'now' };
}

function fmtShort(ms) {
  const d = new Date(ms), p = n => String(n).padStart(2, '0');
  return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Unix ms → the ns string the native API takes. */
export function msToNs(ms) { return `${Math.round(ms)}000000`; }
/** Unix ms → the µs integer the Jaeger API takes. */
export function msToUs(ms) { return `${Math.round(ms)}000`; }
