/* test_breaker.c: unit tests of shim/breaker.c: the circuit breaker (opens
 * after a threshold of failed calls AND a time without success, open period
 * with jitter, half-open probe, doubling) and the retry budget (floor of
 * concurrent retrying calls, tokens, refunds), with injected time; then the
 * scenarios of issue 12 simulated with an injected clock and the real
 * policy and backoff (a pooled client against a restarting backend, one
 * patient client, 50 threads on a dead port, a port that never opens); plus
 * multi-threaded runs for TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "backoff.h"
#include "breaker.h"
#include "config.h"
#include "policy.h"

#define MS 1000000ull
#define SEC 1000000000ull

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

/* threshold 5 and 3.5 s (what 3 retries of 0.5, 1, 2 s give). */
static const struct breaker_params P5 = {5, 3500 * MS};
static const struct breaker_params P1 = {1, 1 * SEC};
static const struct breaker_params OFF = {0, 1 * SEC};

static bool rec(struct breaker *b, const struct breaker_params *p, bool failed, uint64_t now)
{
    return breaker_record(b, p, failed, false, now, now, 0);
}

static enum breaker_state st(struct breaker *b, const struct breaker_params *p, uint64_t now)
{
    return breaker_state(b, p, now);
}

/* ---- breaker ---- */

static void test_after_ns(void **state)
{
    assert_int_equal(breaker_after_ns(0), BREAKER_AFTER_MIN_NS);
    assert_int_equal(breaker_after_ns(300 * MS), BREAKER_AFTER_MIN_NS);
    assert_int_equal(breaker_after_ns(3500 * MS), 3500 * MS);
    /* What the defaults give: 3 retries of 0.5, 1, 2 s within 10 s. */
    struct backoff bo = {500 * MS, 5 * SEC, JITTER_EQUAL};
    assert_int_equal(breaker_after_ns(backoff_span(&bo, 3, 10 * SEC)), 3500 * MS);
}

static void test_opens_after_count_and_time(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 100 * SEC;
    bool probe = true;
    /* A busy pool fails 50 calls within 100 ms: not long enough. */
    for (int i = 0; i < 50; i++) {
        assert_false(rec(&b, &P5, true, t0 + (uint64_t)i * 2 * MS));
        assert_int_equal(st(&b, &P5, t0 + (uint64_t)i * 2 * MS), BR_CLOSED);
    }
    assert_true(breaker_allow_retry(&b, &P5, t0 + 100 * MS, &probe));
    assert_false(probe);
    /* Still failing 3.4 s after the first failure: closed. */
    assert_false(rec(&b, &P5, true, t0 + 3400 * MS));
    assert_int_equal(b.opens, 0);
    /* 3.5 s: open, said once. */
    assert_true(rec(&b, &P5, true, t0 + 3500 * MS));
    assert_int_equal(b.opens, 1);
    assert_int_equal(st(&b, &P5, t0 + 3500 * MS), BR_OPEN);
    probe = true;
    assert_false(breaker_allow_retry(&b, &P5, t0 + 3600 * MS, &probe));
    assert_false(probe);
    for (int i = 0; i < 10; i++)
        assert_false(rec(&b, &P5, true, t0 + 3600 * MS));
    assert_int_equal(b.opens, 1);

    /* Time alone is not enough either: 4 slow failures over 10 s. */
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 4; i++)
        assert_false(rec(&b, &P5, true, t0 + (uint64_t)i * 3 * SEC));
    assert_true(rec(&b, &P5, true, t0 + 12 * SEC));
}

static void test_failing_since_is_call_start(void **state)
{
    /* Calls that each retried 3 s and failed: the run of failures began when
     * the first of them started, not when it ended. */
    struct breaker b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 100 * SEC;
    for (int i = 0; i < 4; i++)
        assert_false(breaker_record(&b, &P5, true, false, t0 + (uint64_t)i * 100 * MS,
                                    t0 + 3 * SEC + (uint64_t)i * 100 * MS, 0));
    assert_true(breaker_record(&b, &P5, true, false, t0 + 400 * MS, t0 + 3500 * MS, 0));

    /* A call that started before the last success does not date the run
     * back past that success. */
    memset(&b, 0, sizeof b);
    assert_false(rec(&b, &P5, false, t0 + 2 * SEC));
    for (int i = 0; i < 10; i++)
        assert_false(breaker_record(&b, &P5, true, false, t0, t0 + 2 * SEC + 100 * MS, 0));
    assert_int_equal(b.failing_since, t0 + 2 * SEC);
    assert_false(rec(&b, &P5, true, t0 + 5 * SEC));
    assert_true(rec(&b, &P5, true, t0 + 5500 * MS));
}

static void test_restart_never_opens(void **state)
{
    /* Up 300 ms / down 200 ms, a failed call every ms while down and a
     * success while up: hundreds of failures in a row, never for 3.5 s. */
    struct breaker b;
    memset(&b, 0, sizeof b);
    for (uint64_t t = 0; t < 60 * SEC; t += MS) {
        bool down = (t % (500 * MS)) >= 300 * MS;
        if (down || t % (10 * MS) == 0)
            assert_false(rec(&b, &P5, down, 1000 * SEC + t));
    }
    assert_int_equal(b.opens, 0);
    /* nginx up 3 s / down 1 s, the same. */
    for (uint64_t t = 0; t < 60 * SEC; t += MS) {
        bool down = (t % (4 * SEC)) >= 3 * SEC;
        if (down || t % (10 * MS) == 0)
            assert_false(rec(&b, &P5, down, 2000 * SEC + t));
    }
    assert_int_equal(b.opens, 0);
}

static void test_success_closes_and_resets(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 100 * SEC;
    for (int i = 0; i < 5; i++)
        rec(&b, &P5, true, t0 + (uint64_t)i * SEC);
    assert_int_equal(st(&b, &P5, t0 + 4 * SEC), BR_OPEN);
    /* A first attempt went through: closed, and the count and clock restart. */
    assert_false(rec(&b, &P5, false, t0 + 4500 * MS));
    assert_int_equal(st(&b, &P5, t0 + 4500 * MS), BR_CLOSED);
    assert_int_equal(b.failing_since, 0);
    bool probe = true;
    assert_true(breaker_allow_retry(&b, &P5, t0 + 4500 * MS, &probe));
    assert_false(probe);
    for (int i = 0; i < 10; i++)
        assert_false(rec(&b, &P5, true, t0 + 5 * SEC + (uint64_t)i * 300 * MS));
    assert_int_equal(st(&b, &P5, t0 + 8 * SEC), BR_CLOSED);
}

static void test_open_period_jitter(void **state)
{
    /* 1 s +-20 %: open for at least 0.8 s, half-open after at most 1.2 s. */
    uint64_t seed = 12345;
    for (int i = 0; i < 2000; i++) {
        uint64_t rnd = i == 0 ? 0 : i == 1 ? UINT64_MAX : i == 2 ? rnd_top(SEC) : xorshift(&seed);
        struct breaker b;
        memset(&b, 0, sizeof b);
        const uint64_t t0 = 1000 * SEC + (uint64_t)i;
        assert_true(breaker_record(&b, &P1, true, false, t0 - SEC, t0, rnd));
        CHECK(st(&b, &P1, t0 + 800 * MS - 1) == BR_OPEN, "rnd %llu: open less than 0.8 s",
              (unsigned long long)rnd);
        CHECK(st(&b, &P1, t0 + 1200 * MS) == BR_HALF_OPEN, "rnd %llu: open more than 1.2 s",
              (unsigned long long)rnd);
    }
    struct breaker b;
    memset(&b, 0, sizeof b);
    assert_true(breaker_record(&b, &P1, true, false, 49 * SEC, 50 * SEC, rnd_top(SEC)));
    assert_int_equal(st(&b, &P1, 51200 * MS - 1), BR_OPEN);
    assert_int_equal(st(&b, &P1, 51200 * MS), BR_HALF_OPEN);
}

static void test_half_open_single_probe(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    const uint64_t t0 = 100 * SEC;
    assert_true(breaker_record(&b, &P1, true, false, t0 - SEC, t0, 0)); /* open until +0.8 s */
    bool probe = true;
    assert_false(breaker_allow_retry(&b, &P1, t0 + 800 * MS - 1, &probe));
    assert_false(probe);
    const uint64_t t1 = t0 + 800 * MS;
    assert_int_equal(st(&b, &P1, t1), BR_HALF_OPEN);
    assert_true(breaker_allow_retry(&b, &P1, t1, &probe));
    assert_true(probe);
    for (int i = 0; i < 5; i++) {
        bool p2 = true;
        assert_false(breaker_allow_retry(&b, &P1, t1 + (uint64_t)i * SEC, &p2));
        assert_false(p2);
    }
    /* A probe whose call is abandoned is handed back. */
    breaker_drop_probe(&b, &probe);
    assert_false(probe);
    assert_int_equal(b.probing, 0);
    assert_true(breaker_allow_retry(&b, &P1, t1, &probe));
    assert_true(probe);
}

static void test_failed_probe_reopens_doubled(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    uint64_t now = 100 * SEC;
    assert_true(breaker_record(&b, &P1, true, false, now - SEC, now, 0));
    /* rnd 0: each period is 0.8 of 1, 2, 4, 8, 16, 30 (cap), 30 s. */
    static const uint64_t periods[] = {800 * MS, 1600 * MS, 3200 * MS, 6400 * MS,
                                       12800 * MS, 24 * SEC, 24 * SEC};
    for (size_t i = 0; i < sizeof periods / sizeof periods[0]; i++) {
        CHECK(st(&b, &P1, now + periods[i] - 1) == BR_OPEN, "period %zu shorter than %llu ms", i,
              (unsigned long long)(periods[i] / MS));
        now += periods[i];
        assert_int_equal(st(&b, &P1, now), BR_HALF_OPEN);
        bool probe = false;
        assert_true(breaker_allow_retry(&b, &P1, now, &probe));
        assert_true(probe);
        assert_true(breaker_record(&b, &P1, true, true, now, now, 0));
        assert_int_equal(b.probing, 0);
        assert_int_equal(b.opens, i + 2);
    }
    /* A successful probe closes it; the next opening starts from 1 s again. */
    now += 24 * SEC;
    bool probe = false;
    assert_true(breaker_allow_retry(&b, &P1, now, &probe));
    assert_false(breaker_record(&b, &P1, false, true, now, now, 0));
    assert_int_equal(st(&b, &P1, now), BR_CLOSED);
    assert_int_equal(b.probing, 0);
    assert_true(breaker_record(&b, &P1, true, false, now, now + SEC, 0));
    assert_int_equal(st(&b, &P1, now + SEC + 800 * MS - 1), BR_OPEN);
    assert_int_equal(st(&b, &P1, now + SEC + 800 * MS), BR_HALF_OPEN);
}

static void test_threshold_zero_is_off(void **state)
{
    struct breaker b;
    memset(&b, 0, sizeof b);
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t now = i * SEC;
        assert_false(breaker_record(&b, &OFF, true, false, 0, now, i));
        bool probe = true;
        assert_true(breaker_allow_retry(&b, &OFF, now, &probe));
        assert_false(probe);
        assert_int_equal(st(&b, &OFF, now), BR_CLOSED);
    }
    assert_int_equal(b.opens, 0);
}

static void test_state_names(void **state)
{
    assert_string_equal(breaker_state_name(BR_CLOSED), "closed");
    assert_string_equal(breaker_state_name(BR_OPEN), "open");
    assert_string_equal(breaker_state_name(BR_HALF_OPEN), "half-open");
}

/* ---- retry budget ---- */

static void test_budget_floor(void **state)
{
    struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    struct rbudget_hold h[RBUDGET_FLOOR + 1];
    memset(h, 0, sizeof h);
    /* RBUDGET_FLOOR calls retry on the floor, any number of times each. */
    for (int i = 0; i < RBUDGET_FLOOR; i++)
        for (int k = 0; k < 50; k++) {
            assert_true(rbudget_take(&rb, &h[i]));
            assert_true(h[i].floor);
            assert_int_equal(h[i].tokens, 0);
        }
    assert_int_equal(rbudget_tokens(&rb), RBUDGET_CAP);
    /* The next one takes tokens. */
    assert_true(rbudget_take(&rb, &h[RBUDGET_FLOOR]));
    assert_false(h[RBUDGET_FLOOR].floor);
    assert_int_equal(h[RBUDGET_FLOOR].tokens, 1);
    assert_int_equal(rbudget_tokens(&rb), RBUDGET_CAP - 1);
    /* Drain every token: a call that makes one call at a time still gets
     * the floor once the others are done. */
    while (rbudget_take(&rb, &h[RBUDGET_FLOOR]))
        ;
    assert_int_equal(rbudget_tokens(&rb), 0);
    struct rbudget_hold lone = {0};
    assert_false(rbudget_take(&rb, &lone));
    for (int i = 0; i < RBUDGET_FLOOR; i++)
        rbudget_done(&rb, &h[i], false);
    assert_int_equal(rb.on_floor, 0);
    for (int k = 0; k < 1000; k++) {
        struct rbudget_hold one = {0};
        assert_true(rbudget_take(&rb, &one));
        assert_true(rbudget_take(&rb, &one));
        assert_true(rbudget_take(&rb, &one));
        rbudget_done(&rb, &one, k % 2 == 0);
        assert_int_equal(rbudget_tokens(&rb), 0);
    }
}

static void test_budget_tokens_and_share(void **state)
{
    struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    struct rbudget_hold fl[RBUDGET_FLOOR], h = {0};
    memset(fl, 0, sizeof fl);
    for (int i = 0; i < RBUDGET_FLOOR; i++)
        assert_true(rbudget_take(&rb, &fl[i]));
    unsigned n = 0;
    while (rbudget_take(&rb, &h))
        n++;
    assert_int_equal(n, RBUDGET_CAP);
    /* Calls give back a share: 5 calls at 20 % are one retry. */
    for (int i = 0; i < 4; i++)
        rbudget_note_call(&rb, 0.20);
    assert_false(rbudget_take(&rb, &h));
    rbudget_note_call(&rb, 0.20);
    assert_true(rbudget_take(&rb, &h));
    assert_false(rbudget_take(&rb, &h));
    /* A 0 share gives nothing back; 100 % a whole retry per call. */
    rbudget_note_call(&rb, 0.0);
    assert_false(rbudget_take(&rb, &h));
    rbudget_note_call(&rb, 1.0);
    assert_true(rbudget_take(&rb, &h));
    /* Failed retries stay spent. */
    rbudget_done(&rb, &h, false);
    assert_int_equal(h.tokens, 0);
    assert_int_equal(rbudget_tokens(&rb), 0);
    /* Never above the cap, however many calls. */
    for (int i = 0; i < 100000; i++)
        rbudget_note_call(&rb, 0.20);
    assert_int_equal(rbudget_tokens(&rb), RBUDGET_CAP);
    assert_int_equal(rb.spent, 0);
}

static void test_budget_refund(void **state)
{
    struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    struct rbudget_hold fl[RBUDGET_FLOOR];
    memset(fl, 0, sizeof fl);
    for (int i = 0; i < RBUDGET_FLOOR; i++)
        assert_true(rbudget_take(&rb, &fl[i]));
    /* 40 calls take 2 tokens each and succeed: all given back. */
    struct rbudget_hold h[40];
    memset(h, 0, sizeof h);
    for (int i = 0; i < 40; i++) {
        assert_true(rbudget_take(&rb, &h[i]));
        assert_true(rbudget_take(&rb, &h[i]));
    }
    assert_int_equal(rbudget_tokens(&rb), RBUDGET_CAP - 80);
    for (int i = 0; i < 40; i++)
        rbudget_done(&rb, &h[i], true);
    assert_int_equal(rbudget_tokens(&rb), RBUDGET_CAP);
    /* done twice does nothing more; the floor place goes once. */
    rbudget_done(&rb, &fl[0], true);
    rbudget_done(&rb, &fl[0], true);
    assert_int_equal(rb.on_floor, RBUDGET_FLOOR - 1);
}

/* ---- the scenarios, simulated ------------------------------------------- */

/* One client: a loop of calls. Each call is attempts with the real policy
 * and backoff; between attempts the breaker (once per call) and the budget
 * decide, as retry_next does. */
struct client {
    uint64_t next;          /* time of its next attempt (or next call) */
    bool in_call;
    uint64_t start;
    struct retry_call call;
    struct rbudget_hold hold;
    bool probe, guards;
};

struct sim {
    const struct breaker_params *bp; /* NULL: the defaults' */
    double share;
    uint64_t gap;           /* between the end of a call and the next */
    bool (*up)(uint64_t t); /* the backend answers at t */
    uint64_t end;           /* no new call starts after this */
    unsigned max_calls;     /* per client, 0 = no limit */
    struct breaker b;
    struct retry_budget rb;
    uint64_t seed;
    struct reshim_config cfg;   /* the defaults: retries, backoff, deadline, share */
    struct breaker_params dflt;
    /* results */
    unsigned calls, ok, attempts, refused_budget, refused_breaker, retried_calls;
    uint64_t opened_at;     /* first opening, 0 = never */
    unsigned calls_after_open, retried_after_open;
};

static void sim_end_call(struct sim *s, struct client *c, bool ok, uint64_t t)
{
    rbudget_done(&s->rb, &c->hold, ok);
    if (breaker_record(&s->b, s->bp, !ok, c->probe, c->start, t, xorshift(&s->seed)) &&
        !s->opened_at)
        s->opened_at = t;
    c->probe = false;
    c->in_call = false;
    s->ok += ok;
    c->next = t + s->gap;
}

static void sim_step(struct sim *s, struct client *c)
{
    uint64_t t = c->next;
    if (!c->in_call) {
        c->in_call = true;
        c->start = t;
        c->call = (struct retry_call){.deadline_ns = t + s->cfg.retry_deadline_ns};
        c->hold = (struct rbudget_hold){0};
        c->guards = false;
        s->calls++;
        if (s->opened_at && t > s->opened_at)
            s->calls_after_open++;
        rbudget_note_call(&s->rb, s->share);
    }
    s->attempts++;
    if (s->up(t)) {
        sim_end_call(s, c, true, t);
        return;
    }
    struct backoff bo = {s->cfg.backoff_base_ns, s->cfg.backoff_max_ns, s->cfg.jitter};
    uint64_t delay = 0;
    if (policy_connect_next(&bo, s->cfg.retries, &c->call, AF_INET, ECONNREFUSED, t, xorshift(&s->seed),
                            &delay) != RV_RETRY) {
        sim_end_call(s, c, false, t);
        return;
    }
    if (!c->guards) {
        c->guards = true;
        if (!breaker_allow_retry(&s->b, s->bp, t, &c->probe)) {
            s->refused_breaker++;
            sim_end_call(s, c, false, t);
            return;
        }
    }
    if (!rbudget_take(&s->rb, &c->hold)) {
        s->refused_budget++;
        sim_end_call(s, c, false, t);
        return;
    }
    if (c->call.retries == 0) {
        s->retried_calls++;
        if (s->opened_at && c->start > s->opened_at)
            s->retried_after_open++;
    }
    c->call.retries++;
    c->call.prev_delay = delay;
    c->next = t + delay;
}

static void sim_run(struct sim *s, struct client *cl, unsigned n, uint64_t t0)
{
    reshim_config_defaults(&s->cfg, 0, NULL);
    struct backoff bo = {s->cfg.backoff_base_ns, s->cfg.backoff_max_ns, s->cfg.jitter};
    s->dflt = (struct breaker_params){
        s->cfg.breaker,
        breaker_after_ns(backoff_span(&bo, s->cfg.retries, s->cfg.retry_deadline_ns))};
    if (!s->bp)
        s->bp = &s->dflt;
    s->share = s->cfg.retry_budget;
    for (unsigned i = 0; i < n; i++)
        cl[i] = (struct client){.next = t0};
    unsigned *made = calloc(n, sizeof *made);
    for (;;) {
        struct client *c = NULL;
        for (unsigned i = 0; i < n; i++) {
            bool may_start = cl[i].in_call ||
                             (cl[i].next <= s->end && (!s->max_calls || made[i] < s->max_calls));
            if (may_start && (!c || cl[i].next < c->next))
                c = &cl[i];
        }
        if (!c)
            break;
        if (!c->in_call)
            made[c - cl]++;
        sim_step(s, c);
    }
    free(made);
}

#define T0 (1000 * SEC)
static bool flapping(uint64_t t) { return (t - T0) % (500 * MS) < 300 * MS; }
static bool up3_down1(uint64_t t) { return (t - T0) % (4 * SEC) < 3 * SEC; }
static bool dead(uint64_t t) { return false; }

static void test_scenario_patient_client(void **state)
{
    /* One long-lived client, a call every 100 ms (then 10 ms), against a
     * backend up 300 ms / down 200 ms: the budget never refuses it, the
     * breaker never opens, 99 % of calls or more are rescued (a call fails
     * only when all 6 attempts meet a down phase: 0.4^6 = 0.4 %). */
    for (int k = 0; k < 2; k++) {
        struct sim s = {.bp = NULL, .gap = k ? 10 * MS : 100 * MS,
                        .up = flapping, .end = UINT64_MAX, .max_calls = 300, .seed = 77};
        struct client c;
        sim_run(&s, &c, 1, T0 + 1);
        print_message("patient client, gap %llu ms: %u calls, %u ok, %u attempts, %u retried\n",
                      (unsigned long long)(s.gap / MS), s.calls, s.ok, s.attempts,
                      s.retried_calls);
        assert_int_equal(s.calls, 300);
        assert_int_equal(s.refused_budget, 0);
        assert_int_equal(s.refused_breaker, 0);
        assert_int_equal(s.opened_at, 0);
        CHECK(s.ok >= 297, "%u of 300 ok", s.ok);
        assert_true(s.retried_calls > 15); /* the outage was real */
    }
}

static void test_scenario_pool(void **state)
{
    /* A pool of 20 calls in flight, each a loop of calls 10 ms apart,
     * against a backend up 3 s / down 1 s for 60 s: every connect made in
     * the down phase retries; none is refused, the breaker stays closed. */
    struct sim s = {.bp = NULL, .gap = 10 * MS, .up = up3_down1,
                    .end = T0 + 60 * SEC, .seed = 78};
    struct client c[20];
    sim_run(&s, c, 20, T0 + 1);
    print_message("pool of 20: %u calls, %u ok, %u retried, %u attempts\n", s.calls, s.ok,
                  s.retried_calls, s.attempts);
    assert_int_equal(s.refused_budget, 0);
    assert_int_equal(s.refused_breaker, 0);
    assert_int_equal(s.opened_at, 0);
    assert_int_equal(s.ok, s.calls);
    assert_true(s.retried_calls >= 20 * 14); /* 15 outages, 20 calls each caught */
    /* The same pool against a backend up 300 ms / down 200 ms. */
    struct sim f = {.bp = NULL, .gap = 10 * MS, .up = flapping,
                    .end = T0 + 60 * SEC, .seed = 79};
    sim_run(&f, c, 20, T0 + 1);
    print_message("pool of 20, flapping: %u calls, %u ok, %u retried, %u refused by the budget\n",
                  f.calls, f.ok, f.retried_calls, f.refused_budget);
    assert_int_equal(f.refused_budget, 0);
    assert_int_equal(f.opened_at, 0);
    CHECK(f.ok * 1000ull >= f.calls * 995ull, "%u of %u ok", f.ok, f.calls);
}

static void test_scenario_storm(void **state)
{
    /* 50 threads of one process connecting to a dead port, a call 100 ms
     * after the last ended, for 10 s: attempts at most 1.3 x calls, the
     * breaker opens, and calls after that get no retries but the probes. */
    for (int breaker_on = 1; breaker_on >= 0; breaker_on--) {
        struct sim s = {.bp = breaker_on ? NULL : &OFF, .gap = 100 * MS,
                        .up = dead, .end = T0 + 10 * SEC, .seed = 80};
        struct client c[50];
        sim_run(&s, c, 50, T0);
        double ratio = (double)s.attempts / s.calls;
        print_message("storm, breaker %s: %u calls, %u attempts (x%.3f), %u refused by the "
                      "budget, %u by the breaker, opened at %.2f s, %u of %u later calls "
                      "retried\n",
                      breaker_on ? "on" : "off", s.calls, s.attempts, ratio, s.refused_budget,
                      s.refused_breaker, s.opened_at ? (double)(s.opened_at - T0) / SEC : -1.0,
                      s.retried_after_open, s.calls_after_open);
        CHECK(ratio <= 1.3, "attempts %u over calls %u = %.3f", s.attempts, s.calls, ratio);
        assert_int_equal(s.ok, 0);
        if (breaker_on) {
            CHECK(s.opened_at >= T0 + s.dflt.after_ns && s.opened_at <= T0 + s.dflt.after_ns + SEC,
                  "opened %llu ms in, after_ns %llu ms", (unsigned long long)((s.opened_at - T0) / MS),
                  (unsigned long long)(s.dflt.after_ns / MS));
            assert_true(s.calls_after_open > 2000);
            /* Half-open probes only: one per open period (0.8-1.2, 1.6-2.4 s...). */
            CHECK(s.retried_after_open <= 4, "%u later calls retried", s.retried_after_open);
        } else {
            assert_int_equal(s.opened_at, 0);
            assert_true(s.refused_budget > 1000);
        }
    }
}

static void test_scenario_never_open(void **state)
{
    /* One client, a port that never opens: every call gets all its retries
     * until the breaker opens (5 calls failed, over at least after_ns), then
     * none but the probes; the budget never refuses a client making one call
     * at a time. */
    struct sim s = {.bp = NULL, .gap = 10 * MS, .up = dead,
                    .end = T0 + 30 * SEC, .seed = 81};
    struct client c;
    sim_run(&s, &c, 1, T0);
    print_message("never open: %u calls, %u attempts, opened at %.2f s, %u retried\n", s.calls,
                  s.attempts, (double)(s.opened_at - T0) / SEC, s.retried_calls);
    assert_int_equal(s.refused_budget, 0);
    assert_true(s.opened_at >= T0 + s.dflt.after_ns && s.opened_at < T0 + 25 * SEC);
    assert_true(s.refused_breaker > s.calls / 2);
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
    const struct breaker_params p = {3, 2 * SEC};
    pthread_barrier_wait(&h->start);
    for (int i = 0; i < 20000; i++) {
        uint64_t now = atomic_fetch_add(&h->clock, 1 * MS);
        uint64_t rnd = xorshift(&w->seed);
        rbudget_note_call(&h->rb, 0.20);
        bool probe = false;
        struct rbudget_hold hold = {0};
        if (breaker_allow_retry(&h->b, &p, now, &probe)) {
            (void)rbudget_take(&h->rb, &hold);
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
        rbudget_done(&h->rb, &hold, !failed);
        if (breaker_record(&h->b, &p, failed, probe, now, now, rnd))
            atomic_fetch_add(&h->opened, 1);
        (void)breaker_state(&h->b, &p, now);
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
    /* The breaker did open and probe, never two probes at once, every probe
     * and every floor place was handed back. */
    assert_true(atomic_load(&h.opened) > 0);
    assert_int_equal(atomic_load(&h.opened), atomic_load(&h.b.opens));
    assert_true(atomic_load(&h.probes) > 0);
    assert_int_equal(atomic_load(&h.max_holders), 1);
    assert_int_equal(atomic_load(&h.b.probing), 0);
    assert_int_equal(atomic_load(&h.rb.on_floor), 0);
}

struct taker {
    struct retry_budget *rb;
    pthread_barrier_t *start;
    unsigned taken, floor;
};

static void *take_thread(void *arg)
{
    struct taker *tk = arg;
    pthread_barrier_wait(tk->start);
    for (int i = 0; i < 100; i++) {
        struct rbudget_hold h = {0};
        if (rbudget_take(tk->rb, &h)) {
            tk->taken += h.tokens;
            tk->floor += h.floor;
        }
        if (!h.floor) /* floor places are kept: the others must use tokens */
            rbudget_done(tk->rb, &h, false);
    }
    return NULL;
}

static void test_threads_budget(void **state)
{
    static struct retry_budget rb;
    memset(&rb, 0, sizeof rb);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    struct taker tk[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        tk[i] = (struct taker){&rb, &start, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, take_thread, &tk[i]), 0);
    }
    unsigned tokens = 0, floor = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
        tokens += tk[i].taken;
        floor += tk[i].floor;
    }
    pthread_barrier_destroy(&start);
    /* Exactly the floor and exactly the cap: both are taken by CAS. */
    CHECK(floor == RBUDGET_FLOOR, "%u floor places taken", floor);
    CHECK(tokens == RBUDGET_CAP, "%u tokens taken", tokens);
    assert_int_equal(rbudget_tokens(&rb), 0);
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
    o->opened = breaker_record(o->b, &P1, true, false, o->now - 2 * SEC, o->now, 0);
    return NULL;
}

/* Threads failing at the same moment open the breaker once, for one normal
 * period (not a doubled one). With threshold 1 every one of them crosses it. */
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
        CHECK(st(&b, &P1, now + 1200 * MS) == BR_HALF_OPEN, "round %d: period doubled", round);
    }
    pthread_barrier_destroy(&start);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_after_ns),
        cmocka_unit_test(test_opens_after_count_and_time),
        cmocka_unit_test(test_failing_since_is_call_start),
        cmocka_unit_test(test_restart_never_opens),
        cmocka_unit_test(test_success_closes_and_resets),
        cmocka_unit_test(test_open_period_jitter),
        cmocka_unit_test(test_half_open_single_probe),
        cmocka_unit_test(test_failed_probe_reopens_doubled),
        cmocka_unit_test(test_threshold_zero_is_off),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_budget_floor),
        cmocka_unit_test(test_budget_tokens_and_share),
        cmocka_unit_test(test_budget_refund),
        cmocka_unit_test(test_scenario_patient_client),
        cmocka_unit_test(test_scenario_pool),
        cmocka_unit_test(test_scenario_storm),
        cmocka_unit_test(test_scenario_never_open),
        cmocka_unit_test(test_threads_hammer),
        cmocka_unit_test(test_threads_budget),
        cmocka_unit_test(test_threads_open_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
