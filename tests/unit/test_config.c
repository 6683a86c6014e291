/* test_config.c: unit tests of shim/config.c (every RESHIM_ variable of
 * libreshim(7): defaults, unit grammar, bad values, cross checks). The
 * environment is a fake table handed to reshim_config_load's getter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * 1024 * 1024)
#define UID 1000u

#define CHECK(cond, ...)              \
    do {                              \
        if (!(cond))                  \
            fail_msg(__VA_ARGS__);    \
    } while (0)

static int feq(double a, double b)
{
    double d = a - b;
    return d < 1e-9 && d > -1e-9;
}

/* ---- fake environment and warn recorder ---- */

#define ENV_MAX 48
struct fake_env {
    int n;
    const char *name[ENV_MAX];
    const char *value[ENV_MAX];
};

static const char *env_get(void *ctx, const char *name)
{
    const struct fake_env *e = ctx;
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->name[i], name) == 0)
            return e->value[i];
    return NULL;
}

static void env_set(struct fake_env *e, const char *name, const char *value)
{
    for (int i = 0; i < e->n; i++) {
        if (strcmp(e->name[i], name) == 0) {
            e->value[i] = value;
            return;
        }
    }
    assert_true(e->n < ENV_MAX);
    e->name[e->n] = name;
    e->value[e->n] = value;
    e->n++;
}

#define WARN_MAX 8
struct warns {
    int n;
    char var[WARN_MAX][64];
    char value[WARN_MAX][1024];
    char expected[WARN_MAX][256];
};

static void warn_rec(void *ctx, const char *var, const char *value, const char *expected)
{
    struct warns *w = ctx;
    if (w->n < WARN_MAX) {
        snprintf(w->var[w->n], sizeof w->var[0], "%s", var ? var : "(null)");
        snprintf(w->value[w->n], sizeof w->value[0], "%s", value ? value : "(null)");
        snprintf(w->expected[w->n], sizeof w->expected[0], "%s", expected ? expected : "");
    }
    w->n++;
}

static int load(struct reshim_config *c, struct fake_env *e, struct warns *w)
{
    memset(w, 0, sizeof *w);
    return reshim_config_load(c, env_get, e, warn_rec, w, UID);
}

/* Field by field (struct padding is not compared). skip: a variable whose
 * source[] is not compared, or V_COUNT. */
static void assert_config_equal(const struct reshim_config *a, const struct reshim_config *b,
                                int skip, const char *what)
{
    CHECK(a->disable == b->disable, "%s: disable differs", what);
    CHECK(a->log_level == b->log_level, "%s: log_level differs", what);
    CHECK(strcmp(a->log_file, b->log_file) == 0, "%s: log_file differs", what);
    CHECK(a->retries == b->retries, "%s: retries %u vs %u", what, a->retries, b->retries);
    CHECK(a->backoff_base_ns == b->backoff_base_ns, "%s: backoff_base differs", what);
    CHECK(a->backoff_max_ns == b->backoff_max_ns, "%s: backoff_max differs", what);
    CHECK(a->jitter == b->jitter, "%s: jitter differs", what);
    CHECK(a->retry_deadline_ns == b->retry_deadline_ns, "%s: retry_deadline differs", what);
    CHECK(feq(a->retry_budget, b->retry_budget), "%s: retry_budget differs", what);
    CHECK(a->breaker == b->breaker, "%s: breaker differs", what);
    CHECK(a->nonblock == b->nonblock, "%s: nonblock differs", what);
    CHECK(a->replay == b->replay, "%s: replay differs", what);
    CHECK(a->replay_max == b->replay_max, "%s: replay_max differs", what);
    CHECK(a->dest.n == b->dest.n && a->dest.has_positive == b->dest.has_positive &&
              memcmp(a->dest.r, b->dest.r, sizeof a->dest.r) == 0,
          "%s: dest differs", what);
    CHECK(a->dns_stale_ns == b->dns_stale_ns, "%s: dns_stale differs", what);
    CHECK(a->mem_budget_kind == b->mem_budget_kind, "%s: mem_budget_kind differs", what);
    CHECK(a->mem_budget_bytes == b->mem_budget_bytes, "%s: mem_budget_bytes differs", what);
    CHECK(feq(a->mem_budget_fraction, b->mem_budget_fraction), "%s: mem_budget_fraction", what);
    CHECK(feq(a->mem_warn, b->mem_warn), "%s: mem_warn differs", what);
    CHECK(feq(a->mem_trim, b->mem_trim), "%s: mem_trim differs", what);
    CHECK(a->mem_policy == b->mem_policy, "%s: mem_policy differs", what);
    CHECK(a->heap_sample_bytes == b->heap_sample_bytes, "%s: heap_sample differs", what);
    CHECK(a->heap_unwinder == b->heap_unwinder, "%s: heap_unwinder differs", what);
    CHECK(a->heap_python == b->heap_python, "%s: heap_python differs", what);
    CHECK(strcmp(a->run_dir, b->run_dir) == 0, "%s: run_dir differs", what);
    CHECK(a->interval_ns == b->interval_ns, "%s: interval differs", what);
    CHECK(strcmp(a->push, b->push) == 0, "%s: push differs", what);
    for (int v = 0; v < V_COUNT; v++)
        if (v != skip)
            CHECK(a->source[v] == b->source[v], "%s: source[%s] %d vs %d", what,
                  reshim_config_names[v], a->source[v], b->source[v]);
}

/* libreshim(7)'s defaults, written out independently of config.c. */
static void assert_spec_defaults(const struct reshim_config *c, const char *run_dir)
{
    assert_false(c->disable);
    assert_int_equal(c->log_level, RLOG_WARN);
    assert_string_equal(c->log_file, "");
    assert_int_equal(c->retries, 5);
    assert_int_equal(c->backoff_base_ns, 250 * MS);
    assert_int_equal(c->backoff_max_ns, 1 * SEC);
    assert_int_equal(c->jitter, JITTER_EQUAL);
    assert_int_equal(c->retry_deadline_ns, 10 * SEC);
    assert_true(feq(c->retry_budget, 0.20));
    assert_int_equal(c->breaker, 5);
    assert_true(c->nonblock);
    assert_int_equal(c->replay, REPLAY_SAFE);
    assert_int_equal(c->replay_max, 16 * KiB);
    assert_int_equal(c->dest.n, 0);
    assert_false(c->dest.has_positive);
    assert_int_equal(c->dns_stale_ns, 3600 * SEC);
    assert_int_equal(c->mem_budget_kind, BUDGET_AUTO);
    assert_true(feq(c->mem_warn, 0.80));
    assert_true(feq(c->mem_trim, 0.90));
    assert_int_equal(c->mem_policy, MEMPOL_TRIM);
    assert_int_equal(c->heap_sample_bytes, 512 * KiB);
    assert_int_equal(c->heap_unwinder, UNWIND_AUTO);
    assert_true(c->heap_python);
    assert_string_equal(c->run_dir, run_dir);
    assert_int_equal(c->interval_ns, 1 * SEC);
    assert_string_equal(c->push, "");
}

/* ---- names ---- */

static void test_names_follow_spec(void **state)
{
    static const char *const spec[] = {
        "RESHIM_DISABLE", "RESHIM_LOG", "RESHIM_LOG_FILE", "RESHIM_RETRIES",
        "RESHIM_BACKOFF_BASE", "RESHIM_BACKOFF_MAX", "RESHIM_JITTER", "RESHIM_RETRY_DEADLINE",
        "RESHIM_RETRY_BUDGET", "RESHIM_BREAKER", "RESHIM_NONBLOCK", "RESHIM_REPLAY",
        "RESHIM_REPLAY_MAX", "RESHIM_DEST",
        "RESHIM_DNS_STALE", "RESHIM_MEM_BUDGET", "RESHIM_MEM_WARN", "RESHIM_MEM_TRIM",
        "RESHIM_MEM_POLICY", "RESHIM_HEAP_SAMPLE", "RESHIM_HEAP_UNWINDER", "RESHIM_HEAP_PYTHON",
        "RESHIM_RUN_DIR", "RESHIM_INTERVAL",
        "RESHIM_PUSH",
    };
    assert_int_equal(sizeof spec / sizeof spec[0], V_COUNT);
    for (int v = 0; v < V_COUNT; v++) {
        assert_non_null(reshim_config_names[v]);
        assert_string_equal(reshim_config_names[v], spec[v]);
    }
    assert_string_equal(reshim_log_level_name(RLOG_ERROR), "error");
    assert_string_equal(reshim_log_level_name(RLOG_WARN), "warn");
    assert_string_equal(reshim_log_level_name(RLOG_INFO), "info");
    assert_string_equal(reshim_log_level_name(RLOG_DEBUG), "debug");
    assert_string_equal(reshim_log_level_name((enum reshim_log_level)42), "?");
    assert_string_equal(reshim_jitter_name(JITTER_EQUAL), "equal");
    assert_string_equal(reshim_jitter_name(JITTER_FULL), "full");
    assert_string_equal(reshim_jitter_name(JITTER_DECORRELATED), "decorrelated");
    assert_string_equal(reshim_jitter_name(JITTER_NONE), "none");
    assert_string_equal(reshim_jitter_name((enum reshim_jitter)-1), "?");
    assert_string_equal(reshim_mem_policy_name(MEMPOL_WARN), "warn");
    assert_string_equal(reshim_mem_policy_name(MEMPOL_TRIM), "trim");
    assert_string_equal(reshim_mem_policy_name(MEMPOL_ENFORCE), "enforce");
    assert_string_equal(reshim_mem_policy_name((enum reshim_mem_policy)3), "?");
    assert_string_equal(reshim_unwinder_name(UNWIND_AUTO), "auto");
    assert_string_equal(reshim_unwinder_name(UNWIND_LIBUNWIND), "libunwind");
    assert_string_equal(reshim_unwinder_name(UNWIND_LIBGCC), "libgcc");
    assert_string_equal(reshim_unwinder_name((enum reshim_unwinder)3), "?");
    assert_string_equal(reshim_replay_name(REPLAY_SAFE), "safe");
    assert_string_equal(reshim_replay_name(REPLAY_CONNECT), "connect");
    assert_string_equal(reshim_replay_name(REPLAY_OFF), "off");
    assert_string_equal(reshim_replay_name((enum reshim_replay)3), "?");
    assert_string_equal(reshim_source_name(SRC_ENV), "env");
    assert_string_equal(reshim_source_name(SRC_DEFAULT), "default");
    assert_string_not_equal(reshim_source_name(SRC_INVALID), "default");
    assert_string_not_equal(reshim_source_name(SRC_INVALID), "env");
}

/* ---- defaults ---- */

static void test_defaults_empty_environment(void **state)
{
    struct fake_env env = {0};
    struct warns w;
    struct reshim_config c;
    memset(&c, 0x5a, sizeof c); /* load must not depend on what was there */
    assert_int_equal(load(&c, &env, &w), 0);
    assert_int_equal(w.n, 0);
    assert_spec_defaults(&c, "/tmp/reshim-1000");
    for (int v = 0; v < V_COUNT; v++)
        assert_int_equal(c.source[v], SRC_DEFAULT);

    struct reshim_config d;
    memset(&d, 0x5a, sizeof d);
    reshim_config_defaults(&d, 4242, NULL);
    assert_spec_defaults(&d, "/tmp/reshim-4242");
    for (int v = 0; v < V_COUNT; v++)
        assert_int_equal(d.source[v], SRC_DEFAULT);
}

static void test_run_dir_after_uid_change(void **state)
{
    /* A root master whose workers became nobody: the run directory follows
     * the uid the socket is made under, unless RESHIM_RUN_DIR was given. */
    struct fake_env env = {0};
    struct warns w;
    struct reshim_config c;
    char buf[RESHIM_PATH_MAX];
    memset(&w, 0, sizeof w);
    assert_int_equal(reshim_config_load(&c, env_get, &env, warn_rec, &w, 0), 0);
    assert_string_equal(reshim_run_dir_for(&c, 0, buf, sizeof buf), "/tmp/reshim-0");
    assert_string_equal(reshim_run_dir_for(&c, 65534, buf, sizeof buf), "/tmp/reshim-65534");

    /* $XDG_RUNTIME_DIR is the starting user's: kept for that uid only. */
    env_set(&env, "XDG_RUNTIME_DIR", "/run/user/1000");
    assert_int_equal(load(&c, &env, &w), 0);
    assert_string_equal(reshim_run_dir_for(&c, 1000, buf, sizeof buf), "/run/user/1000/reshim");
    assert_string_equal(reshim_run_dir_for(&c, 33, buf, sizeof buf), "/tmp/reshim-33");
    assert_string_equal(reshim_run_dir_for(&c, 4294967295u, buf, sizeof buf),
                        "/tmp/reshim-4294967295");

    /* A bad RESHIM_RUN_DIR is the default: it follows the uid too. */
    env_set(&env, "RESHIM_RUN_DIR", "relative/dir");
    assert_int_equal(load(&c, &env, &w), 1);
    assert_string_equal(reshim_run_dir_for(&c, 33, buf, sizeof buf), "/tmp/reshim-33");

    /* An explicit one is kept whatever the uid (the server refuses it when
     * it is not the new uid's, with a warning). */
    env_set(&env, "RESHIM_RUN_DIR", "/var/run/reshim");
    assert_int_equal(load(&c, &env, &w), 0);
    assert_string_equal(reshim_run_dir_for(&c, 1000, buf, sizeof buf), "/var/run/reshim");
    assert_string_equal(reshim_run_dir_for(&c, 33, buf, sizeof buf), "/var/run/reshim");
}

static void test_defaults_unrelated_environment(void **state)
{
    /* Variables that are not RESHIM_'s (or look alike) change nothing. */
    struct fake_env env = {0};
    env_set(&env, "RESHIM_RETRY", "9");
    env_set(&env, "reshim_retries", "9");
    env_set(&env, "PATH", "/usr/bin");
    struct warns w;
    struct reshim_config c;
    assert_int_equal(load(&c, &env, &w), 0);
    assert_int_equal(w.n, 0);
    assert_spec_defaults(&c, "/tmp/reshim-1000");
}

static void test_default_run_dir(void **state)
{
    struct fake_env env = {0};
    struct warns w;
    struct reshim_config c;

    env_set(&env, "XDG_RUNTIME_DIR", "/run/user/1000");
    assert_int_equal(load(&c, &env, &w), 0);
    assert_string_equal(c.run_dir, "/run/user/1000/reshim");
    assert_int_equal(c.source[V_RUN_DIR], SRC_DEFAULT);
    assert_int_equal(w.n, 0);

    /* A relative or empty XDG_RUNTIME_DIR is not used. */
    env_set(&env, "XDG_RUNTIME_DIR", "run/user/1000");
    assert_int_equal(load(&c, &env, &w), 0);
    assert_string_equal(c.run_dir, "/tmp/reshim-1000");
    env_set(&env, "XDG_RUNTIME_DIR", "");
    assert_int_equal(load(&c, &env, &w), 0);
    assert_string_equal(c.run_dir, "/tmp/reshim-1000");

    /* One too long to hold "/reshim" after it falls back too. */
    char longdir[RESHIM_PATH_MAX + 8];
    longdir[0] = '/';
    memset(longdir + 1, 'x', sizeof longdir - 2);
    longdir[sizeof longdir - 1] = '\0';
    env_set(&env, "XDG_RUNTIME_DIR", longdir);
    assert_int_equal(load(&c, &env, &w), 0);
    assert_string_equal(c.run_dir, "/tmp/reshim-1000");

    /* The uid is the one passed in. */
    struct fake_env empty = {0};
    memset(&w, 0, sizeof w);
    assert_int_equal(reshim_config_load(&c, env_get, &empty, warn_rec, &w, 0), 0);
    assert_string_equal(c.run_dir, "/tmp/reshim-0");
    assert_int_equal(reshim_config_load(&c, env_get, &empty, warn_rec, &w, 4294967295u), 0);
    assert_string_equal(c.run_dir, "/tmp/reshim-4294967295");

    /* RESHIM_RUN_DIR wins over XDG_RUNTIME_DIR. */
    env_set(&env, "XDG_RUNTIME_DIR", "/run/user/1000");
    env_set(&env, "RESHIM_RUN_DIR", "/var/run/reshim");
    assert_int_equal(load(&c, &env, &w), 0);
    assert_string_equal(c.run_dir, "/var/run/reshim");
    assert_int_equal(c.source[V_RUN_DIR], SRC_ENV);
}

/* ---- unit parsers ---- */

static void test_parse_size_good(void **state)
{
    static const struct { const char *s; uint64_t bytes; } good[] = {
        {"0", 0},
        {"1", 1},
        {"4096", 4096},
        {"100B", 100},
        {"100b", 100},
        {"512K", 512 * KiB},
        {"512k", 512 * KiB},
        {"512KiB", 512 * KiB},
        {"512kib", 512 * KiB},
        {"512KIB", 512 * KiB},
        {"1M", MiB},
        {"1m", MiB},
        {"1MiB", MiB},
        {"1mib", MiB},
        {"1MIB", MiB},
        {"300M", 300 * MiB},
        {"2G", 2 * GiB},
        {"2g", 2 * GiB},
        {"2GiB", 2 * GiB},
        {"2gIb", 2 * GiB},
        {"1.5M", 3 * MiB / 2},
        {"1.5m", 3 * MiB / 2},
        {"0.5K", 512},
        {"1.25G", 5 * GiB / 4},
        {"0.5KiB", 512},
        {"007K", 7 * KiB},
        /* The largest that fits 64 bits, and one just below. */
        {"17179869183G", 17179869183ull * GiB},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t b = 0xdeadbeef;
        int rc = reshim_parse_size(good[i].s, &b);
        CHECK(rc == 0, "parse_size(\"%s\") rejected", good[i].s);
        CHECK(b == good[i].bytes, "parse_size(\"%s\") = %llu, want %llu", good[i].s,
              (unsigned long long)b, (unsigned long long)good[i].bytes);
    }
}

static void test_parse_size_bad(void **state)
{
    static const char *const bad[] = {
        "", " ", "abc", "K", "M", "KiB", ".", ".K", "-1", "-1K", "+1K", "1X", "1KX", "1Ki",
        "1 K B", "1.5.5M", "1e3", "1e3K", "0x10", "1,5M", "1M junk", "1M1", "12 34",
        "17179869184G",                 /* 2^64 */
        "99999999999999999999",         /* > 2^64 bytes */
        "99999999999999999999999G",
        "1%",
    };
    uint64_t b = 77;
    assert_int_equal(reshim_parse_size(NULL, &b), -1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = 77;
        CHECK(reshim_parse_size(bad[i], &b) == -1, "parse_size(\"%s\") accepted (%llu)", bad[i],
              (unsigned long long)b);
    }
    /* 400 digits: the number itself overflows a double. */
    char huge[401];
    memset(huge, '9', 400);
    huge[400] = '\0';
    assert_int_equal(reshim_parse_size(huge, &b), -1);
}

static void test_parse_percent(void **state)
{
    static const struct { const char *s; double f; } good[] = {
        {"80%", 0.80}, {"0%", 0.0}, {"100%", 1.0}, {"12.5%", 0.125}, {"150%", 1.5},
        {"5%", 0.05}, {"0.5%", 0.005},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double f = -1;
        CHECK(reshim_parse_percent(good[i].s, &f) == 0, "parse_percent(\"%s\") rejected",
              good[i].s);
        CHECK(feq(f, good[i].f), "parse_percent(\"%s\") = %g, want %g", good[i].s, f, good[i].f);
    }
    static const char *const bad[] = {
        "", "80", "%", "abc%", "-5%", "+5%", "80%%", "80% x", "80 percent", "x80%", "0.8",
        "1e2%", "80%5",
    };
    double f = -1;
    assert_int_equal(reshim_parse_percent(NULL, &f), -1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(reshim_parse_percent(bad[i], &f) == -1, "parse_percent(\"%s\") accepted", bad[i]);
}

static void test_parse_duration_good(void **state)
{
    static const struct { const char *s; uint64_t ns; } good[] = {
        {"0", 0},
        {"0.0", 0},
        {"0ms", 0},
        {"0s", 0},
        {"500ms", 500 * MS},
        {"500MS", 500 * MS},
        {"2Min", 120 * SEC},
        {"10ms", 10 * MS},
        {"1s", SEC},
        {"5s", 5 * SEC},
        {"1.5s", 3 * SEC / 2},
        {"0.25s", 250 * MS},
        {"2min", 120 * SEC},
        {"1.5min", 90 * SEC},
        {"30min", 1800 * SEC},
        {"1h", 3600 * SEC},
        {"0.5h", 1800 * SEC},
        {"2.5ms", 2500000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t ns = 0xdeadbeef;
        CHECK(reshim_parse_duration(good[i].s, &ns) == 0, "parse_duration(\"%s\") rejected",
              good[i].s);
        CHECK(ns == good[i].ns, "parse_duration(\"%s\") = %llu, want %llu", good[i].s,
              (unsigned long long)ns, (unsigned long long)good[i].ns);
    }
}

static void test_parse_duration_bad(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "5",        /* a bare non-zero number is ambiguous */
        "1.5",
        "500",
        "0.1",
        "ms",
        "s",
        "abc",
        "-1s",
        "-0",
        "+1s",
        "1d",
        "1m",       /* minutes are "min" */
        "5sx",
        "5 s x",
        "1s2s",
        "1e3ms",
        "1.2.3s",
        "1,5s",
        "99999999999h", /* overflows 64-bit nanoseconds */
        "10%",
        "1K",
    };
    uint64_t ns = 77;
    assert_int_equal(reshim_parse_duration(NULL, &ns), -1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ns = 77;
        CHECK(reshim_parse_duration(bad[i], &ns) == -1, "parse_duration(\"%s\") accepted (%llu)",
              bad[i], (unsigned long long)ns);
    }
}

static void test_parse_uint(void **state)
{
    unsigned u = 99;
    assert_int_equal(reshim_parse_uint("0", 100, &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(reshim_parse_uint("100", 100, &u), 0);
    assert_int_equal(u, 100);
    assert_int_equal(reshim_parse_uint("007", 100, &u), 0);
    assert_int_equal(u, 7);
    assert_int_equal(reshim_parse_uint("4294967295", 4294967295u, &u), 0);
    assert_int_equal(u, 4294967295u);
    static const char *const bad[] = {
        "", " ", "101", "-1", "+1", "1.0", "12a", "a12", "1 2", "0x10", "1e2",
        "99999999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(reshim_parse_uint(bad[i], 100, &u) == -1, "parse_uint(\"%s\", 100) accepted",
              bad[i]);
    assert_int_equal(reshim_parse_uint("4294967296", 4294967295u, &u), -1);
    assert_int_equal(reshim_parse_uint(NULL, 100, &u), -1);
}

/* ---- whole environment: good values ---- */

static void test_every_variable_from_env(void **state)
{
    struct fake_env env = {0};
    env_set(&env, "XDG_RUNTIME_DIR", "/run/user/1000");
    env_set(&env, "RESHIM_DISABLE", "1");
    env_set(&env, "RESHIM_LOG", "debug");
    env_set(&env, "RESHIM_LOG_FILE", "/var/log/reshim.log");
    env_set(&env, "RESHIM_RETRIES", "7");
    env_set(&env, "RESHIM_BACKOFF_BASE", "250ms");
    env_set(&env, "RESHIM_BACKOFF_MAX", "2min");
    env_set(&env, "RESHIM_JITTER", "decorrelated");
    env_set(&env, "RESHIM_RETRY_DEADLINE", "30s");
    env_set(&env, "RESHIM_RETRY_BUDGET", "35%");
    env_set(&env, "RESHIM_BREAKER", "0");
    env_set(&env, "RESHIM_NONBLOCK", "off");
    env_set(&env, "RESHIM_REPLAY", "connect");
    env_set(&env, "RESHIM_REPLAY_MAX", "4K");
    env_set(&env, "RESHIM_DEST", "10.0.0.0/8:5432,!10.0.0.5");
    env_set(&env, "RESHIM_DNS_STALE", "30min");
    env_set(&env, "RESHIM_MEM_BUDGET", "300M");
    env_set(&env, "RESHIM_MEM_WARN", "70%");
    env_set(&env, "RESHIM_MEM_TRIM", "85%");
    env_set(&env, "RESHIM_MEM_POLICY", "enforce");
    env_set(&env, "RESHIM_HEAP_SAMPLE", "1MiB");
    env_set(&env, "RESHIM_HEAP_UNWINDER", "libgcc");
    env_set(&env, "RESHIM_HEAP_PYTHON", "off");
    env_set(&env, "RESHIM_RUN_DIR", "/run/reshim-test");
    env_set(&env, "RESHIM_INTERVAL", "250ms");
    env_set(&env, "RESHIM_PUSH", "/run/collector.sock");
    assert_int_equal(env.n, V_COUNT + 1);

    struct warns w;
    struct reshim_config c;
    assert_int_equal(load(&c, &env, &w), 0);
    assert_int_equal(w.n, 0);
    assert_true(c.disable);
    assert_int_equal(c.log_level, RLOG_DEBUG);
    assert_string_equal(c.log_file, "/var/log/reshim.log");
    assert_int_equal(c.retries, 7);
    assert_int_equal(c.backoff_base_ns, 250 * MS);
    assert_int_equal(c.backoff_max_ns, 120 * SEC);
    assert_int_equal(c.jitter, JITTER_DECORRELATED);
    assert_int_equal(c.retry_deadline_ns, 30 * SEC);
    assert_true(feq(c.retry_budget, 0.35));
    assert_int_equal(c.breaker, 0);
    assert_false(c.nonblock);
    assert_int_equal(c.replay, REPLAY_CONNECT);
    assert_int_equal(c.replay_max, 4 * KiB);
    assert_int_equal(c.dest.n, 2);
    assert_true(c.dest.has_positive);
    assert_int_equal(c.dest.r[0].kind, DR_CIDR);
    assert_int_equal(c.dest.r[0].port, 5432);
    assert_true(c.dest.r[1].negate);
    assert_int_equal(c.dns_stale_ns, 1800 * SEC);
    assert_int_equal(c.mem_budget_kind, BUDGET_BYTES);
    assert_int_equal(c.mem_budget_bytes, 300 * MiB);
    assert_true(feq(c.mem_warn, 0.70));
    assert_true(feq(c.mem_trim, 0.85));
    assert_int_equal(c.mem_policy, MEMPOL_ENFORCE);
    assert_int_equal(c.heap_sample_bytes, MiB);
    assert_int_equal(c.heap_unwinder, UNWIND_LIBGCC);
    assert_false(c.heap_python);
    assert_string_equal(c.run_dir, "/run/reshim-test");
    assert_int_equal(c.interval_ns, 250 * MS);
    assert_string_equal(c.push, "/run/collector.sock");
    for (int v = 0; v < V_COUNT; v++)
        CHECK(c.source[v] == SRC_ENV, "source[%s] = %d, want SRC_ENV", reshim_config_names[v],
              c.source[v]);
}

/* A value equal to the default still counts as coming from the environment. */
static void test_source_env_for_default_values(void **state)
{
    struct fake_env env = {0};
    env_set(&env, "RESHIM_RETRIES", "5");
    env_set(&env, "RESHIM_JITTER", "equal");
    env_set(&env, "RESHIM_MEM_BUDGET", "auto");
    struct warns w;
    struct reshim_config c;
    assert_int_equal(load(&c, &env, &w), 0);
    assert_spec_defaults(&c, "/tmp/reshim-1000");
    for (int v = 0; v < V_COUNT; v++) {
        enum reshim_source want =
            (v == V_RETRIES || v == V_JITTER || v == V_MEM_BUDGET) ? SRC_ENV : SRC_DEFAULT;
        CHECK(c.source[v] == want, "source[%s] = %d, want %d", reshim_config_names[v],
              c.source[v], want);
    }
}

/* One variable set to one good value: checked through a probe function. */
struct good_case {
    const char *var;
    const char *value;
    int (*ok)(const struct reshim_config *c);
};

static int is_disable_on(const struct reshim_config *c) { return c->disable; }
static int is_disable_off(const struct reshim_config *c) { return !c->disable; }
static int is_log_error(const struct reshim_config *c) { return c->log_level == RLOG_ERROR; }
static int is_log_warn(const struct reshim_config *c) { return c->log_level == RLOG_WARN; }
static int is_log_info(const struct reshim_config *c) { return c->log_level == RLOG_INFO; }
static int is_log_debug(const struct reshim_config *c) { return c->log_level == RLOG_DEBUG; }
static int is_retries_0(const struct reshim_config *c) { return c->retries == 0; }
static int is_retries_100(const struct reshim_config *c) { return c->retries == 100; }
static int is_base_1500ms(const struct reshim_config *c) { return c->backoff_base_ns == 1500 * MS; }
static int is_base_4500ms(const struct reshim_config *c) { return c->backoff_base_ns == 4500 * MS; }
static int is_max_90s(const struct reshim_config *c) { return c->backoff_max_ns == 90 * SEC; }
static int is_jitter_equal(const struct reshim_config *c) { return c->jitter == JITTER_EQUAL; }
static int is_jitter_full(const struct reshim_config *c) { return c->jitter == JITTER_FULL; }
static int is_jitter_decor(const struct reshim_config *c) { return c->jitter == JITTER_DECORRELATED; }
static int is_jitter_none(const struct reshim_config *c) { return c->jitter == JITTER_NONE; }
static int is_deadline_2min(const struct reshim_config *c) { return c->retry_deadline_ns == 120 * SEC; }
static int is_budget_0(const struct reshim_config *c) { return feq(c->retry_budget, 0.0); }
static int is_budget_50(const struct reshim_config *c) { return feq(c->retry_budget, 0.5); }
static int is_breaker_0(const struct reshim_config *c) { return c->breaker == 0; }
static int is_breaker_1000(const struct reshim_config *c) { return c->breaker == 1000; }
static int is_nonblock_on(const struct reshim_config *c) { return c->nonblock; }
static int is_nonblock_off(const struct reshim_config *c) { return !c->nonblock; }
static int is_replay_off(const struct reshim_config *c) { return c->replay == REPLAY_OFF; }
static int is_replay_connect(const struct reshim_config *c) { return c->replay == REPLAY_CONNECT; }
static int is_replay_max_0(const struct reshim_config *c) { return c->replay_max == 0; }
static int is_replay_max_1m(const struct reshim_config *c) { return c->replay_max == 1024 * KiB; }
static int is_dest_all(const struct reshim_config *c) { return c->dest.n == 0; }
static int is_dest_3(const struct reshim_config *c)
{
    return c->dest.n == 3 && c->dest.has_positive && c->dest.r[0].kind == DR_NAME &&
           c->dest.r[1].kind == DR_ADDR && c->dest.r[1].family == AF_INET6 &&
           c->dest.r[2].kind == DR_UNIX && strcmp(c->dest.r[2].text, "/run/app-*.sock") == 0;
}
static int is_stale_0(const struct reshim_config *c) { return c->dns_stale_ns == 0; }
static int is_stale_2h(const struct reshim_config *c) { return c->dns_stale_ns == 7200 * SEC; }
static int is_budget_auto(const struct reshim_config *c) { return c->mem_budget_kind == BUDGET_AUTO; }
static int is_budget_off(const struct reshim_config *c) { return c->mem_budget_kind == BUDGET_OFF; }
static int is_budget_1m(const struct reshim_config *c)
{
    return c->mem_budget_kind == BUDGET_BYTES && c->mem_budget_bytes == MiB;
}
static int is_budget_1_5g(const struct reshim_config *c)
{
    return c->mem_budget_kind == BUDGET_BYTES && c->mem_budget_bytes == 3 * GiB / 2;
}
static int is_budget_90pct(const struct reshim_config *c)
{
    return c->mem_budget_kind == BUDGET_PERCENT && feq(c->mem_budget_fraction, 0.9);
}
static int is_budget_100pct(const struct reshim_config *c)
{
    return c->mem_budget_kind == BUDGET_PERCENT && feq(c->mem_budget_fraction, 1.0);
}
static int is_warn_50(const struct reshim_config *c) { return feq(c->mem_warn, 0.5); }
static int is_trim_100(const struct reshim_config *c) { return feq(c->mem_trim, 1.0); }
static int is_pol_warn(const struct reshim_config *c) { return c->mem_policy == MEMPOL_WARN; }
static int is_pol_trim(const struct reshim_config *c) { return c->mem_policy == MEMPOL_TRIM; }
static int is_pol_enforce(const struct reshim_config *c) { return c->mem_policy == MEMPOL_ENFORCE; }
static int is_sample_0(const struct reshim_config *c) { return c->heap_sample_bytes == 0; }
static int is_sample_1g(const struct reshim_config *c) { return c->heap_sample_bytes == GiB; }
static int is_sample_64k(const struct reshim_config *c) { return c->heap_sample_bytes == 64 * KiB; }
static int is_unw_libunwind(const struct reshim_config *c) { return c->heap_unwinder == UNWIND_LIBUNWIND; }
static int is_unw_auto(const struct reshim_config *c) { return c->heap_unwinder == UNWIND_AUTO; }
static int is_py_off(const struct reshim_config *c) { return !c->heap_python; }
static int is_interval_10ms(const struct reshim_config *c) { return c->interval_ns == 10 * MS; }
static int is_interval_1h(const struct reshim_config *c) { return c->interval_ns == 3600 * SEC; }
static int is_push_abs(const struct reshim_config *c) { return strcmp(c->push, "/tmp/c.sock") == 0; }
static int is_push_rel(const struct reshim_config *c) { return strcmp(c->push, "c.sock") == 0; }

static void test_good_values_one_by_one(void **state)
{
    static const struct good_case cases[] = {
        {"RESHIM_DISABLE", "1", is_disable_on},
        {"RESHIM_DISABLE", "0", is_disable_off},
        {"RESHIM_DISABLE", "true", is_disable_on},
        {"RESHIM_DISABLE", "no", is_disable_off},
        {"RESHIM_LOG", "error", is_log_error},
        {"RESHIM_LOG", "warn", is_log_warn},
        {"RESHIM_LOG", "info", is_log_info},
        {"RESHIM_LOG", "debug", is_log_debug},
        {"RESHIM_LOG", "DEBUG", is_log_debug},
        {"RESHIM_RETRIES", "0", is_retries_0},
        {"RESHIM_RETRIES", "100", is_retries_100},
        {"RESHIM_BACKOFF_BASE", "1.5s", is_base_1500ms},
        {"RESHIM_BACKOFF_BASE", "4.5s", is_base_4500ms},
        {"RESHIM_BACKOFF_MAX", "1.5min", is_max_90s},
        {"RESHIM_JITTER", "equal", is_jitter_equal},
        {"RESHIM_JITTER", "full", is_jitter_full},
        {"RESHIM_JITTER", "decorrelated", is_jitter_decor},
        {"RESHIM_JITTER", "none", is_jitter_none},
        {"RESHIM_JITTER", "Full", is_jitter_full},
        {"RESHIM_RETRY_DEADLINE", "2min", is_deadline_2min},
        {"RESHIM_RETRY_BUDGET", "0%", is_budget_0},
        {"RESHIM_RETRY_BUDGET", "50%", is_budget_50},
        {"RESHIM_BREAKER", "0", is_breaker_0},
        {"RESHIM_BREAKER", "1000", is_breaker_1000},
        {"RESHIM_NONBLOCK", "on", is_nonblock_on},
        {"RESHIM_NONBLOCK", "off", is_nonblock_off},
        {"RESHIM_REPLAY", "off", is_replay_off},
        {"RESHIM_REPLAY", "Connect", is_replay_connect},
        {"RESHIM_REPLAY_MAX", "0", is_replay_max_0},
        {"RESHIM_REPLAY_MAX", "1M", is_replay_max_1m},
        {"RESHIM_NONBLOCK", "OFF", is_nonblock_off},
        {"RESHIM_NONBLOCK", "0", is_nonblock_off},
        {"RESHIM_DEST", "all", is_dest_all},
        {"RESHIM_DEST", "", is_dest_all},
        {"RESHIM_DEST", " all ", is_dest_all},
        {"RESHIM_DEST", "db.internal:5432, [::1]:6379 ,unix:/run/app-*.sock", is_dest_3},
        {"RESHIM_DNS_STALE", "0", is_stale_0},
        {"RESHIM_DNS_STALE", "2h", is_stale_2h},
        {"RESHIM_MEM_BUDGET", "auto", is_budget_auto},
        {"RESHIM_MEM_BUDGET", "AUTO", is_budget_auto},
        {"RESHIM_MEM_BUDGET", "off", is_budget_off},
        {"RESHIM_MEM_BUDGET", "1M", is_budget_1m},
        {"RESHIM_MEM_BUDGET", "1048576", is_budget_1m},
        {"RESHIM_MEM_BUDGET", "1.5GiB", is_budget_1_5g},
        {"RESHIM_MEM_BUDGET", "90%", is_budget_90pct},
        {"RESHIM_MEM_BUDGET", "100%", is_budget_100pct},
        {"RESHIM_MEM_WARN", "50%", is_warn_50},
        {"RESHIM_MEM_TRIM", "100%", is_trim_100},
        {"RESHIM_MEM_POLICY", "warn", is_pol_warn},
        {"RESHIM_MEM_POLICY", "trim", is_pol_trim},
        {"RESHIM_MEM_POLICY", "enforce", is_pol_enforce},
        {"RESHIM_HEAP_SAMPLE", "0", is_sample_0},
        {"RESHIM_HEAP_SAMPLE", "1G", is_sample_1g},
        {"RESHIM_HEAP_SAMPLE", "64k", is_sample_64k},
        {"RESHIM_HEAP_UNWINDER", "LibUnwind", is_unw_libunwind},
        {"RESHIM_HEAP_UNWINDER", "auto", is_unw_auto},
        {"RESHIM_HEAP_PYTHON", "off", is_py_off},
        {"RESHIM_INTERVAL", "10ms", is_interval_10ms},
        {"RESHIM_INTERVAL", "1h", is_interval_1h},
        {"RESHIM_PUSH", "/tmp/c.sock", is_push_abs},
        {"RESHIM_PUSH", "c.sock", is_push_rel},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake_env env = {0};
        env_set(&env, cases[i].var, cases[i].value);
        struct warns w;
        struct reshim_config c;
        int bad = load(&c, &env, &w);
        CHECK(bad == 0 && w.n == 0, "%s=\"%s\": %d bad values, %d warnings", cases[i].var,
              cases[i].value, bad, w.n);
        CHECK(cases[i].ok(&c), "%s=\"%s\": wrong effective value", cases[i].var,
              cases[i].value);
        int found = 0;
        for (int v = 0; v < V_COUNT; v++) {
            int mine = strcmp(reshim_config_names[v], cases[i].var) == 0;
            found += mine;
            CHECK(c.source[v] == (mine ? SRC_ENV : SRC_DEFAULT), "%s=\"%s\": source[%s] = %d",
                  cases[i].var, cases[i].value, reshim_config_names[v], c.source[v]);
        }
        CHECK(found == 1, "%s is not a known variable", cases[i].var);
    }
}

static void test_path_length_limits(void **state)
{
    /* Longest accepted: LOG_FILE 255 bytes, RUN_DIR 94 (room for /<pid>.sock), PUSH 107. */
    static const struct { const char *var; size_t ok_len; } lims[] = {
        {"RESHIM_LOG_FILE", 255},
        {"RESHIM_RUN_DIR", 94},
        {"RESHIM_PUSH", 107},
    };
    for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
        char path[400];
        for (int extra = 0; extra <= 1; extra++) {
            size_t len = lims[i].ok_len + (size_t)extra;
            memset(path, 'p', len);
            path[0] = '/';
            path[len] = '\0';
            struct fake_env env = {0};
            env_set(&env, lims[i].var, path);
            struct warns w;
            struct reshim_config c;
            int bad = load(&c, &env, &w);
            const char *got = strcmp(lims[i].var, "RESHIM_LOG_FILE") == 0 ? c.log_file
                              : strcmp(lims[i].var, "RESHIM_RUN_DIR") == 0 ? c.run_dir
                                                                             : c.push;
            if (!extra) {
                CHECK(bad == 0 && w.n == 0, "%s of %zu bytes rejected", lims[i].var, len);
                CHECK(strcmp(got, path) == 0, "%s of %zu bytes not stored", lims[i].var, len);
            } else {
                CHECK(bad == 1 && w.n == 1, "%s of %zu bytes accepted", lims[i].var, len);
                CHECK(strcmp(w.value[0], path) == 0, "%s: warning names another value",
                          lims[i].var);
                CHECK(strcmp(got, path) != 0, "%s of %zu bytes stored", lims[i].var, len);
            }
        }
    }
}

/* ---- bad values ---- */

struct bad_case {
    const char *var;
    const char *value;
};

static char dest_too_many[DEST_MAX_RULES * 16];
static char long_log_file[300];
static char long_run_dir[300];
static char long_push[300];

static void make_long_values(void)
{
    size_t at = 0;
    for (int i = 0; i <= DEST_MAX_RULES; i++) /* DEST_MAX_RULES + 1 rules */
        at += (size_t)snprintf(dest_too_many + at, sizeof dest_too_many - at, "%s10.0.0.%d",
                               i ? "," : "", i + 1);
    memset(long_log_file, 'l', 256);
    long_log_file[0] = '/';
    long_log_file[256] = '\0';
    memset(long_run_dir, 'r', 95);
    long_run_dir[0] = '/';
    long_run_dir[95] = '\0';
    memset(long_push, 's', 108);
    long_push[0] = '/';
    long_push[108] = '\0';
}

static void check_bad_value(const char *var, const char *value)
{
    /* Other variables set alongside; chosen so they never interact with var. */
    static const char *const others_a[][2] = {
        {"RESHIM_LOG", "debug"}, {"RESHIM_HEAP_SAMPLE", "1M"}, {"RESHIM_NONBLOCK", "off"},
        {"XDG_RUNTIME_DIR", "/run/user/1000"},
    };
    static const char *const others_b[][2] = {
        {"RESHIM_RETRIES", "7"}, {"RESHIM_JITTER", "none"}, {"RESHIM_PUSH", "/tmp/p.sock"},
        {"XDG_RUNTIME_DIR", "/run/user/1000"},
    };
    int clash = 0;
    for (size_t i = 0; i < 3; i++)
        clash |= strcmp(others_a[i][0], var) == 0;
    const char *const(*others)[2] = clash ? others_b : others_a;

    struct fake_env env = {0};
    for (size_t i = 0; i < 4; i++)
        env_set(&env, others[i][0], others[i][1]);
    struct warns w;
    struct reshim_config base, c;
    assert_int_equal(load(&base, &env, &w), 0);
    assert_int_equal(w.n, 0);

    env_set(&env, var, value);
    memset(&c, 0x5a, sizeof c);
    int bad = load(&c, &env, &w);
    CHECK(bad == 1, "%s=\"%.60s\": %d bad values, want 1", var, value, bad);
    CHECK(w.n == 1, "%s=\"%.60s\": %d warnings, want 1", var, value, w.n);
    CHECK(strcmp(w.var[0], var) == 0, "%s=\"%.60s\": warning names %s", var, value, w.var[0]);
    CHECK(strcmp(w.value[0], value) == 0, "%s=\"%.60s\": warning names value \"%s\"", var,
          value, w.value[0]);
    CHECK(w.expected[0][0] != '\0', "%s=\"%.60s\": no expected form", var, value);

    int v = -1;
    for (int i = 0; i < V_COUNT; i++)
        if (strcmp(reshim_config_names[i], var) == 0)
            v = i;
    assert_true(v >= 0);
    CHECK(c.source[v] == SRC_INVALID, "%s=\"%.60s\": source %d, want SRC_INVALID", var, value,
          c.source[v]);
    char what[160];
    snprintf(what, sizeof what, "%s=\"%.60s\"", var, value);
    /* The default stays in effect and nothing else moved. */
    assert_config_equal(&c, &base, v, what);

    /* Without a warn callback: still counted, still the default. */
    int bad2 = reshim_config_load(&c, env_get, &env, NULL, NULL, UID);
    CHECK(bad2 == 1, "%s: %d bad values without a warn callback", what, bad2);
    assert_config_equal(&c, &base, v, what);
}

static void test_bad_values(void **state)
{
    make_long_values();
    const struct bad_case cases[] = {
        {"RESHIM_DISABLE", ""},
        {"RESHIM_DISABLE", "2"},
        {"RESHIM_DISABLE", "maybe"},
        {"RESHIM_DISABLE", "1 "},
        {"RESHIM_LOG", ""},
        {"RESHIM_LOG", "verbose"},
        {"RESHIM_LOG", "warning"},
        {"RESHIM_LOG", "3"},
        {"RESHIM_LOG_FILE", ""},
        {"RESHIM_LOG_FILE", "reshim.log"},
        {"RESHIM_LOG_FILE", "./reshim.log"},
        {"RESHIM_LOG_FILE", "~/reshim.log"},
        {"RESHIM_LOG_FILE", long_log_file},
        {"RESHIM_RETRIES", ""},
        {"RESHIM_RETRIES", "abc"},
        {"RESHIM_RETRIES", "-1"},
        {"RESHIM_RETRIES", "101"},
        {"RESHIM_RETRIES", "1000"},
        {"RESHIM_RETRIES", "3x"},
        {"RESHIM_RETRIES", "3.5"},
        {"RESHIM_RETRIES", "99999999999999999999"},
        {"RESHIM_BACKOFF_BASE", ""},
        {"RESHIM_BACKOFF_BASE", "0"},
        {"RESHIM_BACKOFF_BASE", "0ms"},
        {"RESHIM_BACKOFF_BASE", "500"},
        {"RESHIM_BACKOFF_BASE", "-5ms"},
        {"RESHIM_BACKOFF_BASE", "5 parsecs"},
        {"RESHIM_BACKOFF_BASE", "2h"},
        {"RESHIM_BACKOFF_BASE", "500ms!"},
        {"RESHIM_BACKOFF_MAX", ""},
        {"RESHIM_BACKOFF_MAX", "0"},
        {"RESHIM_BACKOFF_MAX", "10"},
        {"RESHIM_BACKOFF_MAX", "abc"},
        {"RESHIM_BACKOFF_MAX", "61min"},
        {"RESHIM_JITTER", ""},
        {"RESHIM_JITTER", "random"},
        {"RESHIM_JITTER", "equally"},
        {"RESHIM_RETRY_DEADLINE", ""},
        {"RESHIM_RETRY_DEADLINE", "0"},
        {"RESHIM_RETRY_DEADLINE", "30"},
        {"RESHIM_RETRY_DEADLINE", "1.5h"},
        {"RESHIM_RETRY_DEADLINE", "99999999999h"},
        {"RESHIM_RETRY_BUDGET", ""},
        {"RESHIM_RETRY_BUDGET", "20"},
        {"RESHIM_RETRY_BUDGET", "abc"},
        {"RESHIM_RETRY_BUDGET", "-5%"},
        {"RESHIM_RETRY_BUDGET", "20%%"},
        {"RESHIM_RETRY_BUDGET", "20% x"},
        {"RESHIM_RETRY_BUDGET", "101%"},
        {"RESHIM_RETRY_BUDGET", "5000%"},
        {"RESHIM_REPLAY", ""},
        {"RESHIM_REPLAY", "always"},
        {"RESHIM_REPLAY", "on"},
        {"RESHIM_REPLAY_MAX", ""},
        {"RESHIM_REPLAY_MAX", "2M"},
        {"RESHIM_REPLAY_MAX", "-1K"},
        {"RESHIM_REPLAY_MAX", "16 kilo"},
        {"RESHIM_BREAKER", ""},
        {"RESHIM_BREAKER", "1001"},
        {"RESHIM_BREAKER", "-1"},
        {"RESHIM_BREAKER", "five"},
        {"RESHIM_BREAKER", "5.0"},
        {"RESHIM_BREAKER", "4294967301"},
        {"RESHIM_NONBLOCK", ""},
        {"RESHIM_NONBLOCK", "maybe"},
        {"RESHIM_NONBLOCK", "2"},
        {"RESHIM_DEST", "10.0.0.0/33"},
        {"RESHIM_DEST", "host:0"},
        {"RESHIM_DEST", "host:70000"},
        {"RESHIM_DEST", "[::1"},
        {"RESHIM_DEST", "a,,b"},
        {"RESHIM_DEST", "db:5432,"},
        {"RESHIM_DEST", "bad host"},
        {"RESHIM_DEST", dest_too_many},
        {"RESHIM_DNS_STALE", ""},
        {"RESHIM_DNS_STALE", "1"},
        {"RESHIM_DNS_STALE", "1hour"},
        {"RESHIM_DNS_STALE", "-1h"},
        {"RESHIM_DNS_STALE", "99999999999h"},
        {"RESHIM_MEM_BUDGET", ""},
        {"RESHIM_MEM_BUDGET", "lots"},
        {"RESHIM_MEM_BUDGET", "0%"},
        {"RESHIM_MEM_BUDGET", "150%"},
        {"RESHIM_MEM_BUDGET", "1023K"},
        {"RESHIM_MEM_BUDGET", "1048575"},
        {"RESHIM_MEM_BUDGET", "0"},
        {"RESHIM_MEM_BUDGET", "-1G"},
        {"RESHIM_MEM_BUDGET", "100M extra"},
        {"RESHIM_MEM_BUDGET", "17179869184G"},
        {"RESHIM_MEM_WARN", ""},
        {"RESHIM_MEM_WARN", "0%"},
        {"RESHIM_MEM_WARN", "150%"},
        {"RESHIM_MEM_WARN", "80"},
        {"RESHIM_MEM_WARN", "-10%"},
        {"RESHIM_MEM_TRIM", ""},
        {"RESHIM_MEM_TRIM", "0%"},
        {"RESHIM_MEM_TRIM", "101%"},
        {"RESHIM_MEM_TRIM", "90"},
        {"RESHIM_MEM_POLICY", ""},
        {"RESHIM_MEM_POLICY", "kill"},
        {"RESHIM_MEM_POLICY", "trim,warn"},
        {"RESHIM_HEAP_UNWINDER", "frame-pointers"},
        {"RESHIM_HEAP_PYTHON", "maybe"},
        {"RESHIM_HEAP_SAMPLE", ""},
        {"RESHIM_HEAP_SAMPLE", "-1"},
        {"RESHIM_HEAP_SAMPLE", "2G"},
        {"RESHIM_HEAP_SAMPLE", "512Q"},
        {"RESHIM_HEAP_SAMPLE", "1.5.K"},
        {"RESHIM_HEAP_SAMPLE", "99999999999999999999999G"},
        {"RESHIM_RUN_DIR", ""},
        {"RESHIM_RUN_DIR", "relative/dir"},
        {"RESHIM_RUN_DIR", "~/reshim"},
        {"RESHIM_RUN_DIR", long_run_dir},
        {"RESHIM_INTERVAL", ""},
        {"RESHIM_INTERVAL", "0"},
        {"RESHIM_INTERVAL", "1"},
        {"RESHIM_INTERVAL", "5ms"},
        {"RESHIM_INTERVAL", "9.9ms"},
        {"RESHIM_INTERVAL", "2h"},
        {"RESHIM_PUSH", ""},
        {"RESHIM_PUSH", long_push},
    };
    int seen[V_COUNT] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_bad_value(cases[i].var, cases[i].value);
        for (int v = 0; v < V_COUNT; v++)
            if (strcmp(reshim_config_names[v], cases[i].var) == 0)
                seen[v]++;
    }
    /* Every variable of the table has at least one bad value tested. */
    for (int v = 0; v < V_COUNT; v++)
        CHECK(seen[v] > 0, "no bad value tested for %s", reshim_config_names[v]);
}

static void test_several_bad_values_counted(void **state)
{
    struct fake_env env = {0};
    env_set(&env, "RESHIM_RETRIES", "lots");
    env_set(&env, "RESHIM_JITTER", "wobbly");
    env_set(&env, "RESHIM_INTERVAL", "1");
    env_set(&env, "RESHIM_BREAKER", "9");
    struct warns w;
    struct reshim_config c;
    assert_int_equal(load(&c, &env, &w), 3);
    assert_int_equal(w.n, 3);
    /* In libreshim(7)'s order, each once. */
    assert_string_equal(w.var[0], "RESHIM_RETRIES");
    assert_string_equal(w.value[0], "lots");
    assert_string_equal(w.var[1], "RESHIM_JITTER");
    assert_string_equal(w.value[1], "wobbly");
    assert_string_equal(w.var[2], "RESHIM_INTERVAL");
    assert_string_equal(w.value[2], "1");
    assert_int_equal(c.retries, 5);
    assert_int_equal(c.jitter, JITTER_EQUAL);
    assert_int_equal(c.interval_ns, SEC);
    assert_int_equal(c.breaker, 9);
    assert_int_equal(c.source[V_RETRIES], SRC_INVALID);
    assert_int_equal(c.source[V_JITTER], SRC_INVALID);
    assert_int_equal(c.source[V_INTERVAL], SRC_INVALID);
    assert_int_equal(c.source[V_BREAKER], SRC_ENV);
    assert_int_equal(c.source[V_LOG], SRC_DEFAULT);
}

/* ---- cross checks ---- */

static void test_backoff_max_below_base(void **state)
{
    struct fake_env env = {0};
    struct warns w;
    struct reshim_config c;

    env_set(&env, "RESHIM_BACKOFF_BASE", "2s");
    env_set(&env, "RESHIM_BACKOFF_MAX", "1s");
    assert_int_equal(load(&c, &env, &w), 1);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.var[0], "RESHIM_BACKOFF_MAX");
    assert_string_equal(w.value[0], "1s");
    assert_true(w.expected[0][0] != '\0');
    assert_int_equal(c.backoff_base_ns, 2 * SEC);
    assert_int_equal(c.backoff_max_ns, 2 * SEC); /* the cap is raised to the base */
    assert_true(c.backoff_max_ns >= c.backoff_base_ns);

    /* A base above the default cap (1 s), with no cap set: the cap follows
     * the base, and nothing is wrong with that. */
    struct fake_env env2 = {0};
    env_set(&env2, "RESHIM_BACKOFF_BASE", "10s");
    assert_int_equal(load(&c, &env2, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(c.backoff_base_ns, 10 * SEC);
    assert_int_equal(c.backoff_max_ns, 10 * SEC);

    /* Equal is fine. */
    struct fake_env env3 = {0};
    env_set(&env3, "RESHIM_BACKOFF_BASE", "3s");
    env_set(&env3, "RESHIM_BACKOFF_MAX", "3000ms");
    assert_int_equal(load(&c, &env3, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(c.backoff_max_ns, 3 * SEC);
}

static void test_mem_warn_above_trim(void **state)
{
    struct fake_env env = {0};
    struct warns w;
    struct reshim_config c;

    env_set(&env, "RESHIM_MEM_WARN", "95%");
    env_set(&env, "RESHIM_MEM_TRIM", "90%");
    assert_int_equal(load(&c, &env, &w), 1);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.var[0], "RESHIM_MEM_WARN");
    assert_string_equal(w.value[0], "95%");
    assert_true(feq(c.mem_warn, 0.80));
    assert_true(feq(c.mem_trim, 0.90));
    assert_int_equal(c.source[V_MEM_WARN], SRC_INVALID);
    assert_int_equal(c.source[V_MEM_TRIM], SRC_INVALID);

    /* Both set, both non-default: both fall back. */
    env_set(&env, "RESHIM_MEM_WARN", "50%");
    env_set(&env, "RESHIM_MEM_TRIM", "40%");
    assert_int_equal(load(&c, &env, &w), 1);
    assert_int_equal(w.n, 1);
    assert_true(feq(c.mem_warn, 0.80));
    assert_true(feq(c.mem_trim, 0.90));

    /* Only MEM_WARN set, above the default trim. */
    struct fake_env env2 = {0};
    env_set(&env2, "RESHIM_MEM_WARN", "100%");
    assert_int_equal(load(&c, &env2, &w), 1);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.var[0], "RESHIM_MEM_WARN");
    assert_true(feq(c.mem_warn, 0.80));
    assert_true(feq(c.mem_trim, 0.90));

    /* Equal shares are fine; so is warn below trim. */
    struct fake_env env3 = {0};
    env_set(&env3, "RESHIM_MEM_WARN", "85%");
    env_set(&env3, "RESHIM_MEM_TRIM", "85%");
    assert_int_equal(load(&c, &env3, &w), 0);
    assert_true(feq(c.mem_warn, 0.85));
    assert_true(feq(c.mem_trim, 0.85));
    assert_int_equal(c.source[V_MEM_WARN], SRC_ENV);
    assert_int_equal(c.source[V_MEM_TRIM], SRC_ENV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_follow_spec),
        cmocka_unit_test(test_defaults_empty_environment),
        cmocka_unit_test(test_defaults_unrelated_environment),
        cmocka_unit_test(test_default_run_dir),
        cmocka_unit_test(test_run_dir_after_uid_change),
        cmocka_unit_test(test_parse_size_good),
        cmocka_unit_test(test_parse_size_bad),
        cmocka_unit_test(test_parse_percent),
        cmocka_unit_test(test_parse_duration_good),
        cmocka_unit_test(test_parse_duration_bad),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_every_variable_from_env),
        cmocka_unit_test(test_source_env_for_default_values),
        cmocka_unit_test(test_good_values_one_by_one),
        cmocka_unit_test(test_path_length_limits),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_several_bad_values_counted),
        cmocka_unit_test(test_backoff_max_below_base),
        cmocka_unit_test(test_mem_warn_above_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
