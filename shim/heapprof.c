/* heapprof.c: who holds the memory: Poisson byte sampling of the malloc
 * family, stacks, and per-site estimates of live bytes and objects.
 *
 * Owns: the per-thread countdown (initial-exec TLS; it also ends the
 * allocation layer's growth windows, whose function alloc.c hands in:
 * heapprof_window), the unwinder, the site
 * and live-address tables (heapsample.c) in raw mappings of our own, the
 * spin lock that serialises their writers, the symbols, and the answers to
 * `heap N` and to memmon's log line.
 *
 * The unwinder (RESHIM_HEAP_UNWINDER) is libgcc's _Unwind_Backtrace
 * (libgcc_s.so.1) or libunwind's unw_backtrace (libunwind.so.8), opened at
 * the first sample: the preload object keeps needing libc only. Measured
 * side by side (tests/bench, README "The unwinder"): libgcc's reads and
 * runs every frame's DWARF program at every sample (~1.8k instructions a
 * frame); libunwind's is 10-12x cheaper but keeps a ~280 KiB cache in every
 * thread that samples (a memory budgeter must not add that to each of a
 * server's threads), costs 0.3-0.4 ms at each thread's first sample and
 * calls dl_iterate_phdr on its misses. So auto puts cfiwalk.c in front of
 * libgcc's: the rules read once from libgcc's tables into one table for all
 * threads, cheaper than libunwind, with libgcc's memory and start-up; the
 * stacks it does not cache go to _Unwind_Backtrace. Where cfiwalk cannot run
 * auto is libgcc's, libunwind's when libgcc_s is missing.
 *
 * Rules kept here: the stack is taken under the recursion guard (what the
 * unwinder does passes straight through) and outside every lock; the lock is
 * taken only on the sampled path (record, and the free of a sampled block),
 * never while unwinding or resolving symbols; symbols are resolved only on
 * request, by the thread that asks (the stats or the monitor thread).
 * Never: allocates through the app's malloc, or frees anything at exit. */
#define _GNU_SOURCE
#include "heapprof.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include "answerjson.h"
#include "config.h"
#include "atfork.h"
#include "cfiwalk.h"
#include "log.h"
#include "snapshot.h"
#include "sys.h"

#define SITE_CAP 16384
#define FRAME_CAP (256 * 1024) /* 2 MiB of frames: 16 a site on average */
#define LIVE_CAP 65536
#define STR_CAP (1024 * 1024) /* Python file and function names */
#define STR_SLOTS 16384
#define DEPTH SNAP_HEAP_DEPTH     /* frames kept per stack */
#define SYM_MAX SNAP_HEAP_SYM_MAX /* bytes of one symbolized frame */
_Static_assert(PY_DEPTH <= SNAP_HEAP_PY_DEPTH && HS_STR_MAX < SNAP_HEAP_PY_STR_MAX,
               "a site's Python frames fit the heap answer");

TLS_IE int64_t heap_left;
/* The countdown serves two: the bytes to this thread's next sample, and
 * the allocation layer's growth windows (heapprof_window). It is armed
 * with the nearer of the two, both kept here; at a crossing, what was used
 * since comes off both: one subtraction on the malloc path for both. */
static TLS_IE struct {
    int64_t armed, sample_rest, window_rest;
    int started; /* this thread's countdown has been drawn */
    struct cfi_stack stack; /* this thread's stack, for cfiwalk */
} cd; /* one TLS block: one relocation at load, not five */
static void (*window_end)(size_t);
static int64_t window_len = 64 * 1024; /* until handed in (alloc.c's constructor): soon again */
static TLS_IE int in_lock;   /* this thread holds hp_lock (a signal handler may free) */
TLS_IE int heap_forced;
TLS_IE int heap_in_py_hook;
static const struct heap_py_ops *py; /* pyheap.c's, from heapprof_init */

struct hs_live heap_addrs;
static struct hs_sites sites;
static struct hs_strs strs;
static void *site_mem, *live_mem, *str_mem;
static size_t site_mem_len, live_mem_len, str_mem_len;

/* UNDECIDED: before init. PENDING: the rate is known; the unwinder is
 * loaded and the tables mapped at the first sample (so that a process that
 * never allocates R bytes, /bin/true or a shell command, never pays for a
 * dlopen). SETTING: one thread is doing that. */
enum { HP_UNDECIDED, HP_ON, HP_OFF, HP_PENDING, HP_SETTING };
static atomic_int hp_state;
static uint64_t rate;
static char off_reason[160] = "heap sampling is not set up";
static atomic_flag hp_lock = ATOMIC_FLAG_INIT;

static enum reshim_unwinder want_unwinder;
static _Unwind_Reason_Code (*unwind_backtrace)(_Unwind_Trace_Fn, void *);
static _Unwind_Ptr (*unwind_getip)(struct _Unwind_Context *);
static int (*unw_backtrace)(void **, int); /* libunwind's: set when it is the one in use */
static cfi_find_fde_fn find_fde;           /* libgcc's _Unwind_Find_FDE, for cfiwalk */
static bool cfi_on;                        /* auto: cfiwalk first, libgcc's for the rest */
static void *cfi_mem;
static _Atomic uint64_t stacks_cached, stacks_full; /* walked by cfiwalk, by the unwinder */
static const char *unwinder_name = "none";
static uintptr_t self_lo, self_hi; /* our own object: its frames are skipped */

/* ---- the countdown --------------------------------------------------------- */

static bool setup(void);

/* The shim's init (lifecycle.c's, handed in at load: heapprof_boot), called
 * by a decision before init for an allocation of BIG_ALLOC or more (from
 * which the allocation layer initialises anyway). */
static void (*init_now)(void);

void heapprof_boot(void (*init)(void))
{
    init_now = init;
}

/* Another thread is setting up (a dlopen, a first unwind: about a
 * millisecond): wait for it, so that this thread's samples are not lost,
 * but only so long: if this thread holds the loader's lock (malloc from a
 * library constructor), the setting up waits for it, not the reverse. */
static bool wait_setting(void)
{
    int saved = errno;
    int st = atomic_load_explicit(&hp_state, memory_order_acquire);
    for (int i = 0; i < 500 && st == HP_SETTING; i++) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
        st = atomic_load_explicit(&hp_state, memory_order_acquire);
    }
    errno = saved;
    return st == HP_ON;
}

void heapprof_window(void (*fn)(size_t), int64_t bytes)
{
    window_len = bytes;
    window_end = fn;
}

static void arm(int64_t sample_left, int64_t window_left)
{
    cd.sample_rest = sample_left;
    cd.window_rest = window_left;
    cd.armed = heap_left = sample_left < window_left ? sample_left : window_left;
}

/* The sample's countdown went below 0: the decision. The countdown is
 * armed again before anything that may allocate on this thread (init,
 * set-up). */
static bool sample_decide(size_t n, int64_t window)
{
    int st = atomic_load_explicit(&hp_state, memory_order_acquire);
    if (st == HP_UNDECIDED && n >= BIG_ALLOC && !reshim_guard && init_now) {
        /* An allocation this large initialises the shim right after it
         * (growth_point, alloc_gate.c): initialise first, so that it can be
         * sampled (init_now waits for a thread that is initialising). A
         * thread's first multi-MiB blocks, or all of them while another
         * thread initialised, had no sample. */
        arm(64 * 1024, window);
        init_now();
        st = atomic_load_explicit(&hp_state, memory_order_acquire);
    }
    if (st == HP_UNDECIDED || st == HP_OFF) {
        /* Before init: look again after a while; off: never. */
        arm(st == HP_OFF ? HEAP_PARKED : 64 * 1024, window);
        return false;
    }
    if (!cd.started) { /* the thread's first countdown: this allocation may be in it */
        cd.started = 1;
        int64_t left = hs_draw(reshim_random(), rate) - (int64_t)(n ? n : 1);
        if (left >= 0) {
            arm(left, window);
            return false;
        }
    }
    arm(hs_draw(reshim_random(), rate), window); /* fresh: each block sampled at most once */
    /* The shim's own allocations are not sampled, nor those of a signal
     * handler (or fork) interrupting our own update on this thread. */
    if (reshim_guard || in_lock)
        return false;
    if (st == HP_ON)
        return true;
    if (st == HP_PENDING)
        return setup();
    return wait_setting();
}

bool heap_decide(size_t n)
{
    if (unlikely(heap_forced)) { /* parked for one sample: this one, none after it */
        heap_forced = 0;
        heap_left = HEAP_PARKED; /* heap_unpark puts the armed countdown back */
        return true;
    }
    int64_t used = cd.armed - heap_left; /* this allocation's n included */
    int64_t sample_left = cd.sample_rest - used, window_left = cd.window_rest - used;
    bool ended = window_left < 0;
    if (ended)
        window_left = window_len;
    bool smp = false;
    if (sample_left < 0)
        smp = sample_decide(n, window_left);
    else
        arm(sample_left, window_left);
    if (ended && window_end)
        window_end(n);
    return smp;
}

/* ---- stacks ---------------------------------------------------------------- */

struct bt {
    uintptr_t *f;
    int n, max;
};

static inline bool in_self(uintptr_t ip)
{
    return ip >= self_lo && ip < self_hi;
}

static _Unwind_Reason_Code bt_step(struct _Unwind_Context *ctx, void *arg)
{
    struct bt *b = arg;
    uintptr_t ip = (uintptr_t)unwind_getip(ctx);
    if (!ip)
        return _URC_END_OF_STACK;
    if (b->n == 0 && in_self(ip))
        return _URC_NO_REASON; /* malloc and the shim's own frames */
    b->f[b->n++] = ip;
    return b->n >= b->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

/* The stack of the allocation, innermost first, without the shim's own
 * frames (malloc's and ours, at the top). Inline in record, itself inline
 * in heap_record: libgcc's unwinder costs by the frame (about 1.9k
 * instructions each), and the shim's own frames above the app's are
 * unwound too: without capture's and record's frames, _Unwind_Backtrace
 * took 11.6k instead of 13.1k per sample of bench_malloc (callgrind). */
static inline __attribute__((always_inline)) int capture(uintptr_t *f, int max)
{
    if (cfi_on) {
        int n = cfiwalk(f, max, self_lo, self_hi, &cd.stack);
        if (n >= 0) {
            ATOMIC_INC(&stacks_cached);
            return n;
        }
    }
    ATOMIC_INC(&stacks_full);
    if (!unw_backtrace) {
        struct bt b = {f, 0, max};
        unwind_backtrace(bt_step, &b);
        return b.n;
    }
    /* unw_backtrace returns the innermost frames, ours among them: ask for
     * a few more and drop those. */
    void *raw[DEPTH + 8];
    int n = unw_backtrace(raw, max + 8 <= DEPTH + 8 ? max + 8 : DEPTH + 8), skip = 0;
    while (skip < n && in_self((uintptr_t)raw[skip]))
        skip++;
    n -= skip;
    if (n > max)
        n = max;
    for (int i = 0; i < n; i++)
        f[i] = (uintptr_t)raw[skip + i];
    return n;
}

/* Is there a signal frame in the stack? Its return address is the signal
 * return trampoline: __restore_rt on x86_64 (mov $15,%rax; syscall),
 * __kernel_rt_sigreturn on aarch64 (mov x8,#139; svc #0). Read only when
 * the bytes lie on the page of the call before the address (mapped). */
static bool in_signal(const uintptr_t *f, int n)
{
#if defined(__x86_64__)
    static const unsigned char tramp[] = {0x48, 0xc7, 0xc0, 0x0f, 0, 0, 0, 0x0f, 0x05};
#elif defined(__aarch64__)
    static const unsigned char tramp[] = {0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4};
#else
    static const unsigned char tramp[1] = {0};
    (void)f;
    (void)n;
    return false;
#endif
    for (int i = 0; i < n; i++) {
        uintptr_t in_page = f[i] & 4095;
        if (in_page != 0 && in_page <= 4096 - sizeof tramp &&
            memcmp((const void *)f[i], tramp, sizeof tramp) == 0)
            return true;
    }
    return false;
}

/* The unwinder: libunwind's unw_backtrace (libunwind.so.8) or libgcc's
 * _Unwind_Backtrace (libgcc_s.so.1), opened here, at the first sample, so
 * the preload object needs libc only; auto takes libgcc's, libunwind's when
 * libgcc_s is missing (why: the head of this file). */
static bool load_libunwind(void)
{
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (h)
        *(void **)&unw_backtrace = dlsym(h, "unw_backtrace");
    if (unw_backtrace)
        unwinder_name = "libunwind unw_backtrace";
    return unw_backtrace != NULL;
}

static bool load_libgcc(void)
{
    void *h = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        *(void **)&unwind_backtrace = dlsym(h, "_Unwind_Backtrace");
        *(void **)&unwind_getip = dlsym(h, "_Unwind_GetIP");
        *(void **)&find_fde = dlsym(h, "_Unwind_Find_FDE");
    }
    if (unwind_backtrace && unwind_getip) {
        unwinder_name = "libgcc_s _Unwind_Backtrace";
        return true;
    }
    unwind_backtrace = NULL;
    return false;
}

static bool load_unwinder(void)
{
    switch (want_unwinder) {
    case UNWIND_LIBGCC: return load_libgcc();
    case UNWIND_LIBUNWIND: return load_libunwind();
    default: return load_libgcc() || load_libunwind();
    }
}

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&hp_lock, memory_order_acquire))
        sched_yield();
    in_lock = 1;
}

static void unlock(void)
{
    in_lock = 0;
    atomic_flag_clear_explicit(&hp_lock, memory_order_release);
}

/* A sample: the native stack (its innermost PY_NATIVE_DEPTH frames under a
 * Python one), and the Python one for a sample taken in the
 * interpreter's allocator (python); the site, the live address. */
static inline __attribute__((always_inline)) void record(void *p, size_t n, bool python)
{
    if (!python && heap_in_py_hook)
        return; /* made inside a hook on the interpreter's allocator, which decided for it */
    int saved = errno;
    GUARD_ENTER(); /* the unwinder's own calls pass straight through */
    uintptr_t f[DEPTH + 2 * PY_DEPTH];
    int nf = capture(f, python ? PY_NATIVE_DEPTH : DEPTH);
    struct py_stack ps; /* what release reads; py->stack sets the rest (not zeroed: 1 KiB) */
    ps.n = ps.nrefs = 0;
    ps.saved = false;
    if (python)
        py->stack(&ps, in_signal(f, nf));
    else
        py->maybe_hook();
    uint64_t h = hs_stack_hash(f, nf);
    for (int i = 0; i < ps.n; i++) {
        h = hs_str_hash(ps.f[i].file, ps.f[i].file_len, h);
        h = hs_str_hash(ps.f[i].func, ps.f[i].func_len, h ^ (uint64_t)(uint32_t)ps.f[i].line);
    }
    h = h ? h : 1;
    struct hs_live_val old;
    lock();
    for (int i = 0; i < ps.n; i++)
        hs_py_word(hs_str_intern(&strs, ps.f[i].file, ps.f[i].file_len),
                   hs_str_intern(&strs, ps.f[i].func, ps.f[i].func_len), ps.f[i].line,
                   &f[nf + 2 * i]);
    uint32_t site = hs_site_get_py(&sites, h, f, nf, ps.n);
    enum hs_ins r = hs_live_insert(&heap_addrs, (uintptr_t)p, n, site, &old);
    if (r == HS_INS_FULL) {
        ATOMIC_INC(&sites.dropped);
    } else {
        if (r == HS_INS_REPLACED)
            hs_site_account(&sites, atomic_load_explicit(&old.site, RLX),
                            atomic_load_explicit(&old.size, RLX), rate, -1);
        hs_site_account(&sites, site, n, rate, +1);
    }
    unlock();
    py->release(&ps);
    GUARD_LEAVE();
    errno = saved;
}

void *heap_record(void *p, size_t n)
{
    record(p, n, false);
    return p;
}

void heap_record_py(void *p, size_t n)
{
    record(p, n, true);
}

void heap_forget(void *p)
{
    uint64_t size;
    uint32_t site;
    if (!hs_live_remove(&heap_addrs, (uintptr_t)p, &size, &site))
        return;
    if (in_lock) { /* a signal handler interrupted our own update */
        ATOMIC_INC(&sites.dropped);
        return;
    }
    lock();
    hs_site_account(&sites, site, size, rate, -1);
    unlock();
}

void heap_take(void *p, struct heap_taken *t)
{
    t->had = false;
    if (!atomic_load_explicit(&heap_addrs.count, RLX) || in_lock ||
        !hs_live_maybe(&heap_addrs, (uintptr_t)p))
        return;
    if (!hs_live_remove(&heap_addrs, (uintptr_t)p, &t->size, &t->site))
        return;
    t->had = true;
    lock();
    hs_site_account(&sites, t->site, t->size, rate, -1);
    unlock();
}

void heap_restore(void *p, const struct heap_taken *t)
{
    if (!t->had)
        return;
    struct hs_live_val old;
    lock();
    if (hs_live_insert(&heap_addrs, (uintptr_t)p, t->size, t->site, &old) == HS_INS_OK) {
        struct hs_site *s = hs_site_at(&sites, t->site);
        uint64_t n = atomic_load_explicit(&s->samples, RLX);
        hs_site_account(&sites, t->site, t->size, rate, +1);
        atomic_store_explicit(&s->samples, n, RLX); /* the same sample, not a new one */
    }
    unlock();
}

/* ---- set-up ---------------------------------------------------------------- */

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
    uintptr_t base = (uintptr_t)arg;
    if (info->dlpi_addr != base)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = base + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (!self_lo || lo < self_lo)
            self_lo = lo;
        if (hi > self_hi)
            self_hi = hi;
    }
    return 1;
}

static void go_off(const char *why)
{
    snprintf(off_reason, sizeof off_reason, "%s", why);
    atomic_store_explicit(&hp_state, HP_OFF, memory_order_release);
}

void heapprof_init(const struct reshim_config *cfg, const struct heap_py_ops *py_ops)
{
    if (!cfg->heap_sample_bytes) {
        go_off("heap sampling is off (RESHIM_HEAP_SAMPLE=0)");
        return;
    }
    rate = cfg->heap_sample_bytes;
    want_unwinder = cfg->heap_unwinder;
    py = py_ops;
    py->init(cfg->heap_python);
    atomic_store_explicit(&hp_state, HP_PENDING, memory_order_release);
}

/* auto, with libgcc's unwinder: cfiwalk in front of it, where it can run
 * (x86_64, glibc 2.35's _dl_find_object), its rule table mapped here. */
static void cfi_setup(void)
{
    void *find_object = dlsym(RTLD_DEFAULT, "_dl_find_object");
    void *stack_end = dlsym(RTLD_DEFAULT, "__libc_stack_end");
    size_t len = cfiwalk_table_bytes();
    if (want_unwinder != UNWIND_AUTO || !unwind_backtrace || !find_fde || !find_object ||
        !stack_end || !len)
        return;
    cfi_mem = sys_map(len);
    if (!cfi_mem || !cfiwalk_setup(cfi_mem, find_fde, (cfi_find_object_fn)find_object, stack_end))
        return;
    cfi_on = true;
    unwinder_name = "libgcc_s tables, rules cached (cfiwalk)";
}

/* The first sample: finds the unwinder, maps the tables, primes the unwinder
 * (its first walk reads the unwind tables). Runs once, on the allocating
 * thread, under the guard (dlopen's own allocations pass straight through),
 * holding no lock of ours. */
static bool setup(void)
{
    int expected = HP_PENDING;
    if (!atomic_compare_exchange_strong(&hp_state, &expected, HP_SETTING))
        return expected == HP_SETTING ? wait_setting() : expected == HP_ON; /* another thread's */
    int saved = errno;
    GUARD_ENTER();
    Dl_info self;
    if (!dladdr((void *)heapprof_init, &self) || !self.dli_fbase) {
        go_off("heap sampling is unavailable: the shim cannot find itself (dladdr)");
        goto out;
    }
    dl_iterate_phdr(find_self, self.dli_fbase);
    if (!load_unwinder()) {
        static const char *const lib[] = {"libunwind.so.8 or libgcc_s.so.1", "libunwind.so.8",
                                          "libgcc_s.so.1"};
        const char *which = lib[want_unwinder <= UNWIND_LIBGCC ? want_unwinder : 0];
        LOG_WARN("heap sampling off: cannot load the unwinder (%s)", which);
        char why[120];
        snprintf(why, sizeof why, "heap sampling is unavailable: %s (the unwinder) cannot be loaded",
                 which);
        go_off(why);
        goto out;
    }
    site_mem_len = hs_sites_bytes(SITE_CAP, FRAME_CAP);
    live_mem_len = hs_live_bytes(LIVE_CAP);
    str_mem_len = hs_strs_bytes(STR_CAP, STR_SLOTS);
    site_mem = sys_map(site_mem_len);
    live_mem = sys_map(live_mem_len);
    str_mem = sys_map(str_mem_len);
    if (!site_mem || !live_mem || !str_mem) {
        go_off("heap sampling is unavailable: cannot map its tables");
        goto out;
    }
    hs_sites_init(&sites, site_mem, SITE_CAP, FRAME_CAP);
    hs_live_init(&heap_addrs, live_mem, LIVE_CAP);
    hs_strs_init(&strs, str_mem, STR_CAP, STR_SLOTS);
    cfi_setup();
    uintptr_t f[DEPTH];
    capture(f, DEPTH);
    py->probe();
    atomic_store_explicit(&hp_state, HP_ON, memory_order_release);
out:
    GUARD_LEAVE();
    errno = saved;
    return atomic_load_explicit(&hp_state, memory_order_acquire) == HP_ON;
}

bool heapprof_on(void)
{
    return atomic_load_explicit(&hp_state, memory_order_acquire) == HP_ON;
}

bool heapprof_ready(void)
{
    int st = atomic_load_explicit(&hp_state, memory_order_acquire);
    return st == HP_ON || (st == HP_PENDING && setup());
}

const char *heapprof_off_reason(void)
{
    return off_reason;
}

static void heapprof_atfork(int phase)
{
    /* The child keeps the parent's table: it holds the same blocks, and
     * frees them through the same addresses. */
    static bool fork_locked; /* the state may turn ON between prepare and parent */
    if (phase == ATFORK_PREPARE) {
        fork_locked = atomic_load_explicit(&hp_state, memory_order_acquire) == HP_ON;
        if (fork_locked)
            lock();
    } else if (fork_locked) {
        unlock();
    }
}
RESHIM_ATFORK(heapprof_atfork, ATFORK_RANK_HEAPPROF);

/* ---- symbols and answers --------------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path && *path ? path : "?";
}

static void frame_name(uintptr_t ip, char *buf, size_t n)
{
    Dl_info di;
    /* ip is a return address: the call is just before it. */
    if (dladdr((void *)(ip - 1), &di) && di.dli_fbase) {
        if (di.dli_sname && di.dli_saddr)
            snprintf(buf, n, "%s+0x%lx (%s)", di.dli_sname,
                     (unsigned long)(ip - (uintptr_t)di.dli_saddr), base_name(di.dli_fname));
        else
            snprintf(buf, n, "%s+0x%lx", base_name(di.dli_fname),
                     (unsigned long)(ip - (uintptr_t)di.dli_fbase));
    } else {
        snprintf(buf, n, "0x%lx", (unsigned long)ip);
    }
}

static size_t resident(void *mem, size_t len)
{
    unsigned char vec[2048];
    size_t pages = (len + 4095) / 4096, res = 0;
    for (size_t at = 0; at < pages; at += sizeof vec) {
        size_t k = pages - at < sizeof vec ? pages - at : sizeof vec;
        if (syscall(SYS_mincore, (char *)mem + at * 4096, k * 4096, vec) != 0)
            return 0;
        for (size_t i = 0; i < k; i++)
            res += vec[i] & 1;
    }
    return res * 4096;
}

static uint64_t round_u64(double v)
{
    return v > 0 ? (uint64_t)(v + 0.5) : 0;
}

size_t heapprof_json_guess(unsigned n)
{
    return 512 + (size_t)n * (200 + DEPTH * 120 + 4 * 200);
}

size_t heapprof_json_max(unsigned n)
{
    return snap_heap_json_max(n);
}

/* The sites of the answer being written, made one at a time as the
 * encoder asks (the stats thread only). */
static struct {
    uint32_t idx[SNAP_HEAP_SITES];
    double val[SNAP_HEAP_SITES];
    struct snap_heap_site site;
} ans;

static const void *answer_site(const void *ctx, unsigned i)
{
    struct snap_heap_site *o = &ans.site;
    struct hs_site *s = hs_site_at(&sites, ans.idx[i]);
    o->live_bytes = round_u64(ans.val[i]);
    o->live_bytes_sd = round_u64(hs_site_sd(s));
    o->live_objects = round_u64(atomic_load_explicit(&s->live_objects, RLX));
    o->allocs = round_u64(atomic_load_explicit(&s->allocs, RLX));
    o->samples = atomic_load_explicit(&s->samples, RLX);
    o->live_samples = atomic_load_explicit(&s->live_samples, RLX);
    const uintptr_t *f;
    int nf = hs_site_frames(&sites, ans.idx[i], &f);
    if (nf > SNAP_HEAP_DEPTH)
        nf = SNAP_HEAP_DEPTH;
    o->nstack = 0;
    if (ans.idx[i] == HS_OTHER)
        snap_word(o->stack[o->nstack++], SNAP_HEAP_SYM_MAX, "[other]");
    /* The frames as names, and as addresses (return addresses) in this
     * process: the CLI reads file:line for them from the objects' DWARF. */
    for (int j = 0; j < nf; j++) {
        frame_name(f[j], o->stack[o->nstack++], SNAP_HEAP_SYM_MAX);
        o->pcs[j] = f[j];
    }
    o->npcs = (unsigned)nf;
    /* The Python stack, innermost first (samples taken in a CPython's own
     * allocator). */
    int np = hs_site_pyframes(&sites, ans.idx[i], &f);
    if (np > SNAP_HEAP_PY_DEPTH)
        np = SNAP_HEAP_PY_DEPTH;
    o->npython = np > 0 ? (unsigned)np : 0;
    o->has_python = np > 0;
    for (int j = 0; j < np; j++) {
        uint32_t file, func;
        int line;
        hs_py_unword(&f[2 * j], &file, &func, &line);
        snap_word(o->python[j].file, sizeof o->python[j].file, hs_str(&strs, file));
        snap_word(o->python[j].function, sizeof o->python[j].function, hs_str(&strs, func));
        o->python[j].line = (uint64_t)(line > 0 ? line : 0);
    }
    return o;
}

bool heapprof_json(struct sbuf *b, unsigned n)
{
    struct snap_heap h = {0};
    if (n > SNAP_HEAP_SITES)
        n = SNAP_HEAP_SITES;
    h.sample_bytes = rate;
    h.sites.n = (unsigned)hs_top(&sites, ans.idx, ans.val, n);
    h.sites.at = answer_site;
    h.sampled_live_bytes = round_u64(atomic_load_explicit(&sites.total_live, RLX));
    h.live_samples = atomic_load_explicit(&heap_addrs.count, RLX);
    h.sites_used = atomic_load_explicit(&sites.used, RLX);
    h.other_samples = atomic_load_explicit(&sites.overflowed, RLX);
    h.dropped = atomic_load_explicit(&sites.dropped, RLX);
    snap_word(h.unwinder, sizeof h.unwinder, unwinder_name);
    snap_word(h.python, sizeof h.python, py->state());
    h.stacks_cached = atomic_load_explicit(&stacks_cached, RLX);
    h.stacks_full = atomic_load_explicit(&stacks_full, RLX);
    h.profiler_resident_bytes = resident(site_mem, site_mem_len) +
                                resident(live_mem, live_mem_len) + resident(str_mem, str_mem_len) +
                                resident(cfi_mem, cfiwalk_table_bytes());
    snap_heap_json(&h, b);
    return !b->overflow;
}

void heapprof_top_text(char *buf, size_t n, int k)
{
    uint32_t idx[8];
    double val[8];
    buf[0] = 0;
    if (!heapprof_on() || n < 64)
        return;
    if (k > 8)
        k = 8;
    size_t got = hs_top(&sites, idx, val, (size_t)k), at = 0;
    if (!got)
        return;
    at += (size_t)snprintf(buf, n, "; top sites:");
    for (size_t i = 0; i < got && at + 32 < n; i++) {
        at += (size_t)snprintf(buf + at, n - at, "%s %.1f MB at ", i ? ";" : "",
                               val[i] / (1024.0 * 1024.0));
        const uintptr_t *f;
        int np = hs_site_pyframes(&sites, idx[i], &f);
        if (np) { /* in the app's own words: its innermost Python frame */
            uint32_t file, func;
            int line;
            hs_py_unword(f, &file, &func, &line);
            at += (size_t)snprintf(buf + at, n - at, "%s (%s:%d)", hs_str(&strs, func),
                                   hs_str(&strs, file), line);
            if (at >= n)
                at = n - 1;
            continue;
        }
        int nf = hs_site_frames(&sites, idx[i], &f);
        if (idx[i] == HS_OTHER)
            at += (size_t)snprintf(buf + at, n - at, "[other]");
        for (int j = 0; j < nf && j < 3 && at + 16 < n; j++) {
            char sym[SYM_MAX];
            frame_name(f[j], sym, sizeof sym);
            at += (size_t)snprintf(buf + at, n - at, "%s%s", j ? " < " : "", sym);
        }
        if (at >= n)
            at = n - 1;
    }
}
