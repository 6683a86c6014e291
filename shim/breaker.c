/* breaker.c: circuit breaker and retry budget per destination (see
 * breaker.h). Lock-free; never allocates; time and randomness come from the
 * caller. */
#include "breaker.h"

#define RLX memory_order_relaxed
#define MILLI 1000

uint64_t breaker_after_ns(uint64_t retry_span_ns)
{
    return retry_span_ns > BREAKER_AFTER_MIN_NS ? retry_span_ns : BREAKER_AFTER_MIN_NS;
}

bool breaker_allow_retry(struct breaker *b, const struct breaker_params *p, uint64_t now,
                         bool *probe)
{
    *probe = false;
    if (!p->threshold)
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

void breaker_drop_probe(struct breaker *b, bool *probe)
{
    if (*probe)
        atomic_store_explicit(&b->probing, 0, RLX);
    *probe = false;
}

static uint64_t jittered(uint64_t len, uint64_t rnd)
{
    /* len * U(0.8, 1.2) */
    uint64_t span = len / 5 * 2;
    return len - len / 5 + (span ? rnd % (span + 1) : 0);
}

bool breaker_record(struct breaker *b, const struct breaker_params *p, bool failed, bool probe,
                    uint64_t started, uint64_t now, uint64_t rnd)
{
    bool opened = false;
    if (!p->threshold)
        return false;
    if (!failed) {
        atomic_store_explicit(&b->last_success, now, RLX);
        atomic_store_explicit(&b->consecutive, 0, RLX);
        atomic_store_explicit(&b->failing_since, 0, RLX);
        atomic_store_explicit(&b->open_until, 0, RLX);
        atomic_store_explicit(&b->open_len, 0, RLX);
    } else {
        uint32_t n = atomic_fetch_add_explicit(&b->consecutive, 1, RLX) + 1;
        /* The run of failures began with the earliest failed call that
         * started after the last success. */
        uint64_t first = started && started <= now ? started : now;
        uint64_t ok = atomic_load_explicit(&b->last_success, RLX);
        if (first < ok)
            first = ok;
        uint64_t since = atomic_load_explicit(&b->failing_since, RLX);
        while (since == 0 || first < since)
            if (atomic_compare_exchange_weak_explicit(&b->failing_since, &since, first, RLX, RLX)) {
                since = first;
                break;
            }
        uint64_t until = atomic_load_explicit(&b->open_until, RLX);
        bool reopen = probe || (until != 0 && now >= until);
        bool dead = n >= p->threshold && since && now - since >= p->after_ns;
        if (reopen || (until == 0 && dead)) {
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

enum breaker_state breaker_state(struct breaker *b, const struct breaker_params *p, uint64_t now)
{
    if (!p->threshold)
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

/* ---- retry budget ------------------------------------------------------- */

/* spent -= amount, never below 0 (full). */
static void give_back(struct retry_budget *rb, int64_t amount)
{
    int64_t cur = atomic_load_explicit(&rb->spent, RLX);
    for (;;) {
        int64_t next = cur > amount ? cur - amount : 0;
        if (next == cur ||
            atomic_compare_exchange_weak_explicit(&rb->spent, &cur, next, RLX, RLX))
            return;
    }
}

void rbudget_note_call(struct retry_budget *rb, double fraction)
{
    if (atomic_load_explicit(&rb->spent, RLX) > 0 && fraction > 0)
        give_back(rb, fraction >= RBUDGET_CAP ? (int64_t)RBUDGET_CAP * MILLI
                                              : (int64_t)(fraction * MILLI + 0.5));
}

bool rbudget_take(struct retry_budget *rb, struct rbudget_hold *h)
{
    if (h->floor)
        return true;
    uint32_t n = atomic_load_explicit(&rb->on_floor, RLX);
    while (n < RBUDGET_FLOOR)
        if (atomic_compare_exchange_weak_explicit(&rb->on_floor, &n, n + 1, RLX, RLX)) {
            h->floor = true;
            return true;
        }
    int64_t cur = atomic_load_explicit(&rb->spent, RLX);
    while (cur + MILLI <= (int64_t)RBUDGET_CAP * MILLI)
        if (atomic_compare_exchange_weak_explicit(&rb->spent, &cur, cur + MILLI, RLX, RLX)) {
            h->tokens++;
            return true;
        }
    return false;
}

void rbudget_done(struct retry_budget *rb, struct rbudget_hold *h, bool succeeded)
{
    if (h->floor)
        atomic_fetch_sub_explicit(&rb->on_floor, 1, RLX);
    if (succeeded && h->tokens)
        give_back(rb, (int64_t)h->tokens * MILLI);
    h->floor = false;
    h->tokens = 0;
}

unsigned rbudget_tokens(struct retry_budget *rb)
{
    int64_t left = (int64_t)RBUDGET_CAP * MILLI - atomic_load_explicit(&rb->spent, RLX);
    return left > 0 ? (unsigned)(left / MILLI) : 0;
}
