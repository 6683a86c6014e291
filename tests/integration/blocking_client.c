/* blocking_client: a plain C client with one blocking connect, for the
 * integration tests (build/bin/blocking_client).
 *
 *   blocking_client TARGET          HTTP GET / over one blocking connect; prints
 *                                   the body; exit 0 on a 200 reply, else 1
 *   blocking_client -n COUNT TARGET COUNT blocking connects in a row, each on a
 *                                   new socket, no request; one line per call:
 *                                   "connect N: OK|ENAME (strerror) MS ms";
 *                                   exit 0 if every call connected, else 1
 *
 * TARGET is PORT or 127.0.0.1:PORT (IPv4 loopback) or a path with a '/' (an
 * AF_UNIX stream socket). A failed connect prints
 * "blocking_client: connect: ENAME (strerror)" on stderr. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int e)
{
    switch (e) {
    case 0: return "OK";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENOENT: return "ENOENT";
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EACCES: return "EACCES";
    case EPIPE: return "EPIPE";
    case EINPROGRESS: return "EINPROGRESS";
    default: return "EOTHER";
    }
}

struct target {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;
};

static int parse_target(const char *s, struct target *t)
{
    memset(t, 0, sizeof *t);
    if (strchr(s, '/')) {
        struct sockaddr_un *un = (struct sockaddr_un *)&t->ss;
        if (strlen(s) >= sizeof un->sun_path)
            return -1;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, s);
        t->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(s) + 1);
        t->family = AF_UNIX;
        return 0;
    }
    const char *port = s;
    const char *colon = strrchr(s, ':');
    char host[64] = "127.0.0.1";
    if (colon) {
        size_t n = (size_t)(colon - s);
        if (n == 0 || n >= sizeof host)
            return -1;
        memcpy(host, s, n);
        host[n] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || p <= 0 || p > 65535)
        return -1;
    struct sockaddr_in *in = (struct sockaddr_in *)&t->ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((unsigned short)p);
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
        return -1;
    t->len = sizeof *in;
    t->family = AF_INET;
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A connected socket, or -1 with errno set. */
static int connect_to(const struct target *t)
{
    int fd = socket(t->family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&t->ss, t->len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int http_get(const struct target *t)
{
    int fd = connect_to(t);
    if (fd < 0) {
        int e = errno;
        fprintf(stderr, "blocking_client: connect: %s (%s)\n", errno_name(e), strerror(e));
        return 1;
    }
    const char *req = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: blocking_client\r\n\r\n";
    if (write_all(fd, req, strlen(req)) < 0) {
        int e = errno;
        fprintf(stderr, "blocking_client: send: %s (%s)\n", errno_name(e), strerror(e));
        close(fd);
        return 1;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return 1;
    }
    for (;;) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return 1;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            fprintf(stderr, "blocking_client: recv: %s (%s)\n", errno_name(e), strerror(e));
            free(buf);
            close(fd);
            return 1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    int status = 0;
    if (!body || sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
        fprintf(stderr, "blocking_client: not an HTTP reply (%zu bytes)\n", len);
        free(buf);
        return 1;
    }
    body += 4;
    fwrite(body, 1, len - (size_t)(body - buf), stdout);
    free(buf);
    if (status != 200) {
        fprintf(stderr, "blocking_client: HTTP status %d\n", status);
        return 1;
    }
    return 0;
}

static int connect_loop(const struct target *t, long count)
{
    int failed = 0;
    for (long i = 1; i <= count; i++) {
        double t0 = now_ms();
        int fd = connect_to(t);
        int e = fd < 0 ? errno : 0;
        double ms = now_ms() - t0;
        if (fd >= 0)
            close(fd);
        else
            failed = 1;
        printf("connect %ld: %s (%s) %.1f ms\n", i, errno_name(e), e ? strerror(e) : "connected",
               ms);
        fflush(stdout);
    }
    return failed;
}

static void usage(void)
{
    fprintf(stderr, "usage: blocking_client [-n COUNT] PORT|127.0.0.1:PORT|/unix/path\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long count = 0;
    int opt;
    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n')
            usage();
        char *end;
        count = strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || count < 1 || count > 100000)
            usage();
    }
    if (optind != argc - 1)
        usage();
    struct target t;
    if (parse_target(argv[optind], &t) < 0) {
        fprintf(stderr, "blocking_client: bad target %s\n", argv[optind]);
        return 2;
    }
    return count ? connect_loop(&t, count) : http_get(&t);
}
