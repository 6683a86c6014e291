/* json.c: a small JSON reader for the CLI's answers that are not stats
 * snapshots (those go through snap_parse_json): errors, trim results, the
 * configuration, heap sites. A tree of malloc'd nodes; bounded depth; any
 * input is safe (never reads past len). Not used inside the shim. */
#define _GNU_SOURCE
#include "cli.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define JSON_DEPTH 64

struct reader {
    const char *p, *end;
    const char *err;
};

static void skip_ws(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int fail(struct reader *r, const char *why)
{
    if (!r->err)
        r->err = why;
    return -1;
}

/* Appends to a growable string. */
struct strbuf {
    char *s;
    size_t len, cap;
};

static int sput(struct strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns)
            return -1;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

static int put_utf8(struct strbuf *b, uint32_t c)
{
    char u[UTF8_MAX];
    return sput(b, u, utf8_put(c, u));
}

static int hex4(struct reader *r, uint32_t *out)
{
    if (r->end - r->p < 4)
        return fail(r, "short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *r->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(r, "bad \\u escape");
    }
    *out = v;
    return 0;
}

/* At the opening quote; returns the decoded string (malloc'd) or NULL. */
static char *parse_string(struct reader *r)
{
    struct strbuf b = {0};
    r->p++;
    if (sput(&b, "", 0))
        goto bad;
    while (r->p < r->end) {
        const char *run = r->p;
        while (r->p < r->end && *r->p != '"' && *r->p != '\\' && (unsigned char)*r->p >= 0x20)
            r->p++;
        if (sput(&b, run, (size_t)(r->p - run)))
            goto bad;
        if (r->p >= r->end)
            break;
        char c = *r->p++;
        if (c == '"')
            return b.s;
        if (c != '\\') {
            fail(r, "control character in a string");
            goto bad;
        }
        if (r->p >= r->end)
            break;
        char e = *r->p++;
        const char *lit = NULL;
        switch (e) {
        case '"': lit = "\""; break;
        case '\\': lit = "\\"; break;
        case '/': lit = "/"; break;
        case 'b': lit = "\b"; break;
        case 'f': lit = "\f"; break;
        case 'n': lit = "\n"; break;
        case 'r': lit = "\r"; break;
        case 't': lit = "\t"; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(r, &cp))
                goto bad;
            if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' &&
                r->p[1] == 'u') {
                const char *save = r->p;
                r->p += 2;
                if (hex4(r, &lo))
                    goto bad;
                if (lo >= 0xdc00 && lo < 0xe000)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else
                    r->p = save, cp = 0xfffd;
            } else if ((cp >= 0xd800 && cp < 0xe000) || cp == 0) {
                cp = 0xfffd; /* a lone surrogate; a NUL would end the C string */
            }
            if (put_utf8(&b, cp))
                goto bad;
            continue;
        }
        default:
            fail(r, "bad escape in a string");
            goto bad;
        }
        if (sput(&b, lit, 1))
            goto bad;
    }
    fail(r, "unterminated string");
bad:
    fail(r, "out of memory");
    free(b.s);
    return NULL;
}

static int parse_value(struct reader *r, struct json *out, int depth);

static int add_item(struct json *j, size_t *cap, struct json *item, char *key)
{
    if (j->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct json *ni = realloc(j->items, nc * sizeof *ni);
        if (!ni)
            return -1;
        j->items = ni;
        if (j->type == JSON_OBJECT) {
            char **nk = realloc(j->keys, nc * sizeof *nk);
            if (!nk)
                return -1;
            j->keys = nk;
        }
        *cap = nc;
    }
    j->items[j->n] = *item;
    if (j->type == JSON_OBJECT)
        j->keys[j->n] = key;
    j->n++;
    return 0;
}

static void free_value(struct json *j);

static int parse_container(struct reader *r, struct json *out, int depth)
{
    bool obj = *r->p == '{';
    char close = obj ? '}' : ']';
    out->type = obj ? JSON_OBJECT : JSON_ARRAY;
    size_t cap = 0;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(r);
        if (obj) {
            if (r->p >= r->end || *r->p != '"')
                return fail(r, "expected a key");
            if (!(key = parse_string(r)))
                return -1;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':') {
                free(key);
                return fail(r, "expected ':'");
            }
            r->p++;
        }
        struct json item = {0};
        if (parse_value(r, &item, depth + 1) || add_item(out, &cap, &item, key)) {
            free_value(&item);
            free(key);
            return fail(r, "out of memory");
        }
        skip_ws(r);
        if (r->p >= r->end)
            return fail(r, "unterminated object or array");
        if (*r->p == ',') {
            r->p++;
            continue;
        }
        if (*r->p == close) {
            r->p++;
            return 0;
        }
        return fail(r, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int literal(struct reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return fail(r, "unexpected character");
    r->p += n;
    return 0;
}

/* Skips a run of digits; false when there is none. */
static bool digits(struct reader *r)
{
    const char *s = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return r->p > s;
}

static int parse_value(struct reader *r, struct json *out, int depth)
{
    memset(out, 0, sizeof *out);
    if (depth > JSON_DEPTH)
        return fail(r, "nested too deeply");
    skip_ws(r);
    if (r->p >= r->end)
        return fail(r, "unexpected end");
    char c = *r->p;
    if (c == '{' || c == '[')
        return parse_container(r, out, depth);
    if (c == '"') {
        out->type = JSON_STRING;
        return (out->str = parse_string(r)) ? 0 : -1;
    }
    if (c == 't') {
        out->type = JSON_BOOL;
        out->b = true;
        return literal(r, "true");
    }
    if (c == 'f') {
        out->type = JSON_BOOL;
        return literal(r, "false");
    }
    if (c == 'n') {
        out->type = JSON_NULL;
        return literal(r, "null");
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, as RFC 8259
         * writes it: strtod alone would also take 01, 1. and -.5 */
        const char *s = r->p;
        if (*r->p == '-')
            r->p++;
        if (r->p < r->end && *r->p == '0')
            r->p++;
        else if (!digits(r))
            return fail(r, "bad number");
        if (r->p < r->end && *r->p == '.') {
            r->p++;
            if (!digits(r))
                return fail(r, "bad number");
        }
        if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
            r->p++;
            if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
                r->p++;
            if (!digits(r))
                return fail(r, "bad number");
        }
        size_t n = (size_t)(r->p - s);
        out->type = JSON_NUMBER;
        if (!(out->str = malloc(n + 1)))
            return fail(r, "out of memory");
        memcpy(out->str, s, n);
        out->str[n] = 0;
        char *end;
        out->num = strtod(out->str, &end);
        if (*end)
            return fail(r, "bad number");
        return 0;
    }
    return fail(r, "unexpected character");
}

static void free_value(struct json *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free_value(&j->items[i]);
        if (j->keys)
            free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    free(j->str);
    memset(j, 0, sizeof *j);
}

struct json *json_parse(const char *text, size_t len, const char **err)
{
    struct reader r = {text, text + len, NULL};
    struct json *j = calloc(1, sizeof *j);
    if (!j) {
        *err = "out of memory";
        return NULL;
    }
    if (parse_value(&r, j, 0) == 0) {
        skip_ws(&r);
        if (r.p == r.end)
            return j;
        fail(&r, "text after the value");
    }
    *err = r.err ? r.err : "bad JSON";
    json_free(j);
    return NULL;
}

void json_free(struct json *j)
{
    if (!j)
        return;
    free_value(j);
    free(j);
}

const struct json *json_get(const struct json *j, const char *key)
{
    if (!j || j->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->keys[i], key) == 0)
            return &j->items[i];
    return NULL;
}

const char *json_string(const struct json *j)
{
    return j && j->type == JSON_STRING ? j->str : NULL;
}

bool json_u64(const struct json *j, unsigned long long *out)
{
    if (!j || j->type != JSON_NUMBER || !j->str || j->str[0] == '-')
        return false;
    char *end;
    unsigned long long v = strtoull(j->str, &end, 10);
    if (*end == 0) {
        *out = v;
        return true;
    }
    if (!(j->num >= 0) || j->num >= 1.8446744073709552e19 || !isfinite(j->num))
        return false;
    *out = (unsigned long long)j->num;
    return true;
}
