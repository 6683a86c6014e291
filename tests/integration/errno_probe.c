/* errno_probe: calls each function reshim interposes on failing and edge
 * inputs and prints one line per case: "NAME RET ERRNO [EXTRA]". RET is the
 * return value ("fd" for a new descriptor, whose number may differ between
 * runs); ERRNO is the errno name after the call, or "-" when the call left
 * errno as it was (each case starts with errno set to a sentinel). Run
 * without and with the shim, the outputs must be identical (test_errno.sh).
 *
 * usage: errno_probe [all|refused|efault]
 *   all      every case that reshim never retries (the default)
 *   refused  blocking connects that fail with errors reshim retries
 *            (ECONNREFUSED, ENOENT on unix sockets): run it with
 *            RESHIM_RETRIES=0
 *   efault   connect with an address pointer the kernel rejects (EFAULT);
 *            apart so that a crash there does not hide the other cases
 * The last line is "total N": the number of cases printed.
 *
 * Compiled fortified so that read/recv/recvfrom with a runtime length into a
 * buffer of known size become __read_chk/__recv_chk/__recvfrom_chk. */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
int close_range(unsigned int first, unsigned int last, int flags);

#define SENTINEL ENOTRECOVERABLE /* no call here fails with it */

static int ncases;
static volatile size_t runtime_len = 8; /* not a compile-time constant: fortify uses _chk */
/* Bad arguments the compiler cannot see through (it would refuse them). */
static void *volatile bad_ptr = (void *)8;
#define BADP (bad_ptr)
static volatile int bad_count = 100000;

static const char *errname(int e)
{
    static char buf[32];
    if (e == SENTINEL)
        return "-";
    if (e == 0)
        return "0";
    const char *n = strerrorname_np(e);
    if (n)
        return n;
    snprintf(buf, sizeof buf, "errno%d", e);
    return buf;
}

static void line(const char *name, const char *ret, int err, const char *extra)
{
    printf("%s %s %s%s%s\n", name, ret, errname(err), extra && *extra ? " " : "",
           extra ? extra : "");
    ncases++;
}

static void report(const char *name, long r, int err, const char *extra)
{
    char rb[32];
    snprintf(rb, sizeof rb, "%ld", r);
    line(name, rb, err, extra);
}

/* CASE(name, expr): the return value as a number. */
#define CASE(name, expr)                        \
    do {                                        \
        errno = SENTINEL;                       \
        long r_ = (long)(expr);                 \
        int e_ = errno;                         \
        report((name), r_, e_, NULL);           \
    } while (0)

/* CASE_X(name, expr, fmt, ...): plus one extra field, formatted after the call. */
#define CASE_X(name, expr, ...)                 \
    do {                                        \
        errno = SENTINEL;                       \
        long r_ = (long)(expr);                 \
        int e_ = errno;                         \
        char x_[128];                           \
        snprintf(x_, sizeof x_, __VA_ARGS__);   \
        report((name), r_, e_, x_);             \
    } while (0)

/* CASE_FD(name, expr): a new descriptor prints as "fd" and is closed again. */
#define CASE_FD(name, expr)                     \
    do {                                        \
        errno = SENTINEL;                       \
        long r_ = (long)(expr);                 \
        int e_ = errno;                         \
        if (r_ >= 0) {                          \
            line((name), "fd", e_, NULL);       \
            close((int)r_);                     \
        } else {                                \
            report((name), r_, e_, NULL);       \
        }                                       \
    } while (0)

static const char *gai_name(int r)
{
    switch (r) {
    case 0: return "0";
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_BADFLAGS: return "EAI_BADFLAGS";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_MEMORY: return "EAI_MEMORY";
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_SERVICE: return "EAI_SERVICE";
    case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
    case EAI_SYSTEM: return "EAI_SYSTEM";
    default: return "EAI_other";
    }
}

/* getaddrinfo: the EAI code, errno, and the answers (family, address, port). */
static void gai_case(const char *name, const char *node, const char *service, int flags,
                     int family, int socktype)
{
    struct addrinfo hints = {.ai_flags = flags, .ai_family = family, .ai_socktype = socktype};
    struct addrinfo *res = NULL;
    errno = SENTINEL;
    int r = getaddrinfo(node, service, &hints, &res);
    int e = errno;
    char extra[256] = "";
    size_t at = 0;
    if (r == 0) {
        for (struct addrinfo *ai = res; ai && at < sizeof extra - 64; ai = ai->ai_next) {
            char host[INET6_ADDRSTRLEN] = "?";
            int port = 0;
            if (ai->ai_family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
                inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
                port = ntohs(sin->sin_port);
            } else if (ai->ai_family == AF_INET6) {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ai->ai_addr;
                inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
                port = ntohs(sin6->sin6_port);
            }
            at += snprintf(extra + at, sizeof extra - at, "%s%d/%d/%s/%d", at ? "," : "",
                           ai->ai_family, ai->ai_socktype, host, port);
        }
        freeaddrinfo(res);
    }
    /* errno too: whatever glibc left there, the app must see the same. */
    line(name, gai_name(r), e, extra);
}

/* A descriptor number that is not open and that nothing here will reuse
 * (new descriptors take the lowest free number; F_DUPFD asks for >= 100). */
#define CLOSED_FD 999
static int closed_fd(void)
{
    if (fcntl(CLOSED_FD, F_GETFD) != -1) {
        fprintf(stderr, "fd %d is open\n", CLOSED_FD);
        exit(2);
    }
    return CLOSED_FD;
}

static void set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* A TCP listener on 127.0.0.1 (port chosen by the kernel). */
static int tcp_listener(int backlog, struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, backlog) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) != 0) {
        perror("listener");
        exit(2);
    }
    *addr = a;
    return l;
}

/* A connected TCP pair over loopback: *c the client, *s the accepted end. */
static void tcp_pair(int l, const struct sockaddr_in *addr, int *c, int *s)
{
    *c = socket(AF_INET, SOCK_STREAM, 0);
    if (*c < 0 || connect(*c, (const struct sockaddr *)addr, sizeof *addr) != 0) {
        perror("tcp connect");
        exit(2);
    }
    *s = accept(l, NULL, NULL);
    if (*s < 0) {
        perror("accept");
        exit(2);
    }
}

static void fill(int fd)
{
    static char junk[65536];
    set_nonblock(fd, 1);
    while (send(fd, junk, sizeof junk, MSG_NOSIGNAL) > 0)
        ;
    while (send(fd, junk, 1, MSG_NOSIGNAL) > 0)
        ;
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* SIGALRM after ms, then every ms until disarmed: should the first one come
 * before the call blocks (a loaded machine), the next interrupts it. */
static void arm_alarm_ms(int ms)
{
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = ms * 1000},
                           .it_interval = {.tv_sec = 0, .tv_usec = ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm_alarm(void)
{
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A listener whose accept queue is full: further SYNs are dropped, so a
 * connect to it stays pending. Returns the listener; *addr its address. */
static int full_listener(struct sockaddr_in *addr, int fillers[4])
{
    int l = tcp_listener(0, addr);
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)addr, sizeof *addr);
        struct pollfd p = {.fd = fillers[i], .events = POLLOUT};
        if (poll(&p, 1, 300) == 0)
            return l; /* this one stays pending: the queue is full */
    }
    fprintf(stderr, "could not fill the accept queue\n");
    exit(2);
}

static void data_calls_on(const char *what, int fd)
{
    char buf[64] = "0123456789";
    char name[64];
    struct iovec iov = {buf, 4};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    struct mmsghdr mm = {.msg_hdr = mh};
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t fl = sizeof to;
#define ON(call) (snprintf(name, sizeof name, "%s-%s", #call, what), name)
    CASE(ON(send), send(fd, buf, 4, MSG_NOSIGNAL));
    CASE(ON(recv), recv(fd, buf, 4, MSG_DONTWAIT));
    CASE(ON(sendto), sendto(fd, buf, 4, MSG_NOSIGNAL, (struct sockaddr *)&to, sizeof to));
    CASE(ON(recvfrom), recvfrom(fd, buf, 4, MSG_DONTWAIT, (struct sockaddr *)&to, &fl));
    CASE(ON(sendmsg), sendmsg(fd, &mh, MSG_NOSIGNAL));
    CASE(ON(recvmsg), recvmsg(fd, &mh, MSG_DONTWAIT));
    CASE(ON(sendmmsg), sendmmsg(fd, &mm, 1, MSG_NOSIGNAL));
    CASE(ON(recvmmsg), recvmmsg(fd, &mm, 1, MSG_DONTWAIT, NULL));
    CASE(ON(__recv_chk), recv(fd, buf, runtime_len, MSG_DONTWAIT));
    CASE(ON(__recvfrom_chk), recvfrom(fd, buf, runtime_len, MSG_DONTWAIT, NULL, NULL));
    CASE(ON(getsockopt), getsockopt(fd, SOL_SOCKET, SO_TYPE, buf, &fl));
    CASE(ON(connect), connect(fd, (struct sockaddr *)&to, sizeof to));
    CASE_FD(ON(accept), accept(fd, NULL, NULL));
    CASE_FD(ON(accept4), accept4(fd, NULL, NULL, SOCK_CLOEXEC));
#undef ON
}

static void rw_calls_on(const char *what, int rfd, int wfd)
{
    char buf[64] = "0123456789";
    char name[64];
    struct iovec iov[2] = {{buf, 3}, {buf + 3, 2}};
#define ON(call) (snprintf(name, sizeof name, "%s-%s", #call, what), name)
    CASE(ON(write), write(wfd, buf, 5));
    CASE(ON(writev), writev(wfd, iov, 2));
    CASE(ON(read), read(rfd, buf, 4));
    CASE(ON(readv), readv(rfd, iov, 2));
    CASE(ON(__read_chk), read(rfd, buf, runtime_len));
#undef ON
}

static void probe_all(void)
{
    char buf[64] = "0123456789";
    char big[256];
    struct iovec iov = {buf, 4};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    struct mmsghdr mm[2] = {{.msg_hdr = mh}, {.msg_hdr = mh}};
    int sv[2], dv[2];
    socklen_t sl;
    int v;

    /* ---- bad descriptors: -1 and a closed number --------------------- */
    data_calls_on("fd-1", -1);
    rw_calls_on("fd-1", -1, -1);
    int cfd = closed_fd();
    data_calls_on("closed", cfd);
    rw_calls_on("closed", cfd, cfd);

    /* ---- not a socket: a pipe and a regular file --------------------- */
    int p[2];
    if (pipe(p) != 0)
        exit(2);
    data_calls_on("pipe", p[0]);
    rw_calls_on("pipe", p[0], p[1]);
    CASE("read-pipe-eof-after-close", (close(p[1]), read(p[0], buf, 4)));
    close(p[0]);
    char path[] = "/tmp/errno_probe.XXXXXX";
    int f = mkstemp(path);
    if (f < 0)
        exit(2);
    unlink(path);
    data_calls_on("file", f);
    rw_calls_on("file", f, f);
    CASE("lseek-file", lseek(f, 0, SEEK_SET));
    CASE("read-file", read(f, buf, 64));
    CASE("read-file-eof", read(f, buf, 64));
    CASE("__read_chk-file-eof", read(f, buf, runtime_len));
    close(f);

    /* ---- unix stream socketpair ------------------------------------- */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        exit(2);
    CASE("send-zero-len", send(sv[0], buf, 0, 0));
    CASE("recv-dontwait-empty", recv(sv[1], buf, 4, MSG_DONTWAIT));
    CASE("read-zero-len", read(sv[1], buf, 0));
    CASE("send-5", send(sv[0], "hello", 5, 0));
    CASE("recv-peek", recv(sv[1], buf, 64, MSG_PEEK));
    CASE("recv-peek-again", recv(sv[1], buf, 2, MSG_PEEK));
    CASE_X("recv-after-peek", recv(sv[1], buf, 64, 0), "data=%.5s", buf);
    CASE("send-oob-unix", send(sv[0], buf, 1, MSG_OOB));
    CASE("recv-oob-unix", recv(sv[1], buf, 1, MSG_OOB | MSG_DONTWAIT));
    CASE("send-efault", send(sv[0], BADP, 10, 0));
    CASE("write-efault", write(sv[0], BADP, 10));
    CASE("send-1", send(sv[0], "x", 1, 0));
    CASE("recv-efault", recv(sv[1], BADP, 10, 0));
    CASE("read-efault", read(sv[1], BADP, 10)); /* the byte is still queued */
    CASE("recv-dontwait-drain", recv(sv[1], buf, 64, MSG_DONTWAIT));
    CASE("readv-bad-iovcnt", readv(sv[1], &iov, -bad_count));
    CASE("writev-zero-iovcnt", writev(sv[0], &iov, 0));
    CASE("writev-bad-iovcnt", writev(sv[0], &iov, bad_count));
    CASE("sendmsg-null-iov-0", sendmsg(sv[0], &(struct msghdr){0}, 0));
    CASE("sendmmsg-vlen-0", sendmmsg(sv[0], mm, 0, 0));
    CASE("sendto-addr-on-connected-unix",
         sendto(sv[0], buf, 1, 0, (struct sockaddr *)&(struct sockaddr_un){.sun_family = AF_UNIX,
                                                                            .sun_path = "/x"},
                sizeof(struct sockaddr_un)));
    CASE("shutdown-wr", shutdown(sv[0], SHUT_WR));
    CASE("send-after-shutdown", send(sv[0], buf, 1, MSG_NOSIGNAL));
    CASE("recv-eof-after-shutdown", recv(sv[1], buf, 64, 0));
    CASE("__recv_chk-eof", recv(sv[1], buf, runtime_len, 0));
    CASE("read-eof", read(sv[1], buf, 64));
    CASE("readv-eof", readv(sv[1], &iov, 1));
    CASE("recvmsg-eof", recvmsg(sv[1], &mh, 0));
    close(sv[0]);
    close(sv[1]);

    /* ---- non-blocking, no data: EAGAIN ------------------------------ */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        exit(2);
    CASE("recv-nonblock-empty", recv(sv[0], buf, 4, 0));
    CASE("recvfrom-nonblock-empty", recvfrom(sv[0], buf, 4, 0, NULL, NULL));
    CASE("recvmsg-nonblock-empty", recvmsg(sv[0], &mh, 0));
    CASE("recvmmsg-nonblock-empty", recvmmsg(sv[0], mm, 2, 0, NULL));
    CASE("read-nonblock-empty", read(sv[0], buf, 4));
    CASE("readv-nonblock-empty", readv(sv[0], &iov, 1));
    CASE("__read_chk-nonblock-empty", read(sv[0], buf, runtime_len));
    CASE("__recv_chk-nonblock-empty", recv(sv[0], buf, runtime_len, 0));
    CASE("__recvfrom_chk-nonblock-empty", recvfrom(sv[0], buf, runtime_len, 0, NULL, NULL));
    fill(sv[0]);
    CASE("send-nonblock-full", send(sv[0], buf, 4, 0));
    CASE("sendto-nonblock-full", sendto(sv[0], buf, 4, 0, NULL, 0));
    CASE("sendmsg-nonblock-full", sendmsg(sv[0], &mh, 0));
    CASE("sendmmsg-nonblock-full", sendmmsg(sv[0], mm, 2, 0));
    CASE("write-nonblock-full", write(sv[0], buf, 4));
    CASE("writev-nonblock-full", writev(sv[0], &iov, 1));
    CASE("fcntl-getfl-nonblock", fcntl(sv[0], F_GETFL) & (O_NONBLOCK | O_ACCMODE));

    /* ---- EINTR: a signal (no SA_RESTART) while blocked --------------- */
    struct sigaction sa = {.sa_handler = on_alarm}; /* sa_flags 0: no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    set_nonblock(sv[0], 0);
    arm_alarm_ms(50);
    CASE("send-blocking-full-eintr", send(sv[0], buf, 4, 0));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("write-blocking-full-eintr", write(sv[0], buf, 4));
    disarm_alarm();
    set_nonblock(sv[1], 0);
    close(sv[0]);
    close(sv[1]);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        exit(2);
    arm_alarm_ms(50);
    CASE("recv-eintr", recv(sv[0], buf, 4, 0));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("read-eintr", read(sv[0], buf, 4));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("recvmsg-eintr", recvmsg(sv[0], &mh, 0));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("recvmmsg-eintr", recvmmsg(sv[0], mm, 1, 0, NULL));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("__recv_chk-eintr", recv(sv[0], buf, runtime_len, 0));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("__read_chk-eintr", read(sv[0], buf, runtime_len));
    disarm_alarm();

    /* ---- peer closed: EPIPE, EOF -------------------------------------- */
    signal(SIGPIPE, SIG_IGN);
    close(sv[1]);
    CASE("recv-peer-closed-eof", recv(sv[0], buf, 4, 0));
    CASE("read-peer-closed-eof", read(sv[0], buf, 4));
    CASE("send-peer-closed-nosignal", send(sv[0], buf, 4, MSG_NOSIGNAL));
    CASE("write-peer-closed", write(sv[0], buf, 4));
    CASE("writev-peer-closed", writev(sv[0], &iov, 1));
    CASE("sendmsg-peer-closed", sendmsg(sv[0], &mh, MSG_NOSIGNAL));
    CASE("sendmmsg-peer-closed", sendmmsg(sv[0], mm, 1, MSG_NOSIGNAL));
    close(sv[0]);

    /* ---- datagrams: MSG_TRUNC, EMSGSIZE, mmsg ------------------------ */
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dv) != 0)
        exit(2);
    CASE("send-dgram-10", send(dv[0], "0123456789", 10, 0));
    CASE("recv-dgram-trunc-flag", recv(dv[1], buf, 4, MSG_TRUNC));
    CASE("send-dgram-10-again", send(dv[0], "0123456789", 10, 0));
    mh.msg_flags = 0;
    CASE_X("recvmsg-dgram-truncated", recvmsg(dv[1], &mh, 0), "msg_flags=%#x", mh.msg_flags);
    CASE("sendto-dgram-10", sendto(dv[0], "0123456789", 10, 0, NULL, 0));
    sl = sizeof(struct sockaddr_un);
    struct sockaddr_un from;
    CASE_X("recvfrom-dgram", recvfrom(dv[1], big, sizeof big, 0, (struct sockaddr *)&from, &sl),
           "fromlen=%u", (unsigned)sl);
    static char huge[1 << 20];
    CASE("send-dgram-emsgsize", send(dv[0], huge, sizeof huge, 0));
    {
        struct iovec iv[2] = {{buf, 3}, {big, 3}};
        struct mmsghdr out[3] = {{.msg_hdr = {.msg_iov = &iv[0], .msg_iovlen = 1}},
                                 {.msg_hdr = {.msg_iov = &iv[1], .msg_iovlen = 1}},
                                 {.msg_hdr = {.msg_iov = (struct iovec *)BADP, .msg_iovlen = 1}}};
        CASE_X("sendmmsg-dgram-partial", sendmmsg(dv[0], out, 3, 0), "len=%u,%u",
               out[0].msg_len, out[1].msg_len);
        struct iovec riv[3] = {{big, 16}, {big + 16, 16}, {big + 32, 16}};
        struct mmsghdr in[3] = {{.msg_hdr = {.msg_iov = &riv[0], .msg_iovlen = 1}},
                                {.msg_hdr = {.msg_iov = &riv[1], .msg_iovlen = 1}},
                                {.msg_hdr = {.msg_iov = &riv[2], .msg_iovlen = 1}}};
        CASE_X("recvmmsg-dgram", recvmmsg(dv[1], in, 3, MSG_DONTWAIT, NULL), "len=%u,%u",
               in[0].msg_len, in[1].msg_len);
        struct timespec ts = {0, 1000000};
        CASE("recvmmsg-dgram-timeout-empty", recvmmsg(dv[1], in, 3, MSG_DONTWAIT, &ts));
    }
    CASE("recv-dgram-zero-len-empty", recv(dv[1], buf, 0, MSG_DONTWAIT));
    close(dv[0]);
    CASE("send-dgram-peer-closed", send(dv[1], buf, 1, MSG_NOSIGNAL));
    close(dv[1]);
    int ud = socket(AF_UNIX, SOCK_DGRAM, 0);
    CASE("send-dgram-unconnected", send(ud, buf, 1, 0));
    CASE("recv-dgram-unconnected-dontwait", recv(ud, buf, 1, MSG_DONTWAIT));
    CASE("sendto-dgram-missing-path",
         sendto(ud, buf, 1, 0,
                (struct sockaddr *)&(struct sockaddr_un){.sun_family = AF_UNIX,
                                                         .sun_path = "/nonexistent/sock"},
                sizeof(struct sockaddr_un)));
    CASE("connect-dgram-unspec", connect(ud, &(struct sockaddr){.sa_family = AF_UNSPEC},
                                         sizeof(struct sockaddr)));
    CASE("accept-dgram", accept(ud, NULL, NULL));
    close(ud);

    /* ---- TCP over loopback ------------------------------------------ */
    struct sockaddr_in la;
    int l = tcp_listener(8, &la);
    int c, s;
    tcp_pair(l, &la, &c, &s);
    CASE("connect-tcp-eisconn", connect(c, (struct sockaddr *)&la, sizeof la));
    CASE("send-tcp", send(c, "ping", 4, 0));
    CASE_X("recv-tcp", recv(s, buf, 64, 0), "data=%.4s", buf);
    CASE("recv-tcp-dontwait-empty", recv(s, buf, 64, MSG_DONTWAIT));
    CASE("send-tcp-oob", send(c, "!", 1, MSG_OOB));
    CASE("recv-tcp-oob-inline-off", recv(s, buf, 1, MSG_OOB));
    CASE("getsockopt-so_error-connected", (sl = sizeof v, v = -1, getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &sl)));
    CASE_X("getsockopt-so_type", (sl = sizeof v, getsockopt(c, SOL_SOCKET, SO_TYPE, &v, &sl)),
           "val=%d len=%u", v, (unsigned)sl);
    CASE("getsockopt-bad-level", (sl = sizeof v, getsockopt(c, 12345, 1, &v, &sl)));
    CASE("getsockopt-bad-option", (sl = sizeof v, getsockopt(c, SOL_SOCKET, 12345, &v, &sl)));
    CASE("getsockopt-neg-len", (sl = (socklen_t)-1, getsockopt(c, SOL_SOCKET, SO_TYPE, &v, &sl)));
    CASE_X("getsockopt-zero-len", (sl = 0, getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &sl)),
           "len=%u", (unsigned)sl);
    CASE("getsockopt-null-len", getsockopt(c, SOL_SOCKET, SO_TYPE, &v, NULL));
    /* ECONNRESET: the accepted end aborts (SO_LINGER 0) */
    {
        struct linger lg = {1, 0};
        setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(s);
        struct pollfd pf = {.fd = c, .events = POLLIN};
        poll(&pf, 1, 2000);
    }
    CASE("recv-tcp-reset", recv(c, buf, 64, 0));
    CASE("recv-tcp-after-reset", recv(c, buf, 64, 0));
    CASE("send-tcp-after-reset", send(c, buf, 4, MSG_NOSIGNAL));
    CASE("getsockopt-so_error-after-reset", (sl = sizeof v, v = -1, getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &sl)));
    close(c);
    tcp_pair(l, &la, &c, &s);
    {
        struct linger lg = {1, 0};
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(c);
        struct pollfd pf = {.fd = s, .events = POLLIN};
        poll(&pf, 1, 2000);
    }
    CASE("read-tcp-reset", read(s, buf, 64));
    CASE("write-tcp-after-reset", write(s, buf, 4));
    close(s);
    /* unconnected TCP socket */
    int t = socket(AF_INET, SOCK_STREAM, 0);
    CASE("send-tcp-unconnected", send(t, buf, 1, MSG_NOSIGNAL));
    CASE("recv-tcp-unconnected", recv(t, buf, 1, 0));
    CASE("read-tcp-unconnected", read(t, buf, 1));
    CASE("write-tcp-unconnected", write(t, buf, 1));
    CASE("accept-not-listening", accept(t, NULL, NULL));
    CASE("accept4-bad-flags", accept4(l, NULL, NULL, 0x12345678));
    CASE("connect-tcp-unspec", connect(t, &(struct sockaddr){.sa_family = AF_UNSPEC},
                                       sizeof(struct sockaddr)));
    CASE("connect-bad-family-inet6-addr",
         connect(t, (struct sockaddr *)&(struct sockaddr_in6){.sin6_family = AF_INET6},
                 sizeof(struct sockaddr_in6)));
    CASE("connect-bad-family-unix-addr",
         connect(t, (struct sockaddr *)&(struct sockaddr_un){.sun_family = AF_UNIX,
                                                             .sun_path = "/x"},
                 sizeof(struct sockaddr_un)));
    CASE("connect-short-len", connect(t, (struct sockaddr *)&la, 4));
    CASE("connect-zero-len", connect(t, (struct sockaddr *)&la, 0));
    CASE("connect-null-addr", connect(t, NULL, sizeof la));
    close(t);
    /* non-blocking listener with nothing pending */
    set_nonblock(l, 1);
    CASE("accept-nonblock-empty", accept(l, NULL, NULL));
    CASE("accept4-nonblock-empty", accept4(l, NULL, NULL, SOCK_NONBLOCK));
    /* an accept that works, with the peer's address length */
    {
        int cc = socket(AF_INET, SOCK_STREAM, 0);
        connect(cc, (struct sockaddr *)&la, sizeof la);
        struct pollfd pf = {.fd = l, .events = POLLIN};
        poll(&pf, 1, 2000);
        struct sockaddr_in pa;
        sl = sizeof pa;
        errno = SENTINEL;
        int a = accept4(l, (struct sockaddr *)&pa, &sl, SOCK_CLOEXEC);
        int e = errno;
        char x[64];
        snprintf(x, sizeof x, "len=%u family=%d cloexec=%d", (unsigned)sl, pa.sin_family,
                 a >= 0 ? (fcntl(a, F_GETFD) & FD_CLOEXEC) : -1);
        line("accept4-ok", a >= 0 ? "fd" : "-1", e, x);
        CASE("recv-accepted-dontwait", recv(a, buf, 1, MSG_DONTWAIT));
        close(a);
        close(cc);
    }
    CASE("accept-efault-len-nonblock-empty", accept(l, NULL, (socklen_t *)BADP));
    close(l);

    /* ---- connects that stay pending: EINPROGRESS, EALREADY, EINTR ---- */
    {
        struct sockaddr_in fa;
        int fillers[4];
        int fl = full_listener(&fa, fillers);
        int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CASE("connect-nonblock-pending", connect(nb, (struct sockaddr *)&fa, sizeof fa));
        CASE("connect-nonblock-again", connect(nb, (struct sockaddr *)&fa, sizeof fa));
        CASE_X("getsockopt-so_error-pending",
               (sl = sizeof v, v = -1, getsockopt(nb, SOL_SOCKET, SO_ERROR, &v, &sl)), "val=%d",
               v);
        CASE("send-pending-connect", send(nb, buf, 1, MSG_NOSIGNAL));
        CASE("recv-pending-connect", recv(nb, buf, 1, 0));
        close(nb);
        int bl = socket(AF_INET, SOCK_STREAM, 0);
        arm_alarm_ms(100);
        CASE("connect-blocking-eintr", connect(bl, (struct sockaddr *)&fa, sizeof fa));
        disarm_alarm();
        set_nonblock(bl, 1); /* a blocking connect now would wait for the SYN timeout */
        CASE("connect-after-eintr-nonblock", connect(bl, (struct sockaddr *)&fa, sizeof fa));
        close(bl);
        /* a refused non-blocking connect: reshim does not retry those */
        struct sockaddr_in ra;
        int rl = socket(AF_INET, SOCK_STREAM, 0); /* bound, never listening: refuses */
        ra = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        sl = sizeof ra;
        bind(rl, (struct sockaddr *)&ra, sizeof ra);
        getsockname(rl, (struct sockaddr *)&ra, &sl);
        nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CASE("connect-nonblock-refused", connect(nb, (struct sockaddr *)&ra, sizeof ra));
        struct pollfd pf = {.fd = nb, .events = POLLOUT};
        poll(&pf, 1, 2000);
        CASE_X("getsockopt-so_error-refused",
               (sl = sizeof v, v = -1, getsockopt(nb, SOL_SOCKET, SO_ERROR, &v, &sl)), "val=%s",
               v == ECONNREFUSED ? "ECONNREFUSED" : v ? "other" : "0");
        CASE("connect-nonblock-refused-again", connect(nb, (struct sockaddr *)&ra, sizeof ra));
        close(nb);
        nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(nb, (struct sockaddr *)&ra, sizeof ra);
        poll(&pf, 1, 2000);
        pf.fd = nb;
        poll(&pf, 1, 2000);
        CASE("connect-nonblock-refused-reap", connect(nb, (struct sockaddr *)&ra, sizeof ra));
        CASE("recv-after-refused", recv(nb, buf, 1, MSG_DONTWAIT));
        close(nb);
        close(rl);
        /* a non-blocking unix connect to a missing path */
        int un = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CASE("connect-unix-nonblock-missing",
             connect(un, (struct sockaddr *)&(struct sockaddr_un){.sun_family = AF_UNIX,
                                                                  .sun_path = "/nonexistent/x"},
                     sizeof(struct sockaddr_un)));
        close(un);
        for (int i = 0; i < 4; i++)
            close(fillers[i]);
        close(fl);
    }
    CASE("connect-fd-1", connect(-1, (struct sockaddr *)&la, sizeof la));
    CASE("connect-closed", connect(cfd, (struct sockaddr *)&la, sizeof la));
    if (pipe(p) != 0)
        exit(2);
    CASE("connect-pipe", connect(p[0], (struct sockaddr *)&la, sizeof la));
    CASE("getsockopt-on-pipe", (sl = sizeof v, getsockopt(p[0], SOL_SOCKET, SO_TYPE, &v, &sl)));
    CASE("getsockopt-fd-1", (sl = sizeof v, getsockopt(-1, SOL_SOCKET, SO_TYPE, &v, &sl)));

    /* ---- descriptors -------------------------------------------------- */
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    CASE_X("dup2-onto-itself", (v = dup2(sock, sock)) >= 0, "same=%d", v == sock);
    CASE("dup2-fd-1", dup2(-1, sock));
    CASE("dup2-onto-neg", dup2(sock, -1));
    CASE("dup2-closed-source", dup2(cfd, sock));
    CASE("dup3-onto-itself", dup3(sock, sock, 0));
    CASE("dup3-bad-flags", dup3(sock, 200, 0x12345));
    CASE_FD("dup3-cloexec", dup3(sock, 200, O_CLOEXEC));
    CASE_FD("dup-sock", dup(sock));
    CASE("dup-fd-1", dup(-1));
    CASE("dup-closed", dup(cfd));
    CASE("fcntl-getfl-sock", fcntl(sock, F_GETFL));
    CASE("fcntl-getfl-fd-1", fcntl(-1, F_GETFL));
    CASE("fcntl-setfl-nonblock", fcntl(sock, F_SETFL, O_NONBLOCK));
    CASE("fcntl-getfl-after", fcntl(sock, F_GETFL));
    CASE_X("fcntl-dupfd-100", v = fcntl(sock, F_DUPFD, 100), "ge100=%d", v >= 100);
    if (v >= 0)
        close(v);
    CASE_X("fcntl-dupfd-cloexec-100", v = fcntl(sock, F_DUPFD_CLOEXEC, 100), "ge100=%d", v >= 100);
    if (v >= 0)
        close(v);
    CASE("fcntl-dupfd-neg", fcntl(sock, F_DUPFD, -5));
    CASE("fcntl-dupfd-huge", fcntl(sock, F_DUPFD, 1 << 30));
    CASE("fcntl-bad-cmd", fcntl(sock, 99999));
    CASE("fcntl-getfd", fcntl(sock, F_GETFD));
    CASE("fcntl64-getfl", fcntl64(sock, F_GETFL));
    CASE("fcntl64-fd-1", fcntl64(-1, F_GETFL));
    CASE_X("fcntl64-dupfd-100", v = fcntl64(sock, F_DUPFD, 100), "ge100=%d", v >= 100);
    if (v >= 0)
        close(v);
    {
        struct flock lk = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
        CASE("fcntl-getlk-on-socket", fcntl(sock, F_GETLK, &lk));
        CASE("fcntl-getlk-efault", fcntl(p[0], F_GETLK, BADP));
    }
    CASE("close-fd-1", close(-1));
    CASE("close-closed", close(cfd));
    CASE("close-sock", close(sock));
    CASE("close-sock-again", close(sock));
    CASE("close_range-first-gt-last", close_range(500, 400, 0));
    CASE("close_range-bad-flags", close_range(500, 600, 0x4000));
    CASE("close_range-empty-range", close_range(500, 600, 0));
    /* the pipe moved to 700 and 701, so that a range holds nothing else */
    dup2(p[0], 700);
    dup2(p[1], 701);
    close(p[0]);
    close(p[1]);
    CASE("close_range-cloexec", close_range(700, 701, CLOSE_RANGE_CLOEXEC));
    CASE("fcntl-getfd-after-cloexec", fcntl(700, F_GETFD));
    CASE("write-before-close_range", write(701, "abc", 3));
    CASE("close_range-pipe", close_range(700, 701, 0));
    CASE("read-after-close_range", read(700, buf, 1));
    CASE("close-after-close_range", close(701));

    /* ---- socket(), socketpair() -------------------------------------- */
    CASE_FD("socket-inet-stream", socket(AF_INET, SOCK_STREAM, 0));
    CASE("socket-bad-domain", socket(9999, SOCK_STREAM, 0));
    CASE("socket-bad-type", socket(AF_INET, 9999, 0));
    CASE("socket-bad-protocol", socket(AF_INET, SOCK_STREAM, IPPROTO_UDP));
    CASE("socket-bad-flags", socket(AF_INET, SOCK_STREAM | 0x40000000, 0));
    CASE("socketpair-inet", socketpair(AF_INET, SOCK_STREAM, 0, sv));
    CASE("socketpair-bad-domain", socketpair(9999, SOCK_STREAM, 0, sv));
    CASE("socketpair-efault", socketpair(AF_UNIX, SOCK_STREAM, 0, (int *)BADP));
    CASE("socketpair-unix-ok", socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    close(sv[0]);
    close(sv[1]);

    /* ---- getaddrinfo (files and numeric only: never DNS) --------------- */
    gai_case("gai-numerichost-name", "no-such-host.reshim.invalid", "80", AI_NUMERICHOST, 0,
             SOCK_STREAM);
    gai_case("gai-localhost-inet", "localhost", "80", 0, AF_INET, SOCK_STREAM);
    gai_case("gai-localhost-inet-again", "localhost", "80", 0, AF_INET, SOCK_STREAM);
    gai_case("gai-localhost-unspec", "localhost", NULL, 0, AF_UNSPEC, SOCK_DGRAM);
    gai_case("gai-numeric-v4", "127.0.0.1", "8080", AI_NUMERICHOST | AI_NUMERICSERV, AF_UNSPEC,
             SOCK_STREAM);
    gai_case("gai-numeric-v6", "::1", "53", AI_NUMERICHOST, AF_INET6, SOCK_DGRAM);
    gai_case("gai-service-name", "127.0.0.1", "http", 0, AF_INET, SOCK_STREAM);
    gai_case("gai-bad-service", "127.0.0.1", "no-such-service", 0, AF_INET, SOCK_STREAM);
    gai_case("gai-numericserv-name", "127.0.0.1", "http", AI_NUMERICSERV, AF_INET, SOCK_STREAM);
    gai_case("gai-null-null", NULL, NULL, 0, AF_UNSPEC, 0);
    gai_case("gai-passive-null-node", NULL, "9", AI_PASSIVE, AF_INET, SOCK_STREAM);
    gai_case("gai-bad-family", "127.0.0.1", "80", 0, 12345, SOCK_STREAM);
    gai_case("gai-bad-socktype", "127.0.0.1", "80", 0, AF_INET, 12345);
    gai_case("gai-bad-flags", "127.0.0.1", "80", 0x40000000, AF_INET, SOCK_STREAM);
    gai_case("gai-canonname-null-node", NULL, "80", AI_CANONNAME, AF_INET, SOCK_STREAM);
}

/* Connects reshim retries when blocking: run with RESHIM_RETRIES=0. */
static void probe_refused(void)
{
    struct sockaddr_in ra = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof ra;
    int rl = socket(AF_INET, SOCK_STREAM, 0); /* bound, never listening: refuses */
    bind(rl, (struct sockaddr *)&ra, sizeof ra);
    getsockname(rl, (struct sockaddr *)&ra, &sl);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CASE("connect-blocking-refused", connect(c, (struct sockaddr *)&ra, sizeof ra));
    CASE("connect-blocking-refused-again", connect(c, (struct sockaddr *)&ra, sizeof ra));
    int v = -1;
    CASE_X("getsockopt-so_error-after-refused",
           (sl = sizeof v, getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &sl)), "val=%d", v);
    CASE("send-after-refused", send(c, "x", 1, MSG_NOSIGNAL));
    close(c);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    CASE("connect-unix-missing", connect(u, (struct sockaddr *)&(struct sockaddr_un){
                                                 .sun_family = AF_UNIX,
                                                 .sun_path = "/nonexistent/reshim-probe"},
                                         sizeof(struct sockaddr_un)));
    close(u);
    char path[] = "/tmp/errno_probe.XXXXXX";
    int f = mkstemp(path);
    struct sockaddr_un ua = {.sun_family = AF_UNIX};
    snprintf(ua.sun_path, sizeof ua.sun_path, "%s", path);
    u = socket(AF_UNIX, SOCK_STREAM, 0);
    CASE("connect-unix-not-a-socket", connect(u, (struct sockaddr *)&ua, sizeof ua));
    close(u);
    close(f);
    unlink(path);
    close(rl);
}

/* Arguments the kernel rejects with EFAULT: the shim must not look at them
 * before the real call does (it would crash where the app gets EFAULT). */
static void probe_efault(void)
{
    int t = socket(AF_INET, SOCK_STREAM, 0);
    CASE("connect-efault-addr", connect(t, (struct sockaddr *)BADP, sizeof(struct sockaddr_in)));
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CASE("connect-nonblock-efault-addr",
         connect(nb, (struct sockaddr *)BADP, sizeof(struct sockaddr_in)));
    close(nb);
    close(t);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "all";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "all") == 0)
        probe_all();
    else if (strcmp(mode, "refused") == 0)
        probe_refused();
    else if (strcmp(mode, "efault") == 0)
        probe_efault();
    else {
        fprintf(stderr, "usage: errno_probe [all|refused|efault]\n");
        return 2;
    }
    printf("total %d\n", ncases);
    return 0;
}
