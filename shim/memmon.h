/* memmon.h: the memory monitor: RSS and the container's working set against
 * the budget, the state machine (budget.c decides), trims, and the
 * allocation gate under policy enforce. memmon.c owns the monitor thread,
 * the kept-open statm fd, the resolved budget and the memory counters that
 * are not allocation counts (trims, denials, RSS peak). */
#ifndef RESHIM_MEMMON_H
#define RESHIM_MEMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"

/* From the allocation layer's check points (alloc_gate.c): a thread's heap
 * grew by another step, or one allocation of `big` bytes (0 otherwise) was
 * large. Resolves the budget once, starts the monitor thread when there is
 * a budget, and refreshes RSS inline when growth is fast. Never called with the shim's guard held. */
void memmon_growth(size_t big);

/* From the allocation wrappers (alloc_gate.c) while alloc_gate is set, and
 * for every large request: true when an allocation growing memory by n bytes must fail with
 * ENOMEM (policy enforce only; counted). */
bool memmon_deny(size_t n);

/* Runs a trim now (the stats socket's `trim`, and the automatic one):
 * returns the bytes of RSS released (0 when none), -1 when the allocator
 * offers no trim. */
int64_t memmon_trim(bool automatic);

struct mem_snapshot {
    uint64_t rss, rss_peak, rss_anon, rss_file, rss_shmem;
    int64_t heap_live;
    uint64_t heap_peak, allocs, frees, mmap_anon, mmap_anon_peak;
    uint64_t budget, usage, working_set;
    enum budget_source budget_source;
    enum mem_state state;
    uint64_t trims, trimmed, enomem;
};
/* Resident bytes now, from the kept-open statm (0 when unreadable). */
uint64_t memmon_rss_read(void);
/* Reads /proc/self/status for the RSS figures (a few microseconds). */
void memmon_snapshot(struct mem_snapshot *s);
/* The memory part of the stats snapshot (memmon_snapshot, with names). */
struct snap_mem;
void memmon_snap(struct snap_mem *o);
/* "mem rss=.. rss_peak=.. ..." for the exit summary. */
size_t memmon_summary(char *buf, size_t n);


#endif
