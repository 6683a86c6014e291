/* alloc_count.c: the allocation layer's figures: this thread's state on the
 * malloc path (one initial-exec TLS block), the per-thread counter slots of
 * the malloc family, the mapping counters, and alloc_totals, their sum.
 *
 * One writer per slot (its thread, with plain stores: alloc_impl.h's
 * slot_add), readers sum every slot. A thread claims a slot at its first
 * counted call and gives it back when it exits (a pthread key's
 * destructor); until it has one, and when the table is full, it counts in
 * a shared slot with atomic read-modify-writes. Counting never depends on
 * the recursion guard (an allocation made inside the shim is freed by the
 * app later), so live bytes stay exact.
 *
 * The bottom of the allocation layer (alloc_impl.h): calls nothing of the
 * shim above it; memmon.c reads alloc_totals.
 *
 * Never: allocates (pthread_setspecific may: its allocations count in the
 * shared slot while this thread's claim is under way), takes a lock, or
 * frees anything at exit. */
#define _GNU_SOURCE
#include "alloc_impl.h"

#include <pthread.h>
#include <string.h>

#include "atfork.h"

TLS_IE struct athr athr;

#define SLOTS 4096

static struct tslot slots[SLOTS];
static struct tslot shared_slot; /* threads without a slot: atomic read-modify-write */
static atomic_int slots_hw;
/* Written at check points only; kept off the cache line the malloc path reads. */
static _Atomic uint64_t heap_peak __attribute__((aligned(64)));

static pthread_key_t slot_key;
static atomic_int key_state; /* 0 none, 1 creating, 2 ready, 3 failed */

static _Atomic uint64_t map_bytes __attribute__((aligned(64)));
static _Atomic uint64_t map_peak, map_calls, unmap_calls, map_untracked;

static void slot_release(void *v)
{
    struct tslot *s = v;
    athr.slot = NULL;
    athr.slot_state = 3; /* later frees of this thread go to the shared slot */
    atomic_store_explicit(&s->used, 0, memory_order_release);
}

static struct tslot *slot_claim(void)
{
    athr.slot_state = 1; /* allocations made below count in the shared slot */
    int ks = atomic_load_explicit(&key_state, memory_order_acquire);
    if (ks == 0) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&key_state, &expected, 1)) {
            ks = pthread_key_create(&slot_key, slot_release) == 0 ? 2 : 3;
            atomic_store_explicit(&key_state, ks, memory_order_release);
        }
    }
    if (ks != 2) { /* being created by another thread, or failed: try next time */
        athr.slot_state = ks == 3 ? 3 : 0;
        return NULL;
    }
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        if (atomic_load_explicit(&slots[i].used, RLX) == 0 &&
            atomic_compare_exchange_strong_explicit(&slots[i].used, &expected, 1,
                                                    memory_order_acquire, RLX)) {
            int hw = atomic_load(&slots_hw);
            while (hw < i + 1 && !atomic_compare_exchange_weak(&slots_hw, &hw, i + 1))
                ;
            if (pthread_setspecific(slot_key, &slots[i]) != 0) {
                atomic_store_explicit(&slots[i].used, 0, memory_order_release);
                break;
            }
            athr.slot = &slots[i];
            athr.slot_state = 2;
            return athr.slot;
        }
    }
    athr.slot_state = 3; /* table full: this thread uses the shared slot */
    return NULL;
}

/* One slot's three counts as of one moment: its live counts 8 bytes per
 * block its allocs and frees account for (CHUNK_EXTRA), so a reader that
 * took them apart while the owner allocated would be off by 8 a call, and
 * by any number if it was preempted between the loads. Read again while
 * the counts move (at most one call of the owner in flight: 8 bytes). */
static void slot_read(struct tslot *s, int64_t *live, uint64_t *allocs, uint64_t *frees)
{
    for (int tries = 0;; tries++) {
        uint64_t a = atomic_load_explicit(&s->allocs, memory_order_acquire);
        uint64_t f = atomic_load_explicit(&s->frees, memory_order_acquire);
        *live = atomic_load_explicit(&s->live, memory_order_acquire);
        *allocs = atomic_load_explicit(&s->allocs, memory_order_acquire);
        *frees = atomic_load_explicit(&s->frees, memory_order_acquire);
        if ((a == *allocs && f == *frees) || tries == 8)
            return;
    }
}

/* Every slot's live, allocs and frees, summed (the shared slot's too). */
static void slots_sum(int64_t *live, uint64_t *allocs, uint64_t *frees)
{
    slot_read(&shared_slot, live, allocs, frees);
    int hw = atomic_load_explicit(&slots_hw, RLX);
    for (int i = 0; i < hw; i++) {
        int64_t l;
        uint64_t a, f;
        slot_read(&slots[i], &l, &a, &f);
        *live += l;
        *allocs += a;
        *frees += f;
    }
}

static int64_t live_sum(void)
{
    int64_t live;
    uint64_t allocs, frees;
    slots_sum(&live, &allocs, &frees);
    return slot_live_bytes(live, allocs, frees);
}

static void peak_update(int64_t live)
{
    if (live <= 0)
        return;
    uint64_t p = atomic_load_explicit(&heap_peak, RLX);
    while ((uint64_t)live > p &&
           !atomic_compare_exchange_weak_explicit(&heap_peak, &p, (uint64_t)live, RLX, RLX))
        ;
}

void heap_peak_update(void)
{
    peak_update(live_sum());
}

__attribute__((noinline)) void count_slow(int64_t d, bool alloc)
{
    struct tslot *s = athr.slot_state == 0 ? slot_claim() : athr.slot;
    d += alloc ? CHUNK_EXTRA : -CHUNK_EXTRA;
    if (s) {
        slot_add(&s->live, d);
        slot_inc(alloc ? &s->allocs : &s->frees);
    } else {
        atomic_fetch_add_explicit(&shared_slot.live, d, RLX);
        atomic_fetch_add_explicit(alloc ? &shared_slot.allocs : &shared_slot.frees, 1, RLX);
    }
}

/* ---- mappings ---------------------------------------------------------------- */

void map_account(uint64_t removed, uint64_t added)
{
    uint64_t now = atomic_load_explicit(&map_bytes, RLX) - removed + added;
    atomic_store_explicit(&map_bytes, now, RLX);
    if (now > atomic_load_explicit(&map_peak, RLX))
        atomic_store_explicit(&map_peak, now, RLX);
}

void map_count(enum map_event e)
{
    atomic_fetch_add_explicit(e == MAP_EV_MAP     ? &map_calls
                              : e == MAP_EV_UNMAP ? &unmap_calls
                                                  : &map_untracked,
                              1, RLX);
}

/* ---- figures, fork ------------------------------------------------------------ */

void alloc_totals(struct alloc_totals *t)
{
    memset(t, 0, sizeof *t);
    int64_t live;
    slots_sum(&live, &t->allocs, &t->frees);
    t->heap_live = slot_live_bytes(live, t->allocs, t->frees);
    peak_update(t->heap_live);
    t->heap_peak = atomic_load_explicit(&heap_peak, RLX);
    t->mmap_anon = atomic_load_explicit(&map_bytes, RLX);
    t->mmap_anon_peak = atomic_load_explicit(&map_peak, RLX);
    t->mmaps = atomic_load_explicit(&map_calls, RLX);
    t->munmaps = atomic_load_explicit(&unmap_calls, RLX);
    t->untracked = atomic_load_explicit(&map_untracked, RLX);
}

/* fork, in the child: it holds the same blocks and mappings (live bytes
 * stay), but its own counts start at zero; the other threads' slots are
 * free again. */
static void count_atfork(int phase)
{
    if (phase != ATFORK_CHILD)
        return;
    int hw = atomic_load(&slots_hw);
    for (int i = 0; i <= hw; i++) { /* the live counts lose what went with the counts */
        struct tslot *s = i < hw ? &slots[i] : &shared_slot;
        atomic_store(&s->live, slot_live_bytes(atomic_load(&s->live), atomic_load(&s->allocs),
                                               atomic_load(&s->frees)));
        atomic_store(&s->allocs, 0);
        atomic_store(&s->frees, 0);
        if (i < hw && s != athr.slot)
            atomic_store(&s->used, 0);
    }
    int64_t live = live_sum();
    atomic_store(&heap_peak, live > 0 ? (uint64_t)live : 0);
    atomic_store(&map_peak, atomic_load(&map_bytes));
    atomic_store(&map_calls, 0);
    atomic_store(&unmap_calls, 0);
    atomic_store(&map_untracked, 0);
}
RESHIM_ATFORK(count_atfork, ATFORK_RANK_ALLOC_COUNT);
