// Services: every registered service and its instances from the registry,
// kept live by the watch API (server-sent events), with per-service RED
// numbers from span metrics. Expired instances are red with when they died.
// Also lists services seen only in span data. /services/<name> shows one.
import { h, fmtAgo, fmtTime, fmtNum, fmtPct, errorBox, empty, sdkHint, badge, svcColor, put } from '../dom.js';
import { api, has } from '../api.js';
import { href } from '../state.js';
import { RedSampler } from '../red.js';

const REG = '/api/v1/registry/services';
const WATCH = '/api/v1/registry/watch';

export async function render(root, { match }) {
  const only = match[1] ? decodeURIComponent(match[1]) : null;
  const hasRegistry = await has(REG);
  const errs = h('div'), body = h('div'), live = h('span.muted');
  put(root, h('div.page-head', h('h1', only ? h('span', h('a', { href: href('/services') }, 'Services'), ' / ', only) : 'Services'), h('span.spacer'), live),
    !hasRegistry ? h('div.info-box', 'This collector does not serve the registry API, so only services seen in span data are listed (no instances or liveness).') : null,
    errs, body);

  let registry = { revision: 0, services: [] }, spanServices = [], es = null, closed = false;
  const red = new RedSampler();
  const timers = [];

  async function loadRegistry() {
    if (!hasRegistry) return;
    try {
      registry = await api(REG);
      errs.querySelector('[data-src=registry]')?.remove();
    } catch (e) {
      errs.querySelector('[data-src=registry]')?.remove();
      const box = errorBox(e, 'Loading the registry'); box.dataset.src = 'registry'; errs.append(box);
    }
  }
  async function loadSpanServices() {
    try { spanServices = (await api('/api/services')).data || []; } catch (e) { errs.append(errorBox(e, 'Loading services from span data')); }
  }

  function watch() {
    if (!hasRegistry || closed) return;
    const from = Number(registry.revision || 0) + 1;
    es = new EventSource(`${WATCH}?from_revision=${from}`);
    es.onopen = () => { live.replaceChildren(h('span.live-dot'), 'live'); };
    es.onmessage = async () => { await loadRegistry(); draw(); };
    for (const t of ['registered', 'updated', 'deregistered', 'expired', 'revived']) es.addEventListener(t, es.onmessage);
    es.onerror = async () => {
      // Closed by the server (e.g. 410: revision compacted) or the network:
      // reload the full state, then watch again from its revision.
      live.replaceChildren(h('span.faint', 'reconnecting…'));
      if (es.readyState === EventSource.CLOSED && !closed) {
        es = null;
        await loadRegistry(); draw();
        timers.push(setTimeout(watch, 2000));
      }
    };
  }

  function draw() {
    const bySvc = new Map();
    for (const sv of registry.services || []) bySvc.set(sv.service, sv);
    for (const name of spanServices) if (!bySvc.has(name)) bySvc.set(name, { service: name, instances: null });
    let list = [...bySvc.values()].sort((a, b) => (b.expired || 0) - (a.expired || 0) || a.service.localeCompare(b.service));
    if (only) list = list.filter(sv => sv.service === only);
    body.replaceChildren();
    if (!list.length) {
      body.append(only ? empty(`No service "${only}"`, 'It is neither registered nor seen in span data.')
        : empty('No services yet', 'Services appear here when they register (skein-agent or POST /api/v1/registry/heartbeat) or send spans. Point an OpenTelemetry SDK at this collector:', sdkHint()));
      return;
    }
    if (red.last && !red.available) body.append(h('div.info-box', 'RED numbers come from the span metrics on /metrics (traces_span_metrics_*); this collector exposes none yet, so they show as —.'));
    const registered = list.filter(sv => sv.instances), spansOnly = list.filter(sv => !sv.instances);
    if (registered.length) body.append(h('div.stack', registered.map(card)));
    if (spansOnly.length) {
      if (registered.length) body.append(h('h3', { style: { marginTop: '20px' } }, 'Seen in span data only (not registered)'));
      body.append(h('div.svc-grid', spansOnly.map(card)));
    }
  }

  function card(sv) {
    const insts = sv.instances;
    const alive = insts ? insts.filter(i => i.state === 'alive').length : null;
    const expired = insts ? insts.filter(i => i.state === 'expired').length : 0;
    const r = red.red(sv.service);
    const health = insts == null ? null : expired && !alive ? 'expired' : expired ? 'warning' : 'alive';
    return h('div.card.pad.svc-card', { dataset: { service: sv.service } },
      h('h2', h('i', { style: { width: '10px', height: '10px', borderRadius: '50%', background: svcColor(sv.service), display: 'inline-block' } }),
        h('a', { href: href(`/services/${encodeURIComponent(sv.service)}`) }, sv.service), h('span.grow'),
        health ? badge(health === 'alive' ? `${alive} alive` : health === 'warning' ? `${expired} expired` : 'down', health) : badge('spans only', 'neutral')),
      h('div.red', { class: insts ? 'wide' : null },
        h('div', h('b', r && r.rate != null ? `${fmtNum(r.rate, 2)}/s` : '—'), h('span', r && r.rate == null ? 'rate (measuring…)' : 'request rate')),
        h('div', h('b', { style: r && r.errorRatio > 0.01 ? { color: 'var(--err)' } : null }, r ? fmtPct(r.errorRatio) : '—'), h('span', 'errors')),
        h('div', h('b', r && r.p99Ms != null ? `${fmtNum(r.p99Ms, 1)} ms` : '—'), h('span', 'p99 latency'))),
      insts ? instTable(insts, sv) : h('div.faint', 'Not registered: seen in span data only.'),
      h('div.row', { style: { marginTop: '8px', fontSize: '12px' } },
        h('a', { href: href('/search', { service: sv.service }) }, 'Traces'), h('a', { href: href('/logs', { service: sv.service }) }, 'Logs'),
        h('a', { href: href('/map') }, 'Map')));
  }

  function instTable(insts, sv) {
    if (!insts.length) return h('div.faint', 'No instances.');
    const full = true;
    return h('table.grid', h('thead', h('tr', h('th', 'Instance'), h('th', 'State'), h('th', 'Health'), full ? h('th', 'Address') : null,
      h('th.num', { title: 'heartbeat revision' }, 'HB rev'), full ? h('th.num', 'Rev (create/mod/ver)') : null,
      h('th', 'Last heartbeat'), h('th', 'TTL left'), h('th.num', 'Restarts'))),
    h('tbody', insts.slice().sort((a, b) => a.instance.localeCompare(b.instance)).map(i => {
      const dead = i.state === 'expired';
      const ttl = h('td', { dataset: { expires: i.expires_at_unix_ms, state: i.state } }, ttlText(i));
      return h('tr', { class: dead ? 'expired' : null, dataset: { instance: i.instance, state: i.state } },
        h('td.mono', { title: i.address || '' }, i.instance),
        h('td', badge(i.state, i.state), dead ? h('div', { style: { fontSize: '11px' } }, `died ${fmtAgo(i.expired_at_unix_ms ?? i.expires_at_unix_ms)}`) : null),
        h('td', i.health ? badge(i.health, i.health) : '—'),
        full ? h('td.mono', i.address || '—') : null,
        h('td.num', String(i.heartbeat_revision ?? '—')),
        full ? h('td.num', `${i.create_revision ?? '—'} / ${i.mod_revision ?? '—'} / ${i.version ?? '—'}`) : null,
        h('td', { title: fmtTime(i.last_heartbeat_unix_ms) }, fmtAgo(i.last_heartbeat_unix_ms)),
        ttl,
        h('td.num', String(i.restarts ?? sv.restarts?.[i.instance] ?? 0)));
    })));
  }

  function ttlText(i) {
    if (i.state !== 'alive') return i.state === 'expired' ? `expired ${fmtTime(i.expired_at_unix_ms ?? i.expires_at_unix_ms, false).slice(11)}` : '—';
    const left = (i.expires_at_unix_ms - Date.now()) / 1000;
    return left > 0 ? `${left.toFixed(left < 10 ? 1 : 0)} s` : 'overdue';
  }

  // Tick the TTL countdowns every second without a full redraw.
  timers.push(setInterval(() => {
    for (const td of body.querySelectorAll('td[data-expires]')) {
      if (td.dataset.state !== 'alive') continue;
      const left = (Number(td.dataset.expires) - Date.now()) / 1000;
      td.textContent = left > 0 ? `${left.toFixed(left < 10 ? 1 : 0)} s` : 'overdue';
    }
  }, 1000));
  // RED numbers: sample /metrics now and every 10 s.
  timers.push(setInterval(async () => { await red.sample(); draw(); }, 10000));

  await Promise.all([loadRegistry(), loadSpanServices(), red.sample()]);
  if (red.error) errs.append(errorBox(red.error, 'Reading span metrics from /metrics'));
  draw();
  watch();
  return () => { closed = true; if (es) es.close(); timers.forEach(t => { clearInterval(t); clearTimeout(t); }); };
}
