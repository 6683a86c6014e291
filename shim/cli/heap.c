/* heap.c: `reshim heap PID [--top N] [--json]`: the top sampled allocation
 * sites of a process (request `heap N`). A shim without sampling answers
 * with an error: printed as is, exit 1. An answer {"sites":[...]} is shown
 * as a table (estimated live bytes and objects, samples, the site: its
 * symbolized frames, innermost first) and a line with the sampling rate,
 * the estimated live bytes of every sampled site and the dropped samples;
 * the site keys read are the likely ones (live_bytes/bytes,
 * samples/count, stack/frames or site/symbol). */
#define _GNU_SOURCE
#include "cli.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>

static const struct json *first_of(const struct json *o, const char *const *keys)
{
    for (; *keys; keys++) {
        const struct json *v = json_get(o, *keys);
        if (v)
            return v;
    }
    return NULL;
}

/* A frame: a string, or an object with a symbol-ish member. */
static const char *frame_text(const struct json *f)
{
    static const char *const keys[] = {"symbol", "function", "name", "frame", "addr", NULL};
    const char *s = json_string(f);
    return s ? s : json_string(first_of(f, keys));
}

/* The site's frames, innermost first: each one as libdw names it from the
 * process's objects (function, file:line) when syms and the frame's
 * address (pcs) are there, else as the library named it. */
static void site_text(const struct json *site, struct cli_syms *syms, char *buf, size_t n)
{
    static const char *const stack_keys[] = {"stack", "frames", "trace", NULL};
    static const char *const one_keys[] = {"site", "symbol", "function", "location", NULL};
    const struct json *st = first_of(site, stack_keys), *pcs = json_get(site, "pcs");
    size_t k = 0;
    buf[0] = 0;
    if (st && st->type == JSON_ARRAY) {
        for (size_t i = 0; i < st->n && k + 1 < n; i++) {
            const char *f = frame_text(&st->items[i]);
            char src[256];
            unsigned long long pc;
            if (syms && pcs && pcs->type == JSON_ARRAY && i < pcs->n &&
                json_u64(&pcs->items[i], &pc) && syms_frame(syms, pc, src, sizeof src))
                f = src;
            k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " < " : "", f ? f : "?");
            if (k >= n)
                k = n - 1;
        }
        return;
    }
    const char *one = json_string(first_of(site, one_keys));
    snprintf(buf, n, "%s", one ? one : "?");
}

int cmd_heap(int argc, char **argv)
{
    bool json = false;
    int pid = 0;
    unsigned top = 20;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--top") == 0 || strcmp(argv[i], "-n") == 0 ||
                   strncmp(argv[i], "--top=", 6) == 0) {
            const char *v = argv[i][5] == '=' ? argv[i] + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || reshim_parse_uint(v, 1000, &top) || top < 1)
                return cli_usage_error("heap", "--top needs a number from 1 to 1000");
        } else if (argv[i][0] == '-' || pid) {
            return cli_usage_error("heap", "unexpected argument '%s'", argv[i]);
        } else if ((pid = cli_parse_pid(argv[i])) < 0) {
            return cli_usage_error("heap", "'%s' is not a process id", argv[i]);
        }
    }
    if (pid <= 0)
        return cli_usage_error("heap", "which process? (a PID; reshim ls lists them)");
    char req[32], *ans;
    size_t len;
    snprintf(req, sizeof req, "heap %u", top);
    int rc = cli_ask(pid, req, 2 * cli_timeout_ms, "", &ans, &len);
    if (rc != EXIT_OK)
        return rc;
    const char *why = NULL;
    struct json *j = NULL;
    const struct json *sites;
    if (json) {
        cli_print_raw(ans, len);
    } else if (!(j = json_parse(ans, len, &why)) || !(sites = json_get(j, "sites")) ||
               sites->type != JSON_ARRAY) {
        cli_err("process %d: unexpected answer to heap (%s): %.200s", pid,
                why ? why : "no \"sites\" list", ans);
        rc = EXIT_FAIL;
    } else {
        static const char *const bytes_keys[] = {"live_bytes", "est_live_bytes", "bytes",
                                                 "size", NULL};
        static const char *const count_keys[] = {"samples", "count", "allocs", NULL};
        static const char *const obj_keys[] = {"live_objects", "objects", NULL};
        static const char *const head[] = {"#", "LIVE (EST.)", "+-SD", "OBJECTS", "SAMPLES",
                                           "SITE"};
        struct cli_table *t = table_new(6, head, "rrrrrl");
        char syms_why[256] = "";
        struct cli_syms *syms = sites->n ? syms_open(pid, syms_why, sizeof syms_why) : NULL;
        for (size_t i = 0; i < sites->n; i++) {
            const struct json *s = &sites->items[i];
            unsigned long long b = 0, c = 0;
            char bb[32], where[1024];
            bool hb = json_u64(first_of(s, bytes_keys), &b);
            bool hc = json_u64(first_of(s, count_keys), &c);
            unsigned long long o = 0;
            bool ho = json_u64(first_of(s, obj_keys), &o);
            site_text(s, syms, where, sizeof where);
            table_cell(t, NULL, "%zu", i + 1);
            table_cell(t, NULL, "%s", hb ? cli_bytes(b, bb, sizeof bb) : "-");
            unsigned long long sd = 0;
            if (json_u64(json_get(s, "live_bytes_sd"), &sd))
                table_cell(t, NULL, "%s", cli_bytes(sd, bb, sizeof bb));
            else
                table_cell(t, NULL, "-");
            if (ho)
                table_cell(t, NULL, "%llu", o);
            else
                table_cell(t, NULL, "-");
            if (hc)
                table_cell(t, NULL, "%llu", c);
            else
                table_cell(t, NULL, "-");
            table_cell(t, NULL, "%s", where);
        }
        if (sites->n == 0)
            printf("no allocation site sampled yet\n");
        else
            table_print(t, stdout, false, NULL, true);
        unsigned long long r = 0, tot = 0, dr = 0;
        if (json_u64(json_get(j, "sample_bytes"), &r) &&
            json_u64(json_get(j, "sampled_live_bytes"), &tot)) {
            char rb[32], tb[32];
            json_u64(json_get(j, "dropped"), &dr);
            printf("estimates from one sample per %s allocated on average (+-SD: one standard "
                   "deviation of the sampling; the true size is within 3 SD in >= 99 %% of "
                   "runs); %s live in all sampled sites; %llu samples dropped\n",
                   cli_bytes(r, rb, sizeof rb), cli_bytes(tot, tb, sizeof tb), dr);
        }
        if (syms_why[0])
            printf("note: %s\n", syms_why);
        syms_close(syms);
        table_free(t);
    }
    json_free(j);
    free(ans);
    return rc;
}
