/* nb_probe: edge cases of non-blocking connects, run with and without the
 * shim by test_nonblock_edges.sh. Every scenario uses its own 127.0.0.1
 * ports: a "refused" port is a socket bound but never listening (the port
 * stays ours, connects to it are refused); a "late" listener is such a
 * socket on which a thread calls listen() after a delay (-d MS) and then
 * accepts, greeting each connection with "hello\n".
 *
 *   nb_probe exhaust                      (a) retries run out: what the app sees
 *   nb_probe abandon VARIANT              (b) close during the backoff, fd reused
 *   nb_probe timeout WAITER MS            (b) the app's own timeout is kept
 *   nb_probe busy HOW                     (b) asks (sockerr | recv | connect) while
 *                                             a retry is under way, without a wait
 *   nb_probe late-epoll MODE              (c) et | oneshot | mod | readd | twosets |
 *                                             samedata | samedata0
 *   nb_probe many WAITER                  (d) 200 pipes + a pending connect
 *                                             (select | pselect | poll | ppoll | epoll_*)
 *   nb_probe threads N                    (e) N threads poll one pending socket
 *   nb_probe fork MODE                    (f) wait | storm | child-connect
 *
 * Options (before the subcommand): -d MS  late listener delay (default 150;
 * 0: listening from the start), -e OUTCOME  the expected outcome (connected,
 * refused, timeout, event, untouched): exit 0 only when it is what happened
 * and every invariant held; -s MS  timing slack (default 50).
 *
 * Output: "RESULT ..." lines (compared between runs: no ports, pids or times
 * in them), "TIME ..." lines (elapsed times, checked by the shell), "INFO"
 * lines; "FAIL: ..." on stderr for each broken invariant. Exit: 0 expected
 * outcome and no FAIL, 1 otherwise, 3 setup error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int late_delay_ms = 150;
static const char *expect;
static double slack_ms = 50;
static int nfail;

/* ---- helpers ----------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double ms_since(uint64_t t0)
{
    return (double)(now_ns() - t0) / 1e6;
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nb_probe: setup error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (%s)\n", strerror(errno));
    va_end(ap);
    exit(3);
}

static void check(bool ok, const char *fmt, ...)
{
    if (ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    nfail++;
}

static const char *ename(int e)
{
    if (e == 0)
        return "0";
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* "ret/ERRNO" for a call returning -1, else the return value. */
static char *outcome(char *buf, size_t n, long r, int e)
{
    if (r < 0)
        snprintf(buf, n, "-1/%s", ename(e));
    else
        snprintf(buf, n, "%ld", r);
    return buf;
}

/* Names of poll/epoll bits (the values coincide). */
static char *mask_name(char *buf, size_t n, unsigned m)
{
    static const struct {
        unsigned bit;
        const char *name;
    } t[] = {{POLLIN, "IN"},         {POLLPRI, "PRI"},       {POLLOUT, "OUT"},
             {POLLERR, "ERR"},       {POLLHUP, "HUP"},       {POLLNVAL, "NVAL"},
             {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"}, {POLLWRNORM, "WRNORM"},
             {POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"},   {EPOLLET, "ET"},
             {EPOLLONESHOT, "ONESHOT"}};
    buf[0] = 0;
    size_t len = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (m & t[i].bit) {
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "|" : "", t[i].name);
            m &= ~t[i].bit;
        }
    if (m)
        snprintf(buf + len, n - len, "%s0x%x", len ? "|" : "", m);
    else if (!len)
        snprintf(buf, n, "none");
    return buf;
}

static int so_error(int fd)
{
    int e = -1;
    socklen_t l = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0)
        return -errno;
    return e;
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static int peer_port(int fd)
{
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    if (getpeername(fd, (struct sockaddr *)&a, &l) != 0)
        return -errno;
    return ntohs(a.sin_port);
}

/* A socket bound to 127.0.0.1:0, not listening: its port refuses connects. */
static int reserve(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = loopback(0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("bind");
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A non-blocking connect to 127.0.0.1:port; *err: its errno (0: at once). */
static int nb_connect(int port, int *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = loopback(port);
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    *err = r == 0 ? 0 : errno;
    return fd;
}

/* ---- the late listener --------------------------------------------------- */

struct late {
    int lfd, port, delay_ms;
    bool accept;           /* accept and greet; else only listen */
    pthread_t th;
    atomic_int stop, accepted;
    _Atomic uint64_t listen_at; /* monotonic ns; 0 until listening */
    int conns[64];
};

static void *late_main(void *arg)
{
    struct late *l = arg;
    if (l->delay_ms > 0) {
        sleep_ms(l->delay_ms);
        if (listen(l->lfd, 64) != 0)
            die("listen");
        atomic_store(&l->listen_at, now_ns());
    }
    while (l->accept && !atomic_load(&l->stop)) {
        struct pollfd p = {.fd = l->lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        int n = atomic_fetch_add(&l->accepted, 1);
        if (write(c, "hello\n", 6) != 6)
            fprintf(stderr, "nb_probe: greeting not sent\n");
        if (n < 64)
            l->conns[n] = c;
        else
            close(c);
    }
    return NULL;
}

static void late_start(struct late *l, int delay_ms, bool do_accept)
{
    memset(l, 0, sizeof *l);
    l->lfd = reserve(&l->port);
    l->delay_ms = delay_ms;
    l->accept = do_accept;
    if (delay_ms <= 0) { /* listening from the start, before any connect */
        if (listen(l->lfd, 64) != 0)
            die("listen");
        atomic_store(&l->listen_at, now_ns());
    }
    if (pthread_create(&l->th, NULL, late_main, l) != 0)
        die("pthread_create");
}

static void late_stop(struct late *l)
{
    atomic_store(&l->stop, 1);
    pthread_join(l->th, NULL);
    int n = atomic_load(&l->accepted);
    for (int i = 0; i < n && i < 64; i++)
        close(l->conns[i]);
    close(l->lfd);
}

/* Reads the greeting on a connected socket (waits up to 2 s). */
static const char *greeting(int fd)
{
    static char buf[32];
    uint64_t t0 = now_ns();
    size_t got = 0;
    while (got < 6 && ms_since(t0) < 2000) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            break;
    }
    buf[got] = 0;
    if (got && buf[got - 1] == '\n')
        buf[got - 1] = 0;
    return got ? buf : "(none)";
}

/* The connect's outcome as the app learns it after its wait said "ready". */
static const char *verdict(int fd, int *err)
{
    *err = so_error(fd);
    if (*err == 0 && peer_port(fd) > 0)
        return "connected";
    if (*err == ECONNREFUSED)
        return "refused";
    return *err ? "failed" : "not-connected";
}

static int finish(const char *outcome_name)
{
    if (expect && strcmp(expect, outcome_name) != 0) {
        fprintf(stderr, "FAIL: outcome %s, expected %s\n", outcome_name, expect);
        nfail++;
    }
    return nfail ? 1 : 0;
}

/* ---- one wait, any kind ---------------------------------------------------- */

enum waiter { W_POLL, W_PPOLL, W_SELECT, W_PSELECT, W_EPOLL_WAIT, W_EPOLL_PWAIT, W_EPOLL_PWAIT2, W_N };
static const char *const wnames[W_N] = {"poll",       "ppoll",       "select",      "pselect",
                                        "epoll_wait", "epoll_pwait", "epoll_pwait2"};

static int waiter_by_name(const char *s)
{
    for (int i = 0; i < W_N; i++)
        if (strcmp(s, wnames[i]) == 0)
            return i;
    fprintf(stderr, "nb_probe: unknown waiter %s\n", s);
    exit(3);
}

static bool is_epoll(int w)
{
    return w >= W_EPOLL_WAIT;
}

/* Waits once on fd (IN|OUT asked) for timeout_ms (-1: forever). *mask gets
 * what was reported, as poll bits (select: r=IN, w=OUT, e=PRI). An epoll
 * event with other data than registered gets bit 1<<30. For select,
 * *tv_left_us gets the time left that Linux writes back. */
static int wait_fd(int w, int fd, unsigned events, int timeout_ms, unsigned *mask, long *tv_left_us)
{
    *mask = 0;
    int n;
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    if (w == W_POLL || w == W_PPOLL) {
        struct pollfd p = {.fd = fd, .events = (short)events};
        n = w == W_POLL ? poll(&p, 1, timeout_ms) : ppoll(&p, 1, timeout_ms < 0 ? NULL : &ts, NULL);
        *mask = (unsigned short)p.revents;
    } else if (w == W_SELECT || w == W_PSELECT) {
        fd_set r, wr, e;
        FD_ZERO(&r);
        FD_ZERO(&wr);
        FD_ZERO(&e);
        if (events & POLLIN)
            FD_SET(fd, &r);
        if (events & POLLOUT)
            FD_SET(fd, &wr);
        FD_SET(fd, &e);
        struct timeval tv = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000L};
        n = w == W_SELECT ? select(fd + 1, &r, &wr, &e, timeout_ms < 0 ? NULL : &tv)
                          : pselect(fd + 1, &r, &wr, &e, timeout_ms < 0 ? NULL : &ts, NULL);
        if (FD_ISSET(fd, &r))
            *mask |= POLLIN;
        if (FD_ISSET(fd, &wr))
            *mask |= POLLOUT;
        if (FD_ISSET(fd, &e))
            *mask |= POLLPRI;
        if (tv_left_us && w == W_SELECT)
            *tv_left_us = tv.tv_sec * 1000000L + tv.tv_usec;
    } else {
        int ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
            die("epoll_create1");
        uint64_t tag = 0xfeed00000000ull | (unsigned)fd;
        struct epoll_event ev = {.events = events, .data.u64 = tag}, out[4];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl");
        if (w == W_EPOLL_WAIT)
            n = epoll_wait(ep, out, 4, timeout_ms);
        else if (w == W_EPOLL_PWAIT)
            n = epoll_pwait(ep, out, 4, timeout_ms, NULL);
        else
            n = epoll_pwait2(ep, out, 4, timeout_ms < 0 ? NULL : &ts, NULL);
        int e = errno;
        for (int i = 0; i < n; i++)
            *mask |= out[i].events | (out[i].data.u64 == tag ? 0 : 1u << 30);
        close(ep);
        errno = e;
    }
    return n;
}

static char *wait_mask_name(char *buf, size_t n, int w, unsigned m)
{
    if (w == W_SELECT || w == W_PSELECT) {
        snprintf(buf, n, "%s%s%s%s", m & POLLIN ? "r" : "", m & POLLOUT ? "w" : "",
                 m & POLLPRI ? "e" : "", m ? "" : "none");
        return buf;
    }
    return mask_name(buf, n, m);
}

/* ---- (a) exhaust: retries run out ------------------------------------------ */

/* The ways an app asks for the outcome after its wait said "ready". */
enum ask { A_SOCKERR, A_RECV, A_SEND, A_READ, A_WRITE, A_CONNECT, A_N };
static const char *const anames[A_N] = {"sockerr", "recv", "send", "read", "write", "connect"};

static void step(char *line, size_t n, int fd, const char *what, int port)
{
    char b[64], c = 0;
    long r;
    int e = 0;
    if (strcmp(what, "so_error") == 0) {
        int v = so_error(fd);
        snprintf(b, sizeof b, "%s", v < 0 ? "getsockopt-failed" : ename(v));
    } else {
        errno = 0;
        if (strcmp(what, "recv") == 0)
            r = recv(fd, &c, 1, 0);
        else if (strcmp(what, "send") == 0)
            r = send(fd, "x", 1, MSG_NOSIGNAL);
        else if (strcmp(what, "read") == 0)
            r = read(fd, &c, 1);
        else if (strcmp(what, "write") == 0)
            r = write(fd, "x", 1); /* SIGPIPE is ignored */
        else {
            struct sockaddr_in a = loopback(port);
            r = connect(fd, (struct sockaddr *)&a, sizeof a);
        }
        e = errno;
        outcome(b, sizeof b, r, e);
    }
    size_t len = strlen(line);
    snprintf(line + len, n - len, " %s=%s", what, b);
}

static int cmd_exhaust(void)
{
    /* After the wait: the first question, then the rest in a fixed order.
     * A final connect shows the kernel's state (a new attempt, or not). */
    static const char *const seq[A_N][6] = {
        {"so_error", "so_error", "recv", "send", "connect", NULL},
        {"recv", "so_error", "recv", "send", "connect", NULL},
        {"send", "so_error", "send", "recv", "connect", NULL},
        {"read", "so_error", "read", "write", "connect", NULL},
        {"write", "so_error", "write", "read", "connect", NULL},
        {"connect", "connect", "so_error", "recv", "connect", NULL},
    };
    double tmin = 1e9, tmax = 0;
    for (int w = 0; w < W_N; w++)
        for (int a = 0; a < A_N; a++) {
            int port, err;
            int rfd = reserve(&port); /* a new port each: its own retry budget and breaker */
            uint64_t t0 = now_ns();
            int fd = nb_connect(port, &err);
            unsigned m;
            int n = wait_fd(w, fd, POLLIN | POLLOUT, 12000, &m, NULL);
            double el = ms_since(t0);
            char line[512], mb[96];
            snprintf(line, sizeof line, "RESULT exhaust %s %s: connect=%s wait=%d mask=%s |",
                     wnames[w], anames[a], ename(err), n, wait_mask_name(mb, sizeof mb, w, m));
            for (int i = 0; seq[a][i]; i++)
                step(line, sizeof line, fd, seq[a][i], port);
            printf("%s\n", line);
            printf("TIME exhaust %s %s %.1f\n", wnames[w], anames[a], el);
            fflush(stdout);
            check(n >= 1, "exhaust %s %s: the wait returned %d", wnames[w], anames[a], n);
            if (el < tmin)
                tmin = el;
            if (el > tmax)
                tmax = el;
            close(fd);
            close(rfd);
        }
    printf("INFO exhaust %d cases, wait took %.1f-%.1f ms\n", W_N * A_N, tmin, tmax);
    return finish("refused");
}

/* ---- (b) abandon: closed during the backoff, the number reused ----------- */

static int cmd_abandon(const char *variant)
{
    struct late l;
    late_start(&l, 100, false); /* listens at 100 ms, accepts nothing */
    int hport, hfd = reserve(&hport);
    if (listen(hfd, 16) != 0)
        die("listen");
    printf("INFO late_port=%d healthy_port=%d\n", l.port, hport);

    int client = -1;
    if (strcmp(variant, "accept") == 0) { /* the connection to accept, made first */
        client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = loopback(hport);
        if (connect(client, (struct sockaddr *)&a, sizeof a) != 0)
            die("connect to the healthy listener");
    }
    int err;
    uint64_t t0 = now_ns();
    int fd = nb_connect(l.port, &err);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n = poll(&p, 1, 10);
    double first = ms_since(t0);
    char mb[96];
    printf("RESULT abandon %s: connect=%s first_poll=%d revents=%s\n", variant, ename(err), n,
           mask_name(mb, sizeof mb, (unsigned short)p.revents));
    printf("TIME abandon %s first_poll %.1f\n", variant, first);

    int nfd = -1, other = -1;
    char buf[8];
    bool dup_variant = strcmp(variant, "dup2") == 0;
    if (dup_variant) { /* no close: dup2 replaces the pending socket */
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        nfd = dup2(s, fd);
        close(s);
    } else if (strcmp(variant, "rawclose") == 0) {
        /* A close the shim does not see (a raw system call), then a new
         * socket on the number: only the generation check protects it. */
        syscall(SYS_close, fd);
        nfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    } else {
        close(fd);
        if (strcmp(variant, "socket") == 0) {
            nfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        } else if (strcmp(variant, "udp") == 0) {
            nfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        } else if (strcmp(variant, "healthy") == 0) {
            nfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in a = loopback(hport);
            if (nfd >= 0 && connect(nfd, (struct sockaddr *)&a, sizeof a) != 0)
                die("connect to the healthy listener");
        } else if (strcmp(variant, "socketpair") == 0) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
                die("socketpair");
            nfd = sv[0], other = sv[1];
        } else if (strcmp(variant, "pipe") == 0) {
            int pp[2];
            if (pipe2(pp, O_CLOEXEC) != 0)
                die("pipe");
            nfd = pp[0], other = pp[1];
        } else if (strcmp(variant, "accept") == 0) {
            nfd = accept4(hfd, NULL, NULL, SOCK_CLOEXEC);
        } else {
            fprintf(stderr, "nb_probe: unknown abandon variant %s\n", variant);
            exit(3);
        }
    }
    check(nfd == fd, "the new descriptor is %d, not the closed %d: the number was not reused", nfd,
          fd);
    printf("INFO reused fd %d as %s after %.1f ms\n", nfd, variant, ms_since(t0));

    /* Hold it past the time the old connect's retry was due (250-500 ms
     * with the default base; the late port listens from 100 ms on, so a
     * stray reconnect would succeed and show). */
    while (ms_since(t0) < 900) {
        if (other >= 0) { /* use it: data flows through the reused number */
            int wfd = strcmp(variant, "pipe") == 0 ? other : nfd;
            int rfd = strcmp(variant, "pipe") == 0 ? nfd : other;
            if (write(wfd, "ping", 4) != 4 || read(rfd, buf, sizeof buf) != 4)
                check(false, "data through the reused %s failed: %s", variant, strerror(errno));
        }
        sleep_ms(50);
    }
    char state[128];
    int pp = peer_port(nfd);
    if (strcmp(variant, "healthy") == 0)
        snprintf(state, sizeof state, "peer=%s", pp == hport ? "healthy" : pp == l.port ? "LATE" : ename(-pp));
    else if (strcmp(variant, "accept") == 0)
        snprintf(state, sizeof state, "peer=%s", pp > 0 && pp != l.port ? "client" : pp == l.port ? "LATE" : ename(-pp));
    else if (other >= 0)
        snprintf(state, sizeof state, "data=ok");
    else
        snprintf(state, sizeof state, "peer=%s so_error=%s", pp > 0 ? (pp == l.port ? "LATE" : "other") : ename(-pp),
                 ename(so_error(nfd)));
    /* Nothing may have connected to the late port. */
    fcntl(l.lfd, F_SETFL, O_NONBLOCK);
    int stray = accept4(l.lfd, NULL, NULL, SOCK_CLOEXEC);
    int se = errno;
    bool untouched = stray < 0 && (se == EAGAIN || se == EWOULDBLOCK);
    check(untouched, "a connection reached the late port: someone reconnected the closed socket");
    if (strcmp(variant, "healthy") == 0)
        check(pp == hport, "the reused socket's peer changed: %d", pp);
    if (strcmp(variant, "socket") == 0 || strcmp(variant, "dup2") == 0 ||
        strcmp(variant, "rawclose") == 0 ||
        strcmp(variant, "udp") == 0)
        check(pp == -ENOTCONN, "the reused socket got connected (peer %d)", pp);
    printf("RESULT abandon %s reused: %s late_port_connections=%s\n", variant, state,
           untouched ? "0" : "SOME");
    if (stray >= 0)
        close(stray);
    close(nfd);
    if (other >= 0)
        close(other);
    if (client >= 0)
        close(client);
    close(hfd);
    late_stop(&l);
    return finish(untouched && nfail == 0 ? "untouched" : "touched");
}

/* ---- (b) timeout: the app's own timeout while the shim retries ------------ */

static int cmd_timeout(const char *wname, int ms)
{
    int w = waiter_by_name(wname);
    int port, err, rfd = reserve(&port);
    int fd = nb_connect(port, &err);
    unsigned m;
    long left = -1;
    uint64_t t0 = now_ns();
    int n = wait_fd(w, fd, POLLOUT, ms, &m, &left);
    double el = ms_since(t0);
    char mb[96];
    printf("RESULT timeout %s %d: ret=%d mask=%s", wname, ms, n,
           n > 0 ? wait_mask_name(mb, sizeof mb, w, m) : "none");
    if (w == W_SELECT && n == 0)
        printf(" tv_left=%ld", left);
    printf("\n");
    printf("TIME timeout %s %d %.1f\n", wname, ms, el);
    if (n == 0) {
        check(el >= ms - 1.0, "%s(%d ms) returned 0 after only %.1f ms", wname, ms, el);
        check(el <= ms + slack_ms, "%s(%d ms) returned after %.1f ms: longer than asked (+%.0f ms slack)",
              wname, ms, el, slack_ms);
        if (w == W_SELECT)
            check(left == 0, "select left %ld us in its timeval after a timeout", left);
        /* Still pending as far as the app can tell. */
        int se = so_error(fd);
        check(se == 0, "SO_ERROR after the timeout: %s", ename(se));
    }
    close(fd);
    close(rfd);
    return finish(n == 0 ? "timeout" : n > 0 ? "event" : "error");
}

/* ---- (c) late listener, epoll edge-triggered / oneshot ------------------- */

struct writer {
    int fd;
    double at_ms;
    uint64_t t0;
    _Atomic uint64_t wrote_at;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    double d = w->at_ms - ms_since(w->t0);
    if (d > 0)
        sleep_ms(d);
    atomic_store(&w->wrote_at, now_ns());
    if (write(w->fd, "x", 1) != 1)
        fprintf(stderr, "nb_probe: writer: %s\n", strerror(errno));
    return NULL;
}

static int cmd_late_epoll(const char *mode)
{
    bool et = strcmp(mode, "et") == 0, oneshot = strcmp(mode, "oneshot") == 0,
         mod = strcmp(mode, "mod") == 0, readd = strcmp(mode, "readd") == 0,
         same0 = strcmp(mode, "samedata0") == 0, same = same0 || strcmp(mode, "samedata") == 0,
         twosets = strcmp(mode, "twosets") == 0;
    if (!et && !oneshot && !mod && !readd && !same && !twosets) {
        fprintf(stderr, "nb_probe: unknown late-epoll mode %s\n", mode);
        exit(3);
    }
    struct late l;
    late_start(&l, late_delay_ms, true);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int pp[2] = {-1, -1};
    pthread_t wt;
    struct writer wr = {0};
    int err;
    uint64_t t0 = now_ns();
    const uint64_t tag = 0x5eed0000ull, tag2 = 0xbeef0000ull;
    if (same) {
        /* A pipe registered (edge-triggered: an event dropped once is lost)
         * with the same data as the socket. samedata: written at 50 ms,
         * during the backoff. samedata0: registered and written before the
         * connect, so that the first wait returns the pipe's event first,
         * then the socket's failure. */
        if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) != 0)
            die("pipe");
        struct epoll_event pe = {.events = EPOLLIN | EPOLLET, .data.u64 = tag};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &pe) != 0)
            die("epoll_ctl ADD pipe");
        wr = (struct writer){.fd = pp[1], .at_ms = same0 ? 0 : 50, .t0 = t0};
        if (same0)
            writer_main(&wr);
        else
            pthread_create(&wt, NULL, writer_main, &wr);
    }
    int fd = nb_connect(l.port, &err);
    struct epoll_event ev = {.data.u64 = tag};
    ev.events = EPOLLOUT | (et || same || readd || twosets ? EPOLLET : 0) | (oneshot || mod ? EPOLLONESHOT : 0);
    const bool new_data = mod || readd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        die("epoll_ctl ADD");
    int nev = 0, npipe = 0;
    unsigned first = 0;
    uint64_t first_data = 0;
    double first_at = -1, pipe_latency = -1, quiet_until = 4000;
    bool changed = !(mod || readd || twosets);
    int ep2 = -1;
    char change[160] = "";
    while (ms_since(t0) < quiet_until) {
        if (!changed && ms_since(t0) >= 50) {
            /* The app changes its registration at 50 ms (with the shim the
             * socket is out of the set then, waiting out its backoff): the
             * kernel's answers and the new registration must hold. */
            char b1[64], b2[64], b3[64];
            struct epoll_event me = {.events = EPOLLOUT | EPOLLET, .data.u64 = tag2};
            int r1 = twosets ? -1 : epoll_ctl(ep, EPOLL_CTL_ADD, fd, &me); /* registered already */
            int e1 = twosets ? EEXIST : errno;
            check(r1 == -1 && e1 == EEXIST,
                  "EPOLL_CTL_ADD of the registered socket returned %d (%s), not -1 EEXIST", r1,
                  ename(r1 ? e1 : 0));
            if (twosets) { /* the socket goes into a second epoll set too */
                ep2 = epoll_create1(EPOLL_CLOEXEC);
                struct epoll_event e2 = {.events = EPOLLOUT, .data.u64 = tag2};
                int r2 = epoll_ctl(ep2, EPOLL_CTL_ADD, fd, &e2);
                snprintf(change, sizeof change, " add_ep2=%s", outcome(b2, sizeof b2, r2, errno));
            } else if (mod) {
                int r2 = epoll_ctl(ep, EPOLL_CTL_MOD, fd, &me);
                snprintf(change, sizeof change, " add_again=%s mod=%s", outcome(b1, sizeof b1, r1, e1),
                         outcome(b2, sizeof b2, r2, errno));
            } else {
                int r2 = epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                int e2 = errno;
                int r3 = epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); /* gone: ENOENT */
                int e3 = errno;
                int r4 = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &me);
                snprintf(change, sizeof change, " add_again=%s del=%s del_again=%s add=%s",
                         outcome(b1, sizeof b1, r1, e1), outcome(b2, sizeof b2, r2, e2),
                         outcome(b3, sizeof b3, r3, e3), outcome(b3 + 32, 32, r4, errno));
            }
            printf("INFO registration changed at %.1f ms after %d events\n", ms_since(t0), nev);
            changed = true;
        }
        struct epoll_event out[8];
        int n = epoll_wait(ep, out, 8, changed ? 100 : 10);
        for (int i = 0; i < n; i++) {
            if (same && out[i].events == EPOLLIN) {
                /* The pipe (or so it seems: same data). */
                char c;
                if (read(pp[0], &c, 1) == 1) {
                    npipe++;
                    pipe_latency = (double)(now_ns() - atomic_load(&wr.wrote_at)) / 1e6;
                    continue;
                }
            }
            if (nev++ == 0) {
                first = out[i].events;
                first_data = out[i].data.u64;
                first_at = ms_since(t0);
                quiet_until = first_at + 300; /* then watch for repeats */
            }
        }
    }
    int e;
    const char *v = nev ? verdict(fd, &e) : "no-event";
    if (!nev)
        e = so_error(fd);
    char mb[96];
    const char *want_data = new_data ? "new" : "same";
    const char *got_data = first_data == (new_data ? tag2 : tag) ? want_data : "WRONG";
    printf("RESULT late-epoll %s: connect=%s events=%d first=%s data=%s so_error=%s outcome=%s", mode,
           ename(err), nev, mask_name(mb, sizeof mb, first), nev ? got_data : "-", ename(e), v);
    if (strcmp(v, "connected") == 0)
        printf(" greeting=%s", greeting(fd));
    if (same)
        printf(" pipe_events=%d", npipe);
    printf("%s\n", change);
    printf("TIME late-epoll %s first_event %.1f\n", mode, first_at);
    if (same)
        printf("TIME late-epoll %s pipe_latency %.1f\n", mode, pipe_latency);
    if (strcmp(v, "connected") == 0) {
        check(nev == 1, "%d events for the socket, expected exactly 1", nev);
        check((first & (EPOLLERR | EPOLLHUP)) == 0, "the event carried ERR/HUP though connected");
        check(first & EPOLLOUT, "the event lacks EPOLLOUT");
        check(first_data == (new_data ? tag2 : tag), "the event's data is not the app's");
    }
    if (same) {
        check(npipe == 1, "the pipe's event was reported %d times, expected once", npipe);
        check(pipe_latency >= 0 && pipe_latency <= slack_ms,
              "the pipe's event came %.1f ms after the write (same data as the pending socket)",
              pipe_latency);
        if (!same0)
            pthread_join(wt, NULL);
        close(pp[0]), close(pp[1]);
    }
    close(fd);
    close(ep);
    if (ep2 >= 0)
        close(ep2);
    late_stop(&l);
    return finish(v);
}

/* ---- (d) many: 200 pipes and a pending connect ---------------------------- */

#define NPIPES 200
#define NWRITES 10

struct many_writer {
    int (*pipes)[2];
    uint64_t t0;
    _Atomic uint64_t at[NWRITES];
};

static void *many_writer_main(void *arg)
{
    struct many_writer *w = arg;
    for (int i = 0; i < NWRITES; i++) {
        double d = 10.0 * (i + 1) - ms_since(w->t0); /* 10, 20, ... 100 ms */
        if (d > 0)
            sleep_ms(d);
        atomic_store(&w->at[i], now_ns());
        if (write(w->pipes[i * (NPIPES / NWRITES) + 7][1], "x", 1) != 1)
            fprintf(stderr, "nb_probe: many writer: %s\n", strerror(errno));
    }
    return NULL;
}

static int cmd_many(const char *wname)
{
    int w = waiter_by_name(wname);
    static int pipes[NPIPES][2];
    for (int i = 0; i < NPIPES; i++)
        if (pipe2(pipes[i], O_CLOEXEC | O_NONBLOCK) != 0)
            die("pipe");
    struct late l;
    late_start(&l, late_delay_ms, true);
    int err;
    struct many_writer mw = {.pipes = pipes};
    uint64_t t0 = now_ns();
    mw.t0 = t0;
    int fd = nb_connect(l.port, &err); /* the highest fd: > 400 */
    if (fd >= FD_SETSIZE)
        die("fd %d too high for select", fd);
    pthread_t th;
    pthread_create(&th, NULL, many_writer_main, &mw);
    int ep = -1;
    if (is_epoll(w)) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        for (int i = 0; i < NPIPES; i++) {
            struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, pipes[i][0], &e);
        }
        struct epoll_event e = {.events = EPOLLOUT, .data.u64 = 1000};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    int seen = 0, calls = 0;
    double maxlat = 0, sumlat = 0, sock_at = -1;
    unsigned sock_mask = 0;
    bool sock_ready = false, bogus = false;
    while (!sock_ready && ms_since(t0) < 5000) {
        int ready[NPIPES + 1], nready = 0;
        calls++;
        if (w == W_SELECT || w == W_PSELECT) {
            fd_set r, wr;
            FD_ZERO(&r);
            FD_ZERO(&wr);
            for (int i = 0; i < NPIPES; i++)
                FD_SET(pipes[i][0], &r);
            FD_SET(fd, &wr);
            struct timeval tv = {1, 0};
            struct timespec ts = {1, 0};
            int n = w == W_SELECT ? select(fd + 1, &r, &wr, NULL, &tv)
                                  : pselect(fd + 1, &r, &wr, NULL, &ts, NULL);
            if (n < 0)
                die("select");
            for (int i = 0; i < NPIPES; i++)
                if (FD_ISSET(pipes[i][0], &r))
                    ready[nready++] = i;
            if (FD_ISSET(fd, &wr))
                sock_ready = true, sock_mask = POLLOUT;
            for (int i = 0; i < fd; i++) /* nothing else may be marked */
                if (FD_ISSET(i, &wr) || (FD_ISSET(i, &r) && !(i >= pipes[0][0] && i <= pipes[NPIPES - 1][1])))
                    bogus = true;
        } else if (w == W_POLL || w == W_PPOLL) {
            struct pollfd p[NPIPES + 1];
            for (int i = 0; i < NPIPES; i++)
                p[i] = (struct pollfd){.fd = pipes[i][0], .events = POLLIN};
            p[NPIPES] = (struct pollfd){.fd = fd, .events = POLLOUT};
            struct timespec ts = {1, 0};
            int n = w == W_POLL ? poll(p, NPIPES + 1, 1000) : ppoll(p, NPIPES + 1, &ts, NULL);
            if (n < 0)
                die("poll");
            for (int i = 0; i < NPIPES; i++) {
                if (p[i].fd != pipes[i][0])
                    bogus = true; /* the app's array must come back as it was */
                if (p[i].revents)
                    ready[nready++] = i;
            }
            if (p[NPIPES].fd != fd)
                bogus = true;
            if (p[NPIPES].revents)
                sock_ready = true, sock_mask = (unsigned short)p[NPIPES].revents;
        } else {
            struct epoll_event out[32];
            int n = w == W_EPOLL_WAIT ? epoll_wait(ep, out, 32, 1000)
                    : w == W_EPOLL_PWAIT ? epoll_pwait(ep, out, 32, 1000, NULL)
                                         : epoll_pwait2(ep, out, 32, &(struct timespec){1, 0}, NULL);
            if (n < 0)
                die("epoll_wait");
            for (int i = 0; i < n; i++) {
                if (out[i].data.u64 == 1000)
                    sock_ready = true, sock_mask |= out[i].events;
                else if (out[i].data.u64 < NPIPES)
                    ready[nready++] = (int)out[i].data.u64;
                else
                    bogus = true;
            }
        }
        uint64_t now = now_ns();
        for (int k = 0; k < nready; k++) {
            int i = ready[k];
            char c;
            if (read(pipes[i][0], &c, 1) != 1 || (i - 7) % (NPIPES / NWRITES) != 0) {
                bogus = true;
                continue;
            }
            uint64_t at = atomic_load(&mw.at[(i - 7) / (NPIPES / NWRITES)]);
            double lat = (double)(now - at) / 1e6;
            seen++;
            sumlat += lat;
            if (lat > maxlat)
                maxlat = lat;
        }
        if (sock_ready)
            sock_at = ms_since(t0);
    }
    pthread_join(th, NULL);
    double last_write = (double)(atomic_load(&mw.at[NWRITES - 1]) - t0) / 1e6;
    int e;
    const char *v = sock_ready ? verdict(fd, &e) : "no-event";
    if (!sock_ready)
        e = so_error(fd);
    char mb[96];
    printf("RESULT many %s: connect=%s socket_event=%s so_error=%s outcome=%s", wname, ename(err),
           wait_mask_name(mb, sizeof mb, w, sock_mask), ename(e), v);
    if (strcmp(v, "connected") == 0) {
        printf(" greeting=%s pipe_events=%d\n", greeting(fd), seen);
        printf("TIME many %s connected %.1f last_write %.1f pipe_latency_max %.2f pipe_latency_mean %.2f waits %d\n",
               wname, sock_at, last_write, maxlat, seen ? sumlat / seen : 0.0, calls);
        if (late_delay_ms > 0) /* else connected before any write: nothing to measure */
            check(seen == NWRITES, "%d of %d pipe events seen", seen, NWRITES);
        check(maxlat <= slack_ms, "a pipe event was reported %.1f ms after its write", maxlat);
        if (late_delay_ms > 0)
            check(last_write < sock_at, "the connect completed (%.1f ms) before the last write (%.1f ms): "
              "the pipes were not exercised during the backoff", sock_at, last_write);
        check((sock_mask & (POLLERR | POLLHUP)) == 0, "the socket's event carried ERR/HUP");
    } else {
        printf("\n");
        printf("TIME many %s socket_event %.1f\n", wname, sock_at);
    }
    check(!bogus, "a descriptor was reported that was not ready, or the app's array changed");
    close(fd);
    if (ep >= 0)
        close(ep);
    for (int i = 0; i < NPIPES; i++)
        close(pipes[i][0]), close(pipes[i][1]);
    late_stop(&l);
    return finish(v);
}

/* ---- (e) threads: N threads poll one pending socket ----------------------- */

struct poller {
    int fd, timeout;
    uint64_t t0;
    unsigned revents;
    int polls;
    double at;
};

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    while (ms_since(p->t0) < 5000) {
        struct pollfd pf = {.fd = p->fd, .events = POLLOUT};
        p->polls++;
        int n = poll(&pf, 1, p->timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0) {
            p->revents = (unsigned short)pf.revents;
            p->at = ms_since(p->t0);
            break;
        }
    }
    return NULL;
}

static int cmd_threads(int nthreads)
{
    if (nthreads < 1 || nthreads > 16)
        nthreads = 2;
    struct late l;
    late_start(&l, late_delay_ms, true);
    int err;
    uint64_t t0 = now_ns();
    int fd = nb_connect(l.port, &err);
    struct poller p[16];
    pthread_t th[16];
    for (int i = 0; i < nthreads; i++) {
        /* Alternate: one waits 3 s at a time, the next 20 ms at a time. */
        p[i] = (struct poller){.fd = fd, .timeout = i % 2 ? 20 : 3000, .t0 = t0};
        pthread_create(&th[i], NULL, poller_main, &p[i]);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    int e;
    const char *v = verdict(fd, &e);
    char line[512] = "", mb[96];
    bool all_out = true;
    for (int i = 0; i < nthreads; i++) {
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, " t%d=%s", i, mask_name(mb, sizeof mb, p[i].revents));
        if (p[i].revents != POLLOUT)
            all_out = false;
    }
    printf("RESULT threads %d: connect=%s%s so_error=%s outcome=%s", nthreads, ename(err), line,
           ename(e), v);
    if (strcmp(v, "connected") == 0)
        printf(" greeting=%s", greeting(fd));
    printf("\nTIME threads %d", nthreads);
    for (int i = 0; i < nthreads; i++)
        printf(" t%d %.1f (%d polls)", i, p[i].at, p[i].polls);
    printf("\n");
    if (strcmp(v, "connected") == 0)
        check(all_out, "a thread saw something else than POLLOUT:%s", line);
    close(fd);
    late_stop(&l);
    return finish(v);
}

/* ---- (b) busy: the app asks without waiting while a retry is under way -- */

/* The app waits 10 ms (with the shim: the failure is hidden, retry 1 due at
 * 250-500 ms), then is busy elsewhere until 600 ms (no wait call: the shim's
 * retry 1 runs and is refused, the listener only comes at 700 ms), then asks
 * once how the connect is doing (SO_ERROR, recv or a repeated connect) and
 * waits for the outcome. A connect still being retried is "in progress":
 * the answer must be what the kernel gives for a pending connect (0, EAGAIN,
 * EALREADY) and the connect must then complete (retry 2 comes after 750 ms). */
static int cmd_busy(const char *how)
{
    struct late l;
    late_start(&l, late_delay_ms, true);
    int err;
    uint64_t t0 = now_ns();
    int fd = nb_connect(l.port, &err);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n0 = poll(&p, 1, 10);
    unsigned first = (unsigned short)p.revents;
    sleep_ms(600 - ms_since(t0));
    char ask[64];
    char c;
    if (strcmp(how, "sockerr") == 0) {
        snprintf(ask, sizeof ask, "%s", ename(so_error(fd)));
    } else if (strcmp(how, "recv") == 0) {
        long r = recv(fd, &c, 1, 0);
        outcome(ask, sizeof ask, r, errno);
    } else if (strcmp(how, "connect") == 0) {
        struct sockaddr_in a = loopback(l.port);
        long r = connect(fd, (struct sockaddr *)&a, sizeof a);
        outcome(ask, sizeof ask, r, errno);
    } else {
        fprintf(stderr, "nb_probe: unknown busy variant %s\n", how);
        exit(3);
    }
    double ask_at = ms_since(t0);
    int n = n0, e = 0;
    unsigned revents = first;
    const char *v;
    if (strstr(ask, "ECONNREFUSED")) { /* the app has learned that its connect failed */
        v = "refused";
    } else {
        while (n == 0 && ms_since(t0) < 6000) {
            n = poll(&p, 1, 100);
            revents = (unsigned short)p.revents;
        }
        v = n > 0 ? verdict(fd, &e) : "no-event";
        if (n <= 0)
            e = so_error(fd);
    }
    char mb[96], mb2[96];
    printf("RESULT busy %s: connect=%s first_poll=%d/%s ask=%s event=%s so_error=%s outcome=%s\n", how,
           ename(err), n0, mask_name(mb, sizeof mb, first), ask, mask_name(mb2, sizeof mb2, revents),
           ename(e), v);
    printf("TIME busy %s asked %.1f done %.1f\n", how, ask_at, ms_since(t0));
    close(fd);
    late_stop(&l);
    return finish(v);
}

/* ---- (f) fork during a pending retry ------------------------------------- */

static int cmd_fork(const char *mode)
{
    bool storm = strcmp(mode, "storm") == 0, child_connect = strcmp(mode, "child-connect") == 0;
    if (!storm && !child_connect && strcmp(mode, "wait") != 0) {
        fprintf(stderr, "nb_probe: unknown fork mode %s\n", mode);
        exit(3);
    }
    struct late l;
    late_start(&l, late_delay_ms, true);
    int err;
    uint64_t t0 = now_ns();
    int fd = nb_connect(l.port, &err);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int n0 = poll(&p, 1, 50); /* with the shim: 0, the failure is hidden and in backoff */
    pid_t kids[64];
    int nkids = 0;
    int forks = storm ? 40 : 1;
    fflush(stdout);
    for (int i = 0; i < forks; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            if (child_connect) {
                /* The child's own pending connect to a port that never opens:
                 * its own retries (and timer thread), not the parent's. */
                int port, e2, rfd = reserve(&port);
                int cfd = nb_connect(port, &e2);
                struct pollfd cp = {.fd = cfd, .events = POLLOUT};
                int cn = poll(&cp, 1, 8000);
                char mb[96];
                printf("RESULT fork child: poll=%d revents=%s so_error=%s\n", cn,
                       mask_name(mb, sizeof mb, (unsigned short)cp.revents), ename(so_error(cfd)));
                close(cfd);
                close(rfd);
            } else if (!storm) {
                sleep_ms(700); /* past the parent's retry, holding the shared socket */
            }
            fflush(stdout);
            exit(0); /* a normal exit: the shim's exit summary */
        }
        kids[nkids++] = pid;
        if (storm)
            sleep_ms(10); /* 40 forks over ~400 ms: across the backoff and the reconnect */
    }
    unsigned revents = (unsigned short)p.revents;
    int n = n0;
    while (n == 0 && ms_since(t0) < 6000) {
        n = poll(&p, 1, 100);
        revents = (unsigned short)p.revents;
    }
    double at = ms_since(t0);
    int e;
    const char *v = n > 0 ? verdict(fd, &e) : "no-event";
    if (n <= 0)
        e = so_error(fd);
    int bad = 0;
    for (int i = 0; i < nkids; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
        printf("INFO child pid=%d\n", kids[i]);
    }
    char mb[96];
    /* With the shim the first 50 ms poll sees nothing: the fork came during the backoff. */
    printf("INFO fork first_poll=%s\n", n0 ? "event" : "none");
    printf("RESULT fork %s: connect=%s event=%s so_error=%s outcome=%s", mode, ename(err),
           mask_name(mb, sizeof mb, revents), ename(e), v);
    if (strcmp(v, "connected") == 0)
        printf(" greeting=%s", greeting(fd));
    printf(" children=%d bad_children=%d\n", nkids, bad);
    printf("TIME fork %s connected %.1f\n", mode, at);
    check(bad == 0, "%d children did not exit 0", bad);
    if (strcmp(v, "connected") == 0)
        check(revents == POLLOUT, "the parent's event was %s", mask_name(mb, sizeof mb, revents));
    close(fd);
    late_stop(&l);
    return finish(v);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: nb_probe [-d MS] [-e OUTCOME] [-s MS] exhaust | abandon VARIANT | "
            "timeout WAITER MS | busy HOW | late-epoll MODE | many WAITER | threads N | fork MODE\n");
    exit(3);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int opt;
    while ((opt = getopt(argc, argv, "d:e:s:")) != -1) {
        if (opt == 'd')
            late_delay_ms = atoi(optarg);
        else if (opt == 'e')
            expect = optarg;
        else if (opt == 's')
            slack_ms = atof(optarg);
        else
            usage();
    }
    if (optind >= argc)
        usage();
    const char *cmd = argv[optind];
    const char *a1 = optind + 1 < argc ? argv[optind + 1] : NULL;
    const char *a2 = optind + 2 < argc ? argv[optind + 2] : NULL;
    if (strcmp(cmd, "exhaust") == 0)
        return cmd_exhaust();
    if (strcmp(cmd, "abandon") == 0 && a1)
        return cmd_abandon(a1);
    if (strcmp(cmd, "timeout") == 0 && a1 && a2)
        return cmd_timeout(a1, atoi(a2));
    if (strcmp(cmd, "late-epoll") == 0 && a1)
        return cmd_late_epoll(a1);
    if (strcmp(cmd, "many") == 0 && a1)
        return cmd_many(a1);
    if (strcmp(cmd, "threads") == 0)
        return cmd_threads(a1 ? atoi(a1) : 2);
    if (strcmp(cmd, "busy") == 0 && a1)
        return cmd_busy(a1);
    if (strcmp(cmd, "fork") == 0 && a1)
        return cmd_fork(a1);
    usage();
    return 3;
}
