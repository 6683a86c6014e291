/* listener.h: the stats socket's listener (listener.c), for the stats
 * thread (server.c). */
#ifndef RESHIM_LISTENER_H
#define RESHIM_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

/* The listening descriptor (-1: none), and whether it is still ours. */
int listener_fd(void);
bool listener_ours(void);
/* When listener_maintain will try to make one again (monotonic ns). */
uint64_t listener_next(void);
/* The run directory as placed ("" before the first listener_open). */
const char *listener_run_dir(void);

/* Makes the listener (t0: the start, for the debug line). */
void listener_open(uint64_t now, uint64_t t0);
/* Notices a closed or reused descriptor, a removed socket file or a new
 * uid, and makes the listener again when due. */
void listener_maintain(uint64_t now, uint64_t t0);
/* The app closed our descriptor: forgotten (never closed by us), the file
 * removed. */
void listener_lost(void);
/* Closed, and the socket file removed (when still ours). */
void listener_close(void);
/* The socket file removed (when still ours, through the checked directory). */
void listener_unlink(void);
/* Fork child: the parent's listener closed, its file left alone. */
void listener_forget(void);

#endif
