/* test_encode.c: unit tests of the encoders of snapshot.h (shim/sbuf.c,
 * utf8.c, snapjson.c, jsonparse.c, prom.c, request.c): the sbuf appenders (cut at
 * cap with the NUL kept and nothing written past it), fixed point against
 * printf, JSON string and Prometheus label escaping (every control byte,
 * invalid and valid UTF-8); the stats JSON layout, snapshot -> JSON -> parse
 * -> the same snapshot, and the parser on reordered keys, unknown nested
 * keys, whitespace, \u escapes and surrogate pairs, numbers at their limits,
 * every prefix of a valid document, deep nesting, long strings, garbage and
 * mutated documents (ASan checks no read past len: inputs are copied into
 * buffers of exactly their length); the size bounds (a worst-case snapshot
 * fills them exactly); the Prometheus text of two processes (each family's
 * HELP and TYPE once, before its samples, pid and comm everywhere, one-hot
 * memory state); the other answers (answerjson.c: heap N, trim, errors;
 * config in test_config_show.c) through the same key tables: their bytes
 * as the library wrote them before the tables, and each encoded then read
 * back by the CLI's parser with every key; and encoders run from several
 * threads at once (TSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "answerjson.h"
#include "snapshot.h"

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static struct reshim_snapshot *snap_new(void)
{
    struct reshim_snapshot *s = calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

/* A snapshot with every field set, each to its own value. */
static void fill_rich(struct reshim_snapshot *s, unsigned seed)
{
    static const char *const names[] = {"127.0.0.1:8080", "[::1]:443",
                                        "unix:/run/a \"b\"\\c.sock", "db.example:5432"};
    static const char *const breakers[] = {"closed", "open", "half-open", "closed"};
    memset(s, 0, sizeof *s);
    s->pid = 4242 + (int)seed;
    snprintf(s->comm, sizeof s->comm, "py\"th\\on\t\xc3\xa9%u", seed);
    strcpy(s->version, "0.4.0-rc1");
    s->uptime_s = 12.25 + seed;
    s->start_time_s = 1733090000.123;
    s->time_s = 1733090012.373;
    for (int c = 0; c < SNAP_CLASSES; c++)
        s->net[c] = (struct snap_calls){1000u * (unsigned)c + 1 + seed, 1000u * (unsigned)c + 2,
                                        1000u * (unsigned)c + 3, 1000u * (unsigned)c + 4,
                                        1000u * (unsigned)c + 5};
    s->dns_stale = 7;
    s->dest_overflow = 3;
    s->ndest = 4;
    for (unsigned i = 0; i < s->ndest; i++) {
        struct snap_dest *d = &s->dest[i];
        strcpy(d->dest, names[i]);
        strcpy(d->dir, i == 1 ? "in" : "out");
        uint64_t k = 100 * (i + 1);
        d->connect = (struct snap_calls){k + 1, k + 2, k + 3, k + 4, k + 5};
        d->sends = k + 6;
        d->recvs = k + 7;
        d->bytes_out = k + 8;
        d->bytes_in = k + 9;
        d->io_failures = k + 10;
        d->skipped_breaker = k + 11;
        d->skipped_budget = k + 12;
        d->skipped_filter = k + 13;
        strcpy(d->last_error, i ? "ECONNREFUSED" : "");
        strcpy(d->breaker, breakers[i]);
    }
    struct snap_mem *m = &s->mem;
    m->rss_bytes = 50000001;
    m->rss_peak_bytes = 50000002;
    m->rss_anon_bytes = 50000003;
    m->rss_file_bytes = 50000004;
    m->rss_shmem_bytes = 50000005;
    m->heap_live_bytes = -12345;
    m->heap_peak_bytes = 50000007;
    m->allocs = 50000008;
    m->frees = 50000009;
    m->mmap_anon_bytes = 50000010;
    m->mmap_anon_peak_bytes = 50000011;
    m->budget_bytes = 50000012;
    m->usage_bytes = 50000013;
    m->working_set_bytes = 50000014;
    strcpy(m->budget_source, "cgroup");
    strcpy(m->state, "critical");
    strcpy(m->policy, "enforce");
    m->trims = 50000015;
    m->trimmed_bytes = 50000016;
    m->enomem = 50000017;
    strcpy(m->trim, "malloc_trim");
}

/* The longest snapshot: every string full of bytes that take the longest
 * escape in both encodings (invalid UTF-8), every number at its longest. */
static void fill_worst(struct reshim_snapshot *s, unsigned ndest)
{
    memset(s, 0xff, sizeof *s);
    s->pid = INT_MIN;
    s->comm[sizeof s->comm - 1] = '\0';
    s->version[sizeof s->version - 1] = '\0';
    s->uptime_s = -DBL_MAX;
    s->start_time_s = -DBL_MAX;
    s->time_s = -DBL_MAX;
    s->mem.heap_live_bytes = INT64_MIN;
    s->mem.budget_source[SNAP_WORD_MAX - 1] = '\0';
    s->mem.state[SNAP_WORD_MAX - 1] = '\0';
    s->mem.policy[SNAP_WORD_MAX - 1] = '\0';
    s->ndest = ndest;
    for (unsigned i = 0; i < SNAP_DESTS; i++) {
        struct snap_dest *d = &s->dest[i];
        d->dest[sizeof d->dest - 1] = '\0';
        d->dir[sizeof d->dir - 1] = '\0';
        d->last_error[sizeof d->last_error - 1] = '\0';
        d->breaker[sizeof d->breaker - 1] = '\0';
    }
}

static char *json_of(const struct reshim_snapshot *s, size_t *len)
{
    size_t cap = snap_json_max(s->ndest);
    char *buf = malloc(cap);
    assert_non_null(buf);
    struct sbuf b;
    sb_init(&b, buf, cap);
    size_t n = snap_json(s, &b);
    CHECK(!b.overflow, "json overflowed its max %zu", cap);
    CHECK(n == b.len && buf[n] == '\0', "json length %zu, buffer %zu", n, b.len);
    if (len)
        *len = n;
    return buf;
}

/* Parses len bytes from a copy of exactly that size, so that ASan sees any
 * read past the end. */
static int parse_n(const char *text, size_t len, struct reshim_snapshot *out, const char **err)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    *err = NULL;
    int rc = snap_parse_json(copy, len, out, err);
    free(copy);
    CHECK(*err != NULL, "err left NULL (rc %d)", rc);
    if (rc)
        CHECK(**err != '\0', "failure without a reason");
    else
        CHECK(**err == '\0', "success with a reason: %s", *err);
    return rc;
}

static int parse_s(const char *text, struct reshim_snapshot *out, const char **err)
{
    return parse_n(text, strlen(text), out, err);
}

static void assert_same(const struct reshim_snapshot *a, const struct reshim_snapshot *b)
{
    CHECK(a->pid == b->pid, "pid %d != %d", a->pid, b->pid);
    CHECK(memcmp(a->comm, b->comm, sizeof a->comm) == 0, "comm '%s' != '%s'", a->comm, b->comm);
    CHECK(memcmp(a->version, b->version, sizeof a->version) == 0, "version");
    CHECK(a->uptime_s == b->uptime_s, "uptime %.17g != %.17g", a->uptime_s, b->uptime_s);
    CHECK(a->start_time_s == b->start_time_s, "start %.17g != %.17g", a->start_time_s,
          b->start_time_s);
    CHECK(a->time_s == b->time_s, "time %.17g != %.17g", a->time_s, b->time_s);
    CHECK(memcmp(a->net, b->net, sizeof a->net) == 0, "net counters");
    CHECK(a->dns_stale == b->dns_stale && a->dest_overflow == b->dest_overflow, "dns_stale");
    CHECK(a->ndest == b->ndest, "ndest %u != %u", a->ndest, b->ndest);
    for (unsigned i = 0; i < SNAP_DESTS; i++)
        CHECK(memcmp(&a->dest[i], &b->dest[i], sizeof a->dest[i]) == 0, "dest[%u] ('%s')", i,
              a->dest[i].dest);
    CHECK(memcmp(&a->mem, &b->mem, sizeof a->mem) == 0, "mem");
    CHECK(memcmp(a, b, sizeof *a) == 0, "snapshots differ (padding?)");
}

/* ---- sbuf ---- */

static void test_sbuf_basics(void **state)
{
    char mem[128];
    struct sbuf b;
    sb_init(&b, mem, sizeof mem);
    assert_int_equal(b.len, 0);
    assert_string_equal(mem, "");
    sb_str(&b, "ab");
    sb_mem(&b, "cdef", 2);
    sb_mem(&b, NULL, 0);
    sb_str(&b, NULL);
    sb_u64(&b, 0);
    sb_str(&b, " ");
    sb_u64(&b, UINT64_MAX);
    sb_str(&b, " ");
    sb_i64(&b, INT64_MIN);
    sb_str(&b, " ");
    sb_i64(&b, INT64_MAX);
    sb_str(&b, " ");
    sb_i64(&b, -1);
    sb_str(&b, " ");
    sb_i64(&b, 0);
    assert_false(b.overflow);
    assert_string_equal(mem, "abcd0 18446744073709551615 -9223372036854775808 "
                             "9223372036854775807 -1 0");
    assert_int_equal(b.len, strlen(mem));
    assert_string_equal(snap_class_names[SNAP_CONNECT], "connect");
    assert_string_equal(snap_class_names[SNAP_DNS], "dns");
    assert_string_equal(snap_class_names[SNAP_SEND], "send");
    assert_string_equal(snap_class_names[SNAP_RECV], "recv");
}

/* Every appender, into every cap from 0 to past its full length: never a
 * byte past cap, the NUL kept, overflow exactly when the text did not fit,
 * and what was written is a prefix of the full text. */
enum { AP_STR, AP_U64, AP_I64, AP_FIXED, AP_JSON, AP_PROM, AP_N };

static void append(struct sbuf *b, int kind)
{
    switch (kind) {
    case AP_STR: sb_str(b, "hello, world"); break;
    case AP_U64: sb_u64(b, 18446744073709551615ull); break;
    case AP_I64: sb_i64(b, INT64_MIN); break;
    case AP_FIXED: sb_fixed(b, -1234567.891, 3); break;
    case AP_JSON: sb_json_str(b, "a\"b\\c\n\x01\xff\xc3\xa9"); break;
    case AP_PROM: sb_prom_label(b, "a\"b\\c\n\xff\xc3\xa9"); break;
    }
}

static void test_sbuf_overflow(void **state)
{
    for (int kind = 0; kind < AP_N; kind++) {
        char full[256];
        struct sbuf b;
        sb_init(&b, full, sizeof full);
        append(&b, kind);
        assert_false(b.overflow);
        size_t n = b.len;
        for (size_t cap = 0; cap <= n + 2; cap++) {
            char mem[300];
            memset(mem, 0xaa, sizeof mem);
            sb_init(&b, cap ? mem : NULL, cap);
            append(&b, kind);
            if (cap <= n) {
                CHECK(b.overflow, "kind %d cap %zu: no overflow", kind, cap);
                CHECK(b.len == (cap ? cap - 1 : 0), "kind %d cap %zu: len %zu", kind, cap, b.len);
                CHECK(memcmp(mem, full, b.len) == 0, "kind %d cap %zu: not a prefix", kind, cap);
                append(&b, AP_STR); /* nothing more once cut */
                CHECK(b.len == (cap ? cap - 1 : 0), "kind %d cap %zu: appended after a cut",
                      kind, cap);
            } else {
                CHECK(!b.overflow && b.len == n && memcmp(mem, full, n + 1) == 0,
                      "kind %d cap %zu: overflow", kind, cap);
                append(&b, AP_STR);
                CHECK(b.overflow == (cap < n + 13), "kind %d cap %zu: second append", kind, cap);
            }
            if (cap)
                CHECK(mem[b.len] == '\0', "kind %d cap %zu: NUL lost", kind, cap);
            for (size_t i = cap; i < sizeof mem; i++)
                CHECK((unsigned char)mem[i] == 0xaa, "kind %d cap %zu: byte %zu written", kind,
                      cap, i);
        }
    }
    /* A zero-size buffer: nothing happens, but the overflow is told. */
    struct sbuf z;
    sb_init(&z, NULL, 0);
    sb_mem(&z, "", 0);
    assert_false(z.overflow);
    sb_u64(&z, 1);
    assert_true(z.overflow);
    assert_int_equal(z.len, 0);
}

/* ---- fixed point ---- */

static void fixed_of(double v, int dec, char *out, size_t n)
{
    struct sbuf b;
    sb_init(&b, out, n);
    sb_fixed(&b, v, dec);
    assert_false(b.overflow);
}

/* printf's %.*f, without the minus sign of a value that rounds to zero. */
static void printf_fixed(double v, int dec, char *out, size_t n)
{
    snprintf(out, n, "%.*f", dec, v);
    if (out[0] == '-' && strspn(out + 1, "0.") == strlen(out + 1))
        memmove(out, out + 1, strlen(out));
}

static void check_fixed(double v, int dec)
{
    char got[400], want[400];
    fixed_of(v, dec, got, sizeof got);
    printf_fixed(v, dec, want, sizeof want);
    CHECK(strcmp(got, want) == 0, "%.17g with %d decimals: '%s', printf '%s'", v, dec, got,
          want);
}

static void test_fixed(void **state)
{
    static const double vals[] = {
        0, -0.0, 1, -1, 0.5, 1.5, 2.5, -2.5, 0.0625, 0.1875, -0.0625, 0.125, 0.375,
        2.675, 1.005, 0.0005, 0.00049, 12.25, 1733090000.123, 1733090012.373,
        999.9995, 999.9994999, 0.9999999999, 123456789.987654321, 4503599627370495.5,
        9007199254740993.0, 9223372036854775807.0, 9223372036854775808.0,
        18446744073709549568.0, 18446744073709551616.0, 1e19, 1e20, 1e22, 1e23, 1e300,
        -1e300, DBL_MAX, -DBL_MAX, DBL_MIN, 5e-324, 1e-300, -1e-10, 0.1, 0.2, 0.3,
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        for (int dec = 0; dec <= 9; dec++)
            check_fixed(vals[i], dec);
    /* Random values: any bit pattern, decimal-looking values, dyadic ties. */
    uint64_t seed = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        uint64_t r = xorshift(&seed);
        double v;
        if (i % 3 == 0) {
            memcpy(&v, &r, sizeof v);
            if (v != v || v - v != 0)
                continue;
        } else if (i % 3 == 1) {
            v = (double)(r % 100000000000ull) / 1000.0 * ((r >> 60) & 1 ? -1 : 1);
        } else {
            v = (double)(r % 1000000) / (double)(1u << (r >> 59));
        }
        check_fixed(v, (int)(r >> 40) % 10);
    }
    char got[64];
    fixed_of(0.0 / 0.0, 3, got, sizeof got);
    assert_string_equal(got, "0.000");
    fixed_of(1.0 / 0.0, 3, got, sizeof got);
    assert_string_equal(got, "0.000");
    fixed_of(-1.0 / 0.0, 0, got, sizeof got);
    assert_string_equal(got, "0");
    fixed_of(-0.0004, 3, got, sizeof got);
    assert_string_equal(got, "0.000");
    fixed_of(1.25, -3, got, sizeof got); /* decimals clamped to 0..9 */
    assert_string_equal(got, "1");
    fixed_of(1.25, 20, got, sizeof got);
    assert_string_equal(got, "1.250000000");
}

/* ---- escaping ---- */

static void json_str_of(const char *s, char *out, size_t n)
{
    struct sbuf b;
    sb_init(&b, out, n);
    sb_json_str(&b, s);
    assert_false(b.overflow);
}

static void prom_of(const char *s, char *out, size_t n)
{
    struct sbuf b;
    sb_init(&b, out, n);
    sb_prom_label(&b, s);
    assert_false(b.overflow);
}

struct esc_case {
    const char *in, *json, *prom;
};

#define FFFD "\xef\xbf\xbd"
static const struct esc_case esc_cases[] = {
    {"", "\"\"", ""},
    {"plain text", "\"plain text\"", "plain text"},
    {"a\"b", "\"a\\\"b\"", "a\\\"b"},
    {"a\\b", "\"a\\\\b\"", "a\\\\b"},
    {"\\\"\\", "\"\\\\\\\"\\\\\"", "\\\\\\\"\\\\"},
    {"line\nnext", "\"line\\nnext\"", "line\\nnext"},
    {"\b\f\r\t", "\"\\b\\f\\r\\t\"", "\b\f\r\t"},
    {"/", "\"/\"", "/"},
    /* valid multibyte kept as it is */
    {"\xc3\xa9", "\"\xc3\xa9\"", "\xc3\xa9"},
    {"\xe2\x82\xac", "\"\xe2\x82\xac\"", "\xe2\x82\xac"},
    {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"", "\xf0\x9f\x98\x80"},
    {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"",
     "\xef\xbf\xbf\xf4\x8f\xbf\xbf"},
    /* invalid UTF-8: one replacement per byte */
    {"\x80", "\"\\ufffd\"", FFFD},
    {"\xff", "\"\\ufffd\"", FFFD},
    {"\xfe", "\"\\ufffd\"", FFFD},
    {"\xc0\xaf", "\"\\ufffd\\ufffd\"", FFFD FFFD},                 /* overlong */
    {"\xc1\xbf", "\"\\ufffd\\ufffd\"", FFFD FFFD},
    {"\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"", FFFD FFFD FFFD},  /* overlong */
    {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", FFFD FFFD FFFD},  /* a surrogate */
    {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", FFFD FFFD FFFD FFFD},
    {"\xf5\x80", "\"\\ufffd\\ufffd\"", FFFD FFFD},
    {"a\xe2\x82", "\"a\\ufffd\\ufffd\"", "a" FFFD FFFD},            /* cut at the end */
    {"\xe2\x82x", "\"\\ufffd\\ufffdx\"", FFFD FFFD "x"},
    {"\xc3", "\"\\ufffd\"", FFFD},
    {"x\xc3\xa9\xa9", "\"x\xc3\xa9\\ufffd\"", "x\xc3\xa9" FFFD},
};

static void test_escape_cases(void **state)
{
    char out[256];
    for (size_t i = 0; i < sizeof esc_cases / sizeof esc_cases[0]; i++) {
        const struct esc_case *c = &esc_cases[i];
        json_str_of(c->in, out, sizeof out);
        CHECK(strcmp(out, c->json) == 0, "case %zu: json '%s', want '%s'", i, out, c->json);
        prom_of(c->in, out, sizeof out);
        CHECK(strcmp(out, c->prom) == 0, "case %zu: prom '%s', want '%s'", i, out, c->prom);
    }
    /* NULL is taken as "" (a literal) and as nothing (a label). */
    json_str_of(NULL, out, sizeof out);
    assert_string_equal(out, "\"\"");
    prom_of(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

/* Every control byte a C string can hold, and DEL. */
static void test_escape_control_bytes(void **state)
{
    for (int c = 1; c <= 0x7f; c++) {
        if (c >= 0x20 && c < 0x7f)
            continue;
        char in[4] = {'x', (char)c, 'y', 0}, out[64], want[64];
        json_str_of(in, out, sizeof out);
        const char *shortesc = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n"
                             : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (shortesc)
            snprintf(want, sizeof want, "\"x%sy\"", shortesc);
        else
            snprintf(want, sizeof want, "\"x\\u%04xy\"", (unsigned)c);
        CHECK(strcmp(out, want) == 0, "byte 0x%02x: json '%s', want '%s'", c, out, want);
        /* And it parses back to the same byte. */
        char doc[128];
        snprintf(doc, sizeof doc, "{\"comm\":%s}", out);
        struct reshim_snapshot *s = snap_new();
        const char *err;
        CHECK(parse_s(doc, s, &err) == 0, "byte 0x%02x: %s", c, err);
        CHECK(strcmp(s->comm, in) == 0, "byte 0x%02x back as '%s'", c, s->comm);
        free(s);
        /* Prometheus: only the newline is escaped. */
        prom_of(in, out, sizeof out);
        if (c == '\n')
            assert_string_equal(out, "x\\ny");
        else
            CHECK(strcmp(out, in) == 0, "byte 0x%02x: prom '%s'", c, out);
    }
    /* Every byte value at once: always valid UTF-8, quotes balanced. */
    char all[256], out[2048];
    for (int c = 1; c < 256; c++)
        all[c - 1] = (char)c;
    all[255] = '\0';
    json_str_of(all, out, sizeof out);
    struct reshim_snapshot *s = snap_new();
    char doc[2100];
    snprintf(doc, sizeof doc, "{\"comm\":%s}", out);
    const char *err;
    CHECK(parse_s(doc, s, &err) == 0, "all bytes: %s", err);
    free(s);
}

/* ---- JSON ---- */

#define ZCALLS "{\"calls\":0,\"failures\":0,\"retries\":0,\"recovered\":0,\"gave_up\":0}"
static const char zero_json[] =
    "{\"pid\":0,\"comm\":\"\",\"version\":\"\",\"uptime_s\":0.000,\"start_time_s\":0.000,"
    "\"time_s\":0.000,\"net\":{\"connect\":" ZCALLS ",\"dns\":" ZCALLS ",\"send\":" ZCALLS
    ",\"recv\":" ZCALLS ",\"dns_stale\":0,\"dest_overflow\":0,\"replay\":{\"nothing_sent\":0,"
    "\"tls_hello\":0,\"http_request\":0,\"recovered\":0,\"gave_up\":0,\"over_max\":0,"
    "\"held_bytes\":0,\"held_peak_bytes\":0},\"destinations\":[{\"dest\":\"\","
    "\"dir\":\"\",\"calls\":0,\"failures\":0,\"retries\":0,\"recovered\":0,\"gave_up\":0,"
    "\"sends\":0,\"recvs\":0,\"bytes_out\":0,\"bytes_in\":0,\"io_failures\":0,"
    "\"skipped_breaker\":0,\"skipped_budget\":0,\"skipped_filter\":0,\"replay\":{"
    "\"nothing_sent\":0,\"tls_hello\":0,\"http_request\":0,\"recovered\":0,\"gave_up\":0},"
    "\"last_error\":null,"
    "\"breaker\":\"\"}]},\"mem\":{\"rss_bytes\":0,\"rss_peak_bytes\":0,\"rss_anon_bytes\":0,"
    "\"rss_file_bytes\":0,\"rss_shmem_bytes\":0,\"heap_live_bytes\":0,\"heap_peak_bytes\":0,"
    "\"allocs\":0,\"frees\":0,\"mmap_anon_bytes\":0,\"mmap_anon_peak_bytes\":0,"
    "\"budget_bytes\":0,\"usage_bytes\":0,\"working_set_bytes\":0,\"budget_source\":\"\","
    "\"state\":\"\",\"policy\":\"\",\"trims\":0,\"trimmed_bytes\":0,\"enomem\":0,\"trim\":\"\"}}\n";

/* The keys and their order, as snapshot.h documents them. */
static void test_json_layout(void **state)
{
    struct reshim_snapshot *s = snap_new();
    s->ndest = 1;
    size_t len;
    char *j = json_of(s, &len);
    assert_string_equal(j, zero_json);
    free(j);
    /* A rich one: a single line, ending in a newline; values where expected. */
    fill_rich(s, 0);
    j = json_of(s, &len);
    CHECK(strchr(j, '\n') == j + len - 1, "not one line");
    CHECK(strstr(j, "{\"pid\":4242,\"comm\":\"py\\\"th\\\\on\\t\xc3\xa9" "0\",\"version\":"
                    "\"0.4.0-rc1\",\"uptime_s\":12.250,\"start_time_s\":1733090000.123,"
                    "\"time_s\":1733090012.373,\"net\":{\"connect\":{\"calls\":1,") == j,
          "%s", j);
    CHECK(strstr(j, "\"last_error\":null,\"breaker\":\"closed\"}") != NULL, "null last_error");
    CHECK(strstr(j, "\"last_error\":\"ECONNREFUSED\",\"breaker\":\"half-open\"}") != NULL,
          "last_error");
    CHECK(strstr(j, "\"heap_live_bytes\":-12345,") != NULL, "negative heap");
    CHECK(strstr(j, "\"dest\":\"unix:/run/a \\\"b\\\"\\\\c.sock\"") != NULL, "dest escaped");
    free(j);
    /* NaN and infinities are written as 0, so the object stays JSON. */
    s->uptime_s = 0.0 / 0.0;
    s->time_s = -1.0 / 0.0;
    j = json_of(s, &len);
    CHECK(strstr(j, "\"uptime_s\":0.000,") && strstr(j, "\"time_s\":0.000,"), "nan");
    free(j);
    /* ndest beyond the table is clamped; unterminated arrays are cut. */
    memset(s->comm, 'c', sizeof s->comm);
    s->ndest = SNAP_DESTS + 7;
    j = json_of(s, &len);
    char want[SNAP_COMM_MAX + 16];
    snprintf(want, sizeof want, "\"comm\":\"%.*s\"", SNAP_COMM_MAX - 1,
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    CHECK(strstr(j, want) != NULL, "unterminated comm");
    struct reshim_snapshot *t = snap_new();
    const char *err;
    CHECK(parse_n(j, len, t, &err) == 0, "%s", err);
    assert_int_equal(t->ndest, SNAP_DESTS);
    free(j);
    free(s);
    free(t);
}

static void test_json_roundtrip(void **state)
{
    struct reshim_snapshot *s = snap_new(), *t = snap_new();
    const char *err;
    size_t len;
    for (unsigned seed = 0; seed < 4; seed++) {
        fill_rich(s, seed);
        if (seed == 1) { /* extremes */
            s->pid = INT_MAX;
            s->net[SNAP_DNS].calls = UINT64_MAX;
            s->net[SNAP_DNS].failures = 0;
            s->mem.heap_live_bytes = INT64_MIN;
            s->mem.rss_bytes = UINT64_MAX;
            s->dest[2].bytes_in = UINT64_MAX;
            s->uptime_s = 0;
        } else if (seed == 2) {
            s->pid = INT_MIN;
            s->mem.heap_live_bytes = INT64_MAX;
            s->ndest = 0;
            memset(s->dest, 0, sizeof s->dest);
        } else if (seed == 3) { /* a full table */
            s->ndest = SNAP_DESTS;
            for (unsigned i = 0; i < SNAP_DESTS; i++) {
                s->dest[i] = s->dest[i % 4];
                memset(s->dest[i].dest, 0, sizeof s->dest[i].dest);
                snprintf(s->dest[i].dest, sizeof s->dest[i].dest, "10.0.%u.%u:%u", i / 256,
                         i % 256, 1000 + i);
                s->dest[i].bytes_out = (uint64_t)i * 1000003;
            }
        }
        char *j = json_of(s, &len);
        memset(t, 0x5a, sizeof *t);
        CHECK(parse_n(j, len, t, &err) == 0, "seed %u: %s", seed, err);
        assert_same(s, t);
        /* Re-encoding the parsed snapshot gives the same text. */
        size_t len2;
        char *j2 = json_of(t, &len2);
        CHECK(len == len2 && memcmp(j, j2, len) == 0, "seed %u: re-encoding differs", seed);
        free(j);
        free(j2);
    }
    free(s);
    free(t);
}

/* The canonical text of a rich snapshot, with its keys reversed in every
 * object, whitespace everywhere and unknown keys of every kind. */
static void test_parse_reordered_unknown(void **state)
{
    static const char doc[] =
        " \r\n\t{ \"mem\" : { \"trim\":\"malloc_trim\", \"enomem\" : 50000017 , \"trimmed_bytes\":50000016,"
        "\"trims\":50000015,\"policy\":\"enforce\",\"state\":\"critical\","
        "\"budget_source\":\"cgroup\",\"future\":{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"},"
        "\"working_set_bytes\":50000014,\"usage_bytes\":50000013,\"budget_bytes\":50000012,"
        "\"mmap_anon_peak_bytes\":50000011,\"mmap_anon_bytes\":50000010,\"frees\":50000009,"
        "\"allocs\":50000008,\"heap_peak_bytes\":50000007,\"heap_live_bytes\":-12345,"
        "\"rss_shmem_bytes\":50000005,\"rss_file_bytes\":50000004,\"rss_anon_bytes\":50000003,"
        "\"rss_peak_bytes\":50000002,\"rss_bytes\":50000001},\n"
        "\"unknown_top\" : [ [ [ ] ] , { } , \"x\\\"}\" , -1.5e-3 , true , false , null ],"
        "\"net\":{\"extra\":{\"deep\":{\"deeper\":[{\"x\":[]}]}},"
        "\"destinations\":[\n"
        "{\"breaker\":\"closed\",\"last_error\":null,\"skipped_filter\":113,"
        "\"skipped_budget\":112,\"skipped_breaker\":111,\"io_failures\":110,\"bytes_in\":109,"
        "\"bytes_out\":108,\"recvs\":107,\"sends\":106,\"gave_up\":105,\"recovered\":104,"
        "\"retries\":103,\"failures\":102,\"calls\":101,\"dir\":\"out\","
        "\"dest\":\"127.0.0.1:8080\",\"nested_unknown\":{\"q\":[1,{\"r\":2}]}},\n"
        "{\"dest\":\"[::1]:443\",\"dir\":\"in\",\"calls\":201,\"failures\":202,\"retries\":203,"
        "\"recovered\":204,\"gave_up\":205,\"sends\":206,\"recvs\":207,\"bytes_out\":208,"
        "\"bytes_in\":209,\"io_failures\":210,\"skipped_breaker\":211,\"skipped_budget\":212,"
        "\"skipped_filter\":213,\"last_error\":\"ECONNREFUSED\",\"breaker\":\"open\"},"
        "{\"dest\":\"unix:/run/a \\\"b\\\"\\\\c.sock\",\"dir\":\"out\",\"calls\":301,"
        "\"failures\":302,\"retries\":303,\"recovered\":304,\"gave_up\":305,\"sends\":306,"
        "\"recvs\":307,\"bytes_out\":308,\"bytes_in\":309,\"io_failures\":310,"
        "\"skipped_breaker\":311,\"skipped_budget\":312,\"skipped_filter\":313,"
        "\"last_error\":\"ECONNREFUSED\",\"breaker\":\"half-open\"},"
        "{\"breaker\":\"closed\",\"last_error\":\"ECONNREFUSED\",\"skipped_filter\":413,"
        "\"skipped_budget\":412,\"skipped_breaker\":411,\"io_failures\":410,\"bytes_in\":409,"
        "\"bytes_out\":408,\"recvs\":407,\"sends\":406,\"gave_up\":405,\"recovered\":404,"
        "\"retries\":403,\"failures\":402,\"calls\":401,\"dir\":\"out\","
        "\"dest\":\"db.example:5432\"}],"
        "\"dest_overflow\":3,\"dns_stale\":7,"
        "\"recv\":{\"gave_up\":3005,\"recovered\":3004,\"retries\":3003,\"failures\":3002,"
        "\"calls\":3001},"
        "\"send\":{\"gave_up\":2005,\"recovered\":2004,\"retries\":2003,\"failures\":2002,"
        "\"calls\":2001},"
        "\"dns\":{\"gave_up\":1005,\"recovered\":1004,\"retries\":1003,\"failures\":1002,"
        "\"calls\":1001,\"more\":{}},"
        "\"connect\":{\"gave_up\":5,\"recovered\":4,\"retries\":3,\"failures\":2,\"calls\":1}},"
        "\"time_s\":1733090012.373,\"start_time_s\":1733090000.123,\"uptime_s\":12.25,"
        "\"version\":\"0.4.0-rc1\",\"comm\":\"py\\\"th\\\\on\\t\\u00e90\",\"pid\":4242"
        "\t}\n\n  ";
    struct reshim_snapshot *want = snap_new(), *got = snap_new();
    fill_rich(want, 0);
    const char *err;
    CHECK(parse_s(doc, got, &err) == 0, "%s", err);
    assert_same(want, got);
    /* Missing keys are zero; a repeated key: the last one wins. */
    CHECK(parse_s("{\"pid\":5,\"comm\":\"aaaaaaaa\",\"comm\":\"b\",\"pid\":6,"
                  "\"net\":{\"destinations\":[{\"dest\":\"x\"},{\"dest\":\"y\"}],"
                  "\"destinations\":[{\"dest\":\"z\"}]}}",
                  got, &err) == 0,
          "%s", err);
    memset(want, 0, sizeof *want);
    want->pid = 6;
    strcpy(want->comm, "b");
    want->ndest = 1;
    strcpy(want->dest[0].dest, "z");
    assert_same(want, got);
    CHECK(parse_s("{}", got, &err) == 0, "%s", err);
    memset(want, 0, sizeof *want);
    assert_same(want, got);
    free(want);
    free(got);
}

static void test_parse_strings(void **state)
{
    struct {
        const char *json, *want;
    } cases[] = {
        {"\"\\u00e9\\u20AC\"", "\xc3\xa9\xe2\x82\xac"},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},              /* a surrogate pair */
        {"\"\\uD83D\\uDE00x\"", "\xf0\x9f\x98\x80x"},
        {"\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf"},
        {"\"a\\ud83dz\"", "a" FFFD "z"},                         /* lone high */
        {"\"\\ude00\"", FFFD},                                   /* lone low */
        {"\"\\ud83d\\u0041\"", FFFD "A"},                        /* high, then not low */
        {"\"\\ud83d\\ud83d\\ude00\"", FFFD "\xf0\x9f\x98\x80"},
        {"\"\\u0000\"", FFFD},                                   /* NUL cannot be held */
        {"\"\\u0041\\u007f\\u0001\"", "A\x7f\x01"},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t"},
        {"\"\xc3\xa9\xf0\x9f\x98\x80\"", "\xc3\xa9\xf0\x9f\x98\x80"}, /* raw UTF-8 */
        {"\"a\xff" "b\xc0\xaf\"", "a" FFFD "b" FFFD FFFD},            /* raw, not UTF-8 */
        {"\"\x7f\"", "\x7f"},
    };
    struct reshim_snapshot *s = snap_new();
    const char *err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "{\"comm\":%s}", cases[i].json);
        CHECK(parse_s(doc, s, &err) == 0, "case %zu: %s", i, err);
        CHECK(strcmp(s->comm, cases[i].want) == 0, "case %zu: '%s'", i, s->comm);
    }
    /* Escaped keys match too. */
    CHECK(parse_s("{\"p\\u0069d\":12}", s, &err) == 0 && s->pid == 12, "escaped key");
    /* Bad strings. */
    static const char *const bad[] = {
        "{\"comm\":\"a\x01\"}", "{\"comm\":\"a\nb\"}", "{\"comm\":\"\\x\"}",
        "{\"comm\":\"\\u12G4\"}", "{\"comm\":\"\\u12\"}", "{\"comm\":\"\\ud83d\\u12\"}",
        "{\"comm\":\"abc}", "{\"comm\":'a'}", "{\"co\nmm\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(parse_s(bad[i], s, &err) == -1, "bad string %zu accepted", i);
    free(s);
}

/* Strings longer than their array: cut at a character boundary, still
 * valid UTF-8, NUL-terminated, the rest of the document still read. */
static void test_parse_truncates_strings(void **state)
{
    static const char *const units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                        "\\u00e9", "\\ud83d\\ude00", "\\n"};
    struct reshim_snapshot *s = snap_new();
    const char *err;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
        for (size_t lead = 0; lead < 4; lead++) {
            char doc[4096] = "{\"comm\":\"";
            for (size_t i = 0; i < lead; i++)
                strcat(doc, "x");
            for (int i = 0; i < 100; i++)
                strcat(doc, units[u]);
            strcat(doc, "\",\"mem\":{\"state\":\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
                        "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"},\"pid\":9}");
            CHECK(parse_s(doc, s, &err) == 0, "unit %zu: %s", u, err);
            size_t n = strlen(s->comm);
            CHECK(n <= SNAP_COMM_MAX - 1 && n > SNAP_COMM_MAX - 5, "unit %zu: %zu bytes", u, n);
            for (size_t i = 0; i < lead; i++)
                assert_int_equal(s->comm[i], 'x');
            /* Whole characters only: re-encoding needs no replacement. */
            char out[512];
            json_str_of(s->comm, out, sizeof out);
            CHECK(strstr(out, "\\ufffd") == NULL, "unit %zu lead %zu: cut mid-character: %s",
                  u, lead, out);
            assert_int_equal(strlen(s->mem.state), 15); /* five of six euro signs */
            assert_int_equal(s->pid, 9);
        }
    free(s);
}

static void test_parse_numbers(void **state)
{
    struct reshim_snapshot *s = snap_new();
    const char *err;
    char doc[256];
#define DOC(fmt, ...) (snprintf(doc, sizeof doc, fmt, __VA_ARGS__), doc)
    CHECK(parse_s(DOC("{\"net\":{\"dns_stale\":%s}}", "0"), s, &err) == 0, "%s", err);
    assert_true(s->dns_stale == 0);
    CHECK(parse_s(DOC("{\"net\":{\"dns_stale\":%s}}", "18446744073709551615"), s, &err) == 0,
          "%s", err);
    assert_true(s->dns_stale == UINT64_MAX);
    CHECK(parse_s(DOC("{\"mem\":{\"heap_live_bytes\":%s}}", "-9223372036854775808"), s,
                  &err) == 0,
          "%s", err);
    assert_true(s->mem.heap_live_bytes == INT64_MIN);
    CHECK(parse_s(DOC("{\"mem\":{\"heap_live_bytes\":%s}}", "9223372036854775807"), s, &err) ==
              0,
          "%s", err);
    assert_true(s->mem.heap_live_bytes == INT64_MAX);
    CHECK(parse_s(DOC("{\"mem\":{\"heap_live_bytes\":%s}}", "-1"), s, &err) == 0, "%s", err);
    assert_true(s->mem.heap_live_bytes == -1);
    CHECK(parse_s("{\"pid\":-2147483648}", s, &err) == 0 && s->pid == INT_MIN, "pid min");
    CHECK(parse_s("{\"pid\":2147483647}", s, &err) == 0 && s->pid == INT_MAX, "pid max");
    struct {
        const char *text;
        double want;
    } dbl[] = {
        {"0", 0},           {"-0", -0.0},        {"12.25", 12.25},  {"1.5e3", 1500},
        {"2E-2", 0.02},     {"1.5e+2", 150},     {"-0.5", -0.5},    {"0.1", 0.1},
        {"1733090000.123", 1733090000.123},      {"123456789.125", 123456789.125},
        {"1e400", DBL_MAX}, {"-1e400", -DBL_MAX}, {"1e-400", 0},    {"0e99999999", 0},
        {"1.0000000000000000000000000001", 1.0}, {"00.5", -1},
    };
    for (size_t i = 0; i < sizeof dbl / sizeof dbl[0]; i++) {
        int rc = parse_s(DOC("{\"uptime_s\":%s}", dbl[i].text), s, &err);
        if (dbl[i].want == -1) {
            CHECK(rc == -1, "%s accepted", dbl[i].text);
            continue;
        }
        CHECK(rc == 0, "%s: %s", dbl[i].text, err);
        CHECK(s->uptime_s == dbl[i].want, "%s read as %.17g", dbl[i].text, s->uptime_s);
    }
    /* Huge mantissas and exponents stay bounded and finite. */
    char *big = malloc(200100);
    assert_non_null(big);
    strcpy(big, "{\"uptime_s\":");
    memset(big + 12, '7', 100000);
    strcpy(big + 100012, ".5e-99990}");
    CHECK(parse_s(big, s, &err) == 0 && s->uptime_s > 7.7e9 && s->uptime_s < 7.8e9,
          "long mantissa: %s %g", err, s->uptime_s);
    strcpy(big, "{\"uptime_s\":0.");
    memset(big + 14, '0', 150000);
    strcpy(big + 150014, "1}");
    CHECK(parse_s(big, s, &err) == 0 && s->uptime_s == 0, "many zeros: %g", s->uptime_s);
    strcpy(big, "{\"net\":{\"dns_stale\":");
    memset(big + 20, '9', 100000);
    strcpy(big + 100020, "}}");
    CHECK(parse_s(big, s, &err) == -1, "100000 digits into a u64");
    free(big);
    /* Out of range or not an integer where one is needed. */
    static const char *const bad_u64[] = {
        "18446744073709551616", "-1", "-0", "1.0", "1e2", "01", "1.", ".5", "+1", "-",
        "1e", "1e+", "0x10", "Infinity", "NaN", "\"1\"", "null", "true", "1 2",
    };
    for (size_t i = 0; i < sizeof bad_u64 / sizeof bad_u64[0]; i++)
        CHECK(parse_s(DOC("{\"net\":{\"dns_stale\":%s}}", bad_u64[i]), s, &err) == -1,
              "u64 %s accepted", bad_u64[i]);
    static const char *const bad_i64[] = {"9223372036854775808", "-9223372036854775809",
                                          "-1.5", "1e3"};
    for (size_t i = 0; i < sizeof bad_i64 / sizeof bad_i64[0]; i++)
        CHECK(parse_s(DOC("{\"mem\":{\"heap_live_bytes\":%s}}", bad_i64[i]), s, &err) == -1,
              "i64 %s accepted", bad_i64[i]);
    static const char *const bad_int[] = {"2147483648", "-2147483649", "1.5"};
    for (size_t i = 0; i < sizeof bad_int / sizeof bad_int[0]; i++)
        CHECK(parse_s(DOC("{\"pid\":%s}", bad_int[i]), s, &err) == -1, "int %s accepted",
              bad_int[i]);
    static const char *const bad_dbl[] = {"1.", ".5", "+1", "1e", "--1", "\"1\"", "null"};
    for (size_t i = 0; i < sizeof bad_dbl / sizeof bad_dbl[0]; i++)
        CHECK(parse_s(DOC("{\"time_s\":%s}", bad_dbl[i]), s, &err) == -1, "double %s accepted",
              bad_dbl[i]);
#undef DOC
    free(s);
}

static void test_parse_types(void **state)
{
    struct reshim_snapshot *s = snap_new();
    const char *err;
    CHECK(parse_s("{\"net\":{\"destinations\":[{\"last_error\":null},"
                  "{\"last_error\":\"EPIPE\"}]}}",
                  s, &err) == 0,
          "%s", err);
    assert_int_equal(s->ndest, 2);
    assert_string_equal(s->dest[0].last_error, "");
    assert_string_equal(s->dest[1].last_error, "EPIPE");
    static const char *const bad[] = {
        "{\"pid\":\"1\"}",
        "{\"comm\":1}",
        "{\"comm\":null}",
        "{\"version\":[\"x\"]}",
        "{\"net\":[]}",
        "{\"net\":1}",
        "{\"mem\":null}",
        "{\"net\":{\"connect\":[1,2,3,4,5]}}",
        "{\"net\":{\"destinations\":{}}}",
        "{\"net\":{\"destinations\":[1]}}",
        "{\"net\":{\"destinations\":[{},]}}",
        "{\"net\":{\"destinations\":[{}}}",
        "{\"net\":{\"destinations\":[{\"breaker\":null}]}}",
        "{\"net\":{\"destinations\":[{\"last_error\":nul}]}}",
        "{\"mem\":{\"state\":1}}",
        "{\"x\":tru}",
        "{\"x\":nulll}",
        "{\"x\":[1,]}",
        "{\"x\":{\"a\"}}",
        "{\"x\":{1:2}}",
        "{\"x\":}",
        "{,}",
        "{\"pid\":1,}",
        "{\"pid\" 1}",
        "{\"pid\":1 \"comm\":\"\"}",
        "[]",
        "\"stats\"",
        "null",
        "{\"pid\":1}}",
        "{\"pid\":1} x",
        "{\"pid\":1}{}",
        "",
        "   \n\t ",
        "\xef\xbb\xbf{}", /* a BOM is not JSON */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(s, 0x11, sizeof *s);
        CHECK(parse_s(bad[i], s, &err) == -1, "bad %zu accepted: %s", i, bad[i]);
        /* A failed parse leaves the snapshot zeroed. */
        CHECK(s->pid == 0 && s->ndest == 0 && s->comm[0] == 0, "bad %zu: not zeroed", i);
    }
    err = NULL;
    assert_int_equal(snap_parse_json(NULL, 10, s, &err), -1);
    assert_non_null(err);
    assert_int_equal(snap_parse_json("{}", 2, NULL, &err), -1);
    assert_int_equal(snap_parse_json("{}", 2, s, NULL), 0);
    free(s);
}

/* More destinations than fit: the first SNAP_DESTS are kept, the rest read
 * and ignored. */
static void test_parse_many_dests(void **state)
{
    const unsigned n = SNAP_DESTS + 100;
    size_t cap = (size_t)n * 200 + 100;
    char *doc = malloc(cap);
    assert_non_null(doc);
    struct sbuf b;
    sb_init(&b, doc, cap);
    sb_str(&b, "{\"net\":{\"destinations\":[");
    for (unsigned i = 0; i < n; i++) {
        char one[200];
        snprintf(one, sizeof one, "%s{\"dest\":\"h%u:80\",\"bytes_in\":%u,\"x\":[{}]}",
                 i ? "," : "", i, i * 3);
        sb_str(&b, one);
    }
    sb_str(&b, "],\"dns_stale\":5}}");
    assert_false(b.overflow);
    struct reshim_snapshot *s = snap_new();
    const char *err;
    CHECK(parse_n(doc, b.len, s, &err) == 0, "%s", err);
    assert_int_equal(s->ndest, SNAP_DESTS);
    for (unsigned i = 0; i < SNAP_DESTS; i++) {
        char name[32];
        snprintf(name, sizeof name, "h%u:80", i);
        CHECK(strcmp(s->dest[i].dest, name) == 0 && s->dest[i].bytes_in == i * 3, "dest %u", i);
    }
    assert_true(s->dns_stale == 5);
    /* The ignored ones are still checked. */
    memcpy(doc + b.len - 20, "}{", 2);
    CHECK(parse_n(doc, b.len, s, &err) == -1, "garbage in an ignored destination");
    free(doc);
    free(s);
}

/* Every proper prefix of a valid document is refused, safely. */
static void test_parse_every_prefix(void **state)
{
    struct reshim_snapshot *s = snap_new(), *t = snap_new();
    fill_rich(s, 1);
    memset(s->comm, 0, sizeof s->comm);
    strcpy(s->comm, "\xc3\xa9\\\"\x01");
    size_t len;
    char *j = json_of(s, &len);
    const char *err;
    size_t objlen = len - 1; /* without the newline */
    for (size_t k = 0; k < objlen; k++)
        CHECK(parse_n(j, k, t, &err) == -1, "prefix of %zu bytes accepted", k);
    CHECK(parse_n(j, objlen, t, &err) == 0, "the object alone: %s", err);
    CHECK(parse_n(j, len, t, &err) == 0, "%s", err);
    assert_same(s, t);
    free(j);
    /* A hand-written one with escapes, surrogates, unknown values, numbers
     * with fractions and exponents, literals. */
    static const char doc[] =
        "{\"comm\":\"\\ud83d\\ude00\\u00e9\\n\\\"\\ud800\",\"x\":[true,false,null,"
        "{\"y\":-1.5e-3}],\"uptime_s\":1.25E+2,\"net\":{\"destinations\":[{\"last_error\":"
        "null,\"dest\":\"\\u0041\"}]},\"mem\":{\"heap_live_bytes\":-7}}";
    for (size_t k = 0; k < sizeof doc - 1; k++)
        CHECK(parse_n(doc, k, t, &err) == -1, "prefix of %zu bytes accepted", k);
    CHECK(parse_n(doc, sizeof doc - 1, t, &err) == 0, "%s", err);
    assert_string_equal(t->comm, "\xf0\x9f\x98\x80\xc3\xa9\n\"" FFFD);
    assert_string_equal(t->dest[0].dest, "A");
    assert_true(t->uptime_s == 125 && t->mem.heap_live_bytes == -7);
    free(s);
    free(t);
}

static char *repeat(const char *unit, size_t times, const char *head, const char *tail)
{
    size_t u = strlen(unit), h = strlen(head), tl = strlen(tail);
    char *p = malloc(h + u * times + tl + 1);
    assert_non_null(p);
    memcpy(p, head, h);
    for (size_t i = 0; i < times; i++)
        memcpy(p + h + i * u, unit, u);
    memcpy(p + h + u * times, tail, tl + 1);
    return p;
}

static void test_parse_hostile(void **state)
{
    struct reshim_snapshot *s = snap_new();
    const char *err;
    char *p;
    /* Deep nesting, at the top, as an unknown value, in objects. */
    p = repeat("[", 10000, "", "");
    assert_int_equal(parse_s(p, s, &err), -1);
    free(p);
    p = repeat("[", 10000, "{\"x\":", "");
    assert_int_equal(parse_s(p, s, &err), -1);
    assert_string_equal(err, "nesting too deep");
    free(p);
    char *open = repeat("[", 10000, "{\"x\":", ""), *closed = repeat("]", 10000, open, "}");
    assert_int_equal(parse_s(closed, s, &err), -1);
    free(open);
    free(closed);
    p = repeat("{\"a\":", 10000, "{\"x\":", "");
    assert_int_equal(parse_s(p, s, &err), -1);
    free(p);
    p = repeat("{\"a\":", 10000, "", "");
    assert_int_equal(parse_s(p, s, &err), -1);
    free(p);
    /* Moderate nesting in an unknown key is fine. */
    open = repeat("[", 50, "{\"x\":", "");
    closed = repeat("]", 50, open, ",\"pid\":3}");
    CHECK(parse_s(closed, s, &err) == 0 && s->pid == 3, "50 levels: %s", err);
    free(open);
    free(closed);
    /* Long strings: a 1 MiB comm, a 1 MiB unknown key and value. */
    p = repeat("\xe2\x82\xac", 350000, "{\"comm\":\"", "\",\"pid\":4}");
    CHECK(parse_s(p, s, &err) == 0 && s->pid == 4 && strlen(s->comm) == 63, "long: %s", err);
    free(p);
    p = repeat("k", 1 << 20, "{\"", "\":\"v\",\"pid\":5}");
    CHECK(parse_s(p, s, &err) == 0 && s->pid == 5, "long key: %s", err);
    free(p);
    p = repeat("\\u00e9", 200000, "{\"zz\":\"", "\",\"pid\":6}");
    CHECK(parse_s(p, s, &err) == 0 && s->pid == 6, "long unknown: %s", err);
    free(p);
    p = repeat("\"x\",", 100000, "{\"zz\":[", "1],\"pid\":7}");
    CHECK(parse_s(p, s, &err) == 0 && s->pid == 7, "long array: %s", err);
    free(p);
    /* NUL bytes inside the length. */
    static const char nul_doc[] = "{\"pid\":1,\0\"comm\":\"x\"}";
    assert_int_equal(parse_n(nul_doc, sizeof nul_doc - 1, s, &err), -1);
    static const char nul_str[] = "{\"comm\":\"a\0b\"}";
    assert_int_equal(parse_n(nul_str, sizeof nul_str - 1, s, &err), -1);
    /* Garbage: random bytes from a JSON-ish alphabet, and raw noise. */
    static const char alpha[] = "{}[]:,\"\\u0123456789abcdefEe+-.tnrfl \n\t";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 4000; i++) {
        char g[96];
        size_t n = xorshift(&seed) % sizeof g;
        for (size_t k = 0; k < n; k++) {
            uint64_t r = xorshift(&seed);
            g[k] = i & 1 ? (char)r : alpha[r % (sizeof alpha - 1)];
        }
        if (n && i % 4 == 0)
            g[0] = '{';
        int rc = parse_n(g, n, s, &err);
        CHECK(rc == 0 || rc == -1, "rc %d", rc);
    }
    free(s);
}

/* A valid document with a few bytes changed: never a crash, and either a
 * snapshot or a reason. */
static void test_parse_mutations(void **state)
{
    struct reshim_snapshot *s = snap_new(), *t = snap_new();
    fill_rich(s, 2);
    size_t len;
    char *j = json_of(s, &len);
    char *m = malloc(len);
    assert_non_null(m);
    static const char alpha[] = "{}[]:,\"\\u0009eE+-.n \xff\xc3";
    uint64_t seed = 12345;
    int ok = 0;
    const char *err;
    for (int i = 0; i < 3000; i++) {
        memcpy(m, j, len);
        int changes = 1 + (int)(xorshift(&seed) % 3);
        for (int c = 0; c < changes; c++) {
            uint64_t r = xorshift(&seed);
            m[r % len] = (r >> 32) & 1 ? alpha[(r >> 33) % (sizeof alpha - 1)] : (char)(r >> 40);
        }
        size_t n = i % 5 == 0 ? xorshift(&seed) % len : len;
        ok += parse_n(m, n, t, &err) == 0;
    }
    CHECK(ok > 0 && ok < 3000, "%d of 3000 mutated documents parsed", ok);
    free(m);
    free(j);
    free(s);
    free(t);
}

/* ---- size bounds ---- */

static void test_json_max(void **state)
{
    struct reshim_snapshot *s = snap_new(), *t = snap_new();
    static const unsigned nds[] = {0, 1, 2, 7, SNAP_DESTS};
    const char *err;
    for (size_t k = 0; k < sizeof nds / sizeof nds[0]; k++) {
        fill_worst(s, nds[k]);
        size_t max = snap_json_max(nds[k]);
        char *buf = malloc(max);
        assert_non_null(buf);
        struct sbuf b;
        sb_init(&b, buf, max);
        size_t n = snap_json(s, &b);
        CHECK(!b.overflow, "ndest %u: overflow at %zu", nds[k], max);
        CHECK(n + 1 == max, "ndest %u: worst case %zu + NUL, max %zu", nds[k], n, max);
        /* One byte less does not fit. */
        sb_init(&b, buf, max - 1);
        snap_json(s, &b);
        CHECK(b.overflow, "ndest %u: fits in max - 1", nds[k]);
        /* The worst case is still valid JSON. */
        sb_init(&b, buf, max);
        snap_json(s, &b);
        CHECK(parse_n(buf, n, t, &err) == 0, "ndest %u: %s", nds[k], err);
        CHECK(t->ndest == nds[k] && t->pid == INT_MIN && t->uptime_s == -DBL_MAX, "values");
        free(buf);
    }
    assert_int_equal(snap_json_max(SNAP_DESTS + 1), snap_json_max(SNAP_DESTS));
    assert_int_equal(snap_json_max(UINT_MAX), snap_json_max(SNAP_DESTS));
    /* Random snapshots always fit. */
    uint64_t seed = 777;
    for (int i = 0; i < 200; i++) {
        unsigned char *raw = (unsigned char *)s;
        for (size_t k = 0; k < sizeof *s; k++)
            raw[k] = (unsigned char)xorshift(&seed);
        s->ndest = (unsigned)(xorshift(&seed) % 8);
        size_t max = snap_json_max(s->ndest);
        char *buf = malloc(max);
        assert_non_null(buf);
        struct sbuf b;
        sb_init(&b, buf, max);
        size_t n = snap_json(s, &b);
        CHECK(!b.overflow && n < max, "random %d overflowed", i);
        CHECK(parse_n(buf, n, t, &err) == 0, "random %d: %s", i, err);
        free(buf);
    }
    free(s);
    free(t);
}

static char *prom_of_snaps(const struct reshim_snapshot *const *v, size_t n, size_t *len)
{
    size_t max = snap_prometheus_max(v, n);
    char *buf = malloc(max);
    assert_non_null(buf);
    struct sbuf b;
    sb_init(&b, buf, max);
    *len = snap_prometheus(v, n, &b);
    CHECK(!b.overflow && *len + 1 <= max, "prometheus overflowed %zu", max);
    return buf;
}

static void test_prometheus_max(void **state)
{
    struct reshim_snapshot *a = snap_new(), *b = snap_new();
    static const unsigned nds[][2] = {{0, 0}, {3, 0}, {0, 1}, {2, 5}, {SNAP_DESTS, 1}};
    for (size_t k = 0; k < sizeof nds / sizeof nds[0]; k++) {
        fill_worst(a, nds[k][0]);
        fill_worst(b, nds[k][1]);
        const struct reshim_snapshot *v[2] = {a, b};
        size_t max = snap_prometheus_max(v, 2);
        char *buf = malloc(max);
        assert_non_null(buf);
        struct sbuf sb;
        sb_init(&sb, buf, max);
        size_t n = snap_prometheus(v, 2, &sb);
        CHECK(!sb.overflow && n + 1 == max, "ndest %u,%u: worst case %zu + NUL, max %zu",
              nds[k][0], nds[k][1], n, max);
        sb_init(&sb, buf, max - 1);
        snap_prometheus(v, 2, &sb);
        CHECK(sb.overflow, "fits in max - 1");
        free(buf);
    }
    /* No snapshot: nothing at all. */
    assert_int_equal(snap_prometheus_max(NULL, 0), 1);
    char one[4];
    struct sbuf sb;
    sb_init(&sb, one, sizeof one);
    assert_int_equal(snap_prometheus(NULL, 0, &sb), 0);
    assert_string_equal(one, "");
    free(a);
    free(b);
}

/* ---- Prometheus ---- */

struct fam_expect {
    const char *name, *type;
    int per_proc; /* samples per process: 1, 3 (replay case), 4 (op, state), -1 (per
                   * destination) or -3 (per destination and replay case) */
};

static const struct fam_expect fam_list[] = {
    {"reshim_info", "gauge", 1},
    {"reshim_uptime_seconds", "gauge", 1},
    {"reshim_start_time_seconds", "gauge", 1},
    {"reshim_net_calls_total", "counter", 4},
    {"reshim_net_failures_total", "counter", 4},
    {"reshim_net_retries_total", "counter", 4},
    {"reshim_net_recovered_total", "counter", 4},
    {"reshim_net_gave_up_total", "counter", 4},
    {"reshim_dns_stale_answers_total", "counter", 1},
    {"reshim_destination_connects_total", "counter", -1},
    {"reshim_destination_connect_failures_total", "counter", -1},
    {"reshim_destination_retries_total", "counter", -1},
    {"reshim_destination_recovered_total", "counter", -1},
    {"reshim_destination_gave_up_total", "counter", -1},
    {"reshim_destination_sent_bytes_total", "counter", -1},
    {"reshim_destination_received_bytes_total", "counter", -1},
    {"reshim_destination_breaker_open", "gauge", -1},
    {"reshim_replays_total", "counter", 3},
    {"reshim_replay_recovered_total", "counter", 1},
    {"reshim_replay_gave_up_total", "counter", 1},
    {"reshim_replay_held_bytes", "gauge", 1},
    {"reshim_destination_replays_total", "counter", -3},
    {"reshim_resident_memory_bytes", "gauge", 1},
    {"reshim_resident_memory_peak_bytes", "gauge", 1},
    {"reshim_resident_anon_memory_bytes", "gauge", 1},
    {"reshim_heap_live_bytes", "gauge", 1},
    {"reshim_heap_peak_bytes", "gauge", 1},
    {"reshim_allocations_total", "counter", 1},
    {"reshim_frees_total", "counter", 1},
    {"reshim_mmap_anon_bytes", "gauge", 1},
    {"reshim_memory_budget_bytes", "gauge", 1},
    {"reshim_memory_usage_bytes", "gauge", 1},
    {"reshim_container_working_set_bytes", "gauge", 1},
    {"reshim_memory_state", "gauge", 4},
    {"reshim_memory_trims_total", "counter", 1},
    {"reshim_memory_trimmed_bytes_total", "counter", 1},
    {"reshim_memory_denied_allocations_total", "counter", 1},
};
#define NFAM (sizeof fam_list / sizeof fam_list[0])

static int fam_index(const char *name, size_t n)
{
    for (size_t i = 0; i < NFAM; i++)
        if (strlen(fam_list[i].name) == n && memcmp(fam_list[i].name, name, n) == 0)
            return (int)i;
    return -1;
}

/* Checks the structure of an exposition: each family's HELP then TYPE once,
 * then its samples, all together; pid and comm first on every sample.
 * Returns the sample count of each family in counts. */
static void check_exposition(const char *text, size_t len, int *counts)
{
    int help[NFAM] = {0}, type[NFAM] = {0};
    int cur = -1;
    bool typed = false;
    CHECK(len > 0 && text[len - 1] == '\n', "no final newline");
    for (const char *line = text; line < text + len;) {
        const char *nl = memchr(line, '\n', (size_t)(text + len - line));
        assert_non_null(nl);
        size_t n = (size_t)(nl - line);
        CHECK(n > 0, "empty line");
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *sp = memchr(line + 7, ' ', n - 7);
            assert_non_null(sp);
            int f = fam_index(line + 7, (size_t)(sp - line - 7));
            CHECK(f >= 0, "unexpected family: %.*s", (int)n, line);
            CHECK(help[f]++ == 0, "second HELP for %s", fam_list[f].name);
            CHECK((size_t)(nl - sp) > 10, "help too short: %.*s", (int)n, line);
            cur = f;
            typed = false;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            CHECK(cur >= 0 && !typed, "TYPE not right after HELP: %.*s", (int)n, line);
            char want[128];
            snprintf(want, sizeof want, "# TYPE %s %s", fam_list[cur].name, fam_list[cur].type);
            CHECK(n == strlen(want) && memcmp(line, want, n) == 0, "'%.*s', want '%s'", (int)n,
                  line, want);
            type[cur]++;
            typed = true;
        } else {
            const char *brace = memchr(line, '{', n);
            CHECK(brace != NULL, "sample without labels: %.*s", (int)n, line);
            int f = fam_index(line, (size_t)(brace - line));
            CHECK(f >= 0 && f == cur && typed, "sample outside its family: %.*s", (int)n, line);
            CHECK(strncmp(brace, "{pid=\"", 6) == 0, "no pid first: %.*s", (int)n, line);
            const char *comm = strstr(brace, "\",comm=\"");
            CHECK(comm != NULL && comm < nl, "no comm: %.*s", (int)n, line);
            const char *val = nl;
            while (val > line && val[-1] != ' ')
                val--;
            CHECK(val > line + 2 && val[-2] == '}', "no value: %.*s", (int)n, line);
            CHECK(strspn(val, "-0123456789.") == (size_t)(nl - val), "bad value: %.*s", (int)n,
                  line);
            counts[f]++;
        }
        line = nl + 1;
    }
    for (size_t f = 0; f < NFAM; f++)
        if (counts[f])
            CHECK(help[f] == 1 && type[f] == 1, "%s: help %d type %d", fam_list[f].name,
                  help[f], type[f]);
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void test_prometheus_two(void **state)
{
    struct reshim_snapshot *a = snap_new(), *b = snap_new();
    fill_rich(a, 0);
    strcpy(a->comm, "we\"ird\\na\nme");
    fill_rich(b, 1);
    b->pid = 77;
    strcpy(b->comm, "curl");
    b->ndest = 2;
    strcpy(b->mem.state, "ok");
    b->net[SNAP_DNS].retries = 99;
    const struct reshim_snapshot *v[2] = {a, b};
    size_t len;
    char *text = prom_of_snaps(v, 2, &len);
    int counts[NFAM] = {0};
    check_exposition(text, len, counts);
    for (size_t f = 0; f < NFAM; f++) {
        int want = fam_list[f].per_proc < 0
                       ? -fam_list[f].per_proc * (int)(a->ndest + b->ndest)
                       : 2 * fam_list[f].per_proc;
        CHECK(counts[f] == want, "%s: %d samples, want %d", fam_list[f].name, counts[f], want);
    }
    /* Values and labels. */
#define A "pid=\"4242\",comm=\"we\\\"ird\\\\na\\nme\""
#define B "pid=\"77\",comm=\"curl\""
    static const char *const lines[] = {
        "reshim_info{" A ",version=\"0.4.0-rc1\"} 1",
        "reshim_uptime_seconds{" A "} 12.250",
        "reshim_start_time_seconds{" B "} 1733090000.123",
        "reshim_net_calls_total{" A ",op=\"connect\"} 1",
        "reshim_net_retries_total{" B ",op=\"dns\"} 99",
        "reshim_net_gave_up_total{" A ",op=\"recv\"} 3005",
        "reshim_dns_stale_answers_total{" B "} 7",
        "reshim_destination_connects_total{" A ",dest=\"127.0.0.1:8080\",dir=\"out\"} 101",
        "reshim_destination_connect_failures_total{" A ",dest=\"[::1]:443\",dir=\"in\"} 202",
        "reshim_destination_retries_total{" A
        ",dest=\"unix:/run/a \\\"b\\\"\\\\c.sock\",dir=\"out\"} 303",
        "reshim_destination_recovered_total{" A ",dest=\"db.example:5432\",dir=\"out\"} 404",
        "reshim_destination_gave_up_total{" B ",dest=\"[::1]:443\",dir=\"in\"} 205",
        "reshim_destination_sent_bytes_total{" A ",dest=\"127.0.0.1:8080\",dir=\"out\"} 108",
        "reshim_destination_received_bytes_total{" A ",dest=\"127.0.0.1:8080\",dir=\"out\"} 109",
        "reshim_destination_breaker_open{" A ",dest=\"127.0.0.1:8080\",dir=\"out\"} 0",
        "reshim_destination_breaker_open{" A ",dest=\"[::1]:443\",dir=\"in\"} 1",
        "reshim_destination_breaker_open{" A
        ",dest=\"unix:/run/a \\\"b\\\"\\\\c.sock\",dir=\"out\"} 1",
        "reshim_destination_breaker_open{" A ",dest=\"db.example:5432\",dir=\"out\"} 0",
        "reshim_resident_memory_bytes{" A "} 50000001",
        "reshim_resident_memory_peak_bytes{" A "} 50000002",
        "reshim_resident_anon_memory_bytes{" A "} 50000003",
        "reshim_heap_live_bytes{" A "} -12345",
        "reshim_heap_peak_bytes{" A "} 50000007",
        "reshim_allocations_total{" A "} 50000008",
        "reshim_frees_total{" A "} 50000009",
        "reshim_mmap_anon_bytes{" A "} 50000010",
        "reshim_memory_budget_bytes{" A "} 50000012",
        "reshim_memory_usage_bytes{" A "} 50000013",
        "reshim_container_working_set_bytes{" A "} 50000014",
        "reshim_memory_trims_total{" A "} 50000015",
        "reshim_memory_trimmed_bytes_total{" A "} 50000016",
        "reshim_memory_denied_allocations_total{" A "} 50000017",
        /* one-hot, all four present */
        "reshim_memory_state{" A ",state=\"ok\"} 0",
        "reshim_memory_state{" A ",state=\"warn\"} 0",
        "reshim_memory_state{" A ",state=\"critical\"} 1",
        "reshim_memory_state{" A ",state=\"over\"} 0",
        "reshim_memory_state{" B ",state=\"ok\"} 1",
        "reshim_memory_state{" B ",state=\"warn\"} 0",
        "reshim_memory_state{" B ",state=\"critical\"} 0",
        "reshim_memory_state{" B ",state=\"over\"} 0",
    };
#undef A
#undef B
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        CHECK(has_line(text, lines[i]), "missing line: %s\n%s", lines[i], text);
    free(text);
    /* An unknown state: all four, all 0. No destinations anywhere: no
     * destination family at all. */
    strcpy(a->mem.state, "weird");
    a->ndest = b->ndest = 0;
    text = prom_of_snaps(v, 2, &len);
    memset(counts, 0, sizeof counts);
    check_exposition(text, len, counts);
    for (size_t f = 0; f < NFAM; f++)
        CHECK(counts[f] == (fam_list[f].per_proc < 0 ? 0 : 2 * fam_list[f].per_proc),
              "%s: %d samples", fam_list[f].name, counts[f]);
    CHECK(strstr(text, "destination") == NULL, "destination families without samples");
    for (int i = 0; i < 4; i++) {
        static const char *const st[] = {"ok", "warn", "critical", "over"};
        char want[128];
        snprintf(want, sizeof want, "reshim_memory_state{pid=\"4242\",comm=\"we\\\"ird\\\\na\\nme\","
                                    "state=\"%s\"} 0", st[i]);
        CHECK(has_line(text, want), "missing %s", want);
    }
    free(text);
    free(a);
    free(b);
}

/* ---- threads ---- */

struct worker {
    unsigned seed;
    int errors;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct reshim_snapshot *s = calloc(1, sizeof *s), *t = calloc(1, sizeof *t);
    if (!s || !t) {
        w->errors++;
        goto out;
    }
    for (int round = 0; round < 30; round++) {
        fill_rich(s, w->seed * 100 + (unsigned)round);
        size_t cap = snap_json_max(s->ndest);
        char *buf = malloc(cap);
        struct sbuf b;
        sb_init(&b, buf, cap);
        size_t n = snap_json(s, &b);
        const char *err;
        if (b.overflow || snap_parse_json(buf, n, t, &err) != 0 || memcmp(s, t, sizeof *s))
            w->errors++;
        free(buf);
        const struct reshim_snapshot *v[2] = {s, t};
        cap = snap_prometheus_max(v, 2);
        buf = malloc(cap);
        sb_init(&b, buf, cap);
        snap_prometheus(v, 2, &b);
        if (b.overflow || !strstr(buf, "reshim_memory_state{"))
            w->errors++;
        free(buf);
    }
out:
    free(s);
    free(t);
    return NULL;
}

static void test_threads(void **state)
{
    enum { NT = 4 };
    pthread_t th[NT];
    struct worker w[NT];
    for (int i = 0; i < NT; i++) {
        w[i] = (struct worker){(unsigned)i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].errors == 0, "thread %d: %d errors", i, w[i].errors);
    }
}

/* ---- the other answers (answerjson.h) ---------------------------------------- */

static char *encode_doc(size_t max, size_t (*enc)(const void *, struct sbuf *), const void *v,
                        size_t *len)
{
    char *mem = malloc(max);
    assert_non_null(mem);
    struct sbuf b;
    sb_init(&b, mem, max);
    *len = enc(v, &b);
    CHECK(!b.overflow && *len == b.len && *len < max, "overflow: %zu of %zu", *len, max);
    CHECK(*len && mem[*len - 1] == '\n' && !memchr(mem, '\n', *len - 1), "not one line");
    return mem;
}

static size_t enc_trim(const void *v, struct sbuf *b) { return snap_trim_json(v, b); }
static size_t enc_error(const void *v, struct sbuf *b) { return snap_error_json(v, b); }
static size_t enc_heap(const void *v, struct sbuf *b) { return snap_heap_json(v, b); }

static void test_trim_answer(void **state)
{
    (void)state;
    struct snap_trim t = {123456789, UINT64_MAX, 0, 17}, back;
    size_t len;
    char *text = encode_doc(snap_trim_json_max(), enc_trim, &t, &len);
    assert_string_equal(text, "{\"trimmed_bytes\":123456789,\"rss_before_bytes\":"
                              "18446744073709551615,\"rss_after_bytes\":0,\"ms\":17}\n");
    const char *why = NULL;
    CHECK(snap_trim_parse(text, len, &back, &why) == 0, "refused: %s", why);
    assert_memory_equal(&back, &t, sizeof t);
    /* Every key is required: without one the answer is not a trim's. */
    static const char partial[] = "{\"trimmed_bytes\":5,\"rss_before_bytes\":1,\"ms\":2}";
    assert_int_equal(snap_trim_parse(partial, strlen(partial), &back, &why), -1);
    CHECK(why && why[0], "no reason");
    assert_int_equal(back.trimmed_bytes, 0);
    static const char neg[] = "{\"trimmed_bytes\":-5,\"rss_before_bytes\":1,\"rss_after_bytes\":1,"
                              "\"ms\":2}";
    assert_int_equal(snap_trim_parse(neg, strlen(neg), &back, &why), -1);
    free(text);
}

static void test_error_answer(void **state)
{
    (void)state;
    struct snap_error e = {.has_error = true}, back;
    snap_word(e.error, sizeof e.error, "no trim: the allocator (jemalloc) offers none");
    size_t len;
    char *text = encode_doc(snap_error_json_max(), enc_error, &e, &len);
    assert_string_equal(text, "{\"error\":\"no trim: the allocator (jemalloc) offers none\"}\n");
    const char *why = NULL;
    CHECK(snap_error_parse(text, len, &back, &why) == 0, "refused: %s", why);
    assert_true(back.has_error);
    assert_string_equal(back.error, e.error);
    free(text);
    /* Escapes, control bytes, UTF-8 and a byte that is not UTF-8. */
    snap_word(e.error, sizeof e.error, "a \"b\"\\c\n\x01 \xc3\xa9 \xff!");
    text = encode_doc(snap_error_json_max(), enc_error, &e, &len);
    assert_string_equal(text, "{\"error\":\"a \\\"b\\\"\\\\c\\n\\u0001 \xc3\xa9 \\ufffd!\"}\n");
    CHECK(snap_error_parse(text, len, &back, &why) == 0, "refused: %s", why);
    assert_string_equal(back.error, "a \"b\"\\c\n\x01 \xc3\xa9 \xef\xbf\xbd!");
    free(text);
    /* A long message fits the bound, every byte escaped 6-fold. */
    memset(e.error, 0x02, sizeof e.error - 1);
    e.error[sizeof e.error - 1] = 0;
    text = encode_doc(snap_error_json_max(), enc_error, &e, &len);
    assert_int_equal(len, snap_error_json_max() - 1);
    free(text);
    /* Another answer is not an error: it parses, without the key. */
    struct reshim_snapshot *s = snap_new();
    fill_rich(s, 1);
    char *stats = malloc(snap_json_max(s->ndest));
    struct sbuf b;
    sb_init(&b, stats, snap_json_max(s->ndest));
    snap_json(s, &b);
    CHECK(snap_error_parse(stats, b.len, &back, &why) == 0, "refused: %s", why);
    assert_false(back.has_error);
    assert_int_equal(snap_error_parse("reshim 0.2.0\n", 13, &back, &why), -1);
    free(stats);
    free(s);
}

/* Three sites: one with Python frames, the [other] one, one plain. */
static void fill_heap(struct snap_heap *h, struct snap_heap_site *sites)
{
    memset(h, 0, sizeof *h);
    memset(sites, 0, 3 * sizeof *sites);
    h->sample_bytes = 524288;
    h->sites.p = sites;
    h->sites.n = 3;
    h->sampled_live_bytes = 3000000;
    h->live_samples = 12;
    h->sites_used = 40;
    h->other_samples = 2;
    h->dropped = 1;
    snap_word(h->unwinder, sizeof h->unwinder, "libgcc_s _Unwind_Backtrace");
    h->stacks_cached = 7;
    h->stacks_full = 3;
    snap_word(h->python, sizeof h->python, "CPython allocator hooked");
    h->profiler_resident_bytes = 4096;
    for (unsigned i = 0; i < 3; i++) {
        struct snap_heap_site *s = &sites[i];
        s->live_bytes = 1000000 - i;
        s->live_bytes_sd = 2000 + i;
        s->live_objects = 10 + i;
        s->allocs = 20 + i;
        s->samples = 30 + i;
        s->live_samples = 4 + i;
    }
    snap_word(sites[0].stack[0], SNAP_HEAP_SYM_MAX, "PyMem_Malloc+0x1f (python3.11)");
    snap_word(sites[0].stack[1], SNAP_HEAP_SYM_MAX, "main+0x2 (a \"b\")");
    sites[0].nstack = sites[0].npcs = 2;
    sites[0].pcs[0] = 0x7f0000001234;
    sites[0].pcs[1] = UINT64_MAX;
    sites[0].has_python = true;
    sites[0].npython = 2;
    snap_word(sites[0].python[0].file, SNAP_HEAP_PY_STR_MAX, "/app/x.py");
    snap_word(sites[0].python[0].function, SNAP_HEAP_PY_STR_MAX, "grow");
    sites[0].python[0].line = 42;
    snap_word(sites[0].python[1].file, SNAP_HEAP_PY_STR_MAX, "<frozen \xe2\x82\xac>");
    snap_word(sites[0].python[1].function, SNAP_HEAP_PY_STR_MAX, "<module>");
    sites[0].python[1].line = 0;
    snap_word(sites[1].stack[0], SNAP_HEAP_SYM_MAX, "[other]");
    sites[1].nstack = 1;
    snap_word(sites[2].stack[0], SNAP_HEAP_SYM_MAX, "0x401000");
    sites[2].nstack = sites[2].npcs = 1;
    sites[2].pcs[0] = 0x401000;
}

static const struct snap_heap_site *heap_sites_by_one;
static const void *heap_site_at(const void *ctx, unsigned i)
{
    static struct snap_heap_site one;
    (void)ctx;
    one = heap_sites_by_one[i]; /* made one at a time, as the library does */
    return &one;
}

static void test_heap_answer(void **state)
{
    (void)state;
    static struct snap_heap_site sites[3], back_sites[SNAP_HEAP_SITES];
    struct snap_heap h, back;
    fill_heap(&h, sites);
    size_t len;
    char *text = encode_doc(snap_heap_json_max(3), enc_heap, &h, &len);
    /* The bytes heapprof.c wrote by hand before the table. */
    assert_string_equal(text,
        "{\"sample_bytes\":524288,\"sites\":["
        "{\"live_bytes\":1000000,\"live_bytes_sd\":2000,\"live_objects\":10,\"allocs\":20,"
        "\"samples\":30,\"live_samples\":4,\"stack\":[\"PyMem_Malloc+0x1f (python3.11)\","
        "\"main+0x2 (a \\\"b\\\")\"],\"pcs\":[139637976732212,18446744073709551615],"
        "\"python\":[{\"file\":\"/app/x.py\",\"function\":\"grow\",\"line\":42},"
        "{\"file\":\"<frozen \xe2\x82\xac>\",\"function\":\"<module>\",\"line\":0}]},"
        "{\"live_bytes\":999999,\"live_bytes_sd\":2001,\"live_objects\":11,\"allocs\":21,"
        "\"samples\":31,\"live_samples\":5,\"stack\":[\"[other]\"],\"pcs\":[]},"
        "{\"live_bytes\":999998,\"live_bytes_sd\":2002,\"live_objects\":12,\"allocs\":22,"
        "\"samples\":32,\"live_samples\":6,\"stack\":[\"0x401000\"],\"pcs\":[4198400]}],"
        "\"sampled_live_bytes\":3000000,\"live_samples\":12,\"sites_used\":40,"
        "\"other_samples\":2,\"dropped\":1,\"unwinder\":\"libgcc_s _Unwind_Backtrace\","
        "\"stacks_cached\":7,\"stacks_full\":3,\"python\":\"CPython allocator hooked\",\"profiler_resident_bytes\":4096}\n");
    /* Sites made one at a time (at) write the same bytes. */
    struct snap_heap h2 = h;
    h2.sites.p = NULL;
    h2.sites.at = heap_site_at;
    heap_sites_by_one = sites;
    size_t len2;
    char *text2 = encode_doc(snap_heap_json_max(3), enc_heap, &h2, &len2);
    assert_string_equal(text2, text);
    free(text2);
    /* Read back: every key. */
    const char *why = NULL;
    memset(back_sites, 0x5a, sizeof back_sites); /* the room may hold anything */
    CHECK(snap_heap_parse(text, len, &back, back_sites, &why) == 0, "refused: %s", why);
    assert_ptr_equal(back.sites.p, back_sites);
    assert_int_equal(back.sites.n, 3);
    assert_null(back.sites.at);
    struct snap_heap want = h;
    want.sites.p = back_sites;
    assert_memory_equal(&back, &want, sizeof back);
    assert_memory_equal(back_sites, sites, sizeof sites);
    /* The parsed answer encodes to the same bytes. */
    text2 = encode_doc(snap_heap_json_max(3), enc_heap, &back, &len2);
    assert_string_equal(text2, text);
    free(text2);
    /* Without "sites" it is not a heap answer; more frames than a site
     * holds are read up to its room. */
    static const char nosites[] = "{\"sample_bytes\":1,\"dropped\":0}";
    assert_int_equal(snap_heap_parse(nosites, strlen(nosites), &back, back_sites, &why), -1);
    char many[4096];
    size_t k = (size_t)snprintf(many, sizeof many, "{\"sites\":[{\"stack\":[");
    for (int i = 0; i < SNAP_HEAP_DEPTH + 9; i++)
        k += (size_t)snprintf(many + k, sizeof many - k, "%s\"f%d\"", i ? "," : "", i);
    k += (size_t)snprintf(many + k, sizeof many - k, "],\"pcs\":[1,2]}]}");
    CHECK(snap_heap_parse(many, k, &back, back_sites, &why) == 0, "refused: %s", why);
    assert_int_equal(back.sites.n, 1);
    assert_int_equal(back_sites[0].nstack, SNAP_HEAP_DEPTH + 1);
    assert_string_equal(back_sites[0].stack[SNAP_HEAP_DEPTH], "f24");
    assert_int_equal(back_sites[0].npcs, 2);
    assert_false(back_sites[0].has_python);
    free(text);
}

/* The bound of heap N holds for sites whose every string is full of bytes
 * escaped 6-fold, every number at its widest. */
static void test_heap_answer_max(void **state)
{
    (void)state;
    static struct snap_heap_site sites[4];
    struct snap_heap h;
    memset(&h, 0, sizeof h);
    memset(sites, 0, sizeof sites);
    memset(&h.sample_bytes, 0xff, sizeof h.sample_bytes);
    memset(h.unwinder, 0x01, sizeof h.unwinder - 1);
    memset(h.python, 0x01, sizeof h.python - 1);
    h.sampled_live_bytes = h.live_samples = h.sites_used = h.other_samples = h.dropped =
        h.stacks_cached = h.stacks_full = h.profiler_resident_bytes = UINT64_MAX;
    h.sites.p = sites;
    h.sites.n = 4;
    for (unsigned i = 0; i < 4; i++) {
        struct snap_heap_site *s = &sites[i];
        s->live_bytes = s->live_bytes_sd = s->live_objects = s->allocs = s->samples =
            s->live_samples = UINT64_MAX;
        s->nstack = SNAP_HEAP_DEPTH + 1;
        s->npcs = SNAP_HEAP_DEPTH;
        s->npython = SNAP_HEAP_PY_DEPTH;
        s->has_python = true;
        for (unsigned j = 0; j < s->nstack; j++)
            memset(s->stack[j], 0x1f, SNAP_HEAP_SYM_MAX - 1);
        for (unsigned j = 0; j < s->npcs; j++)
            s->pcs[j] = UINT64_MAX;
        for (unsigned j = 0; j < s->npython; j++) {
            memset(s->python[j].file, 0x03, SNAP_HEAP_PY_STR_MAX - 1);
            memset(s->python[j].function, 0x04, SNAP_HEAP_PY_STR_MAX - 1);
            s->python[j].line = UINT64_MAX;
        }
    }
    size_t len;
    char *text = encode_doc(snap_heap_json_max(4), enc_heap, &h, &len);
    assert_int_equal(len, snap_heap_json_max(4) - 1);
    free(text);
    /* Fewer sites than asked for take less; the bound never shrinks below them. */
    h.sites.n = 2;
    text = encode_doc(snap_heap_json_max(4), enc_heap, &h, &len);
    CHECK(len < snap_heap_json_max(2), "%zu", len);
    free(text);
    assert_true(snap_heap_json_max(SNAP_HEAP_SITES) == snap_heap_json_max(SNAP_HEAP_SITES + 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sbuf_basics),
        cmocka_unit_test(test_sbuf_overflow),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_escape_cases),
        cmocka_unit_test(test_escape_control_bytes),
        cmocka_unit_test(test_json_layout),
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_parse_reordered_unknown),
        cmocka_unit_test(test_parse_strings),
        cmocka_unit_test(test_parse_truncates_strings),
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_parse_types),
        cmocka_unit_test(test_parse_many_dests),
        cmocka_unit_test(test_parse_every_prefix),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_parse_mutations),
        cmocka_unit_test(test_json_max),
        cmocka_unit_test(test_prometheus_max),
        cmocka_unit_test(test_prometheus_two),
        cmocka_unit_test(test_trim_answer),
        cmocka_unit_test(test_error_answer),
        cmocka_unit_test(test_heap_answer),
        cmocka_unit_test(test_heap_answer_max),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
