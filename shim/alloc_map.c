/* alloc_map.c: anonymous mappings (mmap, mmap64, munmap, mremap), counted
 * and gated under policy enforce.
 *
 * Writable private anonymous mappings are counted (CPython's arenas, gcc's
 * GC heap, V8, the JVM take their memory that way). A sorted table of
 * counted ranges, coalesced, tells munmap/mremap what they release, even in
 * part. Mapping calls cost microseconds anyway: a spin lock guards the
 * table (taken around fork: alloc_map_atfork). The mappings the next
 * allocator makes itself (athr.in_next: jemalloc maps its extents through
 * the PLT) are heap, already counted as blocks, and pass through.
 *
 * Calls downward only (alloc_impl.h): the next allocator's mapping calls
 * (alloc_next.c), the counters (alloc_count.c), check points and the gate
 * (alloc_gate.c). The table itself lives in sys_map memory, never the app's.
 *
 * Never: allocates, or calls anything but the counters while it holds the
 * table's lock. */
#define _GNU_SOURCE
#include "alloc_impl.h"

#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atfork.h"
#include "sys.h"

struct range {
    uintptr_t lo, hi;
};
#define RANGE_CAP 65536
static struct range *ranges; /* RANGE_CAP entries, mapped on first use */
static size_t nranges;
static atomic_flag range_lock = ATOMIC_FLAG_INIT;
static TLS_IE int in_range_op;

static inline bool counted_map(int prot, int flags)
{
    return (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE && (prot & PROT_WRITE);
}

static inline uintptr_t page_up(uintptr_t x)
{
    return (x + alloc_page_size - 1) & ~(uintptr_t)(alloc_page_size - 1);
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
                map_count(MAP_EV_UNTRACKED);
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
                map_count(MAP_EV_UNTRACKED);
            map_count(MAP_EV_MAP);
        }
        map_account(removed, added);
        range_end();
    }
    errno = saved;
    if (counted && !reshim_guard) { /* new mappings are growth too */
        athr.growth += (int64_t)len;
        if (athr.growth >= GROWTH_STEP || len >= BIG_ALLOC)
            growth_point(len); /* before it is in athr.mapped: coming */
        athr.mapped += (int64_t)len;
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
            map_count(MAP_EV_UNMAP);
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
                map_count(MAP_EV_UNTRACKED);
        }
        map_account(removed, added);
        range_end();
    }
    errno = saved;
    return p;
}

/* fork: prepare takes the table's lock, parent and child release it. */
static void alloc_map_atfork(int phase)
{
    if (phase == ATFORK_PREPARE) {
        in_range_op = 1;
        while (atomic_flag_test_and_set_explicit(&range_lock, memory_order_acquire))
            sched_yield();
        return;
    }
    atomic_flag_clear_explicit(&range_lock, memory_order_release);
    in_range_op = 0;
}
RESHIM_ATFORK(alloc_map_atfork, ATFORK_RANK_ALLOC);
