/* fuzz_json: the CLI's one JSON reader (shim/jsonparse.c) on the answers
 * that are not stats snapshots (errors, trim results, the configuration,
 * heap sites: answerjson.c), and its text tables (shim/cli/table.c), on
 * arbitrary bytes: answers of processes the CLI does not trust.
 *
 * Checked: no crash, leak or undefined behaviour, no read past len, the
 * recursion bounded; a refused input leaves a reason and an all-zero
 * answer; an accepted one holds NUL-terminated UTF-8 strings and counts
 * within their arrays, encodes (the one encoder, the same tables) to
 * strict JSON within its bound, which reads back to the same answer and
 * encodes to the same text again. The strings read (and the raw input cut
 * at NUL bytes) go into tables: the text printed is UTF-8 and holds no
 * control character (C0, DEL, C1) but the newlines ending its rows and,
 * with colour, the ESC of SGR sequences; row count as given. */
#define _GNU_SOURCE
#include "answerjson.h"
#include "cli.h"
#include "fuzz_common.h"

static char text1[1 << 19], text2[1 << 19]; /* the config answer's bound: 330 KB */

static void check_str(const char *what, const char *f, size_t size)
{
    size_t n = strnlen(f, size);
    CHECK(n < size, "%s not terminated", what);
    CHECK(u8_valid(f, n), "%s not UTF-8", what);
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return false;
    return true;
}

/* Written within max, strict JSON; returns the length. */
static size_t written(struct sbuf *b, size_t len, size_t max, char *text)
{
    CHECK(!b->overflow && len == b->len && len < max, "overflow: %zu of %zu", len, max);
    CHECK(len && text[len - 1] == '\n', "no final newline");
    const char *why = json_strict(text, len, 8);
    CHECK(!why, "not strict JSON (%s): %s", why, text);
    return len;
}

#define CELLS 32
struct cells {
    const char *s[CELLS];
    int n;
};

static void cell(struct cells *c, const char *s)
{
    if (c->n < CELLS)
        c->s[c->n++] = s;
}

static void fuzz_error(const char *text, size_t size, struct cells *c)
{
    static struct snap_error e1, e2;
    const char *err = NULL;
    if (snap_error_parse(text, size, &e1, &err) != 0) {
        CHECK(err && err[0] && all_zero(&e1, sizeof e1), "refused without a reason or left data");
        return;
    }
    check_str("error", e1.error, sizeof e1.error);
    if (!e1.has_error)
        CHECK(!e1.error[0], "an error without its key");
    struct sbuf b;
    size_t max = snap_error_json_max();
    sb_init(&b, text1, max);
    size_t len = written(&b, snap_error_json(&e1, &b), max, text1);
    CHECK(snap_error_parse(text1, len, &e2, &err) == 0, "its encoding refused: %s", err);
    CHECK(memcmp(&e1, &e2, sizeof e1) == 0, "read back differently");
    cell(c, e1.error);
}

static void fuzz_trim(const char *text, size_t size)
{
    static struct snap_trim t1, t2;
    const char *err = NULL;
    if (snap_trim_parse(text, size, &t1, &err) != 0) {
        CHECK(err && err[0] && all_zero(&t1, sizeof t1), "refused without a reason or left data");
        return;
    }
    struct sbuf b;
    size_t max = snap_trim_json_max();
    sb_init(&b, text1, max);
    size_t len = written(&b, snap_trim_json(&t1, &b), max, text1);
    CHECK(snap_trim_parse(text1, len, &t2, &err) == 0, "its encoding refused: %s", err);
    CHECK(memcmp(&t1, &t2, sizeof t1) == 0, "read back differently");
}

static void fuzz_config(const char *text, size_t size, struct cells *c)
{
    static struct snap_config c1, c2;
    const char *err = NULL;
    if (snap_config_parse(text, size, &c1, &err) != 0) {
        CHECK(err && err[0] && all_zero(&c1, sizeof c1), "refused without a reason or left data");
        return;
    }
    for (int v = 0; v < V_COUNT; v++) {
        const struct snap_config_var *x = &c1.var[v];
        check_str("value", x->value, sizeof x->value);
        check_str("source", x->source, sizeof x->source);
        check_str("given", x->given, sizeof x->given);
        if (!x->present)
            CHECK(all_zero(x, sizeof *x), "an absent variable with data");
        if (x->present) {
            cell(c, x->value);
            cell(c, x->given);
        }
    }
    struct sbuf b;
    size_t max = snap_config_json_max();
    CHECK(max <= sizeof text1, "snap_config_json_max %zu", max);
    sb_init(&b, text1, max);
    size_t len = written(&b, snap_config_json(&c1, &b), max, text1);
    CHECK(snap_config_parse(text1, len, &c2, &err) == 0, "its encoding refused: %s", err);
    CHECK(memcmp(&c1, &c2, sizeof c1) == 0, "read back differently");
    sb_init(&b, text2, max);
    snap_config_json(&c2, &b);
    CHECK(b.len == len && memcmp(text1, text2, len) == 0, "encoded differently");
}

static void fuzz_heap(const char *text, size_t size, struct cells *c)
{
    static struct snap_heap_site room1[SNAP_HEAP_SITES], room2[SNAP_HEAP_SITES];
    struct snap_heap h1, h2;
    const char *err = NULL;
    if (snap_heap_parse(text, size, &h1, room1, &err) != 0) {
        CHECK(err && err[0], "refused without a reason");
        CHECK(h1.sites.p == room1 && h1.sites.n == 0 && !h1.sites.at && h1.sample_bytes == 0 &&
                  !h1.unwinder[0] && !h1.python[0] && h1.dropped == 0,
              "a refused input left data");
        return;
    }
    unsigned n = h1.sites.n;
    CHECK(h1.sites.p == room1 && n <= SNAP_HEAP_SITES, "%u sites", n);
    check_str("unwinder", h1.unwinder, sizeof h1.unwinder);
    check_str("python", h1.python, sizeof h1.python);
    for (unsigned i = 0; i < n; i++) {
        const struct snap_heap_site *s = &room1[i];
        CHECK(s->nstack <= SNAP_HEAP_DEPTH + 1 && s->npcs <= SNAP_HEAP_DEPTH &&
                  s->npython <= SNAP_HEAP_PY_DEPTH, "counts %u %u %u", s->nstack, s->npcs,
              s->npython);
        CHECK(s->has_python || !s->npython, "Python frames without the key");
        for (unsigned j = 0; j < s->nstack; j++) {
            check_str("frame", s->stack[j], SNAP_HEAP_SYM_MAX);
            cell(c, s->stack[j]);
        }
        for (unsigned j = 0; j < s->npython; j++) {
            check_str("file", s->python[j].file, SNAP_HEAP_PY_STR_MAX);
            check_str("function", s->python[j].function, SNAP_HEAP_PY_STR_MAX);
            cell(c, s->python[j].function);
        }
    }
    struct sbuf b;
    size_t max = snap_heap_json_max(n); /* 80 KB a site: the pages written are touched only */
    char *t1 = malloc(max), *t2 = malloc(max);
    CHECK(t1 && t2, "no memory for %zu", max);
    sb_init(&b, t1, max);
    size_t len = written(&b, snap_heap_json(&h1, &b), max, t1);
    CHECK(snap_heap_parse(t1, len, &h2, room2, &err) == 0, "its encoding refused: %s", err);
    CHECK(h2.sites.n == n, "%u sites read back, %u written", h2.sites.n, n);
    h2.sites.p = room1;
    CHECK(memcmp(&h1, &h2, sizeof h1) == 0, "read back differently");
    CHECK(memcmp(room1, room2, n * sizeof room1[0]) == 0, "sites read back differently");
    sb_init(&b, t2, max);
    h2.sites.p = room2;
    snap_heap_json(&h2, &b);
    CHECK(b.len == len && memcmp(t1, t2, len) == 0, "encoded differently");
    free(t1);
    free(t2);
}

static void check_table(const char *const *cells, int n, int ncols, bool color)
{
    static const char *const head[4] = {"PID", "COMM", "DEST", "STATE"};
    struct cli_table *t = table_new(ncols, head, "lrlr");
    CHECK(t, "table_new");
    for (int i = 0; i < n; i++)
        table_cell(t, i % 3 == 0 ? cli_state_color(cells[i]) : i % 3 == 1 ? "31" : NULL, "%s",
                   cells[i]);
    size_t rows = table_rows(t);
    CHECK(rows == (size_t)(n / ncols), "%zu rows of %d cells", rows, n);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f, "open_memstream");
    table_print(t, f, color, "  ", true);
    fclose(f);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            lines++;
            continue;
        }
        if (c == 0x1b) {
            CHECK(color, "ESC in a table without colour");
            size_t k = i + 1;
            CHECK(k < len && text[k] == '[', "ESC not followed by [");
            k++;
            while (k < len && text[k] >= '0' && text[k] <= '9')
                k++;
            CHECK(k < len && text[k] == 'm', "not an SGR sequence");
            i = k;
            continue;
        }
        CHECK(c >= 0x20 && c != 0x7f, "control byte 0x%02x in a table", c);
        /* Text for a terminal: UTF-8, and no C1 control (U+0080-U+009F:
         * 0x9b is CSI, as ESC [ is) in either form, raw or encoded. */
        size_t k = u8_len((const unsigned char *)text + i, len - i);
        CHECK(k, "byte 0x%02x that is not UTF-8 in a table", c);
        CHECK(!(c == 0xc2 && (unsigned char)text[i + 1] < 0xa0), "C1 control U+%04X in a table",
              (unsigned char)text[i + 1]);
        i += k - 1;
    }
    CHECK(lines == rows + 1, "%zu lines for %zu rows", lines, rows);
    free(text);
    table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct cells c = {{0}, 0};
    fuzz_error(text, size, &c);
    fuzz_trim(text, size);
    fuzz_config(text, size, &c);
    fuzz_heap(text, size, &c);
    if (c.n)
        check_table(c.s, c.n, 1 + (int)(size % (size_t)(c.n < 4 ? c.n : 4)), size & 1);

    /* The raw bytes as cells: cut at NULs (a C string ends there). */
    char *copy = malloc(size + 1);
    CHECK(copy, "out of memory");
    memcpy(copy, data, size);
    copy[size] = 0;
    const char *cells[32];
    int n = 0;
    for (size_t at = 0; at <= size && n < 32; at += strlen(copy + at) + 1)
        cells[n++] = copy + at;
    check_table(cells, n, 1 + (int)((size >> 2) % (size_t)(n < 4 ? n : 4)), size & 2);
    free(copy);
    return 0;
}
