/* alloc_next.c: the next allocator, and the switches that route the malloc
 * family to it.
 *
 * Owns: the next allocator's entry points (dlsym(RTLD_NEXT): glibc, or
 * jemalloc in redis-server), found once; the static bootstrap arena that
 * serves what dlsym (or another preload) asks for while they are being
 * found; the check that glibc's block header may be read; the mode
 * (unbound, counting, passthrough) and the gate's armed flag, and from them
 * the words the fast path reads (alloc_hot); the trim the next allocator
 * offers.
 *
 * The bottom of the allocation layer (alloc_impl.h): calls nothing of the
 * shim above it. memmon.c arms the gate here (alloc_gate_set) and trims
 * here; the interposers ask memmon through alloc_gate.c: so the layers call
 * only downward.
 *
 * Never: calls an interposed allocation function of its own, takes a lock
 * (the binder is a compare-and-swap; other threads yield until it is done),
 * or frees anything at exit. */
#define _GNU_SOURCE
#include "alloc_impl.h"

#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct alloc_hot alloc_hot __attribute__((aligned(64)));
void *(*next_calloc)(size_t, size_t);
void *(*next_realloc)(void *, size_t);
void *(*next_memalign)(size_t, size_t);
int (*next_posix_memalign)(void **, size_t, size_t);
void *(*next_aligned_alloc)(size_t, size_t);
size_t (*next_usable)(void *);
void *(*next_mmap)(void *, size_t, int, int, int, off_t);
int (*next_munmap)(void *, size_t);
void *(*next_mremap)(void *, size_t, size_t, int, ...);

atomic_int alloc_mode;
atomic_int alloc_bind_state;
static TLS_IE int binding_here;
size_t alloc_page_size = 4096;
bool glibc_header;
atomic_int alloc_gate;

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

/* ---- the bootstrap arena ------------------------------------------------- */

unsigned char alloc_arena[ARENA_SIZE] __attribute__((aligned(4096)));
static atomic_size_t arena_used;

void *arena_alloc(size_t n, size_t align)
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
    memcpy(alloc_arena + start - sizeof(size_t), &word, sizeof word);
    return alloc_arena + start;
}

void alloc_arena_only(bool on)
{
    athr.arena_only = on;
}

size_t arena_block_size(const void *p)
{
    size_t word;
    memcpy(&word, (const unsigned char *)p - sizeof word, sizeof word);
    return word >> 4;
}

/* ---- binding, and the fast path's switches -------------------------------- */

static void die(const char *msg)
{
    /* No allocator to forward to: nothing can work. */
    syscall(SYS_write, 2, msg, strlen(msg));
    abort();
}

/* The fast paths' switches, from the mode, the header check and the gate
 * (after every change of one of them). */
static void fast_update(void)
{
    bool counting = atomic_load(&alloc_mode) == AM_COUNT && glibc_header;
    atomic_store_explicit(&alloc_hot.fast_free, counting, memory_order_release);
    atomic_store_explicit(&alloc_hot.fast_below,
                          counting && !atomic_load(&alloc_gate) ? FAST_MAX : 0,
                          memory_order_release);
}

/* A nested call made by dlsym itself on this thread returns at once
 * (binding_here) and is served from the arena; other threads wait for the
 * binder. */
void bind_next(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&alloc_bind_state, &expected, 1)) {
        if (binding_here)
            return;
        while (atomic_load_explicit(&alloc_bind_state, memory_order_acquire) != 2)
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
        alloc_page_size = (size_t)ps;
    probe_glibc_header();
    binding_here = 0;
    int mode = AM_COUNT;
    atomic_compare_exchange_strong(&alloc_mode, &(int){AM_UNBOUND}, mode);
    atomic_store_explicit(&alloc_bind_state, 2, memory_order_release);
    fast_update();
}

bool cold_use_arena(void)
{
    bind_next();
    return atomic_load_explicit(&alloc_bind_state, memory_order_acquire) != 2;
}

void alloc_bind(void)
{
    bind_next();
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

/* ---- trim ------------------------------------------------------------------ */

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
