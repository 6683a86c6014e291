/* fuzz_config: the configuration parser (shim/config.c, dest.c) on an
 * environment made of the fuzzed bytes.
 *
 * The input is an environment block as /proc/PID/environ holds one:
 * NAME=value entries separated by NUL bytes. reshim_config_load() reads it
 * through its getter (the first entry of a name wins, as with getenv); every
 * value is also given to the unit parsers (size, percent, duration, whole
 * number) and the RESHIM_DEST parser directly.
 *
 * Checked: no crash, leak or undefined behaviour; one warning per value
 * counted bad; every field within the range libreshim(7) gives (whatever was
 * rejected, its default is in force); paths NUL-terminated and short enough
 * for their use; the same environment loads to the same bytes twice; the
 * unit parsers' results re-parse to themselves. */
#include <inttypes.h>

#include "config.h"
#include "fuzz_common.h"

#define MAX_ENTRIES 64
#define SEC 1000000000ull
#define MS 1000000ull

struct env {
    const char *name[MAX_ENTRIES];
    size_t name_len[MAX_ENTRIES];
    const char *value[MAX_ENTRIES];
    int n;
};

static const char *env_get(void *ctx, const char *name)
{
    const struct env *e = ctx;
    size_t len = strlen(name);
    for (int i = 0; i < e->n; i++)
        if (e->name_len[i] == len && memcmp(e->name[i], name, len) == 0)
            return e->value[i];
    return NULL;
}

struct warns {
    int n;
};

static void on_warn(void *ctx, const char *var, const char *value, const char *expected)
{
    struct warns *w = ctx;
    CHECK(var && value && expected, "a warning without its text");
    CHECK(strncmp(var, "RESHIM_", 7) == 0, "warning about %s", var);
    CHECK(expected[0], "a warning that says nothing for %s", var);
    w->n++;
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void check_rules(const struct dest_rules *d)
{
    CHECK(d->n <= DEST_MAX_RULES, "%u rules", d->n);
    bool positive = false;
    for (unsigned i = 0; i < d->n; i++) {
        const struct dest_rule *r = &d->r[i];
        CHECK(r->kind <= DR_UNIX, "rule kind %u", r->kind);
        CHECK(terminated(r->text, sizeof r->text), "rule text not terminated");
        if (r->kind == DR_ADDR || r->kind == DR_CIDR) {
            CHECK(r->family == AF_INET || r->family == AF_INET6, "family %u", r->family);
            CHECK(r->prefix <= (r->family == AF_INET ? 32 : 128), "prefix %u", r->prefix);
        }
        if (r->kind == DR_NAME)
            CHECK(r->text[0], "a host rule without a name");
        positive |= !r->negate;
    }
    CHECK(positive == d->has_positive, "has_positive %d, rules say %d", d->has_positive,
          positive);
}

static void check_config(const struct reshim_config *c, const struct env *e)
{
    CHECK(c->log_level <= RLOG_DEBUG, "log level %d", c->log_level);
    CHECK(c->jitter <= JITTER_NONE, "jitter %d", c->jitter);
    CHECK(c->mem_budget_kind <= BUDGET_PERCENT, "budget kind %d", c->mem_budget_kind);
    CHECK(c->mem_policy <= MEMPOL_ENFORCE, "policy %d", c->mem_policy);
    CHECK(c->retries <= 100, "retries %u", c->retries);
    CHECK(c->breaker <= 1000, "breaker %u", c->breaker);
    CHECK(c->backoff_base_ns > 0 && c->backoff_base_ns <= 3600 * SEC, "base %" PRIu64,
          c->backoff_base_ns);
    CHECK(c->backoff_max_ns >= c->backoff_base_ns && c->backoff_max_ns <= 3600 * SEC,
          "max %" PRIu64 " base %" PRIu64, c->backoff_max_ns, c->backoff_base_ns);
    CHECK(c->retry_deadline_ns > 0 && c->retry_deadline_ns <= 3600 * SEC, "deadline");
    CHECK(c->retry_budget >= 0 && c->retry_budget <= 1.0, "retry budget %g", c->retry_budget);
    CHECK(c->mem_warn > 0 && c->mem_warn <= c->mem_trim && c->mem_trim <= 1.0,
          "warn %g trim %g", c->mem_warn, c->mem_trim);
    if (c->mem_budget_kind == BUDGET_BYTES)
        CHECK(c->mem_budget_bytes >= (1u << 20), "budget %" PRIu64, c->mem_budget_bytes);
    if (c->mem_budget_kind == BUDGET_PERCENT)
        CHECK(c->mem_budget_fraction > 0 && c->mem_budget_fraction <= 1.0, "budget %g",
              c->mem_budget_fraction);
    CHECK(c->heap_sample_bytes <= (1ull << 30), "heap sample %" PRIu64, c->heap_sample_bytes);
    CHECK(c->interval_ns >= 10 * MS && c->interval_ns <= 3600 * SEC, "interval");
    CHECK(terminated(c->log_file, sizeof c->log_file), "log file not terminated");
    CHECK(!c->log_file[0] || c->log_file[0] == '/', "relative log file %s", c->log_file);
    CHECK(terminated(c->run_dir, sizeof c->run_dir) && c->run_dir[0] == '/', "run dir %s",
          c->run_dir);
    if (c->source[V_RUN_DIR] == SRC_ENV)
        CHECK(strlen(c->run_dir) <= 94, "run dir of %zu bytes", strlen(c->run_dir));
    CHECK(terminated(c->push, 108), "push path does not fit a socket address");
    check_rules(&c->dest);
    for (int v = 0; v < V_COUNT; v++) {
        CHECK(c->source[v] <= SRC_INVALID, "source %d", c->source[v]);
        bool set = env_get((void *)e, reshim_config_names[v]) != NULL;
        if (!set && v != V_MEM_WARN && v != V_MEM_TRIM) /* those two fall back together */
            CHECK(c->source[v] == SRC_DEFAULT, "%s unset but source %d", reshim_config_names[v],
                  c->source[v]);
        if (set)
            CHECK(c->source[v] != SRC_DEFAULT, "%s set but unseen", reshim_config_names[v]);
    }
}

/* The unit parsers on one value: a result re-parses to itself. */
static void check_units(const char *s)
{
    char again[64];
    uint64_t u, u2;
    double d;
    unsigned w, w2;
    if (reshim_parse_size(s, &u) == 0 && u < (1ull << 53)) {
        snprintf(again, sizeof again, "%" PRIu64, u);
        CHECK(reshim_parse_size(again, &u2) == 0 && u2 == u, "size %s: %" PRIu64, s, u);
    }
    if (reshim_parse_duration(s, &u) == 0) {
        CHECK(u < 9200000000000000000ull, "duration %s: %" PRIu64, s, u);
        if (u % 1000 == 0 && u / 1000 < (1ull << 53)) {
            snprintf(again, sizeof again, "%" PRIu64 "us", u / 1000);
            CHECK(reshim_parse_duration(again, &u2) == 0 && u2 == u, "duration %s: %" PRIu64,
                  s, u);
        }
    }
    if (reshim_parse_percent(s, &d) == 0)
        CHECK(d >= 0 && d - d == 0, "percent %s: %g", s, d);
    if (reshim_parse_uint(s, 1000000, &w) == 0) {
        CHECK(w <= 1000000, "uint %s: %u", s, w);
        snprintf(again, sizeof again, " %u\t", w);
        CHECK(reshim_parse_uint(again, 1000000, &w2) == 0 && w2 == w, "uint %s: %u", s, w);
        CHECK(w == 0 || reshim_parse_uint(s, w - 1, &w2) != 0, "uint %s over its max", s);
    }
    struct dest_rules r;
    if (dest_rules_parse(s, &r) == 0)
        check_rules(&r);
    else
        CHECK(r.n == 0, "a rejected RESHIM_DEST left %u rules", r.n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* NUL-separated entries; the copy ends in a NUL so the last one is a string. */
    char *block = malloc(size + 1);
    if (!block)
        return 0;
    memcpy(block, data, size);
    block[size] = '\0';
    struct env e = {.n = 0};
    for (size_t at = 0; at <= size && e.n < MAX_ENTRIES;) {
        char *entry = block + at;
        size_t len = strlen(entry);
        char *eq = memchr(entry, '=', len);
        if (eq) {
            e.name[e.n] = entry;
            e.name_len[e.n] = (size_t)(eq - entry);
            e.value[e.n] = eq + 1;
            e.n++;
        }
        at += len + 1;
    }

    static struct reshim_config c1, c2;
    struct warns w1 = {0}, w2 = {0};
    int bad1 = reshim_config_load(&c1, env_get, &e, on_warn, &w1, 1000);
    CHECK(bad1 == w1.n, "%d bad values, %d warnings", bad1, w1.n);
    check_config(&c1, &e);
    int bad2 = reshim_config_load(&c2, env_get, &e, on_warn, &w2, 1000);
    CHECK(bad2 == bad1 && memcmp(&c1, &c2, sizeof c1) == 0, "two loads differ");
    /* No warn callback: the same result, quietly. */
    int bad3 = reshim_config_load(&c2, env_get, &e, NULL, NULL, 1000);
    CHECK(bad3 == bad1 && memcmp(&c1, &c2, sizeof c1) == 0, "a load without warnings differs");

    for (int i = 0; i < e.n; i++)
        check_units(e.value[i]);
    free(block);
    return 0;
}
