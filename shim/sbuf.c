/* sbuf.c: the output buffer of snapshot.h and its appenders: whole
 * numbers, fixed-point numbers printed by hand (libreshim.so is linked
 * without libm, and no stdio or locale runs here), and string literals
 * escaped for JSON and for Prometheus labels, with their size bounds.
 * Pure and reentrant: no I/O, no allocation, no static state. */
#include <limits.h>
#include <string.h>

#include "snapenc.h"
#include "utf8.h"

#define DBL_INT_DIGITS 309 /* digits of the integer part of DBL_MAX */
#define FIXED_MAX_DECIMALS 9

/* ---- output buffer ------------------------------------------------------- */

void sb_init(struct sbuf *b, char *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = mem ? cap : 0;
    b->overflow = false;
    if (b->cap)
        b->p[0] = '\0';
}

/* Once a write did not fit, nothing more is appended: the text is cut at
 * that point, never continued after a hole. */
void sb_mem(struct sbuf *b, const char *s, size_t n)
{
    if (n == 0 || b->overflow)
        return;
    if (b->cap == 0 || b->len >= b->cap) {
        b->overflow = true;
        return;
    }
    size_t room = b->cap - 1 - b->len;
    if (n > room) {
        n = room;
        b->overflow = true;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void sb_str(struct sbuf *b, const char *s)
{
    if (s)
        sb_mem(b, s, strlen(s));
}

/* Digits of v, written backwards ending at end; returns the first. */
static char *u64_digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

size_t sb_u64_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

void sb_u64(struct sbuf *b, uint64_t v)
{
    char t[24];
    char *p = u64_digits(v, t + sizeof t);
    sb_mem(b, p, (size_t)(t + sizeof t - p));
}

void sb_i64(struct sbuf *b, int64_t v)
{
    char t[24];
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(mag, t + sizeof t);
    if (v < 0)
        *--p = '-';
    sb_mem(b, p, (size_t)(t + sizeof t - p));
}

static uint64_t dbl_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* The exact decimal digits of an integral double a >= 2^64 (its binary
 * value m * 2^e, expanded in 32-bit limbs and divided down by 10^9), into
 * out; returns how many (at most DBL_INT_DIGITS). */
static size_t big_int_digits(double a, char *out)
{
    uint64_t bits = dbl_bits(a);
    unsigned e = (unsigned)((bits >> 52) & 0x7ff);       /* >= 1023 + 64 */
    uint64_t m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    unsigned sh = e - 1075;                              /* 12 .. 971 */
    uint32_t w[34] = {0};                                /* 1088 bits >= 2^1024 */
    unsigned k = sh / 32, r = sh % 32;
    uint64_t lo = m << r, hi = r ? m >> (64 - r) : 0;
    w[k] = (uint32_t)lo;
    w[k + 1] = (uint32_t)(lo >> 32);
    w[k + 2] = (uint32_t)hi;
    unsigned nw = k + 3;
    uint32_t chunk[40]; /* base 10^9, least significant first */
    unsigned nc = 0;
    while (nw && w[nw - 1] == 0)
        nw--;
    while (nw && nc < NELEM(chunk)) {
        uint64_t rem = 0;
        for (unsigned i = nw; i-- > 0;) {
            uint64_t cur = rem << 32 | w[i];
            w[i] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunk[nc++] = (uint32_t)rem;
        while (nw && w[nw - 1] == 0)
            nw--;
    }
    if (nc == 0) /* not for a >= 2^64; kept for safety */
        chunk[nc++] = 0;
    size_t n = 0;
    char t[12];
    char *p = u64_digits(chunk[nc - 1], t + sizeof t);
    while (p < t + sizeof t)
        out[n++] = *p++;
    for (unsigned c = nc - 1; c-- > 0;) {
        uint32_t v = chunk[c];
        for (int i = 8; i >= 0; i--) {
            out[n + (size_t)i] = (char)('0' + v % 10);
            v /= 10;
        }
        n += 9;
    }
    return n;
}

/* Fixed point with 0-9 decimals, as printf("%.*f") writes it (exact ties
 * to even, the rest to nearest; only a value within an ulp of a tie may
 * differ in its last digit), except that NaN and infinities print as 0 and
 * a value that rounds to zero gets no minus sign. Integers of 2^64 and more
 * are expanded exactly (DBL_MAX has 309 digits). */
void sb_fixed(struct sbuf *b, double v, int decimals)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > FIXED_MAX_DECIMALS)
        decimals = FIXED_MAX_DECIMALS;
    if (v != v || v - v != 0) /* NaN, or inf (inf - inf is NaN) */
        v = 0;
    bool neg = v < 0;
    double a = neg ? -v : v;
    char t[1 + DBL_INT_DIGITS + 1 + FIXED_MAX_DECIMALS + 8];
    size_t n = 0;
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    uint64_t fr = 0; /* the decimals, as an integer below scale */
    if (a < 18446744073709551616.0) {
        uint64_t ip = (uint64_t)a;
        double frac = a - (double)ip; /* exact */
        double f = frac * (double)scale;
        uint64_t q = (uint64_t)f;
        double rem = f - (double)q;   /* exact */
        bool up = rem > 0.5;
        if (rem == 0.5) {
            /* A true tie iff frac * 2^(decimals+1) is an odd integer (then
             * f was exact): round it to even, as printf does. Otherwise f
             * was rounded onto the half: round up. */
            double x = frac * (double)(2ull << decimals);
            uint64_t xi = (uint64_t)x;
            bool odd = decimals ? (q & 1) : (ip & 1); /* the last digit kept */
            up = (double)xi != x || !(xi & 1) || odd;
        }
        fr = q + up;
        if (fr >= scale) {
            fr -= scale;
            ip++; /* frac != 0 only below 2^53: no wrap */
        }
        if (neg && (ip || fr))
            t[n++] = '-';
        char d[24];
        char *p = u64_digits(ip, d + sizeof d);
        while (p < d + sizeof d)
            t[n++] = *p++;
    } else {
        if (neg)
            t[n++] = '-';
        n += big_int_digits(a, t + n);
    }
    if (decimals) {
        t[n++] = '.';
        for (int i = decimals - 1; i >= 0; i--) {
            t[n + (size_t)i] = (char)('0' + fr % 10);
            fr /= 10;
        }
        n += (size_t)decimals;
    }
    sb_mem(b, t, n);
}

size_t sb_fixed_max_len(int decimals)
{
    return 1 + DBL_INT_DIGITS + (decimals ? 1 + (size_t)decimals : 0);
}

size_t sb_int_max_len(void)
{
    return 1 + sb_u64_len((uint64_t)INT_MAX + 1); /* INT_MIN */
}

/* ---- string literals --------------------------------------------------- */

void sb_json_strn(struct sbuf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    LIT(b, "\"");
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        const char *esc = NULL;
        char u[6];
        size_t k = 1, elen = 2;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            run++;
            i++;
            continue;
        }
        if (c >= 0x80 && (k = utf8_seq(s + i, n - i)) != 0) {
            run += k;
            i += k;
            continue;
        }
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c >= 0x80) {
                esc = "\\ufffd"; /* not UTF-8 */
            } else {         /* other control bytes, and DEL */
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                esc = u;
            }
            elen = 6;
        }
        sb_mem(b, str + i - run, run);
        run = 0;
        sb_mem(b, esc, elen);
        i++;
    }
    sb_mem(b, str + n - run, run);
    LIT(b, "\"");
}

void sb_json_str(struct sbuf *b, const char *s)
{
    sb_json_strn(b, s ? s : "", s ? strlen(s) : 0);
}

void sb_prom_strn(struct sbuf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = 1;
        if (c != '\\' && c != '"' && c != '\n' && (c < 0x80 || (k = utf8_seq(s + i, n - i)))) {
            run += k;
            i += k;
            continue;
        }
        sb_mem(b, str + i - run, run);
        run = 0;
        if (c == '\\')
            LIT(b, "\\\\");
        else if (c == '"')
            LIT(b, "\\\"");
        else if (c == '\n')
            LIT(b, "\\n");
        else
            LIT(b, UTF8_FFFD);
        i++;
    }
    sb_mem(b, str + n - run, run);
}

void sb_prom_label(struct sbuf *b, const char *s)
{
    if (s)
        sb_prom_strn(b, s, strlen(s));
}
