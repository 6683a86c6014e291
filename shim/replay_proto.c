/* replay_proto.c: the replay verdict on sent bytes (see replay_proto.h).
 * Pure; a prefix that could still become a replayable message is judged
 * replayable, since the peer cannot act on half a request. */
#include "replay_proto.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct method {
    char name[8]; /* the text in the table: no relocation at load */
    size_t len;
    enum rp_verdict v;
};
#define M(name, v) {name, sizeof name - 1, v}

/* Methods of RFC 9110 and PATCH (RFC 5789); any other token is a protocol
 * reshim does not know, so the connection is never replayed. */
static const struct method methods[] = {
    M("GET", RP_HTTP),  M("HEAD", RP_HTTP), M("OPTIONS", RP_HTTP), M("TRACE", RP_HTTP),
    M("POST", RP_SKIP), M("PUT", RP_SKIP),  M("DELETE", RP_SKIP),  M("PATCH", RP_SKIP),
    M("CONNECT", RP_NEVER),
};
#undef M
#define NMETHODS (sizeof methods / sizeof methods[0])

/* The method token b[0..n): its verdict; a prefix of a safe method is
 * RP_HTTP while incomplete (complete false). */
static enum rp_verdict method_verdict(const unsigned char *b, size_t n, bool complete)
{
    enum rp_verdict v = RP_NEVER;
    for (size_t i = 0; i < NMETHODS; i++) {
        size_t ml = methods[i].len;
        if (complete ? n != ml : n > ml)
            continue;
        if (memcmp(b, methods[i].name, n) != 0)
            continue;
        if (complete)
            return methods[i].v;
        /* An incomplete token that may still become a safe method stays
         * replayable; one that can only become an unsafe one is skipped. */
        if (methods[i].v == RP_HTTP)
            return RP_HTTP;
        if (methods[i].v == RP_SKIP)
            v = RP_SKIP;
    }
    return v;
}

/* Is the header line line[0..len) the field name (lower case, nl bytes)? */
static bool header_is(const unsigned char *line, size_t len, const char *name, size_t nl)
{
    return len > nl && line[nl] == ':' && strncasecmp((const char *)line, name, nl) == 0;
}
#define HEADER_IS(line, len, lit) header_is(line, len, lit, sizeof lit - 1)

/* "Content-Length: 0" is no body; any other value (or one that does not
 * parse) is one. */
static bool zero_length(const unsigned char *line, size_t len)
{
    size_t i = sizeof "content-length"; /* past the colon */
    bool digit = false;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
        if (line[i] != '0')
            return false;
        digit = true;
    }
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return digit && i == len;
}

/* The verdict a complete header line gives the request: only four fields
 * matter (their first letters tell which one it can be), any other goes on. */
static enum rp_verdict header(const unsigned char *line, size_t len)
{
    switch (line[0] | 0x20) {
    case 'u': /* the connection may become another protocol */
        return HEADER_IS(line, len, "upgrade") ? RP_NEVER : RP_HTTP;
    case 't':
        return HEADER_IS(line, len, "transfer-encoding") ? RP_SKIP : RP_HTTP;
    case 'e':
        return HEADER_IS(line, len, "expect") ? RP_SKIP : RP_HTTP;
    case 'c':
        return HEADER_IS(line, len, "content-length") && !zero_length(line, len) ? RP_SKIP
                                                                                  : RP_HTTP;
    }
    return RP_HTTP;
}

/* The first CR or LF in b[i..n), or n: sixteen bytes at a time where SSE2
 * is there (every x86-64), then eight (the rest of 8-15 bytes, and the
 * whole scan elsewhere), then one. A request's header section is scanned
 * once, where a search for CR and another for a bare LF before it cost two
 * calls a line. */
#define BYTES8(c) (0x0101010101010101ull * (unsigned char)(c))
static inline uint64_t zero_bytes(uint64_t v) /* 0x80 in exactly the bytes of v that are 0 */
{
    const uint64_t low7 = BYTES8(0x7f);
    return ~(((v & low7) + low7) | v | low7);
}

static inline size_t next_crlf(const unsigned char *b, size_t i, size_t n)
{
#ifdef __SSE2__
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    for (; n - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(x, cr), _mm_cmpeq_epi8(x, lf)));
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    for (; n - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, b + i, sizeof x);
        uint64_t m = zero_bytes(x ^ BYTES8('\r')) | zero_bytes(x ^ BYTES8('\n'));
        if (m) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)__builtin_ctzll(m) / 8;
#else
            return i + (size_t)__builtin_clzll(m) / 8;
#endif
        }
    }
    while (i < n && b[i] != '\r' && b[i] != '\n')
        i++;
    return i;
}

/* The end of a request target at b[i..n): the first byte that is a space,
 * a control or not ASCII (sixteen at a time where SSE2 is there), or n. */
static inline size_t target_end(const unsigned char *b, size_t i, size_t n)
{
#ifdef __SSE2__
    for (; n - i >= 16; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        /* signed: the bytes from 0x80 up are below 0x21 too */
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_cmplt_epi8(v, _mm_set1_epi8(0x21)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
        if (m)
            return i + (size_t)__builtin_ctz(m);
    }
#endif
    while (i < n && b[i] > ' ' && b[i] < 0x7f)
        i++;
    return i;
}

/* The end of the line at b[i..n): the offset of its CRLF; n while it is
 * still coming (not acted on yet); LINE_BAD at a bare LF or CR (not a
 * client reshim knows). */
#define LINE_BAD SIZE_MAX
static inline size_t line_end(const unsigned char *b, size_t i, size_t n)
{
    i = next_crlf(b, i, n);
    if (i == n)
        return n;
    if (b[i] == '\n')
        return LINE_BAD;
    if (i + 1 == n)
        return n;
    return b[i + 1] == '\n' ? i : LINE_BAD;
}

/* Where a later call may take up the judging of these bytes and more: the
 * start of the header line in front of which everything was judged (only
 * once the request line is through). */
static enum rp_verdict resumable(uint32_t *mark, size_t at)
{
    if (mark)
        *mark = (uint32_t)at;
    return RP_HTTP;
}

/* request-line = method SP request-target SP HTTP-version CRLF. RP_HTTP
 * with *end past its CRLF when it is complete and a safe method's; else the
 * verdict on all of b (*end 0). */
static enum rp_verdict request_line(const unsigned char *b, size_t n, size_t *end)
{
    size_t i = 0;
    *end = 0;
    if (n >= 4 && memcmp(b, "GET ", 4) == 0) { /* the common method, at once */
        i = 3;
    } else {
        while (i < n && b[i] >= 'A' && b[i] <= 'Z')
            i++;
        if (i == n)
            return method_verdict(b, n, false);
        if (b[i] != ' ' || i == 0)
            return RP_NEVER;
        enum rp_verdict mv = method_verdict(b, i, true);
        if (mv != RP_HTTP)
            return mv;
    }
    size_t t = ++i;
    i = target_end(b, i, n);
    if (i == n)
        return RP_HTTP;
    if (b[i] != ' ' || i == t)
        return RP_NEVER;
    i++;
    static const char ver[] = "HTTP/1.";
    if (n - i < sizeof ver - 1) {
        for (size_t k = 0; i < n; k++, i++)
            if (b[i] != (unsigned char)ver[k])
                return RP_NEVER;
        return RP_HTTP;
    }
    if (memcmp(b + i, ver, sizeof ver - 1) != 0) /* all of it there: one comparison */
        return RP_NEVER;
    i += sizeof ver - 1;
    if (i == n)
        return RP_HTTP;
    if (b[i] != '0' && b[i] != '1')
        return RP_NEVER;
    i++;
    size_t e = line_end(b, i, n);
    if (e == n)
        return RP_HTTP;
    if (e != i)
        return RP_NEVER; /* "HTTP/1.1x", or a bare CR or LF */
    *end = i + 2;
    return RP_HTTP;
}

static enum rp_verdict http(const unsigned char *b, size_t n, uint32_t *mark)
{
    size_t i;
    if (mark && *mark && *mark <= n) {
        i = *mark; /* the request line and the header lines before it were judged */
    } else {
        enum rp_verdict v = request_line(b, n, &i);
        if (!i)
            return v;
    }
    /* Then header lines each ending in CRLF, and an empty line. */
    for (;;) {
        if (i == n)
            return resumable(mark, i);
        size_t ls = i, e = line_end(b, i, n);
        if (e == n)
            return resumable(mark, ls); /* a header line still coming: not acted on yet */
        if (e == LINE_BAD)
            return RP_NEVER;
        size_t len = e - ls;
        i = e + 2;
        if (len == 0) /* the end of the header section */
            return i == n ? resumable(mark, ls) : RP_NEVER; /* more: a second request pipelined */
        enum rp_verdict hv = header(b + ls, len);
        if (hv != RP_HTTP)
            return hv;
    }
}

/* TLS records (RFC 8446 5.1): type 22 (handshake), version 0x03xx, a 2-byte
 * length. The handshake bytes they carry must be one ClientHello (type 1)
 * and nothing after it: early data or any other record is never replayed. */
static enum rp_verdict tls(const unsigned char *b, size_t n)
{
    size_t i = 0, hs = 0, hello_len = 0;
    unsigned char hdr[4];
    while (i < n) {
        if (b[i] != 22)
            return RP_NEVER;
        if (i + 1 < n && b[i + 1] != 3)
            return RP_NEVER;
        if (i + 5 > n)
            return RP_HELLO;
        size_t rl = (size_t)b[i + 3] << 8 | b[i + 4];
        if (rl == 0 || rl > 16384 + 256)
            return RP_NEVER;
        i += 5;
        size_t take = n - i < rl ? n - i : rl;
        for (size_t k = 0; k < take; k++, hs++) {
            if (hs < 4)
                hdr[hs] = b[i + k];
            if (hs == 3) {
                if (hdr[0] != 1)
                    return RP_NEVER;
                hello_len = 4 + ((size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3]);
            }
            if (hs >= 4 && hs >= hello_len)
                return RP_NEVER; /* a second handshake message */
        }
        if (hs >= 1 && hdr[0] != 1)
            return RP_NEVER;
        i += take;
    }
    return RP_HELLO;
}

enum rp_verdict replay_classify(const unsigned char *b, size_t n, bool first, uint32_t *mark)
{
    if (n == 0)
        return RP_HTTP; /* nothing yet: the next bytes decide */
    if (b[0] == 22)
        return first ? tls(b, n) : RP_NEVER;
    return http(b, n, mark);
}

const char *replay_verdict_name(enum rp_verdict v)
{
    switch (v) {
    case RP_HTTP: return "http";
    case RP_HELLO: return "tls-hello";
    case RP_SKIP: return "skip";
    case RP_NEVER: return "never";
    }
    return "?";
}
