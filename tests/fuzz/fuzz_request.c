/* fuzz_request: the request lines of the stats socket (snap_parse_request
 * and snap_unknown_request, shim/request.c), as server.c reads them: the
 * input is what a client sends, cut into lines at '\n' (the last one may
 * lack it), each classified.
 *
 * Checked: no crash or undefined behaviour, no read past the line; the
 * classification agrees with a reference reading of libreshim(7)'s request
 * grammar (written here independently: words split on blanks); watch and
 * heap arguments within their bounds; the error line for an unknown request
 * is one line of strict JSON, {"error":"..."} only (written by the key
 * table of answerjson.c), that the CLI's parser reads back, and its
 * message is exactly
 *   unknown request "<the request's first 64 bytes>"; try help
 * (NULs shown as spaces, bytes that are not UTF-8 as U+FFFD). */
#include <inttypes.h>

#include "answerjson.h"
#include "fuzz_common.h"
#include "snapshot.h"

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Words of the trimmed line: at most 3 are looked at. */
struct words {
    const char *w[3];
    size_t len[3];
    int n;            /* words seen, capped at 3 */
};

static void split(const char *s, size_t n, struct words *out)
{
    out->n = 0;
    size_t i = 0;
    while (i < n && out->n < 3) {
        while (i < n && blank(s[i]))
            i++;
        if (i >= n)
            break;
        size_t st = i;
        while (i < n && !blank(s[i]))
            i++;
        out->w[out->n] = s + st;
        out->len[out->n] = i - st;
        out->n++;
    }
}

static bool is(const char *w, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

/* A decimal in [lo, hi], as libreshim(7) writes MS and N (no sign, no blanks;
 * leading zeros allowed, at most 12 digits). */
static bool number(const char *w, size_t n, uint64_t lo, uint64_t hi, uint64_t *v)
{
    if (n == 0 || n > 12)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] < '0' || w[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(w[i] - '0');
    }
    *v = x;
    return x >= lo && x <= hi;
}

static enum snap_req reference(const char *line, size_t len, uint64_t *arg)
{
    *arg = 0;
    /* Trailing blanks and CRs, then leading blanks. */
    while (len && (line[len - 1] == '\r' || blank(line[len - 1])))
        len--;
    size_t lead = 0;
    while (lead < len && blank(line[lead]))
        lead++;
    line += lead;
    len -= lead;
    struct words w;
    split(line, len, &w);
    if (w.n == 0)
        return SREQ_BLANK;
    static const struct { const char *name; enum snap_req r; } bare[] = {
        {"stats", SREQ_STATS}, {"metrics", SREQ_METRICS}, {"config", SREQ_CONFIG},
        {"version", SREQ_VERSION}, {"help", SREQ_HELP}, {"trim", SREQ_TRIM},
        {"watch", SREQ_WATCH},
    };
    if (w.n == 1)
        for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++)
            if (is(w.w[0], w.len[0], bare[i].name))
                return bare[i].r;
    uint64_t v = 0;
    if (is(w.w[0], w.len[0], "watch")) {
        if (w.n == 2 && number(w.w[1], w.len[1], SREQ_WATCH_MIN_MS, SREQ_WATCH_MAX_MS, &v))
            return *arg = v, SREQ_WATCH;
        return SREQ_BAD_WATCH;
    }
    if (is(w.w[0], w.len[0], "heap")) {
        if (w.n == 2 && number(w.w[1], w.len[1], 1, SREQ_HEAP_MAX_N, &v))
            return *arg = v, SREQ_HEAP;
        return SREQ_BAD_HEAP;
    }
    return SREQ_UNKNOWN;
}

static void check_unknown(const char *line, size_t len)
{
    char out[1024];
    struct sbuf b;
    sb_init(&b, out, sizeof out);
    snap_unknown_request(&b, line, len);
    CHECK(!b.overflow, "the error line did not fit 1 KiB");
    CHECK(b.len >= 2 && out[b.len - 1] == '\n' && !memchr(out, '\n', b.len - 1),
          "not one line: %s", out);
    const char *why = json_strict(out, b.len, 4);
    CHECK(!why, "%s: %s", why, out);
    const char *err = NULL;
    static struct snap_error e;
    CHECK(snap_error_parse(out, b.len, &e, &err) == 0, "%s: %s", err, out);
    CHECK(e.has_error, "no error string: %s", out);
    const char *msg = e.error;
    /* {"error":"..."} only: the line is that, one string literal between. */
    static const char open_[] = "{\"error\":\"";
    size_t k = sizeof open_ - 1;
    CHECK(b.len > k + 3 && memcmp(out, open_, k) == 0 && memcmp(out + b.len - 3, "\"}\n", 3) == 0,
          "not {\"error\":\"...\"}: %s", out);
    while (out[k] != '"')
        k += out[k] == '\\' ? 2 : 1;
    CHECK(k == b.len - 3, "not one member: %s", out);

    /* The expected message, from the trimmed request. */
    while (len && (line[len - 1] == '\r' || blank(line[len - 1])))
        len--;
    while (len && blank(*line))
        line++, len--;
    size_t n = len < SREQ_ECHO_MAX ? len : SREQ_ECHO_MAX;
    char req[SREQ_ECHO_MAX], fixed[3 * SREQ_ECHO_MAX + 1], want[3 * SREQ_ECHO_MAX + 64];
    memcpy(req, line, n);
    for (size_t i = 0; i < n; i++)
        if (!req[i])
            req[i] = ' ';
    u8_repair(req, n, fixed);
    snprintf(want, sizeof want, "unknown request \"%s\"; try help", fixed);
    CHECK(strcmp(msg, want) == 0, "message\n  %s\nwanted\n  %s", msg, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Each line in its own allocation of exactly its length, so that ASan
     * sees a read past it. */
    const char *p = (const char *)data;
    size_t left = size;
    while (left) {
        const char *nl = memchr(p, '\n', left);
        size_t len = nl ? (size_t)(nl - p) : left;
        char *line = malloc(len ? len : 1);
        if (!line)
            return 0;
        memcpy(line, p, len);
        uint64_t arg = 12345, want_arg;
        enum snap_req got = snap_parse_request(line, len, &arg);
        enum snap_req want = reference(line, len, &want_arg);
        CHECK(got == want, "request '%.*s': %d, expected %d", (int)len, line, got, want);
        CHECK(arg == want_arg, "request '%.*s': argument %" PRIu64 ", expected %" PRIu64,
              (int)len, line, arg, want_arg);
        if (got == SREQ_WATCH)
            CHECK(arg == 0 || (arg >= SREQ_WATCH_MIN_MS && arg <= SREQ_WATCH_MAX_MS), "watch");
        if (got == SREQ_HEAP)
            CHECK(arg >= 1 && arg <= SREQ_HEAP_MAX_N, "heap");
        if (got == SREQ_UNKNOWN || len % 7 == 0)
            check_unknown(line, len);
        free(line);
        if (!nl)
            break;
        p = nl + 1;
        left -= len + 1;
    }
    return 0;
}
