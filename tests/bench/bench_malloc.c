/* bench_malloc.c: malloc/free throughput ("mtbench"). Each of T threads owns
 * a window of W slots, filled first with blocks of random sizes; then, timed,
 * it does M rounds of: pick a random slot, free its block, malloc a new one
 * of a random size in its place and write its first byte. Sizes come from a
 * fixed-seed xorshift (the same sequence every run): 80 % 16-256 B, 18 %
 * 257 B-4 KiB, 2 % 4-64 KiB. The threads start together (a barrier) and the
 * time is taken from the start until the last of them has done its M pairs;
 * filling and emptying the windows are not timed.
 *
 *   bench_malloc THREADS PAIRS [WINDOW]     (PAIRS per thread; WINDOW 100000)
 *
 * Prints one line:
 *   bench_malloc threads=T pairs=M window=W seconds=S ns_per_pair=N
 * where N = S / M: the wall time of one free+malloc pair of one thread (with
 * two threads on two CPUs, both do theirs in that time).
 * A window of 1000 slots stays in the caches: the per-operation floor. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long pairs;
static size_t window;
static pthread_barrier_t start_line, finish_line;

struct worker {
    pthread_t tid;
    uint64_t seed;
    unsigned long sink;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static inline size_t pick_size(uint64_t r)
{
    unsigned class = (unsigned)(r % 100);
    uint64_t v = r >> 8;
    if (class < 80)
        return 16 + v % 241;       /* 16-256 B */
    if (class < 98)
        return 257 + v % 3839;     /* 257 B - 4 KiB */
    return 4096 + v % 61440;       /* 4-64 KiB */
}

static void *run(void *arg)
{
    struct worker *w = arg;
    uint64_t s = w->seed;
    char **slot = calloc(window, sizeof *slot);
    if (!slot) {
        fprintf(stderr, "bench_malloc: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < window; i++) {
        slot[i] = malloc(pick_size(xorshift(&s)));
        if (!slot[i]) {
            fprintf(stderr, "bench_malloc: malloc failed\n");
            exit(1);
        }
        slot[i][0] = (char)i;
    }
    pthread_barrier_wait(&start_line);
    unsigned long sink = 0;
    for (long n = 0; n < pairs; n++) {
        uint64_t r = xorshift(&s);
        size_t i = (size_t)(r >> 32) % window;
        sink += (unsigned char)slot[i][0];
        free(slot[i]);
        char *p = malloc(pick_size(xorshift(&s)));
        if (!p) {
            fprintf(stderr, "bench_malloc: malloc failed\n");
            exit(1);
        }
        p[0] = (char)n;
        slot[i] = p;
    }
    pthread_barrier_wait(&finish_line);
    for (size_t i = 0; i < window; i++)
        free(slot[i]);
    free(slot);
    w->sink = sink;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: bench_malloc THREADS PAIRS [WINDOW]\n");
        return 2;
    }
    long threads = atol(argv[1]);
    pairs = atol(argv[2]);
    long w = argc > 3 ? atol(argv[3]) : 100000;
    if (threads < 1 || threads > 256 || pairs < 1 || w < 1) {
        fprintf(stderr, "bench_malloc: bad arguments\n");
        return 2;
    }
    window = (size_t)w;
    struct worker *ws = calloc((size_t)threads, sizeof *ws);
    if (!ws || pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1) ||
        pthread_barrier_init(&finish_line, NULL, (unsigned)threads + 1)) {
        fprintf(stderr, "bench_malloc: setup failed\n");
        return 1;
    }
    for (long t = 0; t < threads; t++) {
        ws[t].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
        int err = pthread_create(&ws[t].tid, NULL, run, &ws[t]);
        if (err) {
            fprintf(stderr, "bench_malloc: pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    pthread_barrier_wait(&start_line);
    double t0 = now_s();
    pthread_barrier_wait(&finish_line);
    double secs = now_s() - t0;
    unsigned long sink = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(ws[t].tid, NULL);
        sink += ws[t].sink;
    }
    printf("bench_malloc threads=%ld pairs=%ld window=%zu seconds=%.6f ns_per_pair=%.2f "
           "check=%lu\n",
           threads, pairs, window, secs, secs * 1e9 / (double)pairs, sink % 1000);
    return 0;
}
