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
    reshim_owner_set();
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
        struct env_view view;
        env_scan(&view);
        reshim_config_load(config, env_get, &view, collect_warning, NULL, (unsigned)getuid());
        reshim_log_configure(config->log_level, config->log_file);
        for (int i = 0; i < nwarnings; i++)
            LOG_WARN("%s", warnings[i]);
        if (config->disable) {
            final = RS_DISABLED;
        } else if (fdtab_init() != 0) {
            LOG_ERROR("cannot map the fd table (%d); passing every call through", errno);
            final = RS_DISABLED;
        } else {
            reshim_atfork_install();
            server_init(env_get, &view); /* arms the stats thread's late start */
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

__attribute__((constructor)) static void reshim_constructor(void)
{
    if (atomic_load(&reshim_state) == RS_NONE)
        reshim_init_slow();
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
