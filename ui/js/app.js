// The app shell: routes the path to a page module, keeps the nav and the
// global search in sync, and shows failures in the banner. Pages export
// `render(root, ctx)` and may return a cleanup function (timers, streams).
import { h, clear, errorBox } from './dom.js';
import { navigate } from './state.js';
import './timerange.js';

const ROUTES = [
  [/^\/(search)?$/, 'search', () => import('./pages/search.js')],
  [/^\/trace\/([0-9a-fA-F]{1,32})$/, 'search', () => import('./pages/trace.js')],
  [/^\/compare$/, 'search', () => import('./pages/compare.js')],
  [/^\/logs$/, 'logs', () => import('./pages/logs.js')],
  [/^\/services(?:\/(.+))?$/, 'services', () => import('./pages/services.js')],
  [/^\/map$/, 'map', () => import('./pages/map.js')],
  [/^\/alerts$/, 'alerts', () => import('./pages/alerts.js')],
  [/^\/rules$/, 'rules', () => import('./pages/rules.js')],
];

const view = document.getElementById('view');
let cleanup = null;
let seq = 0;

async function route() {
  const my = ++seq;
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  document.getElementById('banner').replaceChildren();
  const path = location.pathname;
  const hit = ROUTES.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll('.mainnav a')) a.classList.toggle('active', !!hit && a.dataset.page === hit[1]);
  view.className = '';
  clear(view);
  if (!hit) {
    view.append(h('div.empty', h('h2', 'No such page'), h('p', `Nothing lives at ${path}.`), h('a', { href: '/search', 'data-nav': '' }, 'Go to trace search')));
    return;
  }
  const match = hit[0].exec(path);
  try {
    const mod = await hit[2]();
    if (my !== seq) return;
    const result = await mod.render(view, { match, path });
    if (my !== seq) { if (typeof result === 'function') result(); return; }
    cleanup = typeof result === 'function' ? result : null;
  } catch (e) {
    console.warn('page failed', e);
    if (my === seq) view.append(errorBox(e, 'Loading this page'));
  }
}

// In-app links: any same-origin <a data-nav> or <a href="/..."> without target.
document.addEventListener('click', e => {
  const a = e.target.closest && e.target.closest('a[href]');
  if (!a || a.target || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/ui/')) return;
  e.preventDefault();
  history.pushState(null, '', url.pathname + url.search);
  window.dispatchEvent(new Event('sk:navigate'));
});

// Global search: a trace id opens the trace, anything else searches.
document.getElementById('global-search').addEventListener('submit', e => {
  e.preventDefault();
  const input = e.target.elements.g;
  const v = input.value.trim();
  if (!v) return;
  if (/^[0-9a-fA-F]{16,32}$/.test(v)) navigate(`/trace/${v.toLowerCase()}`);
  else navigate('/search', { q: v });
  input.value = '';
});

window.addEventListener('popstate', route);
window.addEventListener('sk:navigate', route);
route();
