/*
 * monitor.c - the resource monitor's settings (engine/monitor.h), read at
 * the start of `orch server` / `orch worker` and again on SIGHUP from the
 * config file (cli_setting).
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"
#include "cli.h"
#include "engine/monitor.h"

#include "base/banned.h"

/* "85%", "85" or "0.5%": a share in (0, 100]. */
static int parse_pct(const char *name, const char *v, double *out, struct err *err)
{
    char *end;
    double x;

    errno = 0;
    x = strtod(v, &end);
    if (end != v && *end == '%')
        end++;
    if (end == v || *end || errno || !isfinite(x) || x <= 0 || x > 100)
        return err_set(err, ERR_INVALID,
                       "invalid %s '%.64s' (use a percentage above 0 and up "
                       "to 100, such as 85%%)",
                       name, v);
    *out = x;
    return 0;
}

/* "1GiB", "512MiB", "100M", "4096", "0": bytes; or "5%" of the file system. */
static int parse_free(const char *name, const char *v, long long *bytes, double *pct,
                      struct err *err)
{
    static const struct {
        const char *suffix;
        long long mult;
    } units[] = {{"", 1},           {"B", 1},           {"K", 1LL << 10},
                 {"KB", 1LL << 10}, {"KiB", 1LL << 10}, {"M", 1LL << 20},
                 {"MB", 1LL << 20}, {"MiB", 1LL << 20}, {"G", 1LL << 30},
                 {"GB", 1LL << 30}, {"GiB", 1LL << 30}, {"T", 1LL << 40},
                 {"TB", 1LL << 40}, {"TiB", 1LL << 40}};
    char *end;
    double x;

    if (strchr(v, '%')) {
        *bytes = -1;
        return parse_pct(name, v, pct, err);
    }
    errno = 0;
    x = strtod(v, &end);
    if (end != v && !errno && isfinite(x) && x >= 0) {
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcasecmp(end, units[i].suffix))
                continue;
            if (x * (double)units[i].mult > 9e18)
                break;
            *bytes = (long long)(x * (double)units[i].mult);
            *pct = -1;
            return 0;
        }
    }
    return err_set(err, ERR_INVALID,
                   "invalid %s '%.64s' (use a size such as 1GiB or 500MiB, "
                   "or a percentage of the file system such as 5%%; 0 turns it off)",
                   name, v);
}

int cli_monitor_settings(const char *dir, struct engine_monitor_config *cfg, struct err *err)
{
    static const struct {
        const char *name;
        size_t off;
    } pcts[] = {
        {"ORCH_MEMORY_WARN", offsetof(struct engine_monitor_config, memory_warn_pct)},
        {"ORCH_MEMORY_HIGH_WATER", offsetof(struct engine_monitor_config, memory_high_pct)},
        {"ORCH_DISK_WARN", offsetof(struct engine_monitor_config, disk_warn_pct)},
        {"ORCH_FDS_WARN", offsetof(struct engine_monitor_config, fds_warn_pct)},
        {"ORCH_FDS_HIGH_WATER", offsetof(struct engine_monitor_config, fds_high_pct)},
    };
    const char *v;

    engine_monitor_config_init(cfg);
    cfg->dir = dir;
    v = cli_setting("ORCH_MONITOR_INTERVAL");
    if (v && *v) {
        struct err derr = ERR_INIT;
        if (clock_parse_duration(v, &cfg->interval_ms, &derr) || cfg->interval_ms < 100 ||
            cfg->interval_ms > 3600 * 1000)
            return err_set(err, ERR_INVALID,
                           "invalid ORCH_MONITOR_INTERVAL '%.64s' (use 100ms "
                           "to 1h, such as 5s)",
                           v);
    }
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        v = cli_setting(pcts[i].name);
        if (v && *v && parse_pct(pcts[i].name, v, (double *)((char *)cfg + pcts[i].off), err))
            return err->code;
    }
    v = cli_setting("ORCH_DISK_HIGH_WATER");
    if (v && *v &&
        parse_free("ORCH_DISK_HIGH_WATER", v, &cfg->disk_min_free, &cfg->disk_min_free_pct, err))
        return err->code;
    return 0;
}
