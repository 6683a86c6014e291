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
/* The calling thread's own: its random source, and whether it made a vfork
 * child that may still run on its memory, and on this very block (a vfork
 * child has its parent thread's TLS): spawn.c's vfork sets it. */
static TLS_IE struct {
    uint64_t rng;
    int vforked;
} thr;
/* Not 0: every check asks the pid. For good once a child that shares our
 * memory may exist other than by this thread's vfork (clone with CLONE_VM),
 * or in a child that no fork handler made the owner (_Fork); counted while
 * a clone without CLONE_VM is being made (its child copies the count). */
#define PID_CHECKS_FOREVER (1 << 30)
static atomic_int pid_checks;

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
    uint64_t x = thr.rng;
    if (unlikely(x == 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)&thr.rng ^
            ((uint64_t)syscall(SYS_gettid) << 32) ^ (uint64_t)ts.tv_sec;
        if (!x)
            x = 0x2545F4914F6CDD1Dull;
    }
    x ^= x << 13; /* xorshift64 */
    x ^= x >> 7;
    x ^= x << 17;
    thr.rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void reshim_owner_set(void)
{
    atomic_store(&owner_pid, sys_getpid());
}

/* No system call unless this thread has vforked or pid_checks is set: the
 * check is on every descriptor's way in and out (12 getpid calls per
 * connect and close: as many system calls again as the connection's own). */
bool reshim_in_foreign_child(void)
{
    if (likely(!thr.vforked) && likely(!atomic_load_explicit(&pid_checks, memory_order_relaxed)))
        return false;
    pid_t owner = atomic_load_explicit(&owner_pid, memory_order_relaxed);
    if (owner != 0 && sys_getpid() != owner)
        return true;
    thr.vforked = 0; /* the parent, back from vfork: its child exec'd or exited */
    return false;
}

void reshim_vfork_begin(void)
{
    thr.vforked = 1;
}

void reshim_pid_checks_add(int n)
{
    atomic_fetch_add(&pid_checks, n);
}

void reshim_pid_checks_forever(void)
{
    atomic_fetch_or(&pid_checks, PID_CHECKS_FOREVER);
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
