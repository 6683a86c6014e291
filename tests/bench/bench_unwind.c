/* bench_unwind.c: what one sampled stack costs, for comparing the heap
 * profiler's unwinders (run under the shim with RESHIM_HEAP_SAMPLE=1, so
 * that every allocation is sampled, and RESHIM_HEAP_UNWINDER=libunwind or
 * libgcc; or without the shim, as the floor).
 *
 * usage: bench_unwind DEPTH N THREADS
 *   first    the first malloc at DEPTH frames (the shim loads the unwinder,
 *            maps its tables and primes it: the start-up cost)
 *   loop     N x free(malloc(64)) at DEPTH frames, timed
 *   threads  THREADS threads, one after the other, each making its first
 *            allocation at DEPTH frames (timed: the per-thread start-up)
 *            and then waiting, so that all are alive when VmRSS is read
 * Prints one line: depth= n= first_ns= per_op_ns= thread_first_ns=
 * rss_kb_before= rss_kb_after= rss_kb_per_thread= */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static volatile long sink;

/* DEPTH real frames, then the work at the bottom. */
static __attribute__((noinline)) long deep(int depth, long n)
{
    if (depth > 0) {
        long r = deep(depth - 1, n);
        __asm__ volatile("" ::: "memory"); /* no tail call: the frame stays */
        return r + 1;
    }
    long t0 = now_ns();
    for (long i = 0; i < n; i++) {
        char *p = malloc(64);
        p[0] = (char)i;
        sink += p[0];
        free(p);
    }
    return now_ns() - t0;
}

static int depth;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go_home;

static void *thread_main(void *arg)
{
    long *ns = arg, t = deep(depth, 1);
    pthread_mutex_lock(&mu);
    *ns = t > 0 ? t : 1;
    while (!go_home)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_unwind DEPTH N THREADS\n");
        return 2;
    }
    depth = atoi(argv[1]);
    long n = atol(argv[2]);
    int nth = atoi(argv[3]);
    if (depth < 0 || depth > 1000 || n < 1 || nth < 0 || nth > 256)
        return 2;
    /* The shim initialises at its first real call (or heap growth step, or
     * large allocation), never at load, and samples nothing before: a
     * close of no descriptor is one, so that the first sample below is
     * taken (it does nothing without the shim). */
    close(-1);
    long first = deep(depth, 1);
    long loop = deep(depth, n);
    long before = rss_kb();
    pthread_t th[256];
    long tns[256] = {0}, tsum = 0;
    for (int i = 0; i < nth; i++) {
        pthread_create(&th[i], NULL, thread_main, &tns[i]);
        /* One at a time: a thread's first sample is timed alone. */
        for (;;) {
            pthread_mutex_lock(&mu);
            int done = tns[i] != 0;
            pthread_mutex_unlock(&mu);
            if (done)
                break;
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        tsum += tns[i];
    }
    long after = rss_kb();
    pthread_mutex_lock(&mu);
    go_home = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    printf("depth=%d n=%ld first_ns=%ld per_op_ns=%.1f thread_first_ns=%ld rss_kb_before=%ld "
           "rss_kb_after=%ld rss_kb_per_thread=%.1f\n",
           depth, n, first, (double)loop / (double)n, nth ? tsum / nth : 0, before, after,
           nth ? (double)(after - before) / nth : 0.0);
    return 0;
}
