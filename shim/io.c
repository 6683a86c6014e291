/* io.c: interposers for the data path: send/recv and friends, and read/write
 * and their vector and fortified forms when the fd is a socket. Counts calls,
 * bytes and failures per class and destination. Retries only ENOBUFS/ENOMEM
 * on blocking sockets (nothing was queued, so the peer cannot tell), and
 * hands a connection that broke before the peer could act to replay.c;
 * every other outcome, EINTR and EAGAIN above all, reaches the app unchanged.
 * Hot path: no locks, no allocation, relaxed atomics; async-signal-safe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "nbconn.h"
#include "net.h"
#include "retry.h"
#include "policy.h"
#include "replay.h"
#include "stats.h"

#define DATA_RETRIES 3

/* Inlined: on every data call, a call's prologue and epilogue cost as much
 * as the counting. */
static inline __attribute__((always_inline)) void account(int fd, uint64_t fw,
                                                         enum net_class cls, ssize_t r,
                                                         int err, unsigned retries)
{
    struct net_counters *g = &reshim_stats.net[cls];
    struct dest_slot *ds = FDW_DEST(fw) ? reshim_dest(FDW_DEST(fw)) : NULL;
    ATOMIC_INC(&g->calls);
    if (retries)
        ATOMIC_ADD(&g->retries, retries);
    if (r >= 0) {
        if (retries)
            ATOMIC_INC(&g->recovered);
        if (ds) {
            ATOMIC_INC(cls == NC_SEND ? &ds->sends : &ds->recvs);
            ATOMIC_ADD(cls == NC_SEND ? &ds->bytes_out : &ds->bytes_in, (uint64_t)r);
        }
        if (unlikely(FDW_PHASE(fw) == PH_CONNECTING))
            retry_connect_learned(fd, fdtab_unpack(fw), 0); /* the app used it without asking */
    } else if (policy_data_failure(err)) {
        if (unlikely(FDW_PHASE(fw) == PH_CONNECTING) && err != ENOTCONN)
            retry_connect_learned(fd, fdtab_unpack(fw), err); /* its first I/O told it the connect failed */
        ATOMIC_INC(&g->failures);
        if (retries)
            ATOMIC_INC(&g->gave_up);
        if (ds) {
            ATOMIC_INC(&ds->io_failures);
            ATOMIC_STORE(&ds->last_error, err);
        }
    }
}

static bool blocking(int fd, int msgflags)
{
    if (msgflags & MSG_DONTWAIT)
        return false;
    int fl = real_fcntl(fd, F_GETFL);
    return fl >= 0 && !(fl & O_NONBLOCK);
}

static void short_sleep(unsigned attempt)
{
    /* U(0, 2^attempt ms): 0-1, 0-2, 0-4 ms */
    uint64_t ns = reshim_random() % ((1000000ull << attempt) + 1);
    struct timespec ts = {0, (long)ns};
    nanosleep(&ts, NULL);
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t t = 0;
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* After a call on a socket replay.c tracks: RA_* of replay.h. */
static int replay_after(struct replay_fd *rf, struct replay_call *rc, int fd, enum net_class cls,
                        ssize_t r, int e, const struct iovec *iov, int cnt, int msgflags)
{
    if (cls == NC_SEND)
        return replay_sent(rf, rc, fd, r, e, iov, cnt, msgflags);
    return replay_received(rf, rc, fd, r, e, r == 0 ? iov_total(iov, cnt) : 0, msgflags);
}

#define IOV1(buf, n) (&(struct iovec){.iov_base = (void *)(buf), .iov_len = (n)})
#define MSG_IOV(msg) ((msg) ? (msg)->msg_iov : NULL)
#define MSG_IOVLEN(msg) ((msg) ? (int)(msg)->msg_iovlen : 0)

/* One shape for every data-path call: classify the fd, make the real call
 * (expr), retry ENOBUFS/ENOMEM briefly on blocking sockets, let replay.c
 * look at a tracked connection (iov, cnt: the app's bytes, read after the
 * call), count, return. */
#define DATA_CALL(cls, fd, msgflags, real_expr, real_fn_check, iov, cnt)             \
    do {                                                                           \
        if (!(real_fn_check)) {                                                    \
            errno = ENOSYS;                                                        \
            return -1;                                                             \
        }                                                                          \
        if (!reshim_active())                                                      \
            return (real_expr);                                                    \
        uint64_t fw_ = fdtab_word(fd);                                             \
        if (unlikely(FDW_KIND(fw_) == FD_UNKNOWN))                                 \
            fw_ = fdtab_pack(fdtab_classify(fd));                                  \
        if (FDW_KIND(fw_) != FD_SOCK)                                              \
            return (real_expr);                                                    \
        if (unlikely(FDW_PHASE(fw_) == PH_CONNECTING)) {                           \
            int pend_;                                                             \
            if (nb_io_error(fd, &pend_)) {                                         \
                if (pend_ < 0) /* a replay ran out after an end of file */        \
                    return (cls) == NC_RECV ? 0 : (errno = EPIPE, -1);             \
                errno = pend_;                                                     \
                return -1;                                                         \
            }                                                                      \
        }                                                                          \
        struct replay_fd *rf_ = replay_lookup(fd, FDW_GEN(fw_));                   \
        ssize_t r_ = (real_expr);                                                  \
        int e_ = r_ < 0 ? errno : 0;                                               \
        unsigned tries_ = 0;                                                       \
        while (unlikely(r_ < 0) && policy_data_retryable(e_) &&                    \
               tries_ < DATA_RETRIES && blocking(fd, (msgflags))) {                \
            short_sleep(tries_++);                                                 \
            r_ = (real_expr);                                                      \
            e_ = r_ < 0 ? errno : 0;                                               \
        }                                                                          \
        if (unlikely(rf_ != NULL)) {                                               \
            struct replay_call rc_; /* the session inside: begun when needed */    \
            rc_.active = false;                                                    \
            int v_;                                                                \
            while ((v_ = replay_after(rf_, &rc_, fd, (cls), r_, e_, (iov), (cnt),   \
                                      (msgflags))) == RA_REDO) {                   \
                r_ = (real_expr);                                                  \
                e_ = r_ < 0 ? errno : 0;                                           \
            }                                                                      \
            if (v_ == RA_HIDE) {                                                   \
                r_ = -1;                                                           \
                e_ = EAGAIN;                                                       \
            }                                                                      \
        }                                                                          \
        account(fd, fw_, (cls), r_, e_, tries_);                                   \
        if (e_)                                                                    \
            errno = e_;                                                            \
        return r_;                                                                 \
    } while (0)

static ssize_t reshim_send(int fd, const void *buf, size_t n, int flags)
{
    DATA_CALL(NC_SEND, fd, flags, real_send(fd, buf, n, flags), REAL(send), IOV1(buf, n), 1);
}

static ssize_t reshim_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *to, socklen_t tolen)
{
    DATA_CALL(NC_SEND, fd, flags, real_sendto(fd, buf, n, flags, to, tolen), REAL(sendto),
              IOV1(buf, n), 1);
}

static ssize_t reshim_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    DATA_CALL(NC_SEND, fd, flags, real_sendmsg(fd, msg, flags), REAL(sendmsg), MSG_IOV(msg),
              MSG_IOVLEN(msg));
}

static ssize_t reshim_write(int fd, const void *buf, size_t n)
{
    DATA_CALL(NC_SEND, fd, 0, real_write(fd, buf, n), REAL(write), IOV1(buf, n), 1);
}

static ssize_t reshim_writev(int fd, const struct iovec *iov, int cnt)
{
    DATA_CALL(NC_SEND, fd, 0, real_writev(fd, iov, cnt), REAL(writev), iov, cnt);
}

static ssize_t reshim_recv(int fd, void *buf, size_t n, int flags)
{
    DATA_CALL(NC_RECV, fd, flags, real_recv(fd, buf, n, flags), REAL(recv), IOV1(buf, n), 1);
}

static ssize_t reshim_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    DATA_CALL(NC_RECV, fd, flags, real___recv_chk(fd, buf, n, buflen, flags), REAL(__recv_chk),
              IOV1(buf, n), 1);
}

static ssize_t reshim_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                               socklen_t *fromlen)
{
    DATA_CALL(NC_RECV, fd, flags, real_recvfrom(fd, buf, n, flags, from, fromlen),
              REAL(recvfrom), IOV1(buf, n), 1);
}

static ssize_t reshim_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                                   struct sockaddr *from, socklen_t *fromlen)
{
    DATA_CALL(NC_RECV, fd, flags,
              real___recvfrom_chk(fd, buf, n, buflen, flags, from, fromlen),
              REAL(__recvfrom_chk), IOV1(buf, n), 1);
}

static ssize_t recvmsg_and_forget(int fd, struct msghdr *msg, int flags)
{
    ssize_t r = real_recvmsg(fd, msg, flags);
    if (r >= 0 && msg->msg_controllen)
        reshim_forget_passed_fds(msg);
    return r;
}

static ssize_t reshim_recvmsg(int fd, struct msghdr *msg, int flags)
{
    DATA_CALL(NC_RECV, fd, flags, recvmsg_and_forget(fd, msg, flags), REAL(recvmsg),
              MSG_IOV(msg), MSG_IOVLEN(msg));
}

static ssize_t reshim_read(int fd, void *buf, size_t n)
{
    DATA_CALL(NC_RECV, fd, 0, real_read(fd, buf, n), REAL(read), IOV1(buf, n), 1);
}

static ssize_t reshim_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    DATA_CALL(NC_RECV, fd, 0, real___read_chk(fd, buf, n, buflen), REAL(__read_chk),
              IOV1(buf, n), 1);
}

static ssize_t reshim_readv(int fd, const struct iovec *iov, int cnt)
{
    DATA_CALL(NC_RECV, fd, 0, real_readv(fd, iov, cnt), REAL(readv), iov, cnt);
}

/* Bytes that go out without passing through the app's buffers: never
 * kept, so the connection is never replayed again (before the call: a
 * break inside it must reach the app as it is). */
static ssize_t reshim_sendfile(ssize_t (*real)(int, int, void *, size_t), int out, int in,
                               void *off, size_t count)
{
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (reshim_active())
        replay_never(out);
    return real(out, in, off, count);
}

static ssize_t reshim_splice(int in, loff_t *offin, int out, loff_t *offout, size_t len,
                             unsigned int flags)
{
    if (!REAL(splice)) {
        errno = ENOSYS;
        return -1;
    }
    if (reshim_active()) {
        replay_never(out);
        replay_never(in); /* a read the app never saw: the response began */
    }
    return real_splice(in, offin, out, offout, len, flags);
}

/* The mmsg calls return a message count; bytes are summed from msg_len. */
static ssize_t mmsg_bytes(const struct mmsghdr *v, int n)
{
    ssize_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i].msg_len;
    return sum;
}

static int reshim_sendmmsg(int fd, struct mmsghdr *v, unsigned n, reshim_mmsg_flags flags)
{
    if (!REAL(sendmmsg)) {
        errno = ENOSYS;
        return -1;
    }
    int r = real_sendmmsg(fd, v, n, flags);
    if (!reshim_active())
        return r;
    int e = r < 0 ? errno : 0;
    struct fdinfo fi = fdtab_classify(fd);
    if (fi.kind == FD_SOCK) {
        if (r > 0)
            replay_never(fd); /* bytes replay.c did not keep */
        account(fd, fdtab_pack(fi), NC_SEND, r < 0 ? -1 : mmsg_bytes(v, r), e, 0);
    }
    errno = e ? e : errno;
    return r;
}

static int reshim_recvmmsg(int fd, struct mmsghdr *v, unsigned n, reshim_mmsg_flags flags,
                           struct timespec *timeout)
{
    if (!REAL(recvmmsg)) {
        errno = ENOSYS;
        return -1;
    }
    int r = real_recvmmsg(fd, v, n, flags, timeout);
    if (!reshim_active())
        return r;
    int e = r < 0 ? errno : 0;
    struct fdinfo fi = fdtab_classify(fd);
    if (fi.kind == FD_SOCK) {
        for (int i = 0; i < r; i++)
            if (v[i].msg_hdr.msg_controllen)
                reshim_forget_passed_fds(&v[i].msg_hdr);
        if (r > 0)
            replay_never(fd);
        account(fd, fdtab_pack(fi), NC_RECV, r < 0 ? -1 : mmsg_bytes(v, r), e, 0);
    }
    errno = e ? e : errno;
    return r;
}

void reshim_forget_passed_fds(const struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof(int), sizeof fd);
            fdtab_clear(fd);
        }
    }
}

/* ---- exported symbols: one shape ----------------------------------------- */

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return reshim_send(fd, buf, n, flags);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
                      socklen_t tolen)
{
    return reshim_sendto(fd, buf, n, flags, to, tolen);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return reshim_sendmsg(fd, msg, flags);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, reshim_mmsg_flags flags)
{
    return reshim_sendmmsg(fd, v, n, flags);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    return reshim_write(fd, buf, n);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    return reshim_writev(fd, iov, cnt);
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return reshim_recv(fd, buf, n, flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    return reshim_recv_chk(fd, buf, n, buflen, flags);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from,
                        socklen_t *fromlen)
{
    return reshim_recvfrom(fd, buf, n, flags, from, fromlen);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                              struct sockaddr *from, socklen_t *fromlen)
{
    return reshim_recvfrom_chk(fd, buf, n, buflen, flags, from, fromlen);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    return reshim_recvmsg(fd, msg, flags);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, reshim_mmsg_flags flags,
                    struct timespec *timeout)
{
    return reshim_recvmmsg(fd, v, n, flags, timeout);
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
    return reshim_sendfile(REAL(sendfile), out, in, off, count);
}

EXPORT ssize_t sendfile64(int out, int in, int64_t *off, size_t count)
{
    return reshim_sendfile(REAL(sendfile64), out, in, off, count);
}

EXPORT ssize_t splice(int in, loff_t *offin, int out, loff_t *offout, size_t len,
                      unsigned int flags)
{
    return reshim_splice(in, offin, out, offout, len, flags);
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
    return reshim_read(fd, buf, n);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
    return reshim_read_chk(fd, buf, n, buflen);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    return reshim_readv(fd, iov, cnt);
}
