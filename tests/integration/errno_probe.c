/* errno_probe: calls each function reshim interposes on failing and edge
 * inputs and prints one line per case: "NAME RET ERRNO [EXTRA]". RET is the
 * return value ("fd" for a new descriptor, whose number may differ between
 * runs; "ptr", "NULL" or "MAP_FAILED" for a pointer, never its value);
 * ERRNO is the errno name after the call, or "-" when the call left
 * errno as it was (each case starts with errno set to a sentinel). Run
 * without and with the shim, the outputs must be identical (test_errno.sh).
 *
 * usage: errno_probe [all|refused|efault|waits|waits-efault|nbfail]
 *   all      every case that reshim never retries (the default), the waits
 *            (poll, ppoll, select, pselect, epoll_*, the _chk forms) and the
 *            malloc family and mappings (malloc, free, calloc, realloc,
 *            reallocarray, posix_memalign, memalign, aligned_alloc, valloc,
 *            pvalloc, malloc_usable_size, mmap, mmap64, munmap, mremap)
 *            included
 *   refused  connects that fail with errors reshim retries (ECONNREFUSED,
 *            ENOENT on unix sockets), blocking and non-blocking: run it with
 *            RESHIM_RETRIES=0
 *   efault   connect and the waits with pointers the kernel rejects
 *            (EFAULT); apart so that a crash there does not hide the others
 *   waits    the wait cases of "all" while a non-blocking connect to a port
 *            that refuses is being retried in the background (the shim's
 *            slow path in every wait); run it with a long backoff
 *   waits-efault  the EFAULT waits in the same state, each in a child
 *   nbfail   a non-blocking connect that is refused, waited for with each
 *            wait, then what the app does next: run it with retries on and
 *            a short backoff; when they run out the app sees what it sees
 *            without the shim
 * The last line is "total N": the number of cases printed.
 *
 * Compiled fortified so that read/recv/recvfrom with a runtime length into a
 * buffer of known size become __read_chk/__recv_chk/__recvfrom_chk, and
 * poll/ppoll with a runtime nfds on an array of known size __poll_chk/
 * __ppoll_chk (called directly too, for an overflow and for EFAULT). */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
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

static void probe_waits(void);
static void probe_alloc(void);
static void probe_spawn(void);

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
    {
        /* Bytes that bypass the app's buffers (replay.c stops replaying). */
        int pp[2];
        off_t off = 0;
        int64_t off64 = 0;
        CASE("sendfile-bad-in", sendfile(sv[0], -1, &off, 4));
        CASE("sendfile64-bad-in", sendfile64(sv[0], -1, &off64, 4));
        if (pipe(pp) == 0) {
            CASE("write-pipe-for-splice", write(pp[1], "abcd", 4));
            CASE("splice-pipe-to-socket", splice(pp[0], NULL, sv[0], NULL, 4, 0));
            CASE("recv-spliced", recv(sv[1], buf, 4, 0));
            CASE("splice-bad-out", splice(pp[0], NULL, -1, NULL, 4, SPLICE_F_NONBLOCK));
            close(pp[0]);
            close(pp[1]);
        }
    }
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
        /* refused non-blocking connects are retried now: probe_refused() */
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

    /* ---- waits (no connect is being retried: the fast path) ----------- */
    probe_waits();

    /* ---- the malloc family, mmap, mmap64, munmap, mremap -------------- */
    probe_alloc();

    /* ---- children: vfork, clone, _Fork ---------------------------------- */
    probe_spawn();
}

/* ---- waits: poll, ppoll, __poll_chk, __ppoll_chk, select, pselect, epoll ---- */

static volatile nfds_t runtime_n1 = 1, runtime_n2 = 2, runtime_n0 = 0; /* fortify: _chk */
static volatile sig_atomic_t usr1_hits;
static void on_usr1(int sig)
{
    (void)sig;
    usr1_hits++;
}

/* An fd_set holding a and b (each when >= 0). */
static fd_set *set_of(fd_set *s, int a, int b)
{
    FD_ZERO(s);
    if (a >= 0)
        FD_SET(a, s);
    if (b >= 0)
        FD_SET(b, s);
    return s;
}

/* SIGUSR1 blocked and pending: a wait given a mask without it is interrupted
 * at once, by exactly that signal (usr1_hits says the handler ran). */
static sigset_t *usr1_pending(sigset_t *waitmask)
{
    sigset_t b;
    sigemptyset(&b);
    sigaddset(&b, SIGUSR1);
    sigprocmask(SIG_BLOCK, &b, NULL);
    usr1_hits = 0;
    raise(SIGUSR1);
    sigprocmask(SIG_BLOCK, NULL, waitmask);
    sigdelset(waitmask, SIGUSR1);
    return waitmask;
}

static void usr1_unblock(void)
{
    sigset_t b;
    sigemptyset(&b);
    sigaddset(&b, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &b, NULL);
}

/* The events epoll returned, sorted by data, without fd numbers. */
static const char *ep_events(const struct epoll_event *ev, int n)
{
    static char out[256];
    struct epoll_event s[8];
    size_t at = 0;
    int k = n < 0 ? 0 : n > 8 ? 8 : n;
    memcpy(s, ev, (size_t)k * sizeof *ev);
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && s[j - 1].data.u64 > s[j].data.u64; j--) {
            struct epoll_event t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    out[0] = 0;
    for (int i = 0; i < k && at < sizeof out - 40; i++)
        at += snprintf(out + at, sizeof out - at, "%s%#llx:%#x", i ? "," : "",
                       (unsigned long long)s[i].data.u64, s[i].events);
    return k ? out : "none";
}

static struct epoll_event *ev_of(struct epoll_event *e, uint32_t events, uint64_t data)
{
    e->events = events;
    e->data.u64 = data;
    return e;
}

/* How a child ended: "exit N" or the signal's name. */
static const char *child_end(int status)
{
    static char b[32];
    if (WIFSIGNALED(status))
        snprintf(b, sizeof b, "signal=%s", sigabbrev_np(WTERMSIG(status)) ?: "?");
    else
        snprintf(b, sizeof b, "exit=%d", WEXITSTATUS(status));
    return b;
}

/* The fortified checks report an fds array shorter than nfds by aborting: in
 * a child, with the core dump and the message off. which: 0 __poll_chk, 1
 * __ppoll_chk. */
static void chk_overflow_case(const char *name, int which)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no = {0, 0};
        setrlimit(RLIMIT_CORE, &no);
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 2);
        setenv("LIBC_FATAL_STDERR_", "1", 1);
        struct pollfd one[1] = {{.fd = -1}};
        struct timespec z = {0, 0};
        if (which == 0)
            __poll_chk(one, runtime_n2, 0, sizeof one);
        else
            __ppoll_chk(one, runtime_n2, &z, NULL, sizeof one);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    line(name, "-", SENTINEL, child_end(st));
}

/* ---- children: vfork, clone, _Fork ------------------------------------------
 * Each child closes a socket of the parent's (a vfork or CLONE_VM child on the
 * parent's memory) and exits with a status of its own; the parent prints the
 * call's outcome, errno and the child's end, then uses the socket. */
static int spawn_fd = -1;

static int clone_child(void *arg)
{
    close(spawn_fd);
    return (int)(long)arg;
}

static void spawn_end(const char *name, long r, int e)
{
    int st = 0;
    if (r > 0)
        waitpid((pid_t)r, &st, __WALL);
    char x[96];
    int one = 1;
    snprintf(x, sizeof x, "%s socket-after %d", r > 0 ? child_end(st) : "-",
             setsockopt(spawn_fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));
    line(name, r > 0 ? "pid" : r == 0 ? "0" : "-1", e, x);
}

static void probe_spawn(void)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    spawn_fd = socket(AF_INET, SOCK_STREAM, 0);
    fflush(stdout);
    errno = SENTINEL;
    pid_t p = vfork();
    if (p == 0) {
        close(spawn_fd);
        _exit(3);
    }
    spawn_end("vfork", p, errno);

    errno = SENTINEL;
    long r = clone(clone_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)5L);
    spawn_end("clone-vm-vfork", r, errno);
    errno = SENTINEL;
    r = clone(clone_child, stack + sizeof stack, SIGCHLD, (void *)6L);
    spawn_end("clone-copy", r, errno);
    errno = SENTINEL;
    r = clone(NULL, stack + sizeof stack, SIGCHLD, NULL);
    spawn_end("clone-null-fn", r, errno);
    errno = SENTINEL;
    r = clone(clone_child, stack + sizeof stack, CLONE_THREAD | SIGCHLD, NULL);
    spawn_end("clone-thread-no-sighand", r, errno);

    errno = SENTINEL;
    p = _Fork();
    if (p == 0) {
        close(spawn_fd);
        _exit(4);
    }
    spawn_end("_Fork", p, errno);
    close(spawn_fd);
}

/* Every wait on edge inputs: bad and closed fds, bad timeouts, pipes with and
 * without data, a ready socketpair, signals. Outcomes that name no fd. */
static void probe_waits(void)
{
    char buf[64];
    int p[2], sv[2];
    struct pollfd one[1], two[2];
    struct timespec ts;
    struct timeval tv;
    fd_set rs, ws, es;
    sigset_t wm;
    struct epoll_event e, evs[8];
    int cfd = closed_fd();
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    struct sigaction su = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &su, NULL);
    if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        exit(2);
    int nf = (p[0] > p[1] ? p[0] : p[1]) + 1;
#define ONE(fd_, ev_) (one[0] = (struct pollfd){.fd = (fd_), .events = (ev_), .revents = 0x5a5a}, one)
#define TWO(fa, ea, fb, eb)                                                   \
    (two[0] = (struct pollfd){.fd = (fa), .events = (ea), .revents = 0x5a5a}, \
     two[1] = (struct pollfd){.fd = (fb), .events = (eb), .revents = 0x5a5a}, two)
#define TS(s, ns) (ts = (struct timespec){(s), (ns)}, &ts)
#define TV(s, us) (tv = (struct timeval){(s), (us)}, &tv)
#define REV1 "revents=%#x", (unsigned)(unsigned short)one[0].revents
#define REV2 "revents=%#x,%#x", (unsigned)(unsigned short)two[0].revents, \
             (unsigned)(unsigned short)two[1].revents

    /* ---- poll (nfds a constant: the plain symbol) ---- */
    CASE("poll-nfds-0", poll(NULL, 0, 0));
    CASE("poll-nfds-0-timeout-10ms", poll(NULL, 0, 10));
    CASE_X("poll-pipe-empty", poll(ONE(p[0], POLLIN), 1, 0), REV1);
    CASE_X("poll-pipe-empty-timeout-20ms", poll(ONE(p[0], POLLIN), 1, 20), REV1);
    CASE_X("poll-pipe-write-end", poll(ONE(p[1], POLLOUT), 1, 0), REV1);
    CASE("write-pipe-1", write(p[1], "x", 1));
    CASE_X("poll-pipe-data", poll(ONE(p[0], POLLIN), 1, 0), REV1);
    CASE_X("poll-pipe-data-no-timeout", poll(ONE(p[0], POLLIN | POLLOUT), 1, -1), REV1);
    CASE_X("poll-pipe-events-0", poll(ONE(p[0], 0), 1, 0), REV1);
    CASE_X("poll-pipe-both-ends", poll(TWO(p[0], POLLIN, p[1], POLLOUT), 2, 0), REV2);
    CASE_X("poll-closed-fd", poll(ONE(cfd, POLLIN), 1, 0), REV1);
    CASE_X("poll-closed-fd-and-data", poll(TWO(cfd, POLLIN, p[0], POLLIN), 2, 0), REV2);
    CASE_X("poll-neg-fd", poll(ONE(-1, POLLIN), 1, 0), REV1);
    CASE_X("poll-neg-fd-and-data", poll(TWO(-1, POLLIN, p[0], POLLIN), 2, 0), REV2);
    CASE_X("poll-socketpair-ready", poll(ONE(sv[0], POLLIN | POLLOUT), 1, 0), REV1);
    CASE("send-socketpair-3", send(sv[1], "abc", 3, 0));
    CASE_X("poll-socketpair-data", poll(TWO(sv[0], POLLIN | POLLOUT, sv[1], POLLIN), 2, 0), REV2);
    {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        nfds_t n = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 24) ? (1u << 24) : rl.rlim_cur + 1;
        struct pollfd *many = calloc(n, sizeof *many);
        for (nfds_t i = 0; many && i < n; i++)
            many[i].fd = -1;
        if (many && n > rl.rlim_cur)
            CASE("poll-nfds-over-rlimit", poll(many, n, 0));
        else
            line("poll-nfds-over-rlimit", "skipped", SENTINEL, NULL);
        free(many);
    }

    /* ---- __poll_chk (nfds known only at run time) ---- */
    CASE_X("__poll_chk-pipe-data", poll(one, (ONE(p[0], POLLIN), runtime_n1), 0), REV1);
    CASE_X("__poll_chk-both-ends", poll(two, (TWO(p[0], POLLIN, p[1], POLLOUT), runtime_n2), 5), REV2);
    CASE_X("__poll_chk-closed-fd", poll(one, (ONE(cfd, POLLOUT), runtime_n1), 0), REV1);
    CASE_X("__poll_chk-neg-fd", poll(one, (ONE(-1, POLLOUT), runtime_n1), 0), REV1);
    CASE("__poll_chk-nfds-0", poll(one, runtime_n0, 0));
    chk_overflow_case("__poll_chk-overflow-child", 0);

    /* ---- ppoll ---- */
    CASE_X("ppoll-null-ts-data", ppoll(ONE(p[0], POLLIN), 1, NULL, NULL), REV1);
    CASE_X("ppoll-zero-ts-data", ppoll(ONE(p[0], POLLIN), 1, TS(0, 0), NULL), REV1);
    CASE_X("ppoll-ts-nsec-1e9", ppoll(ONE(p[0], POLLIN), 1, TS(0, 1000000000L), NULL), REV1);
    CASE_X("ppoll-ts-nsec-neg", ppoll(ONE(p[0], POLLIN), 1, TS(0, -1), NULL), REV1);
    CASE_X("ppoll-ts-sec-neg", ppoll(ONE(p[0], POLLIN), 1, TS(-1, 0), NULL), REV1);
    CASE_X("ppoll-closed-fd", ppoll(ONE(cfd, POLLIN), 1, TS(0, 0), NULL), REV1);
    CASE_X("ppoll-write-end", ppoll(ONE(p[1], POLLOUT), 1, TS(1, 0), NULL), REV1);
    CASE("__ppoll_chk-nfds-0", ppoll(one, runtime_n0, TS(0, 0), NULL));
    CASE_X("__ppoll_chk-pipe-data", ppoll(one, (ONE(p[0], POLLIN), runtime_n1), NULL, NULL), REV1);
    CASE_X("__ppoll_chk-both-ends", ppoll(two, (TWO(p[0], POLLIN, p[1], POLLOUT), runtime_n2), TS(0, 0), NULL), REV2);
    CASE_X("__ppoll_chk-ts-nsec-1e9", ppoll(one, (ONE(p[0], POLLIN), runtime_n1), TS(0, 1000000000L), NULL), REV1);
    CASE_X("__ppoll_chk-closed-fd", ppoll(one, (ONE(cfd, POLLIN), runtime_n1), TS(0, 0), NULL), REV1);
    chk_overflow_case("__ppoll_chk-overflow-child", 1);

    /* ---- select ---- */
    CASE("select-nfds-neg", select(-1, NULL, NULL, NULL, TV(0, 0)));
    CASE("select-tv-usec-neg", select(nf, set_of(&rs, p[0], -1), NULL, NULL, TV(0, -1)));
    CASE("select-tv-sec-neg", select(nf, set_of(&rs, p[0], -1), NULL, NULL, TV(-1, 0)));
    CASE_X("select-nfds-0-zero-tv", select(0, NULL, NULL, NULL, TV(0, 0)), "tv=%ld.%06ld",
           (long)tv.tv_sec, (long)tv.tv_usec);
    CASE_X("select-nfds-0-timeout-10ms", select(0, NULL, NULL, NULL, TV(0, 10000)),
           "tv=%ld.%06ld", (long)tv.tv_sec, (long)tv.tv_usec);
    CASE_X("select-pipe-data", select(nf, set_of(&rs, p[0], -1), NULL, NULL, TV(0, 0)), "rd=%d",
           FD_ISSET(p[0], &rs) != 0);
    CASE_X("select-pipe-data-null-tv", select(nf, set_of(&rs, p[0], -1), NULL, NULL, NULL),
           "rd=%d", FD_ISSET(p[0], &rs) != 0);
    CASE_X("select-pipe-data-usec-over-1e6",
           select(nf, set_of(&rs, p[0], -1), NULL, NULL, TV(0, 1500000)), "rd=%d",
           FD_ISSET(p[0], &rs) != 0);
    CASE_X("select-pipe-rd-wr-ex",
           select(nf, set_of(&rs, p[0], p[1]), set_of(&ws, p[0], p[1]), set_of(&es, p[0], p[1]),
                  TV(0, 0)),
           "rd=%d,%d wr=%d,%d ex=%d,%d", FD_ISSET(p[0], &rs) != 0, FD_ISSET(p[1], &rs) != 0,
           FD_ISSET(p[0], &ws) != 0, FD_ISSET(p[1], &ws) != 0, FD_ISSET(p[0], &es) != 0,
           FD_ISSET(p[1], &es) != 0);
    CASE("select-closed-fd", select(CLOSED_FD + 1, set_of(&rs, cfd, -1), NULL, NULL, TV(0, 0)));
    CASE("read-pipe-drain", read(p[0], buf, sizeof buf));
    CASE_X("select-pipe-empty-zero-tv", select(nf, set_of(&rs, p[0], -1), NULL, NULL, TV(0, 0)),
           "rd=%d tv=%ld.%06ld", FD_ISSET(p[0], &rs) != 0, (long)tv.tv_sec, (long)tv.tv_usec);
    CASE_X("select-pipe-empty-timeout-20ms",
           select(nf, set_of(&rs, p[0], -1), NULL, NULL, TV(0, 20000)), "rd=%d tv=%ld.%06ld",
           FD_ISSET(p[0], &rs) != 0, (long)tv.tv_sec, (long)tv.tv_usec);
    arm_alarm_ms(50);
    CASE_X("select-eintr", select(nf, set_of(&rs, p[0], -1), NULL, NULL, TV(5, 0)),
           "tv_updated=%d", tv.tv_sec != 5 || tv.tv_usec != 0);
    disarm_alarm();

    /* ---- pselect ---- */
    CASE("pselect-nfds-neg", pselect(-1, NULL, NULL, NULL, TS(0, 0), NULL));
    CASE("pselect-ts-nsec-1e9", pselect(nf, set_of(&rs, p[0], -1), NULL, NULL, TS(0, 1000000000L), NULL));
    CASE("pselect-ts-sec-neg", pselect(nf, set_of(&rs, p[0], -1), NULL, NULL, TS(-1, 0), NULL));
    CASE_X("pselect-pipe-empty-zero-ts", pselect(nf, set_of(&rs, p[0], -1), NULL, NULL, TS(0, 0), NULL),
           "rd=%d", FD_ISSET(p[0], &rs) != 0);
    CASE_X("pselect-write-end", pselect(nf, NULL, set_of(&ws, p[1], -1), NULL, NULL, NULL),
           "wr=%d", FD_ISSET(p[1], &ws) != 0);
    CASE("pselect-closed-fd", pselect(CLOSED_FD + 1, set_of(&rs, cfd, -1), NULL, NULL, TS(0, 0), NULL));
    CASE_X("pselect-sigmask-pending",
           pselect(nf, set_of(&rs, p[0], -1), NULL, NULL, TS(5, 0), usr1_pending(&wm)),
           "handled=%d", (int)usr1_hits);
    usr1_unblock();
    arm_alarm_ms(50);
    CASE("pselect-eintr", pselect(nf, set_of(&rs, p[0], -1), NULL, NULL, NULL, NULL));
    disarm_alarm();

    /* ---- ppoll and poll: signals ---- */
    CASE_X("ppoll-sigmask-pending", ppoll(ONE(p[0], POLLIN), 1, TS(5, 0), usr1_pending(&wm)),
           "handled=%d", (int)usr1_hits);
    usr1_unblock();
    arm_alarm_ms(50);
    CASE("poll-eintr", poll(ONE(p[0], POLLIN), 1, -1));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("__poll_chk-eintr", poll(one, (ONE(p[0], POLLIN), runtime_n1), 5000));
    disarm_alarm();
    arm_alarm_ms(50);
    CASE("ppoll-eintr", ppoll(ONE(p[0], POLLIN), 1, NULL, NULL));
    disarm_alarm();

    /* ---- epoll_ctl ---- */
    int ep = epoll_create1(EPOLL_CLOEXEC), ep2 = epoll_create1(0);
    char path[] = "/tmp/errno_probe.XXXXXX";
    int f = mkstemp(path);
    if (ep < 0 || ep2 < 0 || f < 0)
        exit(2);
    unlink(path);
    CASE("epoll_ctl-epfd-1", epoll_ctl(-1, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-epfd-closed", epoll_ctl(cfd, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-epfd-not-epoll", epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-fd-1", epoll_ctl(ep, EPOLL_CTL_ADD, -1, ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-fd-closed", epoll_ctl(ep, EPOLL_CTL_ADD, cfd, ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-add-self", epoll_ctl(ep, EPOLL_CTL_ADD, ep, ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-add-regular-file", epoll_ctl(ep, EPOLL_CTL_ADD, f, ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-mod-unregistered", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-del-unregistered", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    CASE("epoll_ctl-bad-op", epoll_ctl(ep, 99, p[0], ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_ctl-add-null-event", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], NULL));
    CASE("epoll_ctl-add-pipe", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN, 0x11)));
    CASE("epoll_ctl-add-again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN, 0x11)));
    CASE("epoll_ctl-mod", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], ev_of(&e, EPOLLIN | EPOLLRDHUP, 0x12)));
    CASE("epoll_ctl-mod-exclusive", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], ev_of(&e, EPOLLIN | EPOLLEXCLUSIVE, 0x12)));
    CASE("epoll_ctl-mod-null-event", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], NULL));
    CASE("epoll_ctl-del-null-event", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    CASE("epoll_ctl-del-again", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], ev_of(&e, 0, 0)));
    CASE("epoll_ctl-add-exclusive", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN | EPOLLEXCLUSIVE, 0x13)));
    CASE("epoll_ctl-add-epoll-in-epoll", epoll_ctl(ep2, EPOLL_CTL_ADD, ep, ev_of(&e, EPOLLIN, 0x14)));
    CASE("epoll_ctl-add-loop", epoll_ctl(ep, EPOLL_CTL_ADD, ep2, ev_of(&e, EPOLLIN, 0x15)));
    CASE("epoll_ctl-del-exclusive", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    CASE("epoll_ctl-del-nested", epoll_ctl(ep2, EPOLL_CTL_DEL, ep, NULL));
    int us = socket(AF_INET, SOCK_STREAM, 0); /* an unconnected TCP socket */
    CASE("epoll_ctl-add-unconnected-tcp", epoll_ctl(ep2, EPOLL_CTL_ADD, us, ev_of(&e, EPOLLIN | EPOLLOUT, 0x16)));
    CASE_X("epoll_wait-unconnected-tcp", epoll_wait(ep2, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    CASE("epoll_ctl-del-unconnected-tcp", epoll_ctl(ep2, EPOLL_CTL_DEL, us, NULL));
    close(us);

    /* ---- epoll_wait ---- */
    CASE("epoll_wait-epfd-1", epoll_wait(-1, evs, 8, 0));
    CASE("epoll_wait-epfd-closed", epoll_wait(cfd, evs, 8, 0));
    CASE("epoll_wait-not-epoll", epoll_wait(p[0], evs, 8, 0));
    CASE("epoll_wait-maxevents-0", epoll_wait(ep, evs, 0, 0));
    CASE("epoll_wait-maxevents-neg", epoll_wait(ep, evs, -(int)runtime_n1, 0));
    CASE("epoll_wait-empty-set", epoll_wait(ep, evs, 8, 0));
    CASE("epoll_wait-empty-set-timeout-20ms", epoll_wait(ep, evs, 8, 20));
    CASE("epoll_ctl-add-pipe-in", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN, 0x21)));
    CASE("epoll_wait-pipe-empty", epoll_wait(ep, evs, 8, 0));
    CASE("write-pipe-2", write(p[1], "yz", 2));
    CASE_X("epoll_wait-pipe-data", epoll_wait(ep, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    CASE_X("epoll_wait-pipe-data-no-timeout", epoll_wait(ep, evs, 8, -1), "ev=%s", ep_events(evs, 1));
    CASE("epoll_ctl-add-socketpair-out", epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], ev_of(&e, EPOLLIN | EPOLLOUT, 0x22)));
    CASE_X("epoll_wait-two-ready", epoll_wait(ep, evs, 8, 0), "ev=%s", ep_events(evs, 2));
    CASE("epoll_wait-two-ready-maxevents-1", epoll_wait(ep, evs, 1, 0));
    {
        int d = dup(p[0]); /* registered through d; the pipe stays open via p[0] */
        CASE("epoll_ctl-add-dup", epoll_ctl(ep2, EPOLL_CTL_ADD, d, ev_of(&e, EPOLLIN, 0x23)));
        close(d);
        CASE_X("epoll_wait-after-close-of-dup", epoll_wait(ep2, evs, 8, 0), "ev=%s", ep_events(evs, 1));
        CASE("epoll_ctl-del-closed-dup", epoll_ctl(ep2, EPOLL_CTL_DEL, d, NULL));
    }
    int ep3 = epoll_create1(0);
    CASE("epoll_ctl-add-oneshot", epoll_ctl(ep3, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN | EPOLLONESHOT, 0x31)));
    CASE_X("epoll_wait-oneshot-first", epoll_wait(ep3, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    CASE("epoll_wait-oneshot-second", epoll_wait(ep3, evs, 8, 0));
    CASE("epoll_ctl-mod-rearm", epoll_ctl(ep3, EPOLL_CTL_MOD, p[0], ev_of(&e, EPOLLIN | EPOLLET, 0x32)));
    CASE_X("epoll_wait-edge-first", epoll_wait(ep3, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    CASE("epoll_wait-edge-second", epoll_wait(ep3, evs, 8, 0));
    CASE("write-pipe-1-more", write(p[1], "w", 1));
    CASE_X("epoll_wait-edge-new-data", epoll_wait(ep3, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    close(ep3);
    CASE("read-pipe-drain-2", read(p[0], buf, sizeof buf));
    CASE("recv-socketpair-drain", recv(sv[0], buf, sizeof buf, 0));
    CASE_X("epoll_wait-socketpair-out", epoll_wait(ep, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    CASE("close-socketpair-peer", close(sv[1]));
    CASE_X("epoll_wait-socketpair-hup", epoll_wait(ep, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    CASE_X("poll-socketpair-hup", poll(ONE(sv[0], POLLIN | POLLRDHUP), 1, 0), REV1);
    CASE("epoll_ctl-del-socketpair", epoll_ctl(ep, EPOLL_CTL_DEL, sv[0], NULL));
    close(sv[0]);
    arm_alarm_ms(50);
    CASE("epoll_wait-eintr", epoll_wait(ep, evs, 8, -1));
    disarm_alarm();

    /* ---- epoll_pwait, epoll_pwait2 ---- */
    CASE("epoll_pwait-epfd-1", epoll_pwait(-1, evs, 8, 0, NULL));
    CASE("epoll_pwait-not-epoll", epoll_pwait(p[0], evs, 8, 0, NULL));
    CASE("epoll_pwait-maxevents-0", epoll_pwait(ep, evs, 0, 0, NULL));
    CASE("epoll_pwait-empty-timeout-20ms", epoll_pwait(ep, evs, 8, 20, NULL));
    CASE_X("epoll_pwait-sigmask-pending", epoll_pwait(ep, evs, 8, 5000, usr1_pending(&wm)),
           "handled=%d", (int)usr1_hits);
    usr1_unblock();
    CASE("epoll_pwait2-epfd-1", epoll_pwait2(-1, evs, 8, TS(0, 0), NULL));
    CASE("epoll_pwait2-not-epoll", epoll_pwait2(p[0], evs, 8, TS(0, 0), NULL));
    CASE("epoll_pwait2-maxevents-0", epoll_pwait2(ep, evs, 0, TS(0, 0), NULL));
    CASE("epoll_pwait2-ts-nsec-1e9", epoll_pwait2(ep, evs, 8, TS(0, 1000000000L), NULL));
    CASE("epoll_pwait2-ts-nsec-neg", epoll_pwait2(ep, evs, 8, TS(0, -1), NULL));
    CASE("epoll_pwait2-ts-sec-neg", epoll_pwait2(ep, evs, 8, TS(-1, 0), NULL));
    CASE("epoll_pwait2-empty-zero-ts", epoll_pwait2(ep, evs, 8, TS(0, 0), NULL));
    CASE("epoll_pwait2-empty-ts-20ms", epoll_pwait2(ep, evs, 8, TS(0, 20000000), NULL));
    CASE("write-pipe-3", write(p[1], "abc", 3));
    CASE_X("epoll_pwait-data", epoll_pwait(ep, evs, 8, -1, NULL), "ev=%s", ep_events(evs, 1));
    CASE_X("epoll_pwait2-data-null-ts", epoll_pwait2(ep, evs, 8, NULL, NULL), "ev=%s", ep_events(evs, 1));
    CASE("read-pipe-drain-3", read(p[0], buf, sizeof buf));
    CASE_X("epoll_pwait2-sigmask-pending", epoll_pwait2(ep, evs, 8, TS(5, 0), usr1_pending(&wm)),
           "handled=%d", (int)usr1_hits);
    usr1_unblock();
    arm_alarm_ms(50);
    CASE("epoll_pwait2-eintr", epoll_pwait2(ep, evs, 8, NULL, NULL));
    disarm_alarm();
    close(ep);
    close(ep2);
    close(f);
    close(p[0]);
    close(p[1]);
#undef ONE
#undef TWO
#undef TS
#undef TV
#undef REV1
#undef REV2
}

/* Pointers the kernel rejects with EFAULT, given to every wait: the shim
 * must not read them before the kernel does. (Not a timeout pointer of
 * ppoll, select or pselect: glibc itself reads those, and crashes.) */
static void probe_waits_efault(void)
{
    int p[2];
    struct epoll_event e;
    fd_set rs;
    if (pipe(p) != 0)
        exit(2);
    if (write(p[1], "x", 1) != 1)
        exit(2);
    int nf = (p[0] > p[1] ? p[0] : p[1]) + 1;
    int ep = epoll_create1(0);
    CASE("poll-efault-fds", poll((struct pollfd *)BADP, 1, 0));
    CASE("__poll_chk-efault-fds", __poll_chk((struct pollfd *)BADP, 1, 0, sizeof(struct pollfd)));
    CASE("ppoll-efault-fds", ppoll((struct pollfd *)BADP, 1, NULL, NULL));
    CASE("__ppoll_chk-efault-fds", __ppoll_chk((struct pollfd *)BADP, 1, NULL, NULL, sizeof(struct pollfd)));
    CASE("ppoll-efault-sigmask", ppoll(&(struct pollfd){.fd = p[0], .events = POLLIN}, 1,
                                       &(struct timespec){0, 0}, (sigset_t *)BADP));
    CASE("select-efault-readfds", select(nf, (fd_set *)BADP, NULL, NULL, &(struct timeval){0, 0}));
    CASE("pselect-efault-writefds", pselect(nf, NULL, (fd_set *)BADP, NULL, &(struct timespec){0, 0}, NULL));
    CASE("pselect-efault-sigmask", pselect(nf, set_of(&rs, p[0], -1), NULL, NULL,
                                           &(struct timespec){0, 0}, (sigset_t *)BADP));
    CASE("epoll_ctl-efault-event", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], (struct epoll_event *)BADP));
    CASE("epoll_ctl-add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], ev_of(&e, EPOLLIN, 1)));
    CASE("epoll_wait-efault-events", epoll_wait(ep, (struct epoll_event *)BADP, 1, 0));
    CASE("epoll_pwait-efault-events", epoll_pwait(ep, (struct epoll_event *)BADP, 1, 0, NULL));
    CASE("epoll_pwait2-efault-events", epoll_pwait2(ep, (struct epoll_event *)BADP, 1, NULL, NULL));
    CASE("epoll_pwait2-efault-ts", epoll_pwait2(ep, &e, 1, (struct timespec *)BADP, NULL));
    CASE("epoll_pwait-efault-sigmask", epoll_pwait(ep, &e, 1, 0, (sigset_t *)BADP));
    CASE("epoll_pwait2-efault-sigmask", epoll_pwait2(ep, &e, 1, &(struct timespec){0, 0}, (sigset_t *)BADP));
    close(ep);
    close(p[0]);
    close(p[1]);
}

/* A non-blocking connect to a port that refuses, whose failure the shim
 * (when preloaded) hides and retries: while it is pending every wait takes
 * the shim's slow path. The socket is never looked at again; nothing about
 * it is printed (without the shim it has simply failed). */
static void start_background_retry(void)
{
    struct sockaddr_in ra = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof ra;
    int rl = socket(AF_INET, SOCK_STREAM, 0); /* bound, never listening: refuses */
    bind(rl, (struct sockaddr *)&ra, sizeof ra);
    getsockname(rl, (struct sockaddr *)&ra, &sl);
    int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(nb, (struct sockaddr *)&ra, sizeof ra);
    struct pollfd pf = {.fd = nb, .events = POLLOUT};
    poll(&pf, 1, 200); /* without the shim: the failure at once; with it: 200 ms, nothing */
    /* nb and rl stay open until exit */
}

/* Each EFAULT wait in a child of its own that starts a background retry
 * first (a fork child has none of its parent's): a crash names its case. */
static void probe_waits_efault_retrying(void)
{
    static const char *names[] = {
        "poll-efault-fds", "__poll_chk-efault-fds", "ppoll-efault-fds", "__ppoll_chk-efault-fds",
        "ppoll-efault-sigmask", "select-efault-readfds", "pselect-efault-writefds",
        "pselect-efault-sigmask", "epoll_ctl-efault-event", "epoll_wait-efault-events",
        "epoll_pwait-efault-events", "epoll_pwait-efault-sigmask", "epoll_pwait2-efault-events",
        "epoll_pwait2-efault-ts", "epoll_pwait2-efault-sigmask"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        int out[2];
        if (pipe(out) != 0)
            exit(2);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            close(out[0]);
            int p[2];
            struct epoll_event e = {.events = EPOLLIN, .data.u64 = 1};
            fd_set rs;
            if (pipe(p) != 0)
                _exit(2);
            if (write(p[1], "x", 1) != 1)
                _exit(2);
            int nf = (p[0] > p[1] ? p[0] : p[1]) + 1;
            int ep = epoll_create1(0);
            epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
            start_background_retry();
            errno = SENTINEL;
            long r = -2;
            const char *n = names[i];
            if (!strcmp(n, "poll-efault-fds"))
                r = poll((struct pollfd *)BADP, 1, 0);
            else if (!strcmp(n, "__poll_chk-efault-fds"))
                r = __poll_chk((struct pollfd *)BADP, 1, 0, sizeof(struct pollfd));
            else if (!strcmp(n, "ppoll-efault-fds"))
                r = ppoll((struct pollfd *)BADP, 1, NULL, NULL);
            else if (!strcmp(n, "__ppoll_chk-efault-fds"))
                r = __ppoll_chk((struct pollfd *)BADP, 1, NULL, NULL, sizeof(struct pollfd));
            else if (!strcmp(n, "pselect-efault-sigmask"))
                r = pselect(nf, set_of(&rs, p[0], -1), NULL, NULL, &(struct timespec){0, 0},
                            (sigset_t *)BADP);
            else if (!strcmp(n, "epoll_pwait-efault-sigmask"))
                r = epoll_pwait(ep, &e, 1, 0, (sigset_t *)BADP);
            else if (!strcmp(n, "epoll_pwait2-efault-sigmask"))
                r = epoll_pwait2(ep, &e, 1, &(struct timespec){0, 0}, (sigset_t *)BADP);
            else if (!strcmp(n, "ppoll-efault-sigmask"))
                r = ppoll(&(struct pollfd){.fd = p[0], .events = POLLIN}, 1,
                          &(struct timespec){0, 0}, (sigset_t *)BADP);
            else if (!strcmp(n, "select-efault-readfds"))
                r = select(nf, (fd_set *)BADP, NULL, NULL, &(struct timeval){0, 0});
            else if (!strcmp(n, "pselect-efault-writefds"))
                r = pselect(nf, NULL, (fd_set *)BADP, NULL, &(struct timespec){0, 0}, NULL);
            else if (!strcmp(n, "epoll_ctl-efault-event"))
                r = epoll_ctl(ep, EPOLL_CTL_MOD, p[0], (struct epoll_event *)BADP);
            else if (!strcmp(n, "epoll_wait-efault-events"))
                r = epoll_wait(ep, (struct epoll_event *)BADP, 1, 0);
            else if (!strcmp(n, "epoll_pwait-efault-events"))
                r = epoll_pwait(ep, (struct epoll_event *)BADP, 1, 0, NULL);
            else if (!strcmp(n, "epoll_pwait2-efault-events"))
                r = epoll_pwait2(ep, (struct epoll_event *)BADP, 1, NULL, NULL);
            else if (!strcmp(n, "epoll_pwait2-efault-ts"))
                r = epoll_pwait2(ep, &e, 1, (struct timespec *)BADP, NULL);
            int err = errno;
            char msg[128];
            int len = snprintf(msg, sizeof msg, "%ld %s", r, errname(err));
            if (write(out[1], msg, (size_t)len) != len)
                _exit(2);
            _exit(0);
        }
        close(out[1]);
        char got[128] = "";
        ssize_t k = read(out[0], got, sizeof got - 1);
        got[k > 0 ? k : 0] = 0;
        close(out[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && k > 0) {
            printf("%s %s\n", names[i], got);
            ncases++;
        } else {
            line(names[i], "died", SENTINEL, child_end(st));
        }
    }
}

/* ---- non-blocking connects that fail for good --------------------------- */

/* A port on 127.0.0.1 that refuses (bound, never listening), a fresh one per
 * sequence so that each is its own destination (budget, breaker). */
static int refusing_port(struct sockaddr_in *ra)
{
    *ra = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof *ra;
    int rl = socket(AF_INET, SOCK_STREAM, 0);
    if (rl < 0 || bind(rl, (struct sockaddr *)ra, sizeof *ra) != 0 ||
        getsockname(rl, (struct sockaddr *)ra, &sl) != 0)
        exit(2);
    return rl;
}

/* Each wait, on a non-blocking connect to a port that refuses, followed by
 * what the app does next. Run with retries on (RESHIM_RETRIES=2 and a short
 * backoff): when they run out, the app must see what it sees without the
 * shim, only later: the same events, SO_ERROR once, the same repeated
 * connect, the same I/O errors, the same epoll registration afterwards. */
static void probe_nbfail(void)
{
    char buf[16];
    struct sockaddr_in ra;
    struct sockaddr *a = (struct sockaddr *)&ra;
    socklen_t sl;
    int v, rl, s, ep;
    struct pollfd pf[1];
    struct timespec ts5 = {5, 0};
    struct epoll_event e, evs[8];
    fd_set rs, ws, es;
    signal(SIGPIPE, SIG_IGN);
#define NBSOCK() socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)
#define SOERR(name) \
    CASE_X(name, (sl = sizeof v, v = -1, getsockopt(s, SOL_SOCKET, SO_ERROR, &v, &sl)), "val=%s", errname(v))
#define PF(ev_) (pf[0] = (struct pollfd){.fd = s, .events = (ev_)}, pf)
#define REV "revents=%#x", (unsigned)(unsigned short)pf[0].revents

    /* poll; SO_ERROR twice; connect again; recv */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-poll-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-poll-wait", poll(PF(POLLOUT), 1, 5000), REV);
    SOERR("nbfail-poll-so_error");
    SOERR("nbfail-poll-so_error-again");
    CASE("nbfail-poll-connect-again", connect(s, a, sizeof ra));
    CASE("nbfail-poll-recv", recv(s, buf, 1, MSG_DONTWAIT));
    close(s);
    close(rl);

    /* ppoll; connect again (reaps the error); recv; connect once more */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-ppoll-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-ppoll-wait", ppoll(PF(POLLIN | POLLOUT), 1, &ts5, NULL), REV);
    CASE("nbfail-ppoll-connect-again", connect(s, a, sizeof ra));
    CASE("nbfail-ppoll-recv", recv(s, buf, 1, MSG_DONTWAIT));
    SOERR("nbfail-ppoll-so_error");
    close(s);
    close(rl);

    /* ppoll; connect again; a new connect on the same socket */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-reuse-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-reuse-wait", ppoll(PF(POLLOUT), 1, &ts5, NULL), REV);
    CASE("nbfail-reuse-connect-again", connect(s, a, sizeof ra));
    close(rl);
    {
        struct sockaddr_in la;
        int l = tcp_listener(4, &la);
        CASE("nbfail-reuse-connect-elsewhere", connect(s, (struct sockaddr *)&la, sizeof la));
        CASE_X("nbfail-reuse-elsewhere-wait", poll(PF(POLLOUT), 1, 5000), REV);
        SOERR("nbfail-reuse-elsewhere-so_error");
        close(l);
    }
    close(s);

    /* __poll_chk; send (the first I/O takes the error); send again */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-poll_chk-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-poll_chk-wait", poll(pf, (PF(POLLOUT), runtime_n1), 5000), REV);
    CASE("nbfail-poll_chk-send", send(s, "x", 1, MSG_NOSIGNAL));
    CASE("nbfail-poll_chk-send-again", send(s, "x", 1, MSG_NOSIGNAL));
    SOERR("nbfail-poll_chk-so_error");
    close(s);
    close(rl);

    /* __ppoll_chk; recv; read */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-ppoll_chk-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-ppoll_chk-wait", ppoll(pf, (PF(POLLIN), runtime_n1), &ts5, NULL), REV);
    CASE("nbfail-ppoll_chk-recv", recv(s, buf, 1, 0));
    CASE("nbfail-ppoll_chk-read", read(s, buf, 1));
    close(s);
    close(rl);

    /* select on write and except sets; SO_ERROR */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-select-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-select-wait", select(s + 1, NULL, set_of(&ws, s, -1), set_of(&es, s, -1), &(struct timeval){5, 0}),
           "wr=%d ex=%d", FD_ISSET(s, &ws) != 0, FD_ISSET(s, &es) != 0);
    SOERR("nbfail-select-so_error");
    close(s);
    close(rl);

    /* select on the read set; read */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-select-rd-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-select-rd-wait", select(s + 1, set_of(&rs, s, -1), NULL, NULL, &(struct timeval){5, 0}),
           "rd=%d", FD_ISSET(s, &rs) != 0);
    CASE("nbfail-select-rd-read", read(s, buf, 1));
    close(s);
    close(rl);

    /* pselect; writev-free: write */
    rl = refusing_port(&ra);
    s = NBSOCK();
    CASE("nbfail-pselect-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-pselect-wait", pselect(s + 1, NULL, set_of(&ws, s, -1), NULL, &ts5, NULL),
           "wr=%d", FD_ISSET(s, &ws) != 0);
    CASE("nbfail-pselect-write", write(s, "x", 1));
    close(s);
    close(rl);

    /* epoll_wait, registered after the connect; SO_ERROR; DEL; DEL again */
    rl = refusing_port(&ra);
    s = NBSOCK();
    ep = epoll_create1(0);
    CASE("nbfail-epoll_wait-connect", connect(s, a, sizeof ra));
    CASE("nbfail-epoll_wait-add", epoll_ctl(ep, EPOLL_CTL_ADD, s, ev_of(&e, EPOLLOUT, 0xa1)));
    CASE_X("nbfail-epoll_wait-wait", epoll_wait(ep, evs, 8, 5000), "ev=%s", ep_events(evs, 1));
    SOERR("nbfail-epoll_wait-so_error");
    CASE("nbfail-epoll_wait-add-again", epoll_ctl(ep, EPOLL_CTL_ADD, s, ev_of(&e, EPOLLOUT, 0xa1)));
    CASE("nbfail-epoll_wait-del", epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
    CASE("nbfail-epoll_wait-del-again", epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL));
    close(s);
    close(ep);
    close(rl);

    /* epoll_wait, registered before the connect; MOD afterwards */
    rl = refusing_port(&ra);
    s = NBSOCK();
    ep = epoll_create1(0);
    CASE("nbfail-epoll_early-add", epoll_ctl(ep, EPOLL_CTL_ADD, s, ev_of(&e, EPOLLIN | EPOLLOUT, 0xa2)));
    CASE("nbfail-epoll_early-connect", connect(s, a, sizeof ra));
    CASE_X("nbfail-epoll_early-wait", epoll_wait(ep, evs, 8, 5000), "ev=%s", ep_events(evs, 1));
    CASE("nbfail-epoll_early-mod", epoll_ctl(ep, EPOLL_CTL_MOD, s, ev_of(&e, EPOLLIN, 0xa3)));
    CASE_X("nbfail-epoll_early-wait-after-mod", epoll_wait(ep, evs, 8, 0), "ev=%s", ep_events(evs, 1));
    SOERR("nbfail-epoll_early-so_error");
    close(s);
    close(ep);
    close(rl);

    /* epoll_pwait, EPOLLIN only */
    rl = refusing_port(&ra);
    s = NBSOCK();
    ep = epoll_create1(0);
    CASE("nbfail-epoll_pwait-connect", connect(s, a, sizeof ra));
    CASE("nbfail-epoll_pwait-add", epoll_ctl(ep, EPOLL_CTL_ADD, s, ev_of(&e, EPOLLIN, 0xa4)));
    CASE_X("nbfail-epoll_pwait-wait", epoll_pwait(ep, evs, 8, 5000, NULL), "ev=%s", ep_events(evs, 1));
    CASE("nbfail-epoll_pwait-recv", recv(s, buf, 1, 0));
    close(s);
    close(ep);
    close(rl);

    /* epoll_pwait2, edge-triggered one-shot; re-armed with MOD */
    rl = refusing_port(&ra);
    s = NBSOCK();
    ep = epoll_create1(0);
    CASE("nbfail-epoll_pwait2-connect", connect(s, a, sizeof ra));
    CASE("nbfail-epoll_pwait2-add", epoll_ctl(ep, EPOLL_CTL_ADD, s, ev_of(&e, EPOLLOUT | EPOLLET | EPOLLONESHOT, 0xa5)));
    CASE_X("nbfail-epoll_pwait2-wait", epoll_pwait2(ep, evs, 8, &ts5, NULL), "ev=%s", ep_events(evs, 1));
    CASE("nbfail-epoll_pwait2-wait-again", epoll_pwait2(ep, evs, 8, &(struct timespec){0, 0}, NULL));
    CASE("nbfail-epoll_pwait2-mod", epoll_ctl(ep, EPOLL_CTL_MOD, s, ev_of(&e, EPOLLOUT | EPOLLONESHOT, 0xa6)));
    CASE_X("nbfail-epoll_pwait2-wait-rearmed", epoll_pwait2(ep, evs, 8, &(struct timespec){0, 0}, NULL), "ev=%s", ep_events(evs, 1));
    SOERR("nbfail-epoll_pwait2-so_error");
    SOERR("nbfail-epoll_pwait2-so_error-again");
    close(s);
    close(ep);
    close(rl);
#undef NBSOCK
#undef SOERR
#undef PF
#undef REV
}

/* Refused non-blocking connects (once in probe_all, when reshim did not
 * retry those): run with RESHIM_RETRIES=0 like the blocking ones. */
static void probe_nonblock_refused(void)
{
    char buf[64];
    socklen_t sl;
    int v, nb;
    {
        /* a refused non-blocking connect (RESHIM_RETRIES=0: not retried) */
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
    }
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
    probe_nonblock_refused();
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
    probe_waits_efault();
}

/* ---- the malloc family and mappings: malloc, free, calloc, realloc,
 * reallocarray, posix_memalign, memalign, aligned_alloc, valloc, pvalloc,
 * malloc_usable_size, mmap, mmap64, munmap, mremap ----------------------------
 * Failing and edge inputs (sizes that overflow or exceed PTRDIFF_MAX, bad
 * alignments, bad mapping arguments, unmapped ranges), and calls that succeed,
 * with what the app can check of them (contents kept, zeroed, aligned). A
 * pointer prints as "ptr", "NULL" or "MAP_FAILED", never its value. */

static void *volatile sink; /* every result escapes: no call can be optimised away */
static volatile size_t rt_size;
/* A size or alignment the compiler cannot see (it would warn about, or fold,
 * malloc(SIZE_MAX) and the like). */
static size_t rt(size_t v)
{
    rt_size = v;
    return rt_size;
}
#define RT(v) rt((size_t)(v))
#define PD1 ((size_t)PTRDIFF_MAX + 1)
#define OKP(p) ((p) != NULL && (p) != MAP_FAILED)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

static const char *ptr_ret(const void *p)
{
    return p == NULL ? "NULL" : p == MAP_FAILED ? "MAP_FAILED" : "ptr";
}

/* CASE_P(name, var, expr): a pointer result, kept in var for what follows. */
#define CASE_P(name, var, expr)                 \
    do {                                        \
        errno = SENTINEL;                       \
        var = (expr);                           \
        int e_ = errno;                         \
        sink = (void *)var;                     \
        line((name), ptr_ret(var), e_, NULL);   \
    } while (0)

/* CASE_PX(name, var, expr, fmt, ...): plus an extra field, formatted after the call. */
#define CASE_PX(name, var, expr, ...)           \
    do {                                        \
        errno = SENTINEL;                       \
        var = (expr);                           \
        int e_ = errno;                         \
        sink = (void *)var;                     \
        char x_[128];                           \
        snprintf(x_, sizeof x_, __VA_ARGS__);   \
        line((name), ptr_ret(var), e_, x_);     \
    } while (0)

static int all_bytes(const void *p, size_t n, int c)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c)
            return 0;
    return 1;
}

/* Fills n bytes with c, reads them back: 1 when the memory is writable. */
static int fill_check(void *p, size_t n, int c)
{
    memset(p, c, n);
    return all_bytes(p, n, c);
}

/* What an allocated block shows: aligned to align, at least n usable bytes. */
static const char *blk(const void *p, size_t align, size_t n)
{
    static char b[64];
    if (!OKP(p))
        return "";
    snprintf(b, sizeof b, "aligned=%d usable>=n=%d", align ? (uintptr_t)p % align == 0 : 1,
             malloc_usable_size((void *)p) >= n);
    return b;
}

/* An aligned allocation (memalign, aligned_alloc, valloc, pvalloc) checked
 * for the alignment it must have and n usable bytes, then freed. */
#define CASE_AL(name, expr, align, n)                       \
    do {                                                    \
        void *a_;                                           \
        CASE_PX((name), a_, (expr), "%s", blk(a_, (align), (n))); \
        free(a_);                                           \
    } while (0)

static char pm_mark; /* what *memptr holds before posix_memalign */

static void pm_case(const char *name, size_t align, size_t n)
{
    void *m = &pm_mark;
    errno = SENTINEL;
    int r = posix_memalign(&m, RT(align), RT(n));
    int e = errno;
    sink = m;
    char x[128];
    snprintf(x, sizeof x, "err=%s memptr=%s%s%s", errname(r),
             m == &pm_mark ? "untouched" : ptr_ret(m), OKP(m) && m != &pm_mark ? " " : "",
             OKP(m) && m != &pm_mark ? blk(m, align, n) : "");
    report(name, r, e, x);
    if (r == 0 && m != &pm_mark)
        free(m);
}

static void probe_malloc(void)
{
    void *p, *q;
    void *volatile b; /* the block realloc keeps on failure: read afresh after each call */
    long ps = sysconf(_SC_PAGESIZE);
    size_t pg = ps > 0 ? (size_t)ps : 4096;

    /* malloc, free, malloc_usable_size */
    CASE_P("malloc-size_max", p, malloc(RT(SIZE_MAX)));
    CASE_P("malloc-ptrdiff_max+1", p, malloc(RT(PD1)));
    CASE_P("malloc-ptrdiff_max", p, malloc(RT(PTRDIFF_MAX)));
    CASE_P("malloc-size_max-page", p, malloc(RT(SIZE_MAX - pg)));
    CASE_PX("malloc-0", p, malloc(RT(0)), "%s", blk(p, 16, 0));
    CASE("free-malloc-0", (free(p), 0));
    CASE_PX("malloc-100", p, malloc(RT(100)), "%s written=%d", blk(p, 16, 100),
            p && fill_check(p, 100, 0x5a));
    CASE("malloc_usable_size-null", malloc_usable_size(NULL));
    CASE_X("malloc_usable_size-100", malloc_usable_size(p) >= 100, "kept=%d", all_bytes(p, 100, 0x5a));
    CASE("free-block", (free(p), 0)); /* glibc keeps errno */
    CASE("free-null", (free(NULL), 0));
    CASE_PX("malloc-1mib", p, malloc(RT(1 << 20)), "%s written=%d", blk(p, 16, 1 << 20),
            p && fill_check(p, 1 << 20, 0x6b));
    CASE("free-1mib", (free(p), 0));

    /* calloc: overflow of nmemb * size, huge sizes, zeroed memory */
    CASE_P("calloc-overflow", p, calloc(RT(SIZE_MAX / 2 + 1), RT(4)));
    CASE_P("calloc-overflow-size_max", p, calloc(RT(SIZE_MAX), RT(SIZE_MAX)));
    CASE_P("calloc-overflow-2", p, calloc(RT(2), RT(SIZE_MAX / 2 + 1)));
    CASE_P("calloc-size_max", p, calloc(RT(1), RT(SIZE_MAX)));
    CASE_P("calloc-ptrdiff_max+1", p, calloc(RT(PD1), RT(1)));
    CASE_PX("calloc-0-0", p, calloc(RT(0), RT(0)), "%s", blk(p, 16, 0));
    free(p);
    CASE_PX("calloc-0-size_max", p, calloc(RT(0), RT(SIZE_MAX)), "%s", blk(p, 16, 0));
    free(p);
    q = malloc(RT(200)); /* a dirty block calloc will likely get back */
    if (q)
        memset(q, 0xa5, 200);
    sink = q;
    free(q);
    CASE_PX("calloc-25x8-zeroed", p, calloc(RT(25), RT(8)), "%s zeroed=%d", blk(p, 16, 200),
            p && all_bytes(p, 200, 0));
    free(p);
    CASE_PX("calloc-1mib-zeroed", p, calloc(RT(1024), RT(1024)), "%s zeroed=%d",
            blk(p, 16, 1 << 20), p && all_bytes(p, 1 << 20, 0));
    free(p);

    /* realloc: NULL, huge (the block stays as it was), grow, shrink, 0 */
    CASE_PX("realloc-null", b, realloc(NULL, RT(64)), "%s written=%d", blk(b, 16, 64),
            b && fill_check(b, 64, 0x11));
    if (!b)
        exit(2);
    CASE_PX("realloc-size_max", q, realloc(b, RT(SIZE_MAX)), "kept=%d", all_bytes(b, 64, 0x11));
    CASE_PX("realloc-ptrdiff_max+1", q, realloc(b, RT(PD1)), "kept=%d", all_bytes(b, 64, 0x11));
    CASE_PX("realloc-ptrdiff_max", q, realloc(b, RT(PTRDIFF_MAX)), "kept=%d",
            all_bytes(b, 64, 0x11));
    CASE_PX("realloc-grow-4k", q, realloc(b, RT(4096)), "%s kept=%d", blk(q, 16, 4096),
            q && all_bytes(q, 64, 0x11));
    if (q)
        b = q;
    CASE_PX("realloc-grow-1mib", q, realloc(b, RT(1 << 20)), "%s kept=%d", blk(q, 16, 1 << 20),
            q && all_bytes(q, 64, 0x11));
    if (q)
        b = q;
    CASE_PX("realloc-shrink-16", q, realloc(b, RT(16)), "%s kept=%d", blk(q, 16, 16),
            q && all_bytes(q, 16, 0x11));
    if (q)
        b = q;
    CASE_P("realloc-0", q, realloc(b, RT(0))); /* glibc frees b and returns NULL */
    free(q);

    /* reallocarray: nmemb * size overflows (the block stays as it was) */
    b = malloc(RT(32));
    if (!b)
        exit(2);
    memset(b, 0x22, 32);
    CASE_PX("reallocarray-overflow", q, reallocarray(b, RT(SIZE_MAX / 2 + 1), RT(2)), "kept=%d",
            all_bytes(b, 32, 0x22));
    CASE_PX("reallocarray-overflow-size_max", q, reallocarray(b, RT(SIZE_MAX), RT(SIZE_MAX)),
            "kept=%d", all_bytes(b, 32, 0x22));
    CASE_PX("reallocarray-ptrdiff_max+1", q, reallocarray(b, RT(PD1 / 2), RT(2)), "kept=%d",
            all_bytes(b, 32, 0x22));
    CASE_PX("reallocarray-grow", q, reallocarray(b, RT(16), RT(8)), "%s kept=%d",
            blk(q, 16, 128), q && all_bytes(q, 32, 0x22));
    if (q)
        b = q;
    free(b);
    CASE_PX("reallocarray-null", p, reallocarray(NULL, RT(4), RT(8)), "%s", blk(p, 16, 32));
    free(p);
    CASE_P("reallocarray-null-overflow", p, reallocarray(NULL, RT(SIZE_MAX), RT(2)));

    /* posix_memalign: EINVAL for an alignment that is not a power of two
     * multiple of sizeof(void *) (errno kept), ENOMEM for huge sizes */
    pm_case("posix_memalign-align-3", 3, 16);
    pm_case("posix_memalign-align-0", 0, 16);
    pm_case("posix_memalign-align-half-ptr", sizeof(void *) / 2, 16);
    pm_case("posix_memalign-align-24", 24, 16);
    pm_case("posix_memalign-align-size_max", SIZE_MAX, 16);
    pm_case("posix_memalign-size_max", 64, SIZE_MAX);
    pm_case("posix_memalign-ptrdiff_max+1", 16, PD1);
    pm_case("posix_memalign-align-2^62", (size_t)1 << 62, 1);
    pm_case("posix_memalign-ptr", sizeof(void *), 8);
    pm_case("posix_memalign-64", 64, 100);
    pm_case("posix_memalign-4096", 4096, 5000);
    pm_case("posix_memalign-64-size-0", 64, 0);

    /* memalign: a non-power-of-two alignment is rounded up (glibc) */
    CASE_AL("memalign-24", memalign(RT(24), RT(100)), 32, 100);
    CASE_AL("memalign-0", memalign(RT(0), RT(10)), 16, 10);
    CASE_AL("memalign-3", memalign(RT(3), RT(10)), 16, 10);
    CASE_AL("memalign-4096", memalign(RT(4096), RT(100)), 4096, 100);
    CASE_AL("memalign-size_max", memalign(RT(64), RT(SIZE_MAX)), 64, 0);
    CASE_AL("memalign-ptrdiff_max+1", memalign(RT(64), RT(PD1)), 64, 0);
    CASE_AL("memalign-align-huge", memalign(RT(SIZE_MAX / 2 + 2), RT(16)), 0, 0);
    CASE_AL("memalign-align-2^62", memalign(RT((size_t)1 << 62), RT(1)), 0, 0);

    /* aligned_alloc: whatever glibc does with a bad alignment */
    CASE_AL("aligned_alloc-3", aligned_alloc(RT(3), RT(16)), 4, 16);
    CASE_AL("aligned_alloc-0", aligned_alloc(RT(0), RT(16)), 16, 16);
    CASE_AL("aligned_alloc-24", aligned_alloc(RT(24), RT(48)), 32, 48);
    CASE_AL("aligned_alloc-64", aligned_alloc(RT(64), RT(128)), 64, 128);
    CASE_AL("aligned_alloc-64-size-100", aligned_alloc(RT(64), RT(100)), 64, 100);
    CASE_AL("aligned_alloc-size_max", aligned_alloc(RT(64), RT(SIZE_MAX)), 64, 0);
    CASE_AL("aligned_alloc-ptrdiff_max+1", aligned_alloc(RT(16), RT(PD1)), 16, 0);
    CASE_AL("aligned_alloc-align-huge", aligned_alloc(RT(SIZE_MAX / 2 + 2), RT(16)), 0, 0);

    /* valloc, pvalloc: page aligned; pvalloc rounds the size up to pages */
    CASE_AL("valloc-1", valloc(RT(1)), pg, 1);
    CASE_AL("valloc-0", valloc(RT(0)), pg, 0);
    CASE_AL("valloc-3-pages", valloc(RT(3 * pg)), pg, 3 * pg);
    CASE_AL("valloc-size_max", valloc(RT(SIZE_MAX)), 0, 0);
    CASE_AL("valloc-ptrdiff_max+1", valloc(RT(PD1)), 0, 0);
    CASE_AL("pvalloc-0", pvalloc(RT(0)), pg, pg);
    CASE_AL("pvalloc-1", pvalloc(RT(1)), pg, pg);
    CASE_AL("pvalloc-page+1", pvalloc(RT(pg + 1)), pg, 2 * pg);
    CASE_AL("pvalloc-size_max", pvalloc(RT(SIZE_MAX)), 0, 0);
    CASE_AL("pvalloc-round-overflow", pvalloc(RT(SIZE_MAX - pg + 2)), 0, 0);
    CASE_AL("pvalloc-ptrdiff_max+1", pvalloc(RT(PD1)), 0, 0);
}

/* mmap or mmap64 (which), the same cases for both. */
static void *map_call(int which, void *a, size_t len, int prot, int flags, int fd, off_t off)
{
    return which ? mmap64(a, len, prot, flags, fd, (off64_t)off) : mmap(a, len, prot, flags, fd, off);
}

static void probe_mmap_calls(int which, size_t pg)
{
    const char *fn = which ? "mmap64" : "mmap";
    char name[64];
    void *m, *q;
    int pv[2];
#define NM(what) (snprintf(name, sizeof name, "%s-%s", fn, what), name)
    /* bad arguments */
    CASE_P(NM("file-fd-1"), m, map_call(which, NULL, pg, PROT_READ, MAP_PRIVATE, -1, 0));
    CASE_P(NM("closed-fd"), m, map_call(which, NULL, pg, PROT_READ, MAP_PRIVATE, closed_fd(), 0));
    CASE_P(NM("len-0"), m, map_call(which, NULL, RT(0), RW, ANON, -1, 0));
    CASE_P(NM("no-private-shared"), m, map_call(which, NULL, pg, RW, MAP_ANONYMOUS, -1, 0));
    CASE_P(NM("offset-unaligned"), m, map_call(which, NULL, pg, RW, ANON, -1, 1));
    CASE_P(NM("len-size_max"), m, map_call(which, NULL, RT(SIZE_MAX), RW, ANON, -1, 0));
    CASE_P(NM("len-ptrdiff_max+1"), m, map_call(which, NULL, RT(PD1), RW, ANON, -1, 0));
    CASE_P(NM("shared-validate-unknown-flag"), m,
           map_call(which, NULL, pg, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x200000, -1, 0));
    if (pipe(pv) != 0)
        exit(2);
    CASE_P(NM("pipe"), m, map_call(which, NULL, pg, PROT_READ, MAP_PRIVATE, pv[0], 0));
    close(pv[0]);
    close(pv[1]);
    char path[] = "/tmp/errno_probe.XXXXXX";
    int f = mkstemp(path);
    if (f < 0 || write(f, "hello", 5) != 5)
        exit(2);
    int wo = open(path, O_WRONLY), ro = open(path, O_RDONLY);
    unlink(path);
    if (wo < 0 || ro < 0)
        exit(2);
    CASE_P(NM("file-wronly"), m, map_call(which, NULL, pg, PROT_READ, MAP_SHARED, wo, 0));
    CASE_P(NM("file-rdonly-shared-write"), m, map_call(which, NULL, pg, RW, MAP_SHARED, ro, 0));
    CASE_PX(NM("file-private"), m, map_call(which, NULL, pg, RW, MAP_PRIVATE, ro, 0),
            "data=%d", OKP(m) && memcmp(m, "hello", 5) == 0 && all_bytes((char *)m + 5, pg - 5, 0));
    if (OKP(m))
        CASE(NM("file-private-munmap"), munmap(m, pg));
    CASE_PX(NM("file-shared"), m, map_call(which, NULL, pg, PROT_READ, MAP_SHARED, ro, 0),
            "data=%d", OKP(m) && memcmp(m, "hello", 5) == 0);
    if (OKP(m))
        CASE(NM("file-shared-munmap"), munmap(m, pg));
    close(wo);
    close(ro);
    close(f);

    /* anonymous mappings that succeed: written, replaced in part, unmapped */
    CASE_PX(NM("anon-4-pages"), m, map_call(which, NULL, 4 * pg, RW, ANON, -1, 0), "zeroed=%d",
            OKP(m) && all_bytes(m, 4 * pg, 0));
    if (!OKP(m))
        exit(2);
    CASE(NM("anon-4-pages-write"), fill_check(m, 4 * pg, 0x33));
    char *c = m;
    CASE_P(NM("fixed-unaligned"), q, map_call(which, c + 1, pg, RW, ANON | MAP_FIXED, -1, 0));
    CASE_PX(NM("fixed-noreplace-taken"), q,
            map_call(which, c + pg, pg, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), "kept=%d",
            all_bytes(c, 4 * pg, 0x33));
    CASE_PX(NM("fixed-over-anon"), q, map_call(which, c + pg, pg, RW, ANON | MAP_FIXED, -1, 0),
            "at=%d zeroed=%d rest-kept=%d", q == c + pg, OKP(q) && all_bytes(q, pg, 0),
            all_bytes(c, pg, 0x33) && all_bytes(c + 2 * pg, 2 * pg, 0x33));
    CASE(NM("anon-munmap"), munmap(m, 4 * pg));
    CASE_P(NM("anon-prot-none"), m, map_call(which, NULL, 2 * pg, PROT_NONE, ANON, -1, 0));
    if (OKP(m))
        CASE(NM("anon-prot-none-munmap"), munmap(m, 2 * pg));
    CASE_PX(NM("anon-readonly"), m, map_call(which, NULL, pg, PROT_READ, ANON, -1, 0),
            "zeroed=%d", OKP(m) && all_bytes(m, pg, 0));
    if (OKP(m))
        CASE(NM("anon-readonly-munmap"), munmap(m, pg));
    CASE_PX(NM("anon-shared"), m, map_call(which, NULL, 2 * pg, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
            "written=%d", OKP(m) && fill_check(m, 2 * pg, 0x44));
    if (OKP(m))
        CASE(NM("anon-shared-munmap"), munmap(m, 2 * pg));
    CASE_PX(NM("anon-len-unaligned"), m, map_call(which, NULL, pg + 1, RW, ANON, -1, 0),
            "written=%d", OKP(m) && fill_check(m, 2 * pg, 0x55)); /* rounded up to 2 pages */
    if (OKP(m))
        CASE(NM("anon-len-unaligned-munmap"), munmap(m, pg + 1));
#undef NM
}

static void probe_mmap(void)
{
    void *m, *q, *t;
    long ps = sysconf(_SC_PAGESIZE);
    size_t pg = ps > 0 ? (size_t)ps : 4096;

    probe_mmap_calls(0, pg);
    probe_mmap_calls(1, pg);

    /* munmap: bad arguments, a part, a hole, what is no longer mapped */
    m = mmap(NULL, 4 * pg, RW, ANON, -1, 0);
    if (m == MAP_FAILED)
        exit(2);
    char *c = m;
    memset(c, 0x66, 4 * pg);
    CASE("munmap-unaligned", munmap(c + 1, pg));
    CASE("munmap-len-0", munmap(c, RT(0)));
    CASE("munmap-len-size_max", munmap(c, RT(SIZE_MAX)));
    CASE("munmap-above-task-size", munmap((void *)(uintptr_t)-(intptr_t)pg, pg));
    CASE_X("munmap-middle-page", munmap(c + pg, pg), "rest-kept=%d",
           all_bytes(c, pg, 0x66) && all_bytes(c + 2 * pg, 2 * pg, 0x66));
    CASE("munmap-middle-page-again", munmap(c + pg, pg));
    CASE_X("munmap-last-page-len-unaligned", munmap(c + 3 * pg, 1), "rest-kept=%d",
           all_bytes(c, pg, 0x66) && all_bytes(c + 2 * pg, pg, 0x66));
    CASE("munmap-over-holes", munmap(c, 4 * pg));
    CASE("munmap-unmapped", munmap(c, 4 * pg));

    /* mremap: an unmapped address, bad arguments, grow, shrink, move */
    m = mmap(NULL, 16 * pg, RW, ANON, -1, 0);
    if (m == MAP_FAILED)
        exit(2);
    munmap(m, 16 * pg);
    CASE_P("mremap-unmapped", q, mremap(m, pg, 2 * pg, MREMAP_MAYMOVE));
    CASE_P("mremap-unmapped-nomove", q, mremap(m, pg, pg, 0));
    m = mmap(NULL, 2 * pg, RW, ANON, -1, 0);
    t = mmap(NULL, 8 * pg, RW, ANON, -1, 0);
    if (m == MAP_FAILED || t == MAP_FAILED)
        exit(2);
    c = m;
    memset(c, 0x77, 2 * pg);
    CASE_PX("mremap-bad-flags", q, mremap(m, pg, pg, 0x40000000), "kept=%d", all_bytes(c, 2 * pg, 0x77));
    CASE_P("mremap-unaligned", q, mremap(c + 1, pg, pg, MREMAP_MAYMOVE));
    CASE_P("mremap-new-len-0", q, mremap(m, pg, RT(0), MREMAP_MAYMOVE));
    CASE_P("mremap-fixed-no-maymove", q, mremap(m, pg, pg, MREMAP_FIXED, t));
    CASE_P("mremap-fixed-unaligned-target", q,
           mremap(m, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)t + 1));
    CASE_P("mremap-fixed-overlap", q, mremap(m, 2 * pg, 2 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, c + pg));
    CASE_P("mremap-dontunmap-no-maymove", q, mremap(m, pg, pg, MREMAP_DONTUNMAP, NULL));
    /* with MREMAP_DONTUNMAP (no MREMAP_FIXED) the kernel takes new_address as a
     * hint, and rejects an unaligned one; on a scratch page of its own */
    void *sc = mmap(NULL, pg, RW, ANON, -1, 0);
    if (sc == MAP_FAILED)
        exit(2);
    CASE_P("mremap-dontunmap-unaligned-hint", q,
           mremap(sc, pg, pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, (char *)t + 1));
    if (OKP(q))
        munmap(q, pg);
    munmap(sc, pg);
    CASE_PX("mremap-grow-in-place-blocked", q, mremap(m, pg, 2 * pg, 0), "kept=%d",
            all_bytes(c, 2 * pg, 0x77));
    CASE_P("mremap-grow-ptrdiff_max+1", q, mremap(m, 2 * pg, RT(PD1), MREMAP_MAYMOVE));
    CASE_P("mremap-grow-size_max", q, mremap(m, 2 * pg, RT(SIZE_MAX), MREMAP_MAYMOVE));
    CASE_PX("mremap-shrink", q, mremap(m, 2 * pg, pg, 0), "same=%d kept=%d", q == m,
            all_bytes(c, pg, 0x77));
    CASE_PX("mremap-same-len", q, mremap(m, pg, pg, 0), "same=%d kept=%d", q == m,
            all_bytes(c, pg, 0x77));
    CASE_PX("mremap-grow-maymove", q, mremap(m, pg, 8 * pg, MREMAP_MAYMOVE),
            "kept=%d tail-zeroed=%d", OKP(q) && all_bytes(q, pg, 0x77),
            OKP(q) && all_bytes((char *)q + pg, 7 * pg, 0));
    if (!OKP(q))
        exit(2);
    m = q;
    c = m;
    memset(c + pg, 0x78, 7 * pg);
    CASE_PX("mremap-fixed", q, mremap(m, 8 * pg, 8 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, t),
            "at-target=%d kept=%d", q == t,
            OKP(q) && all_bytes(q, pg, 0x77) && all_bytes((char *)q + pg, 7 * pg, 0x78));
    if (!OKP(q))
        exit(2);
    m = q;
    CASE("munmap-after-mremap-old", munmap(c, 8 * pg));
    CASE_P("mremap-dontunmap-grow", q, mremap(m, 8 * pg, 16 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL));
    if (OKP(q))
        munmap(q, 16 * pg);
    CASE_PX("mremap-dontunmap", q, mremap(m, 8 * pg, 8 * pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL),
            "moved=%d kept=%d old-zeroed=%d", q != m,
            OKP(q) && all_bytes(q, pg, 0x77) && all_bytes((char *)q + pg, 7 * pg, 0x78),
            OKP(q) && all_bytes(m, 8 * pg, 0));
    if (OKP(q))
        CASE("munmap-after-mremap-dontunmap", munmap(q, 8 * pg));
    CASE("munmap-mremap-dontunmap-old", munmap(m, 8 * pg));
    CASE_PX("mremap-shared-anon-map", m,
            mmap(NULL, pg, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0), "written=%d",
            OKP(m) && fill_check(m, pg, 0x79));
    if (!OKP(m))
        exit(2);
    CASE_PX("mremap-shared-anon", q, mremap(m, pg, 4 * pg, MREMAP_MAYMOVE), "kept=%d",
            OKP(q) && all_bytes(q, pg, 0x79));
    munmap(OKP(q) ? q : m, OKP(q) ? 4 * pg : pg);
}

static void probe_alloc(void)
{
    probe_malloc();
    probe_mmap();
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
    else if (strcmp(mode, "waits") == 0) {
        start_background_retry();
        probe_waits();
    } else if (strcmp(mode, "waits-efault") == 0)
        probe_waits_efault_retrying();
    else if (strcmp(mode, "nbfail") == 0)
        probe_nbfail();
    else {
        fprintf(stderr, "usage: errno_probe [all|refused|efault|waits|waits-efault|nbfail]\n");
        return 2;
    }
    printf("total %d\n", ncases);
    return 0;
}
