/* atfork.c: the fork handler registry (see atfork.h). The entries are
 * collected by the linker in the section reshim_atfork; they are ordered
 * once, at install (at most ATFORK_MAX, no allocation). */
#define _GNU_SOURCE
#include "atfork.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "real.h"
#include "reshim.h"

#define ATFORK_MAX 16

extern const struct atfork_entry __start_reshim_atfork[] __attribute__((visibility("hidden")));
extern const struct atfork_entry __stop_reshim_atfork[] __attribute__((visibility("hidden")));

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

static void run(int phase, int from, int to, int step)
{
    for (int i = from; i != to; i += step)
        order[i]->fn(phase);
}

static void prepare(void)
{
    fork_full = atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_ACTIVE;
    if (!fork_full)
        return;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &fork_mask);
    reshim_bind_symbols(); /* a handler's write() in the child must not bind */
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
    if (!fork_full)
        return;
    run(ATFORK_CHILD, count - 1, -1, -1);
    pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

void reshim_atfork_install(void)
{
    count = 0;
    for (const struct atfork_entry *e = __start_reshim_atfork; e < __stop_reshim_atfork; e++) {
        if (count == ATFORK_MAX)
            break;
        int i = count++;
        while (i > 0 && order[i - 1]->rank > e->rank) { /* insertion: stable by rank */
            order[i] = order[i - 1];
            i--;
        }
        order[i] = e;
    }
    pthread_atfork(prepare, parent, child);
}
