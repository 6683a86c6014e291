/* alloc.c: the malloc family and anonymous mappings, counted exactly and
 * gated under policy enforce.
 *
 * Owns: the interposers (malloc, free, calloc, realloc, reallocarray,
 * memalign, posix_memalign, aligned_alloc, valloc, pvalloc,
 * malloc_usable_size, mmap, mmap64, munmap, mremap), the next allocator's
 * entry points (dlsym(RTLD_NEXT): glibc, or jemalloc in redis-server), a
 * static bootstrap arena for what is asked while those are being found, the
 * per-thread counter slots, and the table of counted mappings.
 *
 * The hot path (malloc/free) takes no lock, makes no system call and never
 * allocates: the next allocator's call, the block's usable size, and plain
 * stores to the calling thread's own counter slot (one writer per slot;
 * readers sum every slot). With glibc, malloc and free have a fast path
 * (one load decides it; about 35 instructions each, measured by `make
 * bench`): the size from glibc's header word, which also tells free whether
 * the block is one of ours (the arena's, or sampled). Every 256 KiB of a
 * thread's growth, or on an allocation of 1 MiB or more, the slow path
 * updates the peak and lets memmon look at RSS. Counting never depends on
 * the recursion guard (an allocation made inside the shim is freed by the
 * app later), so live bytes stay exact; only the gate and memmon are
 * skipped inside the shim.
 *
 * Never: calls an interposed allocation function of its own, takes a lock on
 * the malloc path, or frees anything at exit. */
#define _GNU_SOURCE
#include "alloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atfork.h"
#include "heapprof.h"
#include "memmon.h"
#include "reshim.h"
#include "sys.h"

/* ---- the next allocator -------------------------------------------------- */

/* What the fast path reads on every call, written at bind time (and when
 * the gate or the mode changes): one cache line, read-mostly.
 *   fast_below: requests below it take malloc's fast path; 0 until the next
 *     allocator is bound, and whenever every allocation must be looked at
 *     (passthrough, the gate armed, an allocator whose header we cannot
 *     read); FAST_MAX otherwise, so that large requests (the gate, the
 *     1 MiB growth check) always take the general path.
 *   fast_free: free's fast path may run (counting, glibc's header). */
static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    atomic_size_t fast_below;
    atomic_bool fast_free;
} hot __attribute__((aligned(64)));
#define next_malloc hot.malloc
#define next_free hot.free
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void *(*next_memalign)(size_t, size_t);
static int (*next_posix_memalign)(void **, size_t, size_t);
static void *(*next_aligned_alloc)(size_t, size_t);
static size_t (*next_usable)(void *);
static void *(*next_mmap)(void *, size_t, int, int, int, off_t);
static int (*next_munmap)(void *, size_t);
static void *(*next_mremap)(void *, size_t, size_t, int, ...);

enum { AM_UNBOUND, AM_COUNT, AM_PASS };
static atomic_int alloc_mode;  /* AM_*: counting only in AM_COUNT */
static atomic_int bind_state;  /* 0 none, 1 binding, 2 bound */
static TLS_IE int binding_here;

struct tslot;
/* This thread's state on the malloc path, in one initial-exec TLS block
 * (one offset to load, not one per variable). */
struct athr {
    struct tslot *slot; /* this thread's counter slot, once claimed */
    int64_t growth;     /* bytes grown since the last check point */
    /* >0 while the next allocator runs on this thread: the mappings it
     * makes itself (jemalloc maps its extents through the PLT) are heap,
     * already counted as blocks; and a signal handler that interrupted it
     * must not allocate (its locks may be held). A count, not a flag: a
     * handler may interrupt one call and make another. */
    int in_next;
    int slot_state; /* 0 none, 1 claiming, 2 own, 3 retired (thread exiting) */
};
static TLS_IE struct athr athr;
#define NEXT(call) \
    __extension__({ athr.in_next++; __typeof__(call) r_ = (call); athr.in_next--; r_; })
#define NEXT_VOID(call) do { athr.in_next++; call; athr.in_next--; } while (0)
static size_t page_size = 4096;
#define GROWTH_STEP (256 * 1024) /* a check point every 256 KiB of a thread's growth */
#define BIG_ALLOC (1024 * 1024)  /* and at every allocation this large (and the gate) */

/* The usable size of a block, on every malloc and every free. glibc's
 * malloc_usable_size also reads the next chunk's header (its in-use bit),
 * a second cache line per call: with a heap larger than the cache that
 * cost +50-150 ns per malloc/free pair here. When the next allocator is
 * glibc's (x86_64/aarch64 layout: the size word before the block, low bits
 * flags, 0x2 = mmapped), the size is read from the block's own header
 * instead. That is glibc's internal layout, so it is used only after
 * checking at bind time that it gives exactly what malloc_usable_size gives
 * for heap and mmapped blocks; otherwise (jemalloc, a debugging malloc,
 * memory tagging) malloc_usable_size is called. */
static bool glibc_header;

/* From the size word: the chunk's size less its header, and less the
 * trailer an mmapped chunk has too (flag 0x2). */
static inline size_t glibc_usable_of(size_t word)
{
    return (word & ~(size_t)7) - sizeof(size_t) - (word & 2) * (sizeof(size_t) / 2);
}

static inline size_t glibc_usable(const void *p)
{
    return glibc_usable_of(((const size_t *)p)[-1]);
}

/* Bit 3 of the word before a block: never set in a glibc chunk's size word
 * (sizes are multiples of 16, flags are bits 0-2), set in the header of a
 * block of our own: the bootstrap arena's, and a sampled block's (below).
 * Free's fast path reads that word for the size anyway: one test tells it
 * the block is not a plain glibc block. */
#define OWN_BLOCK ((size_t)8)

static inline size_t usable(void *p)
{
    return likely(glibc_header) ? glibc_usable(p) : next_usable(p);
}

static void probe_glibc_header(void)
{
    void *libc_malloc = dlsym(RTLD_NEXT, "__libc_malloc");
    if (!libc_malloc || libc_malloc != (void *)next_malloc)
        return; /* not glibc's allocator (jemalloc, a debugging malloc) */
    /* Heap blocks, and one mmapped block above glibc's largest dynamic mmap
     * threshold (32 MiB), so that freeing it leaves the app's threshold
     * alone (freeing a smaller mmapped block would raise it). */
    static const size_t sizes[] = {1, 24, 100, 1000, 5000, 70000, 33u << 20};
    bool same = true;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && same; i++) {
        void *p = next_malloc(sizes[i]);
        if (!p)
            return;
        same = glibc_usable(p) == next_usable(p) && next_usable(p) >= sizes[i] &&
               !(((const size_t *)p)[-1] & OWN_BLOCK);
        next_free(p);
    }
    glibc_header = same;
}

atomic_int alloc_gate;

bool alloc_in_allocator(void)
{
    return athr.in_next != 0;
}

/* ---- the bootstrap arena -------------------------------------------------
 * Serves what dlsym (or another preload) asks for while the next allocator
 * is being found. Each block is preceded by its size. Never freed. */
#define ARENA_SIZE (256 * 1024)
static unsigned char arena[ARENA_SIZE] __attribute__((aligned(4096)));
static atomic_size_t arena_used;

static inline bool in_arena(const void *p)
{
    return (uintptr_t)p - (uintptr_t)arena < ARENA_SIZE;
}

static void *arena_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    if (n > ARENA_SIZE || align > 4096) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old = atomic_load(&arena_used), start, end;
    do {
        start = (old + 16 + align - 1) & ~(align - 1);
        end = start + ((n + 15) & ~(size_t)15);
        if (end > ARENA_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
    } while (!atomic_compare_exchange_weak(&arena_used, &old, end));
    size_t word = n << 4 | OWN_BLOCK; /* n <= ARENA_SIZE: no bit lost */
    memcpy(arena + start - sizeof(size_t), &word, sizeof word);
    return arena + start;
}

static size_t arena_block_size(const void *p)
{
    size_t word;
    memcpy(&word, (const unsigned char *)p - sizeof word, sizeof word);
    return word >> 4;
}

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
 * profiler's filter instead (heap_forget_if). */
#define TAG_ROOM 16
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

static inline void *tag_base(void *q)
{
    return (unsigned char *)q - ((size_t *)q)[-2];
}

static void die(const char *msg)
{
    /* No allocator to forward to: nothing can work. */
    syscall(SYS_write, 2, msg, strlen(msg));
    abort();
}

/* The fast paths' switches, from the mode, the header check and the gate
 * (after every change of one of them). */
#define FAST_MAX (BIG_ALLOC - 8192) /* usable stays below BIG_ALLOC on the fast path */
static void fast_update(void)
{
    bool counting = atomic_load(&alloc_mode) == AM_COUNT && glibc_header;
    atomic_store_explicit(&hot.fast_free, counting, memory_order_release);
    atomic_store_explicit(&hot.fast_below, counting && !atomic_load(&alloc_gate) ? FAST_MAX : 0,
                          memory_order_release);
}

/* Finds the next allocator once. A nested call made by dlsym itself on this
 * thread returns at once (binding_here) and is served from the arena; other
 * threads wait for the binder. */
static void bind_next(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&bind_state, &expected, 1)) {
        if (binding_here)
            return;
        while (atomic_load_explicit(&bind_state, memory_order_acquire) != 2)
            sched_yield();
        return;
    }
    binding_here = 1;
#define BIND(var, name) *(void **)&var = dlsym(RTLD_NEXT, name)
    BIND(next_malloc, "malloc");
    BIND(next_free, "free");
    BIND(next_calloc, "calloc");
    BIND(next_realloc, "realloc");
    BIND(next_memalign, "memalign");
    BIND(next_posix_memalign, "posix_memalign");
    BIND(next_aligned_alloc, "aligned_alloc");
    BIND(next_usable, "malloc_usable_size");
    BIND(next_mmap, "mmap");
    BIND(next_munmap, "munmap");
    BIND(next_mremap, "mremap");
#undef BIND
    if (!next_malloc || !next_free || !next_calloc || !next_realloc || !next_usable ||
        !next_posix_memalign || !next_mmap || !next_munmap || !next_mremap)
        die("reshim: cannot find the next allocator (malloc, free, calloc, realloc, "
            "posix_memalign, malloc_usable_size, mmap); aborting\n");
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0)
        page_size = (size_t)ps;
    probe_glibc_header();
    binding_here = 0;
    int mode = AM_COUNT;
    atomic_compare_exchange_strong(&alloc_mode, &(int){AM_UNBOUND}, mode);
    atomic_store_explicit(&bind_state, 2, memory_order_release);
    fast_update();
}

void alloc_set_passthrough(void)
{
    bind_next();
    atomic_store_explicit(&alloc_mode, AM_PASS, memory_order_release);
    atomic_store(&alloc_gate, 0);
    fast_update();
}

void alloc_gate_set(int on)
{
    if (atomic_load_explicit(&alloc_gate, RLX) == on)
        return;
    atomic_store(&alloc_gate, on);
    fast_update();
}

/* ---- per-thread counters ------------------------------------------------- */

#define SLOTS 4096

struct tslot {
    _Atomic int64_t live;
    _Atomic uint64_t allocs, frees;
    atomic_int used;
} __attribute__((aligned(64)));

static struct tslot slots[SLOTS];
static struct tslot shared_slot; /* threads without a slot: atomic read-modify-write */
static atomic_int slots_hw;
/* Written at check points only; kept off the cache line the malloc path reads. */
static _Atomic uint64_t heap_peak __attribute__((aligned(64)));

static pthread_key_t slot_key;
static atomic_int key_state; /* 0 none, 1 creating, 2 ready, 3 failed */

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

static void slot_release(void *v)
{
    struct tslot *s = v;
    athr.slot = NULL;
    athr.slot_state = 3; /* later frees of this thread go to the shared slot */
    atomic_store_explicit(&s->used, 0, memory_order_release);
}

static struct tslot *slot_claim(void)
{
    athr.slot_state = 1; /* allocations made below count in the shared slot */
    int ks = atomic_load_explicit(&key_state, memory_order_acquire);
    if (ks == 0) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&key_state, &expected, 1)) {
            ks = pthread_key_create(&slot_key, slot_release) == 0 ? 2 : 3;
            atomic_store_explicit(&key_state, ks, memory_order_release);
        }
    }
    if (ks != 2) { /* being created by another thread, or failed: try next time */
        athr.slot_state = ks == 3 ? 3 : 0;
        return NULL;
    }
    for (int i = 0; i < SLOTS; i++) {
        int expected = 0;
        if (atomic_load_explicit(&slots[i].used, RLX) == 0 &&
            atomic_compare_exchange_strong_explicit(&slots[i].used, &expected, 1,
                                                    memory_order_acquire, RLX)) {
            int hw = atomic_load(&slots_hw);
            while (hw < i + 1 && !atomic_compare_exchange_weak(&slots_hw, &hw, i + 1))
                ;
            if (pthread_setspecific(slot_key, &slots[i]) != 0) {
                atomic_store_explicit(&slots[i].used, 0, memory_order_release);
                break;
            }
            athr.slot = &slots[i];
            athr.slot_state = 2;
            return athr.slot;
        }
    }
    athr.slot_state = 3; /* table full: this thread uses the shared slot */
    return NULL;
}

static int64_t live_sum(void)
{
    int64_t sum = atomic_load_explicit(&shared_slot.live, RLX);
    int hw = atomic_load_explicit(&slots_hw, RLX);
    for (int i = 0; i < hw; i++)
        sum += atomic_load_explicit(&slots[i].live, RLX);
    return sum;
}

static void peak_update(int64_t live)
{
    if (live <= 0)
        return;
    uint64_t p = atomic_load_explicit(&heap_peak, RLX);
    while ((uint64_t)live > p &&
           !atomic_compare_exchange_weak_explicit(&heap_peak, &p, (uint64_t)live, RLX, RLX))
        ;
}

static __attribute__((noinline)) void growth_point(size_t sz)
{
    athr.growth = 0;
    peak_update(live_sum());
    if (!reshim_guard && atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_NONE)
        reshim_init_slow(); /* a growth step is a slow point: init if no real call did */
    if (!reshim_guard && atomic_load_explicit(&reshim_state, memory_order_acquire) == RS_ACTIVE) {
        int saved = errno; /* a malloc that succeeds leaves errno alone */
        memmon_growth(sz >= BIG_ALLOC ? sz : 0);
        errno = saved;
    }
}

static __attribute__((noinline)) void count_slow(int64_t d, bool alloc)
{
    struct tslot *s = athr.slot_state == 0 ? slot_claim() : athr.slot;
    if (s) {
        slot_add(&s->live, d);
        slot_inc(alloc ? &s->allocs : &s->frees);
    } else {
        atomic_fetch_add_explicit(&shared_slot.live, d, RLX);
        atomic_fetch_add_explicit(alloc ? &shared_slot.allocs : &shared_slot.frees, 1, RLX);
    }
}

static inline void count_alloc_as(size_t sz, bool maybe_big)
{
    struct athr *t = &athr;
    struct tslot *s = t->slot;
    if (likely(s)) {
        slot_add(&s->live, (int64_t)sz);
        slot_inc(&s->allocs);
    } else {
        count_slow((int64_t)sz, true);
    }
    int64_t g = t->growth + (int64_t)sz;
    t->growth = g;
    if (unlikely(g >= GROWTH_STEP || (maybe_big && sz >= BIG_ALLOC)))
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
    struct athr *t = &athr;
    struct tslot *s = t->slot;
    if (likely(s)) {
        slot_sub(&s->live, (int64_t)sz);
        slot_inc(&s->frees);
    } else {
        count_slow(-(int64_t)sz, false);
    }
    int64_t g = t->growth - (int64_t)sz;
    t->growth = g < 0 ? 0 : g;
}

/* A block replaced by another (realloc): one free and one allocation. */
static inline void count_replace(size_t old, size_t now)
{
    count_free(old);
    count_alloc(now);
}

/* ---- the gate ------------------------------------------------------------ */

/* Consulted on every growing allocation once memmon has armed the gate
 * (enforce, near the budget), and on every large one (>= BIG_ALLOC) always:
 * one request can take a process from far below its budget to far past it
 * (a 300 MB bytearray), and such a request costs a system call anyway. */
static inline bool gate_asks(size_t n)
{
    return unlikely(n >= BIG_ALLOC || atomic_load_explicit(&alloc_gate, RLX)) && !reshim_guard;
}

static __attribute__((noinline)) bool ask_gate(size_t n)
{
    int saved = errno; /* the caller sets ENOMEM itself when denied */
    bool deny = memmon_deny(n);
    errno = saved;
    return deny;
}

static inline bool gated(size_t n)
{
    return gate_asks(n) && ask_gate(n);
}

static void *enomem(void)
{
    errno = ENOMEM;
    return NULL;
}

/* ---- the malloc family --------------------------------------------------- */

static inline int mode_now(void)
{
    return atomic_load_explicit(&alloc_mode, memory_order_acquire);
}

/* Not bound yet: bind, or serve from the arena when dlsym itself asks. */
static bool cold_use_arena(void)
{
    bind_next();
    return atomic_load_explicit(&bind_state, memory_order_acquire) != 2;
}

/* Every malloc takes either the fast path (counting, glibc's allocator,
 * the gate disarmed, a request below FAST_MAX: one load and compare
 * decides; then the sampling countdown, the call and the count) or the
 * general path, which looks at everything. */
/* The room a sampled block's mark takes (0: not marked). */
static inline size_t mark_room(bool smp, size_t n)
{
    return smp && tagging() && n <= SIZE_MAX / 2 ? TAG_ROOM : 0;
}

/* A block the next allocator returned (room bytes more than the n asked,
 * when sampled and marked): counted, then marked and recorded when sampled. */
static inline void *counted_block(void *p, size_t n, bool smp, size_t room)
{
    if (likely(p)) {
        count_alloc(usable(p));
        if (unlikely(smp)) {
            if (room)
                p = tag(p, room);
            heap_record(p, n);
        }
    }
    return p;
}

static __attribute__((noinline)) void *malloc_counted(size_t n, bool smp)
{
    if (gated(n))
        return enomem();
    size_t room = mark_room(smp, n);
    return counted_block(NEXT(next_malloc(n + room)), n, smp, room);
}

/* The fast path's rare ends: no slot yet, or a growth step. */
static __attribute__((noinline)) void *malloc_counted_after(void *p, size_t sz)
{
    count_alloc_small(sz);
    return p;
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

EXPORT void *malloc(size_t n)
{
    if (unlikely(n >= atomic_load_explicit(&hot.fast_below, memory_order_acquire)))
        return malloc_general(n);
    if (unlikely(heap_crossed(n))) /* the countdown: rarely */
        return malloc_counted(n, heap_decide(n));
    void *p = NEXT(next_malloc(n));
    if (unlikely(!p))
        return p;
    size_t sz = glibc_usable(p);
    struct athr *t = &athr;
    struct tslot *s = t->slot;
    int64_t g = t->growth + (int64_t)sz;
    if (unlikely(!s) || unlikely(g >= GROWTH_STEP))
        return malloc_counted_after(p, sz);
    slot_add(&s->live, (int64_t)sz);
    slot_inc(&s->allocs);
    t->growth = g;
    return p;
}

static __attribute__((noinline)) void free_general(void *p)
{
    if (unlikely(in_arena(p)))
        return;
    if (is_tagged(p)) { /* sampled: forgotten first (then another thread may get it) */
        heap_forget(p);
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
    count_free(usable(p));
    NEXT_VOID(next_free(p));
}

EXPORT void free(void *p)
{
    if (unlikely(!p))
        return;
    if (likely(atomic_load_explicit(&hot.fast_free, memory_order_acquire))) {
        size_t word = ((const size_t *)p)[-1];
        if (likely(!(word & OWN_BLOCK))) { /* glibc's, not sampled */
            int64_t sz = (int64_t)glibc_usable_of(word);
            struct athr *t = &athr;
            struct tslot *s = t->slot;
            if (likely(s)) {
                slot_sub(&s->live, sz);
                slot_inc(&s->frees);
                int64_t g = t->growth - sz;
                t->growth = g < 0 ? 0 : g;
            } else {
                count_free((size_t)sz);
            }
            t->in_next++;
            next_free(p);
            t->in_next--;
            return;
        }
    }
    free_general(p);
}

EXPORT void *calloc(size_t nmemb, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(nmemb, size, &total))
        return enomem();
    int m = mode_now();
    if (unlikely(m != AM_COUNT)) {
        if (m == AM_PASS)
            return next_calloc(nmemb, size);
        if (cold_use_arena())
            return arena_alloc(total, 16); /* static memory: already zero */
        return reshim_app_calloc(nmemb, size);
    }
    bool smp = heap_due(total);
    if (gated(total))
        return enomem();
    size_t room = mark_room(smp, total);
    void *p = NEXT(room ? next_calloc(1, total + room) : next_calloc(nmemb, size));
    return counted_block(p, total, smp, room);
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
    size_t off = was ? ((size_t *)p)[-2] : TAG_ROOM;
    void *base = was ? tag_base(p) : p;
    size_t old = usable(base);
    if (n > SIZE_MAX / 2)
        return enomem();
    if (n + off > old && gated(n + off - old))
        return enomem();
    struct heap_taken taken;
    taken.had = false;
    if (was)
        heap_take(p, &taken);
    void *r = NEXT(next_realloc(base, n + off));
    if (!r) {
        heap_restore(p, &taken);
        return NULL;
    }
    count_replace(old, usable(r));
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

EXPORT void *realloc(void *p, size_t n)
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
        while (room < align && room <= page_size)
            room <<= 1;
        if (room > page_size || n > SIZE_MAX / 2)
            smp = false, room = 0;
    }
    return counted_block(NEXT(aligned_next(kind, align, n + room, err)), n, smp, room);
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
    return aligned_ret(AL_MEMALIGN, page_size, n);
}

EXPORT void *pvalloc(size_t n)
{
    size_t rounded;
    if (__builtin_add_overflow(n, page_size - 1, &rounded))
        return enomem();
    rounded &= ~(page_size - 1);
    return aligned_ret(AL_MEMALIGN, page_size, rounded); /* 0: the smallest block, as glibc */
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
        return next_usable(tag_base(p)) - ((size_t *)p)[-2];
    return next_usable(p);
}

/* ---- anonymous mappings ---------------------------------------------------
 * Writable private anonymous mappings are counted (CPython's arenas, gcc's
 * GC heap, V8, the JVM take their memory that way). A sorted table of
 * counted ranges, coalesced, tells munmap/mremap what they release, even in
 * part. Mapping calls cost microseconds anyway: a spin lock guards it. */

struct range {
    uintptr_t lo, hi;
};
#define RANGE_CAP 65536
static struct range *ranges; /* RANGE_CAP entries, mapped on first use */
static size_t nranges;
static atomic_flag range_lock = ATOMIC_FLAG_INIT;
static TLS_IE int in_range_op;
static _Atomic uint64_t map_bytes __attribute__((aligned(64)));
static _Atomic uint64_t map_peak, map_calls, unmap_calls, map_untracked;

static inline bool counted_map(int prot, int flags)
{
    return (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE && (prot & PROT_WRITE);
}

static inline uintptr_t page_up(uintptr_t x)
{
    return (x + page_size - 1) & ~(uintptr_t)(page_size - 1);
}

static void *raw_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
    if (next_mmap)
        return next_mmap(a, len, prot, flags, fd, off);
    return (void *)syscall(SYS_mmap, a, len, prot, flags, fd, off);
}

static bool range_begin(void)
{
    if (in_range_op) /* a signal handler mapping inside our own update */
        return false;
    in_range_op = 1;
    while (atomic_flag_test_and_set_explicit(&range_lock, memory_order_acquire))
        sched_yield();
    if (!ranges) {
        void *m = sys_map(RANGE_CAP * sizeof(struct range));
        if (!m) {
            atomic_flag_clear_explicit(&range_lock, memory_order_release);
            in_range_op = 0;
            return false;
        }
        ranges = m;
    }
    return true;
}

static void range_end(void)
{
    atomic_flag_clear_explicit(&range_lock, memory_order_release);
    in_range_op = 0;
}

/* First range whose end is above lo. */
static size_t range_find(uintptr_t lo)
{
    size_t a = 0, b = nranges;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (ranges[mid].hi <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    return a;
}

/* Removes [lo, hi) from the table; returns the bytes that were counted. */
static uint64_t range_remove(uintptr_t lo, uintptr_t hi)
{
    uint64_t removed = 0;
    size_t i = range_find(lo);
    while (i < nranges && ranges[i].lo < hi) {
        struct range *r = &ranges[i];
        uintptr_t a = r->lo > lo ? r->lo : lo, b = r->hi < hi ? r->hi : hi;
        removed += b - a;
        if (r->lo < lo && r->hi > hi) { /* a hole in the middle: split */
            if (nranges == RANGE_CAP) { /* cannot split: keep the larger part */
                if (lo - r->lo >= r->hi - hi) {
                    removed += r->hi - hi;
                    r->hi = lo;
                } else {
                    removed += lo - r->lo;
                    r->lo = hi;
                }
                atomic_fetch_add_explicit(&map_untracked, 1, RLX);
                return removed;
            }
            memmove(r + 1, r, (nranges - i) * sizeof *r);
            nranges++;
            ranges[i].hi = lo;
            ranges[i + 1].lo = hi;
            return removed;
        }
        if (r->lo < lo) {
            r->hi = lo;
            i++;
        } else if (r->hi > hi) {
            r->lo = hi;
            i++;
        } else {
            memmove(r, r + 1, (nranges - i - 1) * sizeof *r);
            nranges--;
        }
    }
    return removed;
}

/* Adds [lo, hi) (not overlapping anything after range_remove); false when
 * the table is full. */
static bool range_add(uintptr_t lo, uintptr_t hi)
{
    size_t i = range_find(lo);
    bool join_prev = i > 0 && ranges[i - 1].hi == lo;
    bool join_next = i < nranges && ranges[i].lo == hi;
    if (join_prev && join_next) {
        ranges[i - 1].hi = ranges[i].hi;
        memmove(&ranges[i], &ranges[i + 1], (nranges - i - 1) * sizeof *ranges);
        nranges--;
    } else if (join_prev) {
        ranges[i - 1].hi = hi;
    } else if (join_next) {
        ranges[i].lo = lo;
    } else {
        if (nranges == RANGE_CAP)
            return false;
        memmove(&ranges[i + 1], &ranges[i], (nranges - i) * sizeof *ranges);
        ranges[i] = (struct range){lo, hi};
        nranges++;
    }
    return true;
}

static void map_account(uint64_t removed, uint64_t added)
{
    uint64_t now = atomic_load_explicit(&map_bytes, RLX) - removed + added;
    atomic_store_explicit(&map_bytes, now, RLX);
    if (now > atomic_load_explicit(&map_peak, RLX))
        atomic_store_explicit(&map_peak, now, RLX);
}

static bool range_is_counted(uintptr_t lo, uintptr_t hi)
{
    bool yes = false;
    if (range_begin()) {
        size_t i = range_find(lo);
        yes = i < nranges && ranges[i].lo < hi;
        range_end();
    }
    return yes;
}

static inline bool counting_maps(void)
{
    return mode_now() == AM_COUNT;
}

static void *reshim_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
    if (athr.in_next)
        return raw_mmap(a, len, prot, flags, fd, off);
    bool counted = counted_map(prot, flags);
    /* MAP_NORESERVE: a reservation (V8's heap, sparse arenas, guest RAM)
     * that costs nothing until touched: counted like any mapping, never
     * refused (RSS shows what is touched). */
    if (counted && !(flags & MAP_NORESERVE) && counting_maps() && gated(len)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = raw_mmap(a, len, prot, flags, fd, off);
    if (p == MAP_FAILED || !counting_maps() || (!counted && !(flags & MAP_FIXED)))
        return p;
    int saved = errno;
    uintptr_t lo = (uintptr_t)p, hi = page_up(lo + len);
    if (range_begin()) {
        uint64_t removed = range_remove(lo, hi); /* MAP_FIXED over counted pages */
        uint64_t added = 0;
        if (counted) {
            if (range_add(lo, hi))
                added = hi - lo;
            else
                atomic_fetch_add_explicit(&map_untracked, 1, RLX);
            atomic_fetch_add_explicit(&map_calls, 1, RLX);
        }
        map_account(removed, added);
        range_end();
    }
    errno = saved;
    if (counted && !reshim_guard) { /* new mappings are growth too */
        athr.growth += (int64_t)len;
        if (athr.growth >= GROWTH_STEP || len >= BIG_ALLOC)
            growth_point(len);
    }
    return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return reshim_mmap(addr, len, prot, flags, fd, off);
}

/* musl's <sys/mman.h> makes mmap64 a macro for mmap (its libc has no such
 * symbol); the export stays, for a program built against older musl. */
#ifdef mmap64
#undef mmap64
#endif
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return reshim_mmap(addr, len, prot, flags, fd, off);
}

EXPORT int munmap(void *addr, size_t len)
{
    int rc = next_munmap ? next_munmap(addr, len) : (int)syscall(SYS_munmap, addr, len);
    if (rc != 0 || athr.in_next || !counting_maps())
        return rc;
    int saved = errno;
    uintptr_t lo = (uintptr_t)addr, hi = page_up(lo + len);
    if (range_begin()) {
        uint64_t removed = range_remove(lo, hi);
        if (removed) {
            map_account(removed, 0);
            atomic_fetch_add_explicit(&unmap_calls, 1, RLX);
        }
        range_end();
    }
    errno = saved;
    return rc;
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *want = NULL;
    /* The kernel takes new_address with MREMAP_FIXED, and as a hint with
     * MREMAP_DONTUNMAP (glibc passes it on for both). */
    if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    if (unlikely(mode_now() == AM_UNBOUND))
        bind_next();
    uintptr_t lo = (uintptr_t)old, hi = page_up(lo + old_len);
    bool counting = counting_maps() && !athr.in_next;
    if (counting && new_len > old_len && gate_asks(new_len - old_len) &&
        range_is_counted(lo, hi) && ask_gate(new_len - old_len)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    void *p = next_mremap(old, old_len, new_len, flags, want);
    if (p == MAP_FAILED || !counting)
        return p;
    int saved = errno;
    if (range_begin()) {
        uint64_t removed = range_remove(lo, hi), added = 0;
        if (removed && (flags & MREMAP_DONTUNMAP) && range_add(lo, hi))
            added += hi - lo; /* the old range stays mapped (empty) */
        if (removed) {
            uintptr_t nlo = (uintptr_t)p, nhi = page_up(nlo + new_len);
            range_remove(nlo, nhi);
            if (range_add(nlo, nhi))
                added += nhi - nlo;
            else
                atomic_fetch_add_explicit(&map_untracked, 1, RLX);
        }
        map_account(removed, added);
        range_end();
    }
    errno = saved;
    return p;
}

/* ---- figures, trim, fork --------------------------------------------------- */

void alloc_totals(struct alloc_totals *t)
{
    memset(t, 0, sizeof *t);
    t->heap_live = atomic_load_explicit(&shared_slot.live, RLX);
    t->allocs = atomic_load_explicit(&shared_slot.allocs, RLX);
    t->frees = atomic_load_explicit(&shared_slot.frees, RLX);
    int hw = atomic_load_explicit(&slots_hw, RLX);
    for (int i = 0; i < hw; i++) {
        t->heap_live += atomic_load_explicit(&slots[i].live, RLX);
        t->allocs += atomic_load_explicit(&slots[i].allocs, RLX);
        t->frees += atomic_load_explicit(&slots[i].frees, RLX);
    }
    peak_update(t->heap_live);
    t->heap_peak = atomic_load_explicit(&heap_peak, RLX);
    t->mmap_anon = atomic_load_explicit(&map_bytes, RLX);
    t->mmap_anon_peak = atomic_load_explicit(&map_peak, RLX);
    t->mmaps = atomic_load_explicit(&map_calls, RLX);
    t->munmaps = atomic_load_explicit(&unmap_calls, RLX);
    t->untracked = atomic_load_explicit(&map_untracked, RLX);
}

/* Which trim the next allocator offers, found once (dladdr: off the hot
 * path, and never under a lock of ours). */
static int (*trim_glibc)(size_t);
static int (*trim_jemalloc)(const char *, void *, size_t *, void *, size_t);
static void (*trim_tcmalloc)(void);
static atomic_int trim_probed;
static char next_name[64] = "?";

static bool same_object(void *a, void *b)
{
    Dl_info x, y;
    return a && b && dladdr(a, &x) && dladdr(b, &y) && x.dli_fbase == y.dli_fbase;
}

static void trim_probe(void)
{
    if (atomic_load_explicit(&trim_probed, memory_order_acquire))
        return;
    bind_next();
    Dl_info info;
    if (dladdr((void *)next_malloc, &info) && info.dli_fname) {
        const char *base = strrchr(info.dli_fname, '/');
        base = base ? base + 1 : info.dli_fname;
        size_t n = strlen(base);
        if (n >= sizeof next_name)
            n = sizeof next_name - 1;
        memcpy(next_name, base, n);
        next_name[n] = 0;
    }
    /* One lookup after the other, stopping at the allocator's own: a lookup
     * that fails makes glibc's dlerror allocate (malloc, counted as the
     * app's), which the usual glibc case must never do, since the stats
     * snapshot asks for the trim method while the app is measured. */
    void *g = dlsym(RTLD_NEXT, "malloc_trim"), *j = NULL, *t = NULL;
    if (same_object(g, (void *)next_malloc))
        *(void **)&trim_glibc = g;
    else if (same_object(j = dlsym(RTLD_NEXT, "mallctl"), (void *)next_malloc))
        *(void **)&trim_jemalloc = j;
    else if (same_object(t = dlsym(RTLD_NEXT, "MallocExtension_ReleaseFreeMemory"),
                         (void *)next_malloc))
        *(void **)&trim_tcmalloc = t;
    atomic_store_explicit(&trim_probed, 1, memory_order_release);
}

const char *alloc_next_name(void)
{
    trim_probe();
    return next_name;
}

const char *alloc_trim_method(void)
{
    trim_probe();
    return trim_glibc ? "malloc_trim" : trim_jemalloc ? "jemalloc" : trim_tcmalloc ? "tcmalloc"
                                                                                 : "none";
}

int alloc_trim(void)
{
    trim_probe();
    if (trim_glibc) {
        trim_glibc(0);
        return 0;
    }
    if (trim_jemalloc) /* MALLCTL_ARENAS_ALL is 4096 in jemalloc 5 */
        return trim_jemalloc("arena.4096.purge", NULL, NULL, NULL, 0) == 0 ? 0 : -1;
    if (trim_tcmalloc) {
        trim_tcmalloc();
        return 0;
    }
    return -1;
}

/* fork: prepare takes the mapping-table lock, parent/child release it; the
 * child keeps live bytes (it holds those blocks) and zeroes the counts. */
static void alloc_atfork(int phase)
{
    if (phase == ATFORK_PREPARE) {
        in_range_op = 1;
        while (atomic_flag_test_and_set_explicit(&range_lock, memory_order_acquire))
            sched_yield();
        return;
    }
    atomic_flag_clear_explicit(&range_lock, memory_order_release);
    in_range_op = 0;
    if (phase != ATFORK_CHILD)
        return;
    /* The child holds the same blocks and mappings (live bytes stay), but its
     * own counts start at zero; the other threads' slots are free again. */
    int hw = atomic_load(&slots_hw);
    for (int i = 0; i < hw; i++) {
        atomic_store(&slots[i].allocs, 0);
        atomic_store(&slots[i].frees, 0);
        if (&slots[i] != athr.slot)
            atomic_store(&slots[i].used, 0);
    }
    atomic_store(&shared_slot.allocs, 0);
    atomic_store(&shared_slot.frees, 0);
    int64_t live = live_sum();
    atomic_store(&heap_peak, live > 0 ? (uint64_t)live : 0);
    atomic_store(&map_peak, atomic_load(&map_bytes));
    atomic_store(&map_calls, 0);
    atomic_store(&unmap_calls, 0);
    atomic_store(&map_untracked, 0);
}
RESHIM_ATFORK(alloc_atfork, ATFORK_RANK_ALLOC);

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
