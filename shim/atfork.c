/* atfork.c: the fork handler registry (see atfork.h). The entries are
 * collected by the linker in the section reshim_atfork; they are ordered
 * once, at the first fork that runs them (at most ATFORK_MAX, no
 * allocation). */
#define _GNU_SOURCE
#include "atfork.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>

#include "real.h"
#include "reshim.h"

#define ATFORK_MAX 16

extern const struct atfork_entry __start_reshim_atfork[] __attribute__((visibility("hidden")));
extern const struct atfork_entry __stop_reshim_atfork[] __attribute__((visibility("hidden")));

/* This object's handle, which pthread_atfork (glibc's libc_nonshared.a)
 * passes to __register_atfork: crtbeginS.o's, which the library is linked
 * without (-nostartfiles, Makefile). Its own address, as there: an address
 * of this object and of no other. */
void *__dso_handle __attribute__((visibility("hidden"))) = &__dso_handle;

static const struct atfork_entry *order[ATFORK_MAX]; /* ascending rank */
static int count;

/* Signals stay blocked from prepare to parent/child: a handler that calls
 * close() or poll() mid-fork must never find our locks held by its own
 * thread (glibc runs the handlers and _Fork with signals open). */
static TLS_IE sigset_t fork_mask;
/* The handlers are installed at load (boot), before init: a process not
 * active (yet, or disabled) forks with nothing of ours to lock; its child
 * only learns its pid. */
static TLS_IE bool fork_full;

/* The entries in rank order, done at the first fork of an active process
 * (not at load: /bin/true never forks). Should two threads' forks run
 * prepare at once (a glibc that runs the handlers without a lock of its
 * own), one orders and the other waits for it. */
static void order_once(void)
{
    static atomic_int state; /* 0, 1: ordering, 2: done */
    int expected = 0;
    if (atomic_load_explicit(&state, memory_order_acquire) == 2)
        return;
    if (!atomic_compare_exchange_strong(&state, &expected, 1)) {
        while (atomic_load_explicit(&state, memory_order_acquire) != 2)
            sched_yield();
        return;
    }
    int n = 0;
    for (const struct atfork_entry *e = __start_reshim_atfork; e < __stop_reshim_atfork; e++) {
        if (n == ATFORK_MAX)
            break;
        int i = n++;
        while (i > 0 && order[i - 1]->rank > e->rank) { /* insertion: stable by rank */
            order[i] = order[i - 1];
            i--;
        }
        order[i] = e;
    }
    count = n;
    atomic_store_explicit(&state, 2, memory_order_release);
}

static void run(int phase, int from, int to, int step)
{
    for (int i = from; i != to; i += step)
        order[i]->fn(phase);
}

/* Another thread initialising (it takes microseconds, and none of the
 * locks fork takes after these handlers): waited for, so that the child
 * does not inherit a state half made, which no thread of its own would
 * finish (its first call would wait for ever: 3 children in 300 forks made
 * while another thread made the first call). Not when this thread is inside
 * the shim (a handler that interrupted its own init). */
static void wait_init(void)
{
    if (reshim_guard)
        return;
    while (atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_INITIALISING)
        sched_yield();
}

static void prepare(void)
{
    wait_init();
    fork_full = atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_ACTIVE;
    if (!fork_full)
        return;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &fork_mask);
    reshim_bind_symbols(); /* a handler's write() in the child must not bind */
    order_once();
    run(ATFORK_PREPARE, 0, count, 1);
}

static void parent(void)
{
    if (!fork_full)
        return;
    run(ATFORK_PARENT, count - 1, -1, -1);
    pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

static void child(void)
{
    reshim_owner_set();
    /* Still half made (this thread's own init was interrupted by the fork):
     * the child passes everything through rather than wait for ever. */
    int initialising = RS_INITIALISING;
    atomic_compare_exchange_strong(&reshim_state, &initialising, RS_DISABLED);
    if (!fork_full)
        return;
    run(ATFORK_CHILD, count - 1, -1, -1);
    pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

void reshim_atfork_install(void)
{
    pthread_atfork(prepare, parent, child);
}
