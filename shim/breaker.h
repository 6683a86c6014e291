/* breaker.h: per-destination guards against hammering a dead backend: the
 * circuit breaker (RESHIM_BREAKER) and the retry budget (RESHIM_RETRY_BUDGET).
 * Lock-free (relaxed atomics, CAS), safe in signal context; clock and random
 * values are arguments, so the logic is tested without LD_PRELOAD. */
#ifndef RESHIM_BREAKER_H
#define RESHIM_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define BREAKER_OPEN_MIN_NS 5000000000ull   /* first open period: 5 s */
#define BREAKER_OPEN_MAX_NS 60000000000ull  /* doubling up to 60 s */

enum breaker_state { BR_CLOSED, BR_OPEN, BR_HALF_OPEN };

struct breaker {
    _Atomic uint32_t consecutive;   /* failed calls in a row */
    _Atomic uint32_t opens;         /* times opened, ever */
    _Atomic uint64_t open_until;    /* monotonic ns; 0 = closed */
    _Atomic uint64_t open_len;      /* length of the current/last open period */
    _Atomic uint32_t probing;       /* a half-open probe call is running */
};

/* May this call retry? false while open; once the open period is over, one
 * call at a time (the probe) may. threshold 0: always true. *probe tells the
 * caller it holds the probe and must report through breaker_record. */
bool breaker_allow_retry(struct breaker *b, unsigned threshold, uint64_t now, bool *probe);

/* The final outcome of one call (after its retries). Opens the breaker after
 * threshold failures in a row, re-opens it (period doubled, +-20 % jitter)
 * when a probe fails, closes it on any success. Returns true when this call
 * opened it. */
bool breaker_record(struct breaker *b, unsigned threshold, bool failed, bool probe,
                    uint64_t now, uint64_t rnd);

enum breaker_state breaker_state(struct breaker *b, unsigned threshold, uint64_t now);
const char *breaker_state_name(enum breaker_state s);

#define RBUDGET_WINDOW_NS 10000000000ull /* 10 s */
#define RBUDGET_FLOOR 10                 /* retries always allowed per window */

/* Sliding-window estimate over two fixed 10 s windows. */
struct retry_budget {
    _Atomic uint64_t window;        /* index of the current window (now / 10 s) */
    _Atomic uint32_t calls, retries;
    _Atomic uint32_t prev_calls, prev_retries;
};

void rbudget_note_call(struct retry_budget *rb, uint64_t now);
/* Takes one retry if retries (estimated over the last 10 s) stay within
 * max(RBUDGET_FLOOR, fraction * calls). */
bool rbudget_take(struct retry_budget *rb, double fraction, uint64_t now);

#endif
