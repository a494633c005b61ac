/*
 * hooks.c - the registry of the subsystems' commit hooks (hooks.h).
 */
#include "base/xalloc.h"
#include "engine_internal.h"
#include "hooks.h"
#include "base/banned.h"

void engine__hook_add(struct engine *eng, const struct engine_hook *h, void *arg)
{
    for (size_t i = 0; i < eng->nhooks; i++)
        if (eng->hooks[i].h == h && eng->hooks[i].arg == arg)
            return; /* once */
    XGROW(eng->hooks, eng->hooks_alloc, eng->nhooks + 1);
    eng->hooks[eng->nhooks].h = h;
    eng->hooks[eng->nhooks++].arg = arg;
}

int engine__hooks_pending(const struct engine *eng)
{
    for (size_t i = 0; i < eng->nhooks; i++)
        if (eng->hooks[i].h->pending && eng->hooks[i].h->pending(eng, eng->hooks[i].arg))
            return 1;
    return 0;
}

int engine__hooks_commit(struct engine *eng, enum engine_hook_phase phase, struct err *err)
{
    for (size_t i = 0; i < eng->nhooks; i++) {
        const struct engine_hook *h = eng->hooks[i].h;
        int rc;
        if (h->phase != phase || !h->commit)
            continue;
        rc = h->commit(eng, eng->hooks[i].arg, err);
        if (rc)
            return rc;
    }
    return 0;
}

void engine__hooks_committed(struct engine *eng)
{
    for (size_t i = 0; i < eng->nhooks; i++)
        if (eng->hooks[i].h->committed)
            eng->hooks[i].h->committed(eng, eng->hooks[i].arg);
}

int engine__hooks_failed(struct engine *eng, int rc)
{
    int again = 0;
    for (size_t i = 0; i < eng->nhooks; i++)
        if (eng->hooks[i].h->failed && eng->hooks[i].h->failed(eng, eng->hooks[i].arg, rc))
            again = 1;
    return again;
}
