/*
 * schema.c - the store's schema as ordered migration steps, shared by the
 * backends.
 *
 * Rules for a step (docs/internals/store.md has the reasons):
 * - never edit a step that has shipped; add a new one at the end;
 * - keep it portable to PostgreSQL: TEXT, INTEGER, BIGINT, BYTEA, PRIMARY
 *   KEY / UNIQUE / REFERENCES / CREATE INDEX (partial ones too: both have
 *   CREATE INDEX ... WHERE), ALTER TABLE ... ADD COLUMN; no AUTOINCREMENT,
 *   WITHOUT ROWID, STRICT or other SQLite-only syntax, no reserved words as
 *   names;
 * - instants are BIGINT UTC milliseconds, NULL when not set; statuses are
 *   their text names ("running").
 *
 * BYTEA is PostgreSQL's byte string type; SQLite accepts any type name and
 * stores what it is given, and a bound blob is kept as a blob, so the same
 * text works on both.
 */
#include "store_backend.h"

#include "base/banned.h"

/* Version 1: the first schema. */
static const char schema_v1[] =
    "CREATE TABLE workflows ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  definition TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  PRIMARY KEY (name, version)"
    ");"
    "CREATE TABLE executions ("
    "  id TEXT NOT NULL PRIMARY KEY,"
    "  workflow TEXT NOT NULL,"
    "  workflow_version INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  params TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  started_at BIGINT,"
    "  finished_at BIGINT,"
    "  error TEXT"
    ");"
    /* List by status (and the unfinished scan at recovery), newest first. */
    "CREATE INDEX executions_status_id ON executions (status, id);"
    /* List by workflow, newest first. */
    "CREATE INDEX executions_workflow_id ON executions (workflow, id);"
    /* List by workflow and status ("failed runs of nightly"), newest first. */
    "CREATE INDEX executions_workflow_status_id ON executions (workflow, status, id);"
    "CREATE TABLE task_runs ("
    "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  available_at BIGINT,"
    "  started_at BIGINT,"
    "  finished_at BIGINT,"
    "  error TEXT,"
    "  PRIMARY KEY (execution_id, idx)"
    ");"
    "CREATE TABLE attempts ("
    "  execution_id TEXT NOT NULL,"
    "  task_idx INTEGER NOT NULL,"
    "  number INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  node TEXT,"
    "  pid INTEGER,"
    "  pgid INTEGER,"
    "  proc_start BIGINT,"
    "  started_at BIGINT,"
    "  finished_at BIGINT,"
    "  exit_code INTEGER,"
    "  signal INTEGER,"
    "  error TEXT,"
    "  PRIMARY KEY (execution_id, task_idx, number),"
    "  FOREIGN KEY (execution_id, task_idx) REFERENCES task_runs (execution_id, idx)"
    "    ON DELETE CASCADE"
    ");"
    "CREATE TABLE logs ("
    "  execution_id TEXT NOT NULL,"
    "  task_idx INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  stream TEXT NOT NULL,"
    "  ts BIGINT NOT NULL,"
    "  data BYTEA NOT NULL,"
    "  PRIMARY KEY (execution_id, task_idx, attempt, seq),"
    "  FOREIGN KEY (execution_id, task_idx, attempt)"
    "    REFERENCES attempts (execution_id, task_idx, number) ON DELETE CASCADE"
    ");";

/*
 * Version 2: what the server needs.
 * - workflows.deleted_at: store_workflow_delete() marks every version of the
 *   workflow instead of deleting them, so executions can still read the
 *   version they ran and a later put continues the numbering;
 * - executions (finished_at, workflow) and (workflow, finished_at): the purge
 *   walks finished executions oldest first, with the workflow tested on the
 *   index entry (the "except" list) or as the range prefix (one workflow);
 * - task_runs_queued, a partial index holding only queued task runs: the
 *   counts scan it, however many finished task runs there are; rows leave it
 *   when they stop being queued, so it stays small and cheap to maintain;
 * - idempotency_keys, deleted with their execution (ON DELETE CASCADE; the
 *   index on execution_id keeps that delete a lookup);
 * - api_keys: only a hash of each key; `prefix` (UNIQUE, hence indexed) finds
 *   the row for a presented key, `name` is indexed for revocation by name.
 * KEY is a non-reserved word in SQLite and PostgreSQL alike.
 */
static const char schema_v2[] =
    "ALTER TABLE workflows ADD COLUMN deleted_at BIGINT;"
    "CREATE INDEX executions_finished_at ON executions (finished_at, workflow);"
    "CREATE INDEX executions_workflow_finished_at ON executions (workflow, finished_at);"
    "CREATE INDEX task_runs_queued ON task_runs (available_at, execution_id, status)"
    "  WHERE status = 'queued';"
    "CREATE TABLE idempotency_keys ("
    "  workflow TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,"
    "  created_at BIGINT NOT NULL,"
    "  PRIMARY KEY (workflow, key)"
    ");"
    "CREATE INDEX idempotency_keys_execution_id ON idempotency_keys (execution_id);"
    "CREATE TABLE api_keys ("
    "  id TEXT NOT NULL PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  prefix TEXT NOT NULL UNIQUE,"
    "  hash BYTEA NOT NULL,"
    "  scopes INTEGER NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT,"
    "  last_used_at BIGINT,"
    "  revoked_at BIGINT"
    ");"
    "CREATE INDEX api_keys_name ON api_keys (name);";

/*
 * Version 3: schedules.
 * - executions.schedule_id, scheduled_for: the schedule that fired an
 *   execution and the due time it fired for (NULL for others);
 * - executions (schedule_id, status): the scheduler's overlap check, "is an
 *   execution of this schedule still queued or running", is a lookup;
 * - schedules: the state of each schedule of a definition, one row per
 *   (workflow, name) (UNIQUE: the upsert's conflict target, and the order of
 *   the list and the prune's scan of one workflow);
 * - schedule_fires: one row per due time handled, fired or skipped. Its
 *   primary key (schedule_id, scheduled_for) is what makes a due time fire
 *   at most once: a second insert fails, whoever tries it. No foreign key to
 *   executions: retention deletes executions, and the fire must stay as the
 *   record that its due time was handled. The prune of a schedule deletes
 *   its fires (by the primary key's prefix).
 */
static const char schema_v3[] =
    "ALTER TABLE executions ADD COLUMN schedule_id TEXT;"
    "ALTER TABLE executions ADD COLUMN scheduled_for BIGINT;"
    "CREATE INDEX executions_schedule_id_status ON executions (schedule_id, status);"
    "CREATE TABLE schedules ("
    "  id TEXT NOT NULL PRIMARY KEY,"
    "  workflow TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  spec_hash TEXT NOT NULL,"
    "  paused INTEGER NOT NULL DEFAULT 0,"
    "  next_fire_at BIGINT,"
    "  last_fire_at BIGINT,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL,"
    "  UNIQUE (workflow, name)"
    ");"
    "CREATE TABLE schedule_fires ("
    "  schedule_id TEXT NOT NULL,"
    "  scheduled_for BIGINT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  execution_id TEXT,"
    "  reason TEXT,"
    "  created_at BIGINT NOT NULL,"
    "  PRIMARY KEY (schedule_id, scheduled_for)"
    ");";

/*
 * Version 4: schedules created through the API keep their schedule object
 * (spec, JSON text) beside their state; from_api tells them from the
 * schedules of a definition, which the definition owns.
 */
static const char schema_v4[] =
    "ALTER TABLE schedules ADD COLUMN from_api INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE schedules ADD COLUMN spec TEXT;";

/*
 * Version 5: nodes that share one database (PostgreSQL scale-out).
 * - nodes: one row per orch process that has run an engine; heartbeat_at is
 *   renewed in one statement per interval, however many tasks the node runs:
 *   the leases of everything it owns are that one timestamp. Instants here
 *   are the database's clock, so nodes with skewed clocks agree on expiry.
 * - executions.owner_node: the node whose engine advances the execution
 *   (NULL: queued for whichever node claims it first);
 *   executions.cancel_requested_at: a cancel asked of another node.
 * - executions_owner_unfinished: a partial index holding only queued and
 *   running executions by owner, so the heartbeat's "is there work to take"
 *   and the claim scan only what is unfinished, however long the history.
 * - leases: named leases (one today: "scheduler", the node that fires the
 *   schedules), taken and renewed by one conditional upsert; a holder that
 *   stops renewing loses it when expires_at (database clock) passes.
 */
static const char schema_v5[] =
    "CREATE TABLE nodes ("
    "  id TEXT NOT NULL PRIMARY KEY,"
    "  host TEXT NOT NULL,"
    "  pid INTEGER NOT NULL,"
    "  role TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  started_at BIGINT NOT NULL,"
    "  heartbeat_at BIGINT NOT NULL,"
    "  stopped_at BIGINT"
    ");"
    "ALTER TABLE executions ADD COLUMN owner_node TEXT;"
    "ALTER TABLE executions ADD COLUMN cancel_requested_at BIGINT;"
    "CREATE INDEX executions_owner_unfinished ON executions (owner_node, created_at)"
    "  WHERE status IN ('queued', 'running');"
    "CREATE TABLE leases ("
    "  name TEXT NOT NULL PRIMARY KEY,"
    "  node TEXT NOT NULL,"
    "  expires_at BIGINT NOT NULL"
    ");";

/*
 * Version 6: a task's output (JSON object text, size-capped by the engine),
 * what its dependents may read; NULL until the task succeeds.
 */
static const char schema_v6[] = "ALTER TABLE task_runs ADD COLUMN output TEXT;";

/*
 * Version 7: tasks offered to other nodes (PostgreSQL scale-out). The owner
 * of an execution offers a ready command task it has no slot for; a node with
 * a free slot claims the offer (FOR UPDATE SKIP LOCKED), runs the process and
 * writes its result into the row; the owner applies it to the task run and
 * deletes the row. nodes.slots: a node's worker slots, so that owners know
 * how much others can take.
 * - task_offers_open: a partial index of the offers nobody has claimed, in
 *   the order they are claimed;
 * - task_offers_owner: an owner's finished offers, to collect;
 * - task_offers_runner: a runner's offers (cancel requests, dead runners).
 */
static const char schema_v7[] =
    "ALTER TABLE nodes ADD COLUMN slots INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE task_offers ("
    "  execution_id TEXT NOT NULL,"
    "  task_idx INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  owner_node TEXT NOT NULL,"
    "  runner_node TEXT,"
    "  spec TEXT NOT NULL,"
    "  offered_at BIGINT NOT NULL,"
    "  claimed_at BIGINT,"
    "  runner TEXT,"
    "  pid INTEGER,"
    "  proc_start BIGINT,"
    "  finished_at BIGINT,"
    "  status TEXT,"
    "  exit_code INTEGER,"
    "  signal INTEGER,"
    "  error TEXT,"
    "  output TEXT,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (execution_id, task_idx, attempt)"
    ");"
    "CREATE INDEX task_offers_open ON task_offers (offered_at) WHERE runner_node IS NULL;"
    "CREATE INDEX task_offers_owner ON task_offers (owner_node, finished_at);"
    "CREATE INDEX task_offers_runner ON task_offers (runner_node) WHERE runner_node IS NOT NULL;";

/*
 * Version 8: task types that make more task runs or executions.
 * - task_runs.group_idx/item_index/item: a fan-out (forEach) task is one run
 *   (group) plus one run per item, at idx >= the workflow's task count, each
 *   naming its group and holding its item (JSON text);
 * - task_runs.child_id: a workflow task's child execution, for its attempt;
 * - executions.parent_id/parent_task_idx/depth: the execution and task that
 *   started a child execution, and how deep it is (0 for a top one);
 *   executions_parent finds the children of an execution.
 */
static const char schema_v8[] =
    "ALTER TABLE task_runs ADD COLUMN group_idx INTEGER;"
    "ALTER TABLE task_runs ADD COLUMN item_index INTEGER;"
    "ALTER TABLE task_runs ADD COLUMN item TEXT;"
    "ALTER TABLE task_runs ADD COLUMN child_id TEXT;"
    "ALTER TABLE executions ADD COLUMN parent_id TEXT;"
    "ALTER TABLE executions ADD COLUMN parent_task_idx INTEGER;"
    "ALTER TABLE executions ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX executions_parent ON executions (parent_id) WHERE parent_id IS NOT NULL;";

/*
 * Version 9: due times waiting to fire. A backfill or a catch-up records each
 * due time it names as a schedule_fires row with status 'queued' (same
 * primary key, so a due time is still handled once across nodes); the fire
 * turns it 'fired' with its execution in one commit. schedule_fires_queued,
 * a partial index holding only those rows, finds a schedule's waiting due
 * times in order at start (or on the node that takes the scheduler over),
 * however many fires the schedule has made.
 */
static const char schema_v9[] =
    "CREATE INDEX schedule_fires_queued ON schedule_fires (schedule_id, scheduled_for)"
    "  WHERE status = 'queued';";

/*
 * Version 10: executions.retried_at, when the newest retry of an execution
 * started (NULL if never retried); started_at keeps the first start.
 */
static const char schema_v10[] = "ALTER TABLE executions ADD COLUMN retried_at BIGINT;";

/*
 * Version 11: what the web UI reads at any history size.
 * - executions_created_at: a list with a bounded time range (since and
 *   until) reads the executions created in that range instead of walking
 *   every newer one by id; the backends choose it only for such ranges
 *   (see store__executions_list);
 * - executions_hourly: the executions per hour of creation (created_at /
 *   3600000) and status, kept by each backend's triggers in the transaction
 *   of every insert, status change and delete of an execution
 *   (store__migration_extras below), so executions per hour over a day is a
 *   read of at most 24 x 6 rows however many executions the day holds. A
 *   count may drop to 0 (the row stays: the next execution of that hour
 *   and status reuses it). The backfill counts the rows already there.
 */
static const char schema_v11[] =
    "CREATE INDEX executions_created_at ON executions (created_at);"
    "CREATE TABLE executions_hourly ("
    "  hour BIGINT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  n BIGINT NOT NULL,"
    "  PRIMARY KEY (hour, status)"
    ");"
    "INSERT INTO executions_hourly (hour, status, n)"
    "  SELECT created_at / 3600000, status, count(*) FROM executions"
    "  GROUP BY created_at / 3600000, status;";

/*
 * Version 11's triggers, in each dialect (run before the shared step, in the
 * same transaction). Each change adds or takes 1 from the row of its
 * (hour, status), creating it if needed, so the rows are always the sum of
 * what happened.
 *
 * SQLite: one writer at a time, so the triggers update the rows directly.
 *
 * PostgreSQL: several nodes commit at once, and a transaction that changed
 * (hour 5, queued) then (hour 5, running) would deadlock with one that did
 * the same in the other order. So the triggers are deferred to the commit
 * (constraint triggers, INITIALLY DEFERRED; their WHEN is still checked at
 * the change) and each takes one transaction-level advisory lock before it
 * writes: at most one transaction at a time holds count rows, and it waits
 * for nothing else until its commit ends. The table lock first makes the
 * backfill and the triggers one step for writers of an older orch still
 * running: they wait for this commit, then their writes are counted.
 */
static const char schema_v11_sqlite[] =
    "CREATE TRIGGER executions_hourly_insert AFTER INSERT ON executions BEGIN"
    "  INSERT INTO executions_hourly (hour, status, n)"
    "    VALUES (NEW.created_at / 3600000, NEW.status, 1)"
    "    ON CONFLICT (hour, status) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER executions_hourly_update AFTER UPDATE OF status, created_at ON executions"
    "  WHEN OLD.status IS NOT NEW.status OR OLD.created_at IS NOT NEW.created_at BEGIN"
    "  INSERT INTO executions_hourly (hour, status, n)"
    "    VALUES (OLD.created_at / 3600000, OLD.status, -1)"
    "    ON CONFLICT (hour, status) DO UPDATE SET n = n - 1;"
    "  INSERT INTO executions_hourly (hour, status, n)"
    "    VALUES (NEW.created_at / 3600000, NEW.status, 1)"
    "    ON CONFLICT (hour, status) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER executions_hourly_delete AFTER DELETE ON executions BEGIN"
    "  INSERT INTO executions_hourly (hour, status, n)"
    "    VALUES (OLD.created_at / 3600000, OLD.status, -1)"
    "    ON CONFLICT (hour, status) DO UPDATE SET n = n - 1;"
    " END;";

static const char schema_v11_postgres[] =
    "LOCK TABLE executions IN SHARE ROW EXCLUSIVE MODE;"
    "CREATE FUNCTION executions_hourly_count() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  PERFORM pg_advisory_xact_lock(" STORE__HOURLY_LOCK ");"
    "  IF TG_OP <> 'INSERT' THEN"
    "   INSERT INTO executions_hourly (hour, status, n)"
    "    VALUES (OLD.created_at / 3600000, OLD.status, -1)"
    "    ON CONFLICT (hour, status) DO UPDATE SET n = executions_hourly.n - 1;"
    "  END IF;"
    "  IF TG_OP <> 'DELETE' THEN"
    "   INSERT INTO executions_hourly (hour, status, n)"
    "    VALUES (NEW.created_at / 3600000, NEW.status, 1)"
    "    ON CONFLICT (hour, status) DO UPDATE SET n = executions_hourly.n + 1;"
    "  END IF;"
    "  RETURN NULL;"
    " END $$;"
    "CREATE CONSTRAINT TRIGGER executions_hourly_insert_delete AFTER INSERT OR DELETE"
    "  ON executions DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
    "  EXECUTE FUNCTION executions_hourly_count();"
    "CREATE CONSTRAINT TRIGGER executions_hourly_update AFTER UPDATE OF status, created_at"
    "  ON executions DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
    "  WHEN (OLD.status IS DISTINCT FROM NEW.status"
    "    OR OLD.created_at IS DISTINCT FROM NEW.created_at)"
    "  EXECUTE FUNCTION executions_hourly_count();";

/*
 * Version 16: executions_hourly_delta, the changes of the counts not yet
 * added to executions_hourly.
 *
 * PostgreSQL: version 11's triggers updated the same counter row once per
 * execution changed, under one advisory lock, at the commit: a group commit
 * of N submissions of one hour and status made N updates of one row, each
 * walking the row versions the transaction had already made (about 150 to
 * 300 us per execution at the commit, measured with 200 and 1,000 inserts in
 * one transaction, against 3 to 17 ms for the whole commit without them).
 * Now the trigger function only appends (hour, status, +1 or -1) here: an
 * insert that waits for no lock. The engine's connection moves the appended
 * rows into executions_hourly with one statement in its next turn that
 * changes executions (`WITH d AS (DELETE ... RETURNING) INSERT ... GROUP BY
 * ... ON CONFLICT DO UPDATE`, one update per counter row, under
 * pg_try_advisory_xact_lock so that two nodes never do it at once), and the
 * reads of the counts add both tables, so they are exact at every moment.
 * The triggers themselves (deferred, per row) are unchanged.
 *
 * SQLite has one writer at a time: its triggers keep updating
 * executions_hourly directly, and this table stays empty there.
 */
static const char schema_v16[] = "CREATE TABLE executions_hourly_delta ("
                                 "  hour BIGINT NOT NULL,"
                                 "  status TEXT NOT NULL,"
                                 "  n BIGINT NOT NULL"
                                 ");"
                                 "CREATE INDEX executions_hourly_delta_hour"
                                 "  ON executions_hourly_delta (hour);";

static const char schema_v16_postgres[] =
    "CREATE OR REPLACE FUNCTION executions_hourly_count() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN"
    "  IF TG_OP <> 'INSERT' THEN"
    "   INSERT INTO executions_hourly_delta (hour, status, n)"
    "    VALUES (OLD.created_at / 3600000, OLD.status, -1);"
    "  END IF;"
    "  IF TG_OP <> 'DELETE' THEN"
    "   INSERT INTO executions_hourly_delta (hour, status, n)"
    "    VALUES (NEW.created_at / 3600000, NEW.status, 1);"
    "  END IF;"
    "  RETURN NULL;"
    " END $$;";

const struct store__migration_extra store__migration_extras[] = {
    {11, schema_v11_sqlite, schema_v11_postgres},
    {16, NULL, schema_v16_postgres},
};

const int store__migration_extra_count =
    (int)(sizeof(store__migration_extras) / sizeof(store__migration_extras[0]));

/*
 * Version 12: when each attempt became queued, as opposed to when it started
 * running: ready to run, its dependencies final and its back-off over (a
 * retry's is the end of its back-off). attempts.queued_at is written once,
 * with the attempt; task_runs.queued_at is its current (or next) attempt's,
 * so an execution taken up after a restart keeps it. NULL in rows written
 * before this version.
 */
static const char schema_v12[] = "ALTER TABLE task_runs ADD COLUMN queued_at BIGINT;"
                                 "ALTER TABLE attempts ADD COLUMN queued_at BIGINT;";

/*
 * Version 13: the web pages' sign-in sessions, in the store so that they
 * outlive a restart and every node sharing the database knows them. Only
 * hashes are kept: token_hash of the cookie's token (the lookup key) and
 * csrf_hash of the session's CSRF token; a copy of the table lets nobody
 * act as a signed-in browser. key_prefix finds the key again, key_id must
 * match it (keys are revoked, never deleted). sessions_expires_at: the
 * purge of ended sessions reads only those.
 */
static const char schema_v13[] =
    "CREATE TABLE sessions ("
    "  token_hash BYTEA NOT NULL PRIMARY KEY,"
    "  csrf_hash BYTEA NOT NULL,"
    "  key_id TEXT NOT NULL,"
    "  key_prefix TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  last_seen_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX sessions_expires_at ON sessions (expires_at);"
    "CREATE INDEX sessions_key_id ON sessions (key_id);";

/*
 * Version 14: the outbox of notifications. A row is written in the
 * transaction that records the status change it tells of, and sent after
 * that commit: `pending` until a node claims it (`sending`, claimed_by and a
 * lease_until after which another node may take it over), then `delivered`,
 * `pending` again at next_at after a failed attempt, or `failed` once its
 * attempts are used up. `request` holds how to send it (method, url or the
 * name of the variable holding it, headers, and the names of the variables
 * holding credentials: never their values); its id is the Idempotency-Key.
 * notifications_due holds only the rows not settled yet.
 */
static const char schema_v14[] =
    "CREATE TABLE notifications ("
    "  id TEXT NOT NULL PRIMARY KEY,"
    "  execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,"
    "  workflow TEXT NOT NULL,"
    "  event TEXT NOT NULL,"
    "  request TEXT NOT NULL,"
    "  body TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at BIGINT NOT NULL,"
    "  claimed_by TEXT,"
    "  lease_until BIGINT,"
    "  last_error TEXT,"
    "  response_code INTEGER,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX notifications_due ON notifications (next_at)"
    "  WHERE status IN ('pending', 'sending');"
    "CREATE INDEX notifications_execution ON notifications (execution_id, id);";

/*
 * Version 15: how far each node's clock is from the database's.
 * Registration and every heartbeat write the node's own clock minus the
 * database's at that statement (the node's clock goes in as a parameter, the
 * database's is the statement's own): orch doctor compares every live node's
 * offset, since leases and schedules go by the database's clock while logs,
 * timeouts and the instants a node writes go by its own.
 */
static const char schema_v15[] = "ALTER TABLE nodes ADD COLUMN clock_offset_ms BIGINT;";

const char *const store__migrations[] = {
    schema_v1,
    schema_v2,
    schema_v3,
    schema_v4,
    schema_v5,
    schema_v6,
    schema_v7,
    schema_v8,
    schema_v9,
    schema_v10,
    schema_v11,
    schema_v12,
    schema_v13,
    schema_v14,
    schema_v15,
    schema_v16,
};

const int store__migration_count = (int)(sizeof(store__migrations) / sizeof(store__migrations[0]));
