/* encode.c: the encodings of snapshot.h: the output buffer and its
 * appenders, the `stats` JSON object, its parser, and the Prometheus text
 * exposition (0.0.4) of many snapshots, with the sizes that always fit.
 *
 * Pure and reentrant: no I/O, no clock, no allocation, no stdio, no locale,
 * no static state but constant tables, and no libm (libreshim.so is linked
 * without it): numbers are formatted and parsed here, by hand. The JSON keys
 * live in one set of tables (below) that the encoder, its size bound and the
 * parser all walk, so the three cannot disagree; the Prometheus families
 * likewise. The request lines of the stats socket are classified here too. The parser never reads past len, recurses at most JSON_DEPTH
 * deep, and decodes strings into the fixed arrays as valid UTF-8, cut at a
 * character boundary. */
#include <limits.h>
#include <string.h>

#include "snapshot.h"

const char *const snap_class_names[SNAP_CLASSES] = {"connect", "dns", "send", "recv"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(b, s) sb_mem((b), (s), sizeof(s) - 1)  /* append a string literal */
#define LITLEN(s) (sizeof(s) - 1)
#define FSIZE(type, m) sizeof(((type *)0)->m)

#define FIXED_DECIMALS 3  /* seconds in both encodings: millisecond resolution */
#define DBL_INT_DIGITS 309 /* digits of the integer part of DBL_MAX */
#define FIXED_MAX_DECIMALS 9
#define JSON_DEPTH 64      /* nesting the parser follows (the stats object needs 4) */

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

static size_t u64_len(uint64_t v)
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

static size_t fixed_max_len(int decimals)
{
    return 1 + DBL_INT_DIGITS + (decimals ? 1 + (size_t)decimals : 0);
}

/* ---- UTF-8 ----------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available): 1-4,
 * or 0 when the bytes there are not one (overlong forms, surrogates, values
 * above U+10FFFF, stray continuation bytes and cut sequences are not). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

#define UTF8_FFFD "\xef\xbf\xbd"

/* ---- string literals --------------------------------------------------- */

#define JSON_ESC_MAX 6 /* most output bytes for one input byte: \u00XX, \ufffd */
#define PROM_ESC_MAX 3 /* U+FFFD for an invalid byte */

static void json_strn(struct sbuf *b, const char *str, size_t n)
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
    json_strn(b, s ? s : "", s ? strlen(s) : 0);
}

static void prom_strn(struct sbuf *b, const char *str, size_t n)
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
        prom_strn(b, s, strlen(s));
}

/* A fixed char array of the snapshot: its text, NUL-terminated or not (at
 * most size - 1 bytes are taken, so the size bounds hold whatever the
 * array holds). */
static size_t field_len(const char *s, size_t size)
{
    return strnlen(s, size - 1);
}

static bool field_is(const char *s, size_t size, const char *word)
{
    size_t n = strlen(word);
    return n < size && field_len(s, size) == n && memcmp(s, word, n) == 0;
}

/* ---- the JSON layout ------------------------------------------------------
 * One table per object; the encoder, snap_json_max and the parser walk the
 * same tables. */

enum ftype {
    T_INT,   /* int */
    T_U64,   /* uint64_t */
    T_I64,   /* int64_t */
    T_DBL,   /* double, as fixed point */
    T_STR,   /* char[size] */
    T_STRN,  /* char[size], null when empty */
    T_OBJ,   /* a nested object: sub[size] at base + off */
    T_DESTS, /* the destinations array (base is the snapshot) */
};

struct field {
    const char *key;
    enum ftype type;
    size_t size;
    size_t off;
    const struct field *sub;
};

#define F_U64(t, k, m) {k, T_U64, 0, offsetof(t, m), NULL}
#define F_STR(t, k, m) {k, T_STR, FSIZE(t, m), offsetof(t, m), NULL}

static const struct field calls_f[] = {
    F_U64(struct snap_calls, "calls", calls),
    F_U64(struct snap_calls, "failures", failures),
    F_U64(struct snap_calls, "retries", retries),
    F_U64(struct snap_calls, "recovered", recovered),
    F_U64(struct snap_calls, "gave_up", gave_up),
};

const char *const snap_replay_case_names[SNAP_RP_CASES] = {"nothing_sent", "tls_hello",
                                                            "http_request"};

#define R struct snap_replay
static const struct field replay_dest_f[] = {
    F_U64(R, "nothing_sent", replays[SNAP_RP_NOTHING]),
    F_U64(R, "tls_hello", replays[SNAP_RP_HELLO]),
    F_U64(R, "http_request", replays[SNAP_RP_REQUEST]),
    F_U64(R, "recovered", recovered),
    F_U64(R, "gave_up", gave_up),
};
#undef R

#define S struct reshim_snapshot
static const struct field replay_f[] = {
    F_U64(S, "nothing_sent", replay.replays[SNAP_RP_NOTHING]),
    F_U64(S, "tls_hello", replay.replays[SNAP_RP_HELLO]),
    F_U64(S, "http_request", replay.replays[SNAP_RP_REQUEST]),
    F_U64(S, "recovered", replay.recovered),
    F_U64(S, "gave_up", replay.gave_up),
    F_U64(S, "over_max", replay_over_max),
    F_U64(S, "held_bytes", replay_held_bytes),
    F_U64(S, "held_peak_bytes", replay_held_peak_bytes),
};
#undef S

#define D struct snap_dest
static const struct field dest_f[] = {
    F_STR(D, "dest", dest),
    F_STR(D, "dir", dir),
    F_U64(D, "calls", connect.calls),
    F_U64(D, "failures", connect.failures),
    F_U64(D, "retries", connect.retries),
    F_U64(D, "recovered", connect.recovered),
    F_U64(D, "gave_up", connect.gave_up),
    F_U64(D, "sends", sends),
    F_U64(D, "recvs", recvs),
    F_U64(D, "bytes_out", bytes_out),
    F_U64(D, "bytes_in", bytes_in),
    F_U64(D, "io_failures", io_failures),
    F_U64(D, "skipped_breaker", skipped_breaker),
    F_U64(D, "skipped_budget", skipped_budget),
    F_U64(D, "skipped_filter", skipped_filter),
    {"replay", T_OBJ, NELEM(replay_dest_f), offsetof(D, replay), replay_dest_f},
    {"last_error", T_STRN, FSIZE(D, last_error), offsetof(D, last_error), NULL},
    F_STR(D, "breaker", breaker),
};
#undef D

#define S struct reshim_snapshot
#define F_CALLS(k, c) {k, T_OBJ, NELEM(calls_f), offsetof(S, net[c]), calls_f}
static const struct field net_f[] = {
    F_CALLS("connect", SNAP_CONNECT),
    F_CALLS("dns", SNAP_DNS),
    F_CALLS("send", SNAP_SEND),
    F_CALLS("recv", SNAP_RECV),
    F_U64(S, "dns_stale", dns_stale),
    F_U64(S, "dest_overflow", dest_overflow),
    {"replay", T_OBJ, NELEM(replay_f), 0, replay_f}, /* its keys sit in the snapshot itself */
    {"destinations", T_DESTS, 0, offsetof(S, dest), NULL},
};
#undef F_CALLS

#define M struct snap_mem
static const struct field mem_f[] = {
    F_U64(M, "rss_bytes", rss_bytes),
    F_U64(M, "rss_peak_bytes", rss_peak_bytes),
    F_U64(M, "rss_anon_bytes", rss_anon_bytes),
    F_U64(M, "rss_file_bytes", rss_file_bytes),
    F_U64(M, "rss_shmem_bytes", rss_shmem_bytes),
    {"heap_live_bytes", T_I64, 0, offsetof(M, heap_live_bytes), NULL},
    F_U64(M, "heap_peak_bytes", heap_peak_bytes),
    F_U64(M, "allocs", allocs),
    F_U64(M, "frees", frees),
    F_U64(M, "mmap_anon_bytes", mmap_anon_bytes),
    F_U64(M, "mmap_anon_peak_bytes", mmap_anon_peak_bytes),
    F_U64(M, "budget_bytes", budget_bytes),
    F_U64(M, "usage_bytes", usage_bytes),
    F_U64(M, "working_set_bytes", working_set_bytes),
    F_STR(M, "budget_source", budget_source),
    F_STR(M, "state", state),
    F_STR(M, "policy", policy),
    F_U64(M, "trims", trims),
    F_U64(M, "trimmed_bytes", trimmed_bytes),
    F_U64(M, "enomem", enomem),
    F_STR(M, "trim", trim),
};
#undef M

static const struct field top_f[] = {
    {"pid", T_INT, 0, offsetof(S, pid), NULL},
    F_STR(S, "comm", comm),
    F_STR(S, "version", version),
    {"uptime_s", T_DBL, 0, offsetof(S, uptime_s), NULL},
    {"start_time_s", T_DBL, 0, offsetof(S, start_time_s), NULL},
    {"time_s", T_DBL, 0, offsetof(S, time_s), NULL},
    {"net", T_OBJ, NELEM(net_f), 0, net_f}, /* net's keys sit in the snapshot itself */
    {"mem", T_OBJ, NELEM(mem_f), offsetof(S, mem), mem_f},
};
#undef S

/* ---- JSON encoder ---------------------------------------------------------- */

static void enc_obj(struct sbuf *b, const struct field *f, size_t n, const char *base);

static void enc_value(struct sbuf *b, const struct field *f, const char *base)
{
    const char *p = base + f->off;
    switch (f->type) {
    case T_INT:
        sb_i64(b, *(const int *)(const void *)p);
        break;
    case T_U64:
        sb_u64(b, *(const uint64_t *)(const void *)p);
        break;
    case T_I64:
        sb_i64(b, *(const int64_t *)(const void *)p);
        break;
    case T_DBL:
        sb_fixed(b, *(const double *)(const void *)p, FIXED_DECIMALS);
        break;
    case T_STRN:
        if (field_len(p, f->size) == 0) {
            LIT(b, "null");
            break;
        }
        /* fall through */
    case T_STR:
        json_strn(b, p, field_len(p, f->size));
        break;
    case T_OBJ:
        enc_obj(b, f->sub, f->size, p);
        break;
    case T_DESTS: {
        const struct reshim_snapshot *s = (const void *)base;
        unsigned nd = s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS;
        LIT(b, "[");
        for (unsigned i = 0; i < nd; i++) {
            if (i)
                LIT(b, ",");
            enc_obj(b, dest_f, NELEM(dest_f), (const char *)&s->dest[i]);
        }
        LIT(b, "]");
        break;
    }
    }
}

static void enc_obj(struct sbuf *b, const struct field *f, size_t n, const char *base)
{
    LIT(b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            LIT(b, ",");
        LIT(b, "\"");
        sb_str(b, f[i].key);
        LIT(b, "\":");
        enc_value(b, &f[i], base);
    }
    LIT(b, "}");
}

size_t snap_json(const struct reshim_snapshot *s, struct sbuf *b)
{
    size_t start = b->len;
    enc_obj(b, top_f, NELEM(top_f), (const char *)s);
    LIT(b, "\n");
    return b->len - start;
}

static size_t int_max_len(void)
{
    return 1 + u64_len((uint64_t)INT_MAX + 1); /* INT_MIN */
}

static size_t obj_max(const struct field *f, size_t n, unsigned ndest);

static size_t value_max(const struct field *f, unsigned ndest)
{
    size_t str = f->size ? 2 + JSON_ESC_MAX * (f->size - 1) : 0;
    switch (f->type) {
    case T_INT:
        return int_max_len();
    case T_U64:
        return u64_len(UINT64_MAX);
    case T_I64:
        return 1 + u64_len((uint64_t)INT64_MAX + 1); /* INT64_MIN */
    case T_DBL:
        return fixed_max_len(FIXED_DECIMALS);
    case T_STR:
        return str;
    case T_STRN:
        return str > LITLEN("null") ? str : LITLEN("null");
    case T_OBJ:
        return obj_max(f->sub, f->size, ndest);
    case T_DESTS:
        return LITLEN("[]") + ndest * obj_max(dest_f, NELEM(dest_f), 0) +
               (ndest ? ndest - 1 : 0);
    }
    return 0;
}

static size_t obj_max(const struct field *f, size_t n, unsigned ndest)
{
    size_t len = LITLEN("{}") + (n ? n - 1 : 0); /* braces, commas */
    for (size_t i = 0; i < n; i++)
        len += LITLEN("\"\":") + strlen(f[i].key) + value_max(&f[i], ndest);
    return len;
}

size_t snap_json_max(unsigned ndest)
{
    if (ndest > SNAP_DESTS)
        ndest = SNAP_DESTS;
    return obj_max(top_f, NELEM(top_f), ndest) + LITLEN("\n") + 1 /* NUL */;
}

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

/* Any JSON value, checked and skipped. */
static int skip_value(struct jp *p, int depth)
{
    if (depth > JSON_DEPTH)
        return fail(p, "nesting too deep");
    struct jnum num;
    switch (peek(p)) {
    case '{':
        p->i++;
        ws(p);
        if (eat(p, '}'))
            return 0;
        for (;;) {
            ws(p);
            if (parse_string(p, NULL, 0, NULL))
                return -1;
            ws(p);
            if (!eat(p, ':'))
                return fail(p, "expected ':'");
            ws(p);
            if (skip_value(p, depth + 1))
                return -1;
            ws(p);
            if (eat(p, ','))
                continue;
            if (eat(p, '}'))
                return 0;
            return fail(p, "expected ',' or '}'");
        }
    case '[':
        p->i++;
        ws(p);
        if (eat(p, ']'))
            return 0;
        for (;;) {
            ws(p);
            if (skip_value(p, depth + 1))
                return -1;
            ws(p);
            if (eat(p, ','))
                continue;
            if (eat(p, ']'))
                return 0;
            return fail(p, "expected ',' or ']'");
        }
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

static int parse_dests(struct jp *p, struct reshim_snapshot *s, int depth)
{
    if (depth > JSON_DEPTH)
        return fail(p, "nesting too deep");
    if (!eat(p, '['))
        return fail(p, "expected an array");
    /* A repeated key: the last one wins, whole. */
    memset(s->dest, 0, (s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS) * sizeof s->dest[0]);
    s->ndest = 0;
    ws(p);
    if (eat(p, ']'))
        return 0;
    for (;;) {
        ws(p);
        if (peek(p) != '{')
            return fail(p, "expected an object");
        if (s->ndest < SNAP_DESTS) {
            if (parse_obj(p, dest_f, NELEM(dest_f), (char *)&s->dest[s->ndest], depth + 1))
                return -1;
            s->ndest++;
        } else if (skip_value(p, depth + 1)) { /* more than fit: ignored */
            return -1;
        }
        ws(p);
        if (eat(p, ','))
            continue;
        if (eat(p, ']'))
            return 0;
        return fail(p, "expected ',' or ']'");
    }
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
    case T_DESTS:
        return parse_dests(p, (struct reshim_snapshot *)(void *)base, depth + 1);
    }
    return fail(p, "internal error");
}

static int parse_obj(struct jp *p, const struct field *f, size_t n, char *base, int depth)
{
    if (depth > JSON_DEPTH)
        return fail(p, "nesting too deep");
    if (!eat(p, '{'))
        return fail(p, "expected an object");
    ws(p);
    if (eat(p, '}'))
        return 0;
    for (;;) {
        char key[32];
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
        const struct field *hit = NULL;
        for (size_t i = 0; i < n && !cut; i++)
            if (strcmp(f[i].key, key) == 0) {
                hit = &f[i];
                break;
            }
        if (hit ? parse_field(p, hit, base, depth) : skip_value(p, depth + 1))
            return -1;
        ws(p);
        if (eat(p, ','))
            continue;
        if (eat(p, '}'))
            return 0;
        return fail(p, "expected ',' or '}'");
    }
}

int snap_parse_json(const char *text, size_t len, struct reshim_snapshot *out,
                    const char **err)
{
    const char *why = "";
    struct jp p = {(const unsigned char *)(text ? text : ""), 0, text ? len : 0, NULL};
    int rc = -1;
    if (!out) {
        why = "no output";
        goto done;
    }
    memset(out, 0, sizeof *out);
    ws(&p);
    if (p.i >= p.n) {
        why = "empty input";
        goto done;
    }
    if (parse_obj(&p, top_f, NELEM(top_f), (char *)out, 1) == 0) {
        ws(&p);
        if (p.i == p.n)
            rc = 0;
        else
            fail(&p, "trailing characters after the object");
    }
    if (rc) {
        memset(out, 0, sizeof *out);
        why = p.err ? p.err : "malformed input";
    }
done:
    if (err)
        *err = why;
    return rc;
}

/* ---- Prometheus -------------------------------------------------------------
 * One table of families; each sample line is
 *   name{pid="..",comm=".."[,more labels]} value
 * and prom_max mirrors prom_sample piece by piece. */

enum pkind {
    PK_INFO,  /* version label, value 1 */
    PK_PROC,  /* one sample per process, value at off in the snapshot */
    PK_OP,    /* one per class (op label), off in struct snap_calls */
    PK_DEST,  /* one per destination (dest, dir labels), off in struct snap_dest */
    PK_STATE, /* one per memory state (state label), one-hot */
    PK_CASE,  /* one per replay case (case label), off in struct snap_replay */
    PK_DEST_CASE, /* one per destination and replay case, off in struct snap_replay */
};
enum pval { PV_U64, PV_I64, PV_DBL, PV_BREAKER, PV_ONE };

struct pfam {
    const char *name, *type, *help;
    enum pkind kind;
    enum pval val;
    size_t off;
};

#define S struct reshim_snapshot
#define MEM(m) offsetof(S, mem.m)
#define C(m) offsetof(struct snap_calls, m)
#define DST(m) offsetof(struct snap_dest, m)
static const struct pfam fams[] = {
    {"reshim_info", "gauge", "Version of reshim in the process; always 1.", PK_INFO, PV_ONE, 0},
    {"reshim_uptime_seconds", "gauge", "Seconds since reshim started in the process.",
     PK_PROC, PV_DBL, offsetof(S, uptime_s)},
    {"reshim_start_time_seconds", "gauge", "Unix time reshim started in the process, in seconds.",
     PK_PROC, PV_DBL, offsetof(S, start_time_s)},
    {"reshim_net_calls_total", "counter", "Interposed network calls, by operation.", PK_OP,
     PV_U64, C(calls)},
    {"reshim_net_failures_total", "counter",
     "Calls that failed in the end (after any retries), by operation.", PK_OP, PV_U64,
     C(failures)},
    {"reshim_net_retries_total", "counter", "Retries made, by operation.", PK_OP, PV_U64,
     C(retries)},
    {"reshim_net_recovered_total", "counter",
     "Calls that failed at first and succeeded after retries, by operation.", PK_OP, PV_U64,
     C(recovered)},
    {"reshim_net_gave_up_total", "counter",
     "Calls that still failed when their retries ran out, by operation.", PK_OP, PV_U64,
     C(gave_up)},
    {"reshim_dns_stale_answers_total", "counter",
     "getaddrinfo calls answered from the stale cache during a DNS failure.", PK_PROC, PV_U64,
     offsetof(S, dns_stale)},
    {"reshim_destination_connects_total", "counter",
     "Connect calls, by destination (dir=in rows are listeners).", PK_DEST, PV_U64,
     DST(connect.calls)},
    {"reshim_destination_connect_failures_total", "counter",
     "Connects that failed in the end, by destination.", PK_DEST, PV_U64,
     DST(connect.failures)},
    {"reshim_destination_retries_total", "counter", "Connect retries, by destination.",
     PK_DEST, PV_U64, DST(connect.retries)},
    {"reshim_destination_recovered_total", "counter",
     "Connects that succeeded after retries, by destination.", PK_DEST, PV_U64,
     DST(connect.recovered)},
    {"reshim_destination_gave_up_total", "counter",
     "Connects whose retries ran out, by destination.", PK_DEST, PV_U64,
     DST(connect.gave_up)},
    {"reshim_destination_sent_bytes_total", "counter", "Bytes sent, by destination.", PK_DEST,
     PV_U64, DST(bytes_out)},
    {"reshim_destination_received_bytes_total", "counter", "Bytes received, by destination.",
     PK_DEST, PV_U64, DST(bytes_in)},
    {"reshim_destination_breaker_open", "gauge",
     "1 while the destination's circuit breaker is open or half-open, else 0.", PK_DEST,
     PV_BREAKER, DST(breaker)},
    {"reshim_replays_total", "counter",
     "Broken connections connected again and their bytes resent, by case.", PK_CASE, PV_U64,
     offsetof(struct snap_replay, replays)},
    {"reshim_replay_recovered_total", "counter",
     "Calls on a broken connection answered after replays.", PK_PROC, PV_U64,
     offsetof(S, replay.recovered)},
    {"reshim_replay_gave_up_total", "counter",
     "Calls on a broken connection whose replays ran out.", PK_PROC, PV_U64,
     offsetof(S, replay.gave_up)},
    {"reshim_replay_held_bytes", "gauge", "Bytes kept by reshim for a possible resend.",
     PK_PROC, PV_U64, offsetof(S, replay_held_bytes)},
    {"reshim_destination_replays_total", "counter", "Replays, by destination and case.",
     PK_DEST_CASE, PV_U64, DST(replay.replays)},
    {"reshim_resident_memory_bytes", "gauge", "Resident set size of the process.", PK_PROC,
     PV_U64, MEM(rss_bytes)},
    {"reshim_resident_memory_peak_bytes", "gauge", "Peak resident set size of the process.",
     PK_PROC, PV_U64, MEM(rss_peak_bytes)},
    {"reshim_resident_anon_memory_bytes", "gauge", "Resident anonymous memory of the process.",
     PK_PROC, PV_U64, MEM(rss_anon_bytes)},
    {"reshim_heap_live_bytes", "gauge", "Usable size of the live heap blocks.", PK_PROC,
     PV_I64, MEM(heap_live_bytes)},
    {"reshim_heap_peak_bytes", "gauge", "Peak of the live heap bytes.", PK_PROC, PV_U64,
     MEM(heap_peak_bytes)},
    {"reshim_allocations_total", "counter", "Heap allocations.", PK_PROC, PV_U64,
     MEM(allocs)},
    {"reshim_frees_total", "counter", "Heap frees.", PK_PROC, PV_U64, MEM(frees)},
    {"reshim_mmap_anon_bytes", "gauge", "Writable private anonymous mappings made by the app.",
     PK_PROC, PV_U64, MEM(mmap_anon_bytes)},
    {"reshim_memory_budget_bytes", "gauge", "Memory budget; 0 when there is none.", PK_PROC,
     PV_U64, MEM(budget_bytes)},
    {"reshim_memory_usage_bytes", "gauge",
     "Memory compared to the budget: resident anon and shared, or the container's working set "
     "if larger.", PK_PROC, PV_U64, MEM(usage_bytes)},
    {"reshim_container_working_set_bytes", "gauge",
     "Working set of the container (usage less inactive file pages).", PK_PROC, PV_U64,
     MEM(working_set_bytes)},
    {"reshim_memory_state", "gauge", "1 for the current memory state, 0 for the others.",
     PK_STATE, PV_ONE, 0},
    {"reshim_memory_trims_total", "counter", "Trims that returned free heap to the OS.",
     PK_PROC, PV_U64, MEM(trims)},
    {"reshim_memory_trimmed_bytes_total", "counter", "Bytes the trims returned to the OS.",
     PK_PROC, PV_U64, MEM(trimmed_bytes)},
    {"reshim_memory_denied_allocations_total", "counter",
     "Allocations refused with ENOMEM past the budget (policy enforce).", PK_PROC, PV_U64,
     MEM(enomem)},
};
#undef S
#undef MEM
#undef C
#undef DST

static const char *const mem_states[] = {"ok", "warn", "critical", "over"};

#define P_PID "{pid=\""
#define P_COMM "\",comm=\""
#define P_VERSION "\",version=\""
#define P_OP "\",op=\""
#define P_DEST "\",dest=\""
#define P_DIR "\",dir=\""
#define P_STATE "\",state=\""
#define P_CASE "\",case=\""
#define P_END "\"} "

/* Samples a family has for one snapshot. */
static size_t prom_count(const struct pfam *f, const struct reshim_snapshot *s)
{
    switch (f->kind) {
    case PK_OP:
        return SNAP_CLASSES;
    case PK_DEST:
        return s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS;
    case PK_STATE:
        return NELEM(mem_states);
    case PK_CASE:
        return SNAP_RP_CASES;
    case PK_DEST_CASE:
        return (s->ndest < SNAP_DESTS ? s->ndest : SNAP_DESTS) * SNAP_RP_CASES;
    default:
        return 1;
    }
}

static void prom_value(struct sbuf *b, enum pval val, const char *p)
{
    switch (val) {
    case PV_U64:
        sb_u64(b, *(const uint64_t *)(const void *)p);
        break;
    case PV_I64:
        sb_i64(b, *(const int64_t *)(const void *)p);
        break;
    case PV_DBL:
        sb_fixed(b, *(const double *)(const void *)p, FIXED_DECIMALS);
        break;
    case PV_BREAKER:
        sb_u64(b, field_is(p, SNAP_WORD_MAX, "open") || field_is(p, SNAP_WORD_MAX, "half-open"));
        break;
    case PV_ONE:
        LIT(b, "1");
        break;
    }
}

static size_t prom_value_max(enum pval val)
{
    switch (val) {
    case PV_U64:
    case PV_I64:
        return u64_len(UINT64_MAX); /* 20, as is INT64_MIN */
    case PV_DBL:
        return fixed_max_len(FIXED_DECIMALS);
    default:
        return 1;
    }
}

/* Sample i of family f for snapshot s. */
static void prom_sample(struct sbuf *b, const struct pfam *f, const struct reshim_snapshot *s,
                        size_t i)
{
    const struct snap_dest *d = &s->dest[i < SNAP_DESTS ? i : 0];
    sb_str(b, f->name);
    LIT(b, P_PID);
    sb_i64(b, s->pid);
    LIT(b, P_COMM);
    prom_strn(b, s->comm, field_len(s->comm, sizeof s->comm));
    switch (f->kind) {
    case PK_INFO:
        LIT(b, P_VERSION);
        prom_strn(b, s->version, field_len(s->version, sizeof s->version));
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)s);
        break;
    case PK_PROC:
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)s + f->off);
        break;
    case PK_OP:
        LIT(b, P_OP);
        sb_str(b, snap_class_names[i]);
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)&s->net[i] + f->off);
        break;
    case PK_DEST:
        LIT(b, P_DEST);
        prom_strn(b, d->dest, field_len(d->dest, sizeof d->dest));
        LIT(b, P_DIR);
        prom_strn(b, d->dir, field_len(d->dir, sizeof d->dir));
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)d + f->off);
        break;
    case PK_STATE:
        LIT(b, P_STATE);
        sb_str(b, mem_states[i]);
        LIT(b, P_END);
        sb_u64(b, field_is(s->mem.state, sizeof s->mem.state, mem_states[i]));
        break;
    case PK_CASE:
        LIT(b, P_CASE);
        sb_str(b, snap_replay_case_names[i]);
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)&s->replay + f->off + i * sizeof(uint64_t));
        break;
    case PK_DEST_CASE: {
        size_t di = i / SNAP_RP_CASES, c = i % SNAP_RP_CASES;
        d = &s->dest[di < SNAP_DESTS ? di : 0];
        LIT(b, P_DEST);
        prom_strn(b, d->dest, field_len(d->dest, sizeof d->dest));
        LIT(b, P_DIR);
        prom_strn(b, d->dir, field_len(d->dir, sizeof d->dir));
        LIT(b, P_CASE);
        sb_str(b, snap_replay_case_names[c]);
        LIT(b, P_END);
        prom_value(b, f->val, (const char *)d + f->off + c * sizeof(uint64_t));
        break;
    }
    }
    LIT(b, "\n");
}

/* The longest prom_sample(f, s, i) can write. */
static size_t prom_sample_max(const struct pfam *f, size_t i)
{
    const struct reshim_snapshot *s = NULL;
    const struct snap_dest *d = NULL;
    size_t len = strlen(f->name) + LITLEN(P_PID) + int_max_len() + LITLEN(P_COMM) +
                 PROM_ESC_MAX * (sizeof s->comm - 1) + LITLEN(P_END) +
                 prom_value_max(f->val) + LITLEN("\n");
    switch (f->kind) {
    case PK_INFO:
        len += LITLEN(P_VERSION) + PROM_ESC_MAX * (sizeof s->version - 1);
        break;
    case PK_PROC:
        break;
    case PK_OP:
        len += LITLEN(P_OP) + strlen(snap_class_names[i]);
        break;
    case PK_DEST:
        len += LITLEN(P_DEST) + PROM_ESC_MAX * (sizeof d->dest - 1) + LITLEN(P_DIR) +
               PROM_ESC_MAX * (sizeof d->dir - 1);
        break;
    case PK_STATE:
        len += LITLEN(P_STATE) + strlen(mem_states[i]);
        break;
    case PK_CASE:
        len += LITLEN(P_CASE) + strlen(snap_replay_case_names[i % SNAP_RP_CASES]);
        break;
    case PK_DEST_CASE:
        len += LITLEN(P_DEST) + PROM_ESC_MAX * (sizeof d->dest - 1) + LITLEN(P_DIR) +
               PROM_ESC_MAX * (sizeof d->dir - 1) + LITLEN(P_CASE) +
               strlen(snap_replay_case_names[i % SNAP_RP_CASES]);
        break;
    }
    return len;
}

static void prom_header(struct sbuf *b, const struct pfam *f)
{
    LIT(b, "# HELP ");
    sb_str(b, f->name);
    LIT(b, " ");
    sb_str(b, f->help);
    LIT(b, "\n# TYPE ");
    sb_str(b, f->name);
    LIT(b, " ");
    sb_str(b, f->type);
    LIT(b, "\n");
}

static size_t prom_header_len(const struct pfam *f)
{
    return LITLEN("# HELP ") + 2 * strlen(f->name) + 1 + strlen(f->help) + LITLEN("\n# TYPE ") +
           1 + strlen(f->type) + LITLEN("\n");
}

/* A family with no sample at all (destinations, when no process has any)
 * is left out, as client libraries do. */
size_t snap_prometheus(const struct reshim_snapshot *const *snaps, size_t n, struct sbuf *b)
{
    size_t start = b->len;
    for (size_t k = 0; k < NELEM(fams); k++) {
        const struct pfam *f = &fams[k];
        bool any = false;
        for (size_t j = 0; j < n && !any; j++)
            any = prom_count(f, snaps[j]) > 0;
        if (!any)
            continue;
        prom_header(b, f);
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0, c = prom_count(f, snaps[j]); i < c; i++)
                prom_sample(b, f, snaps[j], i);
    }
    return b->len - start;
}

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

size_t snap_prometheus_max(const struct reshim_snapshot *const *snaps, size_t n)
{
    size_t total = 1; /* NUL */
    for (size_t k = 0; k < NELEM(fams); k++) {
        const struct pfam *f = &fams[k];
        size_t fam = 0;
        bool any = false;
        for (size_t j = 0; j < n; j++) {
            size_t c = prom_count(f, snaps[j]);
            any |= c > 0;
            if (f->kind == PK_OP || f->kind == PK_STATE || f->kind == PK_CASE ||
                f->kind == PK_DEST_CASE) {
                for (size_t i = 0; i < c; i++)
                    fam = sat_add(fam, prom_sample_max(f, i));
            } else {
                size_t one = prom_sample_max(f, 0);
                fam = sat_add(fam, c > SIZE_MAX / one ? SIZE_MAX : c * one);
            }
        }
        if (any)
            total = sat_add(total, sat_add(fam, prom_header_len(f)));
    }
    return total;
}

/* ---- requests -------------------------------------------------------------- */

static bool req_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* A whole number in [lo, hi] (at most 12 digits); false on anything else. */
static bool req_number(const char *s, size_t n, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 12)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool req_word(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

/* Drops the blanks around the line, and a final \r. */
static void req_trim(const char **line, size_t *len)
{
    const char *p = *line;
    size_t n = *len;
    while (n && (p[n - 1] == '\r' || req_space(p[n - 1])))
        n--;
    while (n && req_space(*p))
        p++, n--;
    *line = p;
    *len = n;
}

enum snap_req snap_parse_request(const char *line, size_t len, uint64_t *arg)
{
    static const struct { const char *word; enum snap_req req; } bare[] = {
        {"stats", SREQ_STATS}, {"metrics", SREQ_METRICS}, {"config", SREQ_CONFIG},
        {"version", SREQ_VERSION}, {"help", SREQ_HELP}, {"trim", SREQ_TRIM},
        {"watch", SREQ_WATCH},
    };
    *arg = 0;
    if (!line)
        return SREQ_BLANK;
    req_trim(&line, &len);
    if (!len)
        return SREQ_BLANK;
    size_t w = 0;
    while (w < len && !req_space(line[w]))
        w++;
    const char *a = line + w;
    size_t alen = len - w;
    while (alen && req_space(*a))
        a++, alen--;
    if (!alen) {
        for (size_t i = 0; i < NELEM(bare); i++)
            if (req_word(line, w, bare[i].word))
                return bare[i].req;
    }
    if (req_word(line, w, "watch"))
        return req_number(a, alen, SREQ_WATCH_MIN_MS, SREQ_WATCH_MAX_MS, arg) ? SREQ_WATCH
                                                                              : SREQ_BAD_WATCH;
    if (req_word(line, w, "heap"))
        return req_number(a, alen, 1, SREQ_HEAP_MAX_N, arg) ? SREQ_HEAP : SREQ_BAD_HEAP;
    return SREQ_UNKNOWN;
}

void snap_unknown_request(struct sbuf *b, const char *line, size_t len)
{
    char req[SREQ_ECHO_MAX];
    if (!line)
        len = 0;
    else
        req_trim(&line, &len);
    size_t n = len < sizeof req ? len : sizeof req;
    if (n)
        memcpy(req, line, n);
    for (size_t i = 0; i < n; i++)
        if (!req[i])
            req[i] = ' '; /* the error's text is a C string on the client's side */
    /* The request as a JSON string literal; what is between its quotes goes in ours. */
    struct sbuf e;
    char esc[2 + JSON_ESC_MAX * SREQ_ECHO_MAX + 1];
    sb_init(&e, esc, sizeof esc);
    json_strn(&e, req, n);
    LIT(b, "{\"error\":\"unknown request \\\"");
    if (e.len >= 2)
        sb_mem(b, esc + 1, e.len - 2);
    LIT(b, "\\\"; try help\"}\n");
}
