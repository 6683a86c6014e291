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

#include <getopt.h>
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

static void site_text(const struct json *site, char *buf, size_t n)
{
    static const char *const stack_keys[] = {"stack", "frames", "trace", NULL};
    static const char *const one_keys[] = {"site", "symbol", "function", "location", NULL};
    const struct json *st = first_of(site, stack_keys);
    size_t k = 0;
    buf[0] = 0;
    if (st && st->type == JSON_ARRAY) {
        for (size_t i = 0; i < st->n && k + 1 < n; i++) {
            const char *f = frame_text(&st->items[i]);
            k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " < " : "", f ? f : "?");
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
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"top", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    for (int c; (c = cli_getopt(argc, argv, "n:", longopts)) != -1;) {
        if (c == 'j')
            json = true;
        else if (c == 'n' && (reshim_parse_uint(optarg, 1000, &top) || top < 1))
            return cli_usage_error("heap", "--top needs a number from 1 to 1000");
        else if (c != 'n')
            return EXIT_USAGE;
    }
    if (cli_one_pid(argc, argv, &pid) != EXIT_OK)
        return EXIT_USAGE;
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
        static const char *const head[] = {"#", "LIVE (EST.)", "OBJECTS", "SAMPLES", "SITE"};
        struct cli_table *t = table_new(5, head, "rrrrl");
        for (size_t i = 0; i < sites->n; i++) {
            const struct json *s = &sites->items[i];
            unsigned long long b = 0, c = 0;
            char bb[32], where[512];
            bool hb = json_u64(first_of(s, bytes_keys), &b);
            bool hc = json_u64(first_of(s, count_keys), &c);
            unsigned long long o = 0;
            bool ho = json_u64(first_of(s, obj_keys), &o);
            site_text(s, where, sizeof where);
            table_cell(t, NULL, "%zu", i + 1);
            table_cell(t, NULL, "%s", hb ? cli_bytes(b, bb, sizeof bb) : "-");
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
            printf("estimates from one sample per %s allocated on average; %s live in all "
                   "sampled sites; %llu samples dropped\n",
                   cli_bytes(r, rb, sizeof rb), cli_bytes(tot, tb, sizeof tb), dr);
        }
        table_free(t);
    }
    json_free(j);
    free(ans);
    return rc;
}
