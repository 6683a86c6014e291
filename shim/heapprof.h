/* heapprof.h: who holds the memory: sampled allocation sites.
 * heapprof.c owns the per-thread byte countdown, the unwinder (libgcc's
 * _Unwind_Backtrace or libunwind's unw_backtrace, found with dlopen at the
 * first sample), the site and live-address
 * tables (heapsample.c, in raw mappings of the shim's own), the symbols
 * (dladdr, only when asked) and the answer to `heap N`.
 *
 * The malloc path pays one TLS decrement and a predictable branch
 * (heap_crossed, heap_due). With glibc's allocator, alloc.c marks a sampled
 * block in the words before it and calls heap_forget only for a marked
 * block; with another allocator, free asks heap_forget_if (a relaxed load
 * while no sample is live, then the filter). */
#ifndef RESHIM_HEAPPROF_H
#define RESHIM_HEAPPROF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heapsample.h"
#include "reshim.h"

struct sbuf;
struct reshim_config;

/* Python stacks (pyheap.c, above this file: its hooks on the interpreter's
 * allocator call down into the countdown and heap_record_py, as alloc.c
 * does with heap_due and heap_record). What the profiler needs of it is
 * handed in at init (heapprof_init), so that this file never calls up. */
#define PY_DEPTH 16 /* Python frames kept per stack */
/* Native frames taken with them: the Python frames name the site; these
 * name the interpreter's function that allocated (a str, a list's array),
 * and are where a signal frame is looked for (Python frames are never read
 * in a handler). An unwinder costs by the frame: libgcc's alone took ~34k
 * instructions a sample for a full stack (24) under the eval loop, ~17k for
 * 4 (callgrind); cfiwalk's cached rules a few dozen a frame. */
#define PY_NATIVE_DEPTH 4

/* One Python frame; the strings stay valid until the stack's release(). */
struct py_frame {
    const char *file, *func;
    size_t file_len, func_len;
    int line;
};

struct py_stack {
    int n;
    struct py_frame f[PY_DEPTH];
    void *refs[2 * PY_DEPTH]; /* the strings' objects, released after use */
    int nrefs;
    void *exc[3]; /* the exception being raised, put back after the walk */
    bool saved;
};

struct heap_py_ops {
    void (*init)(bool on);   /* at heapprof_init, sampling on: RESHIM_HEAP_PYTHON */
    void (*probe)(void);     /* at set-up (under the guard): a CPython 3.9+ process? */
    void (*maybe_hook)(void); /* on a native sample: hook the interpreter's allocator */
    /* The Python stack of a sample taken in the interpreter's allocator
     * (0 frames unless safe to read); release() once the strings are copied. */
    int (*stack)(struct py_stack *s, bool in_signal);
    void (*release)(struct py_stack *s);
    const char *(*state)(void); /* for the `heap` answer */
};

/* >0 while a hook on the interpreter's allocator (pyheap.c) calls the
 * allocator it wraps with a block that may reach malloc: a malloc sample
 * then is dropped (the hook decided for that block). */
extern TLS_IE int heap_in_py_hook;

extern TLS_IE int64_t heap_left; /* bytes until this thread's next sample or growth window */
extern struct hs_live heap_addrs;

/* The countdown went below 0: sample? (And the end of a growth window,
 * heapprof_window: then its function runs first.) */
HIDDEN bool heap_decide(size_t n);
/* The allocation layer's growth windows (alloc.c, at load): the countdown
 * also crosses after every `bytes` a thread allocates, and heap_decide(n)
 * calls fn(n) then (the sampler's countdown unchanged by it). */
HIDDEN void heapprof_window(void (*fn)(size_t), int64_t bytes);
/* Returns p: the malloc family returns heap_record's result, a tail call
 * (one frame fewer for the unwinder to walk). */
HIDDEN void *heap_record(void *p, size_t n);
/* A sample taken in the interpreter's allocator (pyheap.c), with its
 * Python stack. */
HIDDEN void heap_record_py(void *p, size_t n);
HIDDEN void heap_forget(void *p);

/* The countdown alone: true when it went below 0 (then heap_decide(n)
 * says whether this allocation is sampled, and ends a growth window when
 * one is due). */
static inline bool heap_crossed(size_t n)
{
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    /* One subtraction from memory and its sign. Of the C below, gcc 12
     * makes a load, a subtraction, a store and a test in the hooks on the
     * interpreter's allocator (pyheap.c: another test follows): 3 of their
     * 9 instructions, on every object the interpreter makes. */
    bool neg;
    __asm__("subq %2, %0" : "+m"(heap_left), "=@ccs"(neg) : "er"((int64_t)n));
    return unlikely(neg);
#else
    return unlikely((heap_left -= (int64_t)n) < 0);
#endif
}

/* Decided before the real allocation; true: call heap_record() with the
 * block once it exists. */
static inline bool heap_due(size_t n)
{
    return heap_crossed(n) && heap_decide(n);
}

/* A hook on the interpreter's allocator (pyheap.c) has counted its block
 * and decided for it (sample); the malloc-family calls the allocator it
 * wraps makes for that block (pymalloc hands every block above 512 bytes to
 * malloc) must not count it again, nor decide again. heap_park(sample),
 * before the wrapped call, puts this thread's countdown aside (returned)
 * and parks it: without sample, nothing inside is counted or sampled; with
 * sample, the first malloc-family decision inside is a sample and nothing
 * after it (so that alloc.c marks the block, with glibc, and free()
 * forgets it: the fast free path looks for marked blocks only; the hook
 * records it, not malloc: heap_in_py_hook). heap_unpark(what park
 * returned), after the call, puts the countdown back. */
#define HEAP_PARKED (INT64_MAX / 2) /* the countdown parked (a sample never due): no crossing */
extern TLS_IE int heap_forced;      /* parked for one sample: the next decision */
static inline int64_t heap_park(bool sample)
{
    int64_t left = heap_left;
    heap_forced = sample;
    heap_left = sample ? -1 : HEAP_PARKED; /* -1: the next call crosses */
    return left;
}
static inline void heap_unpark(int64_t left)
{
    heap_forced = 0;
    heap_left = left;
}

/* Before the real free (after it, another thread may get the same address
 * and sample it). */
static inline void heap_forget_if(void *p)
{
    if (unlikely(atomic_load_explicit(&heap_addrs.count, memory_order_relaxed)) &&
        hs_live_maybe(&heap_addrs, (uintptr_t)p))
        heap_forget(p);
}

/* realloc: a sampled block it moves or frees is forgotten first; when the
 * realloc fails, heap_restore() records it again. */
struct heap_taken {
    bool had;
    uint64_t size;
    uint32_t site;
};
HIDDEN void heap_take(void *p, struct heap_taken *t);
HIDDEN void heap_restore(void *p, const struct heap_taken *t);

/* Init: takes the rate, and the Python stacks' functions (pyheap_ops).
 * The unwinder is found, its tables mapped and it is
 * primed at the first sample (or the first `heap` request). */
HIDDEN void heapprof_init(const struct reshim_config *cfg, const struct heap_py_ops *py);
/* At load: the shim's init, which a decision for a large allocation made
 * before init calls first (so that the allocation can be sampled). */
HIDDEN void heapprof_boot(void (*init)(void));
HIDDEN bool heapprof_on(void);    /* sampling and its tables are up */
HIDDEN bool heapprof_ready(void); /* the same, setting them up now if sampling is on */
HIDDEN const char *heapprof_off_reason(void);

/* The answer to `heap N` into b (the stats thread; no lock of ours is
 * held); false when b overflowed (then heapprof_json_max() is enough). */
HIDDEN bool heapprof_json(struct sbuf *b, unsigned n);
HIDDEN size_t heapprof_json_guess(unsigned n);
HIDDEN size_t heapprof_json_max(unsigned n);

/* "top sites: 61.2 MB at f+0x1 (m) < g+0x2 (m); ..." (k sites) for a log
 * line; empty when nothing is sampled. */
HIDDEN void heapprof_top_text(char *buf, size_t n, int k);

#endif
