/* test_budget.c: unit tests of shim/budget.c, the memory budget's pure
 * decisions: state and source names; where the budget comes from (sizes,
 * shares of the container limit, auto, off; directly and through
 * RESHIM_MEM_BUDGET parsed by config.c with a fake environment); the usage
 * figure (RSS vs the container's working set); the state machine (every
 * threshold at its exact byte, hysteresis on the way down, misconfigured
 * shares); the trim floor and when to trim (policy, state, 30 s rate limit,
 * floor); the allocation gate; denial under enforce (2 % reserve for small
 * requests, exact boundaries, overflow); the RSS poll interval; plus a
 * multi-threaded run for TSan. Expected values are written out in integer
 * arithmetic, independently of budget.c's floating point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "budget.h"
#include "config.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * 1024 * 1024)
#define UID 1000u

/* The budget most tests use: 100 MiB, so that every whole percent of it is a
 * whole number of bytes (1 % = 1048576 bytes). */
#define B (100 * MiB)
#define PCT(n) (B / 100 * (n)) /* n % of B, exact */

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

static int feq(double a, double b)
{
    double d = a - b;
    return d < 1e-9 && d > -1e-9;
}

static struct budget_params params(uint64_t budget, double warn, double trim,
                                   enum reshim_mem_policy policy)
{
    struct budget_params p;
    memset(&p, 0, sizeof p);
    p.budget = budget;
    p.warn = warn;
    p.trim = trim;
    p.policy = policy;
    return p;
}

/* The defaults: 80 % warn, 90 % trim, policy trim. */
static struct budget_params dflt(uint64_t budget)
{
    return params(budget, 0.80, 0.90, MEMPOL_TRIM);
}

#define ST(p, cur, usage) budget_next_state((p), (cur), (usage))

#define EXPECT_STATE(p, cur, usage, want)                                                  \
    do {                                                                                   \
        enum mem_state got_ = ST((p), (cur), (usage));                                     \
        CHECK(got_ == (want), "from %s at %llu of %llu: %s, want %s", mem_state_name(cur), \
              (unsigned long long)(usage), (unsigned long long)(p)->budget,                \
              mem_state_name(got_), mem_state_name(want));                                 \
    } while (0)

/* ---- fake environment for the config parser ---- */

#define ENV_MAX 16
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

static void warn_count(void *ctx, const char *var, const char *value, const char *expected)
{
    (*(int *)ctx)++;
}

/* A configuration with RESHIM_MEM_BUDGET=value (NULL: unset); asserts it
 * parsed with as many bad values as given. */
static void load_budget(struct reshim_config *c, const char *value, int bad)
{
    struct fake_env env = {0};
    if (value)
        env_set(&env, "RESHIM_MEM_BUDGET", value);
    int warns = 0;
    int got = reshim_config_load(c, env_get, &env, warn_count, &warns, UID);
    CHECK(got == bad && warns == bad, "RESHIM_MEM_BUDGET=%s: %d bad values, %d warnings, want %d",
          value ? value : "(unset)", got, warns, bad);
}

/* ---- names ---- */

static void test_names(void **state)
{
    assert_string_equal(mem_state_name(MS_OK), "ok");
    assert_string_equal(mem_state_name(MS_WARN), "warn");
    assert_string_equal(mem_state_name(MS_CRITICAL), "critical");
    assert_string_equal(mem_state_name(MS_OVER), "over");
    assert_string_equal(mem_state_name((enum mem_state)4), "?");
    assert_string_equal(mem_state_name((enum mem_state)1000), "?");
    assert_string_equal(mem_state_name((enum mem_state)-1), "?");

    assert_string_equal(budget_source_name(BSRC_NONE), "none");
    assert_string_equal(budget_source_name(BSRC_ENV), "env");
    assert_string_equal(budget_source_name(BSRC_CGROUP), "cgroup");
    assert_string_equal(budget_source_name((enum budget_source)3), "?");
    assert_string_equal(budget_source_name((enum budget_source)1000), "?");
    assert_string_equal(budget_source_name((enum budget_source)-1), "?");
}

/* ---- budget_resolve ---- */

/* A config of a given kind, everything else at its default. */
static struct reshim_config kind(enum reshim_budget_kind k, uint64_t bytes, double fraction)
{
    struct reshim_config c;
    reshim_config_defaults(&c, UID, NULL);
    c.mem_budget_kind = k;
    c.mem_budget_bytes = bytes;
    c.mem_budget_fraction = fraction;
    return c;
}

#define EXPECT_RESOLVE(c, limit, want_bytes, want_src)                                      \
    do {                                                                                    \
        enum budget_source src_ = (enum budget_source)99; /* must be overwritten */         \
        uint64_t got_ = budget_resolve((c), (limit), &src_);                                \
        CHECK(got_ == (want_bytes) && src_ == (want_src),                                   \
              "resolve with limit %llu: %llu/%s, want %llu/%s", (unsigned long long)(limit), \
              (unsigned long long)got_, budget_source_name(src_),                           \
              (unsigned long long)(want_bytes), budget_source_name(want_src));              \
    } while (0)

static void test_resolve_bytes(void **state)
{
    struct reshim_config c = kind(BUDGET_BYTES, 200 * MiB, 0);
    EXPECT_RESOLVE(&c, 0, 200 * MiB, BSRC_ENV);
    /* The size wins over the container limit, below or above it. */
    EXPECT_RESOLVE(&c, 256 * MiB, 200 * MiB, BSRC_ENV);
    EXPECT_RESOLVE(&c, 100 * MiB, 200 * MiB, BSRC_ENV);
    c.mem_budget_bytes = 1;
    EXPECT_RESOLVE(&c, 0, 1, BSRC_ENV);
    c.mem_budget_bytes = UINT64_MAX;
    EXPECT_RESOLVE(&c, 0, UINT64_MAX, BSRC_ENV);
    /* 0 bytes: no budget. */
    c.mem_budget_bytes = 0;
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);
    EXPECT_RESOLVE(&c, 256 * MiB, 0, BSRC_NONE);
}

static void test_resolve_percent(void **state)
{
    struct reshim_config c = kind(BUDGET_PERCENT, 0, 0.50);
    EXPECT_RESOLVE(&c, 256 * MiB, 128 * MiB, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);
    EXPECT_RESOLVE(&c, 1 * GiB, 512 * MiB, BSRC_CGROUP);
    c.mem_budget_fraction = 0.25;
    EXPECT_RESOLVE(&c, 256 * MiB, 64 * MiB, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);
    c.mem_budget_fraction = 0.90;
    EXPECT_RESOLVE(&c, 1000 * MiB, 900 * MiB, BSRC_CGROUP);
    c.mem_budget_fraction = 1.0;
    EXPECT_RESOLVE(&c, 256 * MiB, 256 * MiB, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);
    /* Huge limits do not overflow. */
    EXPECT_RESOLVE(&c, UINT64_MAX, UINT64_MAX, BSRC_CGROUP);
    c.mem_budget_fraction = 0.50;
    EXPECT_RESOLVE(&c, UINT64_MAX, 1ull << 63, BSRC_CGROUP);
}

static void test_resolve_auto_off(void **state)
{
    struct reshim_config c = kind(BUDGET_AUTO, 0, 0);
    EXPECT_RESOLVE(&c, 256 * MiB, 256 * MiB, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 1, 1, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);

    c = kind(BUDGET_OFF, 0, 0);
    EXPECT_RESOLVE(&c, 256 * MiB, 0, BSRC_NONE);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);
    /* Leftover fields of another kind are ignored. */
    c = kind(BUDGET_OFF, 200 * MiB, 0.5);
    EXPECT_RESOLVE(&c, 256 * MiB, 0, BSRC_NONE);
    c = kind(BUDGET_AUTO, 200 * MiB, 0.5);
    EXPECT_RESOLVE(&c, 256 * MiB, 256 * MiB, BSRC_CGROUP);
    c = kind(BUDGET_BYTES, 200 * MiB, 0.5);
    EXPECT_RESOLVE(&c, 256 * MiB, 200 * MiB, BSRC_ENV);
}

/* RESHIM_MEM_BUDGET strings through config.c, then resolved. */
static void test_resolve_from_env(void **state)
{
    struct reshim_config c;

    load_budget(&c, "200M", 0);
    assert_int_equal(c.mem_budget_kind, BUDGET_BYTES);
    assert_int_equal(c.mem_budget_bytes, 200 * MiB);
    assert_int_equal(c.source[V_MEM_BUDGET], SRC_ENV);
    EXPECT_RESOLVE(&c, 0, 200 * MiB, BSRC_ENV);
    EXPECT_RESOLVE(&c, 256 * MiB, 200 * MiB, BSRC_ENV);

    load_budget(&c, "1G", 0);
    EXPECT_RESOLVE(&c, 256 * MiB, 1 * GiB, BSRC_ENV);

    load_budget(&c, "50%", 0);
    assert_int_equal(c.mem_budget_kind, BUDGET_PERCENT);
    assert_true(feq(c.mem_budget_fraction, 0.50));
    EXPECT_RESOLVE(&c, 256 * MiB, 128 * MiB, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);

    load_budget(&c, "100%", 0);
    EXPECT_RESOLVE(&c, 256 * MiB, 256 * MiB, BSRC_CGROUP);

    load_budget(&c, "auto", 0);
    assert_int_equal(c.mem_budget_kind, BUDGET_AUTO);
    EXPECT_RESOLVE(&c, 256 * MiB, 256 * MiB, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);

    load_budget(&c, "off", 0);
    assert_int_equal(c.mem_budget_kind, BUDGET_OFF);
    EXPECT_RESOLVE(&c, 256 * MiB, 0, BSRC_NONE);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);

    /* Unset: auto. */
    load_budget(&c, NULL, 0);
    assert_int_equal(c.mem_budget_kind, BUDGET_AUTO);
    assert_int_equal(c.source[V_MEM_BUDGET], SRC_DEFAULT);
    EXPECT_RESOLVE(&c, 256 * MiB, 256 * MiB, BSRC_CGROUP);
    EXPECT_RESOLVE(&c, 0, 0, BSRC_NONE);

    /* A bad value ("0" is below the 1 MiB minimum) falls back to auto. */
    load_budget(&c, "0", 1);
    assert_int_equal(c.mem_budget_kind, BUDGET_AUTO);
    assert_int_equal(c.source[V_MEM_BUDGET], SRC_INVALID);
    EXPECT_RESOLVE(&c, 256 * MiB, 256 * MiB, BSRC_CGROUP);
}

/* ---- budget_usage ---- */

static void test_usage(void **state)
{
    /* Working set above RSS: counts only when the budget is the cgroup's. */
    assert_int_equal(budget_usage(10 * MiB, 20 * MiB, BSRC_NONE), 10 * MiB);
    assert_int_equal(budget_usage(10 * MiB, 20 * MiB, BSRC_ENV), 10 * MiB);
    assert_int_equal(budget_usage(10 * MiB, 20 * MiB, BSRC_CGROUP), 20 * MiB);
    /* RSS above the working set: RSS for every source. */
    assert_int_equal(budget_usage(30 * MiB, 20 * MiB, BSRC_NONE), 30 * MiB);
    assert_int_equal(budget_usage(30 * MiB, 20 * MiB, BSRC_ENV), 30 * MiB);
    assert_int_equal(budget_usage(30 * MiB, 20 * MiB, BSRC_CGROUP), 30 * MiB);
    /* Equal, zero, extremes. */
    assert_int_equal(budget_usage(7, 7, BSRC_CGROUP), 7);
    assert_int_equal(budget_usage(0, 0, BSRC_CGROUP), 0);
    assert_int_equal(budget_usage(0, 5, BSRC_ENV), 0);
    assert_int_equal(budget_usage(0, 5, BSRC_CGROUP), 5);
    assert_true(budget_usage(1, UINT64_MAX, BSRC_CGROUP) == UINT64_MAX);
    assert_true(budget_usage(1, UINT64_MAX, BSRC_ENV) == 1);
    assert_true(budget_usage(UINT64_MAX, 1, BSRC_CGROUP) == UINT64_MAX);
}

/* ---- budget_next_state ---- */

static void test_state_rising(void **state)
{
    struct budget_params p = dflt(B);
    EXPECT_STATE(&p, MS_OK, 0, MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(50), MS_OK);
    /* warn at exactly 80 %. */
    EXPECT_STATE(&p, MS_OK, PCT(80) - 1, MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(80), MS_WARN);
    EXPECT_STATE(&p, MS_WARN, PCT(80), MS_WARN);
    EXPECT_STATE(&p, MS_WARN, PCT(85), MS_WARN);
    /* critical at exactly 90 %. */
    EXPECT_STATE(&p, MS_WARN, PCT(90) - 1, MS_WARN);
    EXPECT_STATE(&p, MS_WARN, PCT(90), MS_CRITICAL);
    EXPECT_STATE(&p, MS_CRITICAL, PCT(95), MS_CRITICAL);
    /* over at exactly the budget. */
    EXPECT_STATE(&p, MS_CRITICAL, B - 1, MS_CRITICAL);
    EXPECT_STATE(&p, MS_CRITICAL, B, MS_OVER);
    EXPECT_STATE(&p, MS_OVER, B, MS_OVER);
    EXPECT_STATE(&p, MS_OVER, 2 * B, MS_OVER);
    EXPECT_STATE(&p, MS_OVER, UINT64_MAX, MS_OVER);

    /* From ok, every level is reached directly: the highest one reached. */
    EXPECT_STATE(&p, MS_OK, PCT(90) - 1, MS_WARN);
    EXPECT_STATE(&p, MS_OK, PCT(90), MS_CRITICAL);
    EXPECT_STATE(&p, MS_OK, B - 1, MS_CRITICAL);
    EXPECT_STATE(&p, MS_OK, B, MS_OVER);
    EXPECT_STATE(&p, MS_OK, UINT64_MAX, MS_OVER);
    EXPECT_STATE(&p, MS_WARN, B, MS_OVER);

    /* Other shares, from the configuration (60 %, 70 %). */
    struct budget_params q = params(B, 0.60, 0.75, MEMPOL_ENFORCE);
    EXPECT_STATE(&q, MS_OK, PCT(60) - 1, MS_OK);
    EXPECT_STATE(&q, MS_OK, PCT(60), MS_WARN);
    EXPECT_STATE(&q, MS_OK, PCT(75) - 1, MS_WARN);
    EXPECT_STATE(&q, MS_OK, PCT(75), MS_CRITICAL);
    EXPECT_STATE(&q, MS_OK, B - 1, MS_CRITICAL);
    EXPECT_STATE(&q, MS_OK, B, MS_OVER);

    /* The policy does not change the state. */
    for (int pol = MEMPOL_WARN; pol <= MEMPOL_ENFORCE; pol++) {
        struct budget_params r = params(B, 0.80, 0.90, (enum reshim_mem_policy)pol);
        EXPECT_STATE(&r, MS_OK, PCT(80), MS_WARN);
        EXPECT_STATE(&r, MS_OK, PCT(90), MS_CRITICAL);
        EXPECT_STATE(&r, MS_OK, B, MS_OVER);
    }
}

static void test_state_falling_hysteresis(void **state)
{
    struct budget_params p = dflt(B);
    /* Leaving warn (80 %): only below 75 %. */
    EXPECT_STATE(&p, MS_WARN, PCT(80) - 1, MS_WARN);
    EXPECT_STATE(&p, MS_WARN, PCT(76), MS_WARN);
    EXPECT_STATE(&p, MS_WARN, PCT(75), MS_WARN);
    EXPECT_STATE(&p, MS_WARN, PCT(75) - 1, MS_OK);
    EXPECT_STATE(&p, MS_WARN, PCT(50), MS_OK);
    EXPECT_STATE(&p, MS_WARN, 0, MS_OK);

    /* Leaving critical (90 %): only below 85 %, to warn or further. */
    EXPECT_STATE(&p, MS_CRITICAL, PCT(86), MS_CRITICAL);
    EXPECT_STATE(&p, MS_CRITICAL, PCT(85), MS_CRITICAL);
    EXPECT_STATE(&p, MS_CRITICAL, PCT(85) - 1, MS_WARN);
    EXPECT_STATE(&p, MS_CRITICAL, PCT(76), MS_WARN); /* still within warn's hysteresis */
    EXPECT_STATE(&p, MS_CRITICAL, PCT(75) - 1, MS_OK);

    /* Leaving over (100 %): only below 95 %. */
    EXPECT_STATE(&p, MS_OVER, B - 1, MS_OVER);
    EXPECT_STATE(&p, MS_OVER, PCT(96), MS_OVER);
    EXPECT_STATE(&p, MS_OVER, PCT(95), MS_OVER);
    EXPECT_STATE(&p, MS_OVER, PCT(95) - 1, MS_CRITICAL);
    EXPECT_STATE(&p, MS_OVER, B / 1000 * 949, MS_CRITICAL); /* 94.9 % */
    EXPECT_STATE(&p, MS_OVER, PCT(85), MS_CRITICAL);
    EXPECT_STATE(&p, MS_OVER, PCT(85) - 1, MS_WARN);
    EXPECT_STATE(&p, MS_OVER, PCT(75), MS_WARN);
    /* Straight from over to ok. */
    EXPECT_STATE(&p, MS_OVER, PCT(75) - 1, MS_OK);
    EXPECT_STATE(&p, MS_OVER, PCT(10), MS_OK);
    EXPECT_STATE(&p, MS_OVER, 0, MS_OK);

    /* Thresholds closer than the hysteresis: falling never raises the state
     * (usage + 5 % reaches the next threshold up, but usage has fallen). */
    struct budget_params close = params(B, 0.88, 0.90, MEMPOL_TRIM);
    EXPECT_STATE(&close, MS_WARN, PCT(86), MS_WARN);
    EXPECT_STATE(&close, MS_WARN, PCT(83), MS_WARN);
    EXPECT_STATE(&close, MS_WARN, PCT(83) - 1, MS_OK);
    close = params(B, 0.80, 0.97, MEMPOL_TRIM);
    EXPECT_STATE(&close, MS_CRITICAL, PCT(96), MS_CRITICAL);
    EXPECT_STATE(&close, MS_CRITICAL, PCT(92), MS_CRITICAL);
    EXPECT_STATE(&close, MS_CRITICAL, PCT(92) - 1, MS_WARN);

    /* A full cycle, step by step. */
    enum mem_state s = MS_OK;
    const struct { uint64_t usage; enum mem_state want; } walk[] = {
        {PCT(70), MS_OK},       {PCT(80), MS_WARN},     {PCT(78), MS_WARN},
        {PCT(91), MS_CRITICAL}, {PCT(87), MS_CRITICAL}, {PCT(101), MS_OVER},
        {PCT(96), MS_OVER},     {PCT(94), MS_CRITICAL}, {PCT(90), MS_CRITICAL},
        {PCT(84), MS_WARN},     {PCT(89), MS_WARN},     {PCT(90), MS_CRITICAL},
        {PCT(74), MS_OK},       {PCT(79), MS_OK},       {PCT(100), MS_OVER},
        {PCT(1), MS_OK},
    };
    for (size_t i = 0; i < sizeof walk / sizeof walk[0]; i++) {
        enum mem_state next = ST(&p, s, walk[i].usage);
        CHECK(next == walk[i].want, "walk step %zu: %s at %llu: %s, want %s", i,
              mem_state_name(s), (unsigned long long)walk[i].usage, mem_state_name(next),
              mem_state_name(walk[i].want));
        s = next;
    }
}

static void test_state_no_budget(void **state)
{
    struct budget_params p = dflt(0);
    const uint64_t usages[] = {0, 1, 100 * MiB, UINT64_MAX};
    for (int cur = MS_OK; cur <= MS_OVER; cur++)
        for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++)
            EXPECT_STATE(&p, (enum mem_state)cur, usages[i], MS_OK);
    p = params(0, 0.01, 0.02, MEMPOL_ENFORCE);
    EXPECT_STATE(&p, MS_OVER, UINT64_MAX, MS_OK);
}

/* Rising from ok through every usage (sampled): the state never goes down. */
static void assert_monotone(const struct budget_params *p, const char *what)
{
    enum mem_state prev = MS_OK;
    for (uint64_t u = 0; u <= p->budget + p->budget / 10; u += p->budget / 1000 + 1) {
        enum mem_state s = ST(p, MS_OK, u);
        CHECK(s >= prev, "%s: %s at %llu after %s", what, mem_state_name(s),
              (unsigned long long)u, mem_state_name(prev));
        prev = s;
    }
    CHECK(prev == MS_OVER, "%s: not over past the budget", what);
}

static void test_state_misconfigured_shares(void **state)
{
    /* warn above trim: critical is reached together with warn, at the warn
     * share (budget.c's thresholds()). */
    struct budget_params p = params(B, 0.95, 0.90, MEMPOL_TRIM);
    EXPECT_STATE(&p, MS_OK, PCT(90), MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(95) - 1, MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(95), MS_CRITICAL);
    EXPECT_STATE(&p, MS_OK, B - 1, MS_CRITICAL);
    EXPECT_STATE(&p, MS_OK, B, MS_OVER);
    /* Falling: left below 90 %. */
    EXPECT_STATE(&p, MS_CRITICAL, PCT(90), MS_CRITICAL);
    EXPECT_STATE(&p, MS_CRITICAL, PCT(90) - 1, MS_OK);
    assert_monotone(&p, "warn 95% trim 90%");

    /* trim above 1.0: critical is capped at the budget (together with over). */
    p = params(B, 0.80, 1.20, MEMPOL_TRIM);
    EXPECT_STATE(&p, MS_OK, PCT(80) - 1, MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(80), MS_WARN);
    EXPECT_STATE(&p, MS_OK, B - 1, MS_WARN);
    EXPECT_STATE(&p, MS_OK, B, MS_OVER);
    EXPECT_STATE(&p, MS_OVER, PCT(95), MS_OVER);
    EXPECT_STATE(&p, MS_OVER, PCT(95) - 1, MS_WARN);
    assert_monotone(&p, "warn 80% trim 120%");

    /* Both above 1.0, warn above trim: everything at the budget. */
    p = params(B, 1.50, 1.20, MEMPOL_TRIM);
    EXPECT_STATE(&p, MS_OK, B - 1, MS_OK);
    EXPECT_STATE(&p, MS_OK, B, MS_OVER);
    EXPECT_STATE(&p, MS_OVER, PCT(95), MS_OVER);
    EXPECT_STATE(&p, MS_OVER, PCT(95) - 1, MS_OK);
    assert_monotone(&p, "warn 150% trim 120%");

    /* warn above 1.0, trim below it. */
    p = params(B, 1.10, 0.90, MEMPOL_TRIM);
    EXPECT_STATE(&p, MS_OK, PCT(99), MS_OK);
    EXPECT_STATE(&p, MS_OK, B, MS_OVER);
    assert_monotone(&p, "warn 110% trim 90%");

    /* Equal shares: critical (the highest reached) at that share. */
    p = params(B, 0.85, 0.85, MEMPOL_TRIM);
    EXPECT_STATE(&p, MS_OK, PCT(85) - 1, MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(85), MS_CRITICAL);
    assert_monotone(&p, "warn 85% trim 85%");

    /* Zero or negative shares: those thresholds are at 0 bytes. */
    p = params(B, 0.0, 0.0, MEMPOL_TRIM);
    EXPECT_STATE(&p, MS_OK, 0, MS_CRITICAL);
    EXPECT_STATE(&p, MS_OK, B, MS_OVER);
    p = params(B, -1.0, 0.90, MEMPOL_TRIM);
    EXPECT_STATE(&p, MS_OK, 0, MS_WARN);
    EXPECT_STATE(&p, MS_OK, PCT(90), MS_CRITICAL);
    assert_monotone(&p, "warn -100% trim 90%");

    /* The defaults and a few sane ones, monotone too. */
    p = dflt(B);
    assert_monotone(&p, "defaults");
    p = dflt(1 * GiB + 12345);
    assert_monotone(&p, "defaults, odd budget");
    p = params(3 * MiB, 0.01, 0.99, MEMPOL_ENFORCE);
    assert_monotone(&p, "warn 1% trim 99%");
}

/* The shares a configuration gives (RESHIM_MEM_WARN/TRIM/POLICY), used as
 * the shim does. */
static void test_state_from_config(void **state)
{
    struct fake_env env = {0};
    env_set(&env, "RESHIM_MEM_BUDGET", "100M");
    env_set(&env, "RESHIM_MEM_WARN", "60%");
    env_set(&env, "RESHIM_MEM_TRIM", "75%");
    env_set(&env, "RESHIM_MEM_POLICY", "enforce");
    struct reshim_config c;
    int warns = 0;
    assert_int_equal(reshim_config_load(&c, env_get, &env, warn_count, &warns, UID), 0);
    enum budget_source src;
    struct budget_params p = params(budget_resolve(&c, 0, &src), c.mem_warn, c.mem_trim,
                                    c.mem_policy);
    assert_int_equal(src, BSRC_ENV);
    assert_int_equal(p.budget, B);
    EXPECT_STATE(&p, MS_OK, PCT(60) - 1, MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(60), MS_WARN);
    EXPECT_STATE(&p, MS_OK, PCT(75) - 1, MS_WARN);
    EXPECT_STATE(&p, MS_OK, PCT(75), MS_CRITICAL);
    EXPECT_STATE(&p, MS_OK, B, MS_OVER);
    EXPECT_STATE(&p, MS_WARN, PCT(55), MS_WARN);
    EXPECT_STATE(&p, MS_WARN, PCT(55) - 1, MS_OK);
    assert_true(budget_gate_armed(&p, MS_WARN));
    assert_true(budget_should_deny(&p, PCT(98), 64 * KiB + 1));

    /* Defaults: 80 %, 90 %, trim. */
    struct fake_env env2 = {0};
    env_set(&env2, "RESHIM_MEM_BUDGET", "100M");
    assert_int_equal(reshim_config_load(&c, env_get, &env2, warn_count, &warns, UID), 0);
    p = params(budget_resolve(&c, 0, &src), c.mem_warn, c.mem_trim, c.mem_policy);
    EXPECT_STATE(&p, MS_OK, PCT(80) - 1, MS_OK);
    EXPECT_STATE(&p, MS_OK, PCT(80), MS_WARN);
    EXPECT_STATE(&p, MS_OK, PCT(90), MS_CRITICAL);
    assert_false(budget_gate_armed(&p, MS_OVER));
    assert_false(budget_should_deny(&p, UINT64_MAX, SIZE_MAX));
}

/* ---- trim ---- */

static void test_trim_floor(void **state)
{
    assert_int_equal(budget_trim_floor(0), 1 * MiB);
    assert_int_equal(budget_trim_floor(1), 1 * MiB);
    assert_int_equal(budget_trim_floor(10 * MiB), 1 * MiB);
    assert_int_equal(budget_trim_floor(20 * MiB - 20), 1 * MiB);
    assert_int_equal(budget_trim_floor(20 * MiB), 1 * MiB);
    assert_int_equal(budget_trim_floor(20 * MiB + 20), 1 * MiB + 1);
    assert_int_equal(budget_trim_floor(20 * MiB + 39), 1 * MiB + 1);
    assert_int_equal(budget_trim_floor(100 * MiB), 5 * MiB);
    assert_int_equal(budget_trim_floor(1 * GiB), 1 * GiB / 20);
    assert_int_equal(budget_trim_floor(1280 * MiB - 20), 64 * MiB - 1);
    assert_int_equal(budget_trim_floor(1280 * MiB), 64 * MiB);
    assert_int_equal(budget_trim_floor(1280 * MiB + 20), 64 * MiB);
    assert_int_equal(budget_trim_floor(10 * GiB), 64 * MiB);
    assert_int_equal(budget_trim_floor(UINT64_MAX), 64 * MiB);
}

static void test_should_trim(void **state)
{
    struct budget_params p = dflt(B); /* policy trim, floor 5 MiB */
    const uint64_t now = 1000 * SEC;
    const uint64_t floor = 5 * MiB;
    assert_int_equal(budget_trim_floor(B), floor);

    /* Never trimmed, critical, enough to reclaim. */
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, 0, 0, floor));
    assert_true(budget_should_trim(&p, MS_OVER, now, 0, 0, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, 0, 0, UINT64_MAX));
    /* last_trim_ns 0 means never, even right after boot. */
    assert_true(budget_should_trim(&p, MS_CRITICAL, 1, 0, 0, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, 0, 0, 0, floor));

    /* Below critical: never. */
    assert_false(budget_should_trim(&p, MS_OK, now, 0, 0, UINT64_MAX));
    assert_false(budget_should_trim(&p, MS_WARN, now, 0, 0, UINT64_MAX));

    /* Policy warn: never; enforce: like trim. */
    struct budget_params w = params(B, 0.80, 0.90, MEMPOL_WARN);
    assert_false(budget_should_trim(&w, MS_CRITICAL, now, 0, 0, UINT64_MAX));
    assert_false(budget_should_trim(&w, MS_OVER, now, 0, 0, UINT64_MAX));
    struct budget_params e = params(B, 0.80, 0.90, MEMPOL_ENFORCE);
    assert_true(budget_should_trim(&e, MS_CRITICAL, now, 0, 0, floor));
    assert_true(budget_should_trim(&e, MS_OVER, now, 0, 0, floor));
    assert_false(budget_should_trim(&e, MS_WARN, now, 0, 0, floor));

    /* At most once per 30 s. */
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, now, 0, floor));
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, now - 1 * SEC, 0, floor));
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, now - 30 * SEC + 1, 0, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, now - 30 * SEC, 0, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, now - 31 * SEC, 0, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, 1, 0, floor));
    assert_int_equal(BUDGET_TRIM_INTERVAL_NS, 30 * SEC);
    /* A trim at t = 1 ns (not "never"): rate limited until 30 s + 1 ns. */
    assert_false(budget_should_trim(&p, MS_CRITICAL, 30 * SEC, 1, 0, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, 30 * SEC + 1, 1, 0, floor));

    /* After a trim that released at least the floor: again after 1 s (not
     * 30), so that a program freeing in steps gets each step back. */
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, now - 1 * SEC + 1, floor, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, now - 1 * SEC, floor, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, now - 1 * SEC, UINT64_MAX, floor));
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, now - 1 * SEC, floor - 1, floor));
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, now - 30 * SEC + 1, floor - 1, floor));
    assert_true(budget_should_trim(&p, MS_CRITICAL, now, now - 30 * SEC, floor - 1, floor));
    /* An episode: after a trim that paid off, any state will do, for 30 s;
     * never after a futile one. */
    assert_true(budget_should_trim(&p, MS_WARN, now, now - 1 * SEC, floor, floor));
    assert_true(budget_should_trim(&p, MS_WARN, now, now - 30 * SEC + 1, floor, floor));
    assert_false(budget_should_trim(&p, MS_WARN, now, now - 30 * SEC, floor, floor));
    assert_false(budget_should_trim(&p, MS_WARN, now, now - 1 * SEC + 1, floor, floor));
    assert_false(budget_should_trim(&p, MS_WARN, now, now - 2 * SEC, floor - 1, floor));
    assert_false(budget_should_trim(&p, MS_WARN, now, 0, floor, floor));
    assert_true(budget_should_trim(&p, MS_OK, now, now - 2 * SEC, floor, floor));
    assert_false(budget_should_trim(&p, MS_OK, now, now - 2 * SEC, floor - 1, floor));
    assert_false(budget_should_trim(&p, MS_OK, now, now - 30 * SEC, floor, floor));
    assert_false(budget_should_trim(&p, MS_OK, now, 0, 0, UINT64_MAX));
    assert_false(budget_should_trim(&p, MS_WARN, now, now - 2 * SEC, floor, floor - 1));
    struct budget_params wp = params(B, 0.80, 0.90, MEMPOL_WARN);
    assert_false(budget_should_trim(&wp, MS_WARN, now, now - 2 * SEC, floor, floor));

    /* Still only when enough is reclaimable now. */
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, now - 1 * SEC, floor, floor - 1));
    assert_int_equal(BUDGET_TRIM_AGAIN_NS, 1 * SEC);

    /* Not worth it below the floor. */
    assert_false(budget_should_trim(&p, MS_CRITICAL, now, 0, 0, floor - 1));
    assert_false(budget_should_trim(&p, MS_OVER, now, 0, 0, 0));
    struct budget_params small = dflt(10 * MiB); /* floor 1 MiB */
    assert_true(budget_should_trim(&small, MS_CRITICAL, now, 0, 0, 1 * MiB));
    assert_false(budget_should_trim(&small, MS_CRITICAL, now, 0, 0, 1 * MiB - 1));
    struct budget_params big = dflt(10 * GiB); /* floor 64 MiB */
    assert_true(budget_should_trim(&big, MS_CRITICAL, now, 0, 0, 64 * MiB));
    assert_false(budget_should_trim(&big, MS_CRITICAL, now, 0, 0, 64 * MiB - 1));

    /* No budget: never. */
    struct budget_params none = dflt(0);
    assert_false(budget_should_trim(&none, MS_CRITICAL, now, 0, 0, UINT64_MAX));
    assert_false(budget_should_trim(&none, MS_OVER, now, 0, 0, UINT64_MAX));
    none.policy = MEMPOL_ENFORCE;
    assert_false(budget_should_trim(&none, MS_OVER, now, 0, 0, UINT64_MAX));
}

/* ---- allocation gate ---- */

static void test_gate_armed(void **state)
{
    for (int pol = MEMPOL_WARN; pol <= MEMPOL_ENFORCE; pol++) {
        for (int s = MS_OK; s <= MS_OVER; s++) {
            struct budget_params p = params(B, 0.80, 0.90, (enum reshim_mem_policy)pol);
            bool want = pol == MEMPOL_ENFORCE && s >= MS_WARN;
            bool got = budget_gate_armed(&p, (enum mem_state)s);
            CHECK(got == want, "policy %s state %s: armed %d, want %d",
                  reshim_mem_policy_name((enum reshim_mem_policy)pol),
                  mem_state_name((enum mem_state)s), got, want);
            p.budget = 0;
            CHECK(!budget_gate_armed(&p, (enum mem_state)s), "policy %s state %s: armed without a budget",
                  reshim_mem_policy_name((enum reshim_mem_policy)pol),
                  mem_state_name((enum mem_state)s));
        }
    }
}

/* ---- denial ---- */

static void test_should_deny_enforce(void **state)
{
    struct budget_params p = params(B, 0.80, 0.90, MEMPOL_ENFORCE);
    const uint64_t reserve = PCT(2); /* 2097152 */
    const size_t small = BUDGET_SMALL_REQUEST - 1, large = BUDGET_SMALL_REQUEST;
    assert_int_equal(BUDGET_SMALL_REQUEST, 64 * KiB);

    /* Far from the budget: nothing denied. */
    assert_false(budget_should_deny(&p, 0, 0));
    assert_false(budget_should_deny(&p, 0, 1));
    assert_false(budget_should_deny(&p, PCT(50), 10 * MiB));
    assert_false(budget_should_deny(&p, 0, B - reserve));
    assert_true(budget_should_deny(&p, 0, B - reserve + 1));

    /* Large requests (>= 64 KiB): up to the budget minus the reserve. */
    uint64_t u = B - reserve - large;
    assert_false(budget_should_deny(&p, u, large));         /* usage + n == B - reserve */
    assert_true(budget_should_deny(&p, u + 1, large));      /* one byte more */
    assert_true(budget_should_deny(&p, u, large + 1));
    assert_false(budget_should_deny(&p, u - 1, large + 1));
    assert_false(budget_should_deny(&p, B - reserve - 1 * MiB, 1 * MiB));
    assert_true(budget_should_deny(&p, B - reserve - 1 * MiB + 1, 1 * MiB));

    /* Small requests (< 64 KiB): may use the reserve, up to the budget. */
    u = B - small;
    assert_false(budget_should_deny(&p, u, small));         /* usage + n == B */
    assert_true(budget_should_deny(&p, u + 1, small));      /* one byte more */
    assert_false(budget_should_deny(&p, B - 1, 1));
    assert_true(budget_should_deny(&p, B - 1, 2));
    assert_false(budget_should_deny(&p, B - reserve, 100)); /* inside the reserve */
    assert_false(budget_should_deny(&p, B - 100, 100));
    assert_true(budget_should_deny(&p, B - 100, 101));
    /* ... which a request of exactly 64 KiB may not. */
    assert_false(budget_should_deny(&p, B - 64 * KiB, small));
    assert_true(budget_should_deny(&p, B - 64 * KiB, large));
    assert_true(budget_should_deny(&p, B - reserve, large));

    /* Usage at or past the budget. */
    assert_false(budget_should_deny(&p, B, 0));
    assert_true(budget_should_deny(&p, B, 1));
    assert_true(budget_should_deny(&p, B + 1, 1));
    assert_true(budget_should_deny(&p, B + 1, 0));
    assert_true(budget_should_deny(&p, 2 * B, 1));
    assert_true(budget_should_deny(&p, UINT64_MAX, 1));
    assert_true(budget_should_deny(&p, UINT64_MAX, large));

    /* n = SIZE_MAX never wraps around to look small. */
    assert_true(budget_should_deny(&p, 0, SIZE_MAX));
    assert_true(budget_should_deny(&p, 1, SIZE_MAX));
    assert_true(budget_should_deny(&p, B - reserve, SIZE_MAX));
    assert_true(budget_should_deny(&p, UINT64_MAX, SIZE_MAX));
    assert_true(budget_should_deny(&p, 0, SIZE_MAX / 2 + 1));
    /* Even with the largest budget. */
    struct budget_params huge = params(UINT64_MAX, 0.80, 0.90, MEMPOL_ENFORCE);
    assert_true(budget_should_deny(&huge, 0, SIZE_MAX));
    assert_true(budget_should_deny(&huge, UINT64_MAX, 1));
    assert_false(budget_should_deny(&huge, UINT64_MAX - 1, 1));
    assert_true(budget_should_deny(&huge, UINT64_MAX - 1, 2));
    assert_false(budget_should_deny(&huge, 1ull << 62, 1 * GiB));

    /* A budget of a few bytes: the reserve rounds to 0. */
    struct budget_params tiny = params(10, 0.80, 0.90, MEMPOL_ENFORCE);
    assert_false(budget_should_deny(&tiny, 0, 10));
    assert_true(budget_should_deny(&tiny, 0, 11));
    assert_true(budget_should_deny(&tiny, 0, large));
}

static void test_should_deny_other_policies(void **state)
{
    const uint64_t usages[] = {0, B - 1, B, B + 1, UINT64_MAX};
    const size_t sizes[] = {0, 1, BUDGET_SMALL_REQUEST - 1, BUDGET_SMALL_REQUEST, 1 * GiB,
                            SIZE_MAX};
    for (int pol = MEMPOL_WARN; pol <= MEMPOL_TRIM; pol++) {
        struct budget_params p = params(B, 0.80, 0.90, (enum reshim_mem_policy)pol);
        for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++)
            for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++)
                CHECK(!budget_should_deny(&p, usages[i], sizes[j]),
                      "policy %s denied %zu bytes at usage %llu",
                      reshim_mem_policy_name(p.policy), sizes[j], (unsigned long long)usages[i]);
    }
    /* Enforce without a budget. */
    struct budget_params none = params(0, 0.80, 0.90, MEMPOL_ENFORCE);
    for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++)
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++)
            CHECK(!budget_should_deny(&none, usages[i], sizes[j]),
                  "no budget: denied %zu bytes at usage %llu", sizes[j],
                  (unsigned long long)usages[i]);
}

/* ---- poll interval ---- */

static void test_poll_interval(void **state)
{
    struct budget_params p = dflt(B);
    assert_int_equal(budget_poll_interval_ns(&p, 0), 100 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, PCT(25)), 100 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, PCT(50) - 1), 100 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, PCT(50)), 50 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, PCT(60)), 50 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, PCT(70) - 1), 50 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, PCT(70)), 10 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, PCT(90)), 10 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, B), 10 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, 2 * B), 10 * MS);
    assert_int_equal(budget_poll_interval_ns(&p, UINT64_MAX), 10 * MS);
    /* Independent of the policy and of the warn/trim shares. */
    struct budget_params q = params(B, 0.10, 0.20, MEMPOL_ENFORCE);
    assert_int_equal(budget_poll_interval_ns(&q, PCT(50) - 1), 100 * MS);
    assert_int_equal(budget_poll_interval_ns(&q, PCT(50)), 50 * MS);
    assert_int_equal(budget_poll_interval_ns(&q, PCT(70)), 10 * MS);
    /* Another budget: 1 GiB (50 % and 70 % of it are not whole at 70 %:
     * 751619276.8 bytes, so 751619276 is below 70 % and 751619277 above). */
    struct budget_params g = dflt(1 * GiB);
    assert_int_equal(budget_poll_interval_ns(&g, 512 * MiB - 1), 100 * MS);
    assert_int_equal(budget_poll_interval_ns(&g, 512 * MiB), 50 * MS);
    assert_int_equal(budget_poll_interval_ns(&g, 751619277), 10 * MS);
    /* No budget: 1 s, whatever the usage. */
    struct budget_params none = dflt(0);
    assert_int_equal(budget_poll_interval_ns(&none, 0), 1 * SEC);
    assert_int_equal(budget_poll_interval_ns(&none, PCT(90)), 1 * SEC);
    assert_int_equal(budget_poll_interval_ns(&none, UINT64_MAX), 1 * SEC);
}

/* ---- exact shares where the double product falls short ----
 * The header's thresholds are real-valued shares of the budget ("warn at
 * warn*budget", "10 ms at or above 70 %", "that share of the container
 * limit"). For some budgets and shares, share * budget in double rounds to
 * just below a whole number (0.7 * 45 MiB = 33030143.99999999...), which
 * budget.c truncates: the threshold comes out one byte low. And where the
 * share is not a whole number of bytes (80 % of 1 GiB = 858993459.2), the
 * truncated threshold lets a usage below the share count as reaching it. */
/* A budget at the container's limit (auto): nothing is granted within
 * KILL_HEADROOM of the limit, small requests and reserve included, so the
 * kernel's own charges never reach its OOM kill first. A budget below the
 * headroom line is unchanged by it; without a known limit there is none. */
static void test_kill_line(void **state)
{
    (void)state;
    uint64_t lim = 100 * MiB, safe = lim - 8 * MiB; /* KILL_HEADROOM 8 % */
    struct budget_params p = params(lim, 0.8, 0.9, MEMPOL_ENFORCE);
    p.kill_line = lim;
    assert_false(budget_should_deny(&p, safe - 4 * KiB, 4 * KiB));
    assert_true(budget_should_deny(&p, safe - 4 * KiB, 4 * KiB + 1));
    assert_true(budget_should_deny(&p, safe + 1, 16));
    assert_true(budget_should_deny(&p, safe, 1 * MiB));
    p.kill_line = 0; /* no limit known: the budget and its reserve only */
    assert_false(budget_should_deny(&p, safe + 1, 16));
    p = params(lim / 2, 0.8, 0.9, MEMPOL_ENFORCE); /* RESHIM_MEM_BUDGET=50% */
    p.kill_line = lim;
    assert_false(budget_should_deny(&p, lim / 2 - 4 * KiB, 4 * KiB));
    assert_true(budget_should_deny(&p, lim / 2, 16));
}

static void test_exact_shares(void **state)
{
    const uint64_t b45 = 45 * MiB;           /* 47185920 */
    const uint64_t p70 = b45 / 10 * 7;       /* 33030144, exactly 70 % */

    /* Poll interval: one byte below 70 % is still "between". */
    struct budget_params p = dflt(b45);
    CHECK(budget_poll_interval_ns(&p, p70) == 10 * MS, "45 MiB at 70%%: not 10 ms");
    CHECK(budget_poll_interval_ns(&p, p70 - 1) == 50 * MS,
          "45 MiB budget, usage %llu (one byte below 70%%): %llu ns, want 50 ms",
          (unsigned long long)(p70 - 1),
          (unsigned long long)budget_poll_interval_ns(&p, p70 - 1));

    /* RESHIM_MEM_WARN=70%: one byte below 70 % is still ok. */
    struct budget_params w = params(b45, 70 / 100.0, 0.90, MEMPOL_TRIM);
    EXPECT_STATE(&w, MS_OK, p70, MS_WARN);
    EXPECT_STATE(&w, MS_OK, p70 - 1, MS_OK);

    /* RESHIM_MEM_BUDGET=70% of a 45 MiB limit is 33030144 bytes. */
    struct reshim_config c = kind(BUDGET_PERCENT, 0, 70 / 100.0);
    EXPECT_RESOLVE(&c, b45, p70, BSRC_CGROUP);

    /* 80 % of 1 GiB is 858993459.2 bytes: 858993459 has not reached it. */
    struct budget_params g = dflt(1 * GiB);
    EXPECT_STATE(&g, MS_OK, 858993460, MS_WARN);
    EXPECT_STATE(&g, MS_OK, 858993459, MS_OK);
    /* 70 % of 1 GiB is 751619276.8 bytes: 751619276 is below it. */
    CHECK(budget_poll_interval_ns(&g, 751619276) == 50 * MS,
          "1 GiB budget, usage 751619276 (below 70%%): %llu ns, want 50 ms",
          (unsigned long long)budget_poll_interval_ns(&g, 751619276));
}

/* ---- threads (for TSan): the functions share nothing but const params ---- */

#define NTHREADS 8
struct worker {
    const struct budget_params *p;
    pthread_barrier_t *start;
    unsigned seed;
    unsigned errors;
};

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    enum mem_state s = MS_OK;
    for (unsigned i = 0; i < 20000; i++) {
        uint64_t usage = (uint64_t)((i * 7919u + w->seed) % 120) * (B / 100);
        enum mem_state want_up = usage >= B           ? MS_OVER
                                 : usage >= PCT(90) ? MS_CRITICAL
                                 : usage >= PCT(80) ? MS_WARN
                                                    : MS_OK;
        enum mem_state next = budget_next_state(w->p, s, usage);
        if (next < want_up || (next > want_up && next > s))
            w->errors++;
        s = next;
        bool deny = budget_should_deny(w->p, usage, 1 * MiB);
        if (deny != (usage + 1 * MiB > B - PCT(2)))
            w->errors++;
        if (budget_gate_armed(w->p, s) != (s >= MS_WARN))
            w->errors++;
        uint64_t iv = budget_poll_interval_ns(w->p, usage);
        if (iv != (usage >= PCT(70) ? 10 * MS : usage >= PCT(50) ? 50 * MS : 100 * MS))
            w->errors++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct budget_params p = params(B, 0.80, 0.90, MEMPOL_ENFORCE);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.p = &p, .start = &start, .seed = (unsigned)i * 13u};
        assert_int_equal(pthread_create(&t[i], NULL, worker_thread, &w[i]), 0);
    }
    unsigned errors = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        errors += w[i].errors;
    }
    pthread_barrier_destroy(&start);
    CHECK(errors == 0, "%u wrong answers across threads", errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_resolve_bytes),
        cmocka_unit_test(test_resolve_percent),
        cmocka_unit_test(test_resolve_auto_off),
        cmocka_unit_test(test_resolve_from_env),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_state_rising),
        cmocka_unit_test(test_state_falling_hysteresis),
        cmocka_unit_test(test_state_no_budget),
        cmocka_unit_test(test_state_misconfigured_shares),
        cmocka_unit_test(test_state_from_config),
        cmocka_unit_test(test_trim_floor),
        cmocka_unit_test(test_should_trim),
        cmocka_unit_test(test_gate_armed),
        cmocka_unit_test(test_should_deny_enforce),
        cmocka_unit_test(test_should_deny_other_policies),
        cmocka_unit_test(test_poll_interval),
        cmocka_unit_test(test_kill_line),
        cmocka_unit_test(test_exact_shares),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
