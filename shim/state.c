/* state.c: what every file of the preload object reads about this process:
 * the recursion guard, the life-cycle state, the settings, the monotonic
 * clock, the per-thread random source, the owner pid (vfork detection) and
 * the late start at slow points.
 * Depends on nothing else of the shim, so that every module (and its unit
 * test) reaches them without the life-cycle module; lifecycle.c is the only
 * writer (at init and in a fork child). Never allocates, never locks. */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "reshim.h"
#include "sys.h"

TLS_IE int reshim_guard;
atomic_int reshim_state;

static struct reshim_config config;
static _Atomic pid_t owner_pid;
static TLS_IE uint64_t rng_state;

const struct reshim_config *reshim_cfg(void)
{
    return &config;
}

struct reshim_config *reshim_cfg_edit(void)
{
    return &config;
}

uint64_t reshim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t reshim_random(void)
{
    uint64_t x = rng_state;
    if (unlikely(x == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&rng_state ^
            ((uint64_t)syscall(SYS_gettid) << 32) ^ (uint64_t)ts.tv_sec;
        if (!x)
            x = 0x2545F4914F6CDD1Dull;
    }
    x ^= x << 13; /* xorshift64 */
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void reshim_owner_set(void)
{
    atomic_store(&owner_pid, sys_getpid());
}

bool reshim_in_foreign_child(void)
{
    pid_t owner = atomic_load_explicit(&owner_pid, memory_order_relaxed);
    return owner != 0 && sys_getpid() != owner;
}

atomic_int reshim_late_armed;
static void (*_Atomic late_fn)(void);

void reshim_late_arm(void (*fn)(void))
{
    atomic_store(&late_fn, fn);
    atomic_store(&reshim_late_armed, fn != NULL);
}

void reshim_late_run(void)
{
    void (*fn)(void) = atomic_load(&late_fn);
    if (fn)
        fn();
}
