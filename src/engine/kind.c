/*
 * kind.c - the table of task kinds (kind.h): one line per kind.
 */
#include <stddef.h>

#include "dag/dag.h"
#include "kind.h"

#include "base/banned.h"

static const struct task_kind *const kinds[] = {
    [TASK_COMMAND] = &engine__kind_command,
    [TASK_NOOP] = &engine__kind_noop,
    [TASK_SLEEP] = &engine__kind_sleep,
    [TASK_HTTP] = &engine__kind_http,
    [TASK_WORKFLOW] = &engine__kind_workflow,
};

const struct task_kind *engine__kind(const struct dag_task *t)
{
    return kinds[t->type];
}
