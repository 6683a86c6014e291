/* heap.c: `reshim heap PID [--top N] [--json]`: the top sampled allocation
 * sites of a process (request `heap N`). A shim without sampling answers
 * with an error: printed as is, exit 1. An answer {"sites":[...]} (read by
 * the keys of answerjson.c) is shown as a table (estimated live bytes and
 * objects, samples, the site: its symbolized frames, innermost first) and
 * a line with the sampling rate, the estimated live bytes of every sampled
 * site and the dropped samples. Native frames get their
 * function and file:line from the process's objects (symbols.c, libdw);
 * Python frames (sites sampled in a CPython's own allocator) come first.
 * --by python: one row per innermost Python line, the sites behind it
 * summed (their variances too), largest first; --json then prints those
 * groups. */
#define _GNU_SOURCE
#include "cli.h"
#include "answerjson.h"
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The site's frames, innermost first: each one as libdw names it from the
 * process's objects (function, file:line) when syms and the frame's
 * address (pcs) are there, else as the library named it. */
static void site_text(const struct snap_heap_site *site, struct cli_syms *syms, char *buf,
                      size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < site->nstack && k + 1 < n; i++) {
        const char *f = site->stack[i];
        char src[256];
        if (syms && i < site->npcs && syms_frame(syms, site->pcs[i], src, sizeof src))
            f = src;
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? " < " : "", f);
        if (k >= n)
            k = n - 1;
    }
    if (!site->nstack)
        snprintf(buf, n, "?");
}

/* A row of the table: one site, or (--by python) every site whose innermost
 * Python frame is the same line. */
struct row {
    char key[512];   /* the group's key ("" for a site of its own) */
    char where[1024];
    double bytes, var, objects, samples;
    unsigned sites;
    const struct snap_heap_site *py; /* the first site, when it has Python frames */
};

/* "function (file:line)" of Python frame f. */
static void py_frame_text(const struct snap_heap_pyframe *f, char *buf, size_t n)
{
    snprintf(buf, n, "%s (%s:%llu)", f->function, f->file, (unsigned long long)f->line);
}

/* The Python frames of a site, innermost first, then " | " and the native
 * ones (site_text). */
static void row_text(const struct snap_heap_site *site, struct cli_syms *syms, char *buf,
                     size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    if (site->npython) {
        for (unsigned i = 0; i < site->npython && k + 1 < n; i++) {
            char f[600];
            py_frame_text(&site->python[i], f, sizeof f);
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
static void print_groups_json(const struct snap_heap *h, const struct row *rows, size_t n)
{
    size_t cap = 256 + n * 1800;
    char *mem = malloc(cap);
    if (!mem)
        return;
    struct sbuf b;
    sb_init(&b, mem, cap);
    sb_str(&b, "{\"by\":\"python\",\"sample_bytes\":");
    sb_u64(&b, h->sample_bytes);
    sb_str(&b, ",\"groups\":[");
    for (size_t i = 0; i < n; i++) {
        const struct row *w = &rows[i];
        sb_str(&b, i ? ",{" : "{");
        if (w->py) {
            const struct snap_heap_pyframe *f = &w->py->python[0];
            sb_str(&b, "\"file\":");
            sb_json_str(&b, f->file);
            sb_str(&b, ",\"function\":");
            sb_json_str(&b, f->function);
            sb_str(&b, ",\"line\":");
            sb_u64(&b, f->line);
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
    struct snap_heap h;
    struct snap_heap_site *sites = NULL;
    struct row *rows = NULL;
    if (json && !by_python) {
        cli_print_raw(ans, len);
    } else if (!(sites = calloc(SNAP_HEAP_SITES, sizeof *sites)) ||
               !(rows = calloc(SNAP_HEAP_SITES + 1, sizeof *rows))) {
        cli_err("out of memory");
        rc = EXIT_FAIL;
    } else if (snap_heap_parse(ans, len, &h, sites, &why) != 0) {
        cli_err("process %d: unexpected answer to heap (%s): %.200s", pid, why, ans);
        rc = EXIT_FAIL;
    } else {
        char syms_why[256] = "";
        unsigned nsites = h.sites.n;
        struct cli_syms *syms = nsites ? syms_open(pid, syms_why, sizeof syms_why) : NULL;
        size_t nrows = 0;
        for (unsigned i = 0; i < nsites; i++) {
            const struct snap_heap_site *s = &sites[i];
            char key[512] = "";
            if (by_python && s->npython)
                py_frame_text(&s->python[0], key, sizeof key);
            struct row *w = NULL;
            for (size_t r = 0; key[0] && r < nrows && !w; r++)
                if (strcmp(rows[r].key, key) == 0)
                    w = &rows[r];
            if (!w) {
                w = &rows[nrows++];
                snprintf(w->key, sizeof w->key, "%s", key);
                w->py = s->npython ? s : NULL;
                row_text(s, syms, w->where, sizeof w->where);
            }
            w->bytes += (double)s->live_bytes;
            w->var += (double)s->live_bytes_sd * (double)s->live_bytes_sd;
            w->objects += (double)s->live_objects;
            w->samples += (double)s->samples;
            w->sites++;
        }
        if (by_python)
            qsort(rows, nrows, sizeof *rows, by_bytes);
        if (nrows > top)
            nrows = top;
        if (json) {
            print_groups_json(&h, rows, nrows);
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
                           cli_bytes((unsigned long long)(w->bytes + 0.5), bb, sizeof bb));
                table_cell(t, NULL, "%s",
                           cli_bytes((unsigned long long)(sqrt(w->var) + 0.5), bb, sizeof bb));
                table_cell(t, NULL, "%.0f", w->objects);
                table_cell(t, NULL, "%.0f", w->samples);
                table_cell(t, NULL, "%s", w->where);
            }
            if (nsites == 0)
                printf("no allocation site sampled yet\n");
            else
                table_print(t, stdout, false, NULL, true);
            char rb[32], tb[32];
            printf("estimates from one sample per %s allocated on average (+-SD: one standard "
                   "deviation of the sampling; the true size is within 3 SD in >= 99 %% of "
                   "runs); %s live in all sampled sites; %llu samples dropped\n",
                   cli_bytes(h.sample_bytes, rb, sizeof rb),
                   cli_bytes(h.sampled_live_bytes, tb, sizeof tb), (unsigned long long)h.dropped);
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
    free(sites);
    free(ans);
    return rc;
}
