/* fuzz_common.h: what the libFuzzer harnesses of tests/fuzz share: a check
 * that aborts with a message (libFuzzer then keeps the input as a crash), a
 * reader of typed values from the fuzzed bytes, an independent UTF-8
 * checker and the replacement the encoders are specified to make, and a
 * strict JSON validator (RFC 8259 grammar, UTF-8, nesting depth).
 *
 * Written for these harnesses only, from the RFC and the Unicode standard
 * (table 3-7), not from the encoders: a check must not share the code it checks. */
#ifndef RESHIM_FUZZ_COMMON_H
#define RESHIM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "\nfuzz check failed at %s:%d: %s\n  ", __FILE__, __LINE__, \
                    #cond);                                                           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* ---- typed values from the input (zeros once it is used up) ---- */

struct rd {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t rd_u8(struct rd *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static inline uint64_t rd_u64(struct rd *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | rd_u8(r);
    return v;
}

static inline double rd_double(struct rd *r)
{
    uint64_t u = rd_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* A length byte (mod size + 1), then that many bytes, into dst[size]: the
 * array is filled completely when the length is size, so it may end
 * without a NUL, as a corrupt or hostile field could. */
static inline void rd_field(struct rd *r, char *dst, size_t size)
{
    size_t len = rd_u8(r) % (size + 1);
    if (len > r->n)
        len = r->n;
    memset(dst, 0, size);
    memcpy(dst, r->p, len);
    r->p += len;
    r->n -= len;
}

/* ---- UTF-8 (Unicode 15, table 3-7: well-formed byte sequences) ---- */

/* Length of the well-formed sequence at s[0..n), or 0. */
static inline size_t u8_len(const unsigned char *s, size_t n)
{
    static const struct { unsigned char lo0, hi0, lo1, hi1; size_t len; } rows[] = {
        {0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
        {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
        {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
    };
    if (!n)
        return 0;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (s[0] < rows[r].lo0 || s[0] > rows[r].hi0)
            continue;
        size_t len = rows[r].len;
        if (len == 1)
            return 1;
        if (n < len || s[1] < rows[r].lo1 || s[1] > rows[r].hi1)
            return 0;
        for (size_t i = 2; i < len; i++)
            if (s[i] < 0x80 || s[i] > 0xbf)
                return 0;
        return len;
    }
    return 0;
}

static inline bool u8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        size_t k = u8_len(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* What the encoders promise for a string: each byte that does not start a
 * well-formed sequence becomes U+FFFD (one per byte). out needs 3n + 1. */
static inline size_t u8_repair(const char *str, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = u8_len(s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

/* ---- strict JSON ---- */

struct jv {
    const unsigned char *s;
    size_t i, n;
    int depth, max_depth;
    bool any_bytes; /* bytes >= 0x80 in strings need not be UTF-8 */
    const char *why;
};

static inline bool jv_fail(struct jv *v, const char *why)
{
    if (!v->why)
        v->why = why;
    return false;
}

static inline void jv_ws(struct jv *v)
{
    while (v->i < v->n && (v->s[v->i] == ' ' || v->s[v->i] == '\t' || v->s[v->i] == '\n' ||
                           v->s[v->i] == '\r'))
        v->i++;
}

static inline bool jv_hex(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline bool jv_string(struct jv *v)
{
    v->i++; /* the quote */
    while (v->i < v->n) {
        unsigned c = v->s[v->i];
        if (c == '"') {
            v->i++;
            return true;
        }
        if (c < 0x20)
            return jv_fail(v, "raw control byte in a string");
        if (c == '\\') {
            if (v->i + 1 >= v->n)
                return jv_fail(v, "cut escape");
            unsigned e = v->s[v->i + 1];
            if (e == 'u') {
                if (v->i + 6 > v->n)
                    return jv_fail(v, "cut \\u escape");
                for (int k = 2; k < 6; k++)
                    if (!jv_hex(v->s[v->i + (size_t)k]))
                        return jv_fail(v, "bad \\u escape");
                v->i += 6;
            } else if (strchr("\"\\/bfnrt", (int)e) && e) {
                v->i += 2;
            } else {
                return jv_fail(v, "bad escape");
            }
            continue;
        }
        size_t k = v->any_bytes && c >= 0x80 ? 1 : u8_len(v->s + v->i, v->n - v->i);
        if (!k)
            return jv_fail(v, "invalid UTF-8 in a string");
        v->i += k;
    }
    return jv_fail(v, "unterminated string");
}

static inline bool jv_digits(struct jv *v)
{
    size_t start = v->i;
    while (v->i < v->n && v->s[v->i] >= '0' && v->s[v->i] <= '9')
        v->i++;
    return v->i > start;
}

static inline bool jv_number(struct jv *v)
{
    if (v->s[v->i] == '-')
        v->i++;
    if (v->i < v->n && v->s[v->i] == '0')
        v->i++;
    else if (!jv_digits(v))
        return jv_fail(v, "bad number");
    if (v->i < v->n && v->s[v->i] == '.') {
        v->i++;
        if (!jv_digits(v))
            return jv_fail(v, "bad fraction");
    }
    if (v->i < v->n && (v->s[v->i] == 'e' || v->s[v->i] == 'E')) {
        v->i++;
        if (v->i < v->n && (v->s[v->i] == '+' || v->s[v->i] == '-'))
            v->i++;
        if (!jv_digits(v))
            return jv_fail(v, "bad exponent");
    }
    return true;
}

static inline bool jv_value(struct jv *v)
{
    jv_ws(v);
    if (v->i >= v->n)
        return jv_fail(v, "missing value");
    unsigned c = v->s[v->i];
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        if (++v->depth > v->max_depth)
            return jv_fail(v, "too deep");
        v->i++;
        jv_ws(v);
        if (v->i < v->n && v->s[v->i] == (obj ? '}' : ']')) {
            v->i++;
            v->depth--;
            return true;
        }
        for (;;) {
            if (obj) {
                jv_ws(v);
                if (v->i >= v->n || v->s[v->i] != '"')
                    return jv_fail(v, "expected a key");
                if (!jv_string(v))
                    return false;
                jv_ws(v);
                if (v->i >= v->n || v->s[v->i] != ':')
                    return jv_fail(v, "expected ':'");
                v->i++;
            }
            if (!jv_value(v))
                return false;
            jv_ws(v);
            if (v->i < v->n && v->s[v->i] == ',') {
                v->i++;
                continue;
            }
            if (v->i < v->n && v->s[v->i] == (obj ? '}' : ']')) {
                v->i++;
                v->depth--;
                return true;
            }
            return jv_fail(v, "expected ',' or a closing bracket");
        }
    }
    if (c == '"')
        return jv_string(v);
    if (c == '-' || (c >= '0' && c <= '9'))
        return jv_number(v);
    static const char *const lits[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(lits[k]);
        if (v->n - v->i >= l && memcmp(v->s + v->i, lits[k], l) == 0) {
            v->i += l;
            return true;
        }
    }
    return jv_fail(v, "unexpected byte");
}

static inline const char *json_check(const char *text, size_t n, int max_depth, bool any_bytes)
{
    struct jv v = {(const unsigned char *)text, 0, n, 0, max_depth, any_bytes, NULL};
    if (!jv_value(&v))
        return v.why ? v.why : "invalid";
    jv_ws(&v);
    return v.i == n ? NULL : "bytes after the value";
}

/* One JSON value, nothing but whitespace around it, at most max_depth
 * arrays and objects deep. NULL: valid; else why not. */
static inline const char *json_strict(const char *text, size_t n, int max_depth)
{
    return json_check(text, n, max_depth, false);
}

/* The same, but strings may hold any byte >= 0x80 (not only UTF-8). */
static inline const char *json_strict_bytes(const char *text, size_t n, int max_depth)
{
    return json_check(text, n, max_depth, true);
}

#endif
