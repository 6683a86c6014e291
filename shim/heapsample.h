/* heapsample.h: the pure parts of the heap profiler (heapprof.c is the
 * shell): the Poisson byte sampler's arithmetic (exponential draw, sampling
 * probability, weights), the table of allocation sites and the table of live
 * sampled addresses. Both tables live in memory the caller provides (the
 * shim maps it raw); nothing here allocates, locks or calls libm.
 *
 * Concurrency contract: writers of the site table and inserters into the
 * address table are serialised by the caller (a spin lock held only on the
 * sampled path); readers of the site table and hs_live_remove() are
 * lock-free and may run at any time. */
#ifndef RESHIM_HEAPSAMPLE_H
#define RESHIM_HEAPSAMPLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arithmetic ---------------------------------------------------------- */

double hs_log(double x);        /* natural logarithm, x > 0 (|rel. error| < 1e-12) */
double hs_one_minus_exp(double x); /* 1 - e^(-x) for x >= 0, accurate for small x */

/* Bytes until the next sample: floor(-R ln U), U uniform in (0, 1] built
 * from the top 53 bits of rnd. Mean R (minus 1/2 for the floor), exponential:
 * an allocation of s bytes is sampled when the countdown goes below 0, with
 * probability exactly 1 - e^(-s/R) (memoryless). */
int64_t hs_draw(uint64_t rnd, uint64_t rate);

/* p(s) = 1 - e^(-s/R), and the weights of one sample: s/p(s) bytes, 1/p(s)
 * objects (unbiased: E[weight * 1{sampled}] = s, resp. 1). */
double hs_prob(uint64_t size, uint64_t rate);
void hs_weight(uint64_t size, uint64_t rate, double *bytes, double *objects);

/* ---- sites ----------------------------------------------------------------
 * Open addressing, keyed by a 64-bit stack hash (never 0), kept <= 3/4 full;
 * the frames of each site in one arena. Samples that find no room (table or
 * arena full) go to the "[other]" site, index HS_OTHER. */
#define HS_MAX_FRAMES 32
#define HS_OTHER UINT32_MAX

struct hs_site {
    _Atomic uint64_t key;          /* 0: empty; published last (release) */
    uint32_t nframes, frame_at;    /* written before key */
    uint32_t npy;                  /* Python frames after the native ones (2 words each) */
    _Atomic double live_bytes;     /* sum of the weights of live samples */
    _Atomic double live_var;       /* its variance (bound): sum of w R over live samples */
    _Atomic double live_objects;
    _Atomic double allocs;         /* sum of object weights of every sample: estimated allocations */
    _Atomic uint64_t samples;      /* samples taken here, ever */
    _Atomic uint64_t live_samples; /* samples still live */
};

struct hs_sites {
    struct hs_site *slot; /* cap slots */
    uintptr_t *frames;    /* frames_cap entries */
    uint32_t cap;         /* a power of two */
    uint32_t frames_cap;
    _Atomic uint32_t used, frames_used;
    struct hs_site other;
    _Atomic double total_live; /* sum over every site */
    _Atomic uint64_t dropped;  /* samples not recorded (address table full) */
    _Atomic uint64_t overflowed; /* samples sent to [other] */
};

/* The standard deviation of a site's live-bytes estimate, as Poisson byte
 * sampling bounds it: sqrt(R x live bytes), each live sample of weight w
 * adding w R to the variance. The variance of the estimate is the sum of
 * s^2 (1 - p) / p over the site's blocks, which is at most R s for every
 * size s (x / (e^x - 1) <= 1), and about R s for blocks small next to R;
 * for blocks of several R it is far smaller, but its unbiased estimate from
 * the samples (w (w - s) each) is near 0 in most runs and a whole block in
 * the few where one is missed: intervals built on it covered the truth in
 * only 83-88 % of runs (test_heap_bars), the bound's in all. */
double hs_site_sd(const struct hs_site *s);

/* Bytes of memory hs_sites_init() needs for cap slots and frames_cap frames. */
size_t hs_sites_bytes(uint32_t cap, uint32_t frames_cap);
void hs_sites_init(struct hs_sites *t, void *mem, uint32_t cap, uint32_t frames_cap);
uint64_t hs_stack_hash(const uintptr_t *frames, int n); /* never 0 */
/* The site of this stack, added when new (writer; serialised). */
uint32_t hs_site_get(struct hs_sites *t, uint64_t hash, const uintptr_t *frames, int n);
/* The same with npy Python frames after the n native ones in frames, two
 * words each (hs_py_word): the site's key (hash) must cover them too. */
uint32_t hs_site_get_py(struct hs_sites *t, uint64_t hash, const uintptr_t *frames, int n,
                        int npy);
struct hs_site *hs_site_at(struct hs_sites *t, uint32_t idx);
/* A sample of size bytes taken (sign +1) or freed (sign -1) at idx (writer). */
void hs_site_account(struct hs_sites *t, uint32_t idx, uint64_t size, uint64_t rate, int sign);
/* Frames of a site (reader): returns the count, *f points into the arena. */
int hs_site_frames(const struct hs_sites *t, uint32_t idx, const uintptr_t **f);
/* Its Python frames (reader): the count; (*f)[2i], (*f)[2i+1] are frame i's
 * words, innermost first (hs_py_unword). */
int hs_site_pyframes(const struct hs_sites *t, uint32_t idx, const uintptr_t **f);

/* ---- Python frames and their strings ------------------------------------------
 * A Python frame is (file, function, line): two words in a site's frames,
 * the ids of its two strings and its line. The strings are interned in a
 * table of their own (an arena of bytes and open addressing on their hash);
 * intern is serialised with the site writers, reading is lock-free (a
 * string is complete before the site that names it is published). */
struct hs_strs {
    char *bytes;        /* cap bytes: [2-byte length][bytes][NUL] ... */
    _Atomic uint32_t *slot; /* nslots: 0 empty, else the offset (the id; 0 unused) */
    uint32_t cap, nslots;   /* nslots a power of two */
    _Atomic uint32_t used, count;
    _Atomic uint64_t full; /* strings that found no room */
};
#define HS_STR_MAX 255 /* longer strings keep their last 255 bytes (a path's end) */
size_t hs_strs_bytes(uint32_t cap, uint32_t nslots);
void hs_strs_init(struct hs_strs *t, void *mem, uint32_t cap, uint32_t nslots);
/* The id of s (len bytes; interned when new), 0 when there is no room. */
uint32_t hs_str_intern(struct hs_strs *t, const char *s, size_t len);
const char *hs_str(const struct hs_strs *t, uint32_t id); /* "?" for 0 or a bad id */
uint64_t hs_str_hash(const char *s, size_t len, uint64_t h);

static inline void hs_py_word(uint32_t file, uint32_t func, int line, uintptr_t w[2])
{
    w[0] = (uintptr_t)file << 32 | func;
    w[1] = (uintptr_t)(uint32_t)line;
}
static inline void hs_py_unword(const uintptr_t w[2], uint32_t *file, uint32_t *func, int *line)
{
    *file = (uint32_t)(w[0] >> 32);
    *func = (uint32_t)w[0];
    *line = (int)(uint32_t)w[1];
}
/* The indexes of the (at most n) sites with the most live bytes, largest
 * first ([other] included when it holds any), with those live bytes in
 * val (n entries too); returns how many (reader). */
size_t hs_top(struct hs_sites *t, uint32_t *out, double *val, size_t n);

/* ---- live sampled addresses -----------------------------------------------
 * Open addressing with a bounded probe window, keys only in one array (a
 * free of an unsampled block reads one or two cache lines), kept <= 1/2
 * full. Remove is lock-free (the key is swapped for a tombstone); insert is
 * serialised by the caller and reclaims tombstones that end a run. */
#define HS_WINDOW 32

struct hs_live_val {
    _Atomic uint64_t size;
    _Atomic uint32_t site;
};

/* In front of the table, a counting filter small enough to stay in cache
 * (HS_FILTER one-byte counters, sticky at 255): a free whose address has a
 * zero counter skips the probe of the table (a cache miss in 1 MiB). */
#define HS_FILTER 16384

struct hs_live {
    _Atomic uintptr_t *key; /* cap keys: 0 empty, 1 tombstone */
    struct hs_live_val *val;
    _Atomic uint8_t *filter; /* HS_FILTER counters */
    uint32_t cap; /* a power of two */
    _Atomic uint32_t count __attribute__((aligned(64))); /* its own line: written per sample */
};

/* The address bits above the 16-byte alignment, no hashing: two shifts
 * fewer on every free, and blocks near each other (what one sample's
 * neighbours are) never share a counter. */
static inline uint32_t hs_filter_at(uintptr_t addr)
{
    return (uint32_t)(addr >> 4) & (HS_FILTER - 1);
}

/* May addr be in the table? (no: certainly not) */
static inline bool hs_live_maybe(const struct hs_live *t, uintptr_t addr)
{
    return atomic_load_explicit(&t->filter[hs_filter_at(addr)], memory_order_relaxed) != 0;
}

enum hs_ins { HS_INS_OK, HS_INS_REPLACED, HS_INS_FULL };

size_t hs_live_bytes(uint32_t cap);
void hs_live_init(struct hs_live *t, void *mem, uint32_t cap);
/* Records addr; when a stale entry for addr was there (its free was never
 * seen), it is replaced and returned in *old (HS_INS_REPLACED). */
enum hs_ins hs_live_insert(struct hs_live *t, uintptr_t addr, uint64_t size, uint32_t site,
                           struct hs_live_val *old);
/* Forgets addr; true (and its size and site) when it was there. */
bool hs_live_remove(struct hs_live *t, uintptr_t addr, uint64_t *size, uint32_t *site);

#endif
