/* lifecycle.c: the life of the preload object in a process: lazy
 * initialisation from whichever wrapper runs first (or the constructor),
 * configuration from the environment, fork handling, and the exit summary.
 * Writes what state.c holds (the settings, the owner pid). Never frees
 * anything at exit. */
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
#include "atfork.h"
#include "config.h"
#include "fdtab.h"
#include "log.h"
#include "memmon.h"
#include "real.h"
#include "heapprof.h"
#include "reshim.h"
#include "server.h"
#include "stats.h"
#include "sys.h"

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

static bool has_prefix(const char *s, const char *p)
{
    while (*p)
        if (*s++ != *p++)
            return false;
    return true;
}

static int env_scan(struct env_view *v)
{
    int reshim_vars = 0;
    v->n = 0;
    for (char **e = environ; e && *e && v->n < ENV_KEEP; e++) {
        if ((*e)[0] == 'R' && has_prefix(*e, "RESHIM_")) {
            v->entry[v->n++] = *e;
            reshim_vars++;
        } else if ((*e)[0] == 'X' && has_prefix(*e, "XDG_RUNTIME_DIR=")) {
            v->entry[v->n++] = *e;
        }
    }
    return reshim_vars;
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

/* What is taken at load (the constructor), or by the first wrapper when it
 * runs before the constructor: the environment as the program received it
 * (its strings stay where they are; a later setenv or clearenv changes
 * nothing here), our pid, the fork handlers (atfork.c: they do nothing
 * until init made the shim active; a child of a process not initialised
 * only learns its pid, so that its own first real call may initialise). */
static struct env_view boot_env;
static int boot_reshim_vars; /* RESHIM_ variables in boot_env */
static atomic_int booted;

static void boot(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&booted, &expected, 1))
        return;
    boot_reshim_vars = env_scan(&boot_env);
    reshim_owner_set();
    reshim_atfork_install();
}

void reshim_init_slow(void)
{
    boot();
    /* A vfork child's first real call (python's subprocess closes fds there)
     * must not initialise in its parent's memory: it passes through. */
    if (reshim_in_foreign_child())
        return;
    int expected = RS_NONE;
    if (!atomic_compare_exchange_strong(&reshim_state, &expected, RS_INITIALISING)) {
        /* Another thread is initialising: wait for it (it takes microseconds). */
        while (atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_INITIALISING)
            sched_yield();
        return;
    }
    int saved = errno;
    GUARD_ENTER();
    struct reshim_config *config = reshim_cfg_edit();
    /* Real symbols are bound at the first real call (REAL()), not here: a
     * process that never makes one (most of a shell script's children)
     * never pays for 40 dlsym lookups. fork binds them first (atfork). */
    int final = RS_ACTIVE;
    if (getauxval(AT_SECURE)) {
        /* setuid/setgid/capabilities: never trust the environment; stay out. */
        reshim_config_defaults(config, (unsigned)getuid(), NULL);
        config->disable = true;
        final = RS_DISABLED;
    } else {
        struct env_view *view = &boot_env;
        reshim_config_load(config, env_get, view, collect_warning, NULL, (unsigned)getuid());
        reshim_log_configure(config->log_level, config->log_file);
        for (int i = 0; i < nwarnings; i++)
            LOG_WARN("%s", warnings[i]);
        if (config->disable) {
            final = RS_DISABLED;
        } else if (fdtab_init() != 0) {
            LOG_ERROR("cannot map the fd table (%d); passing every call through", errno);
            final = RS_DISABLED;
        } else {
            server_init(env_get, view); /* arms the stats thread's late start */
            heapprof_init(config);
            LOG_DEBUG("active (version %s)", RESHIM_VERSION);
        }
    }
    if (final == RS_DISABLED)
        alloc_set_passthrough(); /* stop counting: nothing will read the figures */
    atomic_store_explicit(&reshim_state, final, memory_order_release);
    GUARD_LEAVE();
    errno = saved;
}

/* At load, only boot(): init itself (the settings, the fd table, the
 * budget, the stats thread's arming) waits for the first real call, heap
 * growth step or large allocation (reshim_active(), alloc.c): /bin/true and
 * most of a shell script's children make none, and start as fast as with
 * any preload. */
__attribute__((constructor)) static void reshim_constructor(void)
{
    boot();
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
    if (sys_read_file("/proc/self/status", buf, sizeof buf) <= 0)
        return 64; /* the kernel's first table */
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
        if (sys_fcntl((int)c, F_GETFD, 0) != -1 || errno != EBADF)
            continue;
        high = sys_fcntl(fd, F_DUPFD_CLOEXEC, c);
        if (high >= top) { /* an app thread took it meanwhile: stay low */
            sys_close(high);
            high = -1;
        }
        break;
    }
    if (high < 0 && fd <= 2)
        high = sys_fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (high >= 0)
        sys_close(fd);
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
    /* Never initialised: only RESHIM_ settings (an exit summary asked for, a
     * push address) can want something at exit. */
    if (atomic_load(&reshim_state) == RS_NONE && boot_reshim_vars && !reshim_guard)
        reshim_init_slow();
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
