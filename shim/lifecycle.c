/* lifecycle.c: the life of the preload object in a process: lazy
 * initialisation from whichever wrapper runs first (or the constructor),
 * configuration from the environment, fork handling, and the exit summary.
 * Owns the recursion guard, the owner pid (vfork detection), the clock and
 * the per-thread random source. Never frees anything at exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "dns.h"
#include "fdtab.h"
#include "log.h"
#include "memmon.h"
#include "nbconn.h"
#include "replay.h"
#include "real.h"
#include "heapprof.h"
#include "reshim.h"
#include "server.h"
#include "stats.h"

TLS_IE int reshim_guard;
atomic_int reshim_state;

static struct reshim_config config;
static _Atomic pid_t owner_pid;
static TLS_IE uint64_t rng_state;

const struct reshim_config *reshim_cfg(void)
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

bool reshim_in_foreign_child(void)
{
    pid_t owner = atomic_load_explicit(&owner_pid, memory_order_relaxed);
    return owner != 0 && (pid_t)syscall(SYS_getpid) != owner;
}

/* Bad values are collected while parsing and logged once logging is set up. */
#define MAX_WARNINGS (V_COUNT + 2)
static char warnings[MAX_WARNINGS][LOG_LINE_MAX / 2];
static int nwarnings;

static void collect_warning(void *ctx, const char *var, const char *value, const char *expected)
{
    (void)ctx;
    if (nwarnings < MAX_WARNINGS)
        reshim_format(warnings[nwarnings++], sizeof warnings[0],
                      "%s=\"%.60s\" is not valid: expected %s; using the default", var, value,
                      expected);
}

/* The environment is scanned once: only RESHIM_ entries (and
 * XDG_RUNTIME_DIR) are kept, so 22 lookups do not each walk environ. */
extern char **environ;
#define ENV_KEEP 48
struct env_view {
    int n;
    const char *entry[ENV_KEEP];
};

static void env_scan(struct env_view *v)
{
    v->n = 0;
    for (char **e = environ; e && *e && v->n < ENV_KEEP; e++)
        if (((*e)[0] == 'R' && strncmp(*e, "RESHIM_", 7) == 0) ||
            ((*e)[0] == 'X' && strncmp(*e, "XDG_RUNTIME_DIR=", 16) == 0))
            v->entry[v->n++] = *e;
}

static const char *env_get(void *ctx, const char *name)
{
    const struct env_view *v = ctx;
    size_t len = strlen(name);
    for (int i = 0; i < v->n; i++)
        if (strncmp(v->entry[i], name, len) == 0 && v->entry[i][len] == '=')
            return v->entry[i] + len + 1;
    return NULL;
}

/* Signals stay blocked from prepare to parent/child: a handler that calls
 * close() or poll() mid-fork must never find our locks held by its own
 * thread (glibc runs the handlers and _Fork with signals open). */
static TLS_IE sigset_t fork_mask;

static void atfork_prepare(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &fork_mask);
    reshim_bind_symbols(); /* a handler's write() in the child must not bind */
    reshim_dns_atfork(ATFORK_PREPARE);
    nb_atfork(ATFORK_PREPARE);
    alloc_atfork(ATFORK_PREPARE);
    heapprof_atfork(ATFORK_PREPARE);
}

static void atfork_parent(void)
{
    heapprof_atfork(ATFORK_PARENT);
    alloc_atfork(ATFORK_PARENT);
    nb_atfork(ATFORK_PARENT);
    reshim_dns_atfork(ATFORK_PARENT);
    pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

static void atfork_child(void)
{
    atomic_store(&owner_pid, (pid_t)syscall(SYS_getpid));
    heapprof_atfork(ATFORK_CHILD);
    alloc_atfork(ATFORK_CHILD);
    memmon_atfork(ATFORK_CHILD);
    reshim_dns_atfork(ATFORK_CHILD);
    nb_atfork(ATFORK_CHILD);
    replay_atfork_child();
    reshim_stats_reset();
    server_atfork_child();
    pthread_sigmask(SIG_SETMASK, &fork_mask, NULL);
}

void reshim_init_slow(void)
{
    int expected = RS_NONE;
    if (!atomic_compare_exchange_strong(&reshim_state, &expected, RS_INITIALISING)) {
        /* Another thread is initialising: wait for it (it takes microseconds). */
        while (atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_INITIALISING)
            sched_yield();
        return;
    }
    int saved = errno;
    GUARD_ENTER();
    atomic_store(&owner_pid, (pid_t)syscall(SYS_getpid));
    /* Real symbols are bound at the first real call (REAL()), not here: a
     * process that never makes one (most of a shell script's children)
     * never pays for 40 dlsym lookups. fork binds them first (atfork). */
    int final = RS_ACTIVE;
    if (getauxval(AT_SECURE)) {
        /* setuid/setgid/capabilities: never trust the environment; stay out. */
        reshim_config_defaults(&config, (unsigned)getuid(), NULL);
        config.disable = true;
        final = RS_DISABLED;
    } else {
        struct env_view view;
        env_scan(&view);
        reshim_config_load(&config, env_get, &view, collect_warning, NULL, (unsigned)getuid());
        reshim_log_configure(config.log_level, config.log_file);
        for (int i = 0; i < nwarnings; i++)
            LOG_WARN("%s", warnings[i]);
        if (config.disable) {
            final = RS_DISABLED;
        } else if (fdtab_init() != 0) {
            LOG_ERROR("cannot map the fd table (%d); passing every call through", errno);
            final = RS_DISABLED;
        } else {
            pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
            server_init(env_get, &view); /* arms the stats thread's late start */
            heapprof_init(&config);
            LOG_DEBUG("active (version %s)", RESHIM_VERSION);
        }
    }
    if (final == RS_DISABLED)
        alloc_set_passthrough(); /* stop counting: nothing will read the figures */
    atomic_store_explicit(&reshim_state, final, memory_order_release);
    GUARD_LEAVE();
    errno = saved;
}

__attribute__((constructor)) static void reshim_constructor(void)
{
    if (atomic_load(&reshim_state) == RS_NONE)
        reshim_init_slow();
}

/* The shim's long-lived descriptors (wake pipe, stats socket and its
 * clients, the statm fd, the push socket) live at the top of the process's
 * current descriptor table, not at the lowest free numbers: the app's own
 * open()/dup() then get exactly the numbers they would get without the shim
 * (CPython's test_os.test_closerange, which needs two consecutive fds,
 * skipped under the shim when a one-fd hole of the app's sat below our
 * pipe). Not above the table's size (FDSize in /proc/self/status, 64 for a
 * young process): a larger table would change what select() says of a
 * closed fd beyond the old size (the kernel ignores fds past the table, and
 * reports EBADF within it). Never on 0-2. Called a few times per process
 * (the statm fd may be parked on an app thread, inside malloc). */
#define FD_PARK_ROOM 16

static long fd_table_size_read(void)
{
    char buf[1024];
    int f = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return 64; /* the kernel's first table */
    ssize_t n = read(f, buf, sizeof buf - 1);
    close(f);
    if (n <= 0)
        return 64;
    buf[n] = 0;
    const char *l = strstr(buf, "\nFDSize:");
    if (!l)
        return 64;
    long v = strtol(l + 8, NULL, 10);
    return v > 0 ? v : 64;
}

/* Read once: the open takes the lowest free number for a moment, which an
 * app thread opening at that instant would miss. A table only grows, so a
 * size read earlier is still within it. */
static long fd_table_size(void)
{
    static atomic_long cached;
    long v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!v) {
        v = fd_table_size_read();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

int reshim_fd_above_stdio(int fd)
{
    if (fd < 0)
        return fd;
    GUARD_ENTER();
    int saved = errno;
    long top = fd_table_size();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long)rl.rlim_cur < top)
        top = (long)rl.rlim_cur;
    /* The highest free number below the top, probed downwards (F_DUPFD
     * from a floor would grow the table when the room is full). */
    int high = -1;
    for (long c = top - 1; c > fd && c >= top - FD_PARK_ROOM && c > 2; c--) {
        if (fcntl((int)c, F_GETFD) != -1 || errno != EBADF)
            continue;
        high = fcntl(fd, F_DUPFD_CLOEXEC, (int)c);
        if (high >= top) { /* an app thread took it meanwhile: stay low */
            close(high);
            high = -1;
        }
        break;
    }
    if (high < 0 && fd <= 2)
        high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (high >= 0)
        close(fd);
    errno = saved;
    GUARD_LEAVE();
    return high >= 0 ? high : fd;
}

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
/* The ASan build of the shim (tests/stress) binds pthread_create to libc's,
 * not to ASan's interceptor, which would clear the new stack's shadow: in
 * a fork child glibc hands out the stacks of the parent's threads, which
 * vanished mid-call with their frames still poisoned, and ASan then reports
 * our own locals (seen: stack-use-after-scope in dir_problem). */
static void *asan_clean_start(void *fn)
{
    pthread_attr_t a;
    void *lo;
    size_t sz;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &lo, &sz) == 0) {
            char *here = (char *)__builtin_frame_address(0);
            /* Below this frame: the stack not in use yet. */
            if (here > (char *)lo && here <= (char *)lo + sz)
                ASAN_UNPOISON_MEMORY_REGION(lo, (size_t)(here - (char *)lo) - 256);
        }
        pthread_attr_destroy(&a);
    }
    void *(*f)(void *);
    memcpy(&f, &fn, sizeof f);
    return f(NULL);
}
#define THREAD_ENTRY(fn) asan_clean_start
#define THREAD_ARG(fn) fn_as_arg(fn)
static void *fn_as_arg(void *(*fn)(void *))
{
    void *v;
    memcpy(&v, &fn, sizeof v);
    return v;
}
#else
#define THREAD_ENTRY(fn) (fn)
#define THREAD_ARG(fn) NULL
#endif

int reshim_thread_start(void *(*fn)(void *), size_t stack)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, stack);
    sigset_t all, prev;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &prev); /* inherited by the new thread */
    GUARD_ENTER();
    int rc = pthread_create(&t, &a, THREAD_ENTRY(fn), THREAD_ARG(fn));
    if (rc == EINVAL) {
        /* glibc puts the static TLS on the thread's stack: a large one (an
         * app's big __thread data, a sanitizer runtime) does not fit in
         * `stack`. The default size (RLIMIT_STACK, virtual) makes room. */
        pthread_attr_destroy(&a);
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &a, THREAD_ENTRY(fn), THREAD_ARG(fn));
    }
    GUARD_LEAVE();
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    pthread_attr_destroy(&a);
    return rc;
}

__attribute__((destructor)) static void reshim_destructor(void)
{
    if (atomic_load(&reshim_state) != RS_ACTIVE || reshim_in_foreign_child())
        return;
    if (reshim_log_enabled(RLOG_INFO)) {
        char line[LOG_LINE_MAX - 64];
        size_t at = reshim_stats_summary(line, sizeof line);
        if (at + 3 < sizeof line) {
            line[at++] = ';';
            line[at++] = ' ';
            memmon_summary(line + at, sizeof line - at);
        }
        LOG_INFO("exit summary: %s", line);
    }
    server_exit(); /* final pushed datagram, socket file removed, thread stopped */
    /* Other threads may still run until exit_group: they pass straight
     * through from now on; nothing is freed. */
    atomic_store_explicit(&reshim_state, RS_TORN_DOWN, memory_order_release);
}
