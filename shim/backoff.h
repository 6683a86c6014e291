/* backoff.h: delays between retries (exponential, capped, jittered). Pure:
 * the random source is an argument, so tests are deterministic. */
#ifndef RESHIM_BACKOFF_H
#define RESHIM_BACKOFF_H

#include <stdint.h>

#include "config.h"

struct backoff {
    uint64_t base_ns;
    uint64_t max_ns;
    enum reshim_jitter jitter;
};

/* Nominal delay before retry number attempt+1: min(max, base * 2^attempt). */
uint64_t backoff_nominal(const struct backoff *b, unsigned attempt);

/* The jittered delay. attempt counts from 0 (the first retry); prev_ns is the
 * previous delay (decorrelated jitter only; 0 before the first retry); rnd is
 * a uniformly random 64-bit value.
 *   equal: U(d/2, d)   full: U(0, d)   none: d
 *   decorrelated: min(max, U(base, 3 * prev))  (AWS "Exponential Backoff And Jitter") */
uint64_t backoff_delay(const struct backoff *b, unsigned attempt, uint64_t prev_ns, uint64_t rnd);

/* How long the backoff of `retries` retries lasts at most in nominal delays
 * (the sum of backoff_nominal for each), but no longer than deadline_ns. */
uint64_t backoff_span(const struct backoff *b, unsigned retries, uint64_t deadline_ns);

#endif
