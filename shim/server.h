/* server.h: the stats socket and pushed stats (libreshim(7), STATS SOCKET: the
 * protocol the reshim CLI speaks). server.c owns the stats thread, its
 * listening socket ($RESHIM_RUN_DIR/<pid>.sock or @reshim-<uid>/<pid>), its
 * clients and the RESHIM_PUSH datagrams (push.c), answering with the
 * snapshot of the live counters (snapfill.c).
 *
 * The thread starts late: never during init, only from the first slow point
 * (a network wrapper, a wait, getaddrinfo, a heap growth step, the memory
 * monitor's loop), so that a process that only idles afterwards (a server in
 * accept, a worker in sleep) is still seen; it opens its socket (and starts
 * pushing) only once the process has run for 100 ms, so that short-lived
 * processes leave no socket behind, and processes that never reach a slow
 * point (/bin/true, most shell commands) never get a thread at all. A slow
 * point costs one relaxed load. */
#ifndef RESHIM_SERVER_H
#define RESHIM_SERVER_H

#include <stdatomic.h>

#include "config.h"
#include "reshim.h"
#include "snapshot.h"

/* From init, once the configuration is loaded and the shim will be active:
 * remembers the start time and the raw value of every RESHIM_ variable that
 * was set (for the `config` answer), and arms the late start. */
void server_init(reshim_getenv_fn get, void *ctx);

/* At exit (the destructor): stops the thread within a bounded time, removes
 * the socket file, and sends the final datagram when RESHIM_PUSH is set
 * (even when the thread never started). Frees nothing. */
void server_exit(void);

#endif
