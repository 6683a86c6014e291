/* table.c: aligned text tables for the CLI's human output (ls, stats,
 * heap): columns sized to their widest cell, left- or right-aligned, an
 * optional colour per cell (used only when the caller says colour is on),
 * and text from processes made safe for a terminal (control characters and
 * bytes that are not UTF-8 shown as '?', so a process name cannot send
 * escape sequences). */
#define _GNU_SOURCE
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define TABLE_COLS 16

struct cell {
    char *text;
    const char *color;
};

struct cli_table {
    int ncols;
    const char *head[TABLE_COLS];
    char align[TABLE_COLS];   /* 'l' or 'r' */
    struct cell *cells;       /* rows * ncols */
    size_t n, cap;            /* cells */
};

/* Length of the well-formed UTF-8 sequence at s (NUL-terminated), or 0. */
static size_t utf8_at(const unsigned char *s)
{
    return utf8_seq(s, strnlen((const char *)s, UTF8_MAX)); /* a NUL cuts a sequence */
}

/* Each control character (C0, DEL, and C1: U+0080-U+009F, whose U+009B is
 * a CSI to many terminals) and each byte that is not UTF-8 becomes one '?';
 * the text can only get shorter. */
void cli_sanitize(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = r;
    while (*r) {
        size_t k = utf8_at(r);
        if (k == 0 || *r < 0x20 || *r == 0x7f || (r[0] == 0xc2 && r[1] < 0xa0)) {
            *w++ = '?';
            r += k ? k : 1;
        } else {
            memmove(w, r, k);
            w += k;
            r += k;
        }
    }
    *w = '\0';
}

void cli_sanitize_snapshot(struct reshim_snapshot *s)
{
    cli_sanitize(s->comm);
    cli_sanitize(s->version);
    cli_sanitize(s->mem.budget_source);
    cli_sanitize(s->mem.state);
    cli_sanitize(s->mem.policy);
    for (unsigned i = 0; i < s->ndest && i < SNAP_DESTS; i++) {
        cli_sanitize(s->dest[i].dest);
        cli_sanitize(s->dest[i].dir);
        cli_sanitize(s->dest[i].last_error);
        cli_sanitize(s->dest[i].breaker);
    }
}

size_t cli_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xc0) != 0x80;
    return w;
}

struct cli_table *table_new(int ncols, const char *const *head, const char *align)
{
    struct cli_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols < TABLE_COLS ? ncols : TABLE_COLS;
    for (int i = 0; i < t->ncols; i++) {
        t->head[i] = head[i];
        t->align[i] = align && align[i] == 'r' ? 'r' : 'l';
    }
    return t;
}

void table_cell(struct cli_table *t, const char *color, const char *fmt, ...)
{
    if (!t)
        return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct cell *nc = realloc(t->cells, cap * sizeof *nc);
        if (!nc)
            return;
        t->cells = nc;
        t->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s && !(s = strdup("")))
        return;
    cli_sanitize(s);
    t->cells[t->n].text = s;
    t->cells[t->n].color = color;
    t->n++;
}

size_t table_rows(const struct cli_table *t)
{
    return t ? t->n / (size_t)t->ncols : 0;
}

static void pad(FILE *f, size_t n)
{
    while (n--)
        fputc(' ', f);
}

static void print_cell(FILE *f, const char *text, const char *color, bool use_color,
                       size_t width, char align, bool last)
{
    size_t w = cli_width(text);
    size_t fill = width > w ? width - w : 0;
    if (align == 'r')
        pad(f, fill);
    if (use_color && color)
        fprintf(f, "\033[%sm%s\033[0m", color, text);
    else
        fputs(text, f);
    if (align == 'l' && !last)
        pad(f, fill);
}

void table_print(const struct cli_table *t, FILE *f, bool use_color, const char *indent,
                 bool header)
{
    if (!t)
        return;
    size_t width[TABLE_COLS] = {0};
    size_t rows = table_rows(t);
    for (int c = 0; c < t->ncols; c++) {
        width[c] = header ? cli_width(t->head[c]) : 0;
        for (size_t r = 0; r < rows; r++) {
            size_t w = cli_width(t->cells[r * (size_t)t->ncols + (size_t)c].text);
            if (w > width[c])
                width[c] = w;
        }
    }
    if (header) {
        fputs(indent ? indent : "", f);
        for (int c = 0; c < t->ncols; c++) {
            if (c)
                fputs("  ", f);
            print_cell(f, t->head[c], NULL, false, width[c], t->align[c], c == t->ncols - 1);
        }
        fputc('\n', f);
    }
    for (size_t r = 0; r < rows; r++) {
        fputs(indent ? indent : "", f);
        for (int c = 0; c < t->ncols; c++) {
            const struct cell *x = &t->cells[r * (size_t)t->ncols + (size_t)c];
            if (c)
                fputs("  ", f);
            print_cell(f, x->text, x->color, use_color, width[c], t->align[c],
                       c == t->ncols - 1);
        }
        fputc('\n', f);
    }
}

void table_free(struct cli_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->cells[i].text);
    free(t->cells);
    free(t);
}

const char *cli_state_color(const char *state)
{
    if (!state)
        return NULL;
    if (strcmp(state, "ok") == 0 || strcmp(state, "closed") == 0)
        return "32";   /* green */
    if (strcmp(state, "warn") == 0 || strcmp(state, "half-open") == 0)
        return "33";   /* yellow */
    if (strcmp(state, "critical") == 0 || strcmp(state, "over") == 0 ||
        strcmp(state, "open") == 0)
        return "31";   /* red */
    return NULL;
}
