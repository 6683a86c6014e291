/* stats.c: `reshim stats PID [--json]`: one process's figures, as three
 * sections (net: the four classes of calls; destinations: the per-peer
 * table; mem: RSS, budget and state, heap, trims), or the process's own JSON
 * line untouched. */
#define _GNU_SOURCE
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void print_human(const struct reshim_snapshot *s, bool color)
{
    char a[32], b[32], c[32], d[32], e[32];
    printf("pid %d  %s  up %s  (reshim %s)\n", s->pid, s->comm[0] ? s->comm : "?",
           cli_duration(s->uptime_s, a, sizeof a), s->version[0] ? s->version : "?");

    /* net */
    static const char *const nhead[] = {"net", "calls", "failures", "retries", "recovered",
                                        "gave up"};
    struct cli_table *t = table_new(6, nhead, "lrrrrr");
    for (int k = 0; k < SNAP_CLASSES; k++) {
        const struct snap_calls *n = &s->net[k];
        table_cell(t, NULL, "%s", snap_class_names[k]);
        table_cell(t, NULL, "%llu", (unsigned long long)n->calls);
        table_cell(t, NULL, "%llu", (unsigned long long)n->failures);
        table_cell(t, NULL, "%llu", (unsigned long long)n->retries);
        table_cell(t, NULL, "%llu", (unsigned long long)n->recovered);
        table_cell(t, NULL, "%llu", (unsigned long long)n->gave_up);
    }
    printf("\n");
    table_print(t, stdout, color, NULL, true);
    table_free(t);
    if (s->dns_stale)
        printf("dns: %llu answers from the stale cache\n", (unsigned long long)s->dns_stale);
    const struct snap_replay *r = &s->replay;
    printf("replay: %llu (nothing sent %llu, TLS ClientHello %llu, HTTP request %llu); "
           "recovered %llu, gave up %llu; kept now %s (peak %s); requests not kept %llu\n",
           (unsigned long long)snap_replays_total(r), (unsigned long long)r->replays[SNAP_RP_NOTHING],
           (unsigned long long)r->replays[SNAP_RP_HELLO],
           (unsigned long long)r->replays[SNAP_RP_REQUEST], (unsigned long long)r->recovered,
           (unsigned long long)r->gave_up, cli_bytes(s->replay_held_bytes, a, sizeof a),
           cli_bytes(s->replay_held_peak_bytes, b, sizeof b),
           (unsigned long long)s->replay_over_max);

    /* destinations */
    printf("\ndestinations: %u%s\n", s->ndest, s->ndest ? "" : " (none yet)");
    if (s->ndest) {
        static const char *const dhead[] = {"DEST",    "DIR",       "CALLS",    "FAILURES",
                                            "RETRIES", "RECOVERED", "GAVE UP",  "BYTES OUT",
                                            "BYTES IN", "LAST ERROR", "BREAKER"};
        t = table_new(11, dhead, "llrrrrrrrll");
        uint64_t sk_breaker = 0, sk_budget = 0, sk_filter = 0;
        for (unsigned i = 0; i < s->ndest && i < SNAP_DESTS; i++) {
            const struct snap_dest *x = &s->dest[i];
            table_cell(t, NULL, "%s", x->dest);
            table_cell(t, NULL, "%s", x->dir[0] ? x->dir : "-");
            table_cell(t, NULL, "%llu", (unsigned long long)x->connect.calls);
            table_cell(t, NULL, "%llu", (unsigned long long)x->connect.failures);
            table_cell(t, NULL, "%llu", (unsigned long long)x->connect.retries);
            table_cell(t, NULL, "%llu", (unsigned long long)x->connect.recovered);
            table_cell(t, NULL, "%llu", (unsigned long long)x->connect.gave_up);
            table_cell(t, NULL, "%s", cli_bytes(x->bytes_out, a, sizeof a));
            table_cell(t, NULL, "%s", cli_bytes(x->bytes_in, a, sizeof a));
            table_cell(t, NULL, "%s", x->last_error[0] ? x->last_error : "-");
            table_cell(t, cli_state_color(x->breaker), "%s", x->breaker[0] ? x->breaker : "-");
            sk_breaker += x->skipped_breaker;
            sk_budget += x->skipped_budget;
            sk_filter += x->skipped_filter;
        }
        table_print(t, stdout, color, NULL, true);
        table_free(t);
        for (unsigned i = 0; i < s->ndest && i < SNAP_DESTS; i++) {
            const struct snap_replay *x = &s->dest[i].replay;
            if (snap_replays_total(x))
                printf("replays to %s: %llu (nothing sent %llu, TLS ClientHello %llu, HTTP "
                       "request %llu); recovered %llu, gave up %llu\n", s->dest[i].dest,
                       (unsigned long long)snap_replays_total(x),
                       (unsigned long long)x->replays[SNAP_RP_NOTHING],
                       (unsigned long long)x->replays[SNAP_RP_HELLO],
                       (unsigned long long)x->replays[SNAP_RP_REQUEST],
                       (unsigned long long)x->recovered, (unsigned long long)x->gave_up);
        }
        if (sk_breaker || sk_budget || sk_filter)
            printf("retries not made: %llu (breaker open), %llu (retry budget spent), %llu "
                   "(RESHIM_DEST)\n",
                   (unsigned long long)sk_breaker, (unsigned long long)sk_budget,
                   (unsigned long long)sk_filter);
    }
    if (s->dest_overflow)
        printf("%llu destinations did not fit the table (counted in the totals only)\n",
               (unsigned long long)s->dest_overflow);

    /* mem */
    const struct snap_mem *m = &s->mem;
    printf("\nmem\n");
    printf("  rss      %s (peak %s; anon %s, file %s, shmem %s)\n",
           cli_bytes(m->rss_bytes, a, sizeof a), cli_bytes(m->rss_peak_bytes, b, sizeof b),
           cli_bytes(m->rss_anon_bytes, c, sizeof c), cli_bytes(m->rss_file_bytes, d, sizeof d),
           cli_bytes(m->rss_shmem_bytes, e, sizeof e));
    const char *state = m->state[0] ? m->state : "?";
    const char *sc = color ? cli_state_color(state) : NULL;
    char st[64];
    if (sc)
        snprintf(st, sizeof st, "\033[%sm%s\033[0m", sc, state);
    else
        snprintf(st, sizeof st, "%s", state);
    if (m->budget_bytes) {
        uint64_t u = m->usage_bytes ? m->usage_bytes : m->rss_bytes;
        printf("  budget   %s (from %s), usage %s = %.1f%%: state %s\n",
               cli_bytes(m->budget_bytes, a, sizeof a), m->budget_source, cli_bytes(u, b, sizeof b),
               100.0 * (double)u / (double)m->budget_bytes, st);
        if (m->working_set_bytes)
            printf("           (container working set %s)\n",
                   cli_bytes(m->working_set_bytes, a, sizeof a));
    } else {
        printf("  budget   none: state %s\n", st);
    }
    char hl[32];
    if (m->heap_live_bytes < 0)
        snprintf(hl, sizeof hl, "-%s", cli_bytes((unsigned long long)-m->heap_live_bytes, a, sizeof a));
    else
        cli_bytes((unsigned long long)m->heap_live_bytes, hl, sizeof hl);
    printf("  heap     live %s, peak %s (%llu allocations, %llu frees)\n", hl,
           cli_bytes(m->heap_peak_bytes, b, sizeof b), (unsigned long long)m->allocs,
           (unsigned long long)m->frees);
    printf("  mmap     anonymous %s (peak %s)\n", cli_bytes(m->mmap_anon_bytes, a, sizeof a),
           cli_bytes(m->mmap_anon_peak_bytes, b, sizeof b));
    printf("  policy   %s; trims: %llu (%s released); allocations denied (ENOMEM): %llu\n",
           m->policy[0] ? m->policy : "?", (unsigned long long)m->trims,
           cli_bytes(m->trimmed_bytes, a, sizeof a), (unsigned long long)m->enomem);
}

/* The stats answer of process pid, printed for humans: the exit code. */
static int stats_human(int pid, const char *ans, size_t len)
{
    int rc = EXIT_OK;
    struct reshim_snapshot *s = malloc(sizeof *s);
    const char *why = NULL;
    if (!s) {
        cli_err("out of memory");
        rc = EXIT_FAIL;
    } else if (snap_parse_json(ans, len, s, &why) != 0) {
        cli_err("process %d: its stats answer is not a stats object (%s)", pid, why);
        rc = EXIT_FAIL;
    } else {
        cli_sanitize_snapshot(s);
        print_human(s, cli_color(stdout));
    }
    free(s);
    return rc;
}

int cmd_stats(int argc, char **argv)
{
    return cli_pid_json_command(argc, argv, "stats", cli_timeout_ms, "", stats_human);
}
