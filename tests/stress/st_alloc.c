/* st_alloc: THREADS threads of random allocations for SECONDS, then every
 * block given back; under the shim, the shim's counters must account for
 * exactly what the program did.
 *
 *   st_alloc THREADS SECONDS [SEED]     (env ST_NO_STATS=1: skip the stats checks)
 *
 * Each thread keeps up to 1024 live blocks and picks random operations:
 * malloc, calloc, realloc (grow, shrink, from NULL), free, posix_memalign,
 * aligned_alloc, and anonymous private mmap/munmap (whole, or in two halves:
 * the shim's range table must split), sizes 1 B .. 4 MiB (1 in 50 above
 * 1 MiB). Blocks are patterned at both ends and checked before every free,
 * calloc'ed memory must be zero, alignment as asked.
 *
 * Exactness: after a warm-up (see warm_up), the threads are created first
 * and wait on a barrier; the main thread reads the own stats socket
 * (baseline), releases them, reads it about twice a second while they run
 * (the stats thread sums the counter slots the workers write), and again
 * after every thread has freed everything and waits on a second barrier.
 * Then (the question itself allocates nothing):
 *   heap_live_bytes(end) == heap_live_bytes(base)
 *   allocs(end) - allocs(base) == the allocating calls the threads made
 *   frees(end)  - frees(base)  == the blocks the threads gave back
 *   mmap_anon_bytes(end) == mmap_anon_bytes(base)
 * Prints one line with the figures; exit 0, or 1 with the reason on stderr. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "stress_util.h"

#define WINDOW 1024
#define PAGE 4096

enum kind { K_NONE, K_HEAP, K_MAP };

struct block {
    unsigned char *p;
    size_t n;
    unsigned char tag, kind;
};

struct worker {
    pthread_t t;
    int id;
    uint64_t rng;
    unsigned long allocs, frees, maps, unmaps, ops;
};

static pthread_barrier_t go, done, leave;
static double deadline;
static atomic_int failed;

#define DIE(w, ...)                                                                    \
    do {                                                                               \
        fprintf(stderr, "st_alloc: thread %d: ", (w)->id);                             \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fputc('\n', stderr);                                                           \
        atomic_store(&failed, 1);                                                      \
        goto out;                                                                      \
    } while (0)

static uint64_t rnd(struct worker *w)
{
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static size_t rnd_size(struct worker *w)
{
    unsigned r = (unsigned)(rnd(w) % 1000);
    if (r < 850)
        return 1 + rnd(w) % 1024;
    if (r < 980)
        return 1025 + rnd(w) % (256 * 1024);
    return (1u << 20) + 1 + rnd(w) % (3u << 20); /* > 1 MiB */
}

static void mark(unsigned char *p, size_t n, unsigned char tag)
{
    size_t k = n < 64 ? n / 2 : 32;
    for (size_t i = 0; i < k; i++) {
        p[i] = (unsigned char)(tag + i);
        p[n - 1 - i] = (unsigned char)(tag ^ i);
    }
}

static int intact(const unsigned char *p, size_t n, unsigned char tag, size_t upto)
{
    size_t k = n < 64 ? n / 2 : 32;
    for (size_t i = 0; i < k; i++) {
        if (i < upto && p[i] != (unsigned char)(tag + i))
            return 0;
        if (n - 1 - i < upto && p[n - 1 - i] != (unsigned char)(tag ^ i))
            return 0;
    }
    return 1;
}

static void give_back(struct worker *w, struct block *b)
{
    if (b->kind == K_MAP) {
        size_t len = (b->n + PAGE - 1) / PAGE * PAGE;
        if (len >= 2 * PAGE && (b->tag & 1)) { /* in two parts, the upper first */
            size_t half = len / PAGE / 2 * PAGE;
            munmap(b->p + half, len - half);
            munmap(b->p, half);
            w->unmaps += 2;
        } else {
            munmap(b->p, len);
            w->unmaps++;
        }
    } else {
        free(b->p);
        w->frees++;
    }
    b->p = NULL;
    b->kind = K_NONE;
}

/* 16 MiB allocated and freed in 64 KiB blocks: with heap sampling on (one
 * sample per 512 KiB on average) the first sample, which loads the unwinder
 * (the loader allocates for it), comes before the baseline (as in
 * tests/integration/mem_stress.c). */
static void warm_up(void)
{
    for (int i = 0; i < 256; i++) {
        void *volatile p = malloc(64 * 1024);
        free(p);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct block *win = calloc(WINDOW, sizeof *win);
    if (!win)
        abort();
    warm_up();
    pthread_barrier_wait(&go);
    w->allocs = w->frees = 0; /* the window itself is not counted: it stays until leave */
    for (;;) {
        if ((w->ops & 255) == 0 && now_s() > deadline)
            break;
        w->ops++;
        struct block *b = &win[rnd(w) % WINDOW];
        unsigned r = (unsigned)(rnd(w) % 100);
        if (b->kind == K_NONE) {
            size_t n = rnd_size(w), align = 0;
            unsigned char *p = NULL;
            int zero = 0, kind = K_HEAP;
            if (r < 35) {
                p = malloc(n);
            } else if (r < 50) {
                p = calloc(1, n);
                zero = 1;
            } else if (r < 58) {
                p = realloc(NULL, n);
            } else if (r < 68) {
                void *v = NULL;
                align = (size_t)16 << (rnd(w) % 9);
                if (posix_memalign(&v, align, n) != 0)
                    DIE(w, "posix_memalign(%zu, %zu) failed", align, n);
                p = v;
            } else if (r < 78) {
                align = (size_t)16 << (rnd(w) % 9);
                n = (n + align - 1) / align * align;
                p = aligned_alloc(align, n);
            } else {
                p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                    DIE(w, "mmap(%zu) failed: %s", n, strerror(errno));
                kind = K_MAP;
                align = PAGE;
                zero = 1;
            }
            if (!p)
                DIE(w, "allocation of %zu bytes (kind %u) failed: %s", n, r, strerror(errno));
            if (kind == K_MAP)
                w->maps++;
            else
                w->allocs++;
            if (align && ((uintptr_t)p & (align - 1)))
                DIE(w, "%p is not aligned to %zu", (void *)p, align);
            if (zero && (p[0] || p[n - 1] || p[n / 2]))
                DIE(w, "zeroed memory of %zu bytes is not zero", n);
            b->p = p;
            b->n = n;
            b->kind = (unsigned char)kind;
            b->tag = (unsigned char)rnd(w);
            mark(p, n, b->tag);
            continue;
        }
        if (!intact(b->p, b->n, b->tag, SIZE_MAX))
            DIE(w, "block %p of %zu bytes corrupted", (void *)b->p, b->n);
        if (b->kind == K_HEAP && r < 35) { /* realloc: grow or shrink */
            size_t n = r < 20 ? rnd_size(w) : b->n / 2 + 1;
            unsigned char *p = realloc(b->p, n);
            if (!p)
                DIE(w, "realloc to %zu failed", n);
            w->allocs++;
            w->frees++;
            if (!intact(p, b->n, b->tag, n < b->n ? n : b->n))
                DIE(w, "realloc from %zu to %zu lost the contents", b->n, n);
            b->p = p;
            b->n = n;
            b->tag = (unsigned char)rnd(w);
            mark(p, n, b->tag);
            continue;
        }
        give_back(w, b);
    }
out:
    for (int i = 0; i < WINDOW; i++)
        if (win[i].kind != K_NONE) {
            if (!intact(win[i].p, win[i].n, win[i].tag, SIZE_MAX)) {
                fprintf(stderr, "st_alloc: thread %d: block corrupted (final)\n", w->id);
                atomic_store(&failed, 1);
            }
            give_back(w, &win[i]);
        }
    pthread_barrier_wait(&done);
    pthread_barrier_wait(&leave);
    free(win);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: st_alloc THREADS SECONDS [SEED]\n");
        return 2;
    }
    int nt = atoi(argv[1]);
    double secs = atof(argv[2]);
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : (uint64_t)time(NULL);
    int stats = !getenv("ST_NO_STATS");
    if (nt < 1 || nt > 64)
        return 2;
    if (stats && wait_own_socket(10) != 0) {
        fprintf(stderr, "st_alloc: no stats socket of my own after 10 s\n");
        return 1;
    }
    warm_up();
    struct worker w[64];
    memset(w, 0, sizeof w);
    pthread_barrier_init(&go, NULL, (unsigned)nt + 1);
    pthread_barrier_init(&done, NULL, (unsigned)nt + 1);
    pthread_barrier_init(&leave, NULL, (unsigned)nt + 1);
    for (int i = 0; i < nt; i++) {
        w[i].id = i;
        w[i].rng = (seed + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(i + 1) * 0xBF58476D1CE4E5B9ull;
        if (pthread_create(&w[i].t, NULL, worker_main, &w[i]))
            return 1;
    }
    struct memfig base = {0}, mid = {0}, end = {0};
    /* Let the threads reach the barrier (their calloc is done) first: a
     * question that races a thread's set-up would miss its window block. */
    usleep(200000);
    if (stats && own_figures(&base) != 0) {
        fprintf(stderr, "st_alloc: the baseline stats question failed\n");
        return 1;
    }
    deadline = now_s() + secs;
    pthread_barrier_wait(&go);
    int questions = 0;
    long long max_live = 0;
    while (stats && now_s() < deadline - 0.5) {
        usleep(500000);
        if (own_figures(&mid) != 0) {
            fprintf(stderr, "st_alloc: a stats question during the run failed\n");
            atomic_store(&failed, 1);
            break;
        }
        questions++;
        if (mid.heap_live > max_live)
            max_live = mid.heap_live;
    }
    pthread_barrier_wait(&done);
    if (stats && own_figures(&end) != 0) {
        fprintf(stderr, "st_alloc: the final stats question failed\n");
        atomic_store(&failed, 1);
    }
    pthread_barrier_wait(&leave);
    unsigned long a = 0, f = 0, m = 0, u = 0, ops = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(w[i].t, NULL);
        a += w[i].allocs;
        f += w[i].frees;
        m += w[i].maps;
        u += w[i].unmaps;
        ops += w[i].ops;
    }
    if (atomic_load(&failed))
        return 1;
    printf("threads %d seconds %.0f ops %lu allocs %lu frees %lu mmaps %lu munmaps %lu", nt,
           secs, ops, a, f, m, u);
    if (!stats) {
        printf("\n");
        return 0;
    }
    printf(" | shim: heap_live %lld -> %lld, allocs +%lld, frees +%lld, mmap_anon %lld -> %lld "
           "(peak %lld), %d questions during the run\n",
           base.heap_live, end.heap_live, end.allocs - base.allocs, end.frees - base.frees,
           base.mmap_anon, end.mmap_anon, end.mmap_anon_peak, questions);
    int bad = 0;
    if (end.heap_live != base.heap_live) {
        fprintf(stderr, "st_alloc: heap_live %lld at the start, %lld at the end (%+lld)\n",
                base.heap_live, end.heap_live, end.heap_live - base.heap_live);
        bad = 1;
    }
    if (end.allocs - base.allocs != (long long)a) {
        fprintf(stderr, "st_alloc: allocs grew by %lld, the program made %lu\n",
                end.allocs - base.allocs, a);
        bad = 1;
    }
    if (end.frees - base.frees != (long long)f) {
        fprintf(stderr, "st_alloc: frees grew by %lld, the program made %lu\n",
                end.frees - base.frees, f);
        bad = 1;
    }
    if (end.mmap_anon != base.mmap_anon) {
        fprintf(stderr, "st_alloc: mmap_anon %lld at the start, %lld at the end\n", base.mmap_anon,
                end.mmap_anon);
        bad = 1;
    }
    if (m && end.mmap_anon_peak <= base.mmap_anon) {
        fprintf(stderr, "st_alloc: mmap_anon_peak %lld never rose above %lld\n",
                end.mmap_anon_peak, base.mmap_anon);
        bad = 1;
    }
    if (questions && max_live <= base.heap_live) {
        fprintf(stderr, "st_alloc: heap_live never rose above the baseline during the run\n");
        bad = 1;
    }
    return bad;
}
