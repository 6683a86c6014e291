/* config.h: the effective configuration (every RESHIM_ variable of libreshim(7))
 * and its parsers. Pure: parsing never touches the environment directly (a
 * getter is injected), never allocates, never logs (a warn callback is). */
#ifndef RESHIM_CONFIG_H
#define RESHIM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dest.h"

enum reshim_log_level { RLOG_ERROR, RLOG_WARN, RLOG_INFO, RLOG_DEBUG };
enum reshim_jitter { JITTER_EQUAL, JITTER_FULL, JITTER_DECORRELATED, JITTER_NONE };
enum reshim_budget_kind { BUDGET_AUTO, BUDGET_OFF, BUDGET_BYTES, BUDGET_PERCENT };
enum reshim_mem_policy { MEMPOL_WARN, MEMPOL_TRIM, MEMPOL_ENFORCE };
/* auto: libunwind's unw_backtrace when it loads, else libgcc's (heapprof.c). */
enum reshim_unwinder { UNWIND_AUTO, UNWIND_LIBUNWIND, UNWIND_LIBGCC };
enum reshim_replay { REPLAY_SAFE, REPLAY_CONNECT, REPLAY_OFF };

/* One entry per variable, in libreshim(7)'s order; names in reshim_config_names. */
enum reshim_var {
    V_DISABLE, V_LOG, V_LOG_FILE, V_RETRIES, V_BACKOFF_BASE, V_BACKOFF_MAX, V_JITTER,
    V_RETRY_DEADLINE, V_RETRY_BUDGET, V_BREAKER, V_NONBLOCK, V_REPLAY, V_REPLAY_MAX, V_DEST,
    V_DNS_STALE, V_MEM_BUDGET, V_MEM_WARN, V_MEM_TRIM, V_MEM_POLICY, V_HEAP_SAMPLE,
    V_HEAP_UNWINDER, V_HEAP_PYTHON, V_RUN_DIR,
    V_INTERVAL, V_PUSH, V_COUNT
};
#define RESHIM_VAR_NAME_MAX 24 /* "RESHIM_RETRY_DEADLINE" and NUL fit */
/* The texts in the table (no pointers: no relocation at load). */
extern const char reshim_config_names[V_COUNT][RESHIM_VAR_NAME_MAX];

enum reshim_source { SRC_DEFAULT, SRC_ENV, SRC_INVALID /* set but bad: default used */ };

#define RESHIM_PATH_MAX 256

struct reshim_config {
    bool disable;
    enum reshim_log_level log_level;
    char log_file[RESHIM_PATH_MAX]; /* "" = stderr */
    unsigned retries;
    uint64_t backoff_base_ns;
    uint64_t backoff_max_ns;
    enum reshim_jitter jitter;
    uint64_t retry_deadline_ns;
    double retry_budget;            /* fraction of calls, e.g. 0.20 */
    unsigned breaker;               /* 0 = off */
    bool nonblock;
    enum reshim_replay replay;      /* after connect: safe, connect (nothing), off */
    uint64_t replay_max;            /* bytes kept per connection for a resend */
    struct dest_rules dest;
    uint64_t dns_stale_ns;          /* 0 = off */
    enum reshim_budget_kind mem_budget_kind;
    uint64_t mem_budget_bytes;      /* BUDGET_BYTES */
    double mem_budget_fraction;     /* BUDGET_PERCENT, of the container limit */
    double mem_warn;                /* fraction of the budget */
    double mem_trim;
    enum reshim_mem_policy mem_policy;
    uint64_t heap_sample_bytes;     /* 0 = off */
    enum reshim_unwinder heap_unwinder;
    bool heap_python;               /* Python frames and the interpreter's own allocator */
    char run_dir[RESHIM_PATH_MAX];
    unsigned run_dir_uid;           /* the uid the default run_dir is of */
    uint64_t interval_ns;
    char push[RESHIM_PATH_MAX];     /* "" = unset */
    enum reshim_source source[V_COUNT];
};

/* Called once per bad value: the variable, the value, the expected form. */
typedef void (*reshim_warn_fn)(void *ctx, const char *var, const char *value,
                               const char *expected);
typedef const char *(*reshim_getenv_fn)(void *ctx, const char *name);

void reshim_config_defaults(struct reshim_config *c, unsigned uid, const char *xdg_runtime_dir);
/* Fills c from the getter; returns the number of bad values (each warned once
 * and replaced by its default). */
int reshim_config_load(struct reshim_config *c, reshim_getenv_fn get, void *getctx,
                       reshim_warn_fn warn, void *warnctx, unsigned uid);

/* The run directory of a process whose effective uid is now euid (its
 * stats socket is placed when it is made, maybe after a daemon changed its
 * uid): RESHIM_RUN_DIR when set; else the default computed at start while
 * euid is still the uid it was computed for; else the new uid's default
 * without $XDG_RUNTIME_DIR (that one is the old user's): /tmp/reshim-<euid>,
 * written into buf (n bytes). */
const char *reshim_run_dir_for(const struct reshim_config *c, unsigned euid, char *buf, size_t n);

/* Unit parsers: 0 on success, -1 on a value that does not parse. */
int reshim_parse_size(const char *s, uint64_t *bytes);      /* 512K, 1MiB, 2G, 100B, 4096 */
int reshim_parse_percent(const char *s, double *fraction);  /* "80%" -> 0.8 */
int reshim_parse_duration(const char *s, uint64_t *ns);     /* 500ms, 1.5s, 2min, 1h, 0 */
int reshim_parse_uint(const char *s, unsigned max, unsigned *out);

/* "on"/"off" style names for printing; never NULL. */
const char *reshim_log_level_name(enum reshim_log_level l);
const char *reshim_jitter_name(enum reshim_jitter j);
const char *reshim_mem_policy_name(enum reshim_mem_policy p);
const char *reshim_unwinder_name(enum reshim_unwinder u);
const char *reshim_replay_name(enum reshim_replay r);
const char *reshim_source_name(enum reshim_source s); /* "env", "invalid", "default" */

#endif
