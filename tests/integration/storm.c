/* storm: THREADS threads of one process, each connecting to 127.0.0.1:PORT
 * (a new blocking socket per call), then sleeping GAP ms after each call,
 * for SECONDS seconds (build/bin/storm, for test_storm.sh).
 *
 *   storm THREADS GAP_MS SECONDS PORT
 *
 * Prints one line of key=value figures: calls (connect calls made),
 * refused (ECONNREFUSED), other (any other outcome), slow (calls that took
 * 100 ms or more: a retried call waits at least 125 ms, one backoff),
 * late_calls / late_slow (the same for calls started in the second half of
 * the run), max_ms. Exit 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, gap_ms;
static double seconds, t_start;
static _Atomic unsigned calls, refused, other, slow, late_calls, late_slow;
static _Atomic unsigned max_us;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    (void)arg;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        double t0 = now_s();
        if (t0 - t_start >= seconds)
            break;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            atomic_fetch_add(&other, 1);
            break;
        }
        int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        int e = r < 0 ? errno : 0;
        close(fd);
        double took = now_s() - t0;
        bool late = t0 - t_start >= seconds / 2;
        atomic_fetch_add(&calls, 1);
        atomic_fetch_add(e == ECONNREFUSED ? &refused : &other, 1);
        if (took >= 0.100) {
            atomic_fetch_add(&slow, 1);
            if (late)
                atomic_fetch_add(&late_slow, 1);
        }
        if (late)
            atomic_fetch_add(&late_calls, 1);
        unsigned us = (unsigned)(took * 1e6), m = atomic_load(&max_us);
        while (us > m && !atomic_compare_exchange_weak(&max_us, &m, us))
            ;
        struct timespec ts = {gap_ms / 1000, (long)(gap_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: storm THREADS GAP_MS SECONDS PORT\n");
        return 2;
    }
    int n = atoi(argv[1]);
    gap_ms = atoi(argv[2]);
    seconds = atof(argv[3]);
    port = atoi(argv[4]);
    if (n < 1 || n > 1000 || gap_ms < 0 || seconds <= 0 || port < 1 || port > 65535) {
        fprintf(stderr, "storm: bad arguments\n");
        return 2;
    }
    pthread_t *t = calloc((size_t)n, sizeof *t);
    t_start = now_s();
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "storm: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    printf("calls=%u refused=%u other=%u slow=%u late_calls=%u late_slow=%u max_ms=%.1f\n",
           calls, refused, other, slow, late_calls, late_slow, atomic_load(&max_us) / 1000.0);
    free(t);
    return 0;
}
