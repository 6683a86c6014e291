/* snapfill.h: the stats snapshot, filled (snapfill.c): the process's
 * identity and times here, the counters from stats.c, the memory from
 * memmon.c. What the stats socket answers with and RESHIM_PUSH sends
 * (server.c, push.c). */
#ifndef RESHIM_SNAPFILL_H
#define RESHIM_SNAPFILL_H

#include <stdint.h>

#include "snapshot.h"

/* At init, and in a fork child: the process's start is now (uptime_s and
 * start_time_s count from here). */
void snap_fill_start(void);
/* That start, monotonic (0 before init). */
uint64_t snap_fill_t0_ns(void);
/* Fills s from the live counters (net classes, destinations, memory) and the
 * process's identity. Reads /proc; never allocates. */
void snap_fill(struct reshim_snapshot *s);

#endif
