/* config.c: parses every RESHIM_ variable of libreshim(7). Owns the defaults and
 * the unit grammar (sizes 1024-based, percentages, durations). Pure: the
 * environment comes through a getter, bad values go to a warn callback, and
 * nothing here allocates, so the interposers can call it during bootstrap. */
#define _GNU_SOURCE
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char reshim_config_names[V_COUNT][RESHIM_VAR_NAME_MAX] = {
    [V_DISABLE] = "RESHIM_DISABLE",
    [V_LOG] = "RESHIM_LOG",
    [V_LOG_FILE] = "RESHIM_LOG_FILE",
    [V_RETRIES] = "RESHIM_RETRIES",
    [V_BACKOFF_BASE] = "RESHIM_BACKOFF_BASE",
    [V_BACKOFF_MAX] = "RESHIM_BACKOFF_MAX",
    [V_JITTER] = "RESHIM_JITTER",
    [V_RETRY_DEADLINE] = "RESHIM_RETRY_DEADLINE",
    [V_RETRY_BUDGET] = "RESHIM_RETRY_BUDGET",
    [V_BREAKER] = "RESHIM_BREAKER",
    [V_NONBLOCK] = "RESHIM_NONBLOCK",
    [V_REPLAY] = "RESHIM_REPLAY",
    [V_REPLAY_MAX] = "RESHIM_REPLAY_MAX",
    [V_DEST] = "RESHIM_DEST",
    [V_DNS_STALE] = "RESHIM_DNS_STALE",
    [V_MEM_BUDGET] = "RESHIM_MEM_BUDGET",
    [V_MEM_WARN] = "RESHIM_MEM_WARN",
    [V_MEM_TRIM] = "RESHIM_MEM_TRIM",
    [V_MEM_POLICY] = "RESHIM_MEM_POLICY",
    [V_HEAP_SAMPLE] = "RESHIM_HEAP_SAMPLE",
    [V_HEAP_UNWINDER] = "RESHIM_HEAP_UNWINDER",
    [V_HEAP_PYTHON] = "RESHIM_HEAP_PYTHON",
    [V_RUN_DIR] = "RESHIM_RUN_DIR",
    [V_INTERVAL] = "RESHIM_INTERVAL",
    [V_PUSH] = "RESHIM_PUSH",
};

#define MS 1000000ull
#define SEC 1000000000ull

/* The default run directory of a uid without $XDG_RUNTIME_DIR. */
static void tmp_run_dir(char *buf, size_t n, unsigned uid)
{
    snprintf(buf, n, "/tmp/reshim-%u", uid);
}

void reshim_config_defaults(struct reshim_config *c, unsigned uid, const char *xdg)
{
    memset(c, 0, sizeof *c);
    c->log_level = RLOG_WARN;
    c->retries = 5;
    c->backoff_base_ns = 250 * MS;
    c->backoff_max_ns = 1 * SEC;
    c->jitter = JITTER_EQUAL;
    c->retry_deadline_ns = 10 * SEC;
    c->retry_budget = 0.20;
    c->breaker = 5;
    c->nonblock = true;
    c->replay = REPLAY_SAFE;
    c->replay_max = 16 * 1024;
    c->dns_stale_ns = 3600 * SEC;
    c->mem_budget_kind = BUDGET_AUTO;
    c->mem_warn = 0.80;
    c->mem_trim = 0.90;
    c->mem_policy = MEMPOL_TRIM;
    c->heap_sample_bytes = 512 * 1024;
    c->heap_unwinder = UNWIND_AUTO;
    c->heap_python = true;
    c->interval_ns = 1 * SEC;
    if (xdg && xdg[0] == '/' && strlen(xdg) + sizeof "/reshim" <= sizeof c->run_dir)
        snprintf(c->run_dir, sizeof c->run_dir, "%s/reshim", xdg);
    else
        tmp_run_dir(c->run_dir, sizeof c->run_dir, uid);
    c->run_dir_uid = uid;
}

const char *reshim_run_dir_for(const struct reshim_config *c, unsigned euid, char *buf, size_t n)
{
    if (c->source[V_RUN_DIR] == SRC_ENV || euid == c->run_dir_uid)
        return c->run_dir;
    tmp_run_dir(buf, n, euid);
    return buf;
}

/* A non-negative decimal number with an optional fraction; *end points past it. */
static int parse_number(const char *s, double *out, const char **end)
{
    const char *p = s;
    double v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (*p == '.') {
        double scale = 0.1;
        p++;
        while (*p >= '0' && *p <= '9') {
            v += (*p++ - '0') * scale;
            scale /= 10;
            digits++;
        }
    }
    if (!digits || !isfinite(v))
        return -1;
    *out = v;
    *end = p;
    return 0;
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int reshim_parse_size(const char *s, uint64_t *bytes)
{
    static const struct { char suffix[4]; uint64_t mult; } units[] = { /* texts in the table: see parse_enum */
        {"", 1}, {"b", 1},
        {"k", 1ull << 10}, {"kb", 1ull << 10}, {"kib", 1ull << 10},
        {"m", 1ull << 20}, {"mb", 1ull << 20}, {"mib", 1ull << 20},
        {"g", 1ull << 30}, {"gb", 1ull << 30}, {"gib", 1ull << 30},
        {"t", 1ull << 40}, {"tb", 1ull << 40}, {"tib", 1ull << 40},
    };
    double v;
    const char *end;
    if (!s || parse_number(skip_space(s), &v, &end))
        return -1;
    end = skip_space(end);
    size_t len = strlen(end);
    while (len && (end[len - 1] == ' ' || end[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].suffix) == len && strncasecmp(end, units[i].suffix, len) == 0) {
            double b = v * (double)units[i].mult;
            if (b >= 18446744073709549568.0) /* largest double below 2^64 */
                return -1;
            *bytes = (uint64_t)(b + 0.5);
            return 0;
        }
    }
    return -1;
}

int reshim_parse_percent(const char *s, double *fraction)
{
    double v;
    const char *end;
    if (!s || parse_number(skip_space(s), &v, &end))
        return -1;
    end = skip_space(end);
    if (*end != '%' || *skip_space(end + 1))
        return -1;
    *fraction = v / 100.0;
    return 0;
}

int reshim_parse_duration(const char *s, uint64_t *ns)
{
    static const struct { char suffix[4]; uint64_t mult; } units[] = { /* texts in the table: see parse_enum */
        {"us", 1000}, {"ms", MS}, {"s", SEC}, {"sec", SEC}, {"min", 60 * SEC}, {"h", 3600 * SEC},
    };
    double v;
    const char *end;
    if (!s || parse_number(skip_space(s), &v, &end))
        return -1;
    end = skip_space(end);
    size_t len = strlen(end);
    while (len && (end[len - 1] == ' ' || end[len - 1] == '\t'))
        len--;
    if (len == 0) /* a bare number is ambiguous; only 0 means the same in every unit */
        return v == 0 ? (*ns = 0, 0) : -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].suffix) == len && strncasecmp(end, units[i].suffix, len) == 0) {
            double d = v * (double)units[i].mult;
            if (d >= 9.2e18)
                return -1;
            *ns = (uint64_t)(d + 0.5);
            return 0;
        }
    }
    return -1;
}

int reshim_parse_uint(const char *s, unsigned max, unsigned *out)
{
    if (!s)
        return -1;
    const char *p = skip_space(s);
    uint64_t v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p++ - '0');
        digits++;
        if (v > max)
            return -1;
    }
    if (!digits || *skip_space(p))
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* The names of a setting's values, in tables of NAME_MAX-byte texts (no
 * pointers: a pointer in a constant table is a relocation at every start-up
 * of every preloaded process). */
#define VALUE_NAME_MAX 16
static int parse_enum(const char *s, const char (*names)[VALUE_NAME_MAX], int n)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

static const char log_names[][VALUE_NAME_MAX] = {"error", "warn", "info", "debug"};
static const char jitter_names[][VALUE_NAME_MAX] = {"equal", "full", "decorrelated", "none"};
static const char policy_names[][VALUE_NAME_MAX] = {"warn", "trim", "enforce"};
static const char unwinder_names[][VALUE_NAME_MAX] = {"auto", "libunwind", "libgcc"};
static const char replay_names[][VALUE_NAME_MAX] = {"safe", "connect", "off"};

const char *reshim_log_level_name(enum reshim_log_level l)
{
    return (unsigned)l < 4 ? log_names[l] : "?";
}
const char *reshim_jitter_name(enum reshim_jitter j)
{
    return (unsigned)j < 4 ? jitter_names[j] : "?";
}
const char *reshim_mem_policy_name(enum reshim_mem_policy p)
{
    return (unsigned)p < 3 ? policy_names[p] : "?";
}
const char *reshim_unwinder_name(enum reshim_unwinder u)
{
    return (unsigned)u < 3 ? unwinder_names[u] : "?";
}
const char *reshim_replay_name(enum reshim_replay r)
{
    return (unsigned)r < 3 ? replay_names[r] : "?";
}
const char *reshim_source_name(enum reshim_source s)
{
    return s == SRC_ENV ? "env" : s == SRC_INVALID ? "invalid" : "default";
}

static int parse_bool(const char *s, bool *out)
{
    static const char yes[][VALUE_NAME_MAX] = {"1", "on", "yes", "true"};
    static const char no[][VALUE_NAME_MAX] = {"0", "off", "no", "false"};
    if (parse_enum(s, yes, 4) >= 0)
        return *out = true, 0;
    if (parse_enum(s, no, 4) >= 0)
        return *out = false, 0;
    return -1;
}

static int parse_path(const char *s, char *dst, size_t n, bool must_be_absolute)
{
    size_t len = strlen(s);
    if (len == 0 || len >= n || (must_be_absolute && s[0] != '/'))
        return -1;
    memcpy(dst, s, len + 1);
    return 0;
}

/* Parses one variable into c; -1 when the value is bad (c untouched for it). */
static int parse_var(struct reshim_config *c, enum reshim_var v, const char *s,
                     const char **expected)
{
    int i;
    uint64_t u64;
    double d;
    unsigned u;
    bool b;
    switch (v) {
    case V_DISABLE:
        *expected = "1 or 0";
        if (parse_bool(s, &b))
            return -1;
        c->disable = b;
        return 0;
    case V_LOG:
        *expected = "error, warn, info or debug";
        if ((i = parse_enum(s, log_names, 4)) < 0)
            return -1;
        c->log_level = (enum reshim_log_level)i;
        return 0;
    case V_LOG_FILE:
        *expected = "an absolute file path shorter than 256 bytes";
        return parse_path(s, c->log_file, sizeof c->log_file, true);
    case V_RETRIES:
        *expected = "a whole number from 0 to 100";
        if (reshim_parse_uint(s, 100, &u))
            return -1;
        c->retries = u;
        return 0;
    case V_BACKOFF_BASE:
    case V_BACKOFF_MAX:
    case V_RETRY_DEADLINE:
        *expected = "a duration such as 250ms, 2s or 1min";
        if (reshim_parse_duration(s, &u64) || u64 == 0 || u64 > 3600 * SEC)
            return -1;
        if (v == V_BACKOFF_BASE)
            c->backoff_base_ns = u64;
        else if (v == V_BACKOFF_MAX)
            c->backoff_max_ns = u64;
        else
            c->retry_deadline_ns = u64;
        return 0;
    case V_JITTER:
        *expected = "equal, full, decorrelated or none";
        if ((i = parse_enum(s, jitter_names, 4)) < 0)
            return -1;
        c->jitter = (enum reshim_jitter)i;
        return 0;
    case V_RETRY_BUDGET:
        *expected = "a percentage from 0% to 100%, such as 20%";
        if (reshim_parse_percent(s, &d) || d > 1.0)
            return -1;
        c->retry_budget = d;
        return 0;
    case V_BREAKER:
        *expected = "a whole number of failed calls from 0 (off) to 1000";
        if (reshim_parse_uint(s, 1000, &u))
            return -1;
        c->breaker = u;
        return 0;
    case V_NONBLOCK:
        *expected = "on or off";
        if (parse_bool(s, &b))
            return -1;
        c->nonblock = b;
        return 0;
    case V_REPLAY:
        *expected = "safe, connect or off";
        if ((i = parse_enum(s, replay_names, 3)) < 0)
            return -1;
        c->replay = (enum reshim_replay)i;
        return 0;
    case V_REPLAY_MAX:
        *expected = "a size from 0 to 1M, such as 16K";
        if (reshim_parse_size(s, &u64) || u64 > (1u << 20))
            return -1;
        c->replay_max = u64;
        return 0;
    case V_DEST:
        *expected = "a comma list of host:port, CIDR[:port], unix:/path/glob, each optionally "
                    "preceded by !";
        return dest_rules_parse(s, &c->dest);
    case V_DNS_STALE:
        *expected = "a duration such as 30min or 1h, or 0 (off)";
        if (reshim_parse_duration(s, &u64))
            return -1;
        c->dns_stale_ns = u64;
        return 0;
    case V_MEM_BUDGET:
        *expected = "a size such as 300M or 1G, a share of the container limit such as 90%, "
                    "auto, or off";
        if (strcasecmp(s, "auto") == 0)
            return c->mem_budget_kind = BUDGET_AUTO, 0;
        if (strcasecmp(s, "off") == 0)
            return c->mem_budget_kind = BUDGET_OFF, 0;
        if (reshim_parse_percent(s, &d) == 0) {
            if (d <= 0 || d > 1.0)
                return -1;
            c->mem_budget_kind = BUDGET_PERCENT;
            c->mem_budget_fraction = d;
            return 0;
        }
        if (reshim_parse_size(s, &u64) || u64 < (1u << 20))
            return -1;
        c->mem_budget_kind = BUDGET_BYTES;
        c->mem_budget_bytes = u64;
        return 0;
    case V_MEM_WARN:
    case V_MEM_TRIM:
        *expected = "a percentage of the budget above 0% and at most 100%";
        if (reshim_parse_percent(s, &d) || d <= 0 || d > 1.0)
            return -1;
        if (v == V_MEM_WARN)
            c->mem_warn = d;
        else
            c->mem_trim = d;
        return 0;
    case V_MEM_POLICY:
        *expected = "warn, trim or enforce";
        if ((i = parse_enum(s, policy_names, 3)) < 0)
            return -1;
        c->mem_policy = (enum reshim_mem_policy)i;
        return 0;
    case V_HEAP_SAMPLE:
        *expected = "a size such as 512K (mean bytes between samples), or 0 (off)";
        if (reshim_parse_size(s, &u64) || u64 > (1ull << 30))
            return -1;
        c->heap_sample_bytes = u64;
        return 0;
    case V_HEAP_UNWINDER:
        *expected = "auto, libunwind or libgcc";
        if ((i = parse_enum(s, unwinder_names, 3)) < 0)
            return -1;
        c->heap_unwinder = (enum reshim_unwinder)i;
        return 0;
    case V_HEAP_PYTHON:
        *expected = "on or off";
        if (parse_bool(s, &b))
            return -1;
        c->heap_python = b;
        return 0;
    case V_RUN_DIR:
        /* <dir>/<pid>.sock must fit a unix socket address (108 bytes). */
        *expected = "an absolute directory path of at most 94 bytes";
        return parse_path(s, c->run_dir, 95, true);
    case V_INTERVAL:
        *expected = "a duration from 10ms to 1h, such as 1s";
        if (reshim_parse_duration(s, &u64) || u64 < 10 * MS || u64 > 3600 * SEC)
            return -1;
        c->interval_ns = u64;
        return 0;
    case V_PUSH:
        *expected = "a socket path shorter than 108 bytes";
        return parse_path(s, c->push, 108, false);
    case V_COUNT:
        break;
    }
    return -1;
}

int reshim_config_load(struct reshim_config *c, reshim_getenv_fn get, void *getctx,
                       reshim_warn_fn warn, void *warnctx, unsigned uid)
{
    int bad = 0;
    reshim_config_defaults(c, uid, get(getctx, "XDG_RUNTIME_DIR"));
    for (int v = 0; v < V_COUNT; v++) {
        const char *s = get(getctx, reshim_config_names[v]);
        if (!s)
            continue;
        const char *expected = "";
        struct reshim_config before = *c;
        if (parse_var(c, (enum reshim_var)v, s, &expected) == 0) {
            c->source[v] = SRC_ENV;
        } else {
            *c = before; /* a half-parsed value never leaks through */
            c->source[v] = SRC_INVALID;
            if (warn)
                warn(warnctx, reshim_config_names[v], s, expected);
            bad++;
        }
    }
    if (c->backoff_max_ns < c->backoff_base_ns) {
        /* A cap the user set below the base is an error; the default cap
         * (1 s) simply follows a longer base. */
        if (c->source[V_BACKOFF_MAX] == SRC_ENV) {
            if (warn)
                warn(warnctx, "RESHIM_BACKOFF_MAX", get(getctx, "RESHIM_BACKOFF_MAX") ?: "",
                     "a cap not below RESHIM_BACKOFF_BASE (the cap is raised to the base)");
            bad++;
        }
        c->backoff_max_ns = c->backoff_base_ns;
    }
    if (c->mem_warn > c->mem_trim) {
        if (warn)
            warn(warnctx, "RESHIM_MEM_WARN", get(getctx, "RESHIM_MEM_WARN") ?: "80%",
                 "a share not above RESHIM_MEM_TRIM (both use their defaults)");
        c->mem_warn = 0.80;
        c->mem_trim = 0.90;
        c->source[V_MEM_WARN] = c->source[V_MEM_TRIM] = SRC_INVALID;
        bad++;
    }
    return bad;
}
