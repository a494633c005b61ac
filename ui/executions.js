// Executions: filtered by status, workflow, time range and parent, newest first, a page at a
// time (keyset cursors), the first page refreshed live.
import { h, replace, get, q, badge, fmtTime, fmtDuration, elapsed, firstLine, link, enc } from './lib.js';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'];

// datetime-local (UTC) <-> ISO
const toIso = (v) => (v ? (v.length === 16 ? v + ':00' : v) + 'Z' : '');
const fromIso = (v) => (v ? v.replace(/(\.\d+)?Z$/, '').slice(0, 19) : '');

export function executionTable(items, opts = {}) {
  return h('table.executions', null,
    h('thead', null, h('tr', null,
      h('th', null, 'Execution'), opts.noWorkflow ? null : h('th', null, 'Workflow'), h('th', null, 'Status'),
      h('th', null, 'Created'), h('th.num', null, 'Duration'), h('th', null, 'Error'))),
    h('tbody', null, items.map((x) => h('tr', { 'data-id': x.id, 'data-status': x.status },
      h('td', null, link(`/executions/${x.id}`, x.id), x.parentId ? h('div.muted', null, 'child of ', link(`/executions/${x.parentId}`, x.parentId)) : null),
      opts.noWorkflow ? null : h('td', null, link(`/workflows/${enc(x.workflow)}`, x.workflow), h('span.muted', null, ` v${x.workflowVersion}`)),
      h('td', null, badge(x.status)),
      h('td.nowrap', null, fmtTime(x.createdAt)),
      h('td.num', null, fmtDuration(x.durationMs ?? (x.startedAt && !x.finishedAt ? elapsed(x.startedAt) : null))),
      h('td', null, firstLine(x.error))))));
}

export async function executionsPage(ctx) {
  const f = {
    status: ctx.query.get('status') || '',
    workflow: ctx.query.get('workflow') || '',
    since: ctx.query.get('since') || '',
    until: ctx.query.get('until') || '',
    parentId: ctx.query.get('parentId') || '',
    cursor: ctx.query.get('cursor') || '',
  };
  const status = h('select#f-status', { name: 'status' }, h('option', { value: '' }, 'any'),
    STATUSES.map((st) => h('option', { value: st }, st.replace('_', ' '))),
    h('option', { value: 'failed,timed_out' }, 'failed or timed out'));
  status.value = f.status;
  if (status.value !== f.status) status.append(h('option', { value: f.status, selected: true }, f.status));
  const workflow = h('input#f-workflow', { name: 'workflow', value: f.workflow, list: 'wf-names', size: 18 });
  const since = h('input#f-since', { type: 'datetime-local', step: 1, value: fromIso(f.since) });
  const until = h('input#f-until', { type: 'datetime-local', step: 1, value: fromIso(f.until) });
  const parent = h('input#f-parent', { name: 'parentId', value: f.parentId, size: 22, placeholder: 'ex_...' });
  const names = h('datalist#wf-names');
  const form = h('form.filters', { role: 'search' },
    h('label', { for: 'f-status' }, 'Status', status),
    h('label', { for: 'f-workflow' }, 'Workflow', workflow), names,
    h('label', { for: 'f-since' }, 'Created from (UTC)', since),
    h('label', { for: 'f-until' }, 'Created before (UTC)', until),
    h('label', { for: 'f-parent' }, 'Parent execution', parent),
    h('button', { type: 'submit' }, 'Filter'));
  const box = h('div', { 'aria-live': 'polite' }, h('p.muted', null, 'Loading\u2026'));
  const pager = h('div.pager');
  ctx.main.append(h('h1', null, 'Executions'), form, box, pager);
  get('/v1/workflows', { signal: ctx.signal }).then((w) =>
    replace(names, (w.items || []).map((x) => h('option', { value: x.name })))).catch(() => {});

  // Cursors of the pages before this one, for "Newer" (keyset pagination goes forward).
  const back = (ctx.query.get('back') || '').split(',').filter(Boolean);
  const apply = (cursor, backList) => {
    f.status = status.value;
    f.workflow = workflow.value.trim();
    f.since = toIso(since.value);
    f.until = toIso(until.value);
    f.parentId = parent.value.trim();
    f.cursor = cursor || '';
    const qs = { ...f, back: (backList || []).join(',') };
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(qs)) if (v) u.set(k, v);
    history.pushState(null, '', '/executions' + (u.toString() ? '?' + u : ''));
    window.dispatchEvent(new PopStateEvent('popstate'));
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    apply('', []);
  });

  const path = '/v1/executions' + q({ status: f.status, workflow: f.workflow, since: f.since, until: f.until,
    parentId: f.parentId, cursor: f.cursor, limit: 25 });
  ctx.poll(async () => {
    let page;
    try {
      page = await get(path, { cache: true, signal: ctx.signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      replace(box, h('p.error', { role: 'alert' }, e.message));
      return;
    }
    const items = page.items || [];
    replace(box, items.length ? executionTable(items) : h('p.muted', null, 'No execution matches.'));
    replace(pager,
      f.cursor ? h('button.secondary', { type: 'button', onclick: () => apply(back[back.length - 1] || '', back.slice(0, -1)) }, '\u2190 Newer') : null,
      f.cursor ? h('span.muted', null, `page ${back.length + 2}`) : h('span.muted', null, 'newest first, updated live'),
      page.nextCursor ? h('button.secondary#older', { type: 'button', onclick: () => apply(page.nextCursor, [...back, f.cursor]) }, 'Older \u2192') : null);
  }, f.cursor ? 10000 : 2000);
}
