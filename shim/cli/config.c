/* config.c (CLI): `reshim config [--check] [--json]` reads this
 * environment exactly as the shim will (shim/config.c's
 * reshim_config_load) and prints every RESHIM_ variable's effective value
 * and where it came from; --check makes any bad value an error (exit 2),
 * each named with the value given and the form expected. `reshim config
 * PID` shows what a running process uses (request `config`). */
#define _GNU_SOURCE
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static const char *env_get(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

struct bad {
    int n;
    bool quiet;
};

static void warn_bad(void *c, const char *var, const char *value, const char *expected)
{
    struct bad *b = c;
    b->n++;
    if (!b->quiet)
        cli_err("%s=%s is not valid: expected %s", var, value, expected);
}

static void fmt_duration(uint64_t ns, char *buf, size_t n)
{
    static const struct { uint64_t mult; const char *unit; } units[] = {
        {3600000000000ull, "h"}, {60000000000ull, "min"}, {1000000000ull, "s"},
        {1000000ull, "ms"},      {1000ull, "us"},
    };
    if (ns == 0) {
        snprintf(buf, n, "0");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ns % units[i].mult == 0) {
            snprintf(buf, n, "%" PRIu64 "%s", ns / units[i].mult, units[i].unit);
            return;
        }
    snprintf(buf, n, "%.3fus", (double)ns / 1000.0);
}

/* Sizes: as bytes (machine form), or with the largest exact unit (human). */
static void fmt_size(uint64_t v, bool human, char *buf, size_t n)
{
    static const char *const u[] = {"", "K", "M", "G", "T"};
    int k = 0;
    while (human && v && v % 1024 == 0 && k < 4) {
        v /= 1024;
        k++;
    }
    snprintf(buf, n, "%" PRIu64 "%s", v, u[k]);
}

static void fmt_percent(double f, char *buf, size_t n)
{
    snprintf(buf, n, "%g%%", f * 100.0);
}

/* The effective value of one variable, in its own units. */
static void effective(const struct reshim_config *c, enum reshim_var v, bool human, char *buf,
                      size_t n)
{
    const char *raw = getenv(reshim_config_names[v]);
    switch (v) {
    case V_DISABLE: snprintf(buf, n, "%d", c->disable ? 1 : 0); break;
    case V_LOG: snprintf(buf, n, "%s", reshim_log_level_name(c->log_level)); break;
    case V_LOG_FILE: snprintf(buf, n, "%s", c->log_file[0] ? c->log_file : human ? "stderr" : ""); break;
    case V_RETRIES: snprintf(buf, n, "%u", c->retries); break;
    case V_BACKOFF_BASE: fmt_duration(c->backoff_base_ns, buf, n); break;
    case V_BACKOFF_MAX: fmt_duration(c->backoff_max_ns, buf, n); break;
    case V_JITTER: snprintf(buf, n, "%s", reshim_jitter_name(c->jitter)); break;
    case V_RETRY_DEADLINE: fmt_duration(c->retry_deadline_ns, buf, n); break;
    case V_RETRY_BUDGET: fmt_percent(c->retry_budget, buf, n); break;
    case V_BREAKER: snprintf(buf, n, "%u", c->breaker); break;
    case V_NONBLOCK: snprintf(buf, n, "%s", c->nonblock ? "on" : "off"); break;
    case V_REPLAY: snprintf(buf, n, "%s", reshim_replay_name(c->replay)); break;
    case V_REPLAY_MAX: fmt_size(c->replay_max, human, buf, n); break;
    case V_DEST:
        snprintf(buf, n, "%s", c->source[v] == SRC_ENV && raw && *raw ? raw : "all");
        break;
    case V_DNS_STALE: fmt_duration(c->dns_stale_ns, buf, n); break;
    case V_MEM_BUDGET:
        switch (c->mem_budget_kind) {
        case BUDGET_AUTO: snprintf(buf, n, "auto"); break;
        case BUDGET_OFF: snprintf(buf, n, "off"); break;
        case BUDGET_BYTES: fmt_size(c->mem_budget_bytes, human, buf, n); break;
        case BUDGET_PERCENT: fmt_percent(c->mem_budget_fraction, buf, n); break;
        }
        break;
    case V_MEM_WARN: fmt_percent(c->mem_warn, buf, n); break;
    case V_MEM_TRIM: fmt_percent(c->mem_trim, buf, n); break;
    case V_MEM_POLICY: snprintf(buf, n, "%s", reshim_mem_policy_name(c->mem_policy)); break;
    case V_HEAP_SAMPLE: fmt_size(c->heap_sample_bytes, human, buf, n); break;
    case V_RUN_DIR: snprintf(buf, n, "%s", c->run_dir); break;
    case V_INTERVAL: fmt_duration(c->interval_ns, buf, n); break;
    case V_PUSH: snprintf(buf, n, "%s", c->push[0] ? c->push : human ? "unset" : ""); break;
    case V_COUNT: buf[0] = 0; break;
    }
}

static const char *source_word(enum reshim_source s)
{
    return s == SRC_ENV ? "env" : s == SRC_INVALID ? "invalid" : "default";
}

static int local_config(bool check, bool json)
{
    struct reshim_config c;
    struct bad bad = {0, json && !check};
    reshim_config_load(&c, env_get, NULL, warn_bad, &bad, (unsigned)getuid());
    char val[RESHIM_PATH_MAX + 64];
    if (json) {
        size_t cap = 512 + V_COUNT * (3 * 6 * RESHIM_PATH_MAX + 128);
        char *mem = malloc(cap);
        if (!mem) {
            cli_err("out of memory");
            return EXIT_FAIL;
        }
        struct sbuf b;
        sb_init(&b, mem, cap);
        sb_str(&b, "{");
        for (int v = 0; v < V_COUNT; v++) {
            effective(&c, (enum reshim_var)v, false, val, sizeof val);
            if (v)
                sb_str(&b, ",");
            sb_json_str(&b, reshim_config_names[v]);
            sb_str(&b, ":{\"value\":");
            sb_json_str(&b, val);
            sb_str(&b, ",\"source\":");
            sb_json_str(&b, source_word(c.source[v]));
            const char *raw = getenv(reshim_config_names[v]);
            if (c.source[v] == SRC_INVALID && raw) {
                sb_str(&b, ",\"given\":");
                sb_json_str(&b, raw);
            }
            sb_str(&b, "}");
        }
        sb_str(&b, "}\n");
        fwrite(b.p, 1, b.len, stdout);
        free(mem);
    } else {
        static const char *const head[] = {"VARIABLE", "VALUE", "SOURCE"};
        struct cli_table *t = table_new(3, head, "lll");
        for (int v = 0; v < V_COUNT; v++) {
            effective(&c, (enum reshim_var)v, true, val, sizeof val);
            table_cell(t, NULL, "%s", reshim_config_names[v]);
            table_cell(t, NULL, "%s", val);
            const char *raw = getenv(reshim_config_names[v]);
            if (c.source[v] == SRC_INVALID)
                table_cell(t, "31", "invalid: %s=%s, default used", reshim_config_names[v],
                           raw ? raw : "");
            else
                table_cell(t, NULL, "%s", source_word(c.source[v]));
        }
        table_print(t, stdout, cli_color(stdout), NULL, true);
        table_free(t);
    }
    if (bad.n && check) {
        cli_err("%d bad value%s: a program started now would warn and use the default%s", bad.n,
                bad.n == 1 ? "" : "s", bad.n == 1 ? "" : "s");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int remote_config(int pid, bool json)
{
    char *ans;
    size_t len;
    int rc = cli_ask(pid, "config", cli_timeout_ms, "", &ans, &len);
    if (rc != EXIT_OK)
        return rc;
    const char *why = NULL;
    struct json *j = NULL;
    if (json) {
        cli_print_raw(ans, len);
    } else if (!(j = json_parse(ans, len, &why)) || j->type != JSON_OBJECT) {
        cli_err("process %d: unexpected answer to config (%s)", pid, why ? why : "not an object");
        rc = EXIT_FAIL;
    } else {
        static const char *const head[] = {"VARIABLE", "VALUE", "SOURCE"};
        struct cli_table *t = table_new(3, head, "lll");
        for (size_t i = 0; i < j->n; i++) {
            const struct json *x = &j->items[i];
            const char *val = json_string(json_get(x, "value"));
            const char *src = json_string(json_get(x, "source"));
            const char *given = json_string(json_get(x, "given"));
            table_cell(t, NULL, "%s", j->keys[i]);
            table_cell(t, NULL, "%s", !val ? "?" : *val ? val : "-");
            if (given)
                table_cell(t, "31", "%s: %s=%s, default used", src ? src : "?", j->keys[i], given);
            else
                table_cell(t, NULL, "%s", src ? src : "?");
        }
        table_print(t, stdout, cli_color(stdout), NULL, true);
        table_free(t);
    }
    json_free(j);
    free(ans);
    return rc;
}

int cmd_config(int argc, char **argv)
{
    bool check = false, json = false;
    int pid = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--check") == 0)
            check = true;
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] == '-' || pid)
            return cli_usage_error("config", "unexpected argument '%s'", argv[i]);
        else if ((pid = cli_parse_pid(argv[i])) < 0)
            return cli_usage_error("config", "'%s' is not a process id", argv[i]);
    }
    if (pid && check)
        return cli_usage_error("config", "--check checks this environment, not a process's");
    return pid ? remote_config(pid, json) : local_config(check, json);
}
