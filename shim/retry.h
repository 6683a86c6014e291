/* retry.h: the retry session. One session per connect call decides whether
 * a failure is retried (errno policy, deadline, destination filter, breaker,
 * budget), counts what it did and logs it, for blocking connects (net.c) and
 * non-blocking ones (nbconn.c) alike: those mechanisms only wait and act.
 * Also the accounting of every connect's final outcome, retried or not.
 * Never blocks, never allocates; safe under nbconn's lock and in signal
 * context (relaxed atomics only). */
#ifndef RESHIM_RETRY_H
#define RESHIM_RETRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "breaker.h"
#include "fdtab.h"
#include "policy.h"

struct retry_session {
    uint16_t dest;
    uint8_t family;
    bool nonblocking;      /* says so in the log lines */
    bool guards_checked;   /* filter and breaker asked (once per call) */
    bool probe;            /* holds the breaker's half-open probe */
    bool ended;            /* retry_end or retry_abandon done */
    uint8_t replay;        /* 0: a connect; 1 + enum replay_case: a replay (replay.c) */
    struct rbudget_hold hold;
    struct retry_call call;
    uint64_t start_ns;
    const char *why;       /* why retrying stopped (for the "gave up" line) */
};

/* A connect call to dest (0: none known) starts: counted, and it adds its
 * share to the destination's retry budget. */
void retry_count_call(uint16_t dest);

/* A session for that call; deadline_ns is when retrying must stop. */
void retry_begin(struct retry_session *s, uint16_t dest, int family, bool nonblocking,
                 uint64_t start_ns, uint64_t deadline_ns);

/* A replay session (replay.c): a connection of dest that broke before the
 * peer could act on it (case: enum replay_case) is connected again. Counted
 * as replays, not as connect retries; no new call is counted. */
void retry_begin_replay(struct retry_session *s, uint16_t dest, int family, int replay_case,
                        uint64_t start_ns, uint64_t deadline_ns);

/* The call failed with err. May it be retried? On true the retry is counted
 * and *delay_ns is the backoff to wait before the next attempt. On false,
 * s->why says why not and the caller ends the session with the failure. */
bool retry_next(struct retry_session *s, const struct sockaddr *addr, socklen_t len, int err,
                uint64_t now, uint64_t *delay_ns);

/* The call's final outcome (err 0: connected): counters, breaker, budget,
 * and a "recovered" or "gave up" line when it retried. Once per session. */
void retry_end(struct retry_session *s, int err);
/* The outcome will be learned elsewhere, or never (fd closed, a signal): the
 * session hands back what it holds (the probe, its place on the floor). */
void retry_abandon(struct retry_session *s);

/* The outcome of a connect that had no session of its own (not retried), or
 * whose pending outcome the app learned itself: counted once. */
void retry_outcome(uint16_t dest, int err, uint64_t start_ns);
/* The app has just learned the outcome of a pending connect on fd (err 0:
 * connected): the fd's phase moves on and the outcome is counted, once. */
void retry_connect_learned(int fd, struct fdinfo fi, int err);

/* The breaker parameters of this configuration (threshold, after_ns). */
struct breaker_params retry_breaker_params(void);

#endif
