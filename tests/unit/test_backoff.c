/* test_backoff.c: unit tests of shim/backoff.c: nominal doubling and cap,
 * each jitter mode with injected random values, extremes, and a statistical
 * check of the equal-jitter mean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

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

/* Random values that stress the modulo: small, powers of two, extremes. */
static const uint64_t rnds[] = {
    0, 1, 2, 3, 7, 1000, 499999999, 500000000, 500000001, 1ull << 31, 1ull << 32,
    0x8000000000000000ull, 0x7fffffffffffffffull, 0xdeadbeefcafebabeull, UINT64_MAX - 1,
    UINT64_MAX,
};
#define NRNDS (sizeof rnds / sizeof rnds[0])

static void test_nominal_doubling_and_cap(void **state)
{
    struct backoff b = {500 * MS, 5 * SEC, JITTER_EQUAL};
    assert_int_equal(backoff_nominal(&b, 0), 500 * MS);
    assert_int_equal(backoff_nominal(&b, 1), 1 * SEC);
    assert_int_equal(backoff_nominal(&b, 2), 2 * SEC);
    assert_int_equal(backoff_nominal(&b, 3), 4 * SEC);
    assert_int_equal(backoff_nominal(&b, 4), 5 * SEC);
    assert_int_equal(backoff_nominal(&b, 5), 5 * SEC);
    assert_int_equal(backoff_nominal(&b, 100), 5 * SEC);

    /* Never decreasing, never above the cap. */
    uint64_t prev = 0;
    for (unsigned a = 0; a < 200; a++) {
        uint64_t d = backoff_nominal(&b, a);
        assert_true(d >= prev);
        assert_true(d <= b.max_ns);
        prev = d;
    }

    /* Base equal to the cap; cap below the base (the cap wins). */
    struct backoff eq = {2 * SEC, 2 * SEC, JITTER_NONE};
    assert_int_equal(backoff_nominal(&eq, 0), 2 * SEC);
    assert_int_equal(backoff_nominal(&eq, 7), 2 * SEC);
    struct backoff low = {2 * SEC, 1 * SEC, JITTER_NONE};
    assert_int_equal(backoff_nominal(&low, 0), 1 * SEC);
    assert_int_equal(backoff_nominal(&low, 3), 1 * SEC);
}

static void test_nominal_no_overflow(void **state)
{
    /* No cap to speak of: doubling saturates at UINT64_MAX instead of wrapping. */
    struct backoff b = {1, UINT64_MAX, JITTER_NONE};
    assert_int_equal(backoff_nominal(&b, 0), 1);
    assert_int_equal(backoff_nominal(&b, 10), 1024);
    assert_int_equal(backoff_nominal(&b, 63), 1ull << 63);
    assert_int_equal(backoff_nominal(&b, 64), UINT64_MAX);
    assert_int_equal(backoff_nominal(&b, 65), UINT64_MAX);
    assert_int_equal(backoff_nominal(&b, 1000), UINT64_MAX);
    assert_int_equal(backoff_nominal(&b, UINT32_MAX), UINT64_MAX);

    struct backoff big = {(1ull << 62) + 1, UINT64_MAX, JITTER_NONE};
    assert_int_equal(backoff_nominal(&big, 1), (1ull << 63) + 2);
    assert_int_equal(backoff_nominal(&big, 2), UINT64_MAX);

    /* Huge attempt numbers with the default shape: the cap, at once. */
    struct backoff d = {500 * MS, 5 * SEC, JITTER_EQUAL};
    assert_int_equal(backoff_nominal(&d, UINT32_MAX), 5 * SEC);
    for (size_t i = 0; i < NRNDS; i++) {
        uint64_t v = backoff_delay(&d, UINT32_MAX, 0, rnds[i]);
        assert_in_range(v, 5 * SEC / 2, 5 * SEC);
    }
}

static void test_jitter_none(void **state)
{
    struct backoff b = {500 * MS, 5 * SEC, JITTER_NONE};
    for (unsigned a = 0; a < 8; a++)
        for (size_t i = 0; i < NRNDS; i++)
            assert_int_equal(backoff_delay(&b, a, 123 * MS, rnds[i]), backoff_nominal(&b, a));
    assert_int_equal(backoff_delay(&b, 0, 0, 0), 500 * MS);
    assert_int_equal(backoff_delay(&b, 2, 0, UINT64_MAX), 2 * SEC);
}

static void test_jitter_equal(void **state)
{
    struct backoff b = {500 * MS, 5 * SEC, JITTER_EQUAL};
    for (unsigned a = 0; a < 8; a++) {
        uint64_t d = backoff_nominal(&b, a);
        /* Extremes of the range are reachable. */
        assert_int_equal(backoff_delay(&b, a, 0, 0), d / 2);
        assert_int_equal(backoff_delay(&b, a, 0, d - d / 2), d);
        assert_int_equal(backoff_delay(&b, a, 0, d - d / 2 + 1), d / 2); /* wraps */
        for (size_t i = 0; i < NRNDS; i++) {
            uint64_t v = backoff_delay(&b, a, 0, rnds[i]);
            CHECK(v >= d / 2 && v <= d, "equal: attempt %u rnd %llu: %llu outside [%llu, %llu]",
                  a, (unsigned long long)rnds[i], (unsigned long long)v,
                  (unsigned long long)(d / 2), (unsigned long long)d);
        }
    }
    /* The default schedule: 0.5 s, 1 s, 2 s nominal. */
    assert_in_range(backoff_delay(&b, 0, 0, UINT64_MAX), 250 * MS, 500 * MS);
    assert_in_range(backoff_delay(&b, 1, 0, UINT64_MAX), 500 * MS, 1 * SEC);
    assert_in_range(backoff_delay(&b, 2, 0, UINT64_MAX), 1 * SEC, 2 * SEC);

    /* Odd and tiny delays. */
    struct backoff odd = {3, 1000, JITTER_EQUAL};
    for (size_t i = 0; i < NRNDS; i++)
        assert_in_range(backoff_delay(&odd, 0, 0, rnds[i]), 1, 3);
    struct backoff one = {1, 1, JITTER_EQUAL};
    for (size_t i = 0; i < NRNDS; i++)
        assert_in_range(backoff_delay(&one, 0, 0, rnds[i]), 0, 1);
    /* Saturated nominal: the span is huge, still in range. */
    struct backoff huge = {1, UINT64_MAX, JITTER_EQUAL};
    for (size_t i = 0; i < NRNDS; i++)
        assert_true(backoff_delay(&huge, 100, 0, rnds[i]) >= UINT64_MAX / 2);
}

static void test_jitter_full(void **state)
{
    struct backoff b = {500 * MS, 5 * SEC, JITTER_FULL};
    for (unsigned a = 0; a < 8; a++) {
        uint64_t d = backoff_nominal(&b, a);
        assert_int_equal(backoff_delay(&b, a, 0, 0), 0);
        assert_int_equal(backoff_delay(&b, a, 0, d), d);
        assert_int_equal(backoff_delay(&b, a, 0, d + 1), 0);
        assert_int_equal(backoff_delay(&b, a, 0, 12345), 12345);
        for (size_t i = 0; i < NRNDS; i++)
            assert_in_range(backoff_delay(&b, a, 0, rnds[i]), 0, d);
    }
    /* The whole 64-bit range as the span: rnd itself. */
    struct backoff all = {UINT64_MAX, UINT64_MAX, JITTER_FULL};
    for (size_t i = 0; i < NRNDS; i++)
        assert_int_equal(backoff_delay(&all, 0, 0, rnds[i]), rnds[i]);
}

static void test_jitter_decorrelated(void **state)
{
    struct backoff b = {500 * MS, 5 * SEC, JITTER_DECORRELATED};
    /* First retry (prev 0): U(base, 3 * base). */
    assert_int_equal(backoff_delay(&b, 0, 0, 0), 500 * MS);
    assert_int_equal(backoff_delay(&b, 0, 0, 1000 * MS), 1500 * MS);
    assert_int_equal(backoff_delay(&b, 0, 0, 1000 * MS + 1), 500 * MS); /* wraps */
    for (size_t i = 0; i < NRNDS; i++)
        assert_in_range(backoff_delay(&b, 0, 0, rnds[i]), 500 * MS, 1500 * MS);

    /* Later: U(base, 3 * prev), capped; the attempt number does not matter. */
    static const uint64_t prevs[] = {500 * MS, 700 * MS, 1 * SEC, 1700 * MS, 4 * SEC, 5 * SEC};
    for (size_t p = 0; p < sizeof prevs / sizeof prevs[0]; p++) {
        uint64_t hi = 3 * prevs[p] < b.max_ns ? 3 * prevs[p] : b.max_ns;
        for (unsigned a = 0; a < 5; a++)
            for (size_t i = 0; i < NRNDS; i++) {
                uint64_t v = backoff_delay(&b, a, prevs[p], rnds[i]);
                CHECK(v >= b.base_ns && v <= hi,
                      "decorrelated: prev %llu rnd %llu: %llu outside [%llu, %llu]",
                      (unsigned long long)prevs[p], (unsigned long long)rnds[i],
                      (unsigned long long)v, (unsigned long long)b.base_ns,
                      (unsigned long long)hi);
            }
    }
    /* The cap is reached: 3 * 4 s = 12 s > 5 s. */
    assert_int_equal(backoff_delay(&b, 3, 4 * SEC, 12 * SEC - 500 * MS), 5 * SEC);
    assert_int_equal(backoff_delay(&b, 3, 4 * SEC, 4500 * MS), 5 * SEC);
    assert_int_equal(backoff_delay(&b, 3, 4 * SEC, 4500 * MS - 1), 5 * SEC - 1);
    assert_int_equal(backoff_delay(&b, 3, 4 * SEC, 0), 500 * MS);

    /* Huge previous delays: no overflow of 3 * prev. */
    struct backoff wide = {1, UINT64_MAX, JITTER_DECORRELATED};
    for (size_t i = 0; i < NRNDS; i++) {
        assert_true(backoff_delay(&wide, 0, UINT64_MAX / 2, rnds[i]) >= 1);
        assert_true(backoff_delay(&wide, 0, UINT64_MAX, rnds[i]) >= 1);
        assert_true(backoff_delay(&b, 0, UINT64_MAX, rnds[i]) <= 5 * SEC);
        assert_true(backoff_delay(&b, 0, UINT64_MAX / 3 + 1, rnds[i]) >= 500 * MS);
    }
    /* Where 3 * prev would wrap to 2, it saturates: large delays stay reachable. */
    assert_int_equal(backoff_delay(&wide, 0, UINT64_MAX / 3 + 1, UINT64_MAX - 2),
                     UINT64_MAX - 1);
    assert_int_equal(backoff_delay(&b, 0, UINT64_MAX / 3 + 1, 10 * SEC), 5 * SEC);
    /* 3 * prev just below 2^64 stays exact (no saturation, no wrap). */
    uint64_t prev = UINT64_MAX / 3 - 1;
    assert_int_equal(backoff_delay(&wide, 0, prev, 3 * prev - 1), 3 * prev);
}

static void test_equal_jitter_mean(void **state)
{
    struct backoff b = {500 * MS, 5 * SEC, JITTER_EQUAL};
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    const int n = 200000;
    for (unsigned a = 0; a < 5; a++) {
        uint64_t d = backoff_nominal(&b, a);
        double sum = 0;
        uint64_t lo = UINT64_MAX, hi = 0;
        int below_mid = 0;
        for (int i = 0; i < n; i++) {
            uint64_t v = backoff_delay(&b, a, 0, xorshift(&seed));
            sum += (double)v;
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            below_mid += v < d / 2 + d / 4;
        }
        double mean = sum / n / (double)d;
        CHECK(mean > 0.745 && mean < 0.755, "equal jitter, attempt %u: mean %.4f d, want 0.75 d",
              a, mean);
        /* Spread over the whole range [d/2, d], evenly split around 0.75 d. */
        CHECK(lo < d / 2 + d / 100 && hi > d - d / 100, "equal jitter range [%llu, %llu]",
              (unsigned long long)lo, (unsigned long long)hi);
        CHECK(below_mid > n * 0.48 && below_mid < n * 0.52, "%d of %d below 0.75 d", below_mid,
              n);
    }

    /* Full jitter: mean 0.5 d. */
    struct backoff f = {500 * MS, 5 * SEC, JITTER_FULL};
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)backoff_delay(&f, 1, 0, xorshift(&seed));
    double mean = sum / n / (double)(1 * SEC);
    CHECK(mean > 0.495 && mean < 0.505, "full jitter mean %.4f d, want 0.5 d", mean);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nominal_doubling_and_cap),
        cmocka_unit_test(test_nominal_no_overflow),
        cmocka_unit_test(test_jitter_none),
        cmocka_unit_test(test_jitter_equal),
        cmocka_unit_test(test_jitter_full),
        cmocka_unit_test(test_jitter_decorrelated),
        cmocka_unit_test(test_equal_jitter_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
