/* ls.c: `reshim ls`: one row per live shimmed process of this user (pid,
 * command, uptime, RSS / budget and %, state, retries, recovered), as a
 * table, a JSON array (--json) or bare pids (-q). Stale sockets are removed
 * on the way (procs_list); every process is asked at once, within one
 * timeout. */
#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LS_MAX 4096

struct row {
    int pid;
    struct reshim_snapshot *s;
};

static uint64_t sum(const struct reshim_snapshot *s, int field)
{
    uint64_t t = 0;
    for (int c = 0; c < SNAP_CLASSES; c++) {
        const struct snap_calls *k = &s->net[c];
        t += field == 0 ? k->retries : field == 1 ? k->recovered : k->gave_up;
    }
    return t;
}

/* What the shim compares with the budget (usage), as a share; -1 without a budget. */
static double mem_percent(const struct reshim_snapshot *s)
{
    if (!s->mem.budget_bytes)
        return -1;
    uint64_t u = s->mem.usage_bytes ? s->mem.usage_bytes : s->mem.rss_bytes;
    return 100.0 * (double)u / (double)s->mem.budget_bytes;
}

static void print_json(const struct row *rows, int n)
{
    size_t cap = 64 + (size_t)n * (2 * SNAP_COMM_MAX * 6 + 512);
    char *mem = malloc(cap);
    if (!mem) {
        cli_err("out of memory");
        return;
    }
    struct sbuf b;
    sb_init(&b, mem, cap);
    sb_str(&b, "[");
    for (int i = 0; i < n; i++) {
        const struct reshim_snapshot *s = rows[i].s;
        double pct = mem_percent(s);
        sb_str(&b, i ? ",\n {\"pid\":" : "{\"pid\":");
        sb_i64(&b, s->pid ? s->pid : rows[i].pid);
        sb_str(&b, ",\"comm\":");
        sb_json_str(&b, s->comm);
        sb_str(&b, ",\"uptime_s\":");
        sb_fixed(&b, s->uptime_s, 3);
        sb_str(&b, ",\"rss_bytes\":");
        sb_u64(&b, s->mem.rss_bytes);
        sb_str(&b, ",\"budget_bytes\":");
        sb_u64(&b, s->mem.budget_bytes);
        sb_str(&b, ",\"usage_bytes\":");
        sb_u64(&b, s->mem.usage_bytes);
        sb_str(&b, ",\"mem_percent\":");
        if (pct < 0)
            sb_str(&b, "null");
        else
            sb_fixed(&b, pct, 1);
        sb_str(&b, ",\"state\":");
        sb_json_str(&b, s->mem.state);
        sb_str(&b, ",\"retries\":");
        sb_u64(&b, sum(s, 0));
        sb_str(&b, ",\"recovered\":");
        sb_u64(&b, sum(s, 1));
        sb_str(&b, ",\"gave_up\":");
        sb_u64(&b, sum(s, 2));
        sb_str(&b, "}");
    }
    sb_str(&b, "]\n");
    if (b.overflow)
        cli_err("internal error: the JSON did not fit its buffer");
    else
        fwrite(b.p, 1, b.len, stdout);
    free(mem);
}

static void print_table(const struct row *rows, int n, bool header)
{
    static const char *const head[] = {"PID",   "COMMAND", "UPTIME",  "RSS / BUDGET",
                                       "MEM %", "STATE",   "RETRIES", "RECOVERED"};
    struct cli_table *t = table_new(8, head, "llllrlrr");
    /* "RSS / BUDGET" lines up on the slash: the RSS part is right-aligned */
    int rw = 0;
    char rss[32];
    for (int i = 0; i < n; i++) {
        const struct reshim_snapshot *s = rows[i].s;
        int w = (int)strlen(cli_bytes(s->mem.usage_bytes ? s->mem.usage_bytes : s->mem.rss_bytes,
                                      rss, sizeof rss));
        if (w > rw)
            rw = w;
    }
    for (int i = 0; i < n; i++) {
        const struct reshim_snapshot *s = rows[i].s;
        char up[32], bud[32];
        double pct = mem_percent(s);
        uint64_t counted = s->mem.usage_bytes ? s->mem.usage_bytes : s->mem.rss_bytes;
        table_cell(t, NULL, "%d", s->pid ? s->pid : rows[i].pid);
        table_cell(t, NULL, "%.20s", s->comm[0] ? s->comm : "?");
        table_cell(t, NULL, "%s", cli_duration(s->uptime_s, up, sizeof up));
        table_cell(t, NULL, "%*s / %s", rw, cli_bytes(counted, rss, sizeof rss),
                   s->mem.budget_bytes ? cli_bytes(s->mem.budget_bytes, bud, sizeof bud) : "-");
        if (pct < 0)
            table_cell(t, NULL, "-");
        else
            table_cell(t, NULL, "%.1f%%", pct);
        table_cell(t, cli_state_color(s->mem.state), "%s", s->mem.state[0] ? s->mem.state : "?");
        table_cell(t, NULL, "%llu", (unsigned long long)sum(s, 0));
        table_cell(t, NULL, "%llu", (unsigned long long)sum(s, 1));
    }
    table_print(t, stdout, cli_color(stdout), NULL, header);
    table_free(t);
}

int cmd_ls(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    bool json = false, quiet = false;
    for (int c; (c = cli_getopt(argc, argv, "q", longopts)) != -1;) {
        if (c == 'j')
            json = true;
        else if (c == 'q')
            quiet = true;
        else
            return EXIT_USAGE;
    }
    if (optind < argc)
        return cli_usage_error("ls", "unexpected argument '%s'", argv[optind]);
    if (json && quiet)
        return cli_usage_error("ls", "--json and -q do not go together");

    struct proc_ref *refs = calloc(LS_MAX, sizeof *refs);
    char **ans = calloc(LS_MAX, sizeof *ans);
    size_t *lens = calloc(LS_MAX, sizeof *lens);
    struct row *rows = calloc(LS_MAX, sizeof *rows);
    int rc = EXIT_OK;
    if (!refs || !ans || !lens || !rows) {
        cli_err("out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    int n = procs_list(refs, LS_MAX, true);
    if (n < 0) {
        rc = EXIT_FAIL;
        goto out;
    }
    proc_request_many(refs, n, "stats", ans, lens, cli_timeout_ms);
    int nrows = 0;
    for (int i = 0; i < n; i++) {
        if (!ans[i])
            continue;
        char *e = proc_answer_error(ans[i], lens[i]);
        const char *why = NULL;
        if (e) {
            cli_err("process %d: %s", refs[i].pid, e);
            free(e);
            continue;
        }
        struct reshim_snapshot *s = malloc(sizeof *s);
        if (!s) {
            cli_err("out of memory");
            continue;
        }
        if (snap_parse_json(ans[i], lens[i], s, &why) != 0) {
            cli_err("process %d: its stats answer is not a stats object (%s)", refs[i].pid, why);
            free(s);
            continue;
        }
        rows[nrows].pid = refs[i].pid;
        rows[nrows].s = s;
        nrows++;
    }
    if (nrows == 0 && n == 0)
        procs_say_none();
    if (json)
        print_json(rows, nrows);
    else if (quiet)
        for (int i = 0; i < nrows; i++)
            printf("%d\n", rows[i].pid);
    else if (nrows > 0 || isatty(STDOUT_FILENO))
        print_table(rows, nrows, true);
out:
    if (ans)
        for (int i = 0; i < LS_MAX; i++)
            free(ans[i]);
    if (rows)
        for (int i = 0; i < LS_MAX; i++)
            free(rows[i].s);
    free(refs);
    free(ans);
    free(lens);
    free(rows);
    return rc;
}
