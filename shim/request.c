/* request.c: the request lines of the stats socket (snapshot.h), classified
 * apart from the sockets so that they can be fuzzed; server.c only
 * dispatches on the answer. Pure. */
#include <string.h>

#include "answerjson.h"
#include "snapenc.h"

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
    static const struct { char word[8]; enum snap_req req; } bare[] = { /* no relocation */
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
    static const char head[] = "unknown request \"", tail[] = "\"; try help";
    struct snap_error e = {.has_error = true};
    if (!line)
        len = 0;
    else
        req_trim(&line, &len);
    size_t n = len < SREQ_ECHO_MAX ? len : SREQ_ECHO_MAX;
    _Static_assert(LITLEN(head) + SREQ_ECHO_MAX + LITLEN(tail) < sizeof e.error, "room");
    memcpy(e.error, head, LITLEN(head));
    char *req = e.error + LITLEN(head);
    if (n)
        memcpy(req, line, n);
    for (size_t i = 0; i < n; i++)
        if (!req[i])
            req[i] = ' '; /* the error's text is a C string on the client's side */
    memcpy(req + n, tail, sizeof tail);
    snap_error_json(&e, b);
}
