/* snapfill.c: the stats snapshot, filled (see snapfill.h). The process's
 * identity is its pid, its comm (read from /proc once per pid), the
 * library's version and its times: when the shim started in this process
 * (init, or the fork), monotonic for the uptime and in unix time. The
 * counters are stats.c's, with the breaker's parameters of the retry
 * session (retry.c); the memory figures are memmon.c's. */
#define _GNU_SOURCE
#include "snapfill.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "memmon.h"
#include "reshim.h"
#include "retry.h"
#include "stats.h"
#include "sys.h"

static _Atomic uint64_t t0_ns;     /* monotonic, at init (or fork) */
static _Atomic int64_t t0_real_ns; /* unix time then */

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

void snap_fill_start(void)
{
    atomic_store(&t0_real_ns, real_ns());
    atomic_store(&t0_ns, reshim_now_ns());
}

uint64_t snap_fill_t0_ns(void)
{
    return atomic_load(&t0_ns);
}

static char comm_cache[SNAP_COMM_MAX];
static atomic_int comm_pid; /* the pid comm_cache was read for */

static void comm_get(char *dst, size_t n, int pid)
{
    if (atomic_load_explicit(&comm_pid, memory_order_acquire) != pid) {
        char buf[SNAP_COMM_MAX];
        ssize_t r = sys_read_file("/proc/self/comm", buf, sizeof buf);
        if (r < 0)
            r = 0;
        while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == '\r'))
            buf[--r] = 0;
        memcpy(comm_cache, buf, (size_t)r + 1);
        atomic_store_explicit(&comm_pid, pid, memory_order_release);
    }
    size_t len = strnlen(comm_cache, sizeof comm_cache - 1);
    if (len >= n)
        len = n - 1;
    memcpy(dst, comm_cache, len);
    dst[len] = 0;
}

void snap_fill(struct reshim_snapshot *s)
{
    GUARD_ENTER();
    uint64_t now = reshim_now_ns(), t0 = atomic_load(&t0_ns);
    /* Field by field: the struct is large (the destination array), and only
     * the entries in use are touched. */
    s->pid = (int)sys_getpid();
    comm_get(s->comm, sizeof s->comm, s->pid);
    snap_word(s->version, sizeof s->version, RESHIM_VERSION);
    s->uptime_s = t0 && now > t0 ? (double)(now - t0) / 1e9 : 0;
    s->start_time_s = (double)atomic_load(&t0_real_ns) / 1e9;
    s->time_s = (double)real_ns() / 1e9;
    struct breaker_params bp = retry_breaker_params();
    stats_snapshot(s, &bp, now);
    memmon_snap(&s->mem);
    GUARD_LEAVE();
}
