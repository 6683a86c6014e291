/* net.h: shared by the interposers of net.c and io.c. The blocking connect
 * retry's steps, used by net.c and replay.c, are attempt.h's. */
#ifndef RESHIM_NET_H
#define RESHIM_NET_H

#include "fdtab.h"
#include "real.h"
#include "reshim.h"

/* REAL(name): real.h. */

/* Forget fds passed in SCM_RIGHTS control messages (their numbers are new to us). */
struct msghdr;
void reshim_forget_passed_fds(const struct msghdr *msg);

#endif
