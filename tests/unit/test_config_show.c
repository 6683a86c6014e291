/* test_config_show.c: unit tests of shim/config_show.c, the one formatter
 * of the `config` answer (library and CLI): durations and sizes with the
 * largest exact unit, percentages to the hundredth, RESHIM_DEST as given,
 * the JSON object (order, sources, "given" for invalid values, escaping)
 * and its round trip through the key table (answerjson.c: encoded, then
 * read back by the CLI's parser, every key);
 * and the round trip: every value shown, given back to the configuration
 * parser as the variable's value, yields the same settings (for the
 * defaults and for a set of values other than the defaults). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_show.h"

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

struct env {
    const char *kv[2 * V_COUNT + 2];
};

static const char *env_get(void *ctx, const char *name)
{
    const struct env *e = ctx;
    for (int i = 0; e && e->kv[i]; i += 2)
        if (strcmp(e->kv[i], name) == 0)
            return e->kv[i + 1];
    return NULL;
}

static int warned;
static void warn(void *ctx, const char *var, const char *value, const char *expected)
{
    (void)ctx, (void)var, (void)value, (void)expected;
    warned++;
}

static void load(struct reshim_config *c, struct env *e)
{
    warned = 0;
    reshim_config_load(c, env_get, e, warn, NULL, 1000);
}

static const char *show(const struct reshim_config *c, enum reshim_var v, const char *given)
{
    static char buf[8][64];
    static int k;
    char *b = buf[k++ % 8];
    return config_show_value(c, v, given, b, sizeof buf[0]);
}

/* name=value in an environment of one variable: what config shows. */
static const char *shown_for(enum reshim_var v, const char *value)
{
    struct env e = {{reshim_config_names[v], value, NULL}};
    struct reshim_config c;
    load(&c, &e);
    CHECK(warned == 0, "%s=%s was refused", reshim_config_names[v], value);
    return show(&c, v, value);
}

static void test_units(void **state)
{
    (void)state;
    assert_string_equal(shown_for(V_BACKOFF_BASE, "200ms"), "200ms");
    assert_string_equal(shown_for(V_BACKOFF_BASE, "1500ms"), "1500ms");
    assert_string_equal(shown_for(V_BACKOFF_MAX, "2s"), "2s");
    assert_string_equal(shown_for(V_BACKOFF_MAX, "120s"), "2min");
    assert_string_equal(shown_for(V_DNS_STALE, "3600s"), "1h");
    assert_string_equal(shown_for(V_DNS_STALE, "0"), "0");
    assert_string_equal(shown_for(V_HEAP_SAMPLE, "524288"), "512K");
    assert_string_equal(shown_for(V_HEAP_SAMPLE, "1000"), "1000");
    assert_string_equal(shown_for(V_HEAP_SAMPLE, "0"), "0");
    assert_string_equal(shown_for(V_MEM_BUDGET, "300M"), "300M");
    assert_string_equal(shown_for(V_MEM_BUDGET, "2G"), "2G");
    assert_string_equal(shown_for(V_MEM_BUDGET, "1536M"), "1536M");
    assert_string_equal(shown_for(V_MEM_BUDGET, "50%"), "50%");
    assert_string_equal(shown_for(V_MEM_WARN, "12.5%"), "12.5%");
    assert_string_equal(shown_for(V_MEM_WARN, "70.25%"), "70.25%");
    assert_string_equal(shown_for(V_RETRY_BUDGET, "100%"), "100%");
    assert_string_equal(shown_for(V_DEST, "10.0.0.0/8"), "10.0.0.0/8");
    assert_string_equal(shown_for(V_NONBLOCK, "off"), "off");
}

static void test_defaults(void **state)
{
    (void)state;
    struct reshim_config c;
    load(&c, NULL);
    assert_string_equal(show(&c, V_HEAP_SAMPLE, NULL), "512K"); /* README: default 512K */
    assert_string_equal(show(&c, V_RETRY_BUDGET, NULL), "20%");
    assert_string_equal(show(&c, V_BACKOFF_MAX, NULL), "1s");
    assert_string_equal(show(&c, V_DNS_STALE, NULL), "1h");
    assert_string_equal(show(&c, V_DEST, NULL), "all");
    assert_string_equal(show(&c, V_LOG_FILE, NULL), "");
    assert_string_equal(show(&c, V_PUSH, NULL), "");
}

/* Every value shown, given back as the variable's value, loads to the same
 * settings as the ones shown. */
static void round_trip(const struct reshim_config *c0, const char *const given[V_COUNT])
{
    struct env e = {{0}};
    char vals[V_COUNT][RESHIM_PATH_MAX + 64];
    int k = 0;
    for (int v = 0; v < V_COUNT; v++) {
        const char *s = show(c0, (enum reshim_var)v, given[v]);
        if (!*s)
            continue; /* unset: the empty value means "none" */
        snprintf(vals[v], sizeof vals[v], "%s", s);
        e.kv[k++] = reshim_config_names[v];
        e.kv[k++] = vals[v];
    }
    struct reshim_config c1;
    load(&c1, &e);
    CHECK(warned == 0, "a value shown was refused when given back");
    for (int v = 0; v < V_COUNT; v++) {
        const char *a = show(c0, (enum reshim_var)v, given[v]);
        const char *b = show(&c1, (enum reshim_var)v, env_get(&e, reshim_config_names[v]));
        CHECK(strcmp(a, b) == 0, "%s: shown %s, given back and shown again %s",
              reshim_config_names[v], a, b);
    }
    assert_true(c1.retries == c0->retries && c1.backoff_base_ns == c0->backoff_base_ns &&
                c1.heap_sample_bytes == c0->heap_sample_bytes &&
                c1.mem_budget_bytes == c0->mem_budget_bytes && c1.mem_warn == c0->mem_warn &&
                c1.interval_ns == c0->interval_ns && c1.dns_stale_ns == c0->dns_stale_ns);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *none[V_COUNT] = {0};
    struct reshim_config c;
    load(&c, NULL);
    round_trip(&c, none);
    struct env e = {{"RESHIM_RETRIES", "7", "RESHIM_BACKOFF_BASE", "250ms", "RESHIM_BACKOFF_MAX",
                     "90s", "RESHIM_MEM_BUDGET", "768M", "RESHIM_MEM_WARN", "62.5%",
                     "RESHIM_HEAP_SAMPLE", "64K", "RESHIM_INTERVAL", "2500ms", "RESHIM_DNS_STALE",
                     "10min", "RESHIM_JITTER", "full", "RESHIM_LOG", "debug", "RESHIM_DEST",
                     "10.0.0.0/8", NULL}};
    load(&c, &e);
    CHECK(warned == 0, "a test value was refused");
    const char *given[V_COUNT];
    for (int v = 0; v < V_COUNT; v++)
        given[v] = env_get(&e, reshim_config_names[v]);
    round_trip(&c, given);
}

/* The `config` answer of c, as the library and the CLI write it. */
static struct snap_config shown;
static void show_json(struct sbuf *b, const struct reshim_config *c, const char *const *given)
{
    config_show_fill(&shown, c, given);
    snap_config_json(&shown, b);
}

static void test_json(void **state)
{
    (void)state;
    struct env e = {{"RESHIM_RETRIES", "1", "RESHIM_BREAKER", "lots", "RESHIM_PUSH",
                     "/run/\"x\"", NULL}};
    struct reshim_config c;
    load(&c, &e);
    assert_int_equal(warned, 1);
    const char *given[V_COUNT];
    for (int v = 0; v < V_COUNT; v++)
        given[v] = env_get(&e, reshim_config_names[v]);
    size_t cap = config_show_json_max(&c, given);
    char *mem = malloc(cap);
    struct sbuf b;
    sb_init(&b, mem, cap);
    show_json(&b, &c, given);
    assert_false(b.overflow);
    CHECK(strncmp(mem, "{\"RESHIM_DISABLE\":{\"value\":\"0\",\"source\":\"default\"},", 51) == 0,
          "starts %.60s", mem);
    assert_non_null(strstr(mem, "\"RESHIM_RETRIES\":{\"value\":\"1\",\"source\":\"env\"}"));
    assert_non_null(strstr(
        mem, "\"RESHIM_BREAKER\":{\"value\":\"5\",\"source\":\"invalid\",\"given\":\"lots\"}"));
    assert_non_null(strstr(mem, "\"RESHIM_HEAP_SAMPLE\":{\"value\":\"512K\""));
    assert_non_null(strstr(mem, "\"value\":\"/run/\\\"x\\\"\""));
    assert_int_equal(mem[b.len - 1], '\n');
    /* Every variable, in order. */
    const char *at = mem;
    for (int v = 0; v < V_COUNT; v++) {
        char key[64];
        snprintf(key, sizeof key, "\"%.*s\":{", RESHIM_VAR_NAME_MAX, reshim_config_names[v]);
        const char *p = strstr(at, key);
        CHECK(p, "%s missing or out of order", reshim_config_names[v]);
        at = p;
    }
    /* The estimate holds for a long value to escape. */
    char longv[RESHIM_PATH_MAX];
    memset(longv, '"', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    given[V_BREAKER] = longv;
    size_t cap2 = config_show_json_max(&c, given);
    char *mem2 = malloc(cap2);
    sb_init(&b, mem2, cap2);
    show_json(&b, &c, given);
    assert_false(b.overflow);
    free(mem2);
    free(mem);
}

/* The answer read back by the CLI's parser, by the keys of the table:
 * every variable, its value, source and (invalid only) value as given. */
static void test_json_round_trip(void **state)
{
    (void)state;
    static struct snap_config back;
    struct env e = {{"RESHIM_RETRIES", "7", "RESHIM_BREAKER", "lo\"ts\\\x01", "RESHIM_DEST",
                     "10.0.0.0/8:5432,!10.0.0.5", NULL}};
    struct reshim_config c;
    load(&c, &e);
    const char *given[V_COUNT];
    for (int v = 0; v < V_COUNT; v++)
        given[v] = env_get(&e, reshim_config_names[v]);
    size_t cap = config_show_json_max(&c, given);
    CHECK(cap <= snap_config_json_max(), "the estimate %zu is above the bound", cap);
    char *mem = malloc(cap);
    struct sbuf b;
    sb_init(&b, mem, cap);
    show_json(&b, &c, given);
    assert_false(b.overflow);
    const char *why = NULL;
    CHECK(snap_config_parse(mem, b.len, &back, &why) == 0, "refused: %s", why);
    int invalid = 0;
    for (int v = 0; v < V_COUNT; v++) {
        const struct snap_config_var *x = &back.var[v], *w = &shown.var[v];
        const char *name = reshim_config_names[v];
        CHECK(x->present, "%s missing", name);
        CHECK(strcmp(x->value, w->value) == 0, "%s: value '%s', wrote '%s'", name, x->value,
              w->value);
        CHECK(strcmp(x->source, reshim_source_name(c.source[v])) == 0, "%s: source %s", name,
              x->source);
        CHECK(x->has_given == (c.source[v] == SRC_INVALID), "%s: given %d", name, x->has_given);
        if (x->has_given) {
            CHECK(strcmp(x->given, given[v]) == 0, "%s: given '%s'", name, x->given);
            invalid++;
        }
    }
    assert_int_equal(invalid, 1); /* RESHIM_BREAKER */
    assert_string_equal(back.var[V_RETRIES].value, "7");
    assert_string_equal(back.var[V_DEST].value, "10.0.0.0/8:5432,!10.0.0.5");
    /* Encoded again from what was read: the same bytes. */
    char *mem2 = malloc(cap);
    sb_init(&b, mem2, cap);
    snap_config_json(&back, &b);
    assert_false(b.overflow);
    assert_string_equal(mem2, mem);
    /* A variable the CLI does not know is skipped; one it knows but the
     * answer lacks is absent; a value without "source" is refused. */
    static const char other[] = "{\"RESHIM_NEW\":{\"value\":\"x\",\"source\":\"env\"},"
                                "\"RESHIM_RETRIES\":{\"source\":\"env\",\"value\":\"3\"}}\n";
    CHECK(snap_config_parse(other, strlen(other), &back, &why) == 0, "refused: %s", why);
    assert_true(back.var[V_RETRIES].present);
    assert_string_equal(back.var[V_RETRIES].value, "3");
    for (int v = 0; v < V_COUNT; v++)
        CHECK(v == V_RETRIES || !back.var[v].present, "%s present", reshim_config_names[v]);
    static const char bad[] = "{\"RESHIM_RETRIES\":{\"value\":\"3\"}}";
    assert_int_equal(snap_config_parse(bad, strlen(bad), &back, &why), -1);
    assert_false(back.var[V_RETRIES].present);
    free(mem2);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
