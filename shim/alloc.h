/* alloc.h: the malloc family and anonymous mappings, counted exactly: what
 * the rest of the shim may call of the allocation layer. Its files, from
 * the top (alloc_impl.h says more): alloc.c the malloc family's
 * interposers, alloc_map.c mmap/munmap/mremap and the counted ranges,
 * alloc_gate.c the calls up into memmon (check points, the gate's
 * question), alloc_next.c the next allocator, the bootstrap arena, the
 * gate's armed flag and trim, alloc_count.c the per-thread counters. */
#ifndef RESHIM_ALLOC_H
#define RESHIM_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exact figures: the sum of every thread's counters at the time of the call
 * (exact once the threads that allocate are quiet). */
struct alloc_totals {
    int64_t heap_live;        /* usable bytes of live malloc-family blocks */
    uint64_t heap_peak;       /* highest heap_live seen at a check point */
    uint64_t allocs, frees;
    uint64_t mmap_anon;       /* bytes of writable private anonymous mappings */
    uint64_t mmap_anon_peak;
    uint64_t mmaps, munmaps;  /* counted mapping calls */
    uint64_t untracked;       /* mappings not tracked because the table was full */
};
void alloc_totals(struct alloc_totals *t);

/* The allocation gate: when set (by memmon, under policy enforce near the
 * budget) every growing allocation asks memmon_deny() first (alloc_gate.c).
 * The flag lives in alloc_next.c, below memmon, which sets it. */
extern __attribute__((visibility("hidden"))) atomic_int alloc_gate;
/* Arms (1) or disarms (0) the gate: memmon, under policy enforce. */
void alloc_gate_set(int on);

/* While on (own.c, around pthread_create of a thread of the shim's own),
 * this thread's calloc is served from the bootstrap arena, never from the
 * next allocator: pthread_create allocates the new thread's DTV with
 * calloc, and it may run in a signal handler that interrupted malloc or
 * free on this thread (a slow point, waitpid in a SIGCHLD handler, starts
 * the stats thread), whose locks are then held. Arena blocks are never
 * freed: a few hundred bytes per thread of ours. */
void alloc_arena_only(bool on);

/* After init: RESHIM_DISABLE or a setuid program stops the counting. */
void alloc_set_passthrough(void);

/* Finds the next allocator now, if no allocation did yet (compat.c, on a
 * glibc before 2.34, before it opens libdl or libpthread). */
void alloc_bind(void);

/* Returns free heap to the OS through the next allocator (glibc
 * malloc_trim(0), jemalloc's arena purge); 0 when it could run, -1 when the
 * next allocator offers no way. Called from memmon's thread, never on a hot
 * path. */
int alloc_trim(void);
/* Name of the next allocator's object ("libc.so.6", "libjemalloc.so.2"). */
const char *alloc_next_name(void);
/* How alloc_trim returns memory: "malloc_trim" (glibc), "jemalloc",
 * "tcmalloc", or "none" (musl: mallocng returns freed memory itself and
 * has no trim entry point; a debugging malloc). */
const char *alloc_trim_method(void);

/* The app's allocator as the app calls it: the shim's own exported
 * wrappers (counted as the app's memory), bound inside the library by
 * hidden aliases, never through a relocation (tests/symbols/check_self_calls.sh).
 * For memory the shim hands to the app, which frees it with free() (dns.c's
 * answers, freed by freeaddrinfo), and for a wrapper that is defined by
 * another (realloc(NULL, n) is malloc(n)). The shim's own memory comes
 * from sys_map (sys.h), never from these. */
void *reshim_app_malloc(size_t n);
void *reshim_app_calloc(size_t nmemb, size_t size);
void *reshim_app_realloc(void *p, size_t n);
void reshim_app_free(void *p);

#endif
