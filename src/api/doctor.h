/*
 * doctor.h - `orch doctor` and GET /v1/doctor: every check of the
 * troubleshooting guide, run by orch itself, each answered in one line:
 * its name, a level (ok, warn, fail), what was found and what to do.
 *
 * One function builds the report for both callers: the CLI on a local data
 * directory or DATABASE_URL (no server: the figures only a running server
 * has are said to be unknown), and the server's handler (with its engine's
 * figures, its pool and the refused keys it saw). Reads only: the checks
 * never write to the store.
 *
 * Threading: doctor_run() uses the store it is given from the calling
 * thread only; it is safe to run on several threads with their own stores.
 */
#ifndef ORCH_API_DOCTOR_H
#define ORCH_API_DOCTOR_H

#include <jansson.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/monitor.h"
#include "store/store.h"

struct api_redis;
struct redis_target;

/* What the checks look at. Every pointer is borrowed. */
struct doctor_input {
    const char *location;   /* the store's location (data directory or database URL) */
    int postgres;           /* the location is a PostgreSQL database */
    const char *data_dir;   /* the data directory (its disk); may not exist on PostgreSQL */
    const char *log_path;   /* where the server's log goes (a file), or NULL */
    struct store *st;       /* an open store, or NULL when it could not be opened */
    const char *open_error; /* st NULL: why */
    double connect_ms;      /* how long opening (or a ping) took */
    int64_t lease_ms;       /* the nodes' lease: older heartbeats are dead */
    /* A running server's own figures; NULL (and -1) from the CLI. */
    const struct engine_stats *es;
    json_t *pool;      /* {"kind", "size", "inUse", "waiting", "exhausted",
                        *  "exhaustedLastHour", "timeoutMs"} */
    json_t *authfails; /* api__authfails_json() */
    long long fds_open, fds_limit;
    /* The resource monitor's state (a server's; NULL from the CLI). */
    const struct engine_monitor_state *monitor;
    /* Memory use warned about from mem_warn_pct, failed from mem_high_pct
     * (ORCH_MEMORY_WARN and ORCH_MEMORY_HIGH_WATER); 0: 85 and 95. */
    double mem_warn_pct, mem_high_pct;
    /* Redis (ORCH_REDIS_URL): the server's HTTP threads' (api_redis), else the CLI's
     * parsed target (redis); both NULL: not configured. */
    struct api_redis *api_redis;
    const struct redis_target *redis;
    const char *redis_invalid; /* the CLI's ORCH_REDIS_URL does not parse: why */
};

/*
 * Run every check. Returns a new object (json_decref):
 *   {"status": "ok"|"warn"|"fail", "mode": "local"|"server", "version",
 *    "checkedAt", "counts": {"ok", "warn", "fail"},
 *    "checks": [{"name", "level", "found", "fix"}]}
 * where "fix" is null when there is nothing to do. The text never holds a
 * key or a password.
 */
json_t *doctor_run(const struct doctor_input *in);

/*
 * What a failure to open the database means, from its message (libpq's or
 * SQLite's): a short cause ("wrong credentials", "database missing", "TLS",
 * "unreachable", ...) and what to do. Pure.
 */
void doctor_db_cause(const char *msg, const char **out_cause, const char **out_fix);

/* This machine's own time zone: $TZ, else /etc/localtime's name, else "UTC",
 * into out. */
void doctor_local_zone(char *out, size_t outlen);

#endif
