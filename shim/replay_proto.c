/* replay_proto.c: the replay verdict on sent bytes (see replay_proto.h).
 * Pure; a prefix that could still become a replayable message is judged
 * replayable, since the peer cannot act on half a request. */
#include "replay_proto.h"

#include <string.h>
#include <strings.h>

struct method {
    const char *name;
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
    return len > nl && line[nl] == ':' && (line[0] | 0x20) == (unsigned char)name[0] &&
           strncasecmp((const char *)line, name, nl) == 0;
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

static enum rp_verdict http(const unsigned char *b, size_t n)
{
    /* request-line = method SP request-target SP HTTP-version CRLF */
    size_t i = 0;
    while (i < n && b[i] >= 'A' && b[i] <= 'Z')
        i++;
    if (i == n)
        return method_verdict(b, n, false);
    if (b[i] != ' ' || i == 0)
        return RP_NEVER;
    enum rp_verdict mv = method_verdict(b, i, true);
    if (mv != RP_HTTP)
        return mv;
    size_t t = ++i;
    while (i < n && b[i] > ' ' && b[i] < 0x7f)
        i++;
    if (i == n)
        return RP_HTTP;
    if (b[i] != ' ' || i == t)
        return RP_NEVER;
    i++;
    static const char ver[] = "HTTP/1.";
    for (size_t k = 0; k < sizeof ver - 1; k++, i++) {
        if (i == n)
            return RP_HTTP;
        if (b[i] != (unsigned char)ver[k])
            return RP_NEVER;
    }
    if (i == n)
        return RP_HTTP;
    if (b[i] != '0' && b[i] != '1')
        return RP_NEVER;
    i++;
    /* Then CRLF, header lines each ending in CRLF, and an empty line. */
    bool request_line = true;
    for (;;) {
        if (i == n)
            return RP_HTTP;
        size_t ls = i;
        const unsigned char *cr = memchr(b + i, '\r', n - i);
        size_t end = cr ? (size_t)(cr - b) : n;
        if (memchr(b + i, '\n', end - i))
            return RP_NEVER; /* a bare LF: not a client reshim knows */
        i = end;
        if (i == n)
            return RP_HTTP; /* a header line still coming: not acted on yet */
        if (i + 1 == n)
            return RP_HTTP;
        if (b[i + 1] != '\n')
            return RP_NEVER;
        size_t len = i - ls;
        i += 2;
        if (request_line) {
            if (len)
                return RP_NEVER; /* "HTTP/1.1x" */
            request_line = false;
            continue;
        }
        if (len == 0) /* the end of the header section */
            return i == n ? RP_HTTP : RP_NEVER; /* more: a second request pipelined */
        const unsigned char *line = b + ls;
        if (HEADER_IS(line, len, "upgrade"))
            return RP_NEVER; /* the connection may become another protocol */
        if (HEADER_IS(line, len, "transfer-encoding") || HEADER_IS(line, len, "expect") ||
            (HEADER_IS(line, len, "content-length") && !zero_length(line, len)))
            return RP_SKIP;
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

enum rp_verdict replay_classify(const unsigned char *b, size_t n, bool first)
{
    if (n == 0)
        return RP_HTTP; /* nothing yet: the next bytes decide */
    if (b[0] == 22)
        return first ? tls(b, n) : RP_NEVER;
    return http(b, n);
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
