/* stress_util.h: shared by the stress programs (tests/stress/st_NAME.c), header
 * only. A process asks its OWN stats socket ($RESHIM_RUN_DIR/<pid>.sock,
 * else /tmp/reshim-<uid>/<pid>.sock) with a stack buffer (no malloc, so the
 * question never changes the figures it reads), and picks numbers out of the
 * JSON answer. */
#ifndef STRESS_UTIL_H
#define STRESS_UTIL_H
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define STATS_CAP 65536

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void own_sock_path(char *out, size_t cap)
{
    const char *dir = getenv("RESHIM_RUN_DIR");
    if (dir && *dir)
        snprintf(out, cap, "%s/%d.sock", dir, (int)getpid());
    else
        snprintf(out, cap, "/tmp/reshim-%u/%d.sock", (unsigned)getuid(), (int)getpid());
}

/* Waits (up to secs) until the own stats socket file exists; the waits are
 * "slow points" where the shim starts its stats thread. 0 when it does. */
static inline int wait_own_socket(double secs)
{
    char path[108];
    own_sock_path(path, sizeof path);
    double end = now_s() + secs;
    while (access(path, F_OK) != 0) {
        if (now_s() > end)
            return -1;
        poll(NULL, 0, 10);
    }
    return 0;
}

/* Sends "req\n" to the own stats socket and reads the answer (up to its first
 * newline, or EOF) into out. Returns its length, or -1 (errno kept). */
static inline long ask_own(const char *req, char *out, size_t cap)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    own_sock_path(a.sun_path, sizeof a.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    char line[256];
    int n = snprintf(line, sizeof line, "%s\n", req);
    if (write(fd, line, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    int multi = strncmp(req, "metrics", 7) == 0; /* ends at EOF, not at a newline */
    while (len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 20000) <= 0)
            break;
        ssize_t r = read(fd, out + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        out[len] = 0;
        if (!multi && memchr(out, '\n', len))
            break;
    }
    out[len] = 0;
    close(fd);
    return len ? (long)len : -1;
}

/* The number after "key": in json, searched from the first occurrence of
 * `after` (NULL: from the start). 0 and *ok = 0 when missing. */
static inline long long json_num(const char *json, const char *after, const char *key, int *ok)
{
    const char *p = json;
    if (after) {
        p = strstr(json, after);
        if (!p) {
            *ok = 0;
            return 0;
        }
    }
    char k[96];
    snprintf(k, sizeof k, "\"%s\":", key);
    p = strstr(p, k);
    if (!p) {
        *ok = 0;
        return 0;
    }
    return strtoll(p + strlen(k), NULL, 10);
}

struct memfig {
    long long heap_live, heap_peak, allocs, frees, mmap_anon, mmap_anon_peak, pid;
    long long conn_calls, conn_failures, conn_retries, conn_recovered, conn_gave_up;
};

/* Reads the figures of the own process; 0 on success. */
static inline int own_figures(struct memfig *m)
{
    static char buf[STATS_CAP]; /* static: the callers are single-threaded */
    if (ask_own("stats", buf, sizeof buf) < 0)
        return -1;
    int ok = 1;
    m->pid = json_num(buf, NULL, "pid", &ok);
    m->heap_live = json_num(buf, "\"mem\":", "heap_live_bytes", &ok);
    m->heap_peak = json_num(buf, "\"mem\":", "heap_peak_bytes", &ok);
    m->allocs = json_num(buf, "\"mem\":", "allocs", &ok);
    m->frees = json_num(buf, "\"mem\":", "frees", &ok);
    m->mmap_anon = json_num(buf, "\"mem\":", "mmap_anon_bytes", &ok);
    m->mmap_anon_peak = json_num(buf, "\"mem\":", "mmap_anon_peak_bytes", &ok);
    m->conn_calls = json_num(buf, "\"connect\":", "calls", &ok);
    m->conn_failures = json_num(buf, "\"connect\":", "failures", &ok);
    m->conn_retries = json_num(buf, "\"connect\":", "retries", &ok);
    m->conn_recovered = json_num(buf, "\"connect\":", "recovered", &ok);
    m->conn_gave_up = json_num(buf, "\"connect\":", "gave_up", &ok);
    if (!ok) {
        fprintf(stderr, "stats answer lacks a field: %.300s\n", buf);
        return -1;
    }
    return 0;
}

/* A TCP connect to 127.0.0.1:port; returns the fd or -1 (errno kept). */
static inline int tcp_connect(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* A listening socket on 127.0.0.1 (port 0: any); *port gets its number. */
static inline int tcp_listen(int *port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)*port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 512) != 0)
        return -1;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port on 127.0.0.1 that refuses (bound, never listening: nobody else can
 * take it while we hold it). Returns the fd that holds it. */
static inline int refused_port(int *port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(0x7f000001);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

#endif
