/* breaker.c: circuit breaker and retry budget per destination. Lock-free;
 * never allocates; time and randomness come from the caller. */
#include "breaker.h"

#define RLX memory_order_relaxed

bool breaker_allow_retry(struct breaker *b, unsigned threshold, uint64_t now, bool *probe)
{
    *probe = false;
    if (!threshold)
        return true;
    uint64_t until = atomic_load_explicit(&b->open_until, RLX);
    if (until == 0)
        return true;
    if (now < until)
        return false;
    uint32_t expected = 0; /* half-open: one probe at a time */
    if (atomic_compare_exchange_strong_explicit(&b->probing, &expected, 1, RLX, RLX)) {
        *probe = true;
        return true;
    }
    return false;
}

static uint64_t jittered(uint64_t len, uint64_t rnd)
{
    /* len * U(0.8, 1.2) */
    uint64_t span = len / 5 * 2;
    return len - len / 5 + (span ? rnd % (span + 1) : 0);
}

bool breaker_record(struct breaker *b, unsigned threshold, bool failed, bool probe,
                    uint64_t now, uint64_t rnd)
{
    bool opened = false;
    if (!threshold)
        return false;
    if (!failed) {
        atomic_store_explicit(&b->consecutive, 0, RLX);
        atomic_store_explicit(&b->open_until, 0, RLX);
        atomic_store_explicit(&b->open_len, 0, RLX);
    } else {
        uint32_t n = atomic_fetch_add_explicit(&b->consecutive, 1, RLX) + 1;
        uint64_t until = atomic_load_explicit(&b->open_until, RLX);
        bool reopen = probe || (until != 0 && now >= until);
        if (reopen || (until == 0 && n >= threshold)) {
            uint64_t len = atomic_load_explicit(&b->open_len, RLX);
            len = len == 0 ? BREAKER_OPEN_MIN_NS : len * 2;
            if (len > BREAKER_OPEN_MAX_NS)
                len = BREAKER_OPEN_MAX_NS;
            /* Of the callers that saw this state, only one opens (or re-opens)
             * it: others would count it twice and double the period again. */
            if (atomic_compare_exchange_strong_explicit(&b->open_until, &until,
                                                        now + jittered(len, rnd), RLX, RLX)) {
                atomic_store_explicit(&b->open_len, len, RLX);
                atomic_fetch_add_explicit(&b->opens, 1, RLX);
                opened = true;
            }
        }
    }
    if (probe)
        atomic_store_explicit(&b->probing, 0, RLX);
    return opened;
}

enum breaker_state breaker_state(struct breaker *b, unsigned threshold, uint64_t now)
{
    if (!threshold)
        return BR_CLOSED;
    uint64_t until = atomic_load_explicit(&b->open_until, RLX);
    if (until == 0)
        return BR_CLOSED;
    return now < until ? BR_OPEN : BR_HALF_OPEN;
}

const char *breaker_state_name(enum breaker_state s)
{
    return s == BR_OPEN ? "open" : s == BR_HALF_OPEN ? "half-open" : "closed";
}

static void rotate(struct retry_budget *rb, uint64_t now)
{
    uint64_t w = now / RBUDGET_WINDOW_NS;
    uint64_t cur = atomic_load_explicit(&rb->window, RLX);
    if (w == cur)
        return;
    if (!atomic_compare_exchange_strong_explicit(&rb->window, &cur, w, RLX, RLX))
        return; /* another thread rotated */
    uint32_t c = atomic_exchange_explicit(&rb->calls, 0, RLX);
    uint32_t r = atomic_exchange_explicit(&rb->retries, 0, RLX);
    bool adjacent = w == cur + 1;
    atomic_store_explicit(&rb->prev_calls, adjacent ? c : 0, RLX);
    atomic_store_explicit(&rb->prev_retries, adjacent ? r : 0, RLX);
}

void rbudget_note_call(struct retry_budget *rb, uint64_t now)
{
    rotate(rb, now);
    atomic_fetch_add_explicit(&rb->calls, 1, RLX);
}

bool rbudget_take(struct retry_budget *rb, double fraction, uint64_t now)
{
    rotate(rb, now);
    /* Weight the previous window by how much of it still lies within 10 s. */
    double into = (double)(now % RBUDGET_WINDOW_NS) / (double)RBUDGET_WINDOW_NS;
    double w = 1.0 - into;
    double calls = atomic_load_explicit(&rb->calls, RLX) +
                   w * atomic_load_explicit(&rb->prev_calls, RLX);
    double retries = atomic_load_explicit(&rb->retries, RLX) +
                     w * atomic_load_explicit(&rb->prev_retries, RLX);
    double allowed = fraction * calls;
    if (allowed < RBUDGET_FLOOR)
        allowed = RBUDGET_FLOOR;
    if (retries + 1 > allowed + 1e-9)
        return false;
    atomic_fetch_add_explicit(&rb->retries, 1, RLX);
    return true;
}
