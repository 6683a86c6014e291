/* atfork.h: the fork handler registry (cwrap's habit). Each module that
 * holds a lock or per-process state registers its own handler next to it,
 *     RESHIM_ATFORK(dns_atfork, ATFORK_RANK_DNS);
 * and atfork.c installs one pthread_atfork that runs them all: prepare in
 * ascending rank (the order the locks are taken), parent and child in
 * descending rank (released in reverse; per-process state reset after the
 * locks it may need are usable again). Nobody calls a module's handler by
 * hand. Signals stay blocked from prepare to parent/child, the real symbols
 * are bound before any lock is taken, and the child's owner pid is set
 * before any handler runs. */
#ifndef RESHIM_ATFORK_H
#define RESHIM_ATFORK_H

enum atfork_phase { ATFORK_PREPARE, ATFORK_PARENT, ATFORK_CHILD };

/* The ranks: one place to read the lock order. */
enum atfork_rank {
    ATFORK_RANK_SERVER = 10,   /* child: a new stats thread, socket, clock */
    ATFORK_RANK_STATS = 20,    /* child: counters zeroed */
    ATFORK_RANK_MEMMON = 30,   /* child: the kept statm fd shows the parent */
    ATFORK_RANK_REPLAY = 35,   /* child: inherited connections never replayed */
    ATFORK_RANK_DNS = 40,      /* the answer cache's mutex */
    ATFORK_RANK_NBCONN = 50,   /* the non-blocking connect table's mutex */
    ATFORK_RANK_ALLOC = 60,    /* the mapping table's lock (alloc_map.c) */
    ATFORK_RANK_ALLOC_COUNT = 62, /* child: allocation counts zeroed (alloc_count.c) */
    ATFORK_RANK_HEAPPROF = 70, /* the heap profile's lock */
};

struct atfork_entry {
    void (*fn)(int phase); /* enum atfork_phase */
    int rank;
};

#define RESHIM_ATFORK(fn, rank)                                                       \
    static const struct atfork_entry atfork_entry_##fn                                \
        __attribute__((used, section("reshim_atfork"), aligned(sizeof(void *)))) = { \
            (fn), (rank)}

/* Installs the one pthread_atfork (lifecycle.c, at init). */
__attribute__((visibility("hidden"))) void reshim_atfork_install(void);

#endif
