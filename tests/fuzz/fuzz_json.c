/* fuzz_json: the CLI's JSON reader (shim/cli/json.c) and its text tables
 * (shim/cli/table.c) on arbitrary bytes: answers of processes the CLI does
 * not trust (errors, trim results, the configuration, heap sites).
 *
 * Checked: no crash, leak or undefined behaviour, no read past len, the
 * recursion bounded (64 levels below the top; deeper input is refused, not
 * followed); input that is strict JSON (fuzz_common.h) within that depth is
 * accepted, and what is accepted is JSON (but strings may hold bytes that
 * are not UTF-8: json.c passes them on); an accepted tree is well-formed,
 * and written back out as JSON (by a writer here) it parses to an equal
 * tree; json_get and json_u64 agree with the tree. The strings (and the raw
 * input cut at NUL bytes) go into tables: the text printed is UTF-8 and
 * holds no control character (C0, DEL, C1) but the newlines ending its rows
 * and, with colour, the ESC of SGR sequences; row count as given. */
#define _GNU_SOURCE
#include <math.h>

#include "cli.h"
#include "fuzz_common.h"

#define DEPTH_LIMIT 64 /* json.c's JSON_DEPTH */

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *np = realloc(o->p, cap);
        CHECK(np, "out of memory");
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

static void put_str(struct out *o, const char *s)
{
    put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') {
            e[0] = '\\';
            e[1] = (char)*p;
            put(o, e, 2);
        } else if (*p < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", *p);
            put(o, e, 6);
        } else {
            put(o, (const char *)p, 1); /* raw bytes as they are: json.c keeps them */
        }
    }
    put(o, "\"", 1);
}

static void write_tree(struct out *o, const struct json *j, int depth)
{
    CHECK(depth <= DEPTH_LIMIT, "a tree %d deep", depth);
    char num[40];
    switch (j->type) {
    case JSON_NULL:
        put(o, "null", 4);
        break;
    case JSON_BOOL:
        put(o, j->b ? "true" : "false", j->b ? 4 : 5);
        break;
    case JSON_NUMBER:
        CHECK(j->str && j->str[0], "a number without its literal");
        snprintf(num, sizeof num, "%.17g", isfinite(j->num) ? j->num : 0.0);
        put(o, num, strlen(num));
        break;
    case JSON_STRING:
        CHECK(j->str, "a string without text");
        put_str(o, j->str);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        CHECK(j->n == 0 || j->items, "items missing");
        CHECK(j->type == JSON_ARRAY || j->n == 0 || j->keys, "keys missing");
        put(o, j->type == JSON_ARRAY ? "[" : "{", 1);
        for (size_t i = 0; i < j->n; i++) {
            if (i)
                put(o, ",", 1);
            if (j->type == JSON_OBJECT) {
                CHECK(j->keys[i], "a NULL key");
                put_str(o, j->keys[i]);
                put(o, ":", 1);
                CHECK(json_get(j, j->keys[i]), "json_get(%s) misses it", j->keys[i]);
            }
            write_tree(o, &j->items[i], depth + 1);
        }
        put(o, j->type == JSON_ARRAY ? "]" : "}", 1);
        break;
    default:
        CHECK(false, "node type %d", j->type);
    }
}

static bool same_num(double a, double b)
{
    if (!isfinite(a))
        a = 0;
    return a == b;
}

static void compare(const struct json *a, const struct json *b)
{
    CHECK(a->type == b->type, "types %d and %d", a->type, b->type);
    switch (a->type) {
    case JSON_BOOL:
        CHECK(a->b == b->b, "bools");
        break;
    case JSON_NUMBER:
        CHECK(same_num(a->num, b->num), "numbers %.17g and %.17g", a->num, b->num);
        break;
    case JSON_STRING:
        CHECK(strcmp(a->str, b->str) == 0, "strings '%s' and '%s'", a->str, b->str);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        CHECK(a->n == b->n, "sizes %zu and %zu", a->n, b->n);
        for (size_t i = 0; i < a->n; i++) {
            if (a->type == JSON_OBJECT)
                CHECK(strcmp(a->keys[i], b->keys[i]) == 0, "keys");
            compare(&a->items[i], &b->items[i]);
        }
        break;
    default:
        break;
    }
}

/* Strings of the tree, for the tables. */
static void collect(const struct json *j, const char **s, int *n, int max)
{
    if (*n >= max)
        return;
    if (j->type == JSON_NUMBER) {
        unsigned long long u;
        if (json_u64(j, &u))
            CHECK(j->str[0] != '-' && j->num >= 0, "json_u64 of %s", j->str);
    }
    if (j->type == JSON_STRING || j->type == JSON_NUMBER) {
        s[(*n)++] = j->str;
        return;
    }
    for (size_t i = 0; i < j->n && *n < max; i++) {
        if (j->type == JSON_OBJECT && *n < max)
            s[(*n)++] = j->keys[i];
        collect(&j->items[i], s, n, max);
    }
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
    const char *err = NULL;
    struct json *j = json_parse(text, size, &err);
    /* json.c follows 64 levels below the top value: 64 arrays or objects
     * with values inside, or 65 when the innermost is empty. */
    const char *strict = json_strict(text, size, 64);
    if (!strict)
        CHECK(j, "strict JSON refused: %s", err ? err : "?");
    if (!j) {
        CHECK(err && err[0], "refused without a reason");
    } else {
        const char *why = json_strict_bytes(text, size, 65);
        CHECK(!why, "accepted what is not JSON (%s)", why);
        struct out o = {0};
        write_tree(&o, j, 0);
        const char *err2 = NULL;
        struct json *j2 = json_parse(o.p, o.len, &err2);
        CHECK(j2, "its own output refused (%s): %s", err2, o.p);
        compare(j, j2);
        json_free(j2);
        free(o.p);
        const char *cells[32];
        int n = 0;
        collect(j, cells, &n, 32);
        if (n)
            check_table(cells, n, 1 + (int)(size % (size_t)(n < 4 ? n : 4)), size & 1);
        json_free(j);
    }

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
