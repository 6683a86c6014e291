/* nbconn.c: non-blocking connect retries (see nbconn.h). Owns the table of
 * pending connects and the timer thread that reconnects sockets when their
 * backoff ends; the app's epoll registrations, which a backoff takes a
 * socket out of, are remembered below it (epreg.c). One mutex guards the
 * table; it is taken with every signal blocked (so a handler on the same
 * thread can never find it held) and never across a blocking call. The
 * timer thread blocks all signals and never counts its own calls. */
#define _GNU_SOURCE
#include "nbconn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "config.h"
#include "atfork.h"
#include "epreg.h"
#include "log.h"
#include "policy.h"
#include "real.h"
#include "reshim.h"
#include "retry.h"
#include "stats.h"
#include "sys.h"

#define NB_SLOTS 1024

enum nb_state { NB_FREE, NB_ATTEMPT, NB_BACKOFF, NB_FAILED };

struct nb_slot {
    int state;
    int fd;
    uint16_t gen;
    uint16_t dest;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct retry_session rs;
    uint64_t retry_at;
    int last_err, pending_err;
    /* A replay (replay.c): once connected again, the timer thread sends
     * these bytes before the app sees the socket; until then every wait and
     * read of the app is kept away from it. */
    bool replay;
    const unsigned char *rbuf;
    uint32_t rlen, rsent;
    nb_replay_done_fn rdone;
};

/* While a replay connects, the timer thread looks at it this often. */
#define REPLAY_TICK_NS 2000000ull

static struct nb_slot slots[NB_SLOTS];
static int slots_hw; /* slots[0..slots_hw) may be in use */
static pthread_mutex_t nb_mutex = PTHREAD_MUTEX_INITIALIZER;
static bool timer_running;
/* The timer thread's wake-up: a futex word each kick bumps (under the lock,
 * where the timer read it before it let go of the lock: no kick is lost). */
static atomic_int timer_kicks;

/* The table's lock. While it is held, the recursion guard is too: a call
 * into an interposed function on this thread (a sanitizer's runtime closes
 * its own files while it reports) passes straight through, and can never
 * try to take the lock again and deadlock. */
static void lock(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
    pthread_mutex_lock(&nb_mutex);
    GUARD_ENTER();
}

static void unlock(const sigset_t *old)
{
    GUARD_LEAVE();
    pthread_mutex_unlock(&nb_mutex);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static struct nb_slot *find(int fd)
{
    for (int i = 0; i < slots_hw; i++)
        if (slots[i].state != NB_FREE && slots[i].fd == fd)
            return &slots[i];
    return NULL;
}

/* The app has used the connection (its outcome was counted elsewhere), or
 * the number now means another socket: this slot must never act again. */
static bool stale(const struct nb_slot *s)
{
    struct fdinfo fi = fdtab_get(s->fd);
    return fi.gen != s->gen || fi.phase != PH_CONNECTING;
}

static void release(struct nb_slot *s)
{
    retry_abandon(&s->rs); /* nothing once the outcome was counted */
    if (s->replay && s->rdone) {
        s->rdone(s->fd, s->gen, false); /* closed or replaced: nothing more replayed */
        s->rdone = NULL;
    }
    s->state = NB_FREE;
    atomic_fetch_sub(&reshim_nb_active, 1);
}

/* The slot of fd's connect if it may still act (a stale one is released
 * first); NULL when there is none. Under the lock. */
static struct nb_slot *find_live(int fd)
{
    struct nb_slot *s = find(fd);
    if (s && stale(s)) {
        release(s);
        s = NULL;
    }
    return s;
}

/* A replay connecting again: the timer thread finishes it. */
static bool replaying(const struct nb_slot *s)
{
    return s->replay && s->state == NB_ATTEMPT;
}

/* Kept away from the app's waits and reads, and woken by the timer thread:
 * in a backoff, or a replay connecting again. */
static bool kept_from_app(const struct nb_slot *s)
{
    return s->state == NB_BACKOFF || replaying(s);
}

/* ---- epoll registrations (epreg.c) -------------------------------------- */

int nb_epoll_fd(int epfd, uint64_t data, uint32_t events)
{
    if (!epreg_any())
        return -1;
    sigset_t old;
    int fd = -1;
    lock(&old);
    for (int i = 0; i < slots_hw && fd < 0; i++)
        if (slots[i].state != NB_FREE && epreg_match(slots[i].fd, epfd, data, events))
            fd = slots[i].fd;
    unlock(&old);
    return fd;
}

/* ---- decisions ---------------------------------------------------------- */

/* Under the lock: may this failure be retried? If so the slot enters its
 * backoff and true is returned. */
static bool decide(struct nb_slot *s, int err, uint64_t now)
{
    uint64_t delay;
    if (!retry_next(&s->rs, (const struct sockaddr *)&s->addr, s->addrlen, err, now, &delay))
        return false;
    if (!s->replay)
        s->last_err = err;
    s->retry_at = now + delay;
    s->state = NB_BACKOFF;
    return true;
}

/* Under the lock: the call's outcome is known and final. A failure that
 * waits to be handed to the app keeps the fd in PH_CONNECTING until then, so
 * the app's SO_ERROR, connect or I/O asks us and not the kernel (which has
 * already given the error to reshim). */
static void finish(struct nb_slot *s, int err)
{
    if (s->state != NB_FAILED)
        fdtab_update(s->fd, s->gen, err ? PH_FAILED : PH_CONNECTED, s->dest);
    retry_end(&s->rs, err);
}

/* Under the lock: an attempt of the slot's connect failed with err. Either
 * it goes back into a backoff (true: out of its epoll sets, the timer thread
 * must be kicked) or the failure is final (false: NB_FAILED, counted, back in
 * its epoll sets for the app's wait to learn of it). */
static bool failed_attempt(struct nb_slot *s, int err, uint64_t now)
{
    if (decide(s, err, now)) {
        epreg_arm(s->fd, false); /* an unconnected socket reports EPOLLHUP */
        return true;
    }
    s->state = NB_FAILED;
    s->pending_err = s->replay ? s->last_err : err; /* a replay: the break itself */
    finish(s, err);
    if (s->replay && s->rdone) {
        s->rdone(s->fd, s->gen, false);
        s->rdone = NULL;
    }
    epreg_arm(s->fd, true);
    return false;
}

/* ---- the timer thread --------------------------------------------------- */

static void reconnect(struct nb_slot *s, uint64_t now)
{
    struct fdinfo fi = fdtab_get(s->fd);
    if (fi.gen != s->gen || fi.kind != FD_SOCK) {
        release(s); /* closed or replaced behind our back: never touch it */
        return;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&s->addr;
    int fl = real_fcntl(s->fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) /* the app made it blocking meanwhile */
        real_fcntl(s->fd, F_SETFL, fl | O_NONBLOCK);
    if (s->replay) { /* a broken or refused connection: drop it first */
        struct sockaddr unspec = {.sa_family = AF_UNSPEC};
        real_connect(s->fd, &unspec, sizeof unspec);
    }
    int r = real_connect(s->fd, sa, s->addrlen);
    if (r < 0 && errno == ECONNABORTED) /* reaps the failed attempt */
        r = real_connect(s->fd, sa, s->addrlen);
    int e0 = errno;
    if (fl >= 0 && !(fl & O_NONBLOCK))
        real_fcntl(s->fd, F_SETFL, fl);
    errno = e0;
    if (r == 0 || errno == EINPROGRESS || errno == EISCONN || errno == EALREADY) {
        s->state = NB_ATTEMPT;
        if (s->replay) {
            s->rsent = 0;
            s->retry_at = now + REPLAY_TICK_NS; /* watched by the timer thread */
        } else {
            epreg_arm(s->fd, true);
        }
        return;
    }
    failed_attempt(s, errno, now);
}

/* Under the lock, in the timer thread: a replay's new connection. Sends the
 * kept bytes once it is up, then hands the socket back to the app. */
static void replay_tick(struct nb_slot *s, uint64_t now)
{
    struct fdinfo fi = fdtab_get(s->fd);
    if (fi.gen != s->gen || fi.kind != FD_SOCK) {
        release(s);
        return;
    }
    int err;
    switch (fdtab_connect_result(s->fd, -1, &err)) {
    case CONN_PENDING:
        if (now >= s->rs.call.deadline_ns) {
            s->rs.why = "deadline";
            failed_attempt(s, ETIMEDOUT, now);
            return;
        }
        s->retry_at = now + REPLAY_TICK_NS;
        return;
    case CONN_FAILED:
        failed_attempt(s, err, now);
        return;
    case CONN_NEITHER:
        failed_attempt(s, ECONNRESET, now);
        return;
    case CONN_CONNECTED:
        break;
    }
    while (s->rsent < s->rlen) {
        ssize_t n = real_send(s->fd, s->rbuf + s->rsent, s->rlen - s->rsent,
                              MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            s->retry_at = now + REPLAY_TICK_NS;
            return;
        }
        if (n <= 0) {
            failed_attempt(s, n < 0 && errno != EPIPE ? errno : ECONNRESET, now);
            return;
        }
        s->rsent += (uint32_t)n;
    }
    /* Connected again and resent: the app's waits and reads see it again. */
    fdtab_update(s->fd, s->gen, PH_CONNECTED, s->dest);
    retry_end(&s->rs, 0);
    if (s->rdone) {
        s->rdone(s->fd, s->gen, true);
        s->rdone = NULL;
    }
    epreg_arm(s->fd, true);
    s->state = NB_FREE;
    atomic_fetch_sub(&reshim_nb_active, 1);
}

static void *timer_main(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    reshim_guard = 1; /* this thread's own calls are never counted or retried */
    pthread_mutex_lock(&nb_mutex);
    for (;;) {
        uint64_t now = reshim_now_ns(), earliest = 0;
        for (int i = 0; i < slots_hw; i++) {
            struct nb_slot *s = &slots[i];
            if (!kept_from_app(s))
                continue;
            bool ticking = replaying(s);
            if (s->retry_at <= now)
                ticking ? replay_tick(s, now) : reconnect(s, now);
            if (replaying(s) && s->retry_at <= now + REPLAY_TICK_NS)
                replay_tick(s, now); /* a loopback connect is up at once */
            if (kept_from_app(s) && (!earliest || s->retry_at < earliest))
                earliest = s->retry_at;
        }
        uint64_t after = reshim_now_ns();
        if (earliest && earliest <= after)
            continue; /* due already */
        int seen = atomic_load(&timer_kicks);
        pthread_mutex_unlock(&nb_mutex);
        sys_futex_wait(&timer_kicks, seen, earliest ? earliest - after : SYS_FOREVER);
        pthread_mutex_lock(&nb_mutex);
    }
    return NULL;
}

/* Called without the lock. */
static void timer_kick(void)
{
    sigset_t old;
    bool start = false;
    lock(&old);
    if (!timer_running) {
        start = timer_running = true;
    } else {
        atomic_fetch_add(&timer_kicks, 1);
        sys_futex_wake(&timer_kicks, 1);
    }
    unlock(&old);
    if (start) {
        int rc = reshim_thread_start(timer_main, 128 * 1024);
        if (rc != 0) {
            LOG_ERROR("cannot start the retry timer thread (%d): non-blocking connects "
                      "waiting for a retry will wait until their deadline", rc);
            lock(&old);
            timer_running = false;
            unlock(&old);
        }
    }
}

/* A free slot for fd's connect to addr (a stale slot of an earlier connect
 * on this number released first), zeroed and named; NULL when all are
 * taken. Under the lock. */
static struct nb_slot *claim(int fd, uint16_t gen, uint16_t dest, const struct sockaddr *addr,
                             socklen_t len)
{
    struct nb_slot *s = find(fd);
    if (s)
        release(s);
    s = NULL;
    for (int i = 0; i < NB_SLOTS && !s; i++)
        if (slots[i].state == NB_FREE)
            s = &slots[i];
    if (!s)
        return NULL;
    if (s - slots >= slots_hw)
        slots_hw = (int)(s - slots) + 1;
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->gen = gen;
    s->dest = dest;
    memcpy(&s->addr, addr, len);
    s->addrlen = len;
    return s;
}

/* ---- entry points from the wrappers ------------------------------------- */

bool nb_start(int fd, struct fdinfo fi, uint16_t dest, const struct sockaddr *addr,
              socklen_t len, uint64_t start, int err)
{
    const struct reshim_config *cfg = reshim_cfg();
    if (!cfg->nonblock || !cfg->retries || len > sizeof(struct sockaddr_storage) ||
        reshim_in_foreign_child())
        return false;
    if (err && policy_connect_class(addr->sa_family, err) == RC_NEVER)
        return false;
    sigset_t old;
    bool hidden = false, kick = false;
    lock(&old);
    struct nb_slot *s = claim(fd, fi.gen, dest, addr, len);
    if (s) {
        retry_begin(&s->rs, dest, addr->sa_family, true, start, start + cfg->retry_deadline_ns);
        s->state = NB_ATTEMPT;
        atomic_fetch_add(&reshim_nb_active, 1);
        if (err) {
            if (decide(s, err, reshim_now_ns())) {
                epreg_arm(fd, false); /* an unconnected socket reports EPOLLHUP */
                hidden = kick = true;
            } else {
                release(s); /* the caller counts the failure */
            }
        }
    }
    unlock(&old);
    if (kick)
        timer_kick();
    return hidden;
}

bool nb_start_replay(int fd, uint16_t gen, uint16_t dest, const struct sockaddr *addr,
                     socklen_t len, const struct retry_session *rs, uint64_t delay, int break_err,
                     const unsigned char *buf, uint32_t buflen, nb_replay_done_fn done)
{
    if (len > sizeof(struct sockaddr_storage) || reshim_in_foreign_child())
        return false;
    sigset_t old;
    lock(&old);
    struct nb_slot *s = claim(fd, gen, dest, addr, len);
    if (s) {
        s->rs = *rs;
        s->replay = true;
        s->rbuf = buf;
        s->rlen = buflen;
        s->rdone = done;
        s->last_err = break_err;
        s->retry_at = reshim_now_ns() + delay;
        s->state = NB_BACKOFF;
        atomic_fetch_add(&reshim_nb_active, 1);
        fdtab_update(fd, gen, PH_CONNECTING, dest);
        epreg_arm(fd, false); /* a broken socket reports EPOLLHUP */
    }
    unlock(&old);
    if (s)
        timer_kick();
    return s != NULL;
}

enum nb_verdict nb_on_event(int fd, unsigned *add)
{
    *add = 0;
    if (!atomic_load_explicit(&reshim_nb_active, memory_order_relaxed))
        return NB_NOT_OURS;
    int saved = errno;
    sigset_t old;
    enum nb_verdict v = NB_NOT_OURS;
    bool kick = false;
    lock(&old);
    struct nb_slot *s = find_live(fd);
    if (s && replaying(s)) {
        v = NB_HIDE; /* the timer thread finishes it */
    } else if (s) {
        switch (s->state) {
        case NB_BACKOFF:
            v = NB_HIDE;
            break;
        case NB_FAILED:
            *add = POLLERR;
            v = NB_DELIVER;
            break;
        case NB_ATTEMPT: {
            int soerr;
            switch (fdtab_connect_result(fd, -1, &soerr)) {
            case CONN_CONNECTED:
                finish(s, 0);
                release(s);
                v = NB_DELIVER;
                break;
            case CONN_PENDING:
                v = NB_NOT_OURS; /* the event was another fd's (same epoll data) */
                break;
            case CONN_NEITHER:
                /* Neither connected nor failed: someone else took the error.
                 * Step aside and let the app see what it sees. */
                release(s);
                v = NB_NOT_OURS;
                break;
            case CONN_FAILED:
                if (failed_attempt(s, soerr, reshim_now_ns())) {
                    kick = true;
                    v = NB_HIDE;
                } else {
                    *add = POLLERR;
                    v = NB_DELIVER;
                }
                break;
            }
            break;
        }
        }
    }
    unlock(&old);
    if (kick)
        timer_kick();
    errno = saved;
    return v;
}

bool nb_masked(int fd)
{
    if (!atomic_load_explicit(&reshim_nb_active, memory_order_relaxed))
        return false;
    sigset_t old;
    lock(&old);
    struct nb_slot *s = find(fd);
    bool m = s && kept_from_app(s);
    unlock(&old);
    return m;
}

uint64_t nb_next_wake(void)
{
    if (!atomic_load_explicit(&reshim_nb_active, memory_order_relaxed))
        return 0;
    sigset_t old;
    uint64_t earliest = 0;
    lock(&old);
    for (int i = 0; i < slots_hw; i++)
        if (kept_from_app(&slots[i]) && (!earliest || slots[i].retry_at < earliest))
            earliest = slots[i].retry_at;
    unlock(&old);
    return earliest;
}

/* Delivers a pending final error once (as the kernel clears sk_err). */
static bool take_pending(int fd, int *err, bool reset_socket)
{
    if (!atomic_load_explicit(&reshim_nb_active, memory_order_relaxed))
        return false;
    int saved = errno; /* our own getsockopt/getpeername must not show */
    sigset_t old;
    bool handled = false, kick = false;
    lock(&old);
    struct nb_slot *s = find_live(fd);
    if (s && replaying(s)) {
        *err = 0; /* the timer thread finishes it: "not yet" to the app */
        handled = true;
        s = NULL;
    }
    if (s && s->state == NB_ATTEMPT) {
        /* The app asks before any wait of ours saw the outcome (a refusal on
         * loopback is known at once). Look, as a wait would. */
        int soerr;
        enum conn_result cr = fdtab_connect_result(fd, -1, &soerr);
        if (cr == CONN_CONNECTED) {
            finish(s, 0); /* connected: the kernel answers from here on */
            release(s);
        }
        if (cr != CONN_FAILED)
            s = NULL; /* in progress or connected: the kernel answers */
        else if (failed_attempt(s, soerr, reshim_now_ns()))
            kick = true; /* back into a backoff: answered below */
        /* else final: delivered below, once */
    }
    if (s) {
        if (s->state == NB_FAILED) {
            *err = s->pending_err;
            if (reset_socket) { /* as the kernel's own answer would have, reset it */
                struct sockaddr unspec = {.sa_family = AF_UNSPEC};
                real_connect(fd, &unspec, sizeof unspec);
            }
            fdtab_update(s->fd, s->gen, PH_FAILED, s->dest);
            release(s);
            handled = true;
        } else if (s->state == NB_BACKOFF) {
            *err = 0; /* still "in progress" as far as the app can tell */
            handled = true;
        }
    }
    unlock(&old);
    if (kick)
        timer_kick();
    errno = saved;
    return handled;
}

bool nb_so_error(int fd, int *err)
{
    if (!take_pending(fd, err, false))
        return false;
    if (*err < 0)
        *err = ECONNRESET; /* a replay's end of file, asked as an error */
    return true;
}

bool nb_connect_again(int fd, int *err)
{
    if (!take_pending(fd, err, true))
        return false;
    if (*err == 0)
        *err = EALREADY;
    else if (*err < 0)
        *err = ECONNRESET;
    return true;
}

bool nb_io_error(int fd, int *err)
{
    if (!take_pending(fd, err, false))
        return false;
    if (*err == 0)
        *err = EAGAIN;
    return true;
}

void nb_forget(int fd)
{
    if (reshim_in_foreign_child())
        return; /* a vfork child shares our memory: the parent's state stays */
    epreg_clear(fd); /* the kernel drops registrations of a closed fd too */
    if (!atomic_load_explicit(&reshim_nb_active, memory_order_relaxed))
        return;
    sigset_t old;
    lock(&old);
    struct nb_slot *s = find(fd);
    if (s)
        release(s);
    unlock(&old);
}

void nb_forget_range(unsigned first, unsigned last)
{
    if (reshim_in_foreign_child())
        return;
    epreg_clear_range(first, last);
    if (!atomic_load_explicit(&reshim_nb_active, memory_order_relaxed))
        return;
    sigset_t old;
    lock(&old);
    for (int i = 0; i < slots_hw; i++)
        if (slots[i].state != NB_FREE && (unsigned)slots[i].fd >= first &&
            (unsigned)slots[i].fd <= last)
            release(&slots[i]);
    unlock(&old);
}

int nb_dup_over(int fd, int fd2, int flags, bool is_dup3)
{
    if (!atomic_load_explicit(&reshim_nb_active, memory_order_relaxed) ||
        reshim_in_foreign_child())
        return is_dup3 ? real_dup3(fd, fd2, flags) : real_dup2(fd, fd2);
    sigset_t old;
    lock(&old);
    int r = is_dup3 ? real_dup3(fd, fd2, flags) : real_dup2(fd, fd2);
    int e = errno;
    if (r >= 0) {
        struct nb_slot *s = find(fd2);
        if (s)
            release(s);
        epreg_clear(fd2);
    }
    unlock(&old);
    errno = e;
    return r;
}

static void nb_atfork(int phase)
{
    if (phase == ATFORK_PREPARE) {
        pthread_mutex_lock(&nb_mutex);
    } else if (phase == ATFORK_PARENT) {
        pthread_mutex_unlock(&nb_mutex);
    } else {
        /* The child shares the parent's sockets; the parent's retries go on
         * there. The child forgets them and has no timer thread. */
        pthread_mutex_init(&nb_mutex, NULL);
        for (int i = 0; i < slots_hw; i++)
            slots[i].state = NB_FREE;
        slots_hw = 0;
        atomic_store(&reshim_nb_active, 0);
        timer_running = false;
    }
}
RESHIM_ATFORK(nb_atfork, ATFORK_RANK_NBCONN);
