/* bench_rtt.c: blocking request/response round trips in one process, an echo
 * server thread and a client, so that under LD_PRELOAD both ends go through
 * the shim. Used by tests/bench/run.sh, which runs it with and without the
 * shim and compares.
 *
 *   bench_rtt MODE N [SIZE]
 *
 * MODE:
 *   tcp      TCP over 127.0.0.1, send()/recv() on both ends (TCP_NODELAY)
 *   tcp-rw   the same with read()/write()
 *   unix     a socketpair(AF_UNIX, SOCK_STREAM), send()/recv()
 *   connect  N times: connect to 127.0.0.1, one byte each way, close (the
 *            client closes first with SO_LINGER 0: no TIME_WAIT left behind)
 * N round trips (or connections) are timed after a short warm-up; SIZE is the
 * message size in bytes (default 64; connect always uses 1).
 *
 * Prints one line (wall time of the timed part, and the CPU time all the
 * process's threads used in it):
 *   bench_rtt MODE n=N size=SIZE seconds=S per_sec=R cpu_seconds=C
 * Exits 1 on any error (with a message on stderr). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_TCP, M_TCP_RW, M_UNIX, M_CONNECT };

struct server {
    enum mode mode;
    int fd; /* listener (tcp, connect) or the server end of the pair (unix) */
    size_t size;
    long total; /* connections to serve (connect mode) */
};

static void die(const char *what)
{
    fprintf(stderr, "bench_rtt: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of all the process's threads (exact: the scheduler's runtime). */
static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* Reads exactly n bytes; returns 0 on success, 1 on EOF, -1 on error. */
static int read_full(int fd, char *buf, size_t n, int use_rw)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = use_rw ? read(fd, buf + got, n - got) : recv(fd, buf + got, n - got, 0);
        if (r == 0)
            return 1;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const char *buf, size_t n, int use_rw)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = use_rw ? write(fd, buf + put, n - put) : send(fd, buf + put, n - put, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        put += (size_t)r;
    }
    return 0;
}

static void nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die("setsockopt(TCP_NODELAY)");
}

/* Echoes fixed-size messages until the peer closes. */
static void echo(int fd, size_t size, int use_rw)
{
    char *buf = malloc(size);
    if (!buf)
        die("malloc");
    for (;;) {
        int r = read_full(fd, buf, size, use_rw);
        if (r == 1)
            break;
        if (r < 0)
            die("server read");
        if (write_full(fd, buf, size, use_rw) != 0)
            die("server write");
    }
    free(buf);
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    if (s->mode == M_UNIX) {
        echo(s->fd, s->size, 0);
        return NULL;
    }
    if (s->mode == M_TCP || s->mode == M_TCP_RW) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            die("accept");
        nodelay(c);
        echo(c, s->size, s->mode == M_TCP_RW);
        close(c);
        return NULL;
    }
    /* connect mode: one byte each way per connection, then wait for the
     * client's reset (or EOF) and close. */
    for (long i = 0; i < s->total; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            die("accept");
        char b;
        if (read_full(c, &b, 1, 0) != 0 || write_full(c, &b, 1, 0) != 0)
            die("server byte");
        while (recv(c, &b, 1, 0) > 0) {
        }
        close(c);
    }
    return NULL;
}

static int tcp_listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *addr;
    if (bind(fd, (struct sockaddr *)addr, len) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0)
        die("bind/listen");
    return fd;
}

static void round_trips(int fd, char *buf, size_t size, long n, int use_rw)
{
    for (long i = 0; i < n; i++) {
        if (write_full(fd, buf, size, use_rw) != 0)
            die("client write");
        if (read_full(fd, buf, size, use_rw) != 0)
            die("client read");
    }
}

static void one_connection(const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0)
        die("connect");
    char b = 'x';
    if (write_full(fd, &b, 1, 0) != 0 || read_full(fd, &b, 1, 0) != 0)
        die("client byte");
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
        die("setsockopt(SO_LINGER)");
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_rtt tcp|tcp-rw|unix|connect N [SIZE]\n");
        return 2;
    }
    struct server s = {.size = 64};
    const char *m = argv[1];
    if (!strcmp(m, "tcp"))
        s.mode = M_TCP;
    else if (!strcmp(m, "tcp-rw"))
        s.mode = M_TCP_RW;
    else if (!strcmp(m, "unix"))
        s.mode = M_UNIX;
    else if (!strcmp(m, "connect"))
        s.mode = M_CONNECT;
    else {
        fprintf(stderr, "bench_rtt: unknown mode %s\n", m);
        return 2;
    }
    long n = atol(argv[2]);
    if (argc > 3)
        s.size = (size_t)atol(argv[3]);
    if (n <= 0 || s.size == 0 || s.size > (1 << 20)) {
        fprintf(stderr, "bench_rtt: bad N or SIZE\n");
        return 2;
    }
    if (s.mode == M_CONNECT)
        s.size = 1;
    signal(SIGPIPE, SIG_IGN);

    long warm = n / 50 < 1000 ? n / 50 : 1000;
    if (warm < 10)
        warm = 10;
    struct sockaddr_in addr;
    int client = -1;
    if (s.mode == M_UNIX) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            die("socketpair");
        client = sv[0];
        s.fd = sv[1];
    } else {
        s.fd = tcp_listener(&addr);
        s.total = warm + n;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, server_main, &s) != 0) {
        fprintf(stderr, "bench_rtt: pthread_create failed\n");
        return 1;
    }

    double t0, t1, c0, c1;
    if (s.mode == M_CONNECT) {
        for (long i = 0; i < warm; i++)
            one_connection(&addr);
        c0 = cpu_s();
        t0 = now_s();
        for (long i = 0; i < n; i++)
            one_connection(&addr);
        t1 = now_s();
        c1 = cpu_s();
    } else {
        if (s.mode != M_UNIX) {
            client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (client < 0)
                die("socket");
            if (connect(client, (struct sockaddr *)&addr, sizeof addr) != 0)
                die("connect");
            nodelay(client);
        }
        char *buf = calloc(1, s.size);
        if (!buf)
            die("calloc");
        int use_rw = s.mode == M_TCP_RW;
        round_trips(client, buf, s.size, warm, use_rw);
        c0 = cpu_s();
        t0 = now_s();
        round_trips(client, buf, s.size, n, use_rw);
        t1 = now_s();
        c1 = cpu_s();
        free(buf);
        shutdown(client, SHUT_WR);
    }
    pthread_join(th, NULL);
    if (client >= 0)
        close(client);
    close(s.fd);
    double secs = t1 - t0;
    printf("bench_rtt %s n=%ld size=%zu seconds=%.6f per_sec=%.1f cpu_seconds=%.6f\n", m, n,
           s.size, secs, (double)n / secs, c1 - c0);
    return 0;
}
