/* test_heapsample.c: unit tests of shim/heapsample.c: the libm-free log and
 * 1 - e^-x against libm, the exponential draw's mean and variance, p(s) and
 * the weights, the estimator's unbiasedness over many simulated allocations
 * (the countdown exactly as the shim runs it), the site table (insert, find,
 * overflow to [other], top N) and the live-address table (insert, remove,
 * stale replacement, full, tombstone reuse). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>

#include <cmocka.h>

#include "heapsample.h"

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
    uint64_t x = rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void test_log_exp(void **state)
{
    (void)state;
    static const double xs[] = {1e-300, 1e-20, 1.1102230246251565e-16, 1e-5, 0.1, 0.5,
                                0.7071, 0.99999, 1, 1.0000001, 1.5, 2, 3.14159, 1e5, 1e300};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        double got = hs_log(xs[i]), want = log(xs[i]);
        double err = fabs(got - want) / (fabs(want) > 1e-300 ? fabs(want) : 1);
        CHECK(err < 1e-12 || fabs(got - want) < 1e-15, "log(%g): %.17g, want %.17g", xs[i],
              got, want);
    }
    static const double es[] = {0, 1e-12, 1e-6, 0.01, 0.25, 0.4999, 0.5, 0.69, 1, 2.5, 10,
                                37, 50, 700, 800};
    for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) {
        double got = hs_one_minus_exp(es[i]), want = -expm1(-es[i]);
        CHECK(fabs(got - want) <= 1e-13 * want || (want == 0 && got == 0),
              "1-exp(-%g): %.17g, want %.17g", es[i], got, want);
    }
}

static void test_draw_moments(void **state)
{
    (void)state;
    const uint64_t R = 512 * 1024;
    const int n = 2000000;
    double sum = 0, sq = 0;
    int64_t mn = INT64_MAX;
    int below_median = 0;
    for (int i = 0; i < n; i++) {
        int64_t d = hs_draw(xorshift(), R);
        CHECK(d >= 0, "negative draw %lld", (long long)d);
        sum += (double)d;
        sq += (double)d * (double)d;
        if (d < mn)
            mn = d;
        if ((double)d < R * 0.69314718055994530942)
            below_median++;
    }
    double mean = sum / n, var = sq / n - mean * mean;
    /* Exponential(R), floored: mean R - 1/2, variance R^2 (+1/12). The
     * mean's standard error is R/sqrt(n) = 0.07% of R: 0.5% is 7 sigma. */
    CHECK(fabs(mean / R - 1) < 0.005, "mean %.1f, want %llu", mean, (unsigned long long)R);
    CHECK(fabs(var / ((double)R * R) - 1) < 0.02, "variance ratio %.4f", var / ((double)R * R));
    CHECK(fabs((double)below_median / n - 0.5) < 0.003, "median share %.4f",
          (double)below_median / n);
    /* Extremes of U: 1 gives 0, the smallest gives 53 ln 2 R at most. */
    CHECK(hs_draw(UINT64_MAX, R) == 0, "U=1 draws %lld", (long long)hs_draw(UINT64_MAX, R));
    CHECK(hs_draw(0, R) <= (int64_t)(37.0 * R), "U=min draws %lld", (long long)hs_draw(0, R));
}

static void test_prob_weight(void **state)
{
    (void)state;
    const uint64_t R = 512 * 1024;
    double b, o;
    CHECK(fabs(hs_prob(R, R) - (1 - exp(-1))) < 1e-14, "p(R)");
    CHECK(fabs(hs_prob(16, R) - 16.0 / R) < 1e-9, "p(16) %.12g", hs_prob(16, R));
    CHECK(hs_prob(100ull << 20, R) == 1.0, "p(100M) %.17g", hs_prob(100ull << 20, R));
    hs_weight(16, R, &b, &o);
    CHECK(fabs(b - 16 / -expm1(-16.0 / R)) < 1e-6, "weight(16) %.6f", b);
    CHECK(fabs(o - 1 / -expm1(-16.0 / R)) < 1e-6, "objects(16) %.6f", o);
    hs_weight(64ull << 20, R, &b, &o);
    CHECK(b == (double)(64ull << 20) && o == 1.0, "big block weighs itself: %.1f %.3f", b, o);
    hs_weight(0, R, &b, &o); /* malloc(0): weighed as 1 byte, 0 bytes estimated */
    CHECK(b == 0 && o > 1, "zero-size %.3f %.3f", b, o);
}

/* The shim's countdown, exactly: left -= s; below 0 samples, then a fresh draw. */
struct sim {
    int64_t left;
    uint64_t R;
};
static bool sim_alloc(struct sim *s, uint64_t size)
{
    s->left -= (int64_t)(size ? size : 1);
    if (s->left >= 0)
        return false;
    s->left = hs_draw(xorshift(), s->R);
    return true;
}

static void test_unbiased(void **state)
{
    (void)state;
    /* Three sites of assorted sizes, far below and far above R. Given the
     * allocations, the estimate of a site has mean its truth and variance
     * sum s^2 (1/p - 1) (bytes), sum (1/p - 1) (objects): the error must stay
     * within 5 sigma, and the bytes within 3 % (objects are dominated by the
     * rarely sampled small blocks: 5 sigma only). */
    const uint64_t R = 512 * 1024;
    static const uint64_t sizes[3][4] = {{24, 200, 4000, 70000},
                                         {100000, 600000, 2000000, 300},
                                         {1ull << 20, 5ull << 20, 16, 64}};
    double true_b[3] = {0}, true_o[3] = {0}, var_b[3] = {0}, var_o[3] = {0};
    double est_b[3] = {0}, est_o[3] = {0};
    struct sim s = {hs_draw(xorshift(), R), R};
    for (int i = 0; i < 400000; i++) {
        int site = (int)(xorshift() % 3);
        uint64_t sz = sizes[site][xorshift() % 4];
        double p = hs_prob(sz, R);
        true_b[site] += (double)sz;
        true_o[site] += 1;
        var_b[site] += (double)sz * (double)sz * (1 / p - 1);
        var_o[site] += 1 / p - 1;
        if (sim_alloc(&s, sz)) {
            double b, o;
            hs_weight(sz, R, &b, &o);
            est_b[site] += b;
            est_o[site] += o;
        }
    }
    for (int site = 0; site < 3; site++) {
        double db = est_b[site] - true_b[site], dob = est_o[site] - true_o[site];
        CHECK(fabs(db) <= 5 * sqrt(var_b[site]) && fabs(db) < 0.03 * true_b[site],
              "site %d bytes: estimate/truth %.4f (sigma %.4f)", site, est_b[site] / true_b[site],
              sqrt(var_b[site]) / true_b[site]);
        CHECK(fabs(dob) <= 5 * sqrt(var_o[site]) + 1e-9, "site %d objects: estimate/truth %.4f",
              site, est_o[site] / true_o[site]);
    }
}

static void test_unbiased_small(void **state)
{
    (void)state;
    /* 10 MB live in 100-byte blocks at R = 512K: about 20 samples per run;
     * averaged over 400 runs the estimate is within 2 %. */
    const uint64_t R = 512 * 1024;
    const int n = 100000, runs = 400;
    double sum = 0;
    struct sim s = {hs_draw(xorshift(), R), R};
    for (int r = 0; r < runs; r++) {
        double est = 0;
        for (int i = 0; i < n; i++)
            if (sim_alloc(&s, 100)) {
                double b, o;
                hs_weight(100, R, &b, &o);
                est += b;
            }
        sum += est;
    }
    double ratio = sum / runs / (100.0 * n);
    CHECK(fabs(ratio - 1) < 0.02, "small blocks: estimate/truth %.4f", ratio);
}

static void *map(size_t n)
{
    void *p = calloc(1, n);
    assert_non_null(p);
    return p;
}

static void test_python_frames(void **state)
{
    (void)state;
    /* Strings: interned once, found again, the tail of a long one kept,
     * no room: id 0 and counted. */
    struct hs_strs st;
    void *sm = map(hs_strs_bytes(600, 16));
    hs_strs_init(&st, sm, 600, 16);
    uint32_t a = hs_str_intern(&st, "/srv/app.py", 11), b = hs_str_intern(&st, "load_frame", 10);
    CHECK(a && b && a != b, "ids %u %u", a, b);
    CHECK(hs_str_intern(&st, "/srv/app.py", 11) == a, "found again");
    CHECK(strcmp(hs_str(&st, a), "/srv/app.py") == 0 && strcmp(hs_str(&st, b), "load_frame") == 0,
          "read back");
    CHECK(strcmp(hs_str(&st, 0), "?") == 0 && strcmp(hs_str(&st, 599), "?") == 0, "bad ids");
    char longs[300];
    memset(longs, 'a', sizeof longs);
    memcpy(longs + sizeof longs - 6, "end.py", 6);
    uint32_t l = hs_str_intern(&st, longs, sizeof longs);
    CHECK(l && strlen(hs_str(&st, l)) == HS_STR_MAX &&
              strcmp(hs_str(&st, l) + HS_STR_MAX - 6, "end.py") == 0,
          "the tail of a long string");
    int got = 0;
    for (int i = 0; i < 20; i++) {
        char s[16];
        snprintf(s, sizeof s, "s%d", i);
        got += hs_str_intern(&st, s, strlen(s)) != 0;
    }
    CHECK(got == 16 / 4 * 3 - 3 && atomic_load(&st.full) == (uint64_t)(20 - got),
          "slots full: %d interned", got);
    /* Sites: the same native stack with other Python frames is another site;
     * the frames read back. */
    const uint32_t cap = 16;
    struct hs_sites t;
    void *mem = map(hs_sites_bytes(cap, 64));
    hs_sites_init(&t, mem, cap, 64);
    uintptr_t f1[3 + 4] = {11, 12, 13}, f2[3 + 4] = {11, 12, 13};
    hs_py_word(a, b, 42, &f1[3]);
    hs_py_word(a, b, 7, &f1[5]);
    hs_py_word(a, b, 43, &f2[3]);
    hs_py_word(a, b, 7, &f2[5]);
    uint64_t h1 = hs_stack_hash(f1, 7), h2 = hs_stack_hash(f2, 7);
    uint32_t i1 = hs_site_get_py(&t, h1, f1, 3, 2), i2 = hs_site_get_py(&t, h2, f2, 3, 2);
    CHECK(i1 != HS_OTHER && i2 != HS_OTHER && i1 != i2, "two sites");
    CHECK(hs_site_get_py(&t, h1, f1, 3, 2) == i1, "found again");
    const uintptr_t *f;
    CHECK(hs_site_frames(&t, i1, &f) == 3 && f[2] == 13, "native frames");
    CHECK(hs_site_pyframes(&t, i2, &f) == 2, "python frames");
    uint32_t file, func;
    int line;
    hs_py_unword(&f[0], &file, &func, &line);
    CHECK(file == a && func == b && line == 43, "innermost %u %u %d", file, func, line);
    hs_py_unword(&f[2], &file, &func, &line);
    CHECK(line == 7, "outer line %d", line);
    CHECK(atomic_load(&t.frames_used) == 14, "frames used %u", atomic_load(&t.frames_used));
    uintptr_t one[1] = {5};
    uint32_t i3 = hs_site_get(&t, hs_stack_hash(one, 1), one, 1);
    CHECK(hs_site_pyframes(&t, i3, &f) == 0, "a native site has none");
    free(sm);
    free(mem);
}

static void test_error_bars(void **state)
{
    (void)state;
    /* Three sites (10 MB in 100-byte blocks, 30 MB in 1000..64K blocks, 60
     * MB in 2-5 MB blocks) at R = 512K, 300 runs through the site table:
     * the stated sd (hs_site_sd, the Poisson bound sqrt(R x live)) agrees
     * with the spread of the estimates across runs within 15 % for the
     * small blocks and is above it for the big ones (a bound), and estimate
     * +- 3 sd covers the truth in at least 90 % of the runs (+- 2 sd is
     * printed too). */
    const uint64_t R = 512 * 1024;
    static const uint64_t sizes[3][3] = {{100, 100, 100},
                                         {1000, 16000, 65536},
                                         {2u << 20, 3u << 20, 5u << 20}};
    static const double want[3] = {10e6, 30e6, 60e6};
    const int runs = 300;
    size_t cap = 16;
    void *mem = map(hs_sites_bytes((uint32_t)cap, 64));
    double sum_sd[3] = {0}, sum_d2[3] = {0};
    int covered[3] = {0}, covered2[3] = {0};
    struct sim s = {hs_draw(xorshift(), R), R};
    for (int r = 0; r < runs; r++) {
        struct hs_sites t;
        memset(mem, 0, hs_sites_bytes((uint32_t)cap, 64));
        hs_sites_init(&t, mem, (uint32_t)cap, 64);
        uint32_t idx[3];
        double truth[3] = {0};
        for (int k = 0; k < 3; k++) {
            uintptr_t f[1] = {(uintptr_t)k + 1};
            idx[k] = hs_site_get(&t, hs_stack_hash(f, 1), f, 1);
        }
        for (int k = 0; k < 3; k++)
            for (unsigned i = 0; truth[k] < want[k]; i++) {
                uint64_t sz = sizes[k][i % 3];
                truth[k] += (double)sz;
                if (sim_alloc(&s, sz))
                    hs_site_account(&t, idx[k], sz, R, +1);
            }
        for (int k = 0; k < 3; k++) {
            struct hs_site *site = hs_site_at(&t, idx[k]);
            double est = atomic_load(&site->live_bytes), sd = hs_site_sd(site);
            sum_sd[k] += sd;
            sum_d2[k] += (est - truth[k]) * (est - truth[k]);
            covered[k] += fabs(est - truth[k]) <= 3 * sd;
            covered2[k] += fabs(est - truth[k]) <= 2 * sd;
        }
    }
    for (int k = 0; k < 3; k++) {
        double stated = sum_sd[k] / runs, seen = sqrt(sum_d2[k] / runs);
        print_message("site %d: stated sd %.3f MB, seen %.3f MB; covered by +-3 sd %d/%d, "
                      "+-2 sd %d/%d\n",
                      k, stated / 1e6, seen / 1e6, covered[k], runs, covered2[k], runs);
        CHECK(k == 2 ? stated > seen : fabs(stated / seen - 1) < 0.15,
              "site %d: stated sd %.0f vs seen %.0f", k, stated, seen);
        CHECK(covered[k] >= runs * 9 / 10, "site %d: covered in %d of %d runs", k, covered[k],
              runs);
    }
    /* Freed: back to zero exactly. */
    struct hs_sites t;
    memset(mem, 0, hs_sites_bytes((uint32_t)cap, 64));
    hs_sites_init(&t, mem, (uint32_t)cap, 64);
    uintptr_t f[1] = {9};
    uint32_t i = hs_site_get(&t, hs_stack_hash(f, 1), f, 1);
    hs_site_account(&t, i, 100, R, +1);
    hs_site_account(&t, i, 3000, R, +1);
    /* Each sample of a small block stands for about R bytes, +- about R. */
    double w1 = 100 / hs_prob(100, R), w2 = 3000 / hs_prob(3000, R);
    double v = (w1 + w2) * (double)R;
    CHECK(fabs(hs_site_sd(hs_site_at(&t, i)) - sqrt(v)) < 1e-9 * sqrt(v) &&
              fabs(sqrt(v) / (sqrt(2.0) * (double)R) - 1) < 0.01,
          "two small samples: sd %.1f", hs_site_sd(hs_site_at(&t, i)));
    /* A block of 8 R: sqrt(R x its size), not 0. */
    hs_site_account(&t, i, 8 * R, R, +1);
    CHECK(fabs(hs_site_sd(hs_site_at(&t, i)) - sqrt(v + 8.0 * R / hs_prob(8 * R, R) * R)) < 1,
          "a big block: sd %.1f", hs_site_sd(hs_site_at(&t, i)));
    hs_site_account(&t, i, 8 * R, R, -1);
    hs_site_account(&t, i, 100, R, -1);
    hs_site_account(&t, i, 3000, R, -1);
    CHECK(hs_site_sd(hs_site_at(&t, i)) == 0, "freed: sd 0");
    free(mem);
}

static void test_sites(void **state)
{
    (void)state;
    struct hs_sites t;
    const uint32_t cap = 64;
    void *mem = map(hs_sites_bytes(cap, 200));
    hs_sites_init(&t, mem, cap, 200);
    const uint64_t R = 4096;
    uintptr_t fr[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {1, 2, 3, 5}};
    uint64_t h[3];
    uint32_t idx[3];
    for (int i = 0; i < 3; i++) {
        h[i] = hs_stack_hash(fr[i], 4);
        idx[i] = hs_site_get(&t, h[i], fr[i], 4);
        CHECK(idx[i] != HS_OTHER, "site %d went to other", i);
    }
    CHECK(h[0] != h[1] && h[0] != h[2], "hash collision");
    CHECK(hs_site_get(&t, h[1], fr[1], 4) == idx[1], "found again");
    const uintptr_t *f;
    CHECK(hs_site_frames(&t, idx[2], &f) == 4 && f[3] == 5, "frames kept");
    hs_site_account(&t, idx[0], 100000, R, +1);
    hs_site_account(&t, idx[1], 300000, R, +1);
    hs_site_account(&t, idx[1], 300000, R, +1);
    hs_site_account(&t, idx[2], 200000, R, +1);
    uint32_t top[8];
    double val[8];
    size_t n = hs_top(&t, top, val, 8);
    CHECK(n == 3 && top[0] == idx[1] && top[1] == idx[2] && top[2] == idx[0],
          "top order: %zu", n);
    CHECK(fabs(val[0] - 600000) < 1e-3, "top value %.3f", val[0]);
    hs_site_account(&t, idx[1], 300000, R, -1);
    hs_site_account(&t, idx[1], 300000, R, -1);
    n = hs_top(&t, top, val, 2);
    CHECK(n == 2 && top[0] == idx[2] && top[1] == idx[0], "after frees: %zu", n);
    CHECK(atomic_load(&hs_site_at(&t, idx[1])->live_bytes) == 0, "exactly zero");
    CHECK(fabs(atomic_load(&t.total_live) - 300000) < 1e-3, "total %.3f",
          atomic_load(&t.total_live));
    /* Fill past 3/4: the rest go to [other]. */
    int others = 0;
    for (uintptr_t k = 100; k < 200; k++) {
        uintptr_t one[1] = {k};
        uint32_t i = hs_site_get(&t, hs_stack_hash(one, 1), one, 1);
        if (i == HS_OTHER)
            others++;
    }
    CHECK(atomic_load(&t.used) == cap / 4 * 3, "used %u", atomic_load(&t.used));
    CHECK(others == 100 - (int)(cap / 4 * 3 - 3), "others %d", others);
    CHECK(atomic_load(&t.overflowed) == (uint64_t)others, "overflow counted");
    hs_site_account(&t, HS_OTHER, 1000000, R, +1);
    n = hs_top(&t, top, val, 8);
    CHECK(n == 3 && top[0] == HS_OTHER, "other ranks first: %zu", n);
    CHECK(hs_site_frames(&t, HS_OTHER, &f) == 0, "other has no frames");
    /* Arena full: a new stack goes to [other] too. */
    struct hs_sites t2;
    void *mem2 = map(hs_sites_bytes(cap, 6));
    hs_sites_init(&t2, mem2, cap, 6);
    CHECK(hs_site_get(&t2, h[0], fr[0], 4) != HS_OTHER, "fits");
    CHECK(hs_site_get(&t2, h[1], fr[1], 4) == HS_OTHER, "arena full");
    free(mem);
    free(mem2);
}

static void test_live(void **state)
{
    (void)state;
    struct hs_live t;
    const uint32_t cap = 1024;
    void *mem = map(hs_live_bytes(cap));
    hs_live_init(&t, mem, cap);
    struct hs_live_val old;
    uint64_t sz;
    uint32_t site;
    CHECK(!hs_live_remove(&t, 0x1000, &sz, &site), "empty");
    CHECK(hs_live_insert(&t, 0x1000, 10, 1, &old) == HS_INS_OK, "insert");
    CHECK(hs_live_insert(&t, 0x2000, 20, 2, &old) == HS_INS_OK, "insert 2");
    CHECK(atomic_load(&t.count) == 2, "count");
    CHECK(hs_live_insert(&t, 0x1000, 11, 3, &old) == HS_INS_REPLACED &&
              atomic_load(&old.size) == 10 && atomic_load(&old.site) == 1,
          "stale replaced");
    CHECK(atomic_load(&t.count) == 2, "count after replace");
    CHECK(hs_live_remove(&t, 0x1000, &sz, &site) && sz == 11 && site == 3, "remove");
    CHECK(!hs_live_remove(&t, 0x1000, &sz, &site), "removed twice");
    CHECK(hs_live_remove(&t, 0x2000, &sz, &site) && sz == 20 && site == 2, "remove 2");
    CHECK(atomic_load(&t.count) == 0, "count 0");
    /* Fill to half: then full. Addresses of 16-byte blocks in one heap. */
    uint32_t ok = 0, full = 0;
    for (uintptr_t a = 0x10000; a < 0x10000 + 16 * 2000; a += 16) {
        enum hs_ins r = hs_live_insert(&t, a, 16, 0, &old);
        if (r == HS_INS_OK)
            ok++;
        else if (r == HS_INS_FULL)
            full++;
    }
    CHECK(ok == cap / 2 && atomic_load(&t.count) == cap / 2, "half full: %u", ok);
    CHECK(full == 2000 - cap / 2, "the rest full: %u", full);
    for (uintptr_t a = 0x10000; a < 0x10000 + 16 * 2000; a += 16)
        hs_live_remove(&t, a, &sz, &site);
    CHECK(atomic_load(&t.count) == 0, "emptied");
    /* Churn: tombstones are reused and reclaimed, so a long run of inserts
     * and removes never fills the table. */
    for (int round = 0; round < 200; round++) {
        for (uintptr_t i = 0; i < 300; i++) {
            uintptr_t a = 0x100000 + (uintptr_t)round * 0x10000 + i * 48;
            CHECK(hs_live_insert(&t, a, i, (uint32_t)i, &old) == HS_INS_OK,
                  "churn insert %d/%lu", round, (unsigned long)i);
        }
        for (uintptr_t i = 0; i < 300; i++) {
            uintptr_t a = 0x100000 + (uintptr_t)round * 0x10000 + i * 48;
            CHECK(hs_live_remove(&t, a, &sz, &site) && sz == i && site == i,
                  "churn remove %d/%lu", round, (unsigned long)i);
        }
    }
    uint32_t nonempty = 0;
    for (uint32_t i = 0; i < cap; i++)
        nonempty += atomic_load(&t.key[i]) != 0;
    CHECK(nonempty < cap / 2, "tombstones reclaimed: %u non-empty", nonempty);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_exp),     cmocka_unit_test(test_draw_moments),
        cmocka_unit_test(test_prob_weight), cmocka_unit_test(test_unbiased),
        cmocka_unit_test(test_unbiased_small), cmocka_unit_test(test_sites),
        cmocka_unit_test(test_live),        cmocka_unit_test(test_error_bars),
        cmocka_unit_test(test_python_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
