// The one way the UI talks to the collector. Every failure becomes an
// ApiError carrying the status, the server's message and the request, so
// pages can show it; nothing is swallowed.

const TOKEN_KEY = 'skein.token';

export class ApiError extends Error {
  constructor(message, { status = 0, url = '', method = 'GET', body = null } = {}) {
    super(message);
    this.status = status; this.url = url; this.method = method; this.body = body;
    // Native errors may name a field (rules validation) or a position (query parse).
    this.field = body && (body.field || body.key || body.path) || null;
    this.position = body && Number.isFinite(body.position) ? body.position : null;
    this.fieldErrors = body && Array.isArray(body.errors) ? body.errors.filter(e => e && e.field) : [];
  }
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v == null || v === '') continue;
    if (Array.isArray(v)) v.forEach(x => u.append(k, x)); else u.append(k, v);
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

function messageOf(body, text, status) {
  if (body) {
    if (typeof body.error === 'string') return body.error;
    if (body.error && body.error.message) return body.error.message;
    if (Array.isArray(body.errors) && body.errors.length) return body.errors.map(e => e.msg || e.message || JSON.stringify(e)).join('; ');
    if (typeof body.message === 'string') return body.message;
  }
  return (text || '').trim().slice(0, 500) || `HTTP ${status}`;
}

/** fetch JSON: api('/api/v1/logs', {query}) or api(path, null, {method, body}). */
export async function api(path, params, opts = {}) {
  const url = path + qs(params);
  const method = opts.method || 'GET';
  const headers = { Accept: 'application/json' };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (opts.body !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(opts.body); }
  let resp;
  try {
    resp = await fetch(url, { method, headers, body, signal: opts.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`network error: ${e.message} (is the collector running?)`, { url, method });
  }
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!resp.ok) {
    let msg = messageOf(json, text, resp.status);
    if (resp.status === 401 || resp.status === 403) msg += ' — this collector needs a read token (enter it below).';
    throw new ApiError(msg, { status: resp.status, url, method, body: json });
  }
  if (json === null && text && !opts.text) throw new ApiError('the answer is not JSON', { status: resp.status, url, method });
  return opts.text ? text : json;
}

export function setToken(t) { if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY); }

// Which optional endpoints this collector serves: an unknown /api path answers
// 404 "no such endpoint", a known one anything else. One probe per page load.
const probes = new Map();
export function has(path) {
  if (!probes.has(path)) {
    probes.set(path, fetch(path, { headers: { Accept: 'application/json' } })
      .then(async r => !(r.status === 404 && /no such endpoint/.test(await r.text())))
      .catch(() => false));
  }
  return probes.get(path);
}

/** Raw text (e.g. /metrics). */
export function text(path) { return api(path, null, { text: true }); }
