/* policy.h: which outcomes are retried, and whether one more retry fits.
 * Pure: errno values, attempts and clocks in, a verdict out (libreshim(7),
 * WHAT IS RETRIED). */
#ifndef RESHIM_POLICY_H
#define RESHIM_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"

enum retry_class {
    RC_NEVER,       /* not transient, or a retry could change what the peer sees */
    RC_RETRY,       /* transient: retry with backoff */
    RC_RETRY_ONCE,  /* ETIMEDOUT: at most one retry per call */
    RC_RETRY_SLOW,  /* EADDRNOTAVAIL: local port exhaustion, delays floored at 100 ms */
};

/* A failed connect on a stream socket of this family (AF_INET, AF_INET6, AF_UNIX). */
enum retry_class policy_connect_class(int family, int err);

/* Data path: only ENOBUFS/ENOMEM, and only on blocking sockets. */
bool policy_data_retryable(int err);
/* A data-path outcome that counts as a failure (not EAGAIN, EWOULDBLOCK, EINTR). */
bool policy_data_failure(int err);

/* getaddrinfo: EAI_AGAIN only; EAI_NONAME and EAI_FAIL never. */
bool policy_dns_retryable(int eai);

enum retry_verdict {
    RV_RETRY,
    RV_NOT_RETRYABLE,
    RV_ATTEMPTS,    /* RESHIM_RETRIES used up (or ETIMEDOUT already retried once) */
    RV_DEADLINE,    /* the next delay would end past the deadline */
};

struct retry_call {
    unsigned retries;     /* retries done so far */
    unsigned timeouts;    /* ETIMEDOUT retries done so far */
    uint64_t prev_delay;  /* last delay slept (decorrelated jitter) */
    uint64_t deadline_ns; /* monotonic time when retrying must stop */
};

/* Decides whether failure err may be retried once more; on RV_RETRY, *delay_ns
 * is how long to wait first. Does not update call (the caller does once it
 * really retries). */
enum retry_verdict policy_connect_next(const struct backoff *b, unsigned max_retries,
                                       const struct retry_call *call, int family, int err,
                                       uint64_t now_ns, uint64_t rnd, uint64_t *delay_ns);

const char *policy_verdict_name(enum retry_verdict v);

#endif
