/* alloc.c: the malloc family, counted exactly and gated under policy
 * enforce: the interposers malloc, free, calloc, realloc, reallocarray,
 * memalign, posix_memalign, aligned_alloc, valloc, pvalloc and
 * malloc_usable_size, and the marks of sampled blocks.
 *
 * The hot path (malloc/free) takes no lock, makes no system call and never
 * allocates: the next allocator's call, the block's usable size, and plain
 * stores to the calling thread's own counter slot (one writer per slot;
 * readers sum every slot). With glibc, malloc and free have a fast path
 * (one load decides it; 23 and 15 instructions, `objdump -d`; per pair,
 * `make bench`'s callgrind rows): the size from glibc's header word, which
 * also tells free whether the block is one of ours (the arena's, or
 * sampled) or mmapped (the general path); malloc's one subtraction from the
 * heap profiler's countdown both samples and ends growth windows (every
 * 128 KiB a thread asks for). Every 256 KiB of a thread's growth (looked
 * at when a window ends), or on an allocation of 1 MiB or more, the slow
 * path updates the peak and lets memmon look at RSS. Counting never depends on
 * the recursion guard (an allocation made inside the shim is freed by the
 * app later), so live bytes stay exact; only the gate and memmon are
 * skipped inside the shim.
 *
 * The top of the allocation layer (alloc_impl.h, which holds the fast
 * path's inline parts): it calls down into alloc_gate.c (check points, the
 * gate), alloc_next.c (the next allocator, the arena) and alloc_count.c;
 * anonymous mappings are alloc_map.c's.
 *
 * Never: calls an interposed allocation function of its own, takes a lock on
 * the malloc path, or frees anything at exit. */
#define _GNU_SOURCE
#include "alloc_impl.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "heapprof.h"

/* ---- sampled blocks --------------------------------------------------------
 * With glibc's allocator, a block the profiler samples is allocated
 * TAG_ROOM bytes larger (its alignment, for the aligned ones) and the app
 * gets the address that far in; the two words before it hold the offset
 * back to glibc's block and TAG_WORD (OWN_BLOCK set). So free finds a
 * sampled block from the word it reads anyway: the unsampled majority never
 * touches the profiler's table (a random access into 1 MiB, a cache miss on
 * large heaps), and only a marked block is looked up there. One sample per
 * 512 KiB allocated: 16 bytes each. malloc_usable_size and realloc know
 * the mark. With another allocator (no header to read), free asks the
 * profiler's filter instead (heap_forget_if).
 *
 * A marked block counts what the app sees of it (malloc_usable_size: the
 * mark is the shim's), and one asked for fewer than TAG_MIN bytes is
 * allocated as TAG_MIN, glibc's smallest usable size: so a block counts
 * the same sampled or not (aligned ones aside: their room is their
 * alignment), and live bytes do not depend on which blocks were sampled
 * (a block live at exit, sampled in one run and not in the next). */
#define TAG_ROOM 16
#define TAG_MIN (3 * sizeof(size_t))
#define TAG_WORD ((size_t)0x5a3e1c0ull << 4 | OWN_BLOCK)

static inline bool tagging(void)
{
    return glibc_header;
}

static inline bool is_tagged(const void *q)
{
    return tagging() && !in_arena(q) && ((const size_t *)q)[-1] == TAG_WORD;
}

static void *tag(void *p, size_t offset)
{
    unsigned char *q = (unsigned char *)p + offset;
    ((size_t *)q)[-2] = offset;
    ((size_t *)q)[-1] = TAG_WORD;
    return q;
}

static inline size_t tag_offset(const void *q)
{
    return ((const size_t *)q)[-2];
}

static inline void *tag_base(void *q)
{
    return (unsigned char *)q - tag_offset(q);
}

/* What the next allocator is asked for n bytes and a mark of room bytes. */
static inline size_t marked_size(size_t n, size_t room)
{
    return room ? (n < TAG_MIN ? TAG_MIN : n) + room : n;
}

/* ---- the malloc family --------------------------------------------------- */

/* Every malloc takes either the fast path (counting, glibc's allocator,
 * the gate disarmed, a request below FAST_MAX: one load and compare
 * decides; then the sampling countdown, the call and the count) or the
 * general path, which looks at everything. */
/* The room a sampled block's mark takes (0: not marked). */
static inline size_t mark_room(bool smp, size_t n)
{
    return smp && tagging() && n <= SIZE_MAX / 2 ? TAG_ROOM : 0;
}

/* A block the next allocator returned (marked_size(n, room), when sampled
 * and marked): counted as the app sees it, then marked and recorded when
 * sampled. */
static inline void *counted_block(void *p, size_t n, bool smp, size_t room)
{
    if (likely(p)) {
        count_alloc(usable(p) - room);
        if (unlikely(smp)) /* a tail call: the caller's frame is not unwound */
            return heap_record(room ? tag(p, room) : p, n);
    }
    return p;
}

static __attribute__((noinline)) void *malloc_counted(size_t n, bool smp)
{
    if (gated(n))
        return enomem();
    size_t room = mark_room(smp, n);
    return counted_block(NEXT(next_malloc(marked_size(n, room))), n, smp, room);
}

/* The fast path's rare ends: an mmapped block, or no slot yet. */
static __attribute__((noinline)) void *malloc_counted_after(void *p)
{
    count_alloc_small(glibc_usable(p));
    return p;
}

/* The fast paths' end (malloc's, calloc's): p counted. */
static inline void *fast_counted(void *p)
{
    if (unlikely(!p))
        return p;
    size_t word = ((const size_t *)p)[-1];
    struct tslot *s = athr.slot;
    if (unlikely((word & GLIBC_MMAPPED) || !s))
        return malloc_counted_after(p);
    slot_add(&s->live, (int64_t)glibc_heap_chunk_of(word));
    slot_inc(&s->allocs);
    return p;
}

/* Still the fast path after a crossing: not sampled, and the gate still
 * disarmed (the end of a growth window may have armed it). */
static inline bool fast_still(size_t n, bool smp)
{
    return !smp && n < atomic_load_explicit(&alloc_hot.fast_below, memory_order_acquire);
}

/* The countdown crossed: the decision (a sample, or the end of a growth
 * window: most crossings), then the fast path's allocation or the general
 * path's (a tail call: malloc keeps no frame for it, nor spills n). */
static __attribute__((noinline)) void *malloc_crossed(size_t n)
{
    bool smp = heap_decide(n);
    if (fast_still(n, smp))
        return fast_counted(next_malloc(n));
    return malloc_counted(n, smp);
}

static __attribute__((noinline)) void *malloc_general(size_t n)
{
    int m = mode_now();
    if (unlikely(m != AM_COUNT)) {
        if (m == AM_PASS)
            return next_malloc(n);
        if (cold_use_arena())
            return arena_alloc(n, 16);
        return reshim_app_malloc(n);
    }
    return malloc_counted(n, heap_due(n));
}

/* The end of a growth window (heapprof_window), before the allocation of
 * n bytes that ended it: growth_point looks. */
static void window_end(size_t n)
{
    growth_point(n < BIG_ALLOC ? n : 0); /* a large one has its own check point */
}

__attribute__((constructor)) static void alloc_windows(void)
{
    heapprof_window(window_end, GROWTH_STEP / 2); /* a check point lags by half a step at most */
}

/* The fast path counts a heap chunk's size from its header word; an
 * mmapped one (a request of glibc's mmap threshold, 128 KiB or more) takes
 * the rare end, as does a thread without a slot. The countdown's crossing
 * is the sampler's and the growth window's (alloc_windows). */
EXPORT void *malloc(size_t n)
{
    if (unlikely(n >= atomic_load_explicit(&alloc_hot.fast_below, memory_order_acquire)))
        return malloc_general(n);
    if (unlikely(heap_crossed(n))) /* the countdown: rarely */
        return malloc_crossed(n);
    return fast_counted(next_malloc(n));
}

static void free_fast(void *p);
static void free_general(void *p);

/* What free() jumps to: free_general until that sees the fast path allowed
 * (counting with glibc's header: alloc_hot.fast_free, set at binding), then
 * free_fast for good: one indirect jump where a flag took a load, a test and
 * a branch. Counting stops after that only for passthrough, which init sets
 * before any block is marked (sampling starts with init), and whose figures
 * nothing reads: free_fast's counts there are harmless, its frees the same.
 * Read relaxed: a block freed came from a malloc that saw the binding. */
static void (*free_path)(void *) = free_general;

static __attribute__((noinline)) void free_general(void *p)
{
    if (unlikely(atomic_load_explicit(&alloc_hot.fast_free, memory_order_acquire)) &&
        __atomic_load_n(&free_path, __ATOMIC_RELAXED) != free_fast)
        __atomic_store_n(&free_path, free_fast, __ATOMIC_RELAXED);
    if (unlikely(!p || in_arena(p)))
        return;
    size_t room = 0;
    if (is_tagged(p)) { /* sampled: forgotten first (then another thread may get it) */
        heap_forget(p);
        room = tag_offset(p);
        p = tag_base(p);
    } else if (!tagging() && mode_now() == AM_COUNT) {
        heap_forget_if(p);
    }
    int m = mode_now();
    if (unlikely(m != AM_COUNT)) {
        if (m == AM_UNBOUND)
            bind_next();
        if (mode_now() != AM_COUNT) {
            if (next_free)
                next_free(p);
            return;
        }
    }
    count_free(usable(p) - room);
    NEXT_VOID(next_free(p));
}

/* The fast path: a heap chunk of glibc's (not ours: the arena's or a
 * sampled block's, OWN_BLOCK; not mmapped) freed by a thread with a slot;
 * one test of the word for the first two. The rest takes free_general. */
static void free_fast(void *p)
{
    if (unlikely(!p))
        return;
    size_t word = ((const size_t *)p)[-1];
    struct tslot *s = athr.slot;
    if (likely(!(word & (OWN_BLOCK | GLIBC_MMAPPED))) && likely(s)) {
        slot_sub(&s->live, (int64_t)glibc_heap_chunk_of(word));
        slot_inc(&s->frees);
        next_free(p); /* a tail call */
        return;
    }
    free_general(p);
}

EXPORT void free(void *p)
{
    __atomic_load_n(&free_path, __ATOMIC_RELAXED)(p); /* a jump */
}

/* calloc's general path from the decision on (smp). */
static __attribute__((noinline)) void *calloc_counted(size_t nmemb, size_t size, size_t total,
                                                      bool smp)
{
    if (gated(total))
        return enomem();
    size_t room = mark_room(smp, total);
    void *p = NEXT(room ? next_calloc(1, marked_size(total, room)) : next_calloc(nmemb, size));
    return counted_block(p, total, smp, room);
}

static __attribute__((noinline)) void *calloc_crossed(size_t nmemb, size_t size, size_t total)
{
    bool smp = heap_decide(total);
    if (fast_still(total, smp))
        return fast_counted(next_calloc(nmemb, size));
    return calloc_counted(nmemb, size, total, smp);
}

static __attribute__((noinline)) void *calloc_general(size_t nmemb, size_t size, size_t total)
{
    if (unlikely(athr.arena_only)) { /* a thread of ours being created (alloc.h) */
        void *p = arena_alloc(total, 16); /* static memory: already zero */
        if (p)
            return p;
    }
    int m = mode_now();
    if (unlikely(m != AM_COUNT)) {
        if (m == AM_PASS)
            return next_calloc(nmemb, size);
        if (cold_use_arena())
            return arena_alloc(total, 16); /* static memory: already zero */
        return reshim_app_calloc(nmemb, size);
    }
    return calloc_counted(nmemb, size, total, heap_due(total));
}

/* malloc's fast path, and its general path for the rest (and for a thread
 * of ours being created: arena_only). */
EXPORT void *calloc(size_t nmemb, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(nmemb, size, &total))
        return enomem();
    if (unlikely(total >= atomic_load_explicit(&alloc_hot.fast_below, memory_order_acquire)) ||
        unlikely(athr.arena_only))
        return calloc_general(nmemb, size, total);
    if (unlikely(heap_crossed(total)))
        return calloc_crossed(nmemb, size, total);
    return fast_counted(next_calloc(nmemb, size));
}

/* realloc of a marked (sampled) block, or of a block into a sampled one
 * (glibc). A marked block is reallocated from glibc's address with its
 * offset, so the mark and the contents stay where they are (glibc may
 * still mremap it); it stays marked, sampled again or not (its free then
 * finds nothing in the table). A plain block that becomes sampled moves its
 * contents up by TAG_ROOM, once. */
static __attribute__((noinline)) void *realloc_marked(void *p, size_t n, bool was, bool smp)
{
    if (n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        reshim_app_free(p);
        return NULL;
    }
    size_t off = was ? tag_offset(p) : TAG_ROOM;
    void *base = was ? tag_base(p) : p;
    size_t old = usable(base) - (was ? off : 0); /* as counted */
    if (n > SIZE_MAX / 2)
        return enomem();
    if (n > old && gated(n - old))
        return enomem();
    struct heap_taken taken;
    taken.had = false;
    if (was)
        heap_take(p, &taken);
    void *r = NEXT(next_realloc(base, marked_size(n, off)));
    if (!r) {
        heap_restore(p, &taken);
        return NULL;
    }
    count_replace(old, usable(r) - off);
    void *q;
    if (was) {
        q = (unsigned char *)r + off;
    } else {
        memmove((unsigned char *)r + off, r, old < n ? old : n);
        q = tag(r, off);
    }
    if (smp)
        heap_record(q, n);
    return q;
}

static __attribute__((noinline)) void *realloc_general(void *p, size_t n)
{
    if (!p)
        return reshim_app_malloc(n);
    if (unlikely(in_arena(p))) {
        /* Never freed; its contents move to a real block. */
        void *q = reshim_app_malloc(n ? n : 1);
        if (q) {
            size_t old = arena_block_size(p);
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    int m = mode_now();
    if (unlikely(m != AM_COUNT)) {
        if (m == AM_UNBOUND)
            bind_next();
        if (mode_now() != AM_COUNT)
            return next_realloc(p, n);
    }
    if (tagging()) {
        bool was = is_tagged(p), smp = heap_due(n);
        if (unlikely(was || smp))
            return realloc_marked(p, n, was, smp);
    }
    size_t old = usable(p);
    if (n > old && gated(n - old))
        return enomem();
    /* For the profiler (another allocator: no marks), a free of p and an
     * allocation of n: the decision before the call, p forgotten before it
     * (once realloc returns, another thread may get p), and remembered
     * again if realloc fails. */
    bool smp = !tagging() && heap_due(n);
    struct heap_taken taken;
    taken.had = false;
    if (!tagging())
        heap_take(p, &taken);
    void *q = NEXT(next_realloc(p, n));
    if (q) {
        count_replace(old, usable(q));
        if (unlikely(smp))
            heap_record(q, n);
    } else if (n == 0) {
        count_free(old); /* glibc: realloc(p, 0) frees p and returns NULL */
    } else {
        heap_restore(p, &taken);
    }
    return q;
}

/* malloc's fast path, for a plain heap chunk of glibc's resized to a size
 * that is not 0 (glibc frees p then): the gate is disarmed whenever
 * fast_below is not 0, and a sampled result takes realloc_marked. */
EXPORT void *realloc(void *p, size_t n)
{
    if (likely(p) && likely(n) &&
        likely(n < atomic_load_explicit(&alloc_hot.fast_below, memory_order_acquire))) {
        size_t word = ((const size_t *)p)[-1];
        struct tslot *s = athr.slot;
        if (likely(!(word & (OWN_BLOCK | GLIBC_MMAPPED))) && likely(s)) {
            if (unlikely(heap_crossed(n))) {
                bool smp = heap_decide(n);
                if (smp)
                    return realloc_marked(p, n, false, true);
                if (!fast_still(n, smp)) /* a window's end armed the gate */
                    return realloc_general(p, n);
            }
            int64_t old = (int64_t)glibc_heap_usable_of(word);
            void *q = next_realloc(p, n);
            if (likely(q)) {
                slot_add(&s->live, (int64_t)glibc_usable(q) - old);
                slot_inc(&s->allocs);
                slot_inc(&s->frees);
            }
            return q;
        }
    }
    return realloc_general(p, n);
}

EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(nmemb, size, &total))
        return enomem();
    return reshim_app_realloc(p, total);
}

/* The aligned entry points share one path: the next allocator's
 * posix_memalign, memalign or aligned_alloc (kind), never glibc's when the
 * next allocator is another one (jemalloc has no pvalloc). */
enum { AL_POSIX, AL_MEMALIGN, AL_ALIGNED };

static void *aligned_next(int kind, size_t align, size_t n, int *err)
{
    void *p = NULL;
    *err = 0;
    if (kind == AL_ALIGNED && next_aligned_alloc)
        p = next_aligned_alloc(align, n);
    else if (kind != AL_POSIX && next_memalign)
        p = next_memalign(align, n);
    else {
        size_t a = align;
        if (kind != AL_POSIX) { /* memalign semantics on posix_memalign */
            if (a < sizeof(void *))
                a = sizeof(void *);
            while (a & (a - 1))
                a = (a | (a - 1)) + 1; /* next power of two */
        }
        *err = next_posix_memalign(&p, a, n);
        if (*err)
            p = NULL;
        return p;
    }
    if (!p)
        *err = errno;
    return p;
}

static void *aligned_common(int kind, size_t align, size_t n, int *err)
{
    int m = mode_now();
    if (unlikely(m != AM_COUNT)) {
        if (m == AM_UNBOUND && cold_use_arena()) {
            void *p = arena_alloc(n, align);
            *err = p ? 0 : ENOMEM;
            return p;
        }
        if (mode_now() != AM_COUNT)
            return aligned_next(kind, align, n, err);
    }
    bool smp = heap_due(n);
    if (gated(n)) {
        *err = ENOMEM;
        return NULL;
    }
    /* A sampled block's mark takes its alignment (at least TAG_ROOM): the
     * app's address keeps it. Beyond a page, not sampled (a rare 1 GiB
     * alignment would cost 1 GiB). */
    size_t room = 0;
    if (unlikely(smp) && tagging()) {
        room = TAG_ROOM;
        while (room < align && room <= alloc_page_size)
            room <<= 1;
        if (room > alloc_page_size || n > SIZE_MAX / 2)
            smp = false, room = 0;
    }
    return counted_block(NEXT(aligned_next(kind, align, marked_size(n, room), err)), n, smp, room);
}

EXPORT int posix_memalign(void **memptr, size_t align, size_t n)
{
    int err;
    void *p = aligned_common(AL_POSIX, align, n, &err);
    if (!p && err)
        return err;
    *memptr = p;
    return 0;
}

static void *aligned_ret(int kind, size_t align, size_t n)
{
    int saved = errno, err;
    void *p = aligned_common(kind, align, n, &err);
    errno = p ? saved : (err ? err : ENOMEM);
    return p;
}

EXPORT void *memalign(size_t align, size_t n)
{
    return aligned_ret(AL_MEMALIGN, align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    return aligned_ret(AL_ALIGNED, align, n);
}

EXPORT void *valloc(size_t n)
{
    return aligned_ret(AL_MEMALIGN, alloc_page_size, n);
}

EXPORT void *pvalloc(size_t n)
{
    size_t rounded;
    if (__builtin_add_overflow(n, alloc_page_size - 1, &rounded))
        return enomem();
    rounded &= ~(alloc_page_size - 1);
    return aligned_ret(AL_MEMALIGN, alloc_page_size, rounded); /* 0: the smallest block, as glibc */
}

EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (in_arena(p))
        return arena_block_size(p);
    if (unlikely(mode_now() == AM_UNBOUND))
        bind_next();
    if (is_tagged(p))
        return next_usable(tag_base(p)) - tag_offset(p);
    return next_usable(p);
}

/* The hidden aliases of alloc.h: calls from inside the library bind here.
 * Without the C library's `leaf` and `nothrow` on purpose: these functions
 * do call back into this file (leaf would let the compiler assume its
 * statics unchanged across the call). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#define APP_ALIAS(as, name) \
    extern __typeof(name) as __attribute__((alias(#name), visibility("hidden")))
APP_ALIAS(reshim_app_malloc, malloc);
APP_ALIAS(reshim_app_calloc, calloc);
APP_ALIAS(reshim_app_realloc, realloc);
APP_ALIAS(reshim_app_free, free);
#pragma GCC diagnostic pop
