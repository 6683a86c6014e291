/* wake.h: the stats thread's wake-up pipe (wake.c): the destructor's stop.
 * The thread (server.c) polls its read end; server_exit, on the main
 * thread, writes a byte to end the thread's wait at once. */
#ifndef RESHIM_WAKE_H
#define RESHIM_WAKE_H

#include <stdbool.h>
#include <stdint.h>

/* The thread, before its loop and at every turn: (re)opens the pipe when it
 * has none, or when its read end has become the app's descriptor. */
void wake_keep(void);
/* The read end to poll; -1 when there is none. */
int wake_fd(void);
/* The thread: its poll said POLLNVAL (the app closed our number). */
void wake_lost(void);
/* The thread: empties the pipe after it became readable. */
void wake_drain(void);
/* The destructor: one byte to the thread, unless the thread holds the pipe
 * (replacing it) past deadline (monotonic ns): a thread of higher priority
 * spinning here could keep the holder from running, and the thread sees
 * the stop request within its wait anyway. */
void wake_send(uint64_t deadline);
/* fork child (single-threaded): the parent's pipe is forgotten (our copies
 * closed), even if the fork came while the thread held it. */
void wake_forget(void);

#endif
