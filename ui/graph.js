// Drawings in SVG: the DAG of a workflow (laid out by the server, or here from the
// definition when the server gives no layout), the Gantt of an execution's attempts and the
// bar chart of executions per hour. Labels are text nodes; colours come from app.css
// classes, and every mark has a <title> with its words.
import { s, h, badge, statusWord, statusSymbol, parseTime, fmtDuration, fmtTime } from './lib.js';

// ---------------------------------------------------------------- DAG

// A layout like the server's from a definition: columns by longest path from the roots,
// rows in definition order. Returns {width, height, nodes, edges}.
export function layoutFromDefinition(def) {
  const tasks = (def && def.tasks) || [];
  const W = 170, H = 40, GX = 60, GY = 18, PAD = 16;
  const depth = new Map();
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const visiting = new Set();
  const d = (name) => {
    if (depth.has(name)) return depth.get(name);
    if (visiting.has(name)) return 0;
    visiting.add(name);
    const t = byName.get(name);
    let v = 0;
    for (const p of (t && t.dependsOn) || []) if (byName.has(p)) v = Math.max(v, d(p) + 1);
    depth.set(name, v);
    return v;
  };
  const cols = [];
  for (const t of tasks) {
    const c = d(t.name);
    (cols[c] = cols[c] || []).push(t);
  }
  const nodes = [];
  const pos = new Map();
  cols.forEach((col, ci) => {
    col.forEach((t, ri) => {
      const n = {
        name: t.name, kind: t.type || (t.command ? 'command' : 'command'),
        x: PAD + ci * (W + GX), y: PAD + ri * (H + GY), w: W, h: H,
        group: t.forEach !== undefined,
      };
      nodes.push(n);
      pos.set(t.name, n);
    });
  });
  const edges = [];
  for (const t of tasks) {
    for (const p of t.dependsOn || []) {
      const a = pos.get(p), b = pos.get(t.name);
      if (!a || !b) continue;
      edges.push({ from: p, to: t.name, points: [[a.x + a.w, a.y + a.h / 2], [b.x, b.y + b.h / 2]] });
    }
  }
  const width = PAD * 2 + Math.max(1, cols.length) * (W + GX) - GX;
  const height = PAD * 2 + Math.max(1, ...cols.map((c) => c.length)) * (H + GY) - GY;
  return { width, height, nodes, edges };
}

function countsText(c) {
  if (!c) return '';
  const parts = [];
  const done = c.succeeded || 0;
  parts.push(`${done}/${c.total || 0} done`);
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.running) parts.push(`${c.running} running`);
  if (c.queued) parts.push(`${c.queued} queued`);
  return parts.join(', ');
}

// A fan-out group's status from its instances' counts, when the layout gives none.
function statusFromCounts(c) {
  if (!c || !c.total) return null;
  for (const st of ['running', 'queued', 'failed', 'timed_out', 'upstream_failed', 'cancelled']) if (c[st]) return st;
  if ((c.succeeded || 0) + (c.skipped || 0) === c.total) return c.succeeded ? 'succeeded' : 'skipped';
  return 'pending';
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, max - 1) + '\u2026' : text;
}

// The instances of an expanded fan-out group are drawn as a sub-row of cells under its node;
// at most MAX_CELLS of them, then "N more".
const SUB = 34, CELL = 30, MAX_CELLS = 24;

// Draws a layout; statuses (a Map name -> status) override the nodes' own. onNode(name, node)
// is called on click or Enter/Space on a node, onInstance(name) on an instance's cell.
// expanded (a Map group name -> {items: [{name, status}], total}) opens those groups in place:
// everything below the group's node moves down to make room for the sub-row.
// One <g> with a rect and two texts per node, all edges in one path and their arrowheads in
// another, one pair of listeners for the whole drawing: a 1,000-task graph stays cheap to
// build and to lay out.
export function drawDag(layout, opts = {}) {
  const statuses = opts.statuses || new Map();
  const expanded = opts.expanded || new Map();
  const byName = new Map((layout.nodes || []).map((n) => [n.name, n]));
  const bottoms = [];
  for (const name of expanded.keys()) {
    const n = byName.get(name);
    if (n && n.group) bottoms.push(n.y + n.h);
  }
  const dy = (y) => {
    let d = 0;
    for (const b of bottoms) if (y > b) d += SUB;
    return d;
  };
  let W = Math.max(layout.width || 0, 100);
  const H = Math.max(layout.height || 0, 60) + bottoms.length * SUB;
  const svg = s('svg', {
    class: 'dag', role: 'group', 'aria-label': opts.label || 'task graph',
  });
  // opts.view {w, h}: only the nodes in that first window are drawn (the caller draws the
  // whole graph right after the first paint); drawn.skipped says how many were left out.
  // The edges too: only those with a point in the window (a 1,000-task graph has 3,000).
  const view = opts.view || null;
  const seen = (p) => p[0] <= view.w && p[1] <= view.h;
  let lines = '', heads = '';
  for (const e of layout.edges || []) {
    const pts = (e.points || []).map((p) => [p[0], p[1] + dy(p[1])]);
    if (pts.length < 2) continue;
    if (view && !pts.some(seen)) continue;
    if (expanded.has(e.from) && bottoms.length) pts[0][1] += SUB;
    lines += pts.map((p, i) => `${i ? 'L' : 'M'}${p[0]},${p[1]}`).join('');
    const [x1, y1] = pts[pts.length - 2], [x2, y2] = pts[pts.length - 1];
    const len = Math.hypot(x2 - x1, y2 - y1) || 1;
    const ux = (x2 - x1) / len, uy = (y2 - y1) / len;
    const bx = x2 - ux * 7, by = y2 - uy * 7;
    heads += `M${x2},${y2}L${(bx - uy * 3.5).toFixed(1)},${(by + ux * 3.5).toFixed(1)}` +
      `L${(bx + uy * 3.5).toFixed(1)},${(by - ux * 3.5).toFixed(1)}z`;
  }
  const frag = document.createDocumentFragment();
  if (lines) frag.append(s('path', { d: lines, class: 'edge' }), s('path', { d: heads, class: 'arrowhead' }));
  const act = !!opts.onNode;
  let skipped = 0;
  for (const n of layout.nodes || []) {
    if (view && (n.x > view.w || n.y > view.h)) {
      skipped++;
      continue;
    }
    const st = statuses.get(n.name) || n.status || statusFromCounts(n.counts);
    const label = n.group ? `${n.name} [\u2026]` : n.name;
    const sub = n.counts ? countsText(n.counts) : st ? statusWord(st) : n.kind || '';
    const open = n.group && expanded.has(n.name);
    const y = n.y + dy(n.y);
    const g = s('g', {
      class: `node${st ? ' st-' + st : ''}${n.group ? ' group' : ''}`,
      transform: `translate(${n.x},${y})`, tabindex: act ? 0 : null,
      role: act ? 'button' : 'img', 'data-task': n.name, 'data-status': st || '',
      'aria-label': `${n.name}: ${sub}${n.group && act ? (open ? ', expanded' : ', collapsed') : ''}`,
      'aria-expanded': n.group && act ? String(open) : null,
    },
    s('title', null, `${n.name}${n.kind ? ' (' + n.kind + ')' : ''}: ${sub}`),
    n.group ? s('rect', { class: 'stack', x: 4, y: -4, width: n.w, height: n.h, rx: 6 }) : null,
    s('rect', { width: n.w, height: n.h, rx: 6 }),
    s('text', { x: 8, y: n.h < 44 ? 15 : 19, class: 'name' }, shorten(label, Math.floor((n.w - 12) / 7.2))),
    s('text', { x: 8, y: n.h < 44 ? 29 : 37, class: 'sub' }, shorten(sub, Math.floor((n.w - 12) / 6))));
    frag.append(g);
    if (open) {
      const row = instanceRow(n, expanded.get(n.name), y + n.h + 6, act);
      W = Math.max(W, row.right + 8);
      frag.append(row.el);
    }
  }
  svg.append(frag);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  if (act) {
    const fire = (el) => {
      if (el.classList.contains('inst')) {
        if (opts.onInstance) opts.onInstance(el.dataset.task);
      } else if (el.classList.contains('node')) {
        opts.onNode(el.dataset.task, byName.get(el.dataset.task));
      }
    };
    svg.addEventListener('click', (ev) => {
      const el = ev.target.closest('[data-task]');
      if (el) fire(el);
    });
    svg.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Enter' && ev.key !== ' ') return;
      const el = ev.target.closest('[data-task]');
      if (!el) return;
      ev.preventDefault();
      fire(el);
    });
  }
  const wrap = h('div.dag-wrap', null, svg);
  wrap.skipped = skipped;
  return wrap;
}

// The sub-row of an expanded group: one cell per instance (colour, symbol and title by status),
// then "N more" when there are more than MAX_CELLS.
function instanceRow(n, inst, y, act) {
  const items = inst.items || [];
  const shown = items.slice(0, MAX_CELLS);
  const total = Math.max(inst.total || 0, items.length);
  const g = s('g', { class: 'instances', 'data-group': n.name, transform: `translate(${n.x},${y})`,
    role: 'group', 'aria-label': `instances of ${n.name}` });
  shown.forEach((t, i) => {
    g.append(s('g', {
      class: `inst st-${t.status}`, transform: `translate(${i * CELL},0)`, 'data-task': t.name,
      'data-status': t.status, role: act ? 'button' : 'img', tabindex: act ? 0 : null,
      'aria-label': `${t.name}: ${statusWord(t.status)}`,
    },
    s('title', null, `${t.name}: ${statusWord(t.status)}`),
    s('rect', { width: CELL - 4, height: SUB - 12, rx: 3 }),
    s('text', { x: (CELL - 4) / 2, y: 15, 'text-anchor': 'middle' }, statusSymbol(t.status))));
  });
  let right = n.x + shown.length * CELL;
  const more = total - shown.length;
  if (!shown.length || more > 0) {
    const text = shown.length ? `${more} more` : 'no instances yet';
    g.append(s('text', { x: shown.length * CELL + 4, y: 15, class: 'more' }, text));
    right += 8 + text.length * 7;
  }
  return { el: g, right };
}

// ---------------------------------------------------------------- Gantt

const ROW = 22, LABEL = 220, PLOT = 760;

// rows: [{label, indent, segments: [{from, to, cls, title}]}] with times in ms since epoch.
// Per attempt: its back-off (the previous attempt's end to queuedAt), its queued time
// (queuedAt to startedAt: waiting for a slot, the workflow's limits or a node) and its
// running time. Rows from an orch that did not record queuedAt fall back on estimates: the
// first attempt queued from its dependencies' end, a later one's gap drawn as back-off.
function ganttRows(detail, deps, children, depth, rows, now) {
  const finished = new Map();
  for (const t of detail.tasks) finished.set(t.name, parseTime(t.finishedAt));
  const execStart = parseTime(detail.startedAt) || parseTime(detail.createdAt);
  for (const t of detail.tasks) {
    const segs = [];
    const base = t.group || t.name;
    let ready = execStart;
    for (const p of deps.get(base) || []) {
      const f = finished.get(p);
      if (f && f > ready) ready = f;
    }
    const attempts = t.attempts || [];
    const queued = (from, to, number, open) => segs.push({ from, to, cls: 'queued', label: 'queued', forAttempt: number,
      title: `${number ? `attempt ${number}: ` : ''}queued ${fmtDuration(to - from)}${open ? ' so far' : ''}` +
        ' (ready, waiting for a worker slot, the workflow\u2019s limits or a node)' });
    const backoff = (from, to, title, number) => segs.push({ from, to, cls: 'backoff', label: 'back-off', title,
      forAttempt: number });
    let prevEnd = null;
    attempts.forEach((a, k) => {
      const a0 = parseTime(a.startedAt);
      const a1 = parseTime(a.finishedAt) || (a.status === 'running' ? now : a0);
      const q = parseTime(a.queuedAt) || (k === 0 && a0 && ready && a0 > ready ? ready : null);
      const gapEnd = q || a0;
      if (prevEnd && gapEnd && gapEnd > prevEnd) backoff(prevEnd, gapEnd, `back-off ${fmtDuration(gapEnd - prevEnd)}`, a.number);
      if (q && a0 && a0 > q) queued(q, a0, a.number, false);
      if (a0) {
        const what = [`attempt ${a.number}: ${statusWord(a.status)}`, fmtDuration(a1 - a0)];
        if (a.exitCode !== null && a.exitCode !== undefined) what.push(`exit code ${a.exitCode}`);
        if (a.signal) what.push(`signal ${a.signal}`);
        if (a.error) what.push(a.error);
        segs.push({ from: a0, to: Math.max(a1, a0), cls: 'st-' + a.status, title: what.join(', '), attempt: a.number });
      }
      prevEnd = parseTime(a.finishedAt);
    });
    if (t.status === 'queued') {
      // waiting for its next attempt: its back-off first (a retry), then queued until now
      const avail = parseTime(t.availableAt);
      const tq = parseTime(t.queuedAt) || (prevEnd ? avail : ready);
      const until = tq || avail;
      if (prevEnd && until && until > prevEnd) backoff(prevEnd, until, `back-off until ${fmtTime(new Date(until).toISOString())}`,
        attempts.length + 1);
      if (tq && now > tq) queued(tq, now, attempts.length + 1, true);
    }
    rows.push({ label: t.name, indent: depth, status: t.status, segments: segs });
    const child = t.childExecutionId && children.get(t.childExecutionId);
    if (child && depth < 2) {
      rows.push({ label: `\u21b3 ${child.workflow} (${child.id})`, indent: depth + 1, status: child.status,
        segments: [], href: `/executions/${child.id}` });
      ganttRows(child, child.deps || new Map(), children, depth + 1, rows, now);
    }
  }
}

// detail: an execution; deps: Map task -> dependsOn (from its definition); children: Map id ->
// child execution detail (with .deps). Returns an element.
// maxRows are drawn; onMore, when given, is the action of a "Show all" button for the rest.
export function drawGantt(detail, deps, children, maxRows = 400, onMore = null) {
  const now = Date.now();
  const rows = [];
  ganttRows(detail, deps, children || new Map(), 0, rows, now);
  let t0 = Infinity, t1 = -Infinity;
  for (const r of rows) {
    for (const sg of r.segments) {
      t0 = Math.min(t0, sg.from);
      t1 = Math.max(t1, sg.to);
    }
  }
  if (!Number.isFinite(t0)) {
    return h('p.muted', null, 'Nothing has started yet.');
  }
  if (t1 <= t0) t1 = t0 + 1000;
  const shown = rows.slice(0, maxRows);
  const scale = PLOT / (t1 - t0);
  const H = shown.length * ROW + 28;
  const svg = s('svg', { class: 'gantt', viewBox: `0 0 ${LABEL + PLOT + 10} ${H}`,
    width: LABEL + PLOT + 10, height: H, role: 'img',
    'aria-label': `timeline of ${rows.length} task runs over ${fmtDuration(t1 - t0)}` });
  // axis
  const axis = s('g', { class: 'axis' });
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const x = LABEL + (PLOT * i) / ticks;
    axis.append(s('line', { x1: x, x2: x, y1: 14, y2: H, class: 'tick' }));
    axis.append(s('text', { x, y: 10, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' },
      '+' + fmtDuration(((t1 - t0) * i) / ticks)));
  }
  svg.append(axis);
  // the queued time is hatched (not told by its colour alone), and labelled where it fits
  svg.append(s('defs', null, s('pattern', { id: 'gantt-queued-hatch', patternUnits: 'userSpaceOnUse',
    width: 6, height: 6, patternTransform: 'rotate(45)' },
  s('rect', { width: 6, height: 6, class: 'hatch-bg' }), s('line', { x1: 0, y1: 0, x2: 0, y2: 6, class: 'hatch' }))));
  shown.forEach((r, i) => {
    const y = 18 + i * ROW;
    const g = s('g', { class: 'row', 'data-task': r.label });
    g.append(s('text', { x: 4 + r.indent * 14, y: y + 14, class: 'label' },
      shorten(r.label, 30 - r.indent * 2)));
    for (const sg of r.segments) {
      const x = LABEL + (sg.from - t0) * scale;
      const w = Math.max(2, (sg.to - sg.from) * scale);
      const isAttempt = sg.cls.startsWith('st-');
      const tall = isAttempt ? 14 : sg.cls === 'queued' ? 10 : 6; // a queued bar shows its hatching
      g.append(s('rect', { x, y: y + 10 - tall / 2, width: w, height: tall,
        class: 'seg ' + sg.cls, 'data-attempt': sg.attempt || null, 'data-for-attempt': sg.forAttempt || null },
      s('title', null, `${r.label}: ${sg.title}`)));
      if (sg.label && w >= sg.label.length * 5 + 8) {
        g.append(s('text', { x: x + w / 2, y: y + 13, 'text-anchor': 'middle', class: 'seg-label', 'aria-hidden': 'true' },
          sg.label));
      }
    }
    svg.append(g);
  });
  const note = rows.length > shown.length ? h('p.muted', null, `${rows.length - shown.length} more rows not drawn.`,
    onMore ? ' ' : null, onMore ? h('button.secondary#gantt-more', { type: 'button', onclick: onMore }, 'Show more rows') : null) : null;
  const legend = h('p.legend', null,
    h('span.key.queued', null, 'queued'), ' ', h('span.key.backoff', null, 'back-off'), ' ',
    badge('running'), ' ', badge('succeeded'), ' ', badge('failed'), ' ', badge('timed_out'), ' ',
    `axis: time since ${fmtTime(new Date(t0).toISOString())}`);
  return h('div.gantt-wrap', null, svg, note, legend);
}

// ---------------------------------------------------------------- bar chart

const CHART_ORDER = ['succeeded', 'failed', 'timed_out', 'cancelled', 'running', 'queued'];

export function drawHourly(hours) {
  const W = 760, H = 170, L = 34, B = 22, T = 8;
  const n = Math.max(1, hours.length);
  const totals = hours.map((x) => Object.values(x.counts || {}).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const bw = (W - L) / n;
  const sum = {};
  for (const x of hours) for (const [k, v] of Object.entries(x.counts || {})) sum[k] = (sum[k] || 0) + v;
  const words = Object.entries(sum).filter(([, v]) => v).map(([k, v]) => `${v} ${statusWord(k)}`);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
    'aria-label': `executions per hour, last ${hours.length} hours: ${words.join(', ') || 'none'}` });
  const plotH = H - B - T;
  for (const frac of [0, 0.5, 1]) {
    const y = T + plotH * (1 - frac);
    svg.append(s('line', { x1: L, x2: W, y1: y, y2: y, class: 'tick' }));
    svg.append(s('text', { x: L - 4, y: y + 4, 'text-anchor': 'end', class: 'axis-label' },
      String(Math.round(max * frac))));
  }
  hours.forEach((x, i) => {
    let y = T + plotH;
    const hour = new Date(x.start).getUTCHours();
    for (const k of CHART_ORDER) {
      const v = (x.counts || {})[k] || 0;
      if (!v) continue;
      const hh = (v / max) * plotH;
      y -= hh;
      svg.append(s('rect', { x: L + i * bw + 1, y, width: Math.max(1, bw - 2), height: hh, class: 'bar st-' + k },
        s('title', null, `${String(hour).padStart(2, '0')}:00 UTC: ${v} ${statusWord(k)}`)));
    }
    if (i % 3 === 0) {
      svg.append(s('text', { x: L + i * bw + bw / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-label' },
        `${String(hour).padStart(2, '0')}h`));
    }
  });
  return h('figure.chart-wrap', null, svg,
    h('figcaption', null, `Executions per hour (UTC), last ${hours.length} hours: ${words.join(', ') || 'none'}.`));
}
