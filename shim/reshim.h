/* reshim.h: what every file of the preload object shares: visibility, the
 * per-thread recursion guard, the monotonic clock, and the lifecycle entry
 * points. Nothing here allocates or takes a lock. */
#ifndef RESHIM_H
#define RESHIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The C library: glibc defines __GLIBC__ (features.h, included above);
 * musl defines nothing of its own, and musl-gcc is the only other build. */
#ifdef __GLIBC__
#define RESHIM_GLIBC 1
#else
#define RESHIM_MUSL 1
#endif

/* RESHIM_VERSION, the version string ("MAJOR.MINOR.PATCH"), comes from the build: the
 * Makefile's VERSION, passed as -DRESHIM_VERSION. No default here, so that
 * nothing else holds a copy: a compile without it fails where it is used. */

#define EXPORT __attribute__((visibility("default")))
#define HIDDEN __attribute__((visibility("hidden")))

/* An allocation this large is a slow point: the allocation layer checks
 * memory (and initialises the shim) at it, and the heap profiler
 * initialises the shim before deciding whether to sample it. */
#define BIG_ALLOC (1024 * 1024)
#define TLS_IE __thread __attribute__((tls_model("initial-exec")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define RLX memory_order_relaxed
#define ATOMIC_INC(p) atomic_fetch_add_explicit((p), 1, RLX)
#define ATOMIC_ADD(p, n) atomic_fetch_add_explicit((p), (n), RLX)
#define ATOMIC_LOAD(p) atomic_load_explicit((p), RLX)
#define ATOMIC_STORE(p, v) atomic_store_explicit((p), (v), RLX)

struct reshim_config;

/* state.c: read by every file, written by lifecycle.c only */
extern TLS_IE int reshim_guard;           /* >0: inside the shim on this thread */
extern atomic_int reshim_state;           /* enum reshim_state */
enum reshim_state { RS_NONE, RS_INITIALISING, RS_ACTIVE, RS_DISABLED, RS_TORN_DOWN };

HIDDEN const struct reshim_config *reshim_cfg(void);
HIDDEN struct reshim_config *reshim_cfg_edit(void); /* lifecycle.c's init only */
HIDDEN bool reshim_in_foreign_child(void); /* vfork/clone child sharing our memory */
HIDDEN void reshim_owner_set(void);        /* this process owns the state (init, fork child) */
HIDDEN uint64_t reshim_random(void);       /* per-thread xorshift, never 0 */
HIDDEN uint64_t reshim_now_ns(void);        /* CLOCK_MONOTONIC */

/* A slow point (a connect, a retry, a failed lookup, a heap growth step):
 * where late work may start (the stats thread, once the process is 100 ms
 * old). The work arms itself (server.c, with reshim_late_arm); the callers
 * never depend on it. Preserves errno. */
extern atomic_int reshim_late_armed;
HIDDEN void reshim_late_arm(void (*fn)(void)); /* fn runs at the next slow point */
HIDDEN void reshim_late_run(void);
static inline void reshim_slow_point(void)
{
    if (unlikely(atomic_load_explicit(&reshim_late_armed, memory_order_relaxed)))
        reshim_late_run();
}

/* lifecycle.c */
HIDDEN void reshim_init_slow(void);

/* own.c: the shim's own threads and descriptors */
/* Starts one of the shim's own threads: detached, with the given stack
 * size, every signal blocked (so no app handler ever runs there), created
 * under the guard. Returns pthread_create's result. */
HIDDEN int reshim_thread_start(void *(*fn)(void *), size_t stack);
/* A descriptor of the shim's own, moved (close-on-exec) to the highest
 * free number below the top of the descriptor table (within 16 of it),
 * never on 0, 1 or 2: a daemon that closed its standard descriptors must
 * never find the shim's socket or file there, and the app's own fds keep
 * the numbers they have without the shim. Returns the descriptor to use
 * (fd itself when it cannot be moved). */
HIDDEN int reshim_fd_above_stdio(int fd);

/* True when a wrapper should do its work; false means "pass straight
 * through" (disabled, torn down, nested inside the shim, or init running on
 * this thread). Cheap: one TLS read and one relaxed load once initialised. */
static inline bool reshim_active(void)
{
    if (unlikely(reshim_guard))
        return false;
    int s = atomic_load_explicit(&reshim_state, memory_order_acquire);
    if (likely(s == RS_ACTIVE))
        return true;
    if (s == RS_NONE || s == RS_INITIALISING) {
        reshim_init_slow();
        return atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_ACTIVE &&
               !reshim_guard;
    }
    return false;
}

#define GUARD_ENTER() (reshim_guard++)
#define GUARD_LEAVE() (reshim_guard--)

#endif
