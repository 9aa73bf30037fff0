// RED numbers (rate, error %, p99) per service from the span metrics the
// collector exposes on /metrics (OpenTelemetry spanmetrics names, see
// contracts/grafana.md). Rates need two scrapes: the first sample is the
// baseline, later ones give per-second deltas over the time between them.
import { text } from './api.js';

const CALLS = 'traces_span_metrics_calls_total';
const BUCKET = 'traces_span_metrics_duration_milliseconds_bucket';

/** Parse the Prometheus text format lines we need. */
export function parseMetrics(body) {
  const calls = new Map(), buckets = new Map();
  for (const line of body.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || (m[1] !== CALLS && m[1] !== BUCKET)) continue;
    const labels = {};
    for (const lm of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2].replace(/\\(.)/g, '$1');
    const svc = labels.service_name; if (!svc) continue;
    const v = Number(m[3]);
    // Only server/consumer spans count as the service's own requests.
    if (labels.span_kind && !/SERVER|CONSUMER/.test(labels.span_kind)) continue;
    if (m[1] === CALLS) {
      const c = calls.get(svc) || { total: 0, errors: 0 };
      c.total += v; if (labels.status_code === 'STATUS_CODE_ERROR') c.errors += v;
      calls.set(svc, c);
    } else {
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      const b = buckets.get(svc) || new Map();
      b.set(le, (b.get(le) || 0) + v);
      buckets.set(svc, b);
    }
  }
  return { calls, buckets, at: Date.now() };
}

function quantile(q, cum) {
  const les = [...cum.keys()].sort((a, b) => a - b);
  const total = cum.get(Infinity) ?? (les.length ? cum.get(les[les.length - 1]) : 0);
  if (!total) return null;
  const rank = q * total;
  let prevLe = 0, prevC = 0;
  for (const le of les) {
    const c = cum.get(le);
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + (le - prevLe) * ((rank - prevC) / Math.max(1e-9, c - prevC));
    }
    prevLe = le; prevC = c;
  }
  return prevLe;
}

/** Samples /metrics and answers RED per service. */
export class RedSampler {
  constructor() { this.first = null; this.last = null; this.available = null; this.error = null; }
  async sample() {
    try {
      const m = parseMetrics(await text('/metrics'));
      this.available = m.calls.size > 0;
      if (!this.first) this.first = m; else this.prev = this.last;
      this.last = m; this.error = null;
    } catch (e) { this.error = e; }
  }
  /** {rate, errorRatio, p99Ms} since the first sample, or nulls. */
  red(service) {
    const a = this.first, b = this.last;
    if (!a || !b || b === a) {
      const c = b && b.calls.get(service);
      return c ? { rate: null, errorRatio: c.total ? c.errors / c.total : null, p99Ms: b.buckets.get(service) ? quantile(0.99, b.buckets.get(service)) : null, cumulative: true } : null;
    }
    const cb = b.calls.get(service); if (!cb) return null;
    const ca = a.calls.get(service) || { total: 0, errors: 0 };
    const dt = (b.at - a.at) / 1000, dn = cb.total - ca.total;
    const diff = new Map();
    const bb = b.buckets.get(service) || new Map(), ba = a.buckets.get(service) || new Map();
    for (const [le, v] of bb) diff.set(le, v - (ba.get(le) || 0));
    return { rate: dt > 0 ? dn / dt : null, errorRatio: dn > 0 ? (cb.errors - ca.errors) / dn : null, p99Ms: dn > 0 ? quantile(0.99, diff) : quantile(0.99, bb), cumulative: false };
  }
}
