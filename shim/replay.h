/* replay.h: a connection that breaks (reset, broken pipe, end of file)
 * before the peer could have acted on anything sent is connected again and
 * the same bytes are sent again (libreshim(7), RESHIM_REPLAY). Three cases: nothing
 * sent or received yet; only a TLS ClientHello sent, nothing received; one
 * safe bodiless HTTP/1.x request sent since the last byte received, no byte
 * of its response yet (replay_proto.h judges the bytes).
 *
 * State exists only for TCP sockets that connected through reshim (a word
 * per fd in a lazily touched mmap); every other fd costs one load. The
 * bytes kept for a resend live in reshim's own mapping, bounded per
 * connection (RESHIM_REPLAY_MAX) and in total (REPLAY_POOL_BYTES), and are
 * released when the response begins. The same socket is connected again
 * (connect AF_UNSPEC, then connect: research retry-anchors.md section 7), so
 * its number, flags, options, bound address and epoll registrations stay the
 * app's. The retry session (retry.h) decides, counts and logs. A blocking
 * socket is connected again inside the app's call, which is then made
 * again; a non-blocking one gets EAGAIN while nbconn.c connects it again
 * and resends, its waits and reads kept away from it meanwhile, so an
 * event loop is never blocked. Hot-path rules: no locks, no allocation;
 * async-signal-safe. */
#ifndef RESHIM_REPLAY_H
#define RESHIM_REPLAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fdtab.h"
#include "retry.h"
#include "stats.h"

#define REPLAY_POOL_BYTES (1u << 20) /* all connections' kept bytes together */

/* The per-fd word: gen (16 bits, the fd's fdtab generation) | state (4) | kind (1)
 * | poison (1) | slot (10). gen and state 0: never tracked. A thread that
 * holds the word (BUSY, RESCUE) is the only one to touch its slot; another
 * that meets a held word sets poison instead (something happened meanwhile:
 * the holder then gives the connection up). */
enum rstate {
    RS_OFF,    /* not tracked */
    RS_FRESH,  /* connected, nothing sent or received (case 1) */
    RS_REQ,    /* bytes sent since the last receive, kept in the slot */
    RS_IDLE,   /* received something, nothing sent since */
    RS_SKIP,   /* this request may not be replayed; the next one may */
    RS_NEVER,  /* nothing more is ever replayed on this connection */
    RS_BUSY,   /* a thread is updating the slot (short, no system call) */
    RS_RESCUE, /* a thread is connecting it again */
};
#define REPLAY_W_GEN(w) ((uint16_t)((w) >> 16))
#define REPLAY_W_ST(w) (((w) >> 12) & 0xfu)

struct replay_fd {
    _Atomic uint32_t word;
};
extern struct replay_fd *reshim_replay_tab; /* NULL until a connection is tracked */

/* The table, once mapped (another thread may be mapping it: an acquire load,
 * a plain load on x86). Every reader goes through here. */
static inline struct replay_fd *replay_tab(void)
{
    return __atomic_load_n(&reshim_replay_tab, __ATOMIC_ACQUIRE);
}

/* The replay state of fd (its fdtab generation gen) if it may still be
 * replayed (hot path: one load). */
static inline struct replay_fd *replay_lookup(int fd, uint16_t gen)
{
    struct replay_fd *tab = replay_tab();
    if (!tab || fd < 0 || (unsigned)fd >= FDTAB_MAX)
        return NULL;
    uint32_t w = atomic_load_explicit(&tab[fd].word, memory_order_acquire);
    if (REPLAY_W_GEN(w) != gen || REPLAY_W_ST(w) == RS_OFF || REPLAY_W_ST(w) == RS_NEVER)
        return NULL;
    return &tab[fd];
}

/* One app call that saw a break: the session spans the calls made again. */
struct replay_call {
    bool active;
    struct retry_session rs;
    uint64_t deadline_ns;
};

/* fd (generation gen) connected to addr through reshim: track it. */
void replay_track(int fd, uint16_t gen, const struct sockaddr *addr, socklen_t len);

/* What the app's call does next. */
enum { RA_DONE, /* return what the real call returned */
       RA_REDO, /* connected again and resent: make the call again */
       RA_HIDE, /* being connected again in the background: return EAGAIN */ };

/* After a send-class call on a tracked fd: r and its errno e, the bytes the
 * app passed (iov, cnt; read only when r > 0). The fd's table entry is read
 * again only when its connection broke (not passed along on every call). */
int replay_sent(struct replay_fd *rf, struct replay_call *rc, int fd, ssize_t r, int e,
                const struct iovec *iov, int cnt, int msgflags);
/* After a receive-class call asking for want bytes. */
int replay_received(struct replay_fd *rf, struct replay_call *rc, int fd, ssize_t r, int e,
                    size_t want, int msgflags);

/* The app read SO_ERROR and got err: a break of a connection nothing was
 * sent or received on (an event loop asks once its connect completed, and
 * a reset may have come meanwhile). True when the break is taken over (a
 * replay: the app is to read 0, as for a connection that is fine). */
bool replay_so_error(int fd, struct fdinfo fi, int err);

/* The app did something after which nothing may be replayed on fd
 * (shutdown for writing, sendfile, splice). */
void replay_never(int fd);
/* fd is closed or replaced: its kept bytes are released. */
void replay_forget(int fd);
void replay_forget_range(unsigned first, unsigned last);

#endif
