/* stats.c: the counters and the destination table. Lock-free: a slot is
 * claimed by CAS and published once its name is written; never freed. */
#define _GNU_SOURCE
#include "stats.h"

#include <string.h>

#include "atfork.h"
#include "log.h"
#include "reshim.h"
#include "snapshot.h"

struct reshim_stats reshim_stats;

/* The counters' classes and replay cases are the snapshot's, in its order:
 * their names are the snapshot's (snap_class_names, snap_replay_case_names). */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(NC_CONNECT, SNAP_CONNECT) && SAME(NC_DNS, SNAP_DNS) && SAME(NC_SEND, SNAP_SEND) &&
                   SAME(NC_RECV, SNAP_RECV) && SAME(NC_COUNT, SNAP_CLASSES),
               "net classes in the snapshot's order");
_Static_assert(SAME(RPC_NOTHING, SNAP_RP_NOTHING) && SAME(RPC_HELLO, SNAP_RP_HELLO) &&
                   SAME(RPC_REQUEST, SNAP_RP_REQUEST) && SAME(RPC_COUNT, SNAP_RP_CASES),
               "replay cases in the snapshot's order");
#undef SAME

static void zero_replay(struct replay_counters *r)
{
    for (int c = 0; c < RPC_COUNT; c++)
        atomic_store(&r->replays[c], 0);
    atomic_store(&r->recovered, 0);
    atomic_store(&r->gave_up, 0);
}

static uint32_t fnv1a(const char *s, uint8_t dir)
{
    uint32_t h = 2166136261u ^ dir;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h ? h : 1;
}

uint16_t reshim_dest_lookup(const struct sockaddr *sa, socklen_t len, enum dest_dir dir)
{
    char name[DEST_NAME_MAX];
    dest_format(sa, len, name, sizeof name);
    uint32_t h = fnv1a(name, (uint8_t)dir);
    for (unsigned probe = 0; probe < DEST_SLOTS - 1; probe++) {
        unsigned i = 1 + (h + probe) % (DEST_SLOTS - 1);
        struct dest_slot *s = &reshim_stats.dest[i];
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == 0) {
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong_explicit(&s->state, &expected, 1,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                s->hash = h;
                s->dir = (uint8_t)dir;
                memcpy(s->name, name, sizeof name);
                atomic_store_explicit(&s->state, 2, memory_order_release);
                atomic_fetch_add_explicit(&reshim_stats.dest_used, 1, memory_order_relaxed);
                return (uint16_t)i;
            }
            st = expected;
        }
        /* Being claimed by another thread (or by code this signal interrupted):
         * wait a bounded time for its name. */
        for (int spin = 0; st == 1 && spin < 10000; spin++)
            st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == 2 && s->hash == h && s->dir == dir && strcmp(s->name, name) == 0)
            return (uint16_t)i;
    }
    atomic_fetch_add_explicit(&reshim_stats.dest_overflow, 1, memory_order_relaxed);
    return 0;
}

static void zero_counters(struct net_counters *c)
{
    atomic_store(&c->calls, 0);
    atomic_store(&c->failures, 0);
    atomic_store(&c->retries, 0);
    atomic_store(&c->recovered, 0);
    atomic_store(&c->gave_up, 0);
}

void reshim_stats_reset(void)
{
    for (int c = 0; c < NC_COUNT; c++)
        zero_counters(&reshim_stats.net[c]);
    atomic_store(&reshim_stats.dns_stale_answers, 0);
    atomic_store(&reshim_stats.nonblock_pending, 0);
    atomic_store(&reshim_stats.dest_overflow, 0);
    zero_replay(&reshim_stats.replay);
    atomic_store(&reshim_stats.replay_over_max, 0);
    /* replay_held_bytes: the child frees its inherited slots (replay.c's fork handler). */
    for (unsigned i = 0; i < DEST_SLOTS; i++) {
        struct dest_slot *s = &reshim_stats.dest[i];
        zero_counters(&s->connect);
        atomic_store(&s->sends, 0);
        atomic_store(&s->recvs, 0);
        atomic_store(&s->bytes_out, 0);
        atomic_store(&s->bytes_in, 0);
        atomic_store(&s->io_failures, 0);
        atomic_store(&s->skipped_breaker, 0);
        atomic_store(&s->skipped_budget, 0);
        atomic_store(&s->skipped_filter, 0);
        atomic_store(&s->last_error, 0);
        zero_replay(&s->replay);
        atomic_store(&s->replay_logged, 0);
        memset(&s->breaker, 0, sizeof s->breaker);
        memset(&s->budget, 0, sizeof s->budget);
    }
}

size_t reshim_stats_summary(char *buf, size_t n)
{
    size_t at = 0;
    for (int c = 0; c < NC_COUNT && at + 1 < n; c++) {
        struct net_counters *k = &reshim_stats.net[c];
        at += reshim_format(buf + at, n - at,
                            "%s%s calls=%llu failures=%llu retries=%llu recovered=%llu "
                            "gave_up=%llu",
                            c ? "; " : "", snap_class_names[c],
                            (unsigned long long)atomic_load(&k->calls),
                            (unsigned long long)atomic_load(&k->failures),
                            (unsigned long long)atomic_load(&k->retries),
                            (unsigned long long)atomic_load(&k->recovered),
                            (unsigned long long)atomic_load(&k->gave_up));
    }
    if (at + 1 < n)
        at += reshim_format(buf + at, n - at, "; dns_stale=%llu; destinations=%u",
                            (unsigned long long)atomic_load(&reshim_stats.dns_stale_answers),
                            (unsigned)atomic_load(&reshim_stats.dest_used));
    return at;
}

/* fork child: the counters start again at zero (the parent keeps its own). */
static void stats_atfork(int phase)
{
    if (phase == ATFORK_CHILD)
        reshim_stats_reset();
}
RESHIM_ATFORK(stats_atfork, ATFORK_RANK_STATS);

/* ---- the snapshot of the counters ---------------------------------------- */

static void copy_calls(struct snap_calls *d, struct net_counters *c)
{
    d->calls = ATOMIC_LOAD(&c->calls);
    d->failures = ATOMIC_LOAD(&c->failures);
    d->retries = ATOMIC_LOAD(&c->retries);
    d->recovered = ATOMIC_LOAD(&c->recovered);
    d->gave_up = ATOMIC_LOAD(&c->gave_up);
}

static void copy_replay(struct snap_replay *d, const struct replay_counters *c)
{
    for (int i = 0; i < RPC_COUNT; i++)
        d->replays[i] = ATOMIC_LOAD(&c->replays[i]);
    d->recovered = ATOMIC_LOAD(&c->recovered);
    d->gave_up = ATOMIC_LOAD(&c->gave_up);
}

static bool dest_used(const struct snap_dest *d)
{
    return d->connect.calls || d->connect.failures || d->sends || d->recvs || d->io_failures ||
           d->skipped_breaker || d->skipped_budget || d->skipped_filter;
}

void stats_snapshot(struct reshim_snapshot *s, const struct breaker_params *bp, uint64_t now)
{
    for (int c = 0; c < NC_COUNT; c++)
        copy_calls(&s->net[c], &reshim_stats.net[c]);
    s->dns_stale = ATOMIC_LOAD(&reshim_stats.dns_stale_answers);
    s->dest_overflow = ATOMIC_LOAD(&reshim_stats.dest_overflow);
    copy_replay(&s->replay, &reshim_stats.replay);
    s->replay_over_max = ATOMIC_LOAD(&reshim_stats.replay_over_max);
    s->replay_held_bytes = ATOMIC_LOAD(&reshim_stats.replay_held_bytes);
    s->replay_held_peak_bytes = ATOMIC_LOAD(&reshim_stats.replay_held_peak);
    unsigned nd = 0;
    for (unsigned i = 1; i <= DEST_SLOTS && nd < SNAP_DESTS; i++) {
        unsigned slot = i % DEST_SLOTS; /* slot 0 (the overflow) last */
        struct dest_slot *ds = &reshim_stats.dest[slot];
        if (slot && atomic_load_explicit(&ds->state, memory_order_acquire) != 2)
            continue;
        struct snap_dest *d = &s->dest[nd];
        memset(d, 0, sizeof *d);
        copy_calls(&d->connect, &ds->connect);
        d->sends = ATOMIC_LOAD(&ds->sends);
        d->recvs = ATOMIC_LOAD(&ds->recvs);
        d->bytes_out = ATOMIC_LOAD(&ds->bytes_out);
        d->bytes_in = ATOMIC_LOAD(&ds->bytes_in);
        d->io_failures = ATOMIC_LOAD(&ds->io_failures);
        d->skipped_breaker = ATOMIC_LOAD(&ds->skipped_breaker);
        d->skipped_budget = ATOMIC_LOAD(&ds->skipped_budget);
        d->skipped_filter = ATOMIC_LOAD(&ds->skipped_filter);
        copy_replay(&d->replay, &ds->replay);
        /* A fork child keeps the parent's names with zeroed counters: a row
         * only for destinations this process used. */
        if (!dest_used(d))
            continue;
        snap_word(d->dest, sizeof d->dest, slot ? ds->name : "(other)");
        snap_word(d->dir, sizeof d->dir, ds->dir == DEST_IN ? "in" : "out");
        int err = (int)ATOMIC_LOAD(&ds->last_error);
        if (err) {
            char eb[16];
            snap_word(d->last_error, sizeof d->last_error, reshim_errno_name(err, eb));
        }
        snap_word(d->breaker, sizeof d->breaker,
                  breaker_state_name(breaker_state(&ds->breaker, bp, now)));
        nd++;
    }
    s->ndest = nd;
}
