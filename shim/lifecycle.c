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
#include "pyheap.h"
#include "reshim.h"
#include "server.h"
#include "stats.h"

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
    reshim_compat_prepare(alloc_bind); /* before 2.34: see shim/compat.c */
    boot_reshim_vars = env_scan(&boot_env);
    reshim_owner_set();
    reshim_atfork_install();
    heapprof_boot(reshim_init_slow);
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
            heapprof_init(config, &pyheap_ops);
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
    reshim_compat_boot(); /* before 2.34: libpthread, libdl (shim/compat.c) */
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
