/* nbconn.h: retries of non-blocking connects. While a failed attempt waits
 * out its backoff, its failure is hidden from the app's waits (wait.c); a
 * timer thread reconnects the same socket when the backoff ends, so the app
 * just sees a connect that took longer. When retries run out, the real error
 * is delivered exactly as the kernel would have: POLLERR in the wait, once
 * from getsockopt(SO_ERROR), a repeated connect, or the first I/O. */
#ifndef RESHIM_NBCONN_H
#define RESHIM_NBCONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "epreg.h"
#include "fdtab.h"

/* reshim_nb_active (epreg.h): the slots in use; 0 keeps every wait on its
 * fast path. */

/* A non-blocking connect returned EINPROGRESS (or failed at once): take it
 * over if it may be retried. For an immediate failure (err != 0), returns
 * true when the failure is now hidden (the app gets EINPROGRESS). */
bool nb_start(int fd, struct fdinfo fi, uint16_t dest, const struct sockaddr *addr,
              socklen_t len, uint64_t start, int err);

/* A replay (replay.c) of a non-blocking connection that broke: the socket
 * is connected again after delay by the timer thread, which sends buf
 * (buflen bytes, kept alive by the caller until done is called) before the
 * app's waits and reads see it again; meanwhile they see nothing, as during
 * a connect's backoff. The session rs (begun, its first retry taken) goes
 * on deciding. done(fd, gen, ok) is called once, under the table's lock:
 * ok when resent, false when retries ran out (the app is then given
 * break_err: an errno, or -1 for an end of file) or the fd went away. */
struct retry_session;
typedef void (*nb_replay_done_fn)(int fd, uint16_t gen, bool ok);
bool nb_start_replay(int fd, uint16_t gen, uint16_t dest, const struct sockaddr *addr,
                     socklen_t len, const struct retry_session *rs, uint64_t delay, int break_err,
                     const unsigned char *buf, uint32_t buflen, nb_replay_done_fn done);

enum nb_verdict { NB_NOT_OURS, NB_DELIVER, NB_HIDE };
/* The app's wait reported events on fd. NB_HIDE: drop them; NB_DELIVER:
 * pass them on, OR-ing *add (POLLERR when a final failure is pending). */
enum nb_verdict nb_on_event(int fd, unsigned *add);

/* Is fd waiting out a backoff (to be left out of the real wait)? */
bool nb_masked(int fd);
/* The earliest monotonic time a masked fd comes back; 0 when none. */
uint64_t nb_next_wake(void);

/* The app asks for the outcome. Returns true when reshim answers instead of
 * the kernel: *err is the answer (0: still in progress / connected). */
bool nb_so_error(int fd, int *err);
/* A repeated connect: true when reshim answers; returns via *err (EALREADY
 * while retrying, the real error once when retries ran out). */
bool nb_connect_again(int fd, int *err);
/* First I/O on a socket whose final error is pending: true and *err (-1:
 * an end of file, from a replay that ran out). */
bool nb_io_error(int fd, int *err);
/* fd is closed or replaced: forget it. */
void nb_forget(int fd);
void nb_forget_range(unsigned first, unsigned last);
/* dup2/dup3(fd, fd2): done under the table's lock, so the timer thread can
 * never reconnect fd2's old retry onto what fd2 becomes; forgets it only if
 * the dup happened. */
int nb_dup_over(int fd, int fd2, int flags, bool is_dup3);

/* The app's epoll_ctl: remembered (epreg.c), so a backoff can take fd out
 * of the set and put it back; while reshim holds it out, the app's changes
 * are kept and applied when it goes back. Returns what epoll_ctl returns.
 * Inline: an event loop's MOD on every request costs no extra call. */
static inline int nb_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    return epreg_ctl(epfd, op, fd, ev, nb_masked);
}
/* The fd of an active slot registered on epfd with this data, whose
 * registration could have produced these events; -1 if none. */
int nb_epoll_fd(int epfd, uint64_t data, uint32_t events);


#endif
