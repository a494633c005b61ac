// Workflows: the list (schedules with their next fire, the last 20 executions as a strip,
// success rate) and a workflow's page (DAG, Run form from its params, schedules with their
// next fires, pause/resume and backfill, versions with a diff, the definition).
import { h, replace, get, post, q, enc, badge, fmtTime, fmtInZone, link, canWrite, pre, jsonText,
  actionButton, ApiError, FINAL_EXEC, statusWord } from './lib.js';
import { drawDag, layoutFromDefinition } from './graph.js';
import { navigate } from './app.js';

function scheduleLine(x) {
  return h('div', null, x.paused ? badge('paused') : badge('active', 'active'), ' ',
    h('span', null, x.name), ' ', h('code', null, x.cron || `every ${x.every}`), ' ',
    h('span.muted', null, 'next ', x.paused ? '\u2014' : fmtInZone(x.nextFireAt, x.timezone)));
}

export function strip(items) {
  // oldest left, newest right: the habit of Airflow's grid
  const cells = items.slice().reverse().map((x) => h('a.cell.st-' + x.status, {
    href: `/executions/${x.id}`, title: `${x.id}: ${statusWord(x.status)}, ${fmtTime(x.createdAt)}`,
    'aria-label': `${statusWord(x.status)} ${fmtTime(x.createdAt)}`,
  }, x.status === 'failed' || x.status === 'timed_out' ? '\u2717' : ''));
  return h('span.strip', null, cells);
}

function successRate(items) {
  const done = items.filter((x) => FINAL_EXEC.includes(x.status));
  if (!done.length) return '\u2014';
  const ok = done.filter((x) => x.status === 'succeeded').length;
  return `${Math.round((100 * ok) / done.length)}% (${ok}/${done.length})`;
}

export async function workflowsPage(ctx) {
  const box = h('div', null, h('p.muted', null, 'Loading\u2026'));
  ctx.main.append(h('h1', null, 'Workflows'), box);
  const rows = new Map();
  ctx.poll(async () => {
    const [wfs, sch] = await Promise.all([get('/v1/workflows', { signal: ctx.signal }),
      get('/v1/schedules', { signal: ctx.signal })]);
    const bySchedule = new Map();
    for (const x of sch.items || []) {
      if (!bySchedule.has(x.workflow)) bySchedule.set(x.workflow, []);
      bySchedule.get(x.workflow).push(x);
    }
    const items = wfs.items || [];
    if (!items.length) {
      replace(box, h('p.muted', null, 'No workflow is registered. Register one with ',
        h('code', null, 'orch workflows apply FILE'), ' or POST /v1/workflows.'));
      return;
    }
    const tbody = h('tbody');
    for (const w of items.slice(0, 200)) {
      let cells = rows.get(w.name);
      if (!cells) {
        cells = { strip: h('td'), rate: h('td.num') };
        rows.set(w.name, cells);
      }
      tbody.append(h('tr', { 'data-workflow': w.name },
        h('td', null, link(`/workflows/${enc(w.name)}`, w.name), w.description ? h('div.muted', null, w.description) : null),
        h('td.num', null, String(w.version)),
        h('td', null, (bySchedule.get(w.name) || []).map(scheduleLine)),
        cells.strip, cells.rate));
    }
    replace(box, h('table', null,
      h('thead', null, h('tr', null, h('th', null, 'Name'), h('th.num', null, 'Version'),
        h('th', null, 'Schedules (next fire in the schedule\u2019s zone)'), h('th', null, 'Last 20 executions'),
        h('th.num', null, 'Success rate'))), tbody));
    await Promise.all(items.slice(0, 200).map(async (w) => {
      const ex = await get('/v1/executions' + q({ workflow: w.name, limit: 20 }), { cache: true, signal: ctx.signal });
      const cells = rows.get(w.name);
      replace(cells.strip, strip(ex.items || []));
      replace(cells.rate, successRate(ex.items || []));
    }));
  }, 5000);
}

// ---------------------------------------------------------------- one workflow

// The params of a definition as [{name, type, default, required, description}].
export function paramSpecs(def) {
  const out = [];
  for (const [name, v] of Object.entries((def && def.params) || {})) {
    const isSpec = v && typeof v === 'object' && !Array.isArray(v) &&
      ('type' in v || 'default' in v || 'required' in v || 'description' in v);
    if (isSpec) {
      out.push({ name, type: v.type || 'string', def: v.default, hasDefault: 'default' in v,
        required: !!v.required, description: v.description || '' });
    } else {
      const t = v === null ? 'string' : Array.isArray(v) ? 'object' : typeof v;
      out.push({ name, type: ['string', 'number', 'boolean', 'object'].includes(t) ? t : 'string',
        def: v, hasDefault: true, required: false, description: '' });
    }
  }
  return out;
}

function runForm(wfName, def) {
  const specs = paramSpecs(def);
  const fields = new Map();
  const formErr = h('div.error', { role: 'alert' });
  const form = h('form.run#run-form', { novalidate: true, 'aria-labelledby': 'h-run' });
  for (const p of specs) {
    const id = 'param-' + p.name.replace(/[^\w-]/g, '_');
    const errEl = h('span.err', { id: id + '-err' });
    let input;
    if (p.type === 'boolean') {
      input = h('select', { id, name: p.name },
        p.required ? null : h('option', { value: '' }, '(not set)'),
        h('option', { value: 'true' }, 'true'), h('option', { value: 'false' }, 'false'));
      if (p.hasDefault) input.value = String(!!p.def);
    } else if (p.type === 'object') {
      input = h('textarea', { id, name: p.name, rows: 3, spellcheck: 'false' });
      if (p.hasDefault) input.value = jsonText(p.def);
    } else {
      input = h('input', { id, name: p.name, type: 'text', inputmode: p.type === 'number' ? 'decimal' : null });
      if (p.hasDefault && p.def !== null) input.value = String(p.def);
    }
    input.setAttribute('aria-describedby', id + '-err' + (p.description ? ' ' + id + '-help' : ''));
    if (p.required) input.setAttribute('aria-required', 'true');
    fields.set(p.name, { p, input, errEl });
    form.append(h('div.field', { 'data-param': p.name },
      h('label', { for: id }, p.name, ' ', h('span.muted', null, `(${p.type})`),
        p.required ? h('span.req', { 'aria-label': 'required' }, ' *') : null),
      p.description ? h('div.help', { id: id + '-help' }, p.description) : null,
      input, errEl));
  }
  if (!specs.length) form.append(h('p.muted', null, 'This workflow takes no params.'));
  const submit = h('button#run-submit', { type: 'submit' }, 'Run');
  form.append(submit, formErr);

  const setErr = (name, msg) => {
    const f = fields.get(name);
    if (!f) return false;
    f.errEl.textContent = msg;
    f.input.setAttribute('aria-invalid', 'true');
    return true;
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formErr.textContent = '';
    for (const f of fields.values()) {
      f.errEl.textContent = '';
      f.input.removeAttribute('aria-invalid');
    }
    const params = {};
    let bad = null;
    for (const [name, { p, input }] of fields) {
      const raw = input.value;
      if (raw === '' || raw === undefined) {
        if (p.required && !p.hasDefault) {
          setErr(name, 'required');
          bad = bad || input;
        }
        continue;
      }
      if (p.type === 'number') {
        const n = Number(raw.trim());
        if (raw.trim() === '' || !Number.isFinite(n)) {
          setErr(name, 'must be a number');
          bad = bad || input;
          continue;
        }
        params[name] = n;
      } else if (p.type === 'boolean') {
        params[name] = raw === 'true';
      } else if (p.type === 'object') {
        try {
          params[name] = JSON.parse(raw);
        } catch (e) {
          setErr(name, `not JSON: ${e.message}`);
          bad = bad || input;
          continue;
        }
        if (params[name] === null || typeof params[name] !== 'object' || Array.isArray(params[name])) {
          setErr(name, 'must be a JSON object');
          bad = bad || input;
        }
      } else {
        params[name] = raw;
      }
    }
    if (bad) {
      bad.focus();
      return;
    }
    submit.disabled = true;
    try {
      const ex = await post(`/v1/workflows/${enc(wfName)}/executions`, { params });
      navigate(`/executions/${ex.id}`);
    } catch (e) {
      const leftover = [];
      for (const d of (e instanceof ApiError && e.details) || []) {
        const m = /params(?:\.|\[['"]?)([^.\['"\]]+)/.exec(d.path || '') || /param '([^']+)'/.exec(d.message || '');
        if (!(m && setErr(m[1], d.message))) leftover.push(`${d.path || ''} ${d.message || ''}`.trim());
      }
      formErr.textContent = e.message + (leftover.length ? ': ' + leftover.join('; ') : '');
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// A line diff (longest common subsequence), for definitions of a few thousand lines.
export function lineDiff(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  if (x.length * y.length > 4e6) return null;
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push([' ', x[i++]]);
      j++;
    } else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) out.push(['+', y[j++]]);
    else out.push(['-', x[i++]]);
  }
  return out;
}

// The changed lines with 3 lines of context; longer unchanged stretches are folded.
function diffLines(d, ctxLines = 3) {
  const near = d.map(() => false);
  d.forEach(([k], i) => {
    if (k === ' ') return;
    for (let j = Math.max(0, i - ctxLines); j <= Math.min(d.length - 1, i + ctxLines); j++) near[j] = true;
  });
  const out = [];
  let folded = 0;
  d.forEach(([k, t], i) => {
    if (!near[i]) {
      folded++;
      return;
    }
    if (folded) out.push(h('span.muted', null, `\u2026 ${folded} unchanged lines`));
    folded = 0;
    out.push(h('span' + (k === '+' ? '.add' : k === '-' ? '.del' : ''), null, `${k} ${t}`));
  });
  if (folded) out.push(h('span.muted', null, `\u2026 ${folded} unchanged lines`));
  return out;
}

function versionsSection(ctx, wf, box) {
  const load = async () => {
    let versions;
    try {
      versions = (await get(`/v1/workflows/${enc(wf.name)}/versions`, { signal: ctx.signal })).versions;
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      versions = Array.from({ length: wf.version }, (_, i) => ({ version: i + 1, createdAt: null }));
    }
    versions.sort((a, b) => b.version - a.version);
    const opt = (v) => h('option', { value: v.version }, `v${v.version}${v.createdAt ? ' \u2013 ' + fmtTime(v.createdAt) : ''}`);
    const selA = h('select#diff-a', null, versions.map(opt));
    const selB = h('select#diff-b', null, versions.map(opt));
    selB.value = String(wf.version);
    selA.value = String(versions.length > 1 ? versions[1].version : wf.version);
    const out = h('div.diff-out');
    const show = async () => {
      const [a, b] = await Promise.all([selA.value, selB.value].map((v) =>
        get(`/v1/workflows/${enc(wf.name)}` + q({ version: v }), { signal: ctx.signal })));
      const d = lineDiff(jsonText(a.definition), jsonText(b.definition));
      if (!d) {
        replace(out, h('p.muted', null, 'The definitions are too long to compare here.'));
        return;
      }
      const changed = d.filter((l) => l[0] !== ' ').length;
      replace(out, h('p', null, changed ? `${changed} lines differ between v${selA.value} and v${selB.value}.` : 'The two versions are identical.'),
        h('pre.diff', { tabindex: 0 }, diffLines(d)));
    };
    selA.addEventListener('change', show);
    selB.addEventListener('change', show);
    replace(box, h('ul', null, versions.slice(0, 20).map((v) => h('li', null, `v${v.version}`, v.createdAt ? ` \u2013 ${fmtTime(v.createdAt)}` : ''))),
      h('div.toolbar', null, h('label', { for: 'diff-a' }, 'Compare'), selA, h('label', { for: 'diff-b' }, 'with'), selB),
      out);
    if (versions.length > 1) await show();
  };
  return load();
}

function scheduleCard(ctx, x, refresh) {
  const nextBox = h('ol.fires');
  const card = h('div.panel', { 'data-schedule': x.id },
    h('h3', null, x.name, ' ', x.paused ? badge('paused') : badge('active', 'active')),
    h('dl.facts', null,
      h('dt', null, 'When'), h('dd', null, h('code', null, x.cron || `every ${x.every}`), ` in ${x.timezone}`),
      h('dt', null, 'Next fire'), h('dd', null, x.paused ? 'paused' : fmtInZone(x.nextFireAt, x.timezone)),
      h('dt', null, 'Last fire'), h('dd', null, x.lastFireAt ? fmtInZone(x.lastFireAt, x.timezone) : '\u2014'),
      h('dt', null, 'Overlap, catch-up'), h('dd', null, `${x.overlap}, ${x.catchup}`),
      x.params ? h('dt', null, 'Params') : null, x.params ? h('dd', null, h('code', null, JSON.stringify(x.params))) : null),
    h('details', null, h('summary', null, 'Next 10 fires'), nextBox));
  get(`/v1/schedules/${enc(x.id)}/next?count=10`, { signal: ctx.signal }).then((n) => {
    replace(nextBox, (n.times || []).map((t) => h('li', null, `${t} (${x.timezone})`)));
  }).catch(() => replace(nextBox, h('li.muted', null, 'not available')));
  if (canWrite()) {
    card.append(h('div.toolbar', null, x.paused ?
      actionButton('Resume', null, async () => {
        await post(`/v1/schedules/${enc(x.id)}/resume`);
        await refresh();
      }) :
      actionButton('Pause', 'secondary', async () => {
        await post(`/v1/schedules/${enc(x.id)}/pause`);
        await refresh();
      })));
    const from = h('input', { type: 'datetime-local', id: `bf-from-${x.id}`, required: true, step: 1 });
    const until = h('input', { type: 'datetime-local', id: `bf-until-${x.id}`, required: true, step: 1 });
    const msg = h('span', { role: 'status' });
    const toIso = (v) => (v.length === 16 ? v + ':00' : v) + 'Z';
    const form = h('form.toolbar.backfill', { novalidate: true },
      h('strong', null, 'Backfill'),
      h('label', { for: from.id }, 'after (UTC)'), from,
      h('label', { for: until.id }, 'until (UTC)'), until,
      h('button', { type: 'submit' }, 'Backfill'), msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.className = '';
      if (!from.value || !until.value) {
        msg.className = 'error';
        msg.textContent = 'Give both ends of the window.';
        return;
      }
      try {
        const r = await post(`/v1/schedules/${enc(x.id)}/backfill`, { from: toIso(from.value), until: toIso(until.value) });
        msg.textContent = `${r.dueTimes} due times queued.`;
      } catch (e) {
        msg.className = 'error';
        msg.textContent = e.message;
      }
    });
    card.append(form);
  }
  return card;
}

export async function workflowPage(ctx) {
  const name = ctx.params[0];
  const wf = await get(`/v1/workflows/${enc(name)}`, { signal: ctx.signal });
  const def = wf.definition || {};
  const graphBox = h('div', null, h('p.muted', null, 'Loading\u2026'));
  const schedBox = h('div');
  const versBox = h('div', null, h('p.muted', null, 'Loading\u2026'));
  ctx.main.append(
    h('h1', null, 'Workflow ', wf.name),
    h('div.grid2', null, h('dl.facts', null,
      h('dt', null, 'Version'), h('dd', null, String(wf.version), ' \u2013 ', fmtTime(wf.createdAt)),
      h('dt', null, 'Description'), h('dd', null, wf.description || '\u2014'),
      h('dt', null, 'Tasks'), h('dd', null, String(wf.tasks)),
      h('dt', null, 'Executions'), h('dd', null, link(`/executions?workflow=${enc(wf.name)}`, 'all executions of this workflow'))),
    canWrite() ? h('section.panel', { 'aria-labelledby': 'h-run' }, h('h2#h-run', null, 'Run'), runForm(wf.name, def)) : h('div')),
    h('section', { 'aria-labelledby': 'h-graph' }, h('h2#h-graph', null, 'Graph'), graphBox),
    h('section', { 'aria-labelledby': 'h-sched' }, h('h2#h-sched', null, 'Schedules'), schedBox),
    h('section', { 'aria-labelledby': 'h-vers' }, h('h2#h-vers', null, 'Versions'), versBox),
    h('section', { 'aria-labelledby': 'h-def' }, h('h2#h-def', null, 'Definition'), pre(def, 'definition')));

  let layout;
  try {
    layout = await get(`/v1/workflows/${enc(name)}/graph`, { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    layout = layoutFromDefinition(def);
  }
  replace(graphBox, drawDag(layout, { label: `tasks of ${wf.name}` }));

  const refresh = async () => {
    const sch = await get('/v1/schedules', { signal: ctx.signal });
    const mine = (sch.items || []).filter((x) => x.workflow === wf.name);
    replace(schedBox, mine.length ? mine.map((x) => scheduleCard(ctx, x, refresh)) :
      h('p.muted', null, 'No schedule.'));
  };
  await refresh();
  await versionsSection(ctx, wf, versBox);
}
