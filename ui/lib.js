// Shared helpers of the pages: building elements (text only, never HTML), the API client
// with the session's CSRF token and conditional GETs, polling while the page is visible,
// and formatting of statuses, instants and durations.

// ---------------------------------------------------------------- elements

// h('tag.class#id', {attr: value, onclick: fn}, child, [children], 'text')
// Text children become text nodes, so data is never parsed as HTML.
export function h(spec, attrs, ...children) {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement(m ? m[1] : spec);
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === '.') el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// A link handled by the router (history.pushState), still a real <a href> for the keyboard,
// middle-click and copying.
export function link(href, ...children) {
  return h('a', { href }, ...children);
}

export function jsonText(v) {
  return JSON.stringify(v, null, 2);
}

export function pre(v, cls) {
  // focusable: a long one scrolls, and the keyboard must reach it
  return h('pre' + (cls ? '.' + cls : ''), { tabindex: 0 }, typeof v === 'string' ? v : jsonText(v));
}

// ---------------------------------------------------------------- session and API

export const session = { csrfToken: null, keyName: null, scopes: [] };

export function canWrite() {
  return session.scopes.includes('write') || session.scopes.includes('admin');
}

export function isAdmin() {
  return session.scopes.includes('admin');
}

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || null;
    this.details = e.details || [];
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// Conditional GETs: the last ETag and body of each polled URL.
const etags = new Map();

// api('GET', '/v1/x') -> parsed JSON (or null for 204). Throws ApiError.
// opts: {body, cache: true (If-None-Match), signal, quiet401}
export async function api(method, path, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', signal: opts.signal };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (method !== 'GET' && method !== 'HEAD' && session.csrfToken) {
    headers['X-CSRF-Token'] = session.csrfToken;
  }
  const cached = opts.cache ? etags.get(path) : null;
  if (cached) headers['If-None-Match'] = cached.etag;
  const r = await fetch(path, init);
  if (r.status === 304 && cached) return cached.data;
  const text = await r.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (r.status === 401 && !opts.quiet401) {
    onUnauthorized();
  }
  if (!r.ok) throw new ApiError(r.status, body);
  if (opts.cache) {
    const tag = r.headers.get('ETag');
    if (tag) etags.set(path, { etag: tag, data: body });
  }
  return body;
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, body, opts = {}) => api('POST', path, { ...opts, body });

export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, v);
  }
  const str = u.toString();
  return str ? '?' + str : '';
}

export const enc = encodeURIComponent;

// ---------------------------------------------------------------- polling

// Calls fn now and then every `ms` while the document is visible, until the returned
// stop function is called (the router calls it when the page changes). A call that is
// still running is not overlapped.
export function poll(fn, ms, firstDelay = 0) {
  let timer = null;
  let stopped = false;
  let busy = false;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (document.visibilityState === 'visible' && !busy) {
      busy = true;
      try {
        await fn();
      } catch (e) {
        if (e.name !== 'AbortError') reportError(e);
      }
      busy = false;
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  const onVisible = () => {
    if (document.visibilityState === 'visible' && timer) {
      clearTimeout(timer);
      tick();
    }
  };
  document.addEventListener('visibilitychange', onVisible);
  if (firstDelay) timer = setTimeout(tick, firstDelay);
  else tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisible);
  };
}

// A status line at the top of the page for errors of background work.
export function reportError(e) {
  const bar = document.getElementById('notice');
  if (!bar) return;
  replace(bar, h('span', null, e instanceof ApiError ? e.message : String(e.message || e)));
  bar.hidden = false;
}

export function clearNotice() {
  const bar = document.getElementById('notice');
  if (bar) {
    clear(bar);
    bar.hidden = true;
  }
}

// ---------------------------------------------------------------- status

// Each status: a word, a symbol (shape as well as colour) and a CSS class whose colour comes
// from a colour-blind safe palette (app.css).
const STATUS = {
  ok: ['ok', '\u2713'],
  degraded: ['degraded', '!'],
  down: ['down', '\u2717'],
  pending: ['pending', '\u25cb'],
  queued: ['queued', '\u25cc'],
  running: ['running', '\u25b6'],
  succeeded: ['succeeded', '\u2713'],
  failed: ['failed', '\u2717'],
  upstream_failed: ['upstream failed', '\u21b3'],
  skipped: ['skipped', '\u2013'],
  cancelled: ['cancelled', '\u2298'],
  timed_out: ['timed out', '\u25f7'],
  lost: ['lost', '?'],
  alive: ['alive', '\u2713'],
  stopped: ['stopped', '\u25a0'],
  paused: ['paused', '\u2016'],
  active: ['active', '\u25b6'],
  fired: ['fired', '\u2713'],
};

export const FINAL_EXEC = ['succeeded', 'failed', 'cancelled', 'timed_out'];

export function statusWord(st) {
  return (STATUS[st] || [st || 'unknown'])[0];
}

export function statusSymbol(st) {
  return (STATUS[st] || [null, '?'])[1];
}

export function badge(st, text) {
  const [word, sym] = STATUS[st] || [st || 'unknown', '?'];
  return h('span.badge.st-' + (st || 'unknown'), null,
    h('span', { 'aria-hidden': 'true' }, sym + ' '), text || word);
}

// ---------------------------------------------------------------- time

export function parseTime(iso) {
  return iso ? Date.parse(iso) : null;
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

// "2026-12-07 01:02:03 UTC"
export function fmtTime(iso) {
  if (!iso) return '\u2014';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

// An instant as wall time in an IANA zone, with the zone's name.
export function fmtInZone(iso, zone) {
  if (!iso) return '\u2014';
  try {
    const f = new Intl.DateTimeFormat('en-CA', {
      timeZone: zone || 'UTC', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    });
    const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${zone || 'UTC'}`;
  } catch {
    return fmtTime(iso);
  }
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '\u2014';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  let sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)} s`;
  sec = Math.round(sec);
  const d = Math.floor(sec / 86400);
  const hh = Math.floor((sec % 86400) / 3600);
  const mm = Math.floor((sec % 3600) / 60);
  const ss = sec % 60;
  if (d) return `${d}d ${hh}h ${mm}m`;
  if (hh) return `${hh}h ${mm}m ${ss}s`;
  return `${mm}m ${ss}s`;
}

export function elapsed(fromIso, toIso) {
  const a = parseTime(fromIso);
  if (a === null) return null;
  const b = toIso ? parseTime(toIso) : Date.now();
  return Math.max(0, b - a);
}

export function firstLine(text) {
  if (!text) return '';
  const line = String(text).split('\n').find((l) => l.trim()) || '';
  return line.length > 200 ? line.slice(0, 200) + '\u2026' : line;
}

// ---------------------------------------------------------------- dialogs

// A modal confirmation (<dialog>): resolves true when the user confirms.
export function confirmDialog(title, message, okLabel) {
  return new Promise((resolve) => {
    const dlg = h('dialog.confirm', { 'aria-labelledby': 'dlg-title' },
      h('h2#dlg-title', null, title),
      h('p', null, message),
      h('form', { method: 'dialog' },
        h('button.secondary', { value: 'cancel', type: 'submit' }, 'Cancel'),
        ' ',
        h('button.danger', { value: 'ok', type: 'submit', 'data-confirm': 'ok' }, okLabel)));
    document.body.append(dlg);
    dlg.addEventListener('close', () => {
      resolve(dlg.returnValue === 'ok');
      dlg.remove();
    });
    dlg.showModal();
    dlg.querySelector('button.secondary').focus();
  });
}

// A button that runs an async action, disabled while it runs, errors shown next to it.
export function actionButton(label, cls, fn) {
  const out = h('span.action-error', { role: 'alert' });
  const b = h('button' + (cls ? (cls[0] === '#' ? cls : '.' + cls) : ''), { type: 'button' }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    out.textContent = '';
    try {
      await fn();
    } catch (e) {
      out.textContent = e.message || String(e);
    } finally {
      b.disabled = false;
    }
  });
  return h('span.action', null, b, out);
}
