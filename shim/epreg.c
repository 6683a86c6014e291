/* epreg.c: the app's epoll registrations, remembered (see epreg.h), so that
 * a socket waiting out a connect backoff (nbconn.c) can be taken out of
 * every epoll set it is in and put back as the app registered it. One
 * record per fd and epoll set (two sets per fd), in a table mapped on first
 * use in the shim's own memory (sys_map), read and written with atomics
 * and no lock: the app's epoll_ctl on one thread never waits for another.
 * Calls only real_*, sys_* and state.c; what nbconn.c knows (is this fd held out)
 * is handed in by its caller, and the count of its retries in flight
 * (reshim_nb_active) lives here, below it. */
#define _GNU_SOURCE
#include "epreg.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "fdtab.h"
#include "real.h"
#include "reshim.h"
#include "sys.h"

struct epreg1 {
    _Atomic int epfd_plus1; /* 0: no registration known */
    _Atomic uint32_t events;
    _Atomic uint64_t data;
    _Atomic int suspended;  /* reshim took it out of the epoll set for a backoff */
};

#define EPREG_SETS 2 /* epoll sets remembered per fd (a third replaces the first) */
struct epreg {
    struct epreg1 set[EPREG_SETS];
    _Atomic int is_epfd; /* this fd number was used as an epoll instance */
};

/* nbconn.c's count of connect retries in flight (epreg.h), kept here,
 * below it, so that the short path of a MOD reads it without a call. */
atomic_int reshim_nb_active;

static struct epreg *epregs;
static _Atomic unsigned epregs_hw; /* highest fd ever recorded */

static bool epregs_map(void)
{
    if (epregs)
        return true;
    void *p = sys_map(FDTAB_MAX * sizeof(struct epreg)); /* never the app's memory */
    if (!p)
        return false;
    void *expected = NULL;
    if (!__atomic_compare_exchange_n(&epregs, &expected, p, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        sys_unmap(p, FDTAB_MAX * sizeof(struct epreg));
    return true;
}

void epreg_clear(int fd)
{
    if (!epregs || fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return;
    if (atomic_load_explicit(&epregs[fd].is_epfd, memory_order_relaxed)) {
        /* An epoll instance closes: no record may ever re-add a socket to
         * whatever epoll set gets this number next. */
        atomic_store(&epregs[fd].is_epfd, 0);
        unsigned hw = atomic_load(&epregs_hw);
        for (unsigned other = 0; other <= hw && other < FDTAB_MAX; other++)
            for (int i = 0; i < EPREG_SETS; i++) {
                struct epreg1 *r = &epregs[other].set[i];
                int cur = fd + 1;
                if (atomic_compare_exchange_strong(&r->epfd_plus1, &cur, 0))
                    atomic_store(&r->suspended, 0);
            }
    }
    for (int i = 0; i < EPREG_SETS; i++) {
        struct epreg1 *r = &epregs[fd].set[i];
        if (atomic_load_explicit(&r->epfd_plus1, memory_order_relaxed)) {
            atomic_store(&r->epfd_plus1, 0);
            atomic_store(&r->suspended, 0);
        }
    }
}

/* The record of fd's registration on epfd; with make, a free (or the first)
 * one when there is none. */
static inline __attribute__((always_inline)) struct epreg1 *epreg_of(int fd, int epfd, bool make)
{
    struct epreg1 *free_one = NULL;
    for (int i = 0; i < EPREG_SETS; i++) {
        struct epreg1 *r = &epregs[fd].set[i];
        int cur = atomic_load(&r->epfd_plus1);
        if (cur == epfd + 1)
            return r;
        if (!cur && !free_one)
            free_one = r;
    }
    if (!make)
        return NULL;
    return free_one ? free_one : &epregs[fd].set[0];
}

/* The general case of epreg_ctl (r: fd's record on epfd, if known). */
static __attribute__((noinline)) int epoll_ctl_general(int epfd, int op, int fd,
                                                       struct epoll_event *ev, struct epreg1 *r,
                                                       bool (*held)(int fd))
{
    if (fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return real_epoll_ctl(epfd, op, fd, ev);
    /* A known registration is changed as the kernel's is: a vfork child
     * shares the epoll instance, so the record stays true to it. Only a new
     * record (or the table's first mapping) is for the process that owns
     * the memory: asked last, it costs a system call. */
    if (!r && (reshim_in_foreign_child() || !epregs_map()))
        return real_epoll_ctl(epfd, op, fd, ev);
    bool ours = r && atomic_load(&r->suspended);
    if (ours && op == EPOLL_CTL_ADD) {
        errno = EEXIST; /* it is registered, only held out of the set by reshim */
        return -1;
    }
    if (!ours && (op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && ev && held(fd)) {
        /* Registered during a backoff: added when the socket reconnects. A
         * DEL first gets the kernel's verdict on epfd and fd (EBADF, EINVAL,
         * ENOENT for a MOD of nothing, or "was there" for an ADD). */
        int rc = real_epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        if (op == EPOLL_CTL_MOD && rc != 0)
            return rc;
        if (op == EPOLL_CTL_ADD && rc == 0) {
            errno = EEXIST;
            return -1;
        }
        if (op == EPOLL_CTL_ADD && errno != ENOENT)
            return rc;
        ours = true;
    } else if (!ours) {
        int rc = real_epoll_ctl(epfd, op, fd, ev);
        if (rc != 0)
            return rc;
    }
    /* Either the kernel took it, or reshim holds it out of the set for now. */
    if (op == EPOLL_CTL_DEL) {
        if (r) {
            atomic_store(&r->epfd_plus1, 0);
            atomic_store(&r->suspended, 0);
        }
        return 0;
    }
    if (!ev)
        return 0;
    if (r) {
        /* Known on this epfd: only what it asks for changes, in place. */
        atomic_store_explicit(&r->events, ev->events, memory_order_release);
        atomic_store_explicit(&r->data, ev->data.u64, memory_order_release);
        if (ours != (atomic_load_explicit(&r->suspended, memory_order_relaxed) != 0))
            atomic_store(&r->suspended, ours ? 1 : 0);
        return 0;
    }
    if (epfd >= 0 && (unsigned)epfd < FDTAB_MAX)
        atomic_store(&epregs[epfd].is_epfd, 1);
    unsigned ehw = atomic_load(&epregs_hw);
    while (epfd >= 0 && (unsigned)epfd > ehw &&
           !atomic_compare_exchange_weak(&epregs_hw, &ehw, (unsigned)epfd))
        ;
    r = epreg_of(fd, epfd, true);
    atomic_store(&r->epfd_plus1, 0);
    atomic_store(&r->events, ev->events);
    atomic_store(&r->data, ev->data.u64);
    atomic_store(&r->suspended, ours ? 1 : 0);
    atomic_store(&r->epfd_plus1, epfd + 1);
    unsigned hw = atomic_load(&epregs_hw);
    while ((unsigned)fd > hw && !atomic_compare_exchange_weak(&epregs_hw, &hw, (unsigned)fd))
        ;
    return 0;
}

int epreg_ctl(int epfd, int op, int fd, struct epoll_event *ev, bool (*held)(int fd))
{
    struct epreg1 *r =
        epregs && fd >= 0 && (unsigned)fd < FDTAB_MAX ? epreg_of(fd, epfd, false) : NULL;
    if (r && op == EPOLL_CTL_MOD && ev && !atomic_load_explicit(&r->suspended, memory_order_relaxed) &&
        !atomic_load_explicit(&reshim_nb_active, memory_order_relaxed)) {
        /* An event loop's MOD on every request, in short: what the general
         * case does when reshim holds nothing out of the set. */
        int rc = real_epoll_ctl(epfd, op, fd, ev);
        if (rc == 0) {
            atomic_store_explicit(&r->events, ev->events, memory_order_release);
            atomic_store_explicit(&r->data, ev->data.u64, memory_order_release);
        }
        return rc;
    }
    return epoll_ctl_general(epfd, op, fd, ev, r, held);
}

void epreg_arm(int fd, bool on)
{
    if (!epregs || fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return;
    int saved = errno;
    for (int i = 0; i < EPREG_SETS; i++) {
        struct epreg1 *r = &epregs[fd].set[i];
        int epfd = atomic_load(&r->epfd_plus1) - 1;
        if (epfd < 0)
            continue;
        if (!on && !atomic_load(&r->suspended)) {
            if (real_epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == 0)
                atomic_store(&r->suspended, 1);
        } else if (on && atomic_load(&r->suspended)) {
            struct epoll_event ev = {.events = atomic_load(&r->events),
                                     .data.u64 = atomic_load(&r->data)};
            real_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
            atomic_store(&r->suspended, 0);
        }
    }
    errno = saved;
}

void epreg_clear_range(unsigned first, unsigned last)
{
    unsigned hw = atomic_load(&epregs_hw);
    for (unsigned fd = first; fd <= last && fd <= hw && fd < FDTAB_MAX; fd++)
        epreg_clear((int)fd);
}

bool epreg_any(void)
{
    return epregs != NULL;
}

bool epreg_match(int fd, int epfd, uint64_t data, uint32_t events)
{
    if (!epregs || fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return false;
    struct epreg1 *r = epreg_of(fd, epfd, false);
    /* A suspended registration is out of the set: an event with the
     * same data belongs to another fd. */
    return r && atomic_load(&r->data) == data && !atomic_load(&r->suspended) &&
           (events & (atomic_load(&r->events) | EPOLLERR | EPOLLHUP));
}
