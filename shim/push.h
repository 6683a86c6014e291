/* push.h: the stats line pushed as a datagram to RESHIM_PUSH (push.c). */
#ifndef RESHIM_PUSH_H
#define RESHIM_PUSH_H

#include "snapshot.h"

/* From the stats thread, every RESHIM_INTERVAL: one datagram, dropped when
 * the collector's queue is full. */
void push_periodic(const struct reshim_snapshot *s);
/* At exit: one datagram, retried for a moment when the queue is full; the
 * socket is closed, the buffer kept (nothing is freed at exit). */
void push_final(const struct reshim_snapshot *s);
/* The thread's end: the socket closed. */
void push_close(void);
/* Fork child: the socket closed (when still ours), the buffer forgotten. */
void push_forget(void);

#endif
