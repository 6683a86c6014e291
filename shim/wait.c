/* wait.c: interposers for the app's waits: poll, ppoll, select, pselect,
 * epoll_wait, epoll_pwait, epoll_pwait2 (and the fortified poll variants),
 * plus epoll_ctl to remember registrations. While no non-blocking connect is
 * being retried they pass straight through. Otherwise a socket waiting out
 * its backoff is left out of the real wait, an event that reveals a
 * retryable failure is hidden, and the wait goes on: never past the time the
 * app asked for, and events of other descriptors are returned at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "nbconn.h"
#include "net.h"
#include "sys.h"

#include <sys/mman.h>
#include <unistd.h>

#define FOREVER UINT64_MAX
#define MASKED(fd) (INT_MIN + (int)(fd)) /* negative: poll ignores the entry */

/* reshim_active() for the waits, which are also slow points where the
 * stats thread may start (reshim_slow_point). */
static inline bool active_wait(void)
{
    if (!reshim_active())
        return false;
    reshim_slow_point();
    return true;
}

static inline bool retrying(void)
{
    return atomic_load_explicit(&reshim_nb_active, memory_order_relaxed) != 0;
}

static inline bool connecting(int fd)
{
    return fd >= 0 && fdtab_get(fd).phase == PH_CONNECTING;
}

/* The slow paths read the app's arrays before the kernel does: a pointer the
 * kernel would refuse with EFAULT must not crash us. mincore fails (ENOMEM)
 * on unmapped pages. */
static bool mapped(const void *p, size_t len)
{
    if (!len)
        return true;
    if (!p)
        return false;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~((uintptr_t)page - 1);
    uintptr_t end = (uintptr_t)p + len;
    if (end < (uintptr_t)p)
        return false;
    unsigned char vec[64];
    size_t pages = (end - start + (size_t)page - 1) / (size_t)page;
    for (size_t done = 0; done < pages; done += sizeof vec) {
        size_t n = pages - done < sizeof vec ? pages - done : sizeof vec;
        if (mincore((void *)(start + done * (size_t)page), n * (size_t)page, vec) != 0)
            return false;
    }
    return true;
}

static bool valid_ts(const struct timespec *ts)
{
    return !ts || (mapped(ts, sizeof *ts) && ts->tv_sec >= 0 && ts->tv_nsec >= 0 &&
                   ts->tv_nsec < 1000000000L);
}

static uint64_t deadline_after(uint64_t start, uint64_t timeout_ns)
{
    return timeout_ns == FOREVER ? FOREVER : start + timeout_ns;
}

/* How long the next real wait may last: up to the app's end, and not past the
 * moment a masked socket comes back (plus 1 ms), so it joins the wait. */
static uint64_t slice(uint64_t end, uint64_t now)
{
    uint64_t rem = end == FOREVER ? FOREVER : (end > now ? end - now : 0);
    uint64_t wake = nb_next_wake();
    if (wake) {
        uint64_t until = (wake > now ? wake - now : 0) + 1000000;
        if (until < rem)
            rem = until;
    }
    return rem;
}

static int to_ms(uint64_t ns)
{
    if (ns == FOREVER)
        return -1;
    uint64_t ms = (ns + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static uint64_t ts_ns(const struct timespec *ts)
{
    if (!ts)
        return FOREVER;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0)
        return 0;
    return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

/* ---- poll / ppoll -------------------------------------------------------- */

static int wait_poll(struct pollfd *fds, nfds_t n, uint64_t timeout_ns, const sigset_t *sigmask,
                     bool use_ppoll)
{
    uint64_t end = deadline_after(reshim_now_ns(), timeout_ns);
    for (;;) {
        for (nfds_t i = 0; i < n; i++)
            if (connecting(fds[i].fd) && nb_masked(fds[i].fd))
                fds[i].fd = MASKED(fds[i].fd);
        uint64_t now = reshim_now_ns(), len = slice(end, now);
        int r;
        if (use_ppoll) {
            struct timespec ts = sys_timespec(len);
            r = real_ppoll(fds, n, len == FOREVER ? NULL : &ts, sigmask);
        } else {
            r = real_poll(fds, n, to_ms(len));
        }
        int e = errno;
        for (nfds_t i = 0; i < n; i++)
            if (fds[i].fd <= MASKED(FDTAB_MAX) && fds[i].fd >= MASKED(0)) {
                fds[i].fd -= INT_MIN;
                fds[i].revents = 0;
            }
        if (r < 0) {
            errno = e;
            return r;
        }
        for (nfds_t i = 0; i < n && r > 0; i++) {
            if (!fds[i].revents || !connecting(fds[i].fd))
                continue;
            unsigned add;
            enum nb_verdict v = nb_on_event(fds[i].fd, &add);
            if (v == NB_HIDE) {
                fds[i].revents = 0;
                r--;
            } else if (v == NB_DELIVER) {
                fds[i].revents |= (short)add;
            }
        }
        /* Everything was hidden, or the slice ended before the app's time:
         * wait on (a timeout of 0 makes exactly one pass). */
        if (r > 0 || reshim_now_ns() >= end)
            return r;
    }
}

static int reshim_poll(struct pollfd *fds, nfds_t n, int timeout)
{
    if (!REAL(poll)) {
        errno = ENOSYS;
        return -1;
    }
    if (!active_wait() || !retrying() || !mapped(fds, n * sizeof *fds))
        return real_poll(fds, n, timeout);
    return wait_poll(fds, n, timeout < 0 ? FOREVER : (uint64_t)timeout * 1000000ull, NULL,
                     false);
}

static int reshim_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                        const sigset_t *sigmask)
{
    if (!REAL(ppoll)) {
        errno = ENOSYS;
        return -1;
    }
    if (!active_wait() || !retrying() || !mapped(fds, n * sizeof *fds) || !valid_ts(ts))
        return real_ppoll(fds, n, ts, sigmask); /* the kernel says EFAULT or EINVAL */
    return wait_poll(fds, n, ts_ns(ts), sigmask, true);
}

/* ---- select / pselect ---------------------------------------------------- */

struct fdsets {
    fd_set r, w, e;
};

static void save_sets(struct fdsets *c, int nfds, fd_set *r, fd_set *w, fd_set *e)
{
    size_t bytes = ((size_t)nfds + 7) / 8;
    memset(c, 0, sizeof *c);
    if (r)
        memcpy(&c->r, r, bytes);
    if (w)
        memcpy(&c->w, w, bytes);
    if (e)
        memcpy(&c->e, e, bytes);
}

static void load_sets(const struct fdsets *c, int nfds, fd_set *r, fd_set *w, fd_set *e)
{
    size_t bytes = ((size_t)nfds + 7) / 8;
    if (r)
        memcpy(r, &c->r, bytes);
    if (w)
        memcpy(w, &c->w, bytes);
    if (e)
        memcpy(e, &c->e, bytes);
}

static bool in_any(int fd, fd_set *r, fd_set *w, fd_set *e)
{
    return (r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e));
}

/* Clears fd from every set; returns how many bits were set. */
static int clear_all(int fd, fd_set *r, fd_set *w, fd_set *e)
{
    int n = 0;
    if (r && FD_ISSET(fd, r))
        FD_CLR(fd, r), n++;
    if (w && FD_ISSET(fd, w))
        FD_CLR(fd, w), n++;
    if (e && FD_ISSET(fd, e))
        FD_CLR(fd, e), n++;
    return n;
}

static int wait_select(int nfds, fd_set *r, fd_set *w, fd_set *e, uint64_t timeout_ns,
                       const sigset_t *sigmask, bool use_pselect, struct timeval *app_tv)
{
    struct fdsets orig;
    uint64_t end = deadline_after(reshim_now_ns(), timeout_ns);
    save_sets(&orig, nfds, r, w, e);
    for (;;) {
        load_sets(&orig, nfds, r, w, e);
        for (int fd = 0; fd < nfds; fd++)
            if (in_any(fd, r, w, e) && connecting(fd) && nb_masked(fd))
                clear_all(fd, r, w, e);
        uint64_t now = reshim_now_ns(), len = slice(end, now);
        int n;
        if (use_pselect) {
            struct timespec ts = sys_timespec(len);
            n = real_pselect(nfds, r, w, e, len == FOREVER ? NULL : &ts, sigmask);
        } else {
            struct timeval tv = {(time_t)(len / 1000000000ull),
                                 (suseconds_t)((len % 1000000000ull + 999) / 1000)};
            if (tv.tv_usec >= 1000000)
                tv.tv_sec++, tv.tv_usec -= 1000000;
            n = real_select(nfds, r, w, e, len == FOREVER ? NULL : &tv);
        }
        if (n < 0) {
            int err = errno;
            load_sets(&orig, nfds, r, w, e); /* Linux leaves the sets alone on errors */
            if (app_tv) { /* Linux writes the time left on errors too */
                uint64_t t = reshim_now_ns(), left = end == FOREVER || t >= end ? 0 : end - t;
                app_tv->tv_sec = (time_t)(left / 1000000000ull);
                app_tv->tv_usec = (suseconds_t)(left % 1000000000ull / 1000);
            }
            errno = err;
            return n;
        }
        for (int fd = 0; fd < nfds && n > 0; fd++) {
            if (!in_any(fd, r, w, e) || !connecting(fd))
                continue;
            unsigned add;
            if (nb_on_event(fd, &add) == NB_HIDE)
                n -= clear_all(fd, r, w, e);
        }
        now = reshim_now_ns();
        if (n > 0 || now >= end) {
            if (app_tv) { /* Linux reports the time left */
                uint64_t left = end == FOREVER || now >= end ? 0 : end - now;
                app_tv->tv_sec = (time_t)(left / 1000000000ull);
                app_tv->tv_usec = (suseconds_t)(left % 1000000000ull / 1000);
            }
            if (n == 0)
                load_sets(&(struct fdsets){0}, nfds, r, w, e);
            return n;
        }
    }
}

static int reshim_select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    if (!REAL(select)) {
        errno = ENOSYS;
        return -1;
    }
    size_t bytes = nfds > 0 ? ((size_t)nfds + 7) / 8 : 0;
    if (!active_wait() || !retrying() || nfds < 0 || nfds > FD_SETSIZE ||
        (r && !mapped(r, bytes)) || (w && !mapped(w, bytes)) || (e && !mapped(e, bytes)) ||
        (tv && !mapped(tv, sizeof *tv)))
        return real_select(nfds, r, w, e, tv);
    uint64_t t = FOREVER;
    if (tv) {
        if (tv->tv_sec < 0 || tv->tv_usec < 0)
            return real_select(nfds, r, w, e, tv); /* EINVAL, from the kernel */
        t = (uint64_t)tv->tv_sec * 1000000000ull + (uint64_t)tv->tv_usec * 1000ull;
    }
    return wait_select(nfds, r, w, e, t, NULL, false, tv);
}

static int reshim_pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                          const sigset_t *sigmask)
{
    if (!REAL(pselect)) {
        errno = ENOSYS;
        return -1;
    }
    size_t bytes = nfds > 0 ? ((size_t)nfds + 7) / 8 : 0;
    if (!active_wait() || !retrying() || nfds < 0 || nfds > FD_SETSIZE || !valid_ts(ts) ||
        (r && !mapped(r, bytes)) || (w && !mapped(w, bytes)) || (e && !mapped(e, bytes)))
        return real_pselect(nfds, r, w, e, ts, sigmask);
    return wait_select(nfds, r, w, e, ts_ns(ts), sigmask, true, NULL);
}

/* ---- epoll --------------------------------------------------------------- */

enum epoll_kind { EP_WAIT, EP_PWAIT, EP_PWAIT2 };

static int wait_epoll(int epfd, struct epoll_event *ev, int maxev, uint64_t timeout_ns,
                      const sigset_t *sigmask, enum epoll_kind kind)
{
    uint64_t end = deadline_after(reshim_now_ns(), timeout_ns);
    for (;;) {
        uint64_t now = reshim_now_ns(), len = slice(end, now);
        int n;
        if (kind == EP_PWAIT2) {
            struct timespec ts = sys_timespec(len);
            n = real_epoll_pwait2(epfd, ev, maxev, len == FOREVER ? NULL : &ts, sigmask);
        } else if (kind == EP_PWAIT) {
            n = real_epoll_pwait(epfd, ev, maxev, to_ms(len), sigmask);
        } else {
            n = real_epoll_wait(epfd, ev, maxev, to_ms(len));
        }
        if (n <= 0) {
            if (n < 0 || reshim_now_ns() >= end)
                return n;
            continue;
        }
        int kept = 0;
        for (int i = 0; i < n; i++) {
            int fd = retrying() ? nb_epoll_fd(epfd, ev[i].data.u64, ev[i].events) : -1;
            unsigned add = 0;
            if (fd >= 0 && connecting(fd) && nb_on_event(fd, &add) == NB_HIDE)
                continue;
            if (add)
                ev[i].events |= EPOLLERR;
            ev[kept++] = ev[i];
        }
        if (kept > 0 || reshim_now_ns() >= end)
            return kept;
    }
}

static int reshim_epoll_wait(int epfd, struct epoll_event *ev, int maxev, int timeout)
{
    if (!REAL(epoll_wait)) {
        errno = ENOSYS;
        return -1;
    }
    if (!active_wait() || !retrying() || maxev <= 0)
        return real_epoll_wait(epfd, ev, maxev, timeout);
    return wait_epoll(epfd, ev, maxev, timeout < 0 ? FOREVER : (uint64_t)timeout * 1000000ull,
                      NULL, EP_WAIT);
}

static int reshim_epoll_pwait(int epfd, struct epoll_event *ev, int maxev, int timeout,
                              const sigset_t *sigmask)
{
    if (!REAL(epoll_pwait)) {
        errno = ENOSYS;
        return -1;
    }
    if (!active_wait() || !retrying() || maxev <= 0)
        return real_epoll_pwait(epfd, ev, maxev, timeout, sigmask);
    return wait_epoll(epfd, ev, maxev, timeout < 0 ? FOREVER : (uint64_t)timeout * 1000000ull,
                      sigmask, EP_PWAIT);
}

static int reshim_epoll_pwait2(int epfd, struct epoll_event *ev, int maxev,
                               const struct timespec *ts, const sigset_t *sigmask)
{
    if (!REAL(epoll_pwait2)) {
        errno = ENOSYS;
        return -1;
    }
    if (!active_wait() || !retrying() || maxev <= 0 || !valid_ts(ts))
        return real_epoll_pwait2(epfd, ev, maxev, ts, sigmask);
    return wait_epoll(epfd, ev, maxev, ts_ns(ts), sigmask, EP_PWAIT2);
}

static int reshim_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (!REAL(epoll_ctl)) {
        errno = ENOSYS;
        return -1;
    }
    if (!reshim_active())
        return real_epoll_ctl(epfd, op, fd, ev);
    return nb_epoll_ctl(epfd, op, fd, ev);
}

/* ---- exported symbols: one shape ----------------------------------------- */

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return reshim_poll(fds, n, timeout);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n && REAL(__poll_chk))
        return real___poll_chk(fds, n, timeout, fdslen); /* reports the overflow */
    return reshim_poll(fds, n, timeout);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *sigmask)
{
    return reshim_ppoll(fds, n, ts, sigmask);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                       const sigset_t *sigmask, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n && REAL(__ppoll_chk))
        return real___ppoll_chk(fds, n, ts, sigmask, fdslen);
    return reshim_ppoll(fds, n, ts, sigmask);
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    return reshim_select(nfds, r, w, e, tv);
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                   const sigset_t *sigmask)
{
    return reshim_pselect(nfds, r, w, e, ts, sigmask);
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int maxev, int timeout)
{
    return reshim_epoll_wait(epfd, ev, maxev, timeout);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int maxev, int timeout,
                       const sigset_t *sigmask)
{
    return reshim_epoll_pwait(epfd, ev, maxev, timeout, sigmask);
}

EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int maxev, const struct timespec *ts,
                        const sigset_t *sigmask)
{
    return reshim_epoll_pwait2(epfd, ev, maxev, ts, sigmask);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    return reshim_epoll_ctl(epfd, op, fd, ev);
}
