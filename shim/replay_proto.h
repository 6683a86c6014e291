/* replay_proto.h: may the bytes sent on a connection since the last byte it
 * received be sent again on a new connection (libreshim(7), RESHIM_REPLAY)? Pure:
 * bytes in, a verdict out; never allocates, never reads past len. Knows two
 * messages a peer cannot act on before they are complete or answered: one
 * bodiless HTTP/1.x request with a safe method (RFC 9110 9.2.1/9.2.2: GET,
 * HEAD, OPTIONS, TRACE), and a TLS ClientHello sent before anything was
 * received. Unit-tested in tests/unit/test_replay_proto.c. */
#ifndef RESHIM_REPLAY_PROTO_H
#define RESHIM_REPLAY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rp_verdict {
    RP_HTTP,   /* one safe bodiless HTTP/1.x request, complete or a prefix of one */
    RP_HELLO,  /* a TLS ClientHello, complete or a prefix of one (first bytes only) */
    RP_SKIP,   /* an HTTP/1.x request that must not be replayed (method, body,
                * Expect): the next request after a response may be */
    RP_NEVER,  /* anything else: another protocol, several requests pipelined,
                * CONNECT, Upgrade, TLS beyond the ClientHello */
};

/* b[0..n) is everything sent since the last byte received. first: nothing
 * was ever received on this connection (a ClientHello counts only then).
 * mark (NULL: judge from the start): 0 for the first call on these bytes;
 * on RP_HTTP it is set to where the next call, given the same bytes and
 * more after them, takes up the judging (a request sent in pieces is read
 * once, not again from its start at each piece). */
enum rp_verdict replay_classify(const unsigned char *b, size_t n, bool first, uint32_t *mark);

const char *replay_verdict_name(enum rp_verdict v);

#endif
