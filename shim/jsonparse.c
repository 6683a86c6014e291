/* jsonparse.c: the CLI's one JSON reader: snap_doc_parse, the parser of
 * every answer of the stats socket (stats, heap, config, trim, errors),
 * walking their key tables (snapjson.c, answerjson.c), so the CLI reads
 * the keys the library writes and no other. Only the CLI reads answers, so
 * this is built into reshim (and its tests), not into libreshim.so. It never reads
 * past len, recurses at most JSON_DEPTH deep, and decodes strings into the
 * fixed arrays as valid UTF-8, cut at a character boundary. Pure. */
#include <limits.h>
#include <string.h>

#include "answerjson.h"
#include "snapenc.h"
#include "utf8.h"

#define JSON_DEPTH 64      /* nesting the parser follows (the answers need 4) */

/* ---- JSON parser ----------------------------------------------------------- */

struct jp {
    const unsigned char *s;
    size_t i, n;
    const char *err;
};

static int fail(struct jp *p, const char *why)
{
    if (!p->err)
        p->err = p->i >= p->n ? "truncated input" : why;
    return -1;
}

static void ws(struct jp *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int peek(const struct jp *p)
{
    return p->i < p->n ? p->s[p->i] : -1;
}

static bool eat(struct jp *p, char c)
{
    if (p->i < p->n && p->s[p->i] == (unsigned char)c) {
        p->i++;
        return true;
    }
    return false;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int hex4(struct jp *p, uint32_t *out)
{
    if (p->n - p->i < 4) {
        p->i = p->n;
        return fail(p, "truncated input");
    }
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = p->s[p->i + (size_t)k], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail(p, "bad \\u escape");
        v = v << 4 | d;
    }
    p->i += 4;
    *out = v;
    return 0;
}

/* Output of a decoded string: whole characters only, so a cut string is
 * still valid UTF-8; once one does not fit, nothing more is taken. */
struct jout {
    char *dst;
    size_t len, cap; /* cap counts the NUL */
    bool full;
};

static void out_put(struct jout *o, const char *c, size_t k)
{
    if (!o->dst || o->full)
        return;
    if (o->len + k >= o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->dst + o->len, c, k);
    o->len += k;
}

/* A string at p (the opening quote). dst NULL: validate and skip. Escaped
 * surrogates pair up; a lone one, and \u0000 (which a C string cannot
 * hold), decode as U+FFFD, as do raw bytes that are not UTF-8. Raw control
 * bytes are an error, as JSON says. *cut tells the text did not fit. */
static int parse_string(struct jp *p, char *dst, size_t cap, bool *cut)
{
    struct jout o = {dst, 0, cap, false};
    if (!eat(p, '"'))
        return fail(p, "expected a string");
    for (;;) {
        if (p->i >= p->n)
            return fail(p, "truncated input");
        unsigned c = p->s[p->i];
        if (c == '"') {
            p->i++;
            break;
        }
        if (c < 0x20)
            return fail(p, "control character in string");
        if (c != '\\') {
            size_t k = c < 0x80 ? 1 : utf8_seq(p->s + p->i, p->n - p->i);
            if (k)
                out_put(&o, (const char *)p->s + p->i, k);
            else
                out_put(&o, UTF8_FFFD, 3);
            p->i += k ? k : 1;
            continue;
        }
        p->i++;
        if (p->i >= p->n)
            return fail(p, "truncated input");
        char e = (char)p->s[p->i++], ch;
        switch (e) {
        case '"': case '\\': case '/': ch = e; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (hex4(p, &cp))
                return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u') {
                    size_t at = p->i;
                    p->i += 2;
                    if (hex4(p, &lo))
                        return -1;
                    if (lo >= 0xdc00 && lo <= 0xdfff)
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    else {
                        cp = 0xfffd;  /* lone high surrogate; */
                        p->i = at;    /* the next escape stands alone */
                    }
                } else
                    cp = 0xfffd;
            } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0)
                cp = 0xfffd;
            char u[4];
            out_put(&o, u, utf8_put(cp, u));
            continue;
        }
        default:
            p->i--;
            return fail(p, "bad escape in string");
        }
        out_put(&o, &ch, 1);
    }
    if (dst)
        dst[o.len] = '\0';
    if (cut)
        *cut = o.full;
    return 0;
}

struct jnum {
    bool neg, integral, big; /* integral: no fraction, no exponent; big: > 2^64-1 */
    uint64_t u;              /* the magnitude, when integral and not big */
    double d;
};

static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* m * 10^e: exact operands (m < 2^53, |e| <= 22) give the correctly
 * rounded double; other values come within a few units in the last place.
 * Overflow is clamped to the largest double. */
static double scale10(uint64_t m, long e)
{
    double d = (double)m;
    if (m == 0)
        return 0;
    if (e > 400)
        e = 400;
    if (e < -400)
        e = -400;
    while (e > 22 && d - d == 0) {
        d *= 1e22;
        e -= 22;
    }
    while (e < -22 && d != 0) {
        d /= 1e22;
        e += 22;
    }
    if (e > 22 || d - d != 0)
        return 1.7976931348623157e308; /* overflowed */
    if (e < -22 || d == 0)
        return 0;
    if (e >= 0)
        d *= p10[e];
    else
        d /= p10[-e];
    if (d - d != 0)
        d = 1.7976931348623157e308;
    return d;
}

/* A JSON number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int parse_number(struct jp *p, struct jnum *o)
{
    const unsigned char *s = p->s;
    size_t i = p->i, n = p->n;
    uint64_t m = 0;  /* first 19 significant digits */
    int nd = 0;
    long e10 = 0;    /* m * 10^e10 is the value so far */
    memset(o, 0, sizeof *o);
    o->integral = true;
    if (i < n && s[i] == '-') {
        o->neg = true;
        i++;
    }
    if (i >= n || !is_digit(s[i])) {
        p->i = i;
        return fail(p, "expected a number");
    }
    if (s[i] == '0')
        i++;
    else
        for (; i < n && is_digit(s[i]); i++) {
            unsigned d = s[i] - '0';
            if (o->u > (UINT64_MAX - d) / 10)
                o->big = true;
            else
                o->u = o->u * 10 + d;
            if (nd < 19) {
                m = m * 10 + d;
                nd++;
            } else if (e10 < 100000)
                e10++;
        }
    if (i < n && s[i] == '.') {
        i++;
        o->integral = false;
        if (i >= n || !is_digit(s[i])) {
            p->i = i;
            return fail(p, "bad number");
        }
        for (; i < n && is_digit(s[i]); i++) {
            if (nd < 19 && e10 > -100000) {
                m = m * 10 + (s[i] - '0');
                e10--;
                if (m)
                    nd++;
            }
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        o->integral = false;
        bool eneg = false;
        long ex = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i >= n || !is_digit(s[i])) {
            p->i = i;
            return fail(p, "bad number");
        }
        for (; i < n && is_digit(s[i]); i++)
            if (ex < 100000)
                ex = ex * 10 + (s[i] - '0');
        e10 += eneg ? -ex : ex;
    }
    o->d = scale10(m, e10);
    if (o->neg)
        o->d = -o->d;
    p->i = i;
    return 0;
}

static bool literal(struct jp *p, const char *word)
{
    size_t k = strlen(word);
    if (p->n - p->i < k || memcmp(p->s + p->i, word, k) != 0)
        return false;
    p->i += k;
    return true;
}

/* ---- objects ------------------------------------------------------------
 * Every object is read by parse_members: each member's key (NULL when it
 * is longer than any key of a table), then member() reads its value. */
typedef int member_fn(struct jp *p, const char *key, void *ctx, int depth);

static int parse_members(struct jp *p, member_fn *member, void *ctx, int depth)
{
    if (depth > JSON_DEPTH)
        return fail(p, "nesting too deep");
    if (!eat(p, '{'))
        return fail(p, "expected an object");
    ws(p);
    if (eat(p, '}'))
        return 0;
    for (;;) {
        char key[64];
        bool cut;
        ws(p);
        if (peek(p) != '"')
            return fail(p, "expected a key");
        if (parse_string(p, key, sizeof key, &cut))
            return -1;
        ws(p);
        if (!eat(p, ':'))
            return fail(p, "expected ':'");
        ws(p);
        if (member(p, cut ? NULL : key, ctx, depth))
            return -1;
        ws(p);
        if (eat(p, ','))
            continue;
        if (eat(p, '}'))
            return 0;
        return fail(p, "expected ',' or '}'");
    }
}

/* ---- arrays -------------------------------------------------------------
 * Every array is read by parse_elements: element() reads each value. */
typedef int element_fn(struct jp *p, void *ctx, int depth);

static int parse_elements(struct jp *p, element_fn *element, void *ctx, int depth)
{
    if (depth > JSON_DEPTH)
        return fail(p, "nesting too deep");
    if (!eat(p, '['))
        return fail(p, "expected an array");
    ws(p);
    if (eat(p, ']'))
        return 0;
    for (;;) {
        ws(p);
        if (element(p, ctx, depth))
            return -1;
        ws(p);
        if (eat(p, ','))
            continue;
        if (eat(p, ']'))
            return 0;
        return fail(p, "expected ',' or ']'");
    }
}

static int skip_value(struct jp *p, int depth);

static int skip_member(struct jp *p, const char *key, void *ctx, int depth)
{
    return skip_value(p, depth + 1);
}

static int skip_element(struct jp *p, void *ctx, int depth)
{
    return skip_value(p, depth + 1);
}

/* Any JSON value, checked and skipped. */
static int skip_value(struct jp *p, int depth)
{
    if (depth > JSON_DEPTH)
        return fail(p, "nesting too deep");
    struct jnum num;
    switch (peek(p)) {
    case '{':
        return parse_members(p, skip_member, NULL, depth);
    case '[':
        return parse_elements(p, skip_element, NULL, depth);
    case '"':
        return parse_string(p, NULL, 0, NULL);
    case 't':
    case 'f':
    case 'n':
        if (literal(p, "true") || literal(p, "false") || literal(p, "null"))
            return 0;
        return fail(p, "bad literal");
    default:
        return parse_number(p, &num);
    }
}

static int parse_obj(struct jp *p, const struct field *f, size_t n, char *base, int depth);
static int parse_field(struct jp *p, const struct field *f, char *base, int depth);

static int parse_elem(struct jp *p, const struct farr *a, char *e, int depth)
{
    return a->bare ? parse_field(p, a->elem, e, depth) : parse_obj(p, a->elem, a->nelem, e, depth);
}

/* An array (T_ARR): its elements into their room, those past it checked
 * (objects, when its elements are) and skipped. */
struct arr_ctx {
    const struct farr *a;
    char *room;
    unsigned *count;
};

static int arr_element(struct jp *p, void *ctx, int depth)
{
    struct arr_ctx *c = ctx;
    const struct farr *a = c->a;
    if (!a->bare && peek(p) != '{')
        return fail(p, "expected an object");
    if (!c->room || *c->count >= a->max)
        return skip_value(p, depth + 1); /* more than fit: ignored */
    char *e = c->room + *c->count * a->stride;
    memset(e, 0, a->stride); /* a list's room may hold anything */
    if (parse_elem(p, a, e, depth + 1))
        return -1;
    (*c->count)++;
    return 0;
}

static int parse_arr(struct jp *p, const struct farr *a, char *base, char *q, int depth)
{
    struct snap_list *l = a->list ? (struct snap_list *)(void *)q : NULL;
    struct arr_ctx c = {a, l ? l->p : q, l ? &l->n : (unsigned *)(void *)(base + a->count_off)};
    /* A repeated key: the last one wins, whole. */
    if (c.room)
        memset(c.room, 0, (*c.count < a->max ? *c.count : a->max) * a->stride);
    *c.count = 0;
    return parse_elements(p, arr_element, &c, depth);
}

/* An object keyed by names (T_MAP): each known key's value into its
 * element; unknown keys skipped. */
struct map_ctx {
    const struct field *f;
    char *q;
};

static int map_member(struct jp *p, const char *key, void *ctx, int depth)
{
    const struct map_ctx *m = ctx;
    const struct farr *a = m->f->arr;
    size_t i = 0;
    while (key && i < a->max && strcmp(a->names[i], key) != 0)
        i++;
    if (!key || i == a->max)
        return skip_value(p, depth + 1);
    char *e = m->q + i * a->stride;
    memset(e, 0, a->stride); /* a repeated key: the last one wins */
    if (parse_elem(p, a, e, depth + 1))
        return -1;
    if (m->f->flags & FL_OPT)
        *(bool *)(void *)(e + m->f->opt) = true;
    return 0;
}

static int parse_map(struct jp *p, const struct field *f, char *q, int depth)
{
    struct map_ctx m = {f, q};
    return parse_members(p, map_member, &m, depth);
}

static int parse_field(struct jp *p, const struct field *f, char *base, int depth)
{
    char *q = base + f->off;
    struct jnum v;
    switch (f->type) {
    case T_INT:
    case T_U64:
    case T_I64:
    case T_DBL:
        if (parse_number(p, &v))
            return -1;
        if (f->type == T_DBL) {
            *(double *)(void *)q = v.d;
            return 0;
        }
        if (!v.integral)
            return fail(p, "expected an integer");
        if (v.big)
            return fail(p, "number out of range");
        if (f->type == T_U64) {
            if (v.neg)
                return fail(p, "expected a non-negative integer");
            *(uint64_t *)(void *)q = v.u;
        } else if (f->type == T_I64) {
            if (v.u > (uint64_t)INT64_MAX + v.neg)
                return fail(p, "number out of range");
            *(int64_t *)(void *)q = !v.neg                     ? (int64_t)v.u
                                    : v.u == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                                                     : -(int64_t)v.u;
        } else {
            if (v.u > (uint64_t)INT_MAX + v.neg)
                return fail(p, "number out of range");
            *(int *)(void *)q = v.neg ? (int)(0 - (int64_t)v.u) : (int)v.u;
        }
        return 0;
    case T_STRN:
        if (peek(p) == 'n') {
            if (!literal(p, "null"))
                return fail(p, "expected a string or null");
            memset(q, 0, f->size);
            return 0;
        }
        /* fall through */
    case T_STR:
        if (peek(p) != '"')
            return fail(p, "expected a string");
        memset(q, 0, f->size);
        return parse_string(p, q, f->size, NULL);
    case T_OBJ:
        return parse_obj(p, f->sub, f->size, q, depth + 1);
    case T_ARR:
        return parse_arr(p, f->arr, base, q, depth + 1);
    case T_MAP:
        return parse_map(p, f, q, depth + 1);
    }
    return fail(p, "internal error");
}

/* An object of a table: each known key's value into its field. */
struct obj_ctx {
    const struct field *f;
    size_t n;
    char *base;
    uint64_t seen; /* the fields read (a table has at most 64) */
};

static int obj_member(struct jp *p, const char *key, void *ctx, int depth)
{
    struct obj_ctx *o = ctx;
    size_t i = 0;
    while (key && i < o->n && strcmp(o->f[i].key, key) != 0)
        i++;
    if (!key || i == o->n)
        return skip_value(p, depth + 1);
    const struct field *hit = &o->f[i];
    if (parse_field(p, hit, o->base, depth))
        return -1;
    if (i < 64)
        o->seen |= 1ull << i;
    if (hit->flags & FL_OPT)
        *(bool *)(void *)(o->base + hit->opt) = true;
    return 0;
}

static int parse_obj(struct jp *p, const struct field *f, size_t n, char *base, int depth)
{
    struct obj_ctx o = {f, n, base, 0};
    if (parse_members(p, obj_member, &o, depth))
        return -1;
    for (size_t i = 0; i < n && i < 64; i++)
        if ((f[i].flags & FL_REQ) && !(o.seen >> i & 1))
            return fail(p, "a key is missing");
    return 0;
}

int snap_doc_parse(const struct field *top, const char *text, size_t len, void *base,
                   const char **err)
{
    struct jp p = {(const unsigned char *)(text ? text : ""), 0, text ? len : 0, NULL};
    int rc = -1;
    ws(&p);
    if (p.i >= p.n) {
        *err = "empty input";
        return -1;
    }
    if (parse_field(&p, top, base, 0) == 0) {
        ws(&p);
        if (p.i == p.n)
            rc = 0;
        else
            fail(&p, "trailing characters after the object");
    }
    *err = rc ? p.err ? p.err : "malformed input" : "";
    return rc;
}

/* ---- the answers (snapshot.h, answerjson.h) ------------------------------------ */

static int parse_doc(const struct field *top, const char *text, size_t len, void *out,
                     size_t size, const char **err)
{
    const char *why = "no output";
    int rc = -1;
    if (out) {
        memset(out, 0, size);
        rc = snap_doc_parse(top, text, len, out, &why);
        if (rc)
            memset(out, 0, size);
    }
    if (err)
        *err = why;
    return rc;
}

int snap_parse_json(const char *text, size_t len, struct reshim_snapshot *out,
                    const char **err)
{
    return parse_doc(&snap_stats_doc, text, len, out, sizeof *out, err);
}

int snap_error_parse(const char *text, size_t len, struct snap_error *out, const char **err)
{
    return parse_doc(&snap_error_doc, text, len, out, sizeof *out, err);
}

int snap_trim_parse(const char *text, size_t len, struct snap_trim *out, const char **err)
{
    return parse_doc(&snap_trim_doc, text, len, out, sizeof *out, err);
}

int snap_config_parse(const char *text, size_t len, struct snap_config *out, const char **err)
{
    return parse_doc(&snap_config_doc, text, len, out, sizeof *out, err);
}

int snap_heap_parse(const char *text, size_t len, struct snap_heap *out,
                    struct snap_heap_site *sites, const char **err)
{
    const char *why = "no output";
    int rc = -1;
    if (out) {
        memset(out, 0, sizeof *out);
        out->sites.p = sites;
        rc = snap_doc_parse(&snap_heap_doc, text, len, out, &why);
        if (rc) {
            memset(out, 0, sizeof *out);
            out->sites.p = sites;
        }
    }
    if (err)
        *err = why;
    return rc;
}
