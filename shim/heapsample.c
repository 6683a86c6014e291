/* heapsample.c: the pure parts of the heap profiler: the sampler's
 * arithmetic, the site table and the table of live sampled addresses (see
 * heapsample.h for the concurrency contract).
 *
 * Never allocates, locks, or calls libm (the preload object links libc
 * only): the logarithm and the exponential are computed here. */
#include "heapsample.h"

#include <string.h>

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

/* ---- arithmetic ---------------------------------------------------------- */

static double pow2i(int k) /* 2^k, -1022 <= k <= 1023 */
{
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

double hs_log(double x)
{
    /* x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(z),
     * z = (m-1)/(m+1), |z| <= 0.1716: the odd series to z^19 leaves an
     * error below 1e-15. */
    if (!(x > 0))
        return -1e300;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff);
    if (e == 0) { /* subnormal: scale up first */
        x *= pow2i(60);
        memcpy(&bits, &x, sizeof bits);
        e = (int)((bits >> 52) & 0x7ff) - 60;
    }
    e -= 1023;
    bits = (bits & ((1ull << 52) - 1)) | (1023ull << 52);
    double m;
    memcpy(&m, &bits, sizeof m);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    double z = (m - 1) / (m + 1), z2 = z * z, sum = 0;
    for (int k = 19; k >= 3; k -= 2)
        sum = (sum + 1.0 / k) * z2;
    return 2 * z * (1 + sum) + e * 0.69314718055994530942;
}

double hs_one_minus_exp(double x)
{
    if (!(x > 0))
        return 0;
    if (x < 0.5) { /* x - x^2/2! + x^3/3! - ...: no cancellation for small x */
        double term = x, sum = x;
        for (int k = 2; k <= 22; k++) {
            term *= -x / k;
            double next = sum + term;
            if (next == sum) /* the terms only shrink: none changes the sum now */
                break;
            sum = next;
        }
        return sum;
    }
    if (x > 745)
        return 1;
    /* e^-x = e^-r 2^-k with x = k ln2 + r, |r| <= ln2/2. */
    const double ln2 = 0.69314718055994530942;
    int k = (int)(x / ln2 + 0.5);
    double r = x - k * ln2, term = 1, e = 1;
    for (int i = 1; i <= 20; i++) {
        term *= -r / i;
        e += term;
    }
    return k > 1022 ? 1 : 1 - e * pow2i(-k);
}

int64_t hs_draw(uint64_t rnd, uint64_t rate)
{
    double u = (double)((rnd >> 11) + 1) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double x = -(double)rate * hs_log(u);
    if (x >= 4e18)
        return (int64_t)4e18;
    return x > 0 ? (int64_t)x : 0;
}

double hs_prob(uint64_t size, uint64_t rate)
{
    if (!rate)
        return 1;
    return hs_one_minus_exp((double)size / (double)rate);
}

void hs_weight(uint64_t size, uint64_t rate, double *bytes, double *objects)
{
    double p = hs_prob(size ? size : 1, rate);
    if (!(p > 0))
        p = 1e-300;
    *bytes = (double)size / p;
    *objects = 1 / p;
}

/* ---- sites ---------------------------------------------------------------- */

size_t hs_sites_bytes(uint32_t cap, uint32_t frames_cap)
{
    return (size_t)cap * sizeof(struct hs_site) + (size_t)frames_cap * sizeof(uintptr_t);
}

void hs_sites_init(struct hs_sites *t, void *mem, uint32_t cap, uint32_t frames_cap)
{
    memset(t, 0, sizeof *t);
    t->slot = mem;
    t->frames = (uintptr_t *)((char *)mem + (size_t)cap * sizeof(struct hs_site));
    t->cap = cap;
    t->frames_cap = frames_cap;
}

uint64_t hs_stack_hash(const uintptr_t *frames, int n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)frames[i];
        h *= 0x9E3779B97F4A7C15ull;
        h ^= h >> 31;
    }
    return h ? h : 1;
}

uint32_t hs_site_get(struct hs_sites *t, uint64_t hash, const uintptr_t *frames, int n)
{
    return hs_site_get_py(t, hash, frames, n > HS_MAX_FRAMES ? HS_MAX_FRAMES : n, 0);
}

uint32_t hs_site_get_py(struct hs_sites *t, uint64_t hash, const uintptr_t *frames, int n,
                        int npy)
{
    if (n > HS_MAX_FRAMES || n < 0 || npy < 0 || npy > HS_MAX_FRAMES)
        return HS_OTHER;
    int words = n + 2 * npy;
    uint32_t mask = t->cap - 1;
    for (uint32_t i = 0, pos = (uint32_t)hash & mask; i < t->cap; i++, pos = (pos + 1) & mask) {
        struct hs_site *s = &t->slot[pos];
        uint64_t k = atomic_load_explicit(&s->key, ACQ);
        if (k == hash)
            return pos;
        if (k != 0)
            continue;
        uint32_t used = atomic_load_explicit(&t->used, RLX);
        uint32_t fu = atomic_load_explicit(&t->frames_used, RLX);
        if (used >= t->cap / 4 * 3 || fu + (uint32_t)words > t->frames_cap)
            break;
        memcpy(&t->frames[fu], frames, (size_t)words * sizeof *frames);
        s->nframes = (uint32_t)n;
        s->npy = (uint32_t)npy;
        s->frame_at = fu;
        atomic_store_explicit(&t->frames_used, fu + (uint32_t)words, RLX);
        atomic_store_explicit(&t->used, used + 1, RLX);
        atomic_store_explicit(&s->key, hash, REL);
        return pos;
    }
    atomic_store_explicit(&t->overflowed, atomic_load_explicit(&t->overflowed, RLX) + 1, RLX);
    return HS_OTHER;
}

struct hs_site *hs_site_at(struct hs_sites *t, uint32_t idx)
{
    return idx == HS_OTHER || idx >= t->cap ? &t->other : &t->slot[idx];
}

static void add_d(_Atomic double *v, double d)
{
    atomic_store_explicit(v, atomic_load_explicit(v, RLX) + d, RLX);
}

void hs_site_account(struct hs_sites *t, uint32_t idx, uint64_t size, uint64_t rate, int sign)
{
    struct hs_site *s = hs_site_at(t, idx);
    double wb, wo;
    hs_weight(size, rate, &wb, &wo);
    double var = wb * (double)rate;
    if (sign > 0) {
        add_d(&s->live_bytes, wb);
        add_d(&s->live_var, var);
        add_d(&s->live_objects, wo);
        add_d(&s->allocs, wo);
        atomic_store_explicit(&s->samples, atomic_load_explicit(&s->samples, RLX) + 1, RLX);
        atomic_store_explicit(&s->live_samples,
                              atomic_load_explicit(&s->live_samples, RLX) + 1, RLX);
        add_d(&t->total_live, wb);
        return;
    }
    uint64_t ls = atomic_load_explicit(&s->live_samples, RLX);
    if (ls == 0)
        return; /* never recorded: nothing to take back */
    atomic_store_explicit(&s->live_samples, ls - 1, RLX);
    if (ls == 1) { /* the last one: exactly zero, no rounding left over */
        add_d(&t->total_live, -atomic_load_explicit(&s->live_bytes, RLX));
        atomic_store_explicit(&s->live_bytes, 0, RLX);
        atomic_store_explicit(&s->live_var, 0, RLX);
        atomic_store_explicit(&s->live_objects, 0, RLX);
    } else {
        add_d(&s->live_bytes, -wb);
        add_d(&s->live_var, -var);
        add_d(&s->live_objects, -wo);
        add_d(&t->total_live, -wb);
    }
}

/* sqrt by Newton's method (no libm): 1e-15 relative after the iterations
 * below, from a first guess off by at most 2x (the exponent halved). */
static double sqrt_pos(double x)
{
    if (!(x > 0))
        return 0;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits = (bits >> 1) + (511ull << 52); /* exponent halved: within 2x */
    double r;
    memcpy(&r, &bits, sizeof r);
    for (int i = 0; i < 8; i++)
        r = 0.5 * (r + x / r);
    return r;
}

double hs_site_sd(const struct hs_site *s)
{
    return sqrt_pos(atomic_load_explicit(&s->live_var, RLX));
}

int hs_site_frames(const struct hs_sites *t, uint32_t idx, const uintptr_t **f)
{
    *f = NULL;
    if (idx == HS_OTHER || idx >= t->cap)
        return 0;
    const struct hs_site *s = &t->slot[idx];
    if (!atomic_load_explicit(&s->key, ACQ))
        return 0;
    *f = &t->frames[s->frame_at];
    return (int)s->nframes;
}

int hs_site_pyframes(const struct hs_sites *t, uint32_t idx, const uintptr_t **f)
{
    *f = NULL;
    if (idx == HS_OTHER || idx >= t->cap)
        return 0;
    const struct hs_site *s = &t->slot[idx];
    if (!atomic_load_explicit(&s->key, ACQ))
        return 0;
    *f = &t->frames[s->frame_at + s->nframes];
    return (int)s->npy;
}

/* ---- strings ---------------------------------------------------------------- */

size_t hs_strs_bytes(uint32_t cap, uint32_t nslots)
{
    return (size_t)cap + (size_t)nslots * sizeof(uint32_t);
}

void hs_strs_init(struct hs_strs *t, void *mem, uint32_t cap, uint32_t nslots)
{
    memset(t, 0, sizeof *t);
    t->slot = mem;
    t->bytes = (char *)mem + (size_t)nslots * sizeof(uint32_t);
    t->cap = cap;
    t->nslots = nslots;
    atomic_store_explicit(&t->used, 1, RLX); /* offset 0 unused: ids are offsets */
}

uint64_t hs_str_hash(const char *s, size_t len, uint64_t h)
{
    h ^= 0xcbf29ce484222325ull ^ len;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint32_t hs_str_intern(struct hs_strs *t, const char *s, size_t len)
{
    if (len > HS_STR_MAX) {
        s += len - HS_STR_MAX;
        len = HS_STR_MAX;
    }
    uint64_t h = hs_str_hash(s, len, 0);
    uint32_t mask = t->nslots - 1;
    for (uint32_t i = 0, pos = (uint32_t)(h >> 20) & mask; i < t->nslots;
         i++, pos = (pos + 1) & mask) {
        uint32_t off = atomic_load_explicit(&t->slot[pos], ACQ);
        if (off == 0) {
            uint32_t used = atomic_load_explicit(&t->used, RLX);
            if (atomic_load_explicit(&t->count, RLX) >= t->nslots / 4 * 3 ||
                (size_t)used + 3 + len > t->cap)
                break;
            char *at = t->bytes + used;
            at[0] = (char)(len & 0xff);
            at[1] = (char)(len >> 8);
            memcpy(at + 2, s, len);
            at[2 + len] = 0;
            atomic_store_explicit(&t->used, used + 3 + (uint32_t)len, RLX);
            atomic_store_explicit(&t->count, atomic_load_explicit(&t->count, RLX) + 1, RLX);
            atomic_store_explicit(&t->slot[pos], used, REL);
            return used;
        }
        const unsigned char *at = (const unsigned char *)t->bytes + off;
        if ((size_t)(at[0] | at[1] << 8) == len && memcmp(at + 2, s, len) == 0)
            return off;
    }
    atomic_store_explicit(&t->full, atomic_load_explicit(&t->full, RLX) + 1, RLX);
    return 0;
}

const char *hs_str(const struct hs_strs *t, uint32_t id)
{
    if (id == 0 || id >= t->cap || id >= atomic_load_explicit(&t->used, ACQ))
        return "?";
    return t->bytes + id + 2;
}

/* A min-heap of (value, index) pairs, by value. */
static void sift_down(double *v, uint32_t *ix, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && v[l] < v[m])
            m = l;
        if (r < n && v[r] < v[m])
            m = r;
        if (m == i)
            return;
        double tv = v[i];
        uint32_t ti = ix[i];
        v[i] = v[m], ix[i] = ix[m];
        v[m] = tv, ix[m] = ti;
        i = m;
    }
}

static void offer(double *v, uint32_t *ix, size_t *len, size_t n, double val, uint32_t idx)
{
    if (*len < n) { /* sift up */
        size_t i = (*len)++;
        v[i] = val, ix[i] = idx;
        while (i && v[(i - 1) / 2] > v[i]) {
            size_t p = (i - 1) / 2;
            double tv = v[i];
            uint32_t ti = ix[i];
            v[i] = v[p], ix[i] = ix[p];
            v[p] = tv, ix[p] = ti;
            i = p;
        }
    } else if (n && val > v[0]) {
        v[0] = val, ix[0] = idx;
        sift_down(v, ix, *len, 0);
    }
}

size_t hs_top(struct hs_sites *t, uint32_t *out, double *val, size_t n)
{
    size_t len = 0;
    for (uint32_t i = 0; i < t->cap; i++) {
        struct hs_site *s = &t->slot[i];
        if (!atomic_load_explicit(&s->key, ACQ))
            continue;
        double b = atomic_load_explicit(&s->live_bytes, RLX);
        if (b > 0.5 && atomic_load_explicit(&s->live_samples, RLX))
            offer(val, out, &len, n, b, i);
    }
    double ob = atomic_load_explicit(&t->other.live_bytes, RLX);
    if (ob > 0.5 && atomic_load_explicit(&t->other.live_samples, RLX))
        offer(val, out, &len, n, ob, HS_OTHER);
    /* Pop the smallest to the end: largest first. */
    for (size_t end = len; end > 1; end--) {
        double tv = val[0];
        uint32_t ti = out[0];
        val[0] = val[end - 1], out[0] = out[end - 1];
        val[end - 1] = tv, out[end - 1] = ti;
        sift_down(val, out, end - 1, 0);
    }
    return len;
}

/* ---- live sampled addresses ------------------------------------------------ */

#define K_EMPTY ((uintptr_t)0)
#define K_TOMB ((uintptr_t)1)

size_t hs_live_bytes(uint32_t cap)
{
    return (size_t)cap * (sizeof(uintptr_t) + sizeof(struct hs_live_val)) + HS_FILTER;
}

static void filter_add(struct hs_live *t, uintptr_t addr, int d)
{
    _Atomic uint8_t *c = &t->filter[hs_filter_at(addr)];
    uint8_t v = atomic_load_explicit(c, RLX);
    do {
        if (v == 255 || (d < 0 && v == 0))
            return; /* sticky once saturated */
    } while (!atomic_compare_exchange_weak(c, &v, (uint8_t)(v + d)));
}

void hs_live_init(struct hs_live *t, void *mem, uint32_t cap)
{
    memset(t, 0, sizeof *t);
    t->key = mem;
    t->val = (struct hs_live_val *)((char *)mem + (size_t)cap * sizeof(uintptr_t));
    t->filter = (_Atomic uint8_t *)((char *)t->val + (size_t)cap * sizeof(struct hs_live_val));
    t->cap = cap;
}

static inline uint32_t live_home(const struct hs_live *t, uintptr_t addr)
{
    return (uint32_t)(((uint64_t)(addr >> 4) * 0x9E3779B97F4A7C15ull) >> 32) & (t->cap - 1);
}

enum hs_ins hs_live_insert(struct hs_live *t, uintptr_t addr, uint64_t size, uint32_t site,
                           struct hs_live_val *old)
{
    uint32_t mask = t->cap - 1, home = live_home(t, addr);
    int first_empty = -1;
    for (int i = 0; i < HS_WINDOW; i++) {
        uint32_t pos = (home + (uint32_t)i) & mask;
        uintptr_t k = atomic_load_explicit(&t->key[pos], ACQ);
        if (k == addr) { /* stale: its free was never seen */
            atomic_store_explicit(&old->size, atomic_load_explicit(&t->val[pos].size, RLX), RLX);
            atomic_store_explicit(&old->site, atomic_load_explicit(&t->val[pos].site, RLX), RLX);
            atomic_store_explicit(&t->val[pos].size, size, RLX);
            atomic_store_explicit(&t->val[pos].site, site, RLX);
            return HS_INS_REPLACED;
        }
        if (k == K_EMPTY) {
            first_empty = i;
            break;
        }
    }
    if (atomic_load_explicit(&t->count, RLX) >= t->cap / 2)
        return HS_INS_FULL;
    /* Tombstones just before an empty slot end every chain through them:
     * they become empty again (only this serialised writer makes a slot
     * non-empty, so the empty slot after them stays empty meanwhile). */
    if (first_empty >= 0) {
        uint32_t pos = (home + (uint32_t)first_empty) & mask;
        for (int back = 0; back < HS_WINDOW; back++) {
            pos = (pos - 1) & mask;
            uintptr_t tomb = K_TOMB;
            if (!atomic_compare_exchange_strong(&t->key[pos], &tomb, K_EMPTY))
                break;
        }
    }
    for (int i = 0; i < HS_WINDOW; i++) {
        uint32_t pos = (home + (uint32_t)i) & mask;
        uintptr_t k = atomic_load_explicit(&t->key[pos], ACQ);
        if (k == K_EMPTY || k == K_TOMB) {
            atomic_store_explicit(&t->val[pos].size, size, RLX);
            atomic_store_explicit(&t->val[pos].site, site, RLX);
            filter_add(t, addr, +1); /* before the key: a free that finds it sees the count */
            atomic_store_explicit(&t->key[pos], addr, REL);
            atomic_fetch_add_explicit(&t->count, 1, RLX);
            return HS_INS_OK;
        }
    }
    return HS_INS_FULL;
}

bool hs_live_remove(struct hs_live *t, uintptr_t addr, uint64_t *size, uint32_t *site)
{
    if (addr <= K_TOMB)
        return false;
    uint32_t mask = t->cap - 1, home = live_home(t, addr);
    for (int i = 0; i < HS_WINDOW; i++) {
        uint32_t pos = (home + (uint32_t)i) & mask;
        uintptr_t k = atomic_load_explicit(&t->key[pos], ACQ);
        if (k == K_EMPTY)
            return false;
        if (k != addr)
            continue;
        /* Read the value first: once the key is a tombstone, an inserter may
         * reuse the slot. */
        uint64_t sz = atomic_load_explicit(&t->val[pos].size, RLX);
        uint32_t st = atomic_load_explicit(&t->val[pos].site, RLX);
        if (!atomic_compare_exchange_strong(&t->key[pos], &k, K_TOMB))
            return false; /* freed twice at once: the other one took it */
        atomic_fetch_sub_explicit(&t->count, 1, RLX);
        filter_add(t, addr, -1);
        *size = sz;
        *site = st;
        return true;
    }
    return false;
}
