// An execution: its facts and actions (Cancel, Retry), why its tasks wait, the DAG coloured by
// status (live), the Gantt of every attempt, the task table, the logs with live follow, and
// its parent and children. Polls with If-None-Match while the page is visible.
import { h, replace, clear, get, post, q, enc, badge, statusWord, fmtTime, fmtDuration, elapsed,
  link, canWrite, pre, confirmDialog, actionButton, FINAL_EXEC, firstLine } from './lib.js';
import { drawDag, drawGantt, layoutFromDefinition } from './graph.js';
import { executionTable } from './executions.js';

const MAX_LOG_CHARS = 2 * 1024 * 1024;
const MAX_ROWS = 300;
// drawn at first (the rest on "Show more"), so a big execution's page paints fast
const FIRST_ROWS = 50, FIRST_GANTT_ROWS = 60, MAX_GANTT_ROWS = 400;

function depsOf(def) {
  const m = new Map();
  for (const t of (def && def.tasks) || []) m.set(t.name, t.dependsOn || []);
  return m;
}

function kindOf(def, name) {
  const t = ((def && def.tasks) || []).find((x) => x.name === name);
  if (!t) return null;
  return t.type || 'command';
}

// Why a pending or queued task waits: the server's waitingOn, else what the page can tell.
function whyWaiting(t, detail, deps) {
  if (t.waitingOn && t.waitingOn.message) return t.waitingOn.message;
  if (t.status === 'pending') {
    const base = t.group || t.name;
    const open = (deps.get(base) || []).filter((d) => {
      const x = detail.tasks.find((y) => y.name === d);
      return x && !['succeeded', 'failed', 'upstream_failed', 'skipped', 'cancelled', 'timed_out'].includes(x.status);
    });
    if (open.length) return `waiting for ${open.length > 1 ? 'dependencies' : 'dependency'} ${open.join(', ')}`;
    return 'waiting to be scheduled';
  }
  if (t.status === 'queued') {
    if (t.availableAt && Date.parse(t.availableAt) > Date.now()) return `waiting for back-off until ${fmtTime(t.availableAt)}`;
    return 'waiting for a worker slot';
  }
  return null;
}

function attemptCell(a, kind, output) {
  const parts = [`#${a.number} `, badge(a.status)];
  if (a.exitCode !== null && a.exitCode !== undefined) parts.push(` exit code ${a.exitCode}`);
  if (a.signal) parts.push(` signal ${a.signal}`);
  if (kind === 'http' && output && typeof output.status === 'number' && a.status === 'succeeded') parts.push(` HTTP ${output.status}`);
  parts.push(h('span.muted', null, ` ${fmtDuration(a.durationMs ?? (a.status === 'running' ? elapsed(a.startedAt) : null))}`));
  const waited = a.queuedAt && a.startedAt ? Date.parse(a.startedAt) - Date.parse(a.queuedAt) : 0;
  if (waited > 0) parts.push(h('span.muted.waited', null, ` (queued ${fmtDuration(waited)} before)`));
  if (a.node) parts.push(h('span.muted', null, ` on ${a.node}`));
  if (a.error) parts.push(h('div.error', null, a.error));
  return h('div.attempt', { 'data-attempt': a.number }, parts);
}

function taskRow(t, def, detail, deps) {
  const kind = kindOf(def, t.group || t.name);
  const why = ['pending', 'queued'].includes(t.status) || t.waitingOn ? whyWaiting(t, detail, deps) : null;
  return h('tr', { 'data-task': t.name, 'data-status': t.status },
    h('th', { scope: 'row' }, t.name, kind ? h('div.muted', null, kind) : null,
      t.item !== null && t.item !== undefined ? h('div.muted', null, 'item ', h('code', null, JSON.stringify(t.item))) : null),
    h('td', null, badge(t.status), why ? h('div.muted.why-text', null, why) : null,
      t.childExecutionId ? h('div', null, 'child ', link(`/executions/${t.childExecutionId}`, t.childExecutionId)) : null),
    h('td', null, (t.attempts || []).map((a) => attemptCell(a, kind, t.output)),
      (t.attempts || []).length ? null : h('span.muted', null, 'none')),
    h('td', null, t.error ? h('span.error', null, t.error) : '\u2014'),
    h('td', null, t.output !== null && t.output !== undefined ?
      h('details', null, h('summary', null, 'output'), pre(t.output)) : '\u2014'));
}

function taskTable(detail, def, deps, limit = MAX_ROWS, onMore = null) {
  const plain = detail.tasks.filter((t) => !t.group);
  const groups = new Map();
  for (const t of detail.tasks) {
    if (!t.group) continue;
    if (!groups.has(t.group)) groups.set(t.group, []);
    groups.get(t.group).push(t);
  }
  const body = h('tbody');
  for (const t of plain.slice(0, Math.min(limit, MAX_ROWS))) {
    body.append(taskRow(t, def, detail, deps));
    const inst = groups.get(t.name);
    if (inst) {
      const counts = {};
      for (const x of inst) counts[x.status] = (counts[x.status] || 0) + 1;
      const summary = Object.entries(counts).map(([k, v]) => `${v} ${statusWord(k)}`).join(', ');
      const inner = h('tbody');
      for (const x of inst.slice(0, MAX_ROWS)) inner.append(taskRow(x, def, detail, deps));
      body.append(h('tr.instances', { 'data-group': t.name }, h('td', { colspan: 5 },
        h('details', null, h('summary', null, `${inst.length} instances of ${t.name}: ${summary}`),
          h('table', null, inner),
          inst.length > MAX_ROWS ? h('p.muted', null, `${inst.length - MAX_ROWS} more not shown.`) : null))));
    }
  }
  if (detail.instancesOmitted) {
    body.append(h('tr', null, h('td.muted', { colspan: 5 },
      `${detail.instancesOmitted} fan-out instances are summarised; click a group in the graph to list them.`)));
  }
  const table = h('table.tasks', null,
    h('thead', null, h('tr', null, h('th', null, 'Task'), h('th', null, 'Status'), h('th', null, 'Attempts'),
      h('th', null, 'Error'), h('th', null, 'Output'))), body);
  const hidden = Math.min(plain.length, MAX_ROWS) - Math.min(limit, MAX_ROWS);
  const rest = plain.length > MAX_ROWS ? h('p.muted', null, `${plain.length - MAX_ROWS} more tasks not shown.`) : null;
  if (hidden <= 0 || !onMore) return rest ? h('div', null, table, rest) : table;
  return h('div', null, table, h('p', null, h('button.secondary#tasks-more', { type: 'button', onclick: onMore },
    `Show ${hidden} more tasks`)), rest);
}

function logViewer(ctx, detail) {
  const taskSel = h('select#log-task', null, h('option', { value: '' }, 'all tasks'));
  const attSel = h('select#log-attempt', null, h('option', { value: '' }, 'all attempts'));
  const follow = h('input#log-follow', { type: 'checkbox' });
  const status = h('span.muted#log-status', { role: 'status' });
  const out = h('pre.log#log', { tabindex: 0, 'aria-label': 'log output', 'aria-live': 'off' });
  let ctl = null;
  let size = 0;
  let lastKey = '';

  const fillTasks = (d) => {
    const have = new Set([...taskSel.options].map((o) => o.value));
    for (const t of d.tasks) if (!have.has(t.name)) taskSel.append(h('option', { value: t.name }, t.name));
    fillAttempts(d);
  };
  const fillAttempts = (d) => {
    const t = d.tasks.find((x) => x.name === taskSel.value);
    const nums = t ? (t.attempts || []).map((a) => String(a.number)) : [];
    const have = [...attSel.options].map((o) => o.value).filter(Boolean);
    if (have.join(',') !== nums.join(',')) {
      const keep = attSel.value;
      replace(attSel, h('option', { value: '' }, 'all attempts'), nums.map((n) => h('option', { value: n }, `attempt ${n}`)));
      attSel.value = nums.includes(keep) ? keep : '';
    }
  };
  const addItem = (it) => {
    const prefix = taskSel.value ? (attSel.value ? '' : `[#${it.attempt}] `) : `[${it.task} #${it.attempt}] `;
    const span = h('span' + (it.stream === 'stderr' ? '.stderr' : ''), null, prefix + it.data);
    if (!/\n$/.test(it.data)) span.append('\n');
    out.append(span);
    size += it.data.length;
    while (size > MAX_LOG_CHARS && out.firstChild) {
      size -= out.firstChild.textContent.length;
      out.removeChild(out.firstChild);
    }
    if (follow.checked) out.scrollTop = out.scrollHeight;
  };
  const load = async () => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const signal = ctl.signal;
    ctx.signal.addEventListener('abort', () => ctl && ctl.abort(), { once: true });
    clear(out);
    size = 0;
    const params = { task: taskSel.value, attempt: attSel.value };
    try {
      if (!follow.checked) {
        status.textContent = 'loading\u2026';
        const r = await get(`/v1/executions/${detail.id}/logs` + q(params), { signal });
        for (const it of r.items || []) addItem(it);
        status.textContent = `${(r.items || []).length} chunks`;
        if (!(r.items || []).length) out.textContent = '(no output)';
        return;
      }
      status.textContent = 'following\u2026';
      const resp = await fetch(`/v1/executions/${detail.id}/logs` + q({ ...params, follow: 'true' }),
        { signal, credentials: 'same-origin', headers: { Accept: 'application/x-ndjson' } });
      if (!resp.ok) {
        status.textContent = `cannot follow: HTTP ${resp.status}`;
        return;
      }
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim()) {
            try {
              addItem(JSON.parse(line));
            } catch {
              // a partial or foreign line: skipped
            }
          }
        }
      }
      status.textContent = 'the execution ended; the log is complete';
    } catch (e) {
      if (e.name !== 'AbortError') status.textContent = e.message;
    }
  };
  taskSel.addEventListener('change', () => {
    fillAttempts(lastDetail);
    load();
  });
  attSel.addEventListener('change', load);
  follow.addEventListener('change', load);
  let lastDetail = detail;
  fillTasks(detail);
  const el = h('div.logs', null,
    h('div.toolbar', null, h('label', { for: 'log-task' }, 'Task'), taskSel,
      h('label', { for: 'log-attempt' }, 'Attempt'), attSel,
      h('label', { for: 'log-follow' }, follow, ' Follow live'),
      h('button.secondary#log-reload', { type: 'button', onclick: load }, 'Reload'), status),
    out);
  return {
    el,
    load,
    update(d) {
      lastDetail = d;
      fillTasks(d);
      const key = d.tasks.map((t) => `${t.name}:${t.attempt}:${t.status}`).join('|');
      // a non-followed view reloads when attempts change, so it shows what is new
      if (!follow.checked && key !== lastKey && lastKey) load();
      lastKey = key;
    },
    select(task) {
      if (![...taskSel.options].some((o) => o.value === task)) return;
      taskSel.value = task;
      fillAttempts(lastDetail);
      load();
      el.scrollIntoView({ block: 'nearest' });
    },
  };
}

export async function executionPage(ctx) {
  const id = ctx.params[0];
  const path = `/v1/executions/${enc(id)}`;
  let detail = await get(path, { cache: true, signal: ctx.signal });
  performance.mark('orch:execution-detail');
  // the definition, the layout and the children's list are asked for at once
  const graphUrl = () => `/v1/workflows/${enc(detail.workflow)}/graph` + q({ version: detail.workflowVersion, execution: detail.id });
  const kidsUrl = () => '/v1/executions' + q({ parentId: detail.id, limit: 50 });
  const early = {
    graph: get(graphUrl(), { cache: true, signal: ctx.signal }),
    kids: get(kidsUrl(), { cache: true, signal: ctx.signal }),
  };
  for (const p of Object.values(early)) p.catch(() => {}); // taken up (and reported) by their users
  let def = null;
  try {
    def = (await get(`/v1/workflows/${enc(detail.workflow)}` + q({ version: detail.workflowVersion }), { signal: ctx.signal })).definition;
  } catch (e) {
    if (e.name === 'AbortError') throw e;
  }
  const deps = depsOf(def);
  const head = h('div');
  const actions = h('div.toolbar#actions');
  const whyBox = h('div');
  const graphBox = h('div#graph');
  const groupBox = h('div#group-instances');
  const ganttBox = h('div#gantt');
  const tableBox = h('div#tasks');
  const childBox = h('div#children');
  const logs = logViewer(ctx, detail);
  const whySection = h('section#why', { 'aria-labelledby': 'h-why' }, h('h2#h-why', null, 'Why is it waiting?'), whyBox);
  ctx.main.append(
    h('h1', null, 'Execution ', h('span.mono', null, detail.id)), head, actions,
    whySection,
    h('section', { 'aria-labelledby': 'h-graph' }, h('h2#h-graph', null, 'Graph'), graphBox, groupBox),
    h('section.later', { 'aria-labelledby': 'h-gantt' }, h('h2#h-gantt', null, 'Timeline'), ganttBox),
    h('section.later', { 'aria-labelledby': 'h-tasks' }, h('h2#h-tasks', null, 'Tasks'), tableBox),
    h('section.later', { 'aria-labelledby': 'h-logs' }, h('h2#h-logs', null, 'Logs'), logs.el),
    h('section.later', { 'aria-labelledby': 'h-children' }, h('h2#h-children', null, 'Child executions'), childBox));

  // fan-out groups opened in place in the graph: name -> {items, total}; their instances are
  // also listed (with attempts and errors) under the graph
  const expanded = new Map();
  let lastLayout = null, lastStatuses = new Map();
  const instancesOf = async (name) => {
    const page = await get(`${path}/tasks` + q({ group: name, limit: 200 }), { cache: true, signal: ctx.signal });
    const node = lastLayout && lastLayout.nodes.find((n) => n.name === name);
    const items = page.items || [];
    const total = Math.max(items.length, (node && node.counts && node.counts.total) || 0);
    return { items, total, more: !!page.nextCursor };
  };
  const listGroup = (name) => {
    const inst = expanded.get(name);
    if (!inst) {
      clear(groupBox);
      return;
    }
    replace(groupBox, h('div.panel', { 'data-group': name },
      h('h3', null, `Instances of ${name}`, ' ', h('button.secondary', { type: 'button', onclick: () => showGroup(name) }, 'Collapse')),
      h('table', null, h('tbody', null, inst.items.map((t) => taskRow(t, def, detail, deps)))),
      inst.more ? h('p.muted', null, 'The first 200 are shown.') : null));
  };
  const showGroup = async (name) => {
    if (expanded.has(name)) {
      expanded.delete(name);
    } else {
      expanded.clear();
      expanded.set(name, await instancesOf(name));
    }
    drawGraph();
    listGroup(name);
  };

  const children = new Map();
  const loadChildren = async () => {
    for (const t of detail.tasks) {
      const cid = t.childExecutionId;
      if (!cid) continue;
      const have = children.get(cid);
      if (have && FINAL_EXEC.includes(have.status)) continue;
      try {
        const c = await get(`/v1/executions/${enc(cid)}`, { signal: ctx.signal });
        try {
          c.deps = depsOf((await get(`/v1/workflows/${enc(c.workflow)}` + q({ version: c.workflowVersion }), { signal: ctx.signal })).definition);
        } catch {
          c.deps = new Map();
        }
        children.set(cid, c);
      } catch (e) {
        if (e.name === 'AbortError') throw e;
      }
    }
  };

  const renderHead = () => {
    const d = detail;
    const failedTasks = d.tasks.filter((t) => t.status === 'failed' || t.status === 'timed_out');
    replace(head, h('div.grid2', null, h('dl.facts', null,
      h('dt', null, 'Status'), h('dd#exec-status', { 'data-status': d.status }, badge(d.status)),
      h('dt', null, 'Workflow'), h('dd', null, link(`/workflows/${enc(d.workflow)}`, d.workflow), ` version ${d.workflowVersion}`),
      h('dt', null, 'Created'), h('dd', null, fmtTime(d.createdAt)),
      h('dt', null, 'Started'), h('dd', null, fmtTime(d.startedAt)),
      h('dt', null, 'Finished'), h('dd', null, fmtTime(d.finishedAt)),
      h('dt', null, 'Duration'), h('dd', null, fmtDuration(d.durationMs ?? (d.startedAt ? elapsed(d.startedAt) : null)),
        d.retriedAt ? ` (retried ${fmtTime(d.retriedAt)})` : ''),
      d.error ? h('dt', null, 'Error') : null, d.error ? h('dd#exec-error.error', null, d.error) : null,
      failedTasks.length ? h('dt', null, 'Failed tasks') : null,
      failedTasks.length ? h('dd#failed-tasks', null, h('ul', null, failedTasks.slice(0, 10).map((t) =>
        h('li', null, h('strong', null, t.name), ' ', badge(t.status), t.error ? ': ' + firstLine(t.error) : '')))) : null,
      d.parentId ? h('dt', null, 'Parent') : null, d.parentId ? h('dd', null, link(`/executions/${d.parentId}`, d.parentId)) : null,
      d.scheduleId ? h('dt', null, 'Schedule') : null, d.scheduleId ? h('dd', null, d.scheduleId, ` for ${fmtTime(d.scheduledFor)}`) : null),
    h('div', null, h('h2.sub', null, 'Params'), pre(d.params || {}, 'params'),
      d.outputs ? h('h2.sub', null, 'Outputs') : null, d.outputs ? pre(d.outputs, 'outputs') : null)));
    clear(actions);
    if (!canWrite()) return;
    if (d.status === 'queued' || d.status === 'running') {
      actions.append(actionButton('Cancel', 'danger#cancel', async () => {
        if (!(await confirmDialog('Cancel this execution?', `Running tasks of ${d.id} are stopped (SIGTERM, then SIGKILL) and pending ones cancelled.`, 'Cancel execution'))) return;
        await post(`${path}/cancel`);
        await refresh(true);
      }));
    }
    if (['failed', 'cancelled', 'timed_out'].includes(d.status)) {
      actions.append(actionButton('Retry', '#retry', async () => {
        if (!(await confirmDialog('Retry this execution?', `The failed, timed-out and cancelled tasks of ${d.id} run again; succeeded ones are kept.`, 'Retry'))) return;
        await post(`${path}/retry`);
        await refresh(true);
      }));
    }
  };

  const renderWhy = () => {
    const waiting = detail.tasks.filter((t) => t.status === 'pending' || t.status === 'queued' || t.waitingOn);
    whySection.hidden = !waiting.length;
    if (!waiting.length) {
      clear(whyBox);
      return;
    }
    replace(whyBox, h('ul.why.panel', null, waiting.slice(0, 50).map((t) => h('li', { 'data-task': t.name },
      h('strong', null, t.name), ' ', badge(t.status), ': ', whyWaiting(t, detail, deps)))),
    waiting.length > 50 ? h('p.muted', null, `${waiting.length - 50} more wait.`) : null);
  };

  const renderGraph = async () => {
    let layout = null;
    try {
      const req = early.graph || get(graphUrl(), { cache: true, signal: ctx.signal });
      early.graph = null;
      layout = await req;
    } catch (e) {
      if (e.name === 'AbortError') throw e;
    }
    const statuses = new Map();
    if (!layout) {
      layout = layoutFromDefinition(def || { tasks: detail.tasks.filter((t) => !t.group).map((t) => ({ name: t.name })) });
      for (const t of detail.tasks) if (!t.group) statuses.set(t.name, t.status);
      const counts = new Map();
      for (const t of detail.tasks) {
        if (!t.group) continue;
        const c = counts.get(t.group) || { total: 0 };
        c.total++;
        c[t.status] = (c[t.status] || 0) + 1;
        counts.set(t.group, c);
      }
      for (const n of layout.nodes) if (counts.has(n.name)) n.counts = counts.get(n.name);
    }
    lastLayout = layout;
    lastStatuses = statuses;
    for (const name of [...expanded.keys()]) {
      expanded.set(name, await instancesOf(name));
      listGroup(name);
    }
    drawGraph();
    performance.mark('orch:execution-graph');
  };

  // draws the last layout; the focused node (or instance) keeps the focus across redraws.
  // The first drawing of a big graph holds only the nodes in the window's first screen; the
  // whole graph follows when the browser is idle after that first paint.
  let firstDraw = true;
  const drawGraph = () => {
    if (!lastLayout) return;
    const active = document.activeElement;
    const focused = active && graphBox.contains(active) && active.dataset ? active.dataset.task : null;
    const view = firstDraw ? { w: window.innerWidth, h: window.innerHeight } : null;
    firstDraw = false;
    const drawn = drawDag(lastLayout, {
      statuses: lastStatuses, expanded, label: `tasks of ${detail.id} by status`, view,
      onNode: (name, n) => (n && n.group ? showGroup(name) : logs.select(name)),
      onInstance: (name) => logs.select(name),
    });
    replace(graphBox, drawn);
    if (drawn.skipped) {
      const whole = () => {
        if (ctx.signal.aborted || graphBox.firstChild !== drawn) return; // left, or drawn again since
        drawGraph();
        performance.mark('orch:execution-graph-whole');
      };
      if (window.requestIdleCallback) requestIdleCallback(whole, { timeout: 1000 });
      else setTimeout(whole, 200);
    }
    if (focused) {
      const el = [...graphBox.querySelectorAll('[data-task]')].find((x) => x.dataset.task === focused);
      if (el) el.focus({ preventScroll: true });
    }
  };

  let ganttRows = FIRST_GANTT_ROWS, tableRows = FIRST_ROWS;
  const drawTimeline = () => replace(ganttBox, drawGantt(detail, deps, children, ganttRows,
    ganttRows < MAX_GANTT_ROWS ? () => {
      ganttRows = MAX_GANTT_ROWS;
      drawTimeline();
    } : null));
  const drawTable = () => replace(tableBox, taskTable(detail, def, deps, tableRows,
    tableRows < MAX_ROWS ? () => {
      tableRows = MAX_ROWS;
      drawTable();
    } : null));

  const renderAll = async () => {
    renderHead();
    renderWhy();
    // the requests of the page at once; each part is drawn as soon as its data is there
    const kids = early.kids || get(kidsUrl(), { cache: true, signal: ctx.signal });
    early.kids = null;
    const graph = renderGraph();
    await loadChildren();
    drawTimeline();
    performance.mark('orch:execution-timeline');
    drawTable();
    performance.mark('orch:execution-table');
    const k = await kids;
    replace(childBox, (k.items || []).length ? executionTable(k.items) : h('p.muted', null, 'None.'));
    await graph;
    logs.update(detail);
  };

  const refresh = async (force) => {
    const d = await get(path, { cache: true, signal: ctx.signal });
    const running = !FINAL_EXEC.includes(d.status);
    if (d === detail && !force && !running) return;
    if (d === detail && !force) {
      // unchanged (304): only the times that grow by themselves
      drawTimeline();
      return;
    }
    detail = d;
    await renderAll();
  };

  await renderAll();
  // for bench/ui-paint.py: when the first complete page was built, and painted
  performance.mark('orch:execution-rendered');
  requestAnimationFrame(() => setTimeout(() => performance.mark('orch:execution-painted'), 0));
  logs.load();
  ctx.poll(() => refresh(false), 1500, 1500); // just loaded: the first poll in 1.5 s
}
