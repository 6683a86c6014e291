/* alloc_impl.h: what the files of the allocation layer share, and nothing
 * else includes. The layer, from the top (each file calls only the ones
 * below it):
 *
 *   alloc.c        the malloc family (interposers) and sampled blocks' marks
 *   alloc_map.c    mmap, mmap64, munmap, mremap and the counted-range table
 *   alloc_gate.c   check points and the enforce gate's question: the only
 *                  calls from this layer up into memmon.c
 *   (memmon.c)     arms the gate and reads the figures below
 *   alloc_next.c   the next allocator (bound with dlsym), the bootstrap
 *                  arena, the fast path's switches (mode, the gate's armed
 *                  flag), trim
 *   alloc_count.c  this thread's state on the malloc path, the per-thread
 *                  counter slots and the mapping counters, alloc_totals
 *
 * The fast path (malloc and free of alloc.c) is inline here, and the data
 * it reads are hidden globals of the files below: one PC-relative load, as
 * a static would be, and initial-exec TLS (callgrind's instructions per
 * free+malloc pair are unchanged by the split, tests/bench). */
#ifndef RESHIM_ALLOC_IMPL_H
#define RESHIM_ALLOC_IMPL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "alloc.h"
#include "reshim.h"

#define GROWTH_STEP (256 * 1024) /* a check point every 256 KiB of a thread's growth */
/* and at every allocation of BIG_ALLOC or more (reshim.h; and the gate) */
#define FAST_MAX (BIG_ALLOC - 8192) /* usable stays below BIG_ALLOC on the fast path */

/* ---- the next allocator (alloc_next.c) ----------------------------------- */

/* What the fast path reads on every call, written at bind time (and when
 * the gate or the mode changes): one cache line, read-mostly.
 *   fast_below: requests below it take malloc's fast path; 0 until the next
 *     allocator is bound, and whenever every allocation must be looked at
 *     (passthrough, the gate armed, an allocator whose header we cannot
 *     read); FAST_MAX otherwise, so that large requests (the gate, the
 *     1 MiB growth check) always take the general path.
 *   fast_free: free's fast path may run (counting, glibc's header); free's
 *     general path reads it and puts the fast one in place (alloc.c). */
struct alloc_hot {
    void *(*malloc)(size_t);
    void (*free)(void *);
    atomic_size_t fast_below;
    atomic_bool fast_free;
};
extern HIDDEN struct alloc_hot alloc_hot __attribute__((aligned(64)));
#define next_malloc alloc_hot.malloc
#define next_free alloc_hot.free
extern HIDDEN void *(*next_calloc)(size_t, size_t);
extern HIDDEN void *(*next_realloc)(void *, size_t);
extern HIDDEN void *(*next_memalign)(size_t, size_t);
extern HIDDEN int (*next_posix_memalign)(void **, size_t, size_t);
extern HIDDEN void *(*next_aligned_alloc)(size_t, size_t);
extern HIDDEN size_t (*next_usable)(void *);
extern HIDDEN void *(*next_mmap)(void *, size_t, int, int, int, off_t);
extern HIDDEN int (*next_munmap)(void *, size_t);
extern HIDDEN void *(*next_mremap)(void *, size_t, size_t, int, ...);

enum { AM_UNBOUND, AM_COUNT, AM_PASS };
extern HIDDEN atomic_int alloc_mode; /* AM_*: counting only in AM_COUNT */
extern HIDDEN atomic_int alloc_bind_state; /* 0 none, 1 binding, 2 bound */
extern HIDDEN size_t alloc_page_size;

static inline int mode_now(void)
{
    return atomic_load_explicit(&alloc_mode, memory_order_acquire);
}

/* Finds the next allocator once (a nested call made by dlsym itself on
 * the binding thread returns at once; other threads wait). */
HIDDEN void bind_next(void);
/* Not bound yet: bind, or true (serve from the arena) when dlsym itself asks. */
HIDDEN bool cold_use_arena(void);

/* The usable size of a block, on every malloc and every free. glibc's
 * malloc_usable_size also reads the next chunk's header (its in-use bit),
 * a second cache line per call: with a heap larger than the cache that
 * cost +50-150 ns per malloc/free pair here. When the next allocator is
 * glibc's (x86_64/aarch64 layout: the size word before the block, low bits
 * flags, 0x2 = mmapped), the size is read from the block's own header
 * instead. That is glibc's internal layout, so it is used only after
 * checking at bind time that it gives exactly what malloc_usable_size gives
 * for heap and mmapped blocks (alloc_next.c); otherwise (jemalloc, a
 * debugging malloc, memory tagging) malloc_usable_size is called. */
extern HIDDEN bool glibc_header;

/* Flag 0x2 of the size word: an mmapped chunk (it has a trailer too). */
#define GLIBC_MMAPPED ((size_t)2)

/* From the size word of a heap chunk (not mmapped): its size (what a
 * slot's live counts of it, CHUNK_EXTRA), and that less its header. */
static inline size_t glibc_heap_chunk_of(size_t word)
{
    return word & ~(size_t)7;
}
static inline size_t glibc_heap_usable_of(size_t word)
{
    return glibc_heap_chunk_of(word) - sizeof(size_t);
}

/* From any chunk's size word: less the trailer of an mmapped one too. */
static inline size_t glibc_usable_of(size_t word)
{
    return glibc_heap_usable_of(word) - (word & GLIBC_MMAPPED) * (sizeof(size_t) / 2);
}

static inline size_t glibc_usable(const void *p)
{
    return glibc_usable_of(((const size_t *)p)[-1]);
}

static inline size_t usable(void *p)
{
    return likely(glibc_header) ? glibc_usable(p) : next_usable(p);
}

/* Bit 3 of the word before a block: never set in a glibc chunk's size word
 * (sizes are multiples of 16, flags are bits 0-2), set in the header of a
 * block of our own: the bootstrap arena's, and a sampled block's (alloc.c).
 * Free's fast path reads that word for the size anyway: one test tells it
 * the block is not a plain glibc block. */
#define OWN_BLOCK ((size_t)8)

/* The bootstrap arena: what dlsym (or another preload) asks for while the
 * next allocator is being found. Each block is preceded by its size (with
 * OWN_BLOCK). Never freed. */
#define ARENA_SIZE (256 * 1024)
extern HIDDEN unsigned char alloc_arena[ARENA_SIZE] __attribute__((aligned(4096)));

static inline bool in_arena(const void *p)
{
    return (uintptr_t)p - (uintptr_t)alloc_arena < ARENA_SIZE;
}

HIDDEN void *arena_alloc(size_t n, size_t align);
HIDDEN size_t arena_block_size(const void *p);

/* ---- this thread's state and the counters (alloc_count.c) ---------------- */

/* A slot's live counts each block with a word more than its usable size
 * (CHUNK_EXTRA: glibc's chunk, header included): the fast paths add and
 * subtract a heap chunk's size as its header word gives it, one instruction
 * fewer each way; every other count adds the word too. The live bytes of a
 * slot (and of all of them) are live - CHUNK_EXTRA * (allocs - frees):
 * slot_live_bytes. */
struct tslot {
    _Atomic int64_t live;
    _Atomic uint64_t allocs, frees;
    atomic_int used;
} __attribute__((aligned(64)));
#define CHUNK_EXTRA ((int64_t)sizeof(size_t))

static inline int64_t slot_live_bytes(int64_t live, uint64_t allocs, uint64_t frees)
{
    return live - CHUNK_EXTRA * (int64_t)(allocs - frees);
}

/* This thread's state on the malloc path, in one initial-exec TLS block
 * (one offset to load, not one per variable). */
struct athr {
    struct tslot *slot; /* this thread's counter slot, once claimed */
    /* Growth is looked at after every GROWTH_STEP bytes a thread asks for
     * (a window: the heap profiler's countdown ends them, heapprof_window,
     * so malloc subtracts once for both) or maps (growth, below); frees
     * leave it alone (free's fast path touches only the slot). At a
     * window's end growth_point looks at what the thread holds (its slot's
     * live bytes and what it mapped): a check point once that is
     * GROWTH_STEP above the lowest level seen at a window's end since the
     * last one. */
    int64_t growth; /* bytes mapped since the last window's end (alloc_map.c) */
    int64_t low;    /* that lowest level */
    int64_t mapped; /* bytes this thread mapped (alloc_map.c), ever */
    /* >0 while the next allocator runs on this thread (the general path):
     * the mappings it makes itself (jemalloc maps its extents through the
     * PLT) are heap, already counted as blocks. A count, not a flag: a
     * signal handler may interrupt one call and make another. The fast
     * paths (glibc's allocator, which maps with internal calls that never
     * reach alloc_map.c) leave it alone. */
    int in_next;
    int slot_state; /* 0 none, 1 claiming, 2 own, 3 retired (thread exiting) */
    int arena_only; /* calloc from the bootstrap arena (alloc_arena_only) */
};
extern TLS_IE HIDDEN struct athr athr;
#define NEXT(call) \
    __extension__({ athr.in_next++; __typeof__(call) r_ = (call); athr.in_next--; r_; })
#define NEXT_VOID(call) do { athr.in_next++; call; athr.in_next--; } while (0)

/* Single writer: other threads only read (relaxed, whole words). On x86_64
 * one add to memory (not locked: no other writer), elsewhere a load and a
 * store. */
static inline void slot_add(_Atomic int64_t *v, int64_t d)
{
#if defined(__x86_64__)
    __asm__("addq %1, %0" : "+m"(*(int64_t *)v) : "er"(d));
#else
    atomic_store_explicit(v, atomic_load_explicit(v, RLX) + d, RLX);
#endif
}
static inline void slot_sub(_Atomic int64_t *v, int64_t d)
{
#if defined(__x86_64__)
    __asm__("subq %1, %0" : "+m"(*(int64_t *)v) : "er"(d));
#else
    atomic_store_explicit(v, atomic_load_explicit(v, RLX) - d, RLX);
#endif
}
static inline void slot_inc(_Atomic uint64_t *v)
{
    slot_add((_Atomic int64_t *)v, 1);
}

/* No slot yet (claims one), or none to be had (the shared slot): d bytes
 * (usable: negative for a free) and the CHUNK_EXTRA that goes with them. */
HIDDEN void count_slow(int64_t d, bool alloc);
/* The heap peak from every slot's live bytes (check points). */
HIDDEN void heap_peak_update(void);
/* Mapping figures: bytes removed from and added to the counted ranges
 * (alloc_map.c, under its lock), and the calls and misses. */
HIDDEN void map_account(uint64_t removed, uint64_t added);
enum map_event { MAP_EV_MAP, MAP_EV_UNMAP, MAP_EV_UNTRACKED };
HIDDEN void map_count(enum map_event e);

/* ---- check points and the gate (alloc_gate.c) ---------------------------- */

/* A window ended, sz bytes coming that the thread does not hold yet (the
 * allocation that ended it, not made yet; or the mapping that did), or an
 * allocation (or mapping) of sz >= BIG_ALLOC: when the thread grew by
 * GROWTH_STEP (a check point lags the exact count, down with every free
 * and clamped at 0, by at most a window), or always for a large one, the
 * peak and memmon's look at RSS. */
HIDDEN void growth_point(size_t sz);

static inline void count_alloc_as(size_t sz, bool maybe_big)
{
    struct tslot *s = athr.slot;
    if (likely(s)) {
        slot_add(&s->live, (int64_t)sz + CHUNK_EXTRA);
        slot_inc(&s->allocs);
    } else {
        count_slow((int64_t)sz, true);
    }
    if (unlikely(maybe_big && sz >= BIG_ALLOC))
        growth_point(sz);
}
static inline void count_alloc(size_t sz)
{
    count_alloc_as(sz, true);
}
/* The fast path: its requests are below FAST_MAX, their blocks below BIG_ALLOC. */
static inline void count_alloc_small(size_t sz)
{
    count_alloc_as(sz, false);
}

static inline void count_free(size_t sz)
{
    struct tslot *s = athr.slot;
    if (likely(s)) {
        slot_sub(&s->live, (int64_t)sz + CHUNK_EXTRA);
        slot_inc(&s->frees);
    } else {
        count_slow(-(int64_t)sz, false);
    }
}

/* A block replaced by another (realloc): one free and one allocation. */
static inline void count_replace(size_t old, size_t now)
{
    count_free(old);
    count_alloc(now);
}

/* Consulted on every growing allocation once memmon has armed the gate
 * (enforce, near the budget), and on every large one (>= BIG_ALLOC) always:
 * one request can take a process from far below its budget to far past it
 * (a 300 MB bytearray), and such a request costs a system call anyway. */
static inline bool gate_asks(size_t n)
{
    return unlikely(n >= BIG_ALLOC || atomic_load_explicit(&alloc_gate, RLX)) && !reshim_guard;
}

/* memmon's answer: true when an allocation growing memory by n bytes must
 * fail with ENOMEM (errno kept). */
HIDDEN bool ask_gate(size_t n);

static inline bool gated(size_t n)
{
    return gate_asks(n) && ask_gate(n);
}

static inline void *enomem(void)
{
    errno = ENOMEM;
    return NULL;
}

#endif
