/* test_replay_proto.c: unit tests of shim/replay_proto.c: which bytes sent
 * since the last byte received may be sent again (libreshim(7), RESHIM_REPLAY):
 * one safe bodiless HTTP/1.x request or a prefix of one, a lone TLS
 * ClientHello on a connection that received nothing; never a body, an
 * unsafe method, a pipelined second request, an upgrade or another
 * protocol. Every prefix of a replayable message is replayable too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "replay_proto.h"

static enum rp_verdict cls(const char *s)
{
    return replay_classify((const unsigned char *)s, strlen(s), true, NULL);
}

/* Every prefix of s gets verdict v, and so does s. */
static void prefixes(const char *s, enum rp_verdict v)
{
    size_t n = strlen(s);
    for (size_t i = 1; i <= n; i++) {
        enum rp_verdict got = replay_classify((const unsigned char *)s, i, true, NULL);
        if (got != v)
            fail_msg("prefix %zu of \"%s\": %s, not %s", i, s, replay_verdict_name(got),
                     replay_verdict_name(v));
    }
}

/* s sent in two pieces, cut after k bytes, for every k: judged in two calls
 * (the second taking up where the first stopped, as replay.c does), the
 * verdict is the one on all of s at once; a first piece that is not
 * replayable ends it there (nothing after it is judged). */
static void pieces(const char *s)
{
    const unsigned char *b = (const unsigned char *)s;
    size_t n = strlen(s);
    enum rp_verdict whole = replay_classify(b, n, true, NULL);
    for (size_t k = 1; k < n; k++) {
        uint32_t mark = 0;
        if (replay_classify(b, k, true, &mark) != RP_HTTP)
            continue;
        enum rp_verdict got = replay_classify(b, n, true, &mark);
        if (got != whole)
            fail_msg("\"%s\" cut after %zu: %s, not %s", s, k, replay_verdict_name(got),
                     replay_verdict_name(whole));
    }
}

static void test_in_pieces(void **state)
{
    (void)state;
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
        "GET /a/long/path?with=a&query=1 HTTP/1.1\r\nHost: example.org\r\n"
        "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n",
        "HEAD / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        pieces(reqs[i]);
    /* The verdicts themselves (the cut ones must agree with these). */
    assert_int_equal(cls(reqs[1]), RP_HTTP);
    assert_int_equal(cls(reqs[3]), RP_SKIP);
    assert_int_equal(cls(reqs[4]), RP_NEVER);
    assert_int_equal(cls(reqs[6]), RP_NEVER);
    assert_int_equal(cls(reqs[7]), RP_NEVER);
    assert_int_equal(cls(reqs[8]), RP_NEVER);
}

static void test_safe_requests(void **state)
{
    (void)state;
    prefixes("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n", RP_HTTP);
    prefixes("HEAD /x?y=1 HTTP/1.0\r\n\r\n", RP_HTTP);
    prefixes("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", RP_HTTP);
    prefixes("TRACE / HTTP/1.1\r\n\r\n", RP_HTTP);
    assert_int_equal(cls("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), RP_HTTP);
    assert_int_equal(cls("GET / HTTP/1.1\r\ncontent-length:  000 \r\n\r\n"), RP_HTTP);
    /* Nothing sent yet: the next bytes decide. */
    assert_int_equal(replay_classify((const unsigned char *)"", 0, false, NULL), RP_HTTP);
}

static void test_skipped_requests(void **state)
{
    (void)state;
    assert_int_equal(cls("POST / HTTP/1.1\r\n\r\n"), RP_SKIP);
    assert_int_equal(cls("PUT /k HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), RP_SKIP);
    assert_int_equal(cls("DELETE /k HTTP/1.1\r\n"), RP_SKIP);
    assert_int_equal(cls("PATCH /k HTTP/1.1\r\n"), RP_SKIP);
    assert_int_equal(cls("PO"), RP_SKIP);
    /* A safe method with a body, or waiting for 100-continue. */
    assert_int_equal(cls("GET / HTTP/1.1\r\nContent-Length: 5\r\n"), RP_SKIP);
    assert_int_equal(cls("GET / HTTP/1.1\r\nContent-Length: x\r\n"), RP_SKIP);
    assert_int_equal(cls("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), RP_SKIP);
    assert_int_equal(cls("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"), RP_SKIP);
}

static void test_never(void **state)
{
    (void)state;
    /* Two requests pipelined, or anything after the header section. */
    assert_int_equal(cls("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), RP_NEVER);
    assert_int_equal(cls("GET /a HTTP/1.1\r\n\r\nG"), RP_NEVER);
    assert_int_equal(cls("CONNECT a:443 HTTP/1.1\r\n\r\n"), RP_NEVER);
    assert_int_equal(cls("CON"), RP_NEVER);
    assert_int_equal(cls("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"), RP_NEVER);
    assert_int_equal(cls("GET / HTTP/2.0\r\n\r\n"), RP_NEVER);
    assert_int_equal(cls("GET / HTTP/1.1x\r\n\r\n"), RP_NEVER);
    assert_int_equal(cls("GET / HTTP/1.1\n\n"), RP_NEVER);
    assert_int_equal(cls("GET  / HTTP/1.1\r\n"), RP_NEVER);
    assert_int_equal(cls("get / HTTP/1.1\r\n"), RP_NEVER);
    assert_int_equal(cls("PROPFIND / HTTP/1.1\r\n"), RP_NEVER);
    /* Other protocols: redis, SMTP, binary. */
    assert_int_equal(cls("*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"), RP_NEVER);
    assert_int_equal(cls("EHLO example.org\r\n"), RP_NEVER);
    assert_int_equal(replay_classify((const unsigned char *)"\0\1", 2, true, NULL), RP_NEVER);
}

/* A ClientHello of body length len in one record (bytes past the header
 * are filler: only the framing is judged). */
static size_t hello(unsigned char *b, size_t len)
{
    size_t rl = len + 4;
    unsigned char h[] = {22, 3, 1, (unsigned char)(rl >> 8), (unsigned char)rl,
                         1, 0, (unsigned char)(len >> 8), (unsigned char)len};
    memcpy(b, h, sizeof h);
    memset(b + sizeof h, 0x42, len);
    return sizeof h + len;
}

static void test_tls(void **state)
{
    (void)state;
    unsigned char b[1024];
    size_t n = hello(b, 300);
    for (size_t i = 1; i <= n; i++)
        if (replay_classify(b, i, true, NULL) != RP_HELLO)
            fail_msg("prefix %zu of a ClientHello: not replayable", i);
    /* Only on a connection that never received anything. */
    assert_int_equal(replay_classify(b, n, false, NULL), RP_NEVER);
    /* Anything after it (early data, a ChangeCipherSpec, a second record
     * with more handshake) is never replayed. */
    unsigned char more[] = {23, 3, 3, 0, 1, 0};
    memcpy(b + n, more, sizeof more);
    assert_int_equal(replay_classify(b, n + sizeof more, true, NULL), RP_NEVER);
    unsigned char hs2[] = {22, 3, 3, 0, 4, 20, 0, 0, 0};
    memcpy(b + n, hs2, sizeof hs2);
    assert_int_equal(replay_classify(b, n + sizeof hs2, true, NULL), RP_NEVER);
    /* A handshake that is not a ClientHello (a ServerHello from a client?). */
    n = hello(b, 10);
    b[5] = 2;
    assert_int_equal(replay_classify(b, n, true, NULL), RP_NEVER);
    /* A ClientHello split over two records is still one message. */
    unsigned char split[] = {22, 3, 1, 0, 3, 1, 0, 0,   22, 3, 1, 0, 3, 2, 0x42, 0x42};
    assert_int_equal(replay_classify(split, sizeof split, true, NULL), RP_HELLO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safe_requests),
        cmocka_unit_test(test_skipped_requests),
        cmocka_unit_test(test_never),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_in_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
