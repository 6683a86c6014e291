/* net.h: shared by the interposers of net.c and io.c. */
#ifndef RESHIM_NET_H
#define RESHIM_NET_H

#include "fdtab.h"
#include "real.h"
#include "reshim.h"

/* real_X, bound on first use; NULL only when libc lacks the symbol. */
#define REAL(name) (likely(real_##name) ? real_##name : (reshim_bind_symbols(), real_##name))

/* Forget fds passed in SCM_RIGHTS control messages (their numbers are new to us). */
struct msghdr;
void reshim_forget_passed_fds(const struct msghdr *msg);

/* The blocking connect retry's steps (net.c), also used by a replay
 * (replay.c) to connect a broken socket again. */
#include <stdint.h>
#include <sys/socket.h>
/* Sleeps ns; false when a signal interrupted the sleep (and a handler
 * without SA_RESTART is installed). */
bool net_backoff_sleep(uint64_t ns);
/* Drops a half-open or broken connection so the socket can connect again. */
void net_dissolve(int fd);
#define ATTEMPT_DEADLINE (-1)
#define ATTEMPT_INTERRUPTED (-2)
/* One more connect of fd to addr, bounded by the deadline: 0, an errno,
 * ATTEMPT_DEADLINE (the attempt was dropped) or ATTEMPT_INTERRUPTED (a
 * signal; the attempt is still pending). */
int net_attempt(int fd, const struct sockaddr *addr, socklen_t len, uint64_t deadline);
/* The app's own timeout on fd (SO_SNDTIMEO, or SO_RCVTIMEO with rcv), in
 * ns; 0 when none. */
uint64_t net_app_timeout_ns(int fd, bool rcv);

#endif
