/* net.h: shared by the interposers of net.c and io.c. */
#ifndef RESHIM_NET_H
#define RESHIM_NET_H

#include "fdtab.h"
#include "real.h"
#include "reshim.h"

/* real_X, bound on first use; NULL only when libc lacks the symbol. */
#define REAL(name) (likely(real_##name) ? real_##name : (reshim_bind_symbols(), real_##name))

/* The app has just learned the outcome of a pending connect on fd (err 0:
 * connected). Counts it once. */
void reshim_connect_outcome(int fd, struct fdinfo fi, int err);

/* Counts the final outcome of one connect call (after its retries) for the
 * destination and its breaker. */
void reshim_connect_final(uint16_t dest, int err, unsigned retries, bool probe);

/* Forget fds passed in SCM_RIGHTS control messages (their numbers are new to us). */
struct msghdr;
void reshim_forget_passed_fds(const struct msghdr *msg);

/* "ECONNREFUSED" for the errnos reshim talks about, else "errno N". */
const char *reshim_errno_name(int err, char buf[16]);

#endif
