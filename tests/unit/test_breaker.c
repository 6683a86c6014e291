/* test_breaker.c: unit tests of shim/breaker.c: the circuit breaker
 * (threshold, open period with jitter, half-open probe, doubling) and the
 * retry budget (floor, share of calls, sliding windows), with injected time;
 * plus multi-threaded runs for TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include "breaker.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define W RBUDGET_WINDOW_NS

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* The rnd that gives the longest period of len: len * 1.2. */
static uint64_t rnd_top(uint64_t len)
{
    return len / 5 * 2;
}

static void fail_n(struct breaker *b, unsigned threshold, unsigned n, uint64_t now)
{
    for (unsigned i = 0; i < n; i++)
        assert_false(breaker_record(b, threshold, true, false, now, 0));
}

/* Is retrying allowed right now (without taking a probe)? */
static enum breaker_state st(struct breaker *b, unsigned threshold, uint64_t now)
{
    return breaker_state(b, threshold, now);
}

/* ---- breaker ---- */

static void test_opens_after_threshold(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 100 * SEC;
    bool probe = true;
    for (unsigned i = 1; i < 5; i++) {
        assert_false(breaker_record(&b, 5, true, false, t0, 0));
        assert_int_equal(st(&b, 5, t0), BR_CLOSED);
        assert_true(breaker_allow_retry(&b, 5, t0, &probe));
        assert_false(probe);
    }
    assert_int_equal(b.opens, 0);
    /* The fifth failure in a row opens it, and says so once. */
    assert_true(breaker_record(&b, 5, true, false, t0, 0));
    assert_int_equal(b.opens, 1);
    assert_int_equal(st(&b, 5, t0), BR_OPEN);
    probe = true;
    assert_false(breaker_allow_retry(&b, 5, t0, &probe));
    assert_false(probe);
    assert_false(breaker_allow_retry(&b, 5, t0 + 3 * SEC, &probe));
    /* More failures while open: not "opened" again, period unchanged. */
    for (int i = 0; i < 10; i++)
        assert_false(breaker_record(&b, 5, true, false, t0 + 1 * SEC, UINT64_MAX));
    assert_int_equal(b.opens, 1);
    assert_int_equal(st(&b, 5, t0 + 4 * SEC - 1), BR_OPEN);
    assert_int_equal(st(&b, 5, t0 + 4 * SEC), BR_HALF_OPEN);

    /* Threshold 1: the first failure opens. */
    struct breaker one;
    memset(&one, 0, sizeof one);
    assert_true(breaker_record(&one, 1, true, false, t0, 0));
    assert_int_equal(st(&one, 1, t0), BR_OPEN);
}

static void test_success_resets_count(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 100 * SEC;
    fail_n(&b, 5, 4, t0);
    assert_false(breaker_record(&b, 5, false, false, t0, 0));
    fail_n(&b, 5, 4, t0);
    assert_int_equal(st(&b, 5, t0), BR_CLOSED);
    assert_true(breaker_record(&b, 5, true, false, t0, 0));
    assert_int_equal(st(&b, 5, t0), BR_OPEN);

    /* Any success closes an open breaker too (a first attempt went through). */
    assert_false(breaker_record(&b, 5, false, false, t0 + 1 * SEC, 0));
    assert_int_equal(st(&b, 5, t0 + 1 * SEC), BR_CLOSED);
    bool probe = true;
    assert_true(breaker_allow_retry(&b, 5, t0 + 1 * SEC, &probe));
    assert_false(probe);
    /* ... and the count starts again from zero. */
    fail_n(&b, 5, 4, t0 + 2 * SEC);
    assert_int_equal(st(&b, 5, t0 + 2 * SEC), BR_CLOSED);
}

static void test_open_period_jitter(void **state)
{
    /* 5 s +-20 %: open for at least 4 s, half-open after at most 6 s. */
    uint64_t seed = 12345;
    for (int i = 0; i < 2000; i++) {
        uint64_t rnd = i == 0 ? 0 : i == 1 ? UINT64_MAX : i == 2 ? rnd_top(5 * SEC)
                                                                 : xorshift(&seed);
        struct breaker b;
        memset(&b, 0, sizeof b);
        const uint64_t t0 = 1000 * SEC + (uint64_t)i;
        fail_n(&b, 3, 2, t0);
        assert_true(breaker_record(&b, 3, true, false, t0, rnd));
        CHECK(st(&b, 3, t0 + 4 * SEC - 1) == BR_OPEN, "rnd %llu: open less than 4 s",
              (unsigned long long)rnd);
        CHECK(st(&b, 3, t0 + 6 * SEC) == BR_HALF_OPEN, "rnd %llu: open more than 6 s",
              (unsigned long long)rnd);
    }
    /* The extremes are exact. */
    struct breaker b;
    memset(&b, 0, sizeof b);
    assert_true(breaker_record(&b, 1, true, false, 50 * SEC, 0));
    assert_int_equal(st(&b, 1, 54 * SEC - 1), BR_OPEN);
    assert_int_equal(st(&b, 1, 54 * SEC), BR_HALF_OPEN);
    memset(&b, 0, sizeof b);
    assert_true(breaker_record(&b, 1, true, false, 50 * SEC, rnd_top(5 * SEC)));
    assert_int_equal(st(&b, 1, 56 * SEC - 1), BR_OPEN);
    assert_int_equal(st(&b, 1, 56 * SEC), BR_HALF_OPEN);
}

static void test_half_open_single_probe(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 100 * SEC;
    fail_n(&b, 2, 1, t0);
    assert_true(breaker_record(&b, 2, true, false, t0, 0)); /* open until t0 + 4 s */
    bool probe = true;
    assert_false(breaker_allow_retry(&b, 2, t0 + 4 * SEC - 1, &probe));
    assert_false(probe);

    const uint64_t t1 = t0 + 4 * SEC;
    assert_int_equal(st(&b, 2, t1), BR_HALF_OPEN);
    assert_true(breaker_allow_retry(&b, 2, t1, &probe));
    assert_true(probe);
    /* While the probe runs, every other caller is refused. */
    for (int i = 0; i < 5; i++) {
        bool p2 = true;
        assert_false(breaker_allow_retry(&b, 2, t1 + (uint64_t)i * SEC, &p2));
        assert_false(p2);
    }
    assert_int_equal(st(&b, 2, t1), BR_HALF_OPEN);
}

static void test_failed_probe_reopens_doubled(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    uint64_t now = 100 * SEC;
    assert_true(breaker_record(&b, 1, true, false, now, 0));
    /* rnd 0: each period is 0.8 of 5, 10, 20, 40, 60 (cap), 60 s. */
    static const uint64_t periods[] = {4 * SEC, 8 * SEC, 16 * SEC, 32 * SEC, 48 * SEC,
                                       48 * SEC, 48 * SEC};
    for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++) {
        CHECK(st(&b, 1, now + periods[i] - 1) == BR_OPEN, "period %zu shorter than %llu s", i,
              (unsigned long long)(periods[i] / SEC));
        now += periods[i];
        assert_int_equal(st(&b, 1, now), BR_HALF_OPEN);
        bool probe = false;
        assert_true(breaker_allow_retry(&b, 1, now, &probe));
        assert_true(probe);
        /* The probe fails: open again, longer; the probe slot is released. */
        assert_true(breaker_record(&b, 1, true, true, now, 0));
        assert_int_equal(b.probing, 0);
        assert_int_equal(b.opens, i + 2);
    }
    /* With the top rnd, the capped period is 72 s (60 s + 20 %). */
    assert_true(breaker_allow_retry(&b, 1, now + 48 * SEC, &(bool){false}));
    now += 48 * SEC;
    assert_true(breaker_record(&b, 1, true, true, now, rnd_top(60 * SEC)));
    assert_int_equal(st(&b, 1, now + 72 * SEC - 1), BR_OPEN);
    assert_int_equal(st(&b, 1, now + 72 * SEC), BR_HALF_OPEN);
}

static void test_successful_probe_closes(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    uint64_t now = 100 * SEC;
    assert_true(breaker_record(&b, 1, true, false, now, 0));
    now += 4 * SEC;
    bool probe = false;
    assert_true(breaker_allow_retry(&b, 1, now, &probe));
    assert_true(probe);
    assert_true(breaker_record(&b, 1, true, true, now, 0)); /* 8 s now */
    now += 8 * SEC;
    assert_true(breaker_allow_retry(&b, 1, now, &probe));
    assert_true(probe);
    assert_false(breaker_record(&b, 1, false, true, now, 0));
    assert_int_equal(st(&b, 1, now), BR_CLOSED);
    assert_int_equal(b.probing, 0);
    /* Closed: everyone may retry, nobody holds a probe. */
    for (int i = 0; i < 3; i++) {
        probe = true;
        assert_true(breaker_allow_retry(&b, 1, now, &probe));
        assert_false(probe);
    }
    /* The next opening starts again from 5 s (not 16 s). */
    assert_true(breaker_record(&b, 1, true, false, now, 0));
    assert_int_equal(st(&b, 1, now + 4 * SEC - 1), BR_OPEN);
    assert_int_equal(st(&b, 1, now + 4 * SEC), BR_HALF_OPEN);
}

static void test_threshold_zero_is_off(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t now = i * SEC;
        assert_false(breaker_record(&b, 0, true, false, now, i));
        bool probe = true;
        assert_true(breaker_allow_retry(&b, 0, now, &probe));
        assert_false(probe);
        assert_int_equal(st(&b, 0, now), BR_CLOSED);
    }
    assert_int_equal(b.opens, 0);

    /* Threshold 0 means off even for a breaker that is open. */
    assert_true(breaker_record(&b, 1, true, false, 5000 * SEC, 0));
    assert_int_equal(st(&b, 1, 5000 * SEC), BR_OPEN);
    bool probe = true;
    assert_true(breaker_allow_retry(&b, 0, 5000 * SEC, &probe));
    assert_false(probe);
    assert_int_equal(st(&b, 0, 5000 * SEC), BR_CLOSED);
    assert_false(breaker_record(&b, 0, true, true, 6000 * SEC, 0));
}

static void test_state_names(void **state)
{
    assert_string_equal(breaker_state_name(BR_CLOSED), "closed");
    assert_string_equal(breaker_state_name(BR_OPEN), "open");
    assert_string_equal(breaker_state_name(BR_HALF_OPEN), "half-open");
}

/* ---- retry budget ---- */

static unsigned take_all(struct retry_budget *rb, double fraction, uint64_t now, unsigned max)
{
    unsigned n = 0;
    while (n < max && rbudget_take(rb, fraction, now))
        n++;
    return n;
}

static void note_n(struct retry_budget *rb, unsigned n, uint64_t now)
{
    for (unsigned i = 0; i < n; i++)
        rbudget_note_call(rb, now);
}

static void test_budget_floor(void **state)
{
    const uint64_t t0 = 1000 * W;
    struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 5, t0);
    assert_int_equal(take_all(&rb, 0.20, t0, 1000), RBUDGET_FLOOR);
    assert_false(rbudget_take(&rb, 0.20, t0 + W - 1)); /* the rest of the window */

    /* No calls at all: still the floor. */
    memset(&rb, 0, sizeof rb);
    assert_int_equal(take_all(&rb, 0.20, t0 + 3 * SEC, 1000), RBUDGET_FLOOR);
    /* A zero share: the floor only. */
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 1000, t0);
    assert_int_equal(take_all(&rb, 0.0, t0, 1000), RBUDGET_FLOOR);
    /* Exactly at the floor: 50 calls * 20 % = 10. */
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 50, t0);
    assert_int_equal(take_all(&rb, 0.20, t0, 1000), 10);
}

static void test_budget_share(void **state)
{
    const uint64_t t0 = 2000 * W;
    struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 1000, t0);
    assert_int_equal(take_all(&rb, 0.20, t0, 1000), 200);
    assert_false(rbudget_take(&rb, 0.20, t0 + 1 * SEC));
    /* More calls make room for more retries: 1005 * 20 % = 201. */
    note_n(&rb, 5, t0 + 2 * SEC);
    assert_true(rbudget_take(&rb, 0.20, t0 + 2 * SEC));
    assert_false(rbudget_take(&rb, 0.20, t0 + 2 * SEC));

    memset(&rb, 0, sizeof rb);
    note_n(&rb, 100, t0);
    assert_int_equal(take_all(&rb, 0.20, t0, 1000), 20);
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 1000, t0);
    assert_int_equal(take_all(&rb, 0.50, t0, 1000), 500);
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 1000, t0);
    assert_int_equal(take_all(&rb, 1.0, t0, 5000), 1000);
}

static void test_budget_sliding(void **state)
{
    const uint64_t t0 = 3000 * W;
    struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 1000, t0);
    assert_int_equal(take_all(&rb, 0.20, t0, 1000), 200);

    /* Start of the next window: the previous one still counts in full. */
    assert_false(rbudget_take(&rb, 0.20, t0 + W));
    /* Halfway: half of it counts (500 calls, 100 retries): still no room. */
    assert_false(rbudget_take(&rb, 0.20, t0 + W + W / 2));
    /* 10 new calls: 510 * 20 % = 102 allowed against 100 taken: two more. */
    note_n(&rb, 10, t0 + W + W / 2);
    assert_int_equal(take_all(&rb, 0.20, t0 + W + W / 2, 1000), 2);
    /* Near the end of the window the old one weighs little: the floor
     * (10) is above 2 + 1 % of 200 retries again. */
    assert_true(rbudget_take(&rb, 0.20, t0 + W + W * 99 / 100));

    /* Calls of the previous window give room in the next one. */
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 100, t0);
    assert_int_equal(take_all(&rb, 0.20, t0 + W, 1000), 20);
    memset(&rb, 0, sizeof rb);
    note_n(&rb, 200, t0);
    /* Halfway through the next: 100 of them count -> 20. */
    assert_int_equal(take_all(&rb, 0.20, t0 + W + W / 2, 1000), 20);
}

static void test_budget_gap_forgets(void **state)
{
    const uint64_t t0 = 4000 * W;
    struct retry_budget a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    note_n(&a, 1000, t0);
    note_n(&b, 1000, t0);
    assert_int_equal(take_all(&a, 0.20, t0, 1000), 200);
    assert_int_equal(take_all(&b, 0.20, t0, 1000), 200);
    /* One window later: still exhausted. */
    assert_false(rbudget_take(&a, 0.20, t0 + W));
    /* Two windows later: the old calls and retries are gone: the floor. */
    assert_int_equal(take_all(&b, 0.20, t0 + 2 * W, 1000), RBUDGET_FLOOR);
    /* Gone with a note_call first too. */
    struct retry_budget c;
    memset(&c, 0, sizeof c);
    note_n(&c, 1000, t0);
    assert_int_equal(take_all(&c, 0.20, t0, 1000), 200);
    note_n(&c, 5, t0 + 5 * W + 1);
    assert_int_equal(take_all(&c, 0.20, t0 + 5 * W + 1, 1000), RBUDGET_FLOOR);
    /* And the earlier, heavy window gives no room two windows on. */
    struct retry_budget d;
    memset(&d, 0, sizeof d);
    note_n(&d, 1000, t0);
    assert_int_equal(take_all(&d, 0.20, t0 + 2 * W, 1000), RBUDGET_FLOOR);
}

/* ---- threads (for TSan) ---- */

#define NTHREADS 8

struct hammer {
    struct breaker b;
    struct retry_budget rb;
    _Atomic uint64_t clock;
    _Atomic int holders;     /* threads holding the probe right now */
    _Atomic int max_holders;
    _Atomic unsigned probes;
    _Atomic unsigned opened;
    pthread_barrier_t start;
};

struct worker {
    struct hammer *h;
    uint64_t seed;
};

static void *hammer_thread(void *arg)
{
    struct worker *w = arg;
    struct hammer *h = w->h;
    pthread_barrier_wait(&h->start);
    for (int i = 0; i < 20000; i++) {
        uint64_t now = atomic_fetch_add(&h->clock, 1 * MS);
        uint64_t rnd = xorshift(&w->seed);
        rbudget_note_call(&h->rb, now);
        bool probe = false;
        if (breaker_allow_retry(&h->b, 3, now, &probe)) {
            (void)rbudget_take(&h->rb, 0.20, now);
            if (probe) {
                atomic_fetch_add(&h->probes, 1);
                int n = atomic_fetch_add(&h->holders, 1) + 1;
                int m = atomic_load(&h->max_holders);
                while (n > m && !atomic_compare_exchange_weak(&h->max_holders, &m, n))
                    ;
                atomic_fetch_sub(&h->holders, 1);
            }
        }
        /* The backend is down for 20 s, up for 20 s (with a few failures):
         * the breaker opens, probes, re-opens and closes many times. */
        bool down = (now / (20 * SEC)) % 2 == 0;
        bool failed = down || (rnd % 8) == 0;
        if (breaker_record(&h->b, 3, failed, probe, now, rnd))
            atomic_fetch_add(&h->opened, 1);
        (void)breaker_state(&h->b, 3, now);
    }
    return NULL;
}

static void test_threads_hammer(void **state)
{
    static struct hammer h;
    memset(&h, 0, sizeof h);
    atomic_store(&h.clock, 1000 * SEC);
    pthread_barrier_init(&h.start, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    struct worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i].h = &h;
        w[i].seed = 0x1234567ull * (uint64_t)(i + 1);
        assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&h.start);
    /* The breaker did open and probe, never two probes at once, and every
     * probe was handed back. */
    assert_true(atomic_load(&h.opened) > 0);
    assert_int_equal(atomic_load(&h.opened), atomic_load(&h.b.opens));
    assert_true(atomic_load(&h.probes) > 0);
    assert_int_equal(atomic_load(&h.max_holders), 1);
    assert_int_equal(atomic_load(&h.b.probing), 0);
}

struct taker {
    struct retry_budget *rb;
    pthread_barrier_t *start;
    uint64_t now;
    unsigned taken;
};

static void *take_thread(void *arg)
{
    struct taker *tk = arg;
    pthread_barrier_wait(tk->start);
    for (int i = 0; i < 100; i++)
        tk->taken += rbudget_take(tk->rb, 0.20, tk->now);
    return NULL;
}

static void test_threads_budget(void **state)
{
    static struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    const uint64_t now = 5000 * W;
    note_n(&rb, 1000, now);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    struct taker tk[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        tk[i] = (struct taker){&rb, &start, now, 0};
        assert_int_equal(pthread_create(&t[i], NULL, take_thread, &tk[i]), 0);
    }
    unsigned total = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        total += tk[i].taken;
    }
    pthread_barrier_destroy(&start);
    /* 200 allowed; the check and the increment are not one atomic step, so
     * racing threads may each take one more: never more than that. */
    CHECK(total >= 200 && total <= 200 + NTHREADS - 1, "%u retries taken, want 200", total);
    assert_false(rbudget_take(&rb, 0.20, now));
}

struct opener {
    struct breaker *b;
    pthread_barrier_t *start;
    uint64_t now;
    bool opened;
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    pthread_barrier_wait(o->start);
    o->opened = breaker_record(o->b, 1, true, false, o->now, 0);
    return NULL;
}

/* Threads failing at the same moment open the breaker once, for one normal
 * period (not a doubled one). With threshold 1 every one of them crosses it.
 * The race is narrow: fresh threads each round (first-touch faults) and
 * TSan's instrumentation widen it enough to catch a regression most runs. */
static void test_threads_open_once(void **state)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    for (int round = 0; round < 300; round++) {
        static struct breaker b;
        memset(&b, 0, sizeof b);
        const uint64_t now = 100 * SEC;
        pthread_t t[NTHREADS];
        struct opener o[NTHREADS];
        for (int i = 0; i < NTHREADS; i++) {
            o[i] = (struct opener){&b, &start, now, false};
            assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
        }
        int opened = 0;
        for (int i = 0; i < NTHREADS; i++) {
            pthread_join(t[i], NULL);
            opened += o[i].opened;
        }
        CHECK(opened == 1, "round %d: %d callers opened the breaker", round, opened);
        CHECK(atomic_load(&b.opens) == 1, "round %d: opens = %u", round, atomic_load(&b.opens));
        CHECK(st(&b, 1, now + 4 * SEC) == BR_HALF_OPEN, "round %d: period doubled", round);
    }
    pthread_barrier_destroy(&start);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_after_threshold),
        cmocka_unit_test(test_success_resets_count),
        cmocka_unit_test(test_open_period_jitter),
        cmocka_unit_test(test_half_open_single_probe),
        cmocka_unit_test(test_failed_probe_reopens_doubled),
        cmocka_unit_test(test_successful_probe_closes),
        cmocka_unit_test(test_threshold_zero_is_off),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_budget_floor),
        cmocka_unit_test(test_budget_share),
        cmocka_unit_test(test_budget_sliding),
        cmocka_unit_test(test_budget_gap_forgets),
        cmocka_unit_test(test_threads_hammer),
        cmocka_unit_test(test_threads_budget),
        cmocka_unit_test(test_threads_open_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
