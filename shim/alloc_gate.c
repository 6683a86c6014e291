/* alloc_gate.c: where the allocation layer calls up into the memory
 * monitor: the check points (every 256 KiB of a thread's growth, looked at
 * after every 256 KiB it asks for or maps; every allocation or mapping of
 * 1 MiB or more) and the enforce gate's question
 * (memmon_deny, while the gate is armed and for every large request).
 *
 * The gate's armed flag is not kept here: memmon arms it in alloc_next.c,
 * below both (alloc_gate_set), with the other switches of the fast path.
 * So alloc.c and alloc_map.c call this file, this file calls memmon.c, and
 * memmon.c calls alloc_next.c and alloc_count.c: every call goes downward
 * (alloc_impl.h has the whole layer). Lazy init at a slow point of the
 * allocation layer (a growth step, a large request) is started here, never
 * in memmon.c: lifecycle.c calls memmon (its exit summary), so memmon
 * must not call lifecycle.c back.
 *
 * Only the slow path comes here (gated() and count_alloc's growth test are
 * inline, alloc_impl.h); both functions keep errno, and neither runs inside
 * the shim (the recursion guard): counting does, the monitor does not. */
#define _GNU_SOURCE
#include "alloc_impl.h"

#include "memmon.h"

__attribute__((noinline)) void growth_point(size_t sz)
{
    struct athr *t = &athr;
    t->growth = 0; /* the mappings' window too */
    struct tslot *s = t->slot;
    /* A thread's first window ends at its first allocation, before it
     * claims a slot: nothing grown yet. Without a slot to be had (table
     * full, exiting), every window is a check point; so is every large
     * allocation. */
    if (!s && t->slot_state == 0 && sz < BIG_ALLOC)
        return;
    if (s && sz < BIG_ALLOC) {
        int64_t held = slot_live_bytes(atomic_load_explicit(&s->live, RLX),
                                       atomic_load_explicit(&s->allocs, RLX),
                                       atomic_load_explicit(&s->frees, RLX)) +
                       t->mapped;
        if (held < t->low)
            t->low = held;
        if (held + (int64_t)sz - t->low < GROWTH_STEP)
            return; /* not grown by a step since the last check point */
        t->low = held + (int64_t)sz;
    }
    heap_peak_update();
    if (!reshim_guard && atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_NONE)
        reshim_init_slow(); /* a growth step is a slow point: init if no real call did */
    if (!reshim_guard && atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_ACTIVE) {
        int saved = errno; /* a malloc that succeeds leaves errno alone */
        memmon_growth(sz >= BIG_ALLOC ? sz : 0);
        errno = saved;
    }
}

__attribute__((noinline)) bool ask_gate(size_t n)
{
    int saved = errno; /* the caller sets ENOMEM itself when denied */
    /* A large request is a slow point too (the budget may be asked before
     * any growth step): init here, as above, so that memmon never calls up
     * into lifecycle.c. reshim_init_slow keeps errno. */
    if (atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_NONE)
        reshim_init_slow();
    bool deny = memmon_deny(n);
    errno = saved;
    return deny;
}
