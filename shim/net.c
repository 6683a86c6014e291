/* net.c: interposers for the life of a connection: socket, connect, accept,
 * close, dup, fcntl, getsockopt. Owns blocking connect retries: the same fd
 * is reconnected (Linux allows connect(2) again after a failed connect), so
 * its number, flags, options and epoll registrations stay the app's.
 * Every exported function is a thin wrapper around reshim_X, which calls
 * real_X; errno is the real call's unless reshim changed the outcome. */
#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attempt.h"
#include "config.h"
#include "log.h"
#include "nbconn.h"
#include "policy.h"
#include "replay.h"
#include "retry.h"
#include "stats.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static bool retry_family(int family)
{
    return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
}

static bool stream_type(int stype)
{
    return stype == SOCK_STREAM || stype == SOCK_SEQPACKET;
}

/* ---- blocking connect retries (their steps: attempt.c) ------------------ */

static int retry_blocking(int fd, const struct sockaddr *addr, socklen_t len, struct fdinfo fi,
                          uint16_t dest, uint64_t start, int first_err)
{
    const struct reshim_config *cfg = reshim_cfg();
    uint64_t deadline = start + cfg->retry_deadline_ns, app = attempt_app_timeout_ns(fd, false);
    if (app && start + app < deadline)
        deadline = start + app;
    struct retry_session rs;
    retry_begin(&rs, dest, addr->sa_family, false, start, deadline);
    int last = first_err;
    uint64_t delay;
    while (retry_next(&rs, addr, len, last, reshim_now_ns(), &delay)) {
        if (!attempt_sleep(delay)) {
            /* A signal: stop retrying. Nothing is in progress, so the app gets
             * the last real error (EINTR would promise a pending connect). */
            rs.why = "stopped by a signal";
            break;
        }
        if (fdtab_get(fd).gen != fi.gen) {
            retry_abandon(&rs); /* another thread closed or replaced the fd meanwhile */
            errno = last;
            return -1;
        }
        int r = attempt_connect(fd, addr, len, deadline);
        if (r == ATTEMPT_INTERRUPTED) {
            /* The attempt goes on; its outcome is counted where the app learns it. */
            fdtab_update(fd, fi.gen, PH_CONNECTING, dest);
            retry_abandon(&rs);
            errno = EINTR;
            return -1;
        }
        if (r == ATTEMPT_DEADLINE) {
            rs.why = "deadline";
            break;
        }
        if (r == 0) {
            fdtab_update(fd, fi.gen, PH_CONNECTED, dest);
            retry_end(&rs, 0);
            replay_track(fd, fi.gen, addr, len);
            return 0;
        }
        last = r;
    }
    fdtab_update(fd, fi.gen, PH_FAILED, dest);
    retry_end(&rs, last);
    errno = last;
    return -1;
}

static int reshim_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (!reshim_active())
        return REAL(connect)(fd, addr, len);
    reshim_slow_point();
    reshim_bind_symbols(); /* real_* are used directly below */
    struct fdinfo fi = fdtab_classify(fd);
    if (fi.kind != FD_SOCK || !stream_type(fi.stype))
        return real_connect(fd, addr, len);

    if (fi.phase == PH_CONNECTING) {
        int pending;
        if (nb_connect_again(fd, &pending)) { /* retrying, or its final error */
            errno = pending;
            return -1;
        }
    }
    /* The kernel reads addr first: a bad pointer or length must give EFAULT
     * or EINVAL, never a crash in here. */
    int r = real_connect(fd, addr, len);
    int e = r < 0 ? errno : 0;
    if (e == EFAULT || e == EINVAL || e == EAFNOSUPPORT || !addr || len < sizeof(sa_family_t) ||
        !retry_family(addr->sa_family)) {
        if (r < 0)
            errno = e;
        return r;
    }
    if (fi.phase == PH_CONNECTING) {
        /* The app asks again for a pending connect's outcome. */
        if (r == 0 || e == EISCONN || (e != EALREADY && e != EINPROGRESS))
            nb_forget(fd); /* the kernel answered: no retry of ours is pending */
        if (r == 0 || e == EISCONN)
            retry_connect_learned(fd, fi, 0);
        else if (e != EALREADY && e != EINPROGRESS)
            retry_connect_learned(fd, fi, e);
        errno = e;
        return r;
    }
    if (e == EALREADY || e == EISCONN || e == EBADF || e == ENOTSOCK) {
        errno = e;
        return r;
    }
    uint64_t start = reshim_now_ns();
    uint16_t dest = reshim_dest_lookup(addr, len, DEST_OUT);
    retry_count_call(dest);
    if (r == 0) {
        fdtab_update(fd, fi.gen, PH_CONNECTED, dest);
        retry_outcome(dest, 0, start);
        replay_track(fd, fi.gen, addr, len);
        return 0;
    }
    if (e == EINPROGRESS || e == EINTR) {
        /* Non-blocking (or interrupted, or SO_SNDTIMEO expired): the attempt
         * goes on; its outcome is counted where the app learns it. */
        fdtab_update(fd, fi.gen, PH_CONNECTING, dest);
        ATOMIC_INC(&reshim_stats.nonblock_pending);
        if (e == EINPROGRESS) {
            nb_start(fd, fi, dest, addr, len, start, 0);
            replay_track(fd, fi.gen, addr, len); /* from when it connects */
        }
        errno = e;
        return r;
    }
    int flags = real_fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) && nb_start(fd, fi, dest, addr, len, start, e)) {
        /* An immediate failure (a unix socket not there yet): retried behind
         * an EINPROGRESS, as if the connect were taking longer. */
        fdtab_update(fd, fi.gen, PH_CONNECTING, dest);
        ATOMIC_INC(&reshim_stats.nonblock_pending);
        errno = EINPROGRESS;
        return -1;
    }
    if (flags < 0 || (flags & O_NONBLOCK)) {
        fdtab_update(fd, fi.gen, PH_FAILED, dest);
        retry_outcome(dest, e, start);
        errno = e;
        return r;
    }
    return retry_blocking(fd, addr, len, fi, dest, start, e);
}

/* ---- descriptors: creation, duplication, closing ------------------------ */

static int reshim_socket(int domain, int type, int protocol)
{
    int fd = REAL(socket)(domain, type, protocol);
    if (fd >= 0 && reshim_active()) {
        fdtab_new_socket(fd, domain, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC));
        reshim_slow_point();
    }
    return fd;
}

static int reshim_socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = REAL(socketpair)(domain, type, protocol, sv);
    if (r == 0 && reshim_active()) {
        int stype = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        for (int i = 0; i < 2; i++) {
            fdtab_new_socket(sv[i], domain, stype);
            struct fdinfo fi = fdtab_get(sv[i]);
            fdtab_update(sv[i], fi.gen, PH_CONNECTED, 0);
        }
    }
    return r;
}

/* An accepted socket is attributed to the local address it was accepted on
 * (one row per listener, not one per client port). */
static void note_accepted(int lfd, int fd)
{
    int saved = errno;
    struct fdinfo lf = fdtab_classify(lfd);
    uint16_t dest = lf.dest;
    if (lf.kind == FD_SOCK && !dest) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0) {
            dest = reshim_dest_lookup((struct sockaddr *)&ss, sl, DEST_IN);
            fdtab_update(lfd, lf.gen, PH_LISTENING, dest);
        }
    }
    fdtab_new_socket(fd, lf.family, lf.stype ? lf.stype : SOCK_STREAM);
    fdtab_update(fd, fdtab_get(fd).gen, PH_CONNECTED, dest);
    errno = saved;
}

static int reshim_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int r = REAL(accept)(fd, addr, len);
    if (r >= 0 && reshim_active()) {
        note_accepted(fd, r);
        reshim_slow_point();
    }
    return r;
}

static int reshim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int r = REAL(accept4)(fd, addr, len, flags);
    if (r >= 0 && reshim_active()) {
        note_accepted(fd, r);
        reshim_slow_point();
    }
    return r;
}

static int reshim_close(int fd)
{
    /* Forget first: once the real close returns, the number may be reused. */
    if (reshim_active()) {
        nb_forget(fd);
        replay_forget(fd);
        fdtab_clear(fd);
    }
    return REAL(close)(fd);
}

static int reshim_close_range(unsigned first, unsigned last, int flags)
{
    if (!REAL(close_range)) {
        errno = ENOSYS;
        return -1;
    }
    if (reshim_active() && !(flags & CLOSE_RANGE_CLOEXEC) && first <= last) {
        nb_forget_range(first, last);
        replay_forget_range(first, last);
        fdtab_clear_range(first, last);
    }
    return real_close_range(first, last, flags);
}

/* A copy of a descriptor: bytes may now go through a number replay.c does
 * not watch, so the connection is never replayed again. */
static void copied(int fd, int to)
{
    fdtab_copy(fd, to);
    replay_never(fd);
}

static int reshim_dup(int fd)
{
    int r = REAL(dup)(fd);
    if (r >= 0 && reshim_active())
        copied(fd, r);
    return r;
}

static int reshim_dup2(int fd, int fd2)
{
    int r;
    if (fd != fd2 && reshim_active() && REAL(dup2))
        r = nb_dup_over(fd, fd2, 0, false); /* fd2's retry goes with it */
    else
        r = REAL(dup2)(fd, fd2);
    if (r >= 0 && fd != fd2 && reshim_active()) {
        replay_forget(fd2);
        copied(fd, r);
    }
    return r;
}

static int reshim_dup3(int fd, int fd2, int flags)
{
    int r;
    if (fd != fd2 && reshim_active() && REAL(dup3))
        r = nb_dup_over(fd, fd2, flags, true); /* fd2's retry goes with it */
    else
        r = REAL(dup3)(fd, fd2, flags);
    if (r >= 0 && reshim_active()) {
        replay_forget(fd2);
        copied(fd, r);
    }
    return r;
}

typedef int (*fcntl_fn)(int, int, ...);

static int reshim_fcntl(fcntl_fn real, int fd, int cmd, void *arg)
{
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int r = real(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && reshim_active())
        copied(fd, r);
    return r;
}

/* After any shutdown a read may end in a end of file the app asked for,
 * and a half-closed request may have been acted on: never replayed. */
static int reshim_shutdown(int fd, int how)
{
    if (!REAL(shutdown)) {
        errno = ENOSYS;
        return -1;
    }
    if (reshim_active())
        replay_never(fd);
    return real_shutdown(fd, how);
}

static int reshim_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    if (level == SOL_SOCKET && opt == SO_ERROR && val && len && *len >= (socklen_t)sizeof(int) &&
        reshim_active() && fdtab_get(fd).phase == PH_CONNECTING) {
        int err;
        if (nb_so_error(fd, &err)) { /* a retried connect answers for itself */
            *(int *)val = err;
            *len = sizeof(int);
            return 0;
        }
    }
    int r = REAL(getsockopt)(fd, level, opt, val, len);
    if (r == 0 && level == SOL_SOCKET && opt == SO_ERROR && val && len &&
        *len >= (socklen_t)sizeof(int) && reshim_active()) {
        struct fdinfo fi = fdtab_get(fd);
        if (fi.kind == FD_SOCK && fi.phase == PH_CONNECTING) {
            int err = *(int *)val, saved = errno;
            /* 0 also means "still in progress": only a peer tells success. */
            enum conn_result cr = fdtab_connect_result(fd, err, &err);
            if (cr == CONN_CONNECTED || cr == CONN_FAILED)
                retry_connect_learned(fd, fi, err);
            errno = saved;
        } else if (fi.kind == FD_SOCK && fi.phase == PH_CONNECTED && *(int *)val) {
            int saved = errno;
            if (replay_so_error(fd, fi, *(int *)val))
                *(int *)val = 0; /* connected again, or being connected again */
            errno = saved;
        }
    }
    return r;
}

/* ---- exported symbols: one shape ----------------------------------------- */

EXPORT int socket(int domain, int type, int protocol)
{
    return reshim_socket(domain, type, protocol);
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    return reshim_socketpair(domain, type, protocol, sv);
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return reshim_connect(fd, addr, len);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return reshim_accept(fd, addr, len);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return reshim_accept4(fd, addr, len, flags);
}

EXPORT int close(int fd)
{
    return reshim_close(fd);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    return reshim_close_range(first, last, flags);
}

EXPORT int dup(int fd)
{
    return reshim_dup(fd);
}

EXPORT int dup2(int fd, int fd2)
{
    return reshim_dup2(fd, fd2);
}

EXPORT int dup3(int fd, int fd2, int flags)
{
    return reshim_dup3(fd, fd2, flags);
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *); /* glibc reads the optional argument the same way */
    va_end(ap);
    return reshim_fcntl(REAL(fcntl), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return reshim_fcntl(REAL(fcntl64), fd, cmd, arg);
}

EXPORT int shutdown(int fd, int how)
{
    return reshim_shutdown(fd, how);
}

EXPORT int getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
    return reshim_getsockopt(fd, level, opt, val, len);
}
