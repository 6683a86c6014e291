/* config.c (CLI): `reshim config [--check] [--json]` reads this
 * environment exactly as the shim will (shim/config.c's
 * reshim_config_load) and prints every RESHIM_ variable's effective value
 * and where it came from; --check makes any bad value an error (exit 2),
 * each named with the value given and the form expected. `reshim config
 * PID` shows what a running process uses (request `config`, read by the
 * keys of answerjson.c: the variables this CLI knows). */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_show.h"

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

/* What the table shows for an empty value (JSON keeps it empty). */
static const char *shown(enum reshim_var v, const char *val)
{
    if (*val)
        return val;
    return v == V_LOG_FILE ? "stderr" : v == V_PUSH ? "unset" : val;
}

static int local_config(bool check, bool json)
{
    struct reshim_config c;
    struct bad bad = {0, json && !check};
    reshim_config_load(&c, env_get, NULL, warn_bad, &bad, (unsigned)getuid());
    const char *given[V_COUNT];
    for (int v = 0; v < V_COUNT; v++)
        given[v] = getenv(reshim_config_names[v]);
    if (json) {
        size_t cap = config_show_json_max(&c, given);
        char *mem = malloc(cap);
        struct snap_config *shown = malloc(sizeof *shown);
        if (!mem || !shown) {
            free(mem);
            free(shown);
            cli_err("out of memory");
            return EXIT_FAIL;
        }
        struct sbuf b;
        sb_init(&b, mem, cap);
        config_show_fill(shown, &c, given);
        snap_config_json(shown, &b);
        fwrite(b.p, 1, b.len, stdout);
        free(shown);
        free(mem);
    } else {
        static const char *const head[] = {"VARIABLE", "VALUE", "SOURCE"};
        struct cli_table *t = table_new(3, head, "lll");
        for (int v = 0; v < V_COUNT; v++) {
            char vb[64];
            table_cell(t, NULL, "%s", reshim_config_names[v]);
            table_cell(t, NULL, "%s",
                       shown((enum reshim_var)v, config_show_value(&c, (enum reshim_var)v,
                                                                   given[v], vb, sizeof vb)));
            if (c.source[v] == SRC_INVALID)
                table_cell(t, "31", "invalid: %s=%s, default used", reshim_config_names[v],
                           given[v] ? given[v] : "");
            else
                table_cell(t, NULL, "%s", reshim_source_name(c.source[v]));
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
    struct snap_config *j = NULL;
    if (json) {
        cli_print_raw(ans, len);
    } else if (!(j = malloc(sizeof *j))) {
        cli_err("out of memory");
        rc = EXIT_FAIL;
    } else if (snap_config_parse(ans, len, j, &why) != 0) {
        cli_err("process %d: unexpected answer to config (%s)", pid, why);
        rc = EXIT_FAIL;
    } else {
        static const char *const head[] = {"VARIABLE", "VALUE", "SOURCE"};
        struct cli_table *t = table_new(3, head, "lll");
        for (int v = 0; v < V_COUNT; v++) {
            const struct snap_config_var *x = &j->var[v];
            const char *name = reshim_config_names[v];
            if (!x->present) /* an older shim, without this variable */
                continue;
            table_cell(t, NULL, "%s", name);
            table_cell(t, NULL, "%s", *x->value ? x->value : "-");
            if (x->has_given)
                table_cell(t, "31", "%s: %s=%s, default used", x->source, name, x->given);
            else
                table_cell(t, NULL, "%s", x->source);
        }
        table_print(t, stdout, cli_color(stdout), NULL, true);
        table_free(t);
    }
    free(j);
    free(ans);
    return rc;
}

int cmd_config(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"check", no_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    bool check = false, json = false;
    int pid = 0;
    for (int c; (c = cli_getopt(argc, argv, "", longopts)) != -1;) {
        if (c == 'c')
            check = true;
        else if (c == 'j')
            json = true;
        else
            return EXIT_USAGE;
    }
    if (optind < argc && cli_one_pid(argc, argv, &pid) != EXIT_OK)
        return EXIT_USAGE;
    if (pid && check)
        return cli_usage_error("config", "--check checks this environment, not a process's");
    return pid ? remote_config(pid, json) : local_config(check, json);
}
