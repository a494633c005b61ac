// Cluster (nodes, leases, slots, scheduler leader, database and pool) and API keys (admin:
// list, create with the key shown once, revoke).
import { h, replace, get, post, api, badge, fmtTime, fmtDuration, isAdmin, confirmDialog,
  actionButton, enc, ApiError } from './lib.js';
import { healthList } from './overview.js';

export async function clusterPage(ctx) {
  const nodesBox = h('div', null, h('p.muted', null, 'Loading\u2026'));
  const factsBox = h('div');
  const healthBox = h('div');
  ctx.main.append(h('h1', null, 'Cluster'),
    h('section', { 'aria-labelledby': 'h-nodes' }, h('h2#h-nodes', null, 'Nodes'), nodesBox),
    h('section', { 'aria-labelledby': 'h-sched' }, h('h2#h-sched', null, 'Scheduler, slots and database'), factsBox),
    h('section', { 'aria-labelledby': 'h-comp' }, h('h2#h-comp', null, 'Components of this node'), healthBox));
  ctx.poll(async () => {
    const nodes = await get('/v1/nodes', { signal: ctx.signal });
    let health = null;
    try {
      health = await get('/v1/health', { cache: true, signal: ctx.signal });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    const items = nodes.items || [];
    replace(nodesBox, items.length ? h('table', null,
      h('thead', null, h('tr', null, h('th', null, 'Node'), h('th', null, 'Role'), h('th', null, 'State'),
        h('th', null, 'Host / pid'), h('th', null, 'Version'), h('th', null, 'Last heartbeat'),
        h('th.num', null, 'Lease left'), h('th.num', null, 'Executions'), h('th', null, 'Started'))),
      h('tbody', null, items.map((n) => h('tr', { 'data-node': n.id },
        h('td', null, h('span.mono', null, n.id), n.self ? h('span.muted', null, ' (this node)') : null),
        h('td', null, n.role),
        h('td', null, badge(n.state)),
        h('td', null, `${n.host} / ${n.pid}`),
        h('td', null, n.version),
        h('td.nowrap', null, fmtTime(n.lastHeartbeatAt), h('div.muted', null, `${fmtDuration(n.heartbeatAgeMs)} ago`)),
        h('td.num', null, n.state === 'alive' ? fmtDuration(Math.max(0, nodes.leaseMs - n.heartbeatAgeMs)) : '\u2014'),
        h('td.num', null, String(n.executions)),
        h('td.nowrap', null, fmtTime(n.startedAt)))))) :
      h('p.muted', null, 'No node has used the store recently.'),
    h('p.muted', null, `Lease: ${fmtDuration(nodes.leaseMs)}; a node whose heartbeat is older is lost and its executions are taken over.`));
    if (!health) {
      replace(factsBox, h('p.muted', null, 'Health is not available.'));
      return;
    }
    const c = health.components || {};
    const db = c.database || {};
    const pool = db.pool || {};
    const sch = c.scheduler || {};
    const node = c.node || {};
    const w = c.workers || {};
    replace(factsBox, h('dl.facts', null,
      h('dt', null, 'Scheduler'), h('dd', null, badge(sch.status), ` ${sch.role || ''}`,
        node.schedulerLeader ? ' \u2013 this node is the leader' : sch.role === 'standby' ? ' \u2013 another node is the leader' : ''),
      h('dt', null, 'Worker slots'), h('dd', null, `${w.busy ?? '\u2014'} of ${w.total ?? '\u2014'} in use on this node`),
      h('dt', null, 'Database'), h('dd', null, badge(db.status), ` ${db.backend || ''}, latency ${db.latencyMs ?? '\u2014'} ms`,
        db.lastError ? h('div.error', null, db.lastError) : null),
      h('dt', null, 'Connection pool'), h('dd', null, `${pool.kind || ''}: ${pool.inUse ?? 0} in use of ${pool.size ?? 0}, ${pool.open ?? 0} open, ` +
        `${pool.waiting ?? 0} waiting, ${pool.exhausted ?? 0} refused after ${fmtDuration(pool.timeoutMs)}`),
      h('dt', null, 'This node'), h('dd', null, `${node.id || 'single process'}, ${node.executionsClaimed ?? 0} executions claimed, ${node.executionsLost ?? 0} taken over by others`)));
    replace(healthBox, healthList(health));
  }, 3000);
}

export async function keysPage(ctx) {
  ctx.main.append(h('h1', null, 'API keys'));
  if (!isAdmin()) {
    ctx.main.append(h('p', null, 'Managing keys needs a key with the admin scope.'));
    return;
  }
  const listBox = h('div');
  const created = h('div', { 'aria-live': 'polite' });
  const name = h('input#key-name', { required: true, maxlength: 200, autocomplete: 'off' });
  const scope = h('select#key-scope', null, ['read', 'write', 'admin'].map((x) => h('option', { value: x }, x)));
  const expires = h('input#key-expires', { placeholder: 'e.g. 30d, empty: never', size: 16 });
  const err = h('span.error', { role: 'alert' });
  const form = h('form.toolbar#key-form', { novalidate: true },
    h('label', { for: 'key-name' }, 'Name'), name,
    h('label', { for: 'key-scope' }, 'Scope'), scope,
    h('label', { for: 'key-expires' }, 'Expires in'), expires,
    h('button', { type: 'submit' }, 'Create key'), err);
  ctx.main.append(h('section.panel', { 'aria-labelledby': 'h-new' }, h('h2#h-new', null, 'New key'), form, created),
    h('section', { 'aria-labelledby': 'h-keys' }, h('h2#h-keys', null, 'Keys'), listBox));

  const load = async () => {
    const keys = await get('/v1/keys', { signal: ctx.signal });
    const items = keys.items || [];
    replace(listBox, h('table', null,
      h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Prefix'), h('th', null, 'Scopes'),
        h('th', null, 'Created'), h('th', null, 'Last used'), h('th', null, 'Expires'), h('th', null, 'State'), h('th', null, ''))),
      h('tbody', null, items.map((k) => h('tr', { 'data-key': k.id },
        h('td', null, k.name), h('td.mono', null, k.prefix + '\u2026'), h('td', null, k.scopes.join(', ')),
        h('td.nowrap', null, fmtTime(k.createdAt)), h('td.nowrap', null, fmtTime(k.lastUsedAt)),
        h('td.nowrap', null, k.expiresAt ? fmtTime(k.expiresAt) : 'never'),
        h('td', null, k.revokedAt ? badge('cancelled', 'revoked') :
          k.expiresAt && Date.parse(k.expiresAt) < Date.now() ? badge('timed_out', 'expired') : badge('ok', 'active')),
        h('td', null, k.revokedAt ? null : actionButton('Revoke', 'danger', async () => {
          if (!(await confirmDialog('Revoke this key?', `Requests and sessions with "${k.name}" (${k.prefix}\u2026) are refused from now on.`, 'Revoke'))) return;
          await api('DELETE', `/v1/keys/${enc(k.id)}`);
          await load();
        })))))));
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    if (!name.value.trim()) {
      err.textContent = 'Give the key a name.';
      name.focus();
      return;
    }
    const body = { name: name.value.trim(), scopes: [scope.value] };
    if (expires.value.trim()) body.expiresIn = /^\d+$/.test(expires.value.trim()) ? Number(expires.value.trim()) : expires.value.trim();
    try {
      const k = await post('/v1/keys', body);
      const keyField = h('input#new-key.mono', { readonly: true, value: k.key, size: 60, 'aria-label': 'the new key' });
      replace(created, h('div.newkey', null,
        h('p', null, h('strong', null, `Key "${k.name}" created. `), 'Copy it now: it is shown only this once.'),
        keyField, ' ',
        h('button.secondary', { type: 'button', onclick: async () => {
          keyField.select();
          try {
            await navigator.clipboard.writeText(k.key);
          } catch {
            // selected for a manual copy
          }
        } }, 'Copy'),
        ' ', h('button.secondary', { type: 'button', onclick: () => replace(created) }, 'Done, hide it')));
      name.value = '';
      expires.value = '';
      await load();
    } catch (e) {
      err.textContent = e.message;
    }
  });
  await load();
}
