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

#endif
