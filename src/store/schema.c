/*
 * schema.c - the store's schema as ordered migration steps, shared by the
 * backends.
 *
 * Rules for a step (docs/internals/store.md has the reasons):
 * - never edit a step that has shipped; add a new one at the end;
 * - keep it portable to PostgreSQL: TEXT, INTEGER, BIGINT, BYTEA, PRIMARY
 *   KEY / REFERENCES / CREATE INDEX, no AUTOINCREMENT, WITHOUT ROWID, STRICT
 *   or other SQLite-only syntax, no reserved words as names;
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

const char *const store__migrations[] = {
    schema_v1,
};

const int store__migration_count = (int)(sizeof(store__migrations) / sizeof(store__migrations[0]));
