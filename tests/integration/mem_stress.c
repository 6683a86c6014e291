/* mem_stress: every function of the malloc family from several threads at
 * once, for the integration tests (build/bin/mem_stress).
 *
 *   mem_stress THREADS OPS_PER_THREAD [SEED]
 *
 * Each thread keeps a window of up to 2048 live blocks and, OPS_PER_THREAD
 * times, picks a random slot: an empty slot gets a new block from malloc,
 * calloc, realloc(NULL), reallocarray(NULL), posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc or malloc(0); a full one is freed, realloc'ed or
 * reallocarray'ed (grown or shrunk). Sizes are mostly small (1..512 bytes),
 * some up to 64 KiB, a few up to 1 MiB. Every block is written with a pattern
 * (every byte of small blocks; head, tail and one byte per 4 KiB of larger
 * ones) that is checked before it is freed or resized (the preserved part
 * after a realloc), calloc'ed memory must be zero, aligned blocks aligned,
 * malloc_usable_size at least the size asked for. A few edge cases per
 * thread: free(NULL), realloc(p, 0), calloc/reallocarray overflow (NULL,
 * ENOMEM, the block untouched), posix_memalign with a bad alignment (EINVAL).
 * At the end every block is freed, so the program's live heap is what it was
 * before the threads started, whatever OPS_PER_THREAD is.
 *
 * Prints "threads T ops N alloc_calls A free_calls F" where alloc_calls counts
 * the calls that returned a new block (malloc-family calls and reallocs) and
 * free_calls the blocks given back (free, and the old block of each realloc
 * that returned a block, realloc(p, 0)). Exit 0, or 1 on any corruption,
 * misalignment, unexpected NULL or wrong errno (described on stderr). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#define WINDOW 2048
#define PAGE 4096

struct block {
    unsigned char *p;
    size_t n;
    unsigned char tag;
};

struct worker {
    pthread_t t;
    int id;
    unsigned long ops;
    uint64_t rng;
    unsigned long alloc_calls, free_calls;
};

static pthread_barrier_t start_line;
static atomic_int failed;

#define DIE(w, ...)                                                                    \
    do {                                                                               \
        fprintf(stderr, "mem_stress: thread %d: ", (w)->id);                           \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fputc('\n', stderr);                                                           \
        atomic_store(&failed, 1);                                                      \
        return NULL;                                                                   \
    } while (0)

static uint64_t rnd(struct worker *w)
{
    uint64_t x = w->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static size_t rnd_size(struct worker *w)
{
    unsigned r = (unsigned)(rnd(w) % 1000);
    if (r < 900)
        return 1 + rnd(w) % 512;
    if (r < 995)
        return 513 + rnd(w) % (65536 - 512);
    return 65537 + rnd(w) % (1048576 - 65536);
}

/* The positions written and checked: all of a block up to 4 KiB; else the
 * first and last 64 bytes and one byte per 4 KiB. */
static inline unsigned char pat(unsigned char tag, size_t i)
{
    return (unsigned char)(tag + i * 31 + (i >> 8));
}

static void mark(unsigned char *p, size_t n, unsigned char tag)
{
    if (n <= PAGE) {
        for (size_t i = 0; i < n; i++)
            p[i] = pat(tag, i);
        return;
    }
    for (size_t i = 0; i < 64; i++) {
        p[i] = pat(tag, i);
        p[n - 1 - i] = pat(tag, n - 1 - i);
    }
    for (size_t i = 64; i < n - 64; i += PAGE)
        p[i] = pat(tag, i);
}

/* Checks the positions below `upto` (the preserved part after a realloc)
 * that mark(p, n, tag) wrote. Returns the first bad offset, or SIZE_MAX. */
static size_t check(const unsigned char *p, size_t n, unsigned char tag, size_t upto)
{
    if (n <= PAGE) {
        for (size_t i = 0; i < n && i < upto; i++)
            if (p[i] != pat(tag, i))
                return i;
        return SIZE_MAX;
    }
    for (size_t i = 0; i < 64; i++) {
        if (i < upto && p[i] != pat(tag, i))
            return i;
        if (n - 1 - i < upto && p[n - 1 - i] != pat(tag, n - 1 - i))
            return n - 1 - i;
    }
    for (size_t i = 64; i < n - 64 && i < upto; i += PAGE)
        if (p[i] != pat(tag, i))
            return i;
    return SIZE_MAX;
}

/* calloc'ed memory: every byte up to 64 KiB, else one per 512 bytes and the ends. */
static int zeroed(const unsigned char *p, size_t n)
{
    size_t step = n <= 65536 ? 1 : 512;
    for (size_t i = 0; i < n; i += step)
        if (p[i])
            return 0;
    return p[n - 1] == 0;
}

static size_t rnd_align(struct worker *w)
{
    /* 16 .. 64 KiB, mostly small */
    unsigned sh = 4 + (unsigned)(rnd(w) % 6);
    if (rnd(w) % 16 == 0)
        sh = 10 + (unsigned)(rnd(w) % 7);
    return (size_t)1 << sh;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct block *win = calloc(WINDOW, sizeof *win);
    if (!win)
        DIE(w, "calloc of the window failed");
    pthread_barrier_wait(&start_line);

    /* A few edge cases first (only when there is work to do, so that a run
     * with 0 ops makes exactly the same calls as the set-up above). */
    if (w->ops) {
        volatile size_t huge = SIZE_MAX / 2; /* hidden from the compiler's size checks */
        free(NULL);
        errno = 0;
        if (calloc(huge, 4) != NULL || errno != ENOMEM)
            DIE(w, "calloc overflow: expected NULL/ENOMEM, errno %d", errno);
        unsigned char *q = malloc(100);
        if (!q)
            DIE(w, "malloc(100) failed");
        w->alloc_calls++;
        mark(q, 100, 7);
        errno = 0;
        if (reallocarray(q, huge, 4) != NULL || errno != ENOMEM)
            DIE(w, "reallocarray overflow: expected NULL/ENOMEM, errno %d", errno);
        if (check(q, 100, 7, SIZE_MAX) != SIZE_MAX)
            DIE(w, "block changed by a failed reallocarray");
        void *bad = (void *)1;
        if (posix_memalign(&bad, 24, 100) != EINVAL || bad != (void *)1)
            DIE(w, "posix_memalign with alignment 24 did not fail with EINVAL");
        /* realloc(p, 0): glibc frees p and returns NULL. */
        void *z = realloc(q, 0);
        if (z) {
            w->free_calls++;
            w->alloc_calls++;
            free(z);
        }
        w->free_calls++;
    }

    for (unsigned long op = 0; op < w->ops; op++) {
        struct block *b = &win[rnd(w) % WINDOW];
        unsigned r = (unsigned)(rnd(w) % 100);
        if (!b->p) {
            size_t n = rnd_size(w), align = 0;
            unsigned char *p = NULL;
            int is_calloc = 0;
            if (r < 38) {
                p = malloc(n);
            } else if (r < 52) {
                p = calloc(1 + n / 8, 8);
                n = (1 + n / 8) * 8;
                is_calloc = 1;
            } else if (r < 57) {
                p = realloc(NULL, n);
            } else if (r < 62) {
                p = reallocarray(NULL, 1 + n / 16, 16);
                n = (1 + n / 16) * 16;
            } else if (r < 71) {
                void *v = NULL;
                align = rnd_align(w);
                int e = posix_memalign(&v, align, n);
                if (e)
                    DIE(w, "posix_memalign(%zu, %zu) returned %d", align, n, e);
                p = v;
            } else if (r < 79) {
                align = rnd_align(w);
                n = (n + align - 1) / align * align; /* C11: a multiple of the alignment */
                p = aligned_alloc(align, n);
            } else if (r < 87) {
                align = rnd_align(w);
                p = memalign(align, n);
            } else if (r < 92) {
                align = PAGE;
                p = valloc(n);
            } else if (r < 96) {
                align = PAGE;
                p = pvalloc(n);
                n = (n + PAGE - 1) / PAGE * PAGE; /* pvalloc rounds up to pages */
            } else {
                n = 0;
                p = malloc(0);
            }
            if (!p)
                DIE(w, "allocation of %zu bytes (kind %u) returned NULL: %s", n, r, strerror(errno));
            w->alloc_calls++;
            if (align && ((uintptr_t)p & (align - 1)))
                DIE(w, "block %p not aligned to %zu", (void *)p, align);
            if (malloc_usable_size(p) < n)
                DIE(w, "malloc_usable_size %zu < %zu", malloc_usable_size(p), n);
            if (is_calloc && !zeroed(p, n))
                DIE(w, "calloc'ed block of %zu bytes is not zero", n);
            b->p = p;
            b->n = n;
            b->tag = (unsigned char)rnd(w);
            if (n)
                mark(p, n, b->tag);
            continue;
        }
        size_t bad = b->n ? check(b->p, b->n, b->tag, SIZE_MAX) : SIZE_MAX;
        if (bad != SIZE_MAX)
            DIE(w, "block %p of %zu bytes corrupted at offset %zu", (void *)b->p, b->n, bad);
        if (r < 60) {
            free(b->p);
            w->free_calls++;
            b->p = NULL;
            continue;
        }
        size_t n = r < 80 ? rnd_size(w) : (r < 90 ? b->n * 2 + 1 : b->n / 2 + 1);
        unsigned char *p;
        if (r % 4 == 0) {
            n = 1 + n / 8;
            p = reallocarray(b->p, n, 8);
            n *= 8;
        } else {
            p = realloc(b->p, n);
        }
        if (!p)
            DIE(w, "realloc to %zu bytes returned NULL: %s", n, strerror(errno));
        w->alloc_calls++;
        w->free_calls++;
        size_t keep = n < b->n ? n : b->n;
        bad = keep ? check(p, b->n, b->tag, keep) : SIZE_MAX;
        if (bad != SIZE_MAX)
            DIE(w, "realloc from %zu to %zu bytes lost the contents at offset %zu", b->n, n, bad);
        if (malloc_usable_size(p) < n)
            DIE(w, "malloc_usable_size %zu < %zu after realloc", malloc_usable_size(p), n);
        b->p = p;
        b->n = n;
        b->tag = (unsigned char)rnd(w);
        mark(p, n, b->tag);
    }

    for (int i = 0; i < WINDOW; i++) {
        struct block *b = &win[i];
        if (!b->p)
            continue;
        size_t bad = b->n ? check(b->p, b->n, b->tag, SIZE_MAX) : SIZE_MAX;
        if (bad != SIZE_MAX)
            DIE(w, "block of %zu bytes corrupted at offset %zu (final check)", b->n, bad);
        free(b->p);
        w->free_calls++;
    }
    free(win);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mem_stress THREADS OPS_PER_THREAD [SEED]\n");
        return 2;
    }
    int nt = atoi(argv[1]);
    unsigned long ops = strtoul(argv[2], NULL, 10);
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    if (nt < 1 || nt > 64) {
        fprintf(stderr, "mem_stress: 1..64 threads\n");
        return 2;
    }
    /* A wait with nothing to wait for: under the shim a "slow point" that
     * starts its stats thread now, whatever OPS_PER_THREAD is (else only the
     * long runs would reach one, in a heap growth step). And 16 MiB
     * allocated (and freed) in 64 KiB blocks: with heap sampling on (one
     * sample per 512 KiB on average) the first sample, which loads the
     * unwinder, comes now too (the odds against: e^-32). What both keep
     * (glibc's per-thread blocks, the loader's records of libgcc_s: a few
     * KiB) is then in the live heap of every run alike, and the runs
     * compare exactly. */
    poll(NULL, 0, 0);
    for (int i = 0; i < 256; i++) {
        void *volatile p = malloc(64 * 1024);
        free(p);
    }
    struct worker w[64];
    memset(w, 0, sizeof w);
    pthread_barrier_init(&start_line, NULL, (unsigned)nt);
    for (int i = 0; i < nt; i++) {
        w[i].id = i;
        w[i].ops = ops;
        w[i].rng = (seed * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
        if (!w[i].rng)
            w[i].rng = 1;
        if (pthread_create(&w[i].t, NULL, worker_main, &w[i])) {
            fprintf(stderr, "mem_stress: pthread_create failed\n");
            return 1;
        }
    }
    unsigned long a = 0, f = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(w[i].t, NULL);
        a += w[i].alloc_calls;
        f += w[i].free_calls;
    }
    pthread_barrier_destroy(&start_line);
    if (atomic_load(&failed))
        return 1;
    printf("threads %d ops %lu alloc_calls %lu free_calls %lu\n", nt, ops * (unsigned long)nt, a, f);
    return 0;
}
