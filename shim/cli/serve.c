/* serve.c: `reshim serve [--listen HOST:PORT]`: a small HTTP/1.1 server in
 * the CLI process (never in the library) for Prometheus to scrape. GET
 * /metrics answers the merged Prometheus text (0.0.4) of every live shimmed
 * process of this user (snapshots_collect with no pid, then
 * snap_prometheus), plus two figures of its own (processes read, seconds
 * taken); GET / a short page pointing at /metrics; other paths 404, other
 * methods 405 (Allow: GET, HEAD); HEAD as GET without the body. Every answer
 * has Content-Length and Connection: close.
 *
 * Robust by construction: one thread, non-blocking sockets and poll; up to
 * 64 clients at once (more wait in the listen backlog); a request's headers must fit
 * 8 KiB (else 431) and arrive within 5 s (else 408), an answer must be taken
 * within 10 s, so a slow or silent client never holds up a scrape. The
 * processes' stats are read once for all the /metrics requests that are
 * complete at the same moment. After an answer the write side is shut and
 * what the client still sends is read and dropped for up to 1 s before the
 * close, so the answer is never cut by a reset.
 *
 * --listen: HOST:PORT, [IPv6]:PORT, or :PORT (every interface, only when
 * asked); a name is resolved and each of its addresses is listened on.
 * Default 127.0.0.1:19187: not 9187, which Prometheus' default port
 * allocations list gives to the PostgreSQL exporter; that list's 9100-9999
 * range is full, and Prometheus' exporter guidelines suggest a port outside
 * it for exporters not on the list. Port 0 picks a free port (the address
 * is printed on stderr either way). SIGINT/SIGTERM: exit 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define SERVE_DEFAULT "127.0.0.1:19187"
#define SERVE_LISTENERS 8
#define SERVE_CLIENTS 64
#define SERVE_HEAD_MAX 8192        /* bytes of request line and headers */
#define SERVE_READ_MS 5000         /* for the whole request */
#define SERVE_WRITE_MS 10000       /* for the whole answer */
#define SERVE_LINGER_MS 1000       /* reading what is left after the answer */
#define SERVE_PROCS 4096           /* processes read for one scrape */

enum conn_state { C_FREE, C_READING, C_WRITING, C_LINGER };
enum route { R_NONE, R_METRICS, R_INDEX };

struct conn {
    enum conn_state st;
    int fd;
    int64_t deadline;              /* ms, monotonic */
    char in[SERVE_HEAD_MAX];
    size_t inlen;
    enum route route;
    bool head;
    char *out;
    size_t outlen, outoff;
};

struct server {
    int lfd[SERVE_LISTENERS];
    int nl;
    struct conn c[SERVE_CLIENTS];
    unsigned long long requests, scrapes;
};

/* ---- answers ------------------------------------------------------------- */

static const char INDEX_HTML[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>reshim</title></head>\n"
    "<body><h1>reshim</h1>\n<p><a href=\"/metrics\">/metrics</a>: Prometheus text of every "
    "process of this user running with the reshim shim.</p>\n</body></html>\n";

/* Sets the connection's answer: status line, headers, and (unless HEAD)
 * the body. Takes body (malloc'd) or copies a static one. */
static void answer(struct conn *c, int code, const char *reason, const char *ctype,
                   const char *extra, char *body, size_t blen, bool owned)
{
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                      "Connection: close\r\n\r\n",
                      code, reason, ctype, blen, extra ? extra : "");
    if (hl < 0 || (size_t)hl >= sizeof head)
        hl = 0;
    size_t total = (size_t)hl + (c->head ? 0 : blen);
    char *out = malloc(total ? total : 1);
    if (!out) {
        if (owned)
            free(body);
        c->st = C_LINGER; /* nothing to say: close soon */
        shutdown(c->fd, SHUT_WR);
        c->deadline = cli_mono_ms() + SERVE_LINGER_MS;
        return;
    }
    memcpy(out, head, (size_t)hl);
    if (!c->head && blen)
        memcpy(out + hl, body, blen);
    if (owned)
        free(body);
    free(c->out);
    c->out = out;
    c->outlen = total;
    c->outoff = 0;
    c->st = C_WRITING;
    c->deadline = cli_mono_ms() + SERVE_WRITE_MS;
}

static void answer_text(struct conn *c, int code, const char *reason, const char *extra,
                        const char *text)
{
    answer(c, code, reason, "text/plain; charset=utf-8", extra, (char *)text, strlen(text),
           false);
}

/* The body of /metrics: every live process of the user, then our own two. */
static char *metrics_body(size_t *len, struct server *sv)
{
    struct reshim_snapshot **snaps = calloc(SERVE_PROCS, sizeof *snaps);
    if (!snaps)
        return NULL;
    int64_t t0 = cli_mono_ms();
    int n = snapshots_collect(NULL, 0, snaps, SERVE_PROCS);
    if (n < 0)
        n = 0;
    double secs = (double)(cli_mono_ms() - t0) / 1000.0;
    size_t cap = snap_prometheus_max((const struct reshim_snapshot *const *)snaps, (size_t)n) +
                 1024;
    char *mem = malloc(cap);
    if (mem) {
        struct sbuf b;
        sb_init(&b, mem, cap);
        snap_prometheus((const struct reshim_snapshot *const *)snaps, (size_t)n, &b);
        sb_str(&b, "# HELP reshim_serve_processes Shimmed processes whose stats this scrape "
                   "read.\n# TYPE reshim_serve_processes gauge\nreshim_serve_processes ");
        sb_u64(&b, (uint64_t)n);
        sb_str(&b, "\n# HELP reshim_serve_collect_duration_seconds Seconds taken to read the "
                   "processes' stats.\n# TYPE reshim_serve_collect_duration_seconds gauge\n"
                   "reshim_serve_collect_duration_seconds ");
        sb_fixed(&b, secs, 6);
        sb_str(&b, "\n");
        if (b.overflow) {
            cli_err("serve: the metrics text did not fit its buffer (%zu bytes)", cap);
            free(mem);
            mem = NULL;
        } else {
            *len = b.len;
        }
    }
    for (int i = 0; i < n; i++)
        free(snaps[i]);
    free(snaps);
    sv->scrapes++;
    return mem;
}

/* ---- requests ------------------------------------------------------------ */

/* The end of the headers in what was read, or NULL. */
static const char *head_end(const struct conn *c)
{
    for (size_t i = 0; i + 1 < c->inlen; i++) {
        if (c->in[i] == '\n' && c->in[i + 1] == '\n')
            return c->in + i + 2;
        if (i + 3 < c->inlen && !memcmp(c->in + i, "\r\n\r\n", 4))
            return c->in + i + 4;
    }
    return NULL;
}

/* A complete request: route it (metrics are answered by the caller, in a
 * batch). */
static void request(struct server *sv, struct conn *c)
{
    sv->requests++;
    size_t ll = strcspn(c->in, "\r\n");
    char line[SERVE_HEAD_MAX];
    memcpy(line, c->in, ll);
    line[ll] = 0;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || strncmp(sp2 + 1, "HTTP/", 5)) {
        answer_text(c, 400, "Bad Request", NULL, "bad request\n");
        return;
    }
    *sp1 = 0;
    *sp2 = 0;
    const char *method = line, *target = sp1 + 1;
    c->head = !strcmp(method, "HEAD");
    if (strcmp(method, "GET") && !c->head) {
        answer_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
                    "only GET and HEAD are served\n");
        return;
    }
    /* An absolute form (http://host/path) is accepted as a proxy would send it. */
    if (!strncasecmp(target, "http://", 7)) {
        const char *slash = strchr(target + 7, '/');
        target = slash ? slash : "/";
    }
    size_t pl = strcspn(target, "?#");
    if (pl == 8 && !strncmp(target, "/metrics", 8))
        c->route = R_METRICS;
    else if (pl == 1 && target[0] == '/')
        c->route = R_INDEX;
    else if (pl == 11 && !strncmp(target, "/index.html", 11))
        c->route = R_INDEX;
    else {
        answer_text(c, 404, "Not Found", NULL, "not found; the metrics are at /metrics\n");
        return;
    }
    if (c->route == R_INDEX)
        answer(c, 200, "OK", "text/html; charset=utf-8", NULL, (char *)INDEX_HTML,
               sizeof INDEX_HTML - 1, false);
    /* R_METRICS: left for the batch */
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    *c = (struct conn){.st = C_FREE, .fd = -1};
}

static void conn_read(struct server *sv, struct conn *c)
{
    if (c->st == C_LINGER) {
        char junk[4096];
        for (int i = 0; i < 64; i++) {
            ssize_t k = recv(c->fd, junk, sizeof junk, MSG_DONTWAIT);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
                conn_close(c);
                return;
            }
            if (k < 0)
                return;
        }
        return;
    }
    if (c->st != C_READING || c->route != R_NONE)
        return;
    for (;;) {
        size_t room = sizeof c->in - 1 - c->inlen;
        if (room == 0) {
            answer_text(c, 431, "Request Header Fields Too Large", NULL,
                        "request headers larger than 8 KiB\n");
            return;
        }
        ssize_t k = recv(c->fd, c->in + c->inlen, room, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) { /* closed (or reset) before a whole request */
            conn_close(c);
            return;
        }
        c->inlen += (size_t)k;
        c->in[c->inlen] = 0;
        if (memchr(c->in, 0, c->inlen)) {
            answer_text(c, 400, "Bad Request", NULL, "bad request\n");
            return;
        }
        if (head_end(c)) {
            request(sv, c);
            return;
        }
    }
}

static void conn_write(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t k = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0) {
            conn_close(c);
            return;
        }
        c->outoff += (size_t)k;
    }
    free(c->out);
    c->out = NULL;
    shutdown(c->fd, SHUT_WR);
    c->st = C_LINGER;
    c->deadline = cli_mono_ms() + SERVE_LINGER_MS;
}

static bool slot_free(const struct server *sv)
{
    for (int i = 0; i < SERVE_CLIENTS; i++)
        if (sv->c[i].st == C_FREE)
            return true;
    return false;
}

static void accept_all(struct server *sv, int lfd)
{
    while (slot_free(sv)) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                cli_err("serve: accept: %s", strerror(errno));
            return;
        }
        struct conn *c = NULL;
        for (int i = 0; i < SERVE_CLIENTS && !c; i++)
            if (sv->c[i].st == C_FREE)
                c = &sv->c[i];
        if (!c) { /* cannot happen: the listener is only polled with a free slot */
            close(fd);
            continue;
        }
        *c = (struct conn){.st = C_READING, .fd = fd, .deadline = cli_mono_ms() + SERVE_READ_MS};
    }
}

/* ---- listening ------------------------------------------------------------ */

static int parse_listen(const char *arg, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon;
    if (arg[0] == '[') {
        const char *rb = strchr(arg, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - arg - 1) >= hn)
            return -1;
        memcpy(host, arg + 1, (size_t)(rb - arg - 1));
        host[rb - arg - 1] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(arg, ':');
        if (!colon) { /* a bare port: loopback */
            colon = arg - 1;
            snprintf(host, hn, "127.0.0.1");
        } else {
            if ((size_t)(colon - arg) >= hn || memchr(arg, ':', (size_t)(colon - arg)))
                return -1; /* an IPv6 address needs brackets */
            memcpy(host, arg, (size_t)(colon - arg));
            host[colon - arg] = 0;
        }
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= pn || strspn(p, "0123456789") != strlen(p) || atol(p) > 65535)
        return -1;
    snprintf(port, pn, "%s", p);
    return 0;
}

static int listen_on(struct server *sv, const char *arg)
{
    char host[256], port[8];
    if (parse_listen(arg, host, sizeof host, port, sizeof port) != 0) {
        cli_err("serve: --listen %s: expected HOST:PORT, [IPv6]:PORT or :PORT", arg);
        return EXIT_USAGE;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai == EAI_ADDRFAMILY || gai == EAI_NONAME) {
        hints.ai_flags &= ~AI_ADDRCONFIG; /* loopback-only machines */
        gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    }
    if (gai != 0) {
        cli_err("serve: --listen %s: %s", arg, gai_strerror(gai));
        return EXIT_USAGE;
    }
    int last_err = 0;
    for (struct addrinfo *ai = res; ai && sv->nl < SERVE_LISTENERS; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            last_err = errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char h[NI_MAXHOST], s[NI_MAXSERV];
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
            getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, s, sizeof s,
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            cli_err("serve: listening on http://%s%s%s:%s/metrics", ss.ss_family == AF_INET6 ?
                    "[" : "", h, ss.ss_family == AF_INET6 ? "]" : "", s);
        sv->lfd[sv->nl++] = fd;
    }
    freeaddrinfo(res);
    if (sv->nl == 0) {
        cli_err("serve: --listen %s: %s", arg, strerror(last_err ? last_err : EADDRNOTAVAIL));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: reshim serve [--listen HOST:PORT]\n"
               "  serves http://HOST:PORT/metrics: the Prometheus text of every shimmed\n"
               "  process of this user, read at each scrape (default --listen %s;\n"
               "  :PORT listens on every interface, port 0 picks a free one)\n",
            SERVE_DEFAULT);
}

int cmd_serve(int argc, char **argv)
{
    const char *addr = SERVE_DEFAULT;
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"listen", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    for (int c; (c = cli_getopt(argc, argv, "hl:", longopts)) != -1;) {
        if (c == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (c != 'l')
            return EXIT_USAGE;
        addr = optarg;
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument %s", argv[optind]);
    static struct server sv; /* 64 connections with 8 KiB each: not on the stack */
    memset(&sv, 0, sizeof sv);
    for (int i = 0; i < SERVE_CLIENTS; i++)
        sv.c[i] = (struct conn){.st = C_FREE, .fd = -1};
    int rc = listen_on(&sv, addr);
    if (rc != EXIT_OK)
        return rc;

    sigset_t orig;
    cli_stop_signals(&orig);

    struct pollfd pf[SERVE_LISTENERS + SERVE_CLIENTS];
    int owner[SERVE_LISTENERS + SERVE_CLIENTS];
    while (!cli_stop_signal) {
        int np = 0;
        int64_t now = cli_mono_ms(), next = -1;
        /* With every slot taken, new clients wait in the listen backlog. */
        for (int i = 0; i < sv.nl && slot_free(&sv); i++) {
            pf[np] = (struct pollfd){.fd = sv.lfd[i], .events = POLLIN};
            owner[np++] = -1 - i;
        }
        for (int i = 0; i < SERVE_CLIENTS; i++) {
            struct conn *c = &sv.c[i];
            if (c->st == C_FREE)
                continue;
            if (now >= c->deadline) {
                if (c->st == C_READING && c->route == R_NONE && c->inlen > 0) {
                    answer_text(c, 408, "Request Timeout", NULL, "request not complete "
                                "within 5 s\n");
                    c->deadline = now + 1000; /* a short grace to say so */
                } else {
                    conn_close(c);
                    continue;
                }
            }
            if (next < 0 || c->deadline < next)
                next = c->deadline;
            short ev = c->st == C_WRITING ? POLLOUT : POLLIN;
            pf[np] = (struct pollfd){.fd = c->fd, .events = ev};
            owner[np++] = i;
        }
        struct timespec ts, *tsp = NULL;
        if (next >= 0) {
            int64_t w = next - now;
            if (w < 0)
                w = 0;
            ts.tv_sec = (time_t)(w / 1000);
            ts.tv_nsec = (long)(w % 1000) * 1000000;
            tsp = &ts;
        }
        int r = ppoll(pf, (nfds_t)np, tsp, &orig);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            cli_err("serve: poll: %s", strerror(errno));
            break;
        }
        for (int k = 0; k < np; k++) {
            if (!pf[k].revents)
                continue;
            if (owner[k] < 0) {
                accept_all(&sv, pf[k].fd);
                continue;
            }
            struct conn *c = &sv.c[owner[k]];
            if (c->st == C_WRITING)
                conn_write(c);
            else
                conn_read(&sv, c);
        }
        /* /metrics requests complete now: one read of the processes for all. */
        char *body = NULL;
        size_t blen = 0;
        bool have = false;
        for (int i = 0; i < SERVE_CLIENTS; i++) {
            struct conn *c = &sv.c[i];
            if (c->st != C_READING || c->route != R_METRICS)
                continue;
            if (!have) {
                body = metrics_body(&blen, &sv);
                have = true;
            }
            if (body)
                answer(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", NULL, body,
                       blen, false);
            else
                answer_text(c, 500, "Internal Server Error", NULL, "out of memory\n");
            conn_write(c); /* most answers go out at once */
        }
        free(body);
        for (int i = 0; i < SERVE_CLIENTS; i++)
            if (sv.c[i].st == C_WRITING && sv.c[i].outoff == 0)
                conn_write(&sv.c[i]);
    }
    for (int i = 0; i < SERVE_CLIENTS; i++)
        if (sv.c[i].st != C_FREE)
            conn_close(&sv.c[i]);
    for (int i = 0; i < sv.nl; i++)
        close(sv.lfd[i]);
    sigprocmask(SIG_SETMASK, &orig, NULL);
    cli_err("serve: %llu request%s, %llu scrape%s of the processes%s", sv.requests,
            sv.requests == 1 ? "" : "s", sv.scrapes, sv.scrapes == 1 ? "" : "s",
            cli_stop_signal ? "; stopped by a signal" : "");
    return EXIT_OK;
}
