/* heap_sites.c: keeps 60, 30 and 10 MB live from three distinct call sites
 * (hold_big, hold_mid, hold_small), in assorted sizes, for
 * test_heap_sites.sh; on SIGUSR1 frees the mid site, on SIGTERM exits.
 *
 * usage: heap_sites PROFILE MODE
 *   PROFILE big:   mostly 2-5 MiB blocks with 0.3 % in small ones (at the
 *                  default 512 KiB rate the estimates' sigma is <= 2.5 %)
 *           small: 64 B - 256 KiB blocks (run it at a low rate, e.g. 8K)
 *   MODE    one:   one thread; mt: one thread per site, plus 2 churning
 *                  threads; fork: allocates, then forks, and the child
 *                  (pid printed) answers the signals.
 * Prints "ready PID" once everything is live, "freed" after SIGUSR1. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MB (1024 * 1024)
#define MAXB 200000

struct site {
    void *p[MAXB]; /* static: the only allocations at a site are its blocks */
    size_t n;
};
static struct site big, mid, small_;
static const char *profile = "big";
static volatile sig_atomic_t want_free, want_exit, churn_stop;

static size_t pick(unsigned *seed, size_t left)
{
    static const size_t bigs[] = {2 * MB, 3 * MB, 5 * MB, 2 * MB + 4096, 4 * MB};
    static const size_t smalls[] = {64, 200, 1000, 4096, 16384, 65536, 262144, 40, 3000};
    unsigned r = rand_r(seed);
    size_t s;
    if (strcmp(profile, "big") == 0)
        s = r % 300 == 0 ? 1024 + r % 3000 : bigs[r % 5];
    else
        s = smalls[r % 9] + r % 64;
    return s < left ? s : left;
}

/* The call of malloc or calloc itself: a static function (not exported:
 * dladdr in the process cannot name it; `reshim heap` reads its name and
 * line from the DWARF, test_heap_sites.sh checks). */
static __attribute__((noinline)) void *take_block(size_t s, int zeroed)
{
    void *q = zeroed ? calloc(1, s) : malloc(s);
    __asm__ volatile("" ::: "memory"); /* no tail call */
    return q;
}

/* Allocates total bytes at this call site (the calls below are the site). */
__attribute__((noinline)) void fill(struct site *st, size_t total, unsigned seed, int zeroed)
{
    for (size_t left = total; left > 0 && st->n < MAXB;) {
        size_t s = pick(&seed, left);
        void *q = take_block(s, zeroed);
        if (!q)
            break;
        memset(q, 1, s < 4096 ? s : 4096);
        st->p[st->n++] = q;
        left -= s;
    }
}

/* The empty asm keeps each call a real call (no tail call): the site's
 * frame stays on the stack. */
__attribute__((noinline)) void hold_big(void) { fill(&big, 60 * MB, 1, 0); __asm__ volatile(""); }
__attribute__((noinline)) void hold_mid(void) { fill(&mid, 30 * MB, 2, 1); __asm__ volatile(""); }
__attribute__((noinline)) void hold_small(void) { fill(&small_, 10 * MB, 3, 0); __asm__ volatile(""); }

static void *run(void *fn)
{
    ((void (*)(void))fn)();
    return NULL;
}

/* Allocates and frees all the time: nothing of it stays live. */
static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *ring[64] = {0};
    while (!churn_stop) {
        unsigned i = (unsigned)rand_r(&seed) % 64;
        free(ring[i]);
        ring[i] = malloc(16 + (size_t)rand_r(&seed) % 20000);
    }
    for (int i = 0; i < 64; i++)
        free(ring[i]);
    return NULL;
}

static void on_sig(int sig)
{
    if (sig == SIGUSR1)
        want_free = 1;
    else
        want_exit = 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 2 ? argv[2] : "one";
    if (argc > 1)
        profile = argv[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sig;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_t th[5];
    if (strcmp(mode, "mt") == 0) {
        void (*fns[3])(void) = {hold_big, hold_mid, hold_small};
        for (int i = 0; i < 2; i++)
            pthread_create(&th[3 + i], NULL, churn, (void *)(uintptr_t)(i + 7));
        for (int i = 0; i < 3; i++)
            pthread_create(&th[i], NULL, run, (void *)fns[i]);
        for (int i = 0; i < 3; i++)
            pthread_join(th[i], NULL);
        churn_stop = 1;
        for (int i = 0; i < 2; i++)
            pthread_join(th[3 + i], NULL);
    } else {
        hold_big();
        hold_mid();
        hold_small();
    }
    if (strcmp(mode, "fork") == 0) {
        pid_t c = fork();
        if (c > 0) {
            int st;
            waitpid(c, &st, 0);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
        }
    }
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (!want_exit) {
        if (want_free) {
            want_free = 0;
            for (size_t i = 0; i < mid.n; i++)
                free(mid.p[i]);
            mid.n = 0;
            printf("freed\n");
            fflush(stdout);
        }
        /* A growth step now and then: the shim's slow points start its
         * stats thread (in a fork child too); nothing of it stays live. */
        free(malloc(300000));
        usleep(10000);
    }
    return 0;
}
