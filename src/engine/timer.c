#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "engine_internal.h"

#include "base/banned.h"

static void sift_up(struct timer_heap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        struct timer tmp;
        if (h->items[p].at <= h->items[i].at)
            break;
        tmp = h->items[p];
        h->items[p] = h->items[i];
        h->items[i] = tmp;
        i = p;
    }
}

static void sift_down(struct timer_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct timer tmp;
        if (l < h->n && h->items[l].at < h->items[m].at)
            m = l;
        if (r < h->n && h->items[r].at < h->items[m].at)
            m = r;
        if (m == i)
            break;
        tmp = h->items[m];
        h->items[m] = h->items[i];
        h->items[i] = tmp;
        i = m;
    }
}

void engine__timer_add(struct timer_heap *h, const struct timer *t)
{
    XGROW(h->items, h->alloc, h->n + 1);
    h->items[h->n] = *t;
    sift_up(h, h->n);
    h->n++;
}

const struct timer *engine__timer_peek(const struct timer_heap *h)
{
    return h->n ? &h->items[0] : NULL;
}

void engine__timer_pop(struct timer_heap *h, struct timer *out)
{
    *out = h->items[0];
    h->n--;
    if (h->n) {
        h->items[0] = h->items[h->n];
        sift_down(h, 0);
    }
}

void engine__timer_purge(struct timer_heap *h, const struct exec *ex, const struct proc *proc)
{
    size_t w = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct timer *t = &h->items[i];
        if ((ex && t->ex == ex) || (proc && t->proc == proc))
            continue;
        h->items[w++] = *t;
    }
    if (w == h->n)
        return;
    h->n = w;
    /* Rebuild the heap property bottom-up. */
    for (size_t i = h->n / 2 + 1; i-- > 0;)
        sift_down(h, i);
}

void engine__timer_release(struct timer_heap *h)
{
    free(h->items);
    memset(h, 0, sizeof(*h));
}
