/* breaker.h: per-destination guards against hammering a dead backend: the
 * circuit breaker (RESHIM_BREAKER) and the retry budget (RESHIM_RETRY_BUDGET).
 * Both are written so that they never defeat the rescue they guard: the
 * breaker opens for a destination that has failed for longer than a call's
 * retries could wait (a restart shorter than that is what retries are for),
 * and the budget bounds retries that fail (a storm), never the patience of a
 * client whose retries succeed. Lock-free (relaxed atomics, CAS), safe in
 * signal context; clock and random values are arguments, so the logic is
 * tested without LD_PRELOAD (tests/unit/test_breaker.c). */
#ifndef RESHIM_BREAKER_H
#define RESHIM_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define BREAKER_OPEN_MIN_NS 1000000000ull   /* first open period: 1 s */
#define BREAKER_OPEN_MAX_NS 30000000000ull  /* doubling up to 30 s */
#define BREAKER_AFTER_MIN_NS 1000000000ull  /* never opens on less than 1 s of failure */

enum breaker_state { BR_CLOSED, BR_OPEN, BR_HALF_OPEN };

struct breaker_params {
    unsigned threshold; /* failed calls in a row (RESHIM_BREAKER); 0 = off */
    uint64_t after_ns;  /* ... and no success for this long (breaker_after_ns) */
};

struct breaker {
    _Atomic uint32_t consecutive;   /* failed calls in a row */
    _Atomic uint32_t opens;         /* times opened, ever */
    _Atomic uint64_t last_success;  /* monotonic ns of the last successful call; 0 = none */
    _Atomic uint64_t failing_since; /* monotonic ns the current run of failures began; 0 = none */
    _Atomic uint64_t open_until;    /* monotonic ns; 0 = closed */
    _Atomic uint64_t open_len;      /* length of the current/last open period */
    _Atomic uint32_t probing;       /* a half-open probe call is running */
};

/* How long a destination must have failed before its breaker opens: as long
 * as one call's retries can wait (retry_span_ns: the nominal backoff delays
 * of every retry, within the deadline), and at least BREAKER_AFTER_MIN_NS. An
 * outage shorter than that is what the retries rescue; one longer than that
 * no call's retries could outlast. */
uint64_t breaker_after_ns(uint64_t retry_span_ns);

/* May this call retry? false while open; once the open period is over, one
 * call at a time (the probe) may. threshold 0: always true. *probe tells the
 * caller it holds the probe and must hand it back through breaker_record (or
 * breaker_drop_probe when the call's outcome will never be known). */
bool breaker_allow_retry(struct breaker *b, const struct breaker_params *p, uint64_t now,
                         bool *probe);
void breaker_drop_probe(struct breaker *b, bool *probe);

/* The final outcome of one call (after its retries); started is when the
 * call began (its first attempt failed then, if it failed). Opens the
 * breaker when threshold calls in a row failed and nothing succeeded since
 * p->after_ns ago or longer; re-opens it (period doubled, +-20 % jitter) when
 * a probe, or any call after the open period, fails; closes it on any
 * success. Returns true when this call opened it. */
bool breaker_record(struct breaker *b, const struct breaker_params *p, bool failed, bool probe,
                    uint64_t started, uint64_t now, uint64_t rnd);

enum breaker_state breaker_state(struct breaker *b, const struct breaker_params *p, uint64_t now);
const char *breaker_state_name(enum breaker_state s);

/* The retry budget bounds what retries can add to the load of a backend that
 * keeps failing, and never the retries that succeed:
 * - a floor (Envoy's min_retry_concurrency): RBUDGET_FLOOR calls at a time
 *   may retry whatever the budget holds, so a client making one call at a
 *   time is never refused a retry by it;
 * - beyond the floor, each retry takes a token. Tokens start at RBUDGET_CAP;
 *   every call gives back `fraction` of one (RESHIM_RETRY_BUDGET), and a call
 *   whose retries succeed gives back the tokens it took (those retries were
 *   patience, not load that failed). Retries that keep failing (a dead or
 *   overloaded backend) drain it: then only `fraction` of calls, plus the
 *   floor, may retry.
 * No clock: a process that makes one call an hour is judged as one that makes
 * a call a millisecond. */
#define RBUDGET_FLOOR 3    /* calls retrying at the same time on the floor */
#define RBUDGET_CAP 100    /* tokens when full (a burst of failing retries) */

struct retry_budget {
    _Atomic int64_t spent;      /* thousandths of a token below RBUDGET_CAP (0 = full) */
    _Atomic uint32_t on_floor;  /* calls retrying on the floor now */
};

/* What one call holds of the budget. Zero = nothing. */
struct rbudget_hold {
    bool floor;
    unsigned tokens;
};

void rbudget_note_call(struct retry_budget *rb, double fraction);
/* One more retry for a call: a call on the floor keeps its place; else it
 * takes a free place on the floor, else a token. false: refused. */
bool rbudget_take(struct retry_budget *rb, struct rbudget_hold *h);
/* The call's retries are over: it leaves the floor, and when they succeeded
 * its tokens go back. *h is zeroed (a second call does nothing). */
void rbudget_done(struct retry_budget *rb, struct rbudget_hold *h, bool succeeded);
/* Whole tokens left (for stats). */
unsigned rbudget_tokens(struct retry_budget *rb);

#endif
