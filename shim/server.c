/* server.c: the stats thread. Serves the line protocol of the stats socket
 * (stats, watch MS, metrics, trim, heap N, config, version, help) to at most
 * 32 local clients of the same uid (or root); the snapshot it answers with
 * is snapfill.c's, the listener is listener.c's (placed by rundir.c:
 * $RESHIM_RUN_DIR/<pid>.sock, else the abstract @reshim-<uid>/<pid>), the
 * answers answer.c's, the RESHIM_PUSH datagrams push.c's, the destructor's
 * wake-up pipe wake.c's. Owns the thread, its poll loop and the clients.
 *
 * The thread starts late (at the first slow point after init, a
 * reshim_slow_point) and opens its socket only once the process is 100 ms old,
 * runs with every signal blocked and the recursion guard held (its own I/O
 * is never counted, never retried), and never blocks: one poll() loop, all
 * sockets non-blocking, every client with a bounded input buffer and an
 * output buffer of its own, so a slow, silent or hostile client never delays
 * the app and never starves another client.
 *
 * Never allocates through the app's malloc: buffers come from raw mmap
 * system calls (not counted as the app's memory), snapshots are static.
 * Descriptors are checked (fstat identity) before every use and before any
 * close: an app that closes every fd may reuse our numbers, and we must then
 * never read, write or close what has become the app's. */
#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "answer.h"
#include "answerjson.h"
#include "atfork.h"
#include "budget.h"
#include "heapprof.h"
#include "log.h"
#include "push.h"
#include "net.h"
#include "stats.h"
#include "listener.h"
#include "snapfill.h"
#include "sys.h"
#include "wake.h"

#define MS_NS 1000000ull
#define SEC_NS 1000000000ull

#define START_DELAY_NS (100 * MS_NS) /* no thread, no socket before this */
#define MAX_CLIENTS 32
#define LINE_MAX_BYTES 4096          /* longest request line */
#define IN_CAP (LINE_MAX_BYTES + 1)  /* the line and its "\n" */
#define IDLE_NS (30 * SEC_NS)        /* a client that asks nothing for this long */
#define STALL_NS (10 * SEC_NS)       /* a client that does not read its answer */
#define STOP_WAIT_NS (100 * MS_NS)   /* the destructor waits this long for the thread */
#define STACK_SIZE (128 * 1024)
#define ACCEPT_BATCH 64
#define DRAIN_MAX (64 * 1024)        /* unread input discarded before a close */
#define LINGERS 32                   /* refused connections that get their error line */
#define LINGER_NS SEC_NS             /* ... and are closed after this, or at their EOF */
#define MAX_WAIT_MS 1000


static atomic_int stop_req;         /* the destructor asks the thread to stop */
/* The thread's phase: WAITING out its start delay (no descriptor, no file
 * of ours yet), SERVING, or CANCELLED by the destructor during the delay:
 * then the thread opens nothing, and exit need not wait for it (a
 * short-lived process, python3 -c pass, pays no round trip to the thread
 * at exit). */
enum { PH_WAITING, PH_SERVING, PH_CANCELLED };
static atomic_int phase;
static atomic_int running;          /* the thread is in its loop */

static void late_start(void);

void server_init(reshim_getenv_fn get, void *ctx)
{
    answer_init(get, ctx);
    snap_fill_start();
    reshim_late_arm(late_start);
}

/* ---- the thread's state --------------------------------------------------- */

struct client {
    struct sys_owned sock;   /* sock.fd -1: free slot */
    bool eof;            /* the client half-closed */
    bool closing;        /* close once the output is sent */
    uint32_t watch_ms;   /* 0: not watching */
    uint64_t next_frame; /* watch: when the next frame is due */
    uint64_t active;     /* last request, or last answer sent in full */
    uint64_t progress;   /* output: last byte the client took (or when it became pending) */
    size_t in_len;
    char *out;           /* raw mapping of out_cap bytes, or NULL */
    size_t out_cap, out_len, out_off;
    char in[IN_CAP];
};

static struct client clients[MAX_CLIENTS];
/* Connections that got their last line (an error) and our EOF: their input
 * is read and dropped until they close or LINGER_NS passes, so that a
 * client still sending its request is not reset before it reads the line. */
static struct sys_owned lingering[LINGERS];
static uint64_t linger_until[LINGERS];
static uint64_t lsn_pause_until; /* accepts paused (a full fd table) until then */

/* The thread's snapshot, taken at most once per loop turn and shared by
 * every answer of that turn; the destructor has its own. */
static struct reshim_snapshot snap_thread, snap_exit;
static uint64_t turn, snap_turn;

/* Empty tables (static zeroes would say fd 0). */
static bool tables_ready;
static void tables_init(void)
{
    tables_ready = true;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        memset(&clients[i], 0, offsetof(struct client, in));
        clients[i].sock.fd = -1;
    }
    for (int i = 0; i < LINGERS; i++)
        lingering[i].fd = -1;
}

static const struct reshim_snapshot *thread_snapshot(void)
{
    if (snap_turn != turn) {
        snap_fill(&snap_thread);
        snap_turn = turn;
    }
    return &snap_thread;
}

/* ---- client output ------------------------------------------------------- */

static bool out_pending(const struct client *c)
{
    return c->out_off < c->out_len;
}

/* Room for an answer of up to need bytes (the output is empty). */
static bool out_reserve(struct client *c, size_t need)
{
    if (need < ANSWER_SMALL)
        need = ANSWER_SMALL;
    if (c->out && c->out_cap >= need)
        return true;
    size_t cap = sys_page_round(need);
    char *p = sys_map(cap);
    if (!p)
        return false;
    sys_unmap(c->out, c->out_cap);
    c->out = p;
    c->out_cap = cap;
    return true;
}

/* The answers (answer.c) are written straight into the client's buffer. */
static char *client_room(void *ctx, size_t need, size_t *cap)
{
    struct client *c = ctx;
    if (!out_reserve(c, need))
        return NULL;
    c->out_len = c->out_off = 0;
    *cap = c->out_cap;
    return c->out;
}

#define ANSWER_TO(c) {client_room, (c), {0}, 0}

/* The answer in a->b is the client's output now; ok false: no room, the
 * client is closed. */
static void reply_done(struct client *c, const struct answer *a, bool ok, uint64_t now)
{
    if (!ok) {
        c->closing = true;
        return;
    }
    c->out_len = a->b.len;
    c->out_off = 0;
    c->progress = a->done_ns ? a->done_ns : now;
}

static void start_watch(struct client *c, uint64_t ms, uint64_t now)
{
    c->watch_ms = (uint32_t)ms;
    c->next_frame = now; /* the first frame at once */
}

static void handle_request(struct client *c, const char *line, size_t len, uint64_t now)
{
    struct answer a = ANSWER_TO(c);
    uint32_t watch_ms = 0;
    enum answer_result r = answer_request(&a, line, len, thread_snapshot, now, &watch_ms);
    if (r == ANSWER_NONE)
        return;
    c->active = now;
    if (r == ANSWER_WATCH)
        start_watch(c, watch_ms, now);
    else
        reply_done(c, &a, r == ANSWER_TEXT, now);
}

/* ---- clients: life and I/O ------------------------------------------------ */

static void client_reset(struct client *c)
{
    sys_unmap(c->out, c->out_cap);
    c->out = NULL;
    c->out_cap = c->out_len = c->out_off = 0;
    c->in_len = 0;
    c->eof = c->closing = false;
    c->watch_ms = 0;
    c->sock.fd = -1;
}

/* Discards what the client sent and we did not read (a unix socket closed
 * with unread input resets the peer, which may then lose our last line). */
static bool drain(int fd)
{
    char tmp[4096];
    for (size_t got = 0; got < DRAIN_MAX;) {
        ssize_t n = sys_recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n <= 0)
            return true; /* EOF, or an error: nothing more will come */
        got += (size_t)n;
    }
    return false;
}

/* Our side is done (the last line is queued): EOF to the client, then its
 * input is dropped until it closes (bounded), or the fd is closed now. */
static void linger(int fd, uint64_t now)
{
    sys_shutdown(fd, SHUT_WR);
    if (drain(fd)) {
        sys_close(fd);
        return;
    }
    for (int i = 0; i < LINGERS; i++)
        if (lingering[i].fd < 0) {
            if (!sys_own_take(&lingering[i], fd))
                break;
            linger_until[i] = now + LINGER_NS;
            return;
        }
    sys_close(fd);
}

static void linger_check(int i, uint64_t now, bool readable)
{
    struct sys_owned *o = &lingering[i];
    if (o->fd < 0)
        return;
    if (!sys_own_ok(o)) {
        o->fd = -1;
        return;
    }
    if ((readable && drain(o->fd)) || now >= linger_until[i])
        sys_own_close(o);
}

static void client_close(struct client *c)
{
    if (sys_own_ok(&c->sock)) {
        drain(c->sock.fd);
        sys_close(c->sock.fd);
    }
    client_reset(c);
}

/* After its last answer (an error that ends the connection). */
static void client_finish(struct client *c, uint64_t now)
{
    if (sys_own_ok(&c->sock))
        linger(c->sock.fd, now);
    client_reset(c);
}

/* The descriptor is no longer ours (closed or reused by the app): forget it. */
static void client_forget(struct client *c)
{
    client_reset(c);
}

static void client_flush(struct client *c, uint64_t now)
{
    if (!out_pending(c))
        return;
    if (!sys_own_ok(&c->sock)) {
        client_forget(c);
        return;
    }
    while (out_pending(c)) {
        ssize_t n = sys_send(c->sock.fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->progress = now;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        client_close(c); /* EPIPE, ECONNRESET: the client is gone */
        return;
    }
    c->out_len = c->out_off = 0;
    c->active = now;
}

static void client_read(struct client *c)
{
    if (c->in_len >= IN_CAP || c->eof)
        return;
    if (!sys_own_ok(&c->sock)) {
        client_forget(c);
        return;
    }
    ssize_t n;
    do
        n = sys_recv(c->sock.fd, c->in + c->in_len, IN_CAP - c->in_len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        c->in_len += (size_t)n;
    else if (n == 0)
        c->eof = true;
    else if (errno != EAGAIN && errno != EWOULDBLOCK)
        client_close(c);
}

/* One request per client per loop turn, and only once the previous answer
 * is sent: answers stay in order, and no client holds the thread. */
static void client_work(struct client *c, uint64_t now)
{
    if (c->sock.fd < 0 || c->watch_ms || c->closing || out_pending(c))
        return;
    char *nl = memchr(c->in, '\n', c->in_len);
    if (nl) {
        size_t len = (size_t)(nl - c->in);
        handle_request(c, c->in, len, now);
        size_t rest = c->in_len - len - 1;
        memmove(c->in, nl + 1, rest);
        c->in_len = rest;
    } else if (c->in_len >= IN_CAP) {
        struct answer a = ANSWER_TO(c);
        reply_done(c, &a, answer_error(&a, "request too long"), now);
        c->closing = true;
        c->in_len = 0;
    } else if (c->eof && c->in_len) {
        /* The last line, without its newline. */
        size_t len = c->in_len;
        c->in_len = 0;
        handle_request(c, c->in, len, now);
    }
}

static void client_timers(struct client *c, uint64_t now)
{
    if (c->sock.fd < 0)
        return;
    if (c->closing && !out_pending(c)) {
        client_finish(c, now);
        return;
    }
    bool done;
    if (out_pending(c))
        done = now - c->progress >= STALL_NS; /* it does not read */
    else if (c->eof && !c->in_len && !c->watch_ms)
        done = true;                          /* every answer sent */
    else
        done = !c->watch_ms && now - c->active >= IDLE_NS; /* it asks nothing */
    if (done)
        client_close(c);
}

static void watch_frame(struct client *c, uint64_t now)
{
    if (c->sock.fd < 0 || !c->watch_ms || now < c->next_frame)
        return;
    uint64_t step = (uint64_t)c->watch_ms * MS_NS;
    /* Skipped, not queued, while the previous frame is unsent. */
    if (!out_pending(c)) {
        struct answer a = ANSWER_TO(c);
        reply_done(c, &a, answer_stats(&a, thread_snapshot()), now);
        client_flush(c, now);
    }
    c->next_frame += step;
    if (c->next_frame <= now)
        c->next_frame += ((now - c->next_frame) / step + 1) * step;
}

/* Refuses a fresh connection with one error line, {"error":msg}. */
static void refuse(int fd, const char *msg, uint64_t now)
{
    struct snap_error e = {.has_error = true};
    char line[256];
    struct sbuf b;
    snap_word(e.error, sizeof e.error, msg);
    sb_init(&b, line, sizeof line);
    snap_error_json(&e, &b);
    sys_send(fd, line, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    linger(fd, now);
}

static void accept_clients(uint64_t now)
{
    uid_t me = geteuid();
    /* A process that changed its credentials (a daemon that dropped root,
     * a fork that setuid'd) is not dumpable: the kernel keeps its new uid
     * from ptrace and from /proc/PID; its stats are root's only, too. */
    bool same_uid_ok = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1;
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        int fd = reshim_fd_above_stdio(
            sys_accept4(listener_fd(), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                lsn_pause_until = now + 100 * MS_NS; /* do not spin on a full fd table */
            return;
        }
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (sys_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0 ||
            (cr.uid != 0 && cr.uid != me)) {
            refuse(fd, "permission denied", now);
            continue;
        }
        if (cr.uid != 0 && !same_uid_ok) { /* as the kernel keeps it out of /proc/PID */
            refuse(fd, "permission denied: the process is not dumpable (it changed its uid or "
                       "said so); ask as root", now);
            continue;
        }
        struct client *c = NULL;
        for (int i = 0; i < MAX_CLIENTS && !c; i++)
            if (clients[i].sock.fd < 0)
                c = &clients[i];
        if (!c) {
            refuse(fd, "too many clients", now);
            continue;
        }
        client_reset(c);
        if (!sys_own_take(&c->sock, fd)) {
            sys_close(fd);
            continue;
        }
        c->active = c->progress = now;
    }
}

/* ---- the thread ------------------------------------------------------------ */

static int poll_ms(uint64_t now, uint64_t deadline)
{
    if (deadline <= now)
        return 0;
    uint64_t ms = (deadline - now + MS_NS - 1) / MS_NS;
    return ms > MAX_WAIT_MS ? MAX_WAIT_MS : (int)ms;
}

static bool stopping(void)
{
    int s = atomic_load_explicit(&reshim_state, memory_order_acquire);
    return atomic_load(&stop_req) || s == RS_TORN_DOWN || s == RS_DISABLED;
}

static void *srv_main(void *arg)
{
    (void)arg;
    GUARD_ENTER(); /* everything this thread does passes straight through */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    atomic_store(&running, 1);
    if (stopping())
        goto out;
    prctl(PR_SET_NAME, "reshim-stats", 0, 0, 0);
    const struct reshim_config *cfg = reshim_cfg();
    /* No descriptor at all (no socket, no wake pipe, no periodic push) in
     * the first START_DELAY_NS: most short-lived processes (shell
     * pipelines, a 500-process start-up benchmark, a test's child that
     * lists its open fds) are gone before then and never see one of ours.
     * A futex on stop_req, not a pipe, ends this wait at exit. */
    for (;;) {
        if (stopping())
            goto out;
        uint64_t age = reshim_now_ns() - snap_fill_t0_ns();
        if (age >= START_DELAY_NS)
            break;
        sys_futex_wait(&stop_req, 0, START_DELAY_NS - age);
    }
    int waiting = PH_WAITING;
    if (!atomic_compare_exchange_strong(&phase, &waiting, PH_SERVING))
        goto out; /* the destructor came first: open nothing */
    tables_init();
    wake_keep(); /* before the loop's first stopping(): server_exit sees it */
    uint64_t now = reshim_now_ns();
    listener_open(now, snap_fill_t0_ns());
    uint64_t next_push = cfg->push[0] ? now : UINT64_MAX;

    for (;;) {
        if (stopping())
            break;
        now = reshim_now_ns();
        turn++;
        listener_maintain(now, snap_fill_t0_ns());
        wake_keep();
        if (now >= next_push) {
            push_periodic(thread_snapshot());
            next_push += cfg->interval_ns;
            if (next_push <= now)
                next_push = now + cfg->interval_ns;
        }
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &clients[i];
            if (c->sock.fd < 0)
                continue;
            client_work(c, now);
            client_flush(c, now);
            watch_frame(c, now);
            client_timers(c, now);
        }

        /* Wait: for the listener, the clients, the next timer. */
        struct pollfd pf[MAX_CLIENTS + LINGERS + 2];
        int who[MAX_CLIENTS + LINGERS + 2];
        nfds_t n = 0;
        uint64_t deadline = now + (uint64_t)MAX_WAIT_MS * MS_NS;
        if (next_push < deadline)
            deadline = next_push;
        if (wake_fd() >= 0) {
            pf[n] = (struct pollfd){wake_fd(), POLLIN, 0};
            who[n++] = -1;
        }
        int lfd = listener_fd();
        if (lfd >= 0 && now >= lsn_pause_until) {
            pf[n] = (struct pollfd){lfd, POLLIN, 0};
            who[n++] = -2;
        } else if (lfd >= 0 && lsn_pause_until < deadline) {
            deadline = lsn_pause_until;
        }
        if (lfd < 0 && listener_next() < deadline)
            deadline = listener_next();
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &clients[i];
            if (c->sock.fd < 0)
                continue;
            short ev = 0;
            if (!c->watch_ms && !c->closing && !c->eof && c->in_len < IN_CAP)
                ev |= POLLIN;
            if (out_pending(c)) {
                ev |= POLLOUT;
                if (c->progress + STALL_NS < deadline)
                    deadline = c->progress + STALL_NS;
            } else if (c->watch_ms) {
                if (c->next_frame < deadline)
                    deadline = c->next_frame;
            } else if (c->active + IDLE_NS < deadline) {
                deadline = c->active + IDLE_NS;
            }
            if (c->watch_ms && out_pending(c) && c->next_frame < deadline)
                deadline = c->next_frame; /* to skip frames on time */
            pf[n] = (struct pollfd){c->sock.fd, ev, 0};
            who[n++] = i;
        }
        for (int i = 0; i < LINGERS; i++) {
            linger_check(i, now, false);
            if (lingering[i].fd < 0)
                continue;
            if (linger_until[i] < deadline)
                deadline = linger_until[i];
            pf[n] = (struct pollfd){lingering[i].fd, POLLIN, 0};
            who[n++] = -3 - i;
        }
        /* A complete request waiting (pipelined) is served without waiting. */
        for (int i = 0; i < MAX_CLIENTS; i++) {
            struct client *c = &clients[i];
            if (c->sock.fd >= 0 && !c->watch_ms && !c->closing && !out_pending(c) &&
                (memchr(c->in, '\n', c->in_len) || c->in_len >= IN_CAP ||
                 (c->eof && c->in_len)))
                deadline = now;
        }
        int r = sys_poll(pf, n, poll_ms(now, deadline));
        if (r < 0 && errno != EINTR) {
            struct timespec ts = {0, 10 * (long)MS_NS}; /* never spin */
            nanosleep(&ts, NULL);
            continue;
        }
        if (r <= 0)
            continue;
        now = reshim_now_ns();
        for (nfds_t k = 0; k < n; k++) {
            short re = pf[k].revents;
            if (!re)
                continue;
            if (who[k] <= -3) {
                int i = -3 - who[k];
                if (lingering[i].fd != pf[k].fd)
                    continue; /* the slot was reused in this turn */
                if (re & POLLNVAL)
                    lingering[i].fd = -1;
                else
                    linger_check(i, now, true);
            } else if (who[k] == -1) {
                if (re & POLLNVAL)
                    wake_lost();
                else
                    wake_drain();
            } else if (who[k] == -2) {
                if (!(re & POLLNVAL) && listener_ours())
                    accept_clients(now);
                else
                    listener_lost();
            } else {
                struct client *c = &clients[who[k]];
                if (c->sock.fd != pf[k].fd)
                    continue;
                if (re & POLLNVAL) {
                    client_forget(c);
                    continue;
                }
                if (re & POLLIN)
                    client_read(c);
                if (c->sock.fd >= 0 && (re & (POLLERR | POLLHUP)))
                    client_close(c);
                else if (c->sock.fd >= 0 && (re & POLLOUT))
                    client_flush(c, now);
            }
        }
    }
out:
    for (int i = 0; tables_ready && i < MAX_CLIENTS; i++)
        if (clients[i].sock.fd >= 0)
            client_close(&clients[i]);
    for (int i = 0; tables_ready && i < LINGERS; i++)
        sys_own_close(&lingering[i]);
    listener_close();
    push_close();
    atomic_store(&running, 0);
    return NULL;
}

static void start_thread(void)
{
    int rc = reshim_thread_start(srv_main, STACK_SIZE);
    if (rc != 0)
        LOG_ERROR("cannot start the stats thread (%d): no stats socket, no pushed stats", rc);
}

/* At a slow point (reshim_slow_point), while armed: starts the thread. */
static void late_start(void)
{
    if (atomic_load_explicit(&reshim_state, memory_order_acquire) != RS_ACTIVE)
        return;
    int saved = errno;
    /* Also from a signal handler that interrupted malloc or free: what
     * pthread_create allocates comes from the bootstrap arena then
     * (reshim_thread_start), never from the allocator's locks. */
    if (!reshim_in_foreign_child() && !atomic_load(&stop_req)) {
        int expected = 1;
        if (atomic_compare_exchange_strong(&reshim_late_armed, &expected, 0))
            start_thread();
    }
    errno = saved;
}

/* ---- fork and exit ---------------------------------------------------------- */

/* fork child (single-threaded): the parent's listener and clients are
 * closed (only our own descriptors; the parent's socket file is left
 * alone), counters of the server reset, and the late start re-armed for the
 * child's own pid. */
static void server_atfork(int when)
{
    if (when != ATFORK_CHILD)
        return;
    GUARD_ENTER();
    /* The thread is not inherited; its descriptors are (the parent keeps
     * its own copies). The parent's socket file is the parent's. */
    if (tables_ready) {
        for (int i = 0; i < MAX_CLIENTS; i++)
            sys_own_close(&clients[i].sock);
        for (int i = 0; i < LINGERS; i++)
            sys_own_close(&lingering[i]);
        /* The client buffers are forgotten, not unmapped: the fork may have
         * come in the middle of their update (copy-on-write pages the child
         * never touches). */
        tables_init();
    }
    listener_forget();
    wake_forget();
    push_forget();
    lsn_pause_until = 0;
    answer_forget();
    snap_turn = turn = 0;
    atomic_store(&running, 0);
    atomic_store(&stop_req, 0);
    atomic_store(&phase, PH_WAITING);
    snap_fill_start();
    reshim_late_arm(late_start);
    GUARD_LEAVE();
}
RESHIM_ATFORK(server_atfork, ATFORK_RANK_SERVER);

void server_exit(void)
{
    int saved = errno;
    GUARD_ENTER();
    reshim_late_arm(NULL);
    atomic_store(&stop_req, 1);
    int waiting = PH_WAITING;
    if (atomic_compare_exchange_strong(&phase, &waiting, PH_CANCELLED)) {
        /* Still in its start delay (or never started): it will open
         * nothing; woken, it ends on its own. */
        if (atomic_load(&running))
            sys_futex_wake(&stop_req, 1);
    } else if (atomic_load(&running)) {
        uint64_t start = reshim_now_ns();
        sys_futex_wake(&stop_req, 1); /* the start delay */
        wake_send(start + STOP_WAIT_NS / 2);
        /* It wakes at once and takes microseconds to finish: yield first. */
        for (int spin = 0; atomic_load(&running) && reshim_now_ns() - start < STOP_WAIT_NS;
             spin++) {
            struct timespec ts = {0, 100000};
            if (spin < 50)
                sched_yield();
            else
                nanosleep(&ts, NULL);
        }
        if (atomic_load(&running))
            listener_unlink(); /* the thread is busy (a long trim): remove the file anyway */
    }
    if (reshim_cfg()->push[0]) {
        snap_fill(&snap_exit);
        push_final(&snap_exit);
    }
    GUARD_LEAVE();
    errno = saved;
}
