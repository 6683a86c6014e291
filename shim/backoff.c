/* backoff.c: the delay before each retry. Pure and async-signal-safe. */
#include "backoff.h"

uint64_t backoff_nominal(const struct backoff *b, unsigned attempt)
{
    uint64_t d = b->base_ns;
    for (unsigned i = 0; i < attempt && d < b->max_ns; i++)
        d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
    return d < b->max_ns ? d : b->max_ns;
}

/* Uniform in [lo, hi]. */
static uint64_t uniform(uint64_t lo, uint64_t hi, uint64_t rnd)
{
    if (hi <= lo)
        return lo;
    uint64_t span = hi - lo;
    return lo + (span == UINT64_MAX ? rnd : rnd % (span + 1));
}

uint64_t backoff_delay(const struct backoff *b, unsigned attempt, uint64_t prev_ns, uint64_t rnd)
{
    uint64_t d = backoff_nominal(b, attempt);
    switch (b->jitter) {
    case JITTER_NONE:
        return d;
    case JITTER_FULL:
        return uniform(0, d, rnd);
    case JITTER_DECORRELATED: {
        uint64_t prev = prev_ns ? prev_ns : b->base_ns;
        uint64_t hi = prev > UINT64_MAX / 3 ? UINT64_MAX : prev * 3;
        uint64_t v = uniform(b->base_ns, hi, rnd);
        return v < b->max_ns ? v : b->max_ns;
    }
    case JITTER_EQUAL:
    default:
        return uniform(d / 2, d, rnd);
    }
}

uint64_t backoff_span(const struct backoff *b, unsigned retries, uint64_t deadline_ns)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < retries && sum < deadline_ns; i++) {
        uint64_t d = backoff_nominal(b, i);
        sum = d > UINT64_MAX - sum ? UINT64_MAX : sum + d;
    }
    return sum < deadline_ns ? sum : deadline_ns;
}
