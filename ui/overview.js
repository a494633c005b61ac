// Overview: health of each component (colour and words, the fix when not ok), executions
// per hour, what runs now, the latest failures and the next scheduled fires.
import { h, replace, get, q, badge, statusWord, fmtTime, fmtDuration, elapsed, firstLine, fmtInZone, link,
  enc, ApiError } from './lib.js';
import { drawHourly } from './graph.js';

const MB = 1024 * 1024;

function num(v, unit) {
  return v === null || v === undefined ? '\u2014' : `${Math.round(v * 10) / 10}${unit || ''}`;
}

// What each component says, and what to do when it is not ok.
const COMPONENTS = {
  database: {
    title: 'Database',
    what: (c) => `${c.backend}, ${c.reachable ? 'reachable' : 'unreachable'}, latency ${num(c.latencyMs, ' ms')}` +
      (c.pool ? `; connections ${c.pool.inUse}/${c.pool.size || c.pool.open} in use, ${c.pool.waiting} waiting, ${c.pool.exhausted} refused` : ''),
    fix: (c) => `${c.lastError ? 'Last error: ' + c.lastError + '. ' : ''}Check that the database runs and accepts connections ` +
      `(DATABASE_URL); orch holds its state changes and reconnects by itself.` +
      (c.pool && c.pool.exhausted ? ' Requests waited in vain for a connection: raise ORCH_DB_POOL_SIZE.' : ''),
  },
  scheduler: {
    title: 'Scheduler',
    what: (c) => `${c.running ? 'running' : 'not running'} (${c.role}), ${c.activeSchedules} active schedules, last tick ${fmtTime(c.lastTickAt)}` +
      (c.nextDue ? `, next due ${fmtTime(c.nextDue.at)}` : ''),
    fix: (c) => `${c.message ? c.message + '. ' : ''}Schedules do not fire: check the server's log for the scheduler and, on PostgreSQL, which node holds its lease (Cluster page).`,
  },
  workers: {
    title: 'Worker slots',
    what: (c) => `${c.busy} of ${c.total} busy`,
    fix: () => 'Every slot is busy, so ready tasks wait: raise --workers (ORCH_WORKERS) or start more orch worker nodes.',
  },
  queue: {
    title: 'Queue',
    what: (c) => `${c.depth} tasks queued, oldest waiting ${fmtDuration(c.oldestQueuedAgeMs)}`,
    fix: () => 'Tasks wait long for a slot: add worker slots or nodes, or lower the workflows\' concurrency. The execution page says why each task waits.',
  },
  executions: {
    title: 'Executions',
    what: (c) => `${c.running} running, longest ${fmtDuration(c.longestRunningMs)}`,
    fix: () => 'Set maxRunning on workflows to be told of executions stuck in running.',
  },
  memory: {
    title: 'Memory',
    what: (c) => `server ${num(c.rssBytes / MB, ' MB')}, system ${num(c.systemUsedPercent, '%')} used` +
      (c.cgroupUsedPercent !== null && c.cgroupUsedPercent !== undefined ? `, cgroup ${num(c.cgroupUsedPercent, '%')}` : ''),
    fix: () => 'Memory is short: fewer worker slots, smaller task outputs (ORCH_MAX_OUTPUT), or more memory for the machine or the cgroup.',
  },
  disk: {
    title: 'Disk',
    what: (c) => `${num(c.freeBytes / MB, ' MB')} free (${num(c.freePercent, '%')}) in ${c.path}`,
    fix: (c) => `${c.message ? c.message + '. ' : ''}Free space in ${c.path} (or lower retention); new executions are refused while it is full and the engine resumes by itself.`,
  },
  fds: {
    title: 'File descriptors',
    what: (c) => `${c.open ?? '\u2014'} open of ${c.limit ?? 'no limit'}`,
    fix: () => 'Near the limit, connections and executions fail: raise LimitNOFILE (systemd) or ulimit -n.',
  },
  node: {
    title: 'This node',
    what: (c) => `${c.id || 'single process'}${c.schedulerLeader ? ', scheduler leader' : ''}, ${c.executionsClaimed} executions claimed, lease ${fmtDuration(c.leaseMs)}`,
    fix: () => '',
  },
};

export function healthList(health) {
  const items = [];
  for (const [name, c] of Object.entries(health.components || {})) {
    const meta = COMPONENTS[name] || { title: name, what: (x) => JSON.stringify(x), fix: () => '' };
    const st = c.status || null;
    let what = '';
    try {
      what = meta.what(c);
    } catch {
      what = JSON.stringify(c);
    }
    const fix = st && st !== 'ok' ? (c.fix || meta.fix(c)) : '';
    items.push(h('li' + (st ? '.st-' + st : ''), { 'data-component': name },
      h('strong', null, meta.title), ' ', st ? badge(st) : null,
      h('div.what', null, what),
      fix ? h('p.fix', null, h('strong', null, 'Fix: '), fix) : null));
  }
  return h('ul.health', null, items);
}

export async function overviewPage(ctx) {
  const healthBox = h('div', null, h('p.muted', null, 'Loading\u2026'));
  const chartBox = h('div', null, h('p.muted', null, 'Loading\u2026'));
  const runningBox = h('div');
  const failBox = h('div');
  const firesBox = h('div');
  const headline = h('p');
  ctx.main.append(
    h('h1', null, 'Overview'), headline,
    h('section', { 'aria-labelledby': 'h-health' }, h('h2#h-health', null, 'Health'), healthBox),
    h('section', { 'aria-labelledby': 'h-chart' }, h('h2#h-chart', null, 'Executions, last 24 hours'), chartBox),
    h('div.grid2', null,
      h('section', { 'aria-labelledby': 'h-running' }, h('h2#h-running', null, 'Running now'), runningBox),
      h('section', { 'aria-labelledby': 'h-fails' }, h('h2#h-fails', null, 'Latest failures'), failBox)),
    h('section', { 'aria-labelledby': 'h-fires' }, h('h2#h-fires', null, 'Next scheduled fires'), firesBox));

  ctx.poll(async () => {
    let health;
    try {
      health = await get('/v1/health', { cache: true, signal: ctx.signal });
    } catch (e) {
      // 503 carries the health document too when the engine is down
      if (!(e instanceof ApiError)) throw e;
      replace(healthBox, h('p.error', null, e.message));
      return;
    }
    replace(headline, 'orch ', health.version, ' is ', badge(health.status), ', up ',
      fmtDuration(health.uptimeSeconds * 1000), '.');
    replace(healthBox, healthList(health));
  }, 2000);

  ctx.poll(async () => {
    try {
      const st = await get('/v1/stats/executions?hours=24', { signal: ctx.signal });
      replace(chartBox, drawHourly(st.hours || []));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      replace(chartBox, h('p.muted', null, `Not available: ${e.message}`));
    }
  }, 30000);

  ctx.poll(async () => {
    const run = await get('/v1/executions' + q({ status: 'running', limit: 20 }), { cache: true, signal: ctx.signal });
    const items = run.items || [];
    replace(runningBox, items.length ? h('table', null,
      h('thead', null, h('tr', null, h('th', null, 'Execution'), h('th', null, 'Workflow'), h('th.num', null, 'Elapsed'))),
      h('tbody', null, items.map((x) => h('tr', null,
        h('td', null, link(`/executions/${x.id}`, x.id)),
        h('td', null, link(`/workflows/${enc(x.workflow)}`, x.workflow)),
        h('td.num', null, fmtDuration(elapsed(x.startedAt || x.createdAt))))))) :
      h('p.muted', null, 'Nothing is running.'));
    const failed = await get('/v1/executions' + q({ status: 'failed,timed_out', limit: 8 }), { cache: true, signal: ctx.signal });
    const f = failed.items || [];
    // The execution's error is a summary ("one or more tasks failed"): say which task failed
    // and how, from the execution's detail (conditional GETs, so cheap when unchanged).
    const why = new Map(await Promise.all(f.map(async (x) => {
      try {
        const d = await get(`/v1/executions/${x.id}`, { cache: true, signal: ctx.signal });
        const t = (d.tasks || []).find((y) => y.status === 'failed' || y.status === 'timed_out');
        return [x.id, t ? `${t.name}: ${firstLine(t.error) || statusWord(t.status)}` : firstLine(x.error)];
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        return [x.id, firstLine(x.error)];
      }
    })));
    replace(failBox, f.length ? h('table', null,
      h('thead', null, h('tr', null, h('th', null, 'Execution'), h('th', null, 'Finished'), h('th', null, 'Error'))),
      h('tbody', null, f.map((x) => h('tr', null,
        h('td', null, link(`/executions/${x.id}`, x.workflow), h('br'), badge(x.status)),
        h('td.nowrap', null, fmtTime(x.finishedAt)),
        h('td.failure', null, why.get(x.id) || firstLine(x.error)))))) :
      h('p.muted', null, 'No failed executions.'));
  }, 2000);

  ctx.poll(async () => {
    const sch = await get('/v1/schedules', { signal: ctx.signal });
    const next = (sch.items || []).filter((x) => x.nextFireAt && !x.paused && x.enabled !== false)
      .sort((a, b) => a.nextFireAt.localeCompare(b.nextFireAt)).slice(0, 10);
    replace(firesBox, next.length ? h('table', null,
      h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Workflow'), h('th', null, 'Schedule'), h('th', null, 'In its zone'))),
      h('tbody', null, next.map((x) => h('tr', null,
        h('td.nowrap', null, fmtTime(x.nextFireAt)),
        h('td', null, link(`/workflows/${enc(x.workflow)}`, x.workflow)),
        h('td', null, x.name, ' ', h('span.muted', null, x.cron || `every ${x.every}`)),
        h('td.nowrap', null, fmtInZone(x.nextFireAt, x.timezone)))))) :
      h('p.muted', null, 'No schedule is due.'));
  }, 15000);
}
