// The orch web UI: the shell (navigation, sign-in, sign-out) and the router. Pages live in
// their own modules; each gets a context whose cleanups run when the page is left.
import { h, replace, session, api, get, poll, clearNotice, setUnauthorizedHandler, isAdmin,
  ApiError } from './lib.js';
import { overviewPage } from './overview.js';
import { workflowsPage, workflowPage } from './workflows.js';
import { executionsPage } from './executions.js';
import { executionPage } from './execution.js';
import { clusterPage, keysPage } from './admin.js';

const main = document.getElementById('main');

const ROUTES = [
  [/^\/$/, overviewPage, 'Overview'],
  [/^\/workflows\/?$/, workflowsPage, 'Workflows'],
  [/^\/workflows\/([^/]+)$/, workflowPage, 'Workflow'],
  [/^\/executions\/?$/, executionsPage, 'Executions'],
  [/^\/executions\/([^/]+)$/, executionPage, 'Execution'],
  [/^\/cluster\/?$/, clusterPage, 'Cluster'],
  [/^\/keys\/?$/, keysPage, 'API keys'],
  [/^\/login\/?$/, loginPage, 'Sign in'],
];

let current = null; // the context of the page shown

function makeContext(params, query) {
  const ctl = new AbortController();
  const ctx = {
    main, params, query, signal: ctl.signal, cleanups: [() => ctl.abort()],
    onLeave(fn) {
      this.cleanups.push(fn);
    },
    poll(fn, ms, firstDelay) {
      this.cleanups.push(poll(fn, ms, firstDelay));
    },
    setQuery(obj) {
      const u = new URLSearchParams();
      for (const [k, v] of Object.entries(obj)) if (v) u.set(k, v);
      const str = u.toString();
      history.replaceState(null, '', location.pathname + (str ? '?' + str : ''));
    },
  };
  return ctx;
}

function leave() {
  if (!current) return;
  for (const fn of current.cleanups) {
    try {
      fn();
    } catch {
      // a cleanup must not stop the others
    }
  }
  current = null;
}

export function navigate(href, replaceEntry) {
  if (replaceEntry) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  route();
}

function safeNext(next) {
  // Only a path of this site: never another origin (`//host`, `/\host`).
  return next && /^\/(?![/\\])/.test(next) ? next : '/';
}

async function route() {
  leave();
  clearNotice();
  const path = location.pathname;
  const query = new URLSearchParams(location.search);
  if (!session.csrfToken && path !== '/login') {
    navigate('/login?next=' + encodeURIComponent(path + location.search), true);
    return;
  }
  renderNav();
  let found = null;
  for (const [rx, page, title] of ROUTES) {
    const m = rx.exec(path);
    if (m) {
      found = [page, title, m.slice(1).map(decodeURIComponent)];
      break;
    }
  }
  clearMain();
  const ctx = makeContext(found ? found[2] : [], query);
  current = ctx;
  if (!found) {
    document.title = 'Not found \u2013 orch';
    main.append(h('h1', { tabindex: '-1' }, 'Not found'), h('p', null, 'There is no page at ', h('code', null, path), '.'));
    return;
  }
  document.title = `${found[1]} \u2013 orch`;
  try {
    await found[0](ctx);
  } catch (e) {
    if (current !== ctx) return;
    if (e.name === 'AbortError') return;
    main.append(h('p.error', { role: 'alert' }, e instanceof ApiError ? e.message : String(e.message || e)));
  }
  const h1 = main.querySelector('h1');
  if (h1 && current === ctx && document.activeElement === document.body) {
    h1.setAttribute('tabindex', '-1');
  }
}

function clearMain() {
  replace(main);
}

function renderNav() {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!session.csrfToken) {
    replace(nav);
    replace(who);
    return;
  }
  const items = [['/', 'Overview'], ['/workflows', 'Workflows'], ['/executions', 'Executions'],
    ['/cluster', 'Cluster']];
  if (isAdmin()) items.push(['/keys', 'API keys']);
  const path = location.pathname;
  replace(nav, h('ul', null, items.map(([href, label]) => {
    const active = href === '/' ? path === '/' : path.startsWith(href);
    return h('li', null, h('a', { href, 'aria-current': active ? 'page' : null }, label));
  })));
  const readOnly = !session.scopes.includes('write') && !session.scopes.includes('admin');
  replace(who,
    h('span.key-name', { title: 'signed in with this API key' }, session.keyName || ''),
    readOnly ? h('span.badge.readonly', null, 'read-only') : null,
    ' ',
    h('button.secondary#signout', { type: 'button', onclick: signOut }, 'Sign out'));
}

async function signOut() {
  try {
    await api('DELETE', '/v1/session', { quiet401: true });
  } catch {
    // signed out anyway: the page forgets the token
  }
  session.csrfToken = null;
  session.scopes = [];
  session.keyName = null;
  navigate('/login');
}

// ---------------------------------------------------------------- sign-in

async function loginPage(ctx) {
  const next = safeNext(ctx.query.get('next'));
  if (session.csrfToken) {
    navigate(next, true);
    return;
  }
  const err = h('p.error#login-error', { role: 'alert' });
  const input = h('input#key', { type: 'password', name: 'key', autocomplete: 'off', required: true,
    spellcheck: 'false', 'aria-describedby': 'key-help login-error' });
  const form = h('form.login', { novalidate: true },
    h('label', { for: 'key' }, 'API key'),
    input,
    h('p.help#key-help', null, 'An orch API key (sk_...). It is sent once to start a session and is not kept by the page. Make one with ',
      h('code', null, 'orch keys create --name me --scope admin'), '.'),
    h('button#signin', { type: 'submit' }, 'Sign in'),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const key = input.value.trim();
    if (!key) {
      err.textContent = 'Enter an API key.';
      input.focus();
      return;
    }
    try {
      const s = await api('POST', '/v1/session', { body: { key }, quiet401: true });
      input.value = '';
      setSession(s);
      navigate(next, true);
    } catch (e) {
      err.textContent = e.status === 401 ? `Sign-in refused: ${e.message}` : e.message;
      input.select();
    }
  });
  ctx.main.append(h('section.login-box', null, h('h1', null, 'Sign in to orch'), form));
  input.focus();
}

function setSession(s) {
  session.csrfToken = s.csrfToken;
  session.keyName = s.keyName || s.keyId || '';
  session.scopes = s.scopes || [];
}

// ---------------------------------------------------------------- start

document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/v1/') || url.pathname.startsWith('/assets/')) return;
  ev.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
});

window.addEventListener('popstate', route);

setUnauthorizedHandler(() => {
  if (!session.csrfToken) return;
  session.csrfToken = null;
  session.scopes = [];
  navigate('/login?next=' + encodeURIComponent(location.pathname + location.search), true);
});

async function boot() {
  try {
    setSession(await get('/v1/session', { quiet401: true }));
  } catch {
    session.csrfToken = null;
  }
  route();
}

boot();
