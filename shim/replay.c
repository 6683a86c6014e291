/* replay.c: replays of connections that broke before the peer could act
 * (see replay.h). Owns the per-fd replay words, the pool of kept bytes and
 * the resend. Never allocates (two lazily mapped regions); no locks: a
 * word changes by compare-and-swap, and a call that finds it contended
 * gives up replaying that connection (never a wrong resend). */
#define _GNU_SOURCE
#include "replay.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "atfork.h"
#include "attempt.h"
#include "config.h"
#include "log.h"
#include "nbconn.h"
#include "net.h"
#include "replay_proto.h"
#include "reshim.h"
#include "snapshot.h"
#include "sys.h"

enum rkind { RK_HTTP, RK_HELLO };
#define SLOT_NONE 0x3ffu
#define MAX_SLOTS 1023u

#define W(gen, st, kind, slot) \
    ((uint32_t)(gen) << 16 | (uint32_t)(st) << 12 | (uint32_t)(kind) << 11 | (uint32_t)(slot))
#define W_GEN(w) REPLAY_W_GEN(w)
#define W_ST(w) REPLAY_W_ST(w)
#define W_KIND(w) (((w) >> 11) & 0x1u)
#define W_POISON (1u << 10)
#define W_SLOT(w) ((w) & 0x3ffu)

/* The address of each destination slot: a slot is named after one address
 * (stats.c), so every connection to it reconnects there. */
struct dest_addr {
    socklen_t len;
    struct sockaddr_in6 sa; /* or a sockaddr_in */
};
static struct dest_addr dest_addrs[DEST_SLOTS];

struct slot {
    _Atomic uint64_t owner; /* its connection: fd + 1 | fdtab generation << 32; 0 free */
    uint32_t len;
    uint32_t mark; /* how far its bytes were judged (replay_classify) */
};

struct replay_fd *reshim_replay_tab;
static unsigned char *pool;
static struct slot slots[MAX_SLOTS];
static _Atomic unsigned nslots; /* 0 until the pool is mapped */
static uint32_t slot_size;
static _Atomic unsigned tracked_hw; /* highest fd ever tracked: bounds close_range */

/* reshim's own memory (sys_map): never counted as the app's mappings,
 * never from the app's allocator. */
static void *map_once(void **where, size_t bytes)
{
    void *p = __atomic_load_n(where, __ATOMIC_ACQUIRE);
    if (p)
        return p;
    p = sys_map(bytes);
    if (!p)
        return NULL;
    void *expected = NULL;
    if (!__atomic_compare_exchange_n(where, &expected, p, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        sys_unmap(p, bytes);
        return expected;
    }
    return p;
}

/* The pool and its slot size, once: slot_size is written by the one thread
 * that wins pool_once, before nslots is published (readers load nslots
 * first). */
static void pool_init(uint64_t replay_max)
{
    static _Atomic int pool_once;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&pool_once, &expected, 1))
        return; /* another thread maps it; until then nothing is kept */
    if (!map_once((void **)&pool, REPLAY_POOL_BYTES)) {
        atomic_store(&pool_once, 0);
        return;
    }
    uint64_t n = REPLAY_POOL_BYTES / replay_max;
    slot_size = (uint32_t)replay_max;
    atomic_store(&nslots, (unsigned)(n > MAX_SLOTS ? MAX_SLOTS : n ? n : 1));
}

static void held_add(int64_t d)
{
    uint64_t now = atomic_fetch_add_explicit(&reshim_stats.replay_held_bytes, (uint64_t)d, RLX) +
                   (uint64_t)d;
    uint64_t peak = ATOMIC_LOAD(&reshim_stats.replay_held_peak);
    while (d > 0 && now > peak &&
           !atomic_compare_exchange_weak_explicit(&reshim_stats.replay_held_peak, &peak, now,
                                                  RLX, RLX))
        ;
}

/* ---- tracking ------------------------------------------------------------ */

void replay_track(int fd, uint16_t gen, const struct sockaddr *addr, socklen_t len)
{
    const struct reshim_config *cfg = reshim_cfg();
    if (cfg->replay != REPLAY_SAFE || !cfg->retries || fd < 0 || (unsigned)fd >= FDTAB_MAX ||
        reshim_in_foreign_child() || !addr ||
        (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
        len > sizeof(struct sockaddr_in6))
        return;
    struct fdinfo fi = fdtab_get(fd);
    if (fi.stype != SOCK_STREAM || fi.gen != gen || !fi.dest || fi.dest >= DEST_SLOTS)
        return; /* slot 0 holds many addresses: which one is not known */
    struct replay_fd *tab = map_once((void **)&reshim_replay_tab,
                                     FDTAB_MAX * sizeof(struct replay_fd));
    if (!tab)
        return;
    if (cfg->replay_max && !atomic_load(&nslots))
        pool_init(cfg->replay_max);
    struct replay_fd *rf = &tab[fd];
    replay_forget(fd); /* a slot of the number's last connection */
    unsigned hw = atomic_load_explicit(&tracked_hw, RLX);
    while ((unsigned)fd > hw &&
           !atomic_compare_exchange_weak_explicit(&tracked_hw, &hw, (unsigned)fd, RLX, RLX))
        ;
    struct dest_addr *da = &dest_addrs[fi.dest];
    if (!__atomic_load_n(&da->len, __ATOMIC_ACQUIRE)) { /* the same bytes for every writer */
        memcpy(&da->sa, addr, len);
        __atomic_store_n(&da->len, len, __ATOMIC_RELEASE);
    }
    atomic_store_explicit(&rf->word, W(gen, RS_FRESH, RK_HTTP, SLOT_NONE), memory_order_release);
}

/* ---- slots ---------------------------------------------------------------- */

static unsigned char *slot_mem(unsigned i)
{
    return pool + (size_t)i * slot_size;
}

static void slot_release(unsigned i)
{
    if (i >= MAX_SLOTS)
        return;
    held_add(-(int64_t)slots[i].len);
    slots[i].len = 0;
    atomic_store_explicit(&slots[i].owner, 0, memory_order_release);
}

/* A free slot for fd, or one whose fd was closed without reshim seeing it.
 * A slot is its connection's from the moment it is claimed, before the
 * fd's word names it: only a closed or reused number gives it up. */
static unsigned slot_claim(int fd, uint16_t gen)
{
    uint64_t mine = (uint64_t)gen << 32 | (uint32_t)(fd + 1);
    unsigned n = atomic_load(&nslots);
    unsigned i = (unsigned)fd < n ? (unsigned)fd : n ? (unsigned)fd % n : 0; /* no division */
    for (unsigned k = 0; k < n; k++, i = i + 1 < n ? i + 1 : 0) {
        uint64_t cur = atomic_load_explicit(&slots[i].owner, RLX);
        if (cur) {
            if (fdtab_get((int)(uint32_t)cur - 1).gen == (uint16_t)(cur >> 32))
                continue;
            /* The owner's number was closed or reused: take its slot. */
            if (!atomic_compare_exchange_strong(&slots[i].owner, &cur, mine))
                continue;
            held_add(-(int64_t)slots[i].len);
        } else if (!atomic_compare_exchange_strong(&slots[i].owner, &cur, mine)) {
            continue;
        }
        slots[i].len = 0;
        slots[i].mark = 0;
        return i;
    }
    return SLOT_NONE;
}

static uint32_t never(uint32_t w)
{
    return W(W_GEN(w), RS_NEVER, 0, SLOT_NONE);
}

static bool held_state(uint32_t w)
{
    return W_ST(w) == RS_BUSY || W_ST(w) == RS_RESCUE;
}

/* Something happened that the word's state cannot tell (another thread got
 * there first): nothing is replayed on this connection any more. A held
 * word is poisoned for its holder to settle. */
static void give_up(struct replay_fd *rf)
{
    uint32_t cur = atomic_load(&rf->word);
    for (;;) {
        if (!cur || W_ST(cur) == RS_NEVER || (held_state(cur) && (cur & W_POISON)))
            return;
        uint32_t nw = held_state(cur) ? cur | W_POISON : never(cur);
        if (atomic_compare_exchange_weak(&rf->word, &cur, nw)) {
            if (!held_state(cur) && W_SLOT(cur) != SLOT_NONE)
                slot_release(W_SLOT(cur));
            return;
        }
    }
}

/* A thread that does not hold the word moves it from w to nw (releasing
 * w's slot when nw has none); true when it did. */
static bool move(struct replay_fd *rf, uint32_t w, uint32_t nw)
{
    if (!atomic_compare_exchange_strong(&rf->word, &w, nw)) {
        give_up(rf);
        return false;
    }
    if (W_SLOT(w) != SLOT_NONE && W_SLOT(nw) != W_SLOT(w))
        slot_release(W_SLOT(w));
    return true;
}

/* The holder of the word (held: as it set it) lets it go as nw. Poisoned
 * or forgotten meanwhile: the connection is given up, and the slot freed. */
static void settle(struct replay_fd *rf, uint32_t held, uint32_t nw)
{
    uint32_t w = held;
    if (atomic_compare_exchange_strong(&rf->word, &w, nw)) {
        if (W_SLOT(held) != SLOT_NONE && W_SLOT(nw) != W_SLOT(held))
            slot_release(W_SLOT(held));
        return;
    }
    if (W_SLOT(held) != SLOT_NONE)
        slot_release(W_SLOT(held));
    if (w == (held | W_POISON))
        atomic_compare_exchange_strong(&rf->word, &w, never(held));
}

/* ---- what was sent and received ------------------------------------------- */

/* r bytes of iov went out: keep them, and judge what has been sent. */
static void note_sent(struct replay_fd *rf, int fd, const struct iovec *iov, int cnt, size_t r)
{
    uint32_t w = atomic_load_explicit(&rf->word, memory_order_acquire);
    unsigned st = W_ST(w);
    if (st != RS_FRESH && st != RS_IDLE && st != RS_REQ)
        return; /* SKIP until a receive; BUSY or RESCUE: another thread's */
    uint16_t gen = W_GEN(w);
    unsigned slot = W_SLOT(w);
    if (st != RS_REQ)
        slot = slot_claim(fd, gen);
    uint32_t busy = W(gen, RS_BUSY, W_KIND(w), slot);
    if (!atomic_compare_exchange_strong(&rf->word, &w, busy)) {
        if (st != RS_REQ && slot != SLOT_NONE)
            slot_release(slot);
        give_up(rf); /* contended: never again */
        return;
    }
    uint32_t have = slot == SLOT_NONE ? 0 : slots[slot].len;
    enum rp_verdict v;
    if (slot == SLOT_NONE || have + r > slot_size) {
        ATOMIC_INC(&reshim_stats.replay_over_max);
        v = RP_SKIP;
    } else {
        unsigned char *m = slot_mem(slot) + have;
        size_t left = r;
        if (cnt == 1) { /* send, write: one buffer */
            memcpy(m, iov[0].iov_base, left);
            left = 0;
        }
        for (int i = 0; i < cnt && left; i++) {
            size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
            memcpy(m, iov[i].iov_base, n);
            m += n;
            left -= n;
        }
        slots[slot].len = have + (uint32_t)r;
        held_add((int64_t)r);
        v = replay_classify(slot_mem(slot), slots[slot].len, st == RS_FRESH || W_KIND(w) == RK_HELLO,
                            &slots[slot].mark);
    }
    uint32_t nw;
    switch (v) {
    case RP_HTTP: nw = W(gen, RS_REQ, RK_HTTP, slot); break;
    case RP_HELLO: nw = W(gen, RS_REQ, RK_HELLO, slot); break;
    case RP_SKIP: nw = W(gen, RS_SKIP, 0, SLOT_NONE); break;
    default: nw = W(gen, RS_NEVER, 0, SLOT_NONE); break;
    }
    settle(rf, busy, nw);
}

/* Something was received: the response began. */
static void note_received(struct replay_fd *rf)
{
    uint32_t w = atomic_load_explicit(&rf->word, memory_order_acquire);
    unsigned st = W_ST(w);
    if (st == RS_IDLE)
        return;
    if (held_state(w)) {
        give_up(rf);
        return;
    }
    /* A ClientHello answered: the handshake goes on, never replayed. */
    unsigned nst = st == RS_REQ && W_KIND(w) == RK_HELLO ? RS_NEVER : RS_IDLE;
    move(rf, w, W(W_GEN(w), nst, 0, SLOT_NONE));
}

/* ---- connecting again ------------------------------------------------------ */

static int policy_err(int e)
{
    return e == EPIPE || e == 0 ? ECONNRESET : e; /* a break, whatever its form */
}

static int resend(int fd, const unsigned char *b, size_t n)
{
    while (n) {
        ssize_t r = real_send(fd, b, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : ECONNRESET;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static void end_call(struct replay_call *rc, int err)
{
    if (!rc->active)
        return;
    rc->active = false;
    retry_end(&rc->rs, err);
}

/* The state a rescued connection goes back to: FRESH when nothing was kept. */
static uint32_t resumed(uint32_t held)
{
    unsigned slot = W_SLOT(held);
    return W(W_GEN(held), slot == SLOT_NONE ? RS_FRESH : RS_REQ, W_KIND(held), slot);
}

/* nbconn's answer for a non-blocking replay (under its lock). */
static void nb_done(int fd, uint16_t gen, bool ok)
{
    struct replay_fd *rf = &replay_tab()[fd];
    uint32_t w = atomic_load(&rf->word);
    if (W_GEN(w) != gen || W_ST(w) != RS_RESCUE)
        return; /* forgotten (the fd closed): slot_claim takes the slot back */
    settle(rf, w & ~W_POISON, ok ? resumed(w & ~W_POISON) : never(w));
}

/* The break err (0: end of file) on fd: connect again and resend what was
 * kept. RA_REDO: the app's call is to be made again (blocking sockets);
 * RA_HIDE: the break is hidden behind EAGAIN while nbconn connects again
 * (non-blocking ones); RA_DONE: the app gets what it got. */
static int rescue(struct replay_fd *rf, struct replay_call *rc, int fd, int err, bool rcv,
                  int msgflags)
{
    const struct reshim_config *cfg = reshim_cfg();
    struct fdinfo fi = fdtab_get(fd); /* read here, off the data path's way */
    uint32_t w = atomic_load_explicit(&rf->word, memory_order_acquire);
    unsigned st = W_ST(w);
    if ((st != RS_FRESH && st != RS_REQ) || W_GEN(w) != fi.gen || fi.phase != PH_CONNECTED)
        return RA_DONE; /* a connect that failed is the connect retry's business */
    if (!err && (st == RS_FRESH || W_KIND(w) == RK_HELLO)) {
        /* An end of file where nothing was sent, or only a ClientHello: the
         * peer closed on purpose and in order (a server that accepts and
         * closes; a TLS server that refuses a handshake), and that is its
         * answer: the app sees it as without reshim (CPython's
         * TCPCloserTest waits for exactly this), and the connection is
         * never replayed after it. A server going away resets what it has
         * not read; only a request gets a second chance after an end of
         * file (the idle keep-alive close, case 3). */
        give_up(rf);
        end_call(rc, 0);
        return RA_DONE;
    }
    int fl = real_fcntl(fd, F_GETFL);
    bool nonblocking = (msgflags & MSG_DONTWAIT) || (fl >= 0 && (fl & O_NONBLOCK));
    struct dest_addr *da = &dest_addrs[fi.dest < DEST_SLOTS ? fi.dest : 0];
    socklen_t alen = __atomic_load_n(&da->len, __ATOMIC_ACQUIRE);
    const struct sockaddr *addr = (const struct sockaddr *)&da->sa;
    if (fl < 0 || cfg->replay != REPLAY_SAFE || !alen || (nonblocking && !cfg->nonblock)) {
        end_call(rc, policy_err(err));
        return RA_DONE;
    }
    uint32_t held = W(W_GEN(w), RS_RESCUE, W_KIND(w), W_SLOT(w));
    if (!atomic_compare_exchange_strong(&rf->word, &w, held))
        return RA_DONE;
    if (!rc->active) {
        int rcase = st == RS_FRESH ? RPC_NOTHING : W_KIND(w) == RK_HELLO ? RPC_HELLO : RPC_REQUEST;
        uint64_t start = reshim_now_ns();
        uint64_t app = nonblocking ? 0 : attempt_app_timeout_ns(fd, rcv);
        rc->deadline_ns = start + cfg->retry_deadline_ns;
        if (app && start + app < rc->deadline_ns)
            rc->deadline_ns = start + app;
        retry_begin_replay(&rc->rs, fi.dest, addr->sa_family, rcase, start, rc->deadline_ns);
        rc->active = true;
        struct dest_slot *ds = reshim_dest(fi.dest);
        char eb[16];
        if (fi.dest && !atomic_exchange(&ds->replay_logged, 1))
            LOG_INFO("connection to %s broke (%s) before the peer could act on it (%s): "
                     "connecting again and resending; further replays there are counted, "
                     "not logged", ds->name, err ? reshim_errno_name(err, eb) : "end of file",
                     snap_replay_case_names[rcase]);
    }
    unsigned slot = W_SLOT(held);
    int last = policy_err(err);
    uint64_t delay;
    if (nonblocking) {
        if (retry_next(&rc->rs, addr, alen, last, reshim_now_ns(), &delay) &&
            nb_start_replay(fd, fi.gen, fi.dest, addr, alen, &rc->rs, delay, err ? err : -1,
                            slot == SLOT_NONE ? NULL : slot_mem(slot),
                            slot == SLOT_NONE ? 0 : slots[slot].len, nb_done)) {
            rc->active = false; /* the session goes on in nbconn */
            return RA_HIDE;
        }
        end_call(rc, last);
        settle(rf, held, W(W_GEN(held), RS_NEVER, 0, SLOT_NONE));
        return RA_DONE;
    }
    while (retry_next(&rc->rs, addr, alen, last, reshim_now_ns(), &delay)) {
        if (!attempt_sleep(delay)) {
            rc->rs.why = "stopped by a signal";
            break;
        }
        if (fdtab_get(fd).gen != fi.gen) {
            retry_abandon(&rc->rs); /* closed or replaced meanwhile: not ours any more */
            rc->active = false;
            return RA_DONE;
        }
        attempt_dissolve(fd);
        int a = attempt_connect(fd, addr, alen, rc->deadline_ns);
        if (a == ATTEMPT_DEADLINE || a == ATTEMPT_INTERRUPTED) {
            rc->rs.why = a == ATTEMPT_DEADLINE ? "deadline" : "stopped by a signal";
            break;
        }
        if (a != 0) {
            last = a;
            continue;
        }
        int e = slot == SLOT_NONE ? 0 : resend(fd, slot_mem(slot), slots[slot].len);
        if (e) {
            last = policy_err(e);
            continue;
        }
        /* Connected again, the kept bytes sent: the app's call goes again,
         * and what it sees decides what happens next. */
        settle(rf, held, resumed(held));
        return RA_REDO;
    }
    end_call(rc, last);
    settle(rf, held, W(W_GEN(held), RS_NEVER, 0, SLOT_NONE));
    return RA_DONE;
}

static bool is_break(int e)
{
    return e == ECONNRESET || e == EPIPE;
}

int replay_sent(struct replay_fd *rf, struct replay_call *rc, int fd, ssize_t r, int e,
                const struct iovec *iov, int cnt, int msgflags)
{
    if (r > 0) {
        note_sent(rf, fd, iov, cnt, (size_t)r);
        end_call(rc, 0);
        return RA_DONE;
    }
    /* A failed send sent nothing: only what went before matters. */
    if (r < 0 && is_break(e))
        return rescue(rf, rc, fd, e, false, msgflags);
    end_call(rc, r < 0 && policy_data_failure(e) ? e : 0);
    return RA_DONE;
}

int replay_received(struct replay_fd *rf, struct replay_call *rc, int fd, ssize_t r, int e,
                    size_t want, int msgflags)
{
    if (r > 0) {
        note_received(rf);
        end_call(rc, 0);
        return RA_DONE;
    }
    if ((r == 0 && want > 0) || (r < 0 && is_break(e)))
        return rescue(rf, rc, fd, r == 0 ? 0 : e, true, msgflags);
    end_call(rc, r < 0 && policy_data_failure(e) ? e : 0);
    return RA_DONE;
}

bool replay_so_error(int fd, struct fdinfo fi, int err)
{
    if (!is_break(err))
        return false;
    struct replay_fd *rf = replay_lookup(fd, fi.gen);
    if (!rf)
        return false;
    struct replay_call rc = {0};
    int v = rescue(rf, &rc, fd, err, true, 0);
    end_call(&rc, 0); /* connected again (blocking): the app goes on */
    return v != RA_DONE;
}

/* ---- the end of a connection ---------------------------------------------- */

void replay_never(int fd)
{
    struct replay_fd *tab = replay_tab();
    if (!tab || fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return;
    uint32_t w = atomic_load(&tab[fd].word);
    /* Read first: the vfork check (a system call) only for a slot in use. */
    if (W_ST(w) != RS_OFF && W_ST(w) != RS_NEVER && !reshim_in_foreign_child())
        give_up(&tab[fd]);
}

void replay_forget(int fd)
{
    struct replay_fd *tab = replay_tab();
    if (!tab || fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return;
    uint32_t w = atomic_load(&tab[fd].word);
    /* Read first: the vfork check (a system call) only for a slot in use. */
    if (!w || reshim_in_foreign_child())
        return;
    if (W_ST(w) == RS_BUSY || W_ST(w) == RS_RESCUE) {
        atomic_store(&tab[fd].word, 0); /* its holder finds it changed and stops */
        return;
    }
    if (atomic_compare_exchange_strong(&tab[fd].word, &w, 0) && W_SLOT(w) != SLOT_NONE)
        slot_release(W_SLOT(w));
}

/* In a fork child: the inherited connections are never replayed there (the
 * parent may go on using them). The parent's words stay. */
static void replay_atfork(int when)
{
    if (when != ATFORK_CHILD)
        return;
    /* The parent goes on using these connections: what it sends from now
     * on is not seen here, so the child never replays one of them. */
    struct replay_fd *tab = replay_tab();
    if (!tab)
        return;
    unsigned hw = atomic_load_explicit(&tracked_hw, RLX);
    for (unsigned fd = 0; fd <= hw && fd < FDTAB_MAX; fd++) {
        uint32_t w = atomic_load_explicit(&tab[fd].word, RLX);
        if (w && W_ST(w) != RS_NEVER)
            atomic_store_explicit(&tab[fd].word, never(w), RLX);
    }
    for (unsigned i = 0; i < MAX_SLOTS; i++)
        atomic_store_explicit(&slots[i].owner, 0, RLX);
    atomic_store(&reshim_stats.replay_held_bytes, 0);
}
RESHIM_ATFORK(replay_atfork, ATFORK_RANK_REPLAY);

void replay_forget_range(unsigned first, unsigned last)
{
    struct replay_fd *tab = replay_tab();
    if (!tab)
        return;
    unsigned hw = atomic_load_explicit(&tracked_hw, RLX);
    for (unsigned fd = first; fd <= last && fd <= hw; fd++)
        if (atomic_load_explicit(&tab[fd].word, RLX))
            replay_forget((int)fd);
}
