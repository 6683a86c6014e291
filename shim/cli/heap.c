/* heap.c: `reshim heap PID [--top N] [--json]`: the top sampled allocation
 * sites of a process (request `heap N`). A shim without sampling answers
 * with an error: printed as is, exit 1. An answer {"sites":[...]} is shown
 * as a table (estimated live bytes and objects, samples, the site: its
 * symbolized frames, innermost first) and a line with the sampling rate,
 * the estimated live bytes of every sampled site and the dropped samples;
 * the site keys read are the likely ones (live_bytes/bytes,
 * samples/count, stack/frames or site/symbol). Native frames get their
 * function and file:line from the process's objects (symbols.c, libdw);
 * Python frames (sites sampled in a CPython's own allocator) come first.
 * --by python: one row per innermost Python line, the sites behind it
 * summed (their variances too), largest first; --json then prints those
 * groups. */
#define _GNU_SOURCE
#include "cli.h"
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
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

/* A row of the table: one site, or (--by python) every site whose innermost
 * Python frame is the same line. */
struct row {
    char key[512];   /* the group's key ("" for a site of its own) */
    char where[1024];
    double bytes, var, objects, samples;
    bool have_bytes, have_sd, have_objects, have_samples;
    unsigned sites;
    const struct json *py; /* the first site's Python frames */
};

/* "function (file:line)" of Python frame f. */
static void py_frame_text(const struct json *f, char *buf, size_t n)
{
    unsigned long long line = 0;
    const char *fn = json_string(json_get(f, "function"));
    const char *file = json_string(json_get(f, "file"));
    json_u64(json_get(f, "line"), &line);
    snprintf(buf, n, "%s (%s:%llu)", fn ? fn : "?", file ? file : "?", line);
}

/* The Python frames of a site, innermost first, then " | " and the native
 * ones (site_text). */
static void row_text(const struct json *site, struct cli_syms *syms, char *buf, size_t n)
{
    const struct json *py = json_get(site, "python");
    size_t k = 0;
    buf[0] = 0;
    if (py && py->type == JSON_ARRAY && py->n) {
        for (size_t i = 0; i < py->n && k + 1 < n; i++) {
            char f[400];
            py_frame_text(&py->items[i], f, sizeof f);
            k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " < " : "", f);
        }
        if (k + 4 < n)
            k += (size_t)snprintf(buf + k, n - k, " | ");
        if (k >= n)
            return;
    }
    site_text(site, syms, buf + k, n - k);
}

static int by_bytes(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* --by python --json: the groups, largest first. */
static void print_groups_json(const struct json *j, const struct row *rows, size_t n)
{
    size_t cap = 256 + n * 1800;
    char *mem = malloc(cap);
    if (!mem)
        return;
    struct sbuf b;
    sb_init(&b, mem, cap);
    unsigned long long r = 0;
    json_u64(json_get(j, "sample_bytes"), &r);
    sb_str(&b, "{\"by\":\"python\",\"sample_bytes\":");
    sb_u64(&b, r);
    sb_str(&b, ",\"groups\":[");
    for (size_t i = 0; i < n; i++) {
        const struct row *w = &rows[i];
        sb_str(&b, i ? ",{" : "{");
        if (w->py) {
            const struct json *f = &w->py->items[0];
            unsigned long long line = 0;
            json_u64(json_get(f, "line"), &line);
            sb_str(&b, "\"file\":");
            sb_json_str(&b, json_string(json_get(f, "file")) ? json_string(json_get(f, "file")) : "?");
            sb_str(&b, ",\"function\":");
            sb_json_str(&b, json_string(json_get(f, "function")) ? json_string(json_get(f, "function")) : "?");
            sb_str(&b, ",\"line\":");
            sb_u64(&b, line);
            sb_str(&b, ",");
        }
        sb_str(&b, "\"site\":");
        sb_json_str(&b, w->where);
        sb_str(&b, ",\"live_bytes\":");
        sb_u64(&b, (uint64_t)(w->bytes + 0.5));
        sb_str(&b, ",\"live_bytes_sd\":");
        sb_u64(&b, (uint64_t)(sqrt(w->var) + 0.5));
        sb_str(&b, ",\"live_objects\":");
        sb_u64(&b, (uint64_t)(w->objects + 0.5));
        sb_str(&b, ",\"samples\":");
        sb_u64(&b, (uint64_t)(w->samples + 0.5));
        sb_str(&b, ",\"sites\":");
        sb_u64(&b, w->sites);
        sb_str(&b, "}");
    }
    sb_str(&b, "]}\n");
    if (!b.overflow)
        fwrite(mem, 1, b.len, stdout);
    else
        cli_err("the answer is too long to print");
    free(mem);
}

int cmd_heap(int argc, char **argv)
{
    bool json = false, by_python = false;
    int pid = 0;
    unsigned top = 20;
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"top", required_argument, NULL, 'n'},
        {"by", required_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    for (int c; (c = cli_getopt(argc, argv, "n:", longopts)) != -1;) {
        if (c == 'j')
            json = true;
        else if (c == 'n' && (reshim_parse_uint(optarg, 1000, &top) || top < 1))
            return cli_usage_error("heap", "--top needs a number from 1 to 1000");
        else if (c == 'b' && strcmp(optarg, "python") != 0 && strcmp(optarg, "site") != 0)
            return cli_usage_error("heap", "--by needs 'site' or 'python'");
        else if (c == 'b') /* --by site (each stack a row, the default) or --by python */
            by_python = strcmp(optarg, "python") == 0;
        else if (c != 'n')
            return EXIT_USAGE;
    }
    if (cli_one_pid(argc, argv, &pid) != EXIT_OK)
        return EXIT_USAGE;
    char req[32], *ans;
    size_t len;
    /* Grouped: every site the process keeps, grouped here, then the top N. */
    snprintf(req, sizeof req, "heap %u", by_python ? 1000 : top);
    int rc = cli_ask(pid, req, 2 * cli_timeout_ms, "", &ans, &len);
    if (rc != EXIT_OK)
        return rc;
    const char *why = NULL;
    struct json *j = NULL;
    const struct json *sites;
    struct row *rows = NULL;
    if (json && !by_python) {
        cli_print_raw(ans, len);
    } else if (!(j = json_parse(ans, len, &why)) || !(sites = json_get(j, "sites")) ||
               sites->type != JSON_ARRAY) {
        cli_err("process %d: unexpected answer to heap (%s): %.200s", pid,
                why ? why : "no \"sites\" list", ans);
        rc = EXIT_FAIL;
    } else if (!(rows = calloc(sites->n + 1, sizeof *rows))) {
        cli_err("out of memory");
        rc = EXIT_FAIL;
    } else {
        static const char *const bytes_keys[] = {"live_bytes", "est_live_bytes", "bytes",
                                                 "size", NULL};
        static const char *const count_keys[] = {"samples", "count", "allocs", NULL};
        static const char *const obj_keys[] = {"live_objects", "objects", NULL};
        char syms_why[256] = "";
        struct cli_syms *syms = sites->n ? syms_open(pid, syms_why, sizeof syms_why) : NULL;
        size_t nrows = 0;
        for (size_t i = 0; i < sites->n; i++) {
            const struct json *s = &sites->items[i];
            const struct json *py = json_get(s, "python");
            bool has_py = py && py->type == JSON_ARRAY && py->n;
            char key[512] = "";
            if (by_python && has_py)
                py_frame_text(&py->items[0], key, sizeof key);
            struct row *w = NULL;
            for (size_t r = 0; key[0] && r < nrows && !w; r++)
                if (strcmp(rows[r].key, key) == 0)
                    w = &rows[r];
            if (!w) {
                w = &rows[nrows++];
                snprintf(w->key, sizeof w->key, "%s", key);
                w->py = has_py ? py : NULL;
                row_text(s, syms, w->where, sizeof w->where);
            }
            unsigned long long v = 0;
            if (json_u64(first_of(s, bytes_keys), &v))
                w->bytes += (double)v, w->have_bytes = true;
            if (json_u64(json_get(s, "live_bytes_sd"), &v))
                w->var += (double)v * (double)v, w->have_sd = true;
            if (json_u64(first_of(s, obj_keys), &v))
                w->objects += (double)v, w->have_objects = true;
            if (json_u64(first_of(s, count_keys), &v))
                w->samples += (double)v, w->have_samples = true;
            w->sites++;
        }
        if (by_python)
            qsort(rows, nrows, sizeof *rows, by_bytes);
        if (nrows > top)
            nrows = top;
        if (json) {
            print_groups_json(j, rows, nrows);
        } else {
            static const char *const head[] = {"#", "LIVE (EST.)", "+-SD", "OBJECTS", "SAMPLES",
                                               "SITE"};
            static const char *const head_py[] = {"#", "LIVE (EST.)", "+-SD", "OBJECTS",
                                                  "SAMPLES", "PYTHON LINE (innermost first) | NATIVE"};
            struct cli_table *t = table_new(6, by_python ? head_py : head, "rrrrrl");
            for (size_t i = 0; i < nrows; i++) {
                const struct row *w = &rows[i];
                char bb[32];
                table_cell(t, NULL, "%zu", i + 1);
                table_cell(t, NULL, "%s",
                           w->have_bytes ? cli_bytes((unsigned long long)(w->bytes + 0.5), bb, sizeof bb) : "-");
                table_cell(t, NULL, "%s",
                           w->have_sd ? cli_bytes((unsigned long long)(sqrt(w->var) + 0.5), bb, sizeof bb) : "-");
                if (w->have_objects)
                    table_cell(t, NULL, "%.0f", w->objects);
                else
                    table_cell(t, NULL, "-");
                if (w->have_samples)
                    table_cell(t, NULL, "%.0f", w->samples);
                else
                    table_cell(t, NULL, "-");
                table_cell(t, NULL, "%s", w->where);
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
            if (by_python)
                printf("grouped by the innermost Python frame; sites without one (native "
                       "allocations) keep a row each\n");
            if (syms_why[0])
                printf("note: %s\n", syms_why);
            table_free(t);
        }
        syms_close(syms);
    }
    free(rows);
    json_free(j);
    free(ans);
    return rc;
}
