/* memmon.c: the memory monitor. Resolves the budget once (RESHIM_MEM_BUDGET
 * and the container limit), reads RSS from a kept-open /proc/self/statm (and
 * the container's working set when the budget comes from the cgroup), moves
 * the state machine of budget.c, logs each crossing once, trims at critical
 * (policy trim or enforce) and arms the allocation gate (policy enforce).
 *
 * RSS is read by the monitor thread (started late: at the first heap growth
 * step when there is a budget; every 100 ms far from the budget, every 10 ms
 * near it) and inline by allocating threads after fast growth, so that a
 * burst of allocations cannot outrun the poll.
 *
 * In the allocation layer's order (alloc_impl.h): called by alloc_gate.c
 * (growth, the gate's question); calls only below it: alloc_next.c (arms
 * the gate, trims) and alloc_count.c (the figures).
 *
 * Never allocates (stack buffers, sys.c's open/pread/close), never holds a lock while
 * calling out; the monitor thread runs with every signal blocked and with
 * the recursion guard held, so its own calls pass straight through. */
#define _GNU_SOURCE
#include "memmon.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "cgroup.h"
#include "config.h"
#include "atfork.h"
#include "log.h"
#include "heapprof.h"
#include "reshim.h"
#include "snapshot.h"
#include "sys.h"

/* Megabytes with one decimal for log lines (the log formatter has no %f). */
#define MBF "%llu.%u MB"
#define MBA(x) (unsigned long long)((x) >> 20), (unsigned)((((x) & 0xFFFFF) * 10) >> 20)
#define MS 1000000ull
#define SEC 1000000000ull

static struct budget_params params;
static enum budget_source bsrc;
static struct cg_limit cg;
static atomic_int resolved;    /* 0 no, 1 resolving, 2 done */
static atomic_int mon_started; /* the thread was started in this process */

static atomic_int state;       /* enum mem_state */
static _Atomic uint64_t rss_now, rss_anon_now, rss_shmem_now, ws_now, usage_now, rss_peak;
/* The process's anon+shmem RSS when ws_now was read: between reads of the
 * working set (a few microseconds each, not done on every poll), the
 * container is assumed to grow as this process does. */
static _Atomic uint64_t ws_base;
static _Atomic uint64_t trims, trimmed, enomem;
static atomic_bool said_no_trim; /* the allocator offers no trim: logged once */
static _Atomic uint64_t last_auto_trim_ns, last_auto_released;
static atomic_int statm_fd = -1;
/* Identity of the statm fd (/proc files have their own inodes): an app that
 * closes every fd may reuse the number; pread on it is harmless, a close is
 * not. */
static _Atomic uint64_t statm_dev, statm_ino;
static atomic_int deny_logged; /* a denial was logged since the last state change */
static size_t page = 4096;

/* ---- reading /proc ------------------------------------------------------- */

static bool parse_u64(const char **p, uint64_t *v)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t x = 0;
    while (*s >= '0' && *s <= '9')
        x = x * 10 + (uint64_t)(*s++ - '0');
    *v = x;
    *p = s;
    return true;
}

/* Resident and shared (file + shmem) bytes from statm. */
static bool read_statm(uint64_t *rss, uint64_t *shared)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = atomic_load(&statm_fd);
        if (fd < 0) {
            fd = reshim_fd_above_stdio(sys_open("/proc/self/statm", O_RDONLY));
            if (fd < 0)
                return false;
            uint64_t dev, ino;
            if (sys_fd_id(fd, &dev, &ino)) {
                atomic_store(&statm_dev, dev);
                atomic_store(&statm_ino, ino);
            }
            int expected = -1;
            if (!atomic_compare_exchange_strong(&statm_fd, &expected, fd)) {
                sys_close(fd);
                fd = expected;
            }
        }
        char buf[128];
        ssize_t n = sys_pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = 0;
            const char *p = buf;
            uint64_t size, res, sh;
            if (parse_u64(&p, &size) && parse_u64(&p, &res) && parse_u64(&p, &sh)) {
                *rss = res * page;
                *shared = sh * page;
                return true;
            }
        }
        /* Closed under us (an app closing every fd), or reused: open again. */
        int expected = fd;
        atomic_compare_exchange_strong(&statm_fd, &expected, -1);
    }
    return false;
}

uint64_t memmon_rss_read(void)
{
    uint64_t rss, shared;
    return read_statm(&rss, &shared) ? rss : 0;
}

struct status_figures {
    uint64_t rss, hwm, anon, file, shmem; /* bytes */
};

static bool read_status(struct status_figures *f)
{
    memset(f, 0, sizeof *f);
    char buf[4096];
    if (sys_read_file("/proc/self/status", buf, sizeof buf) <= 0)
        return false;
    static const struct {
        char key[12]; /* the text in the table: no relocation at load */
        size_t off;
    } keys[] = {
        {"VmRSS:", offsetof(struct status_figures, rss)},
        {"VmHWM:", offsetof(struct status_figures, hwm)},
        {"RssAnon:", offsetof(struct status_figures, anon)},
        {"RssFile:", offsetof(struct status_figures, file)},
        {"RssShmem:", offsetof(struct status_figures, shmem)},
    };
    for (const char *line = buf; line && *line;) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t len = strlen(keys[k].key);
            if (strncmp(line, keys[k].key, len) == 0) {
                const char *p = line + len;
                uint64_t v;
                if (parse_u64(&p, &v))
                    *(uint64_t *)((char *)f + keys[k].off) = v * 1024;
            }
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return true;
}

/* ---- the budget ---------------------------------------------------------- */

static void resolve(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&resolved, &expected, 1)) {
        while (atomic_load_explicit(&resolved, memory_order_acquire) == 1)
            sched_yield();
        return;
    }
    GUARD_ENTER();
    const struct reshim_config *c = reshim_cfg();
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0)
        page = (size_t)ps;
    uint64_t limit = 0;
    if (c->mem_budget_kind == BUDGET_AUTO || c->mem_budget_kind == BUDGET_PERCENT) {
        if (cgroup_detect("", &cg) == 0)
            limit = cg.limit;
    }
    params.budget = budget_resolve(c, limit, &bsrc);
    params.warn = c->mem_warn;
    params.trim = c->mem_trim;
    params.policy = c->mem_policy;
    params.kill_line = limit;
    if (c->mem_budget_kind == BUDGET_PERCENT && !params.budget)
        LOG_WARN("RESHIM_MEM_BUDGET is a share of the container limit, but no container "
                 "memory limit was found: no memory budget");
    else if (params.budget)
        LOG_INFO("memory budget %llu MB (from %s%s%s), policy %s, warn at %u%%, trim at %u%%",
                 (unsigned long long)(params.budget / (1024 * 1024)), budget_source_name(bsrc),
                 bsrc == BSRC_CGROUP ? " v" : "",
                 bsrc == BSRC_CGROUP ? (cg.version == 1 ? "1" : "2") : "",
                 reshim_mem_policy_name(params.policy), (unsigned)(params.warn * 100 + 0.5),
                 (unsigned)(params.trim * 100 + 0.5));
    GUARD_LEAVE();
    atomic_store_explicit(&resolved, 2, memory_order_release);
}

static unsigned pct(uint64_t usage)
{
    return params.budget ? (unsigned)((double)usage * 100.0 / (double)params.budget + 0.5) : 0;
}

static void log_crossing(enum mem_state from, enum mem_state to, uint64_t usage)
{
    uint64_t rss = atomic_load(&rss_now), ws = atomic_load(&ws_now);
    const char *what = "";
    if (to == MS_CRITICAL && params.policy != MEMPOL_WARN)
        what = "; returning free heap to the OS";
    else if (to == MS_OVER && params.policy == MEMPOL_ENFORCE)
        what = "; allocations that would grow memory now fail with ENOMEM";
    else if (to == MS_OVER)
        what = "; the process may be killed by the OOM killer";
    /* Going up, the line names the top three sampled sites (symbolized
     * here: this thread holds no lock of ours, and the guard is set). */
    char top[640];
    top[0] = 0;
    if (to > from) {
        GUARD_ENTER();
        heapprof_top_text(top, sizeof top, 3);
        GUARD_LEAVE();
    }
    if (to > from && bsrc == BSRC_CGROUP)
        LOG_WARN("memory state %s: usage " MBF " of budget " MBF " (%u%%; rss " MBF
                 ", container working set " MBF ")%s%s",
                 mem_state_name(to), MBA(usage), MBA(params.budget), pct(usage), MBA(rss),
                 MBA(ws), what, top);
    else if (to > from)
        LOG_WARN("memory state %s: usage " MBF " of budget " MBF " (%u%%; rss " MBF ")%s%s",
                 mem_state_name(to), MBA(usage), MBA(params.budget), pct(usage), MBA(rss),
                 what, top);
    else
        LOG_INFO("memory state %s again: usage " MBF " of budget " MBF " (%u%%)",
                 mem_state_name(to), MBA(usage), MBA(params.budget), pct(usage));
}

/* Reads RSS (and the working set when asked) and moves the state. */
static uint64_t poll_once(bool with_cgroup)
{
    uint64_t rss, shared;
    if (!read_statm(&rss, &shared))
        return atomic_load(&usage_now);
    uint64_t anon = rss > shared ? rss - shared : 0;
    atomic_store_explicit(&rss_now, rss, RLX);
    atomic_store_explicit(&rss_anon_now, anon, RLX);
    uint64_t pk = atomic_load_explicit(&rss_peak, RLX);
    while (rss > pk && !atomic_compare_exchange_weak(&rss_peak, &pk, rss))
        ;
    uint64_t mine = anon + atomic_load_explicit(&rss_shmem_now, RLX);
    uint64_t ws_est = 0;
    if (bsrc == BSRC_CGROUP) {
        uint64_t ws;
        if (with_cgroup && cgroup_working_set(&cg, &ws) == 0) {
            atomic_store_explicit(&ws_now, ws, RLX);
            atomic_store_explicit(&ws_base, mine, RLX);
            ws_est = ws;
        } else {
            uint64_t base = atomic_load_explicit(&ws_base, RLX);
            ws_est = atomic_load_explicit(&ws_now, RLX) + (mine > base ? mine - base : 0);
        }
    }
    uint64_t usage = budget_usage(mine, ws_est, bsrc);
    atomic_store_explicit(&usage_now, usage, RLX);
    int cur = atomic_load(&state);
    enum mem_state next = budget_next_state(&params, (enum mem_state)cur, usage);
    if ((int)next != cur && atomic_compare_exchange_strong(&state, &cur, (int)next)) {
        alloc_gate_set(budget_gate_armed(&params, next));
        atomic_store(&deny_logged, 0);
        log_crossing((enum mem_state)cur, next, usage);
    }
    return usage;
}

/* ---- trimming ------------------------------------------------------------ */

int64_t memmon_trim(bool automatic)
{
    uint64_t before, after, shared;
    GUARD_ENTER();
    bool have = read_statm(&before, &shared);
    uint64_t t0 = reshim_now_ns();
    int rc = alloc_trim();
    uint64_t t1 = reshim_now_ns();
    if (automatic)
        atomic_store(&last_auto_trim_ns, t1 ? t1 : 1);
    int64_t released = -1;
    if (rc == 0) {
        released = 0;
        if (have && read_statm(&after, &shared) && before > after)
            released = (int64_t)(before - after);
        atomic_fetch_add(&trims, 1);
        atomic_fetch_add(&trimmed, (uint64_t)released);
        if (automatic)
            atomic_store(&last_auto_released, (uint64_t)released);
        LOG_INFO("%s trim (%s): released " MBF " in %llu ms",
                 automatic ? "automatic" : "requested", alloc_next_name(),
                 MBA((uint64_t)released), (unsigned long long)((t1 - t0) / MS));
    } else if (!atomic_exchange(&said_no_trim, true)) { /* once per process */
#ifdef RESHIM_MUSL
        LOG_INFO("no trim on musl: its allocator (%s) returns freed memory to the OS itself "
                 "and has no trim entry point; the trim step does nothing (stats: "
                 "mem.trim \"none\")", alloc_next_name());
#else
        LOG_INFO("no trim: the allocator (%s) offers none; the trim step does nothing "
                 "(stats: mem.trim \"none\")", alloc_next_name());
#endif
    }
    GUARD_LEAVE();
    return released;
}

/* ---- the monitor thread -------------------------------------------------- */

static void *mon_main(void *arg)
{
    (void)arg;
    GUARD_ENTER(); /* everything this thread does passes straight through */
    uint64_t next_slow = 0;
    for (;;) {
        int s = atomic_load_explicit(&reshim_state, memory_order_acquire);
        if (s == RS_TORN_DOWN || s == RS_DISABLED)
            break;
        uint64_t now = reshim_now_ns();
        bool slow = now >= next_slow;
        bool near = atomic_load(&state) >= MS_WARN;
        if (slow) { /* shmem: once a second, 10 x near the budget */
            struct status_figures f;
            if (read_status(&f))
                atomic_store_explicit(&rss_shmem_now, f.shmem, RLX);
            next_slow = now + (near ? 100 * MS : SEC);
        }
        /* The container's working set: with the slow figures far from the
         * budget, on every poll near it (the kernel's OOM killer acts on the
         * cgroup's usage, which includes what other processes and the kernel
         * hold, not on this process's RSS). */
        uint64_t usage = poll_once(slow || near);
        enum mem_state st = (enum mem_state)atomic_load(&state);
        if (params.policy != MEMPOL_WARN) { /* budget_should_trim decides */
            /* What trim could give back: anonymous RSS not held by live
             * blocks or counted mappings (free heap pages, mostly). */
            struct alloc_totals t;
            alloc_totals(&t);
            uint64_t anon = atomic_load_explicit(&rss_anon_now, RLX);
            uint64_t held = (t.heap_live > 0 ? (uint64_t)t.heap_live : 0) + t.mmap_anon;
            uint64_t reclaimable = anon > held ? anon - held : 0;
            if (budget_should_trim(&params, st, now, atomic_load(&last_auto_trim_ns),
                                   atomic_load(&last_auto_released), reclaimable)) {
                memmon_trim(true);
                usage = poll_once(true);
            }
        }
        reshim_slow_point(); /* the stats thread may start from here too */
        uint64_t ns = budget_poll_interval_ns(&params, usage);
        struct timespec ts = {(time_t)(ns / SEC), (long)(ns % SEC)};
        while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
            ;
    }
    return NULL;
}

static void start_monitor(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&mon_started, &expected, 1))
        return;
    if (reshim_in_foreign_child()) { /* a vfork child must not create threads */
        atomic_store(&mon_started, 0);
        return;
    }
    int rc = reshim_thread_start(mon_main, 128 * 1024);
    if (rc != 0)
        LOG_ERROR("cannot start the memory monitor thread (%d): RSS is checked only as the "
                  "heap grows",
                  rc);
}

/* ---- entry points from the allocation layer (alloc_gate.c) --------------- */

static TLS_IE unsigned growth_steps;

void memmon_growth(size_t big)
{
    reshim_slow_point(); /* a growth step is a slow point: the stats thread may start */
    if (atomic_load_explicit(&resolved, memory_order_acquire) != 2)
        resolve();
    if (!params.budget)
        return;
    if (!atomic_load_explicit(&mon_started, RLX))
        start_monitor();
    /* Inline: every 1 MiB of a thread's growth, each large allocation, and
     * every step (256 KiB) once past the warning threshold. */
    if (big || ++growth_steps >= 4 || atomic_load_explicit(&state, RLX) >= MS_WARN) {
        growth_steps = 0;
        GUARD_ENTER();
        poll_once(false);
        GUARD_LEAVE();
    }
}

bool memmon_deny(size_t n)
{
    if (atomic_load_explicit(&resolved, memory_order_acquire) != 2) {
        /* A large request before the first growth step: the budget may not
         * be known yet (never resolved before init is done; a large request
         * is a slow point, where alloc_gate.c, above, has initialised if no
         * real call came first). */
        if (atomic_load_explicit(&reshim_state, memory_order_acquire) != RS_ACTIVE)
            return false;
        resolve();
    }
    if (!params.budget || params.policy != MEMPOL_ENFORCE)
        return false;
    uint64_t usage = atomic_load_explicit(&usage_now, RLX);
    if (n >= BUDGET_SMALL_REQUEST) { /* worth a fresh figure */
        GUARD_ENTER();
        usage = poll_once(false);
        GUARD_LEAVE();
    }
    if (!budget_should_deny(&params, usage, n))
        return false;
    atomic_fetch_add_explicit(&enomem, 1, RLX);
    GUARD_ENTER();
    /* The first denial after each state change is a warning; the rest are
     * counted (enomem) and logged at debug level. */
    if (!atomic_exchange(&deny_logged, 1))
        LOG_WARN("memory budget: denied an allocation of %zu bytes with ENOMEM (usage " MBF
                 " of " MBF "); further denials are counted",
                 n, MBA(usage), MBA(params.budget));
    else
        LOG_DEBUG("memory budget: denied an allocation of %zu bytes (usage " MBF " of " MBF ")",
                  n, MBA(usage), MBA(params.budget));
    GUARD_LEAVE();
    return true;
}

/* ---- figures ------------------------------------------------------------- */

void memmon_snapshot(struct mem_snapshot *s)
{
    memset(s, 0, sizeof *s);
    if (atomic_load_explicit(&resolved, memory_order_acquire) != 2)
        resolve();
    GUARD_ENTER();
    struct status_figures f;
    if (read_status(&f)) {
        s->rss = f.rss;
        s->rss_anon = f.anon;
        s->rss_file = f.file;
        s->rss_shmem = f.shmem;
        s->rss_peak = f.hwm;
    }
    uint64_t pk = atomic_load(&rss_peak);
    if (pk > s->rss_peak)
        s->rss_peak = pk;
    if (s->rss > s->rss_peak)
        s->rss_peak = s->rss;
    if (bsrc == BSRC_CGROUP) {
        uint64_t ws;
        if (cgroup_working_set(&cg, &ws) == 0)
            atomic_store(&ws_now, ws);
    }
    GUARD_LEAVE();
    struct alloc_totals t;
    alloc_totals(&t);
    s->heap_live = t.heap_live;
    s->heap_peak = t.heap_peak;
    s->allocs = t.allocs;
    s->frees = t.frees;
    s->mmap_anon = t.mmap_anon;
    s->mmap_anon_peak = t.mmap_anon_peak;
    s->budget = params.budget;
    s->budget_source = bsrc;
    s->working_set = atomic_load(&ws_now);
    s->usage = budget_usage(s->rss_anon + s->rss_shmem, s->working_set, bsrc);
    s->state = (enum mem_state)atomic_load(&state);
    s->trims = atomic_load(&trims);
    s->trimmed = atomic_load(&trimmed);
    s->enomem = atomic_load(&enomem);
}

void memmon_snap(struct snap_mem *o)
{
    struct mem_snapshot m;
    memmon_snapshot(&m);
    memset(o, 0, sizeof *o);
    o->rss_bytes = m.rss;
    o->rss_peak_bytes = m.rss_peak;
    o->rss_anon_bytes = m.rss_anon;
    o->rss_file_bytes = m.rss_file;
    o->rss_shmem_bytes = m.rss_shmem;
    o->heap_live_bytes = m.heap_live;
    o->heap_peak_bytes = m.heap_peak;
    o->allocs = m.allocs;
    o->frees = m.frees;
    o->mmap_anon_bytes = m.mmap_anon;
    o->mmap_anon_peak_bytes = m.mmap_anon_peak;
    o->budget_bytes = m.budget;
    o->usage_bytes = m.usage;
    o->working_set_bytes = m.working_set;
    snap_word(o->budget_source, sizeof o->budget_source, budget_source_name(m.budget_source));
    snap_word(o->state, sizeof o->state, mem_state_name(m.state));
    snap_word(o->policy, sizeof o->policy, reshim_mem_policy_name(reshim_cfg()->mem_policy));
    o->trims = m.trims;
    o->trimmed_bytes = m.trimmed;
    o->enomem = m.enomem;
    snap_word(o->trim, sizeof o->trim, alloc_trim_method());
}

size_t memmon_summary(char *buf, size_t n)
{
    struct mem_snapshot s;
    memmon_snapshot(&s);
    return reshim_format(buf, n,
                         "mem rss=%llu rss_peak=%llu rss_anon=%llu heap_live=%lld heap_peak=%llu "
                         "allocs=%llu frees=%llu mmap_anon=%llu mmap_anon_peak=%llu budget=%llu "
                         "budget_source=%s state=%s trims=%llu trimmed=%llu enomem=%llu",
                         (unsigned long long)s.rss, (unsigned long long)s.rss_peak,
                         (unsigned long long)s.rss_anon, (long long)s.heap_live,
                         (unsigned long long)s.heap_peak, (unsigned long long)s.allocs,
                         (unsigned long long)s.frees, (unsigned long long)s.mmap_anon,
                         (unsigned long long)s.mmap_anon_peak, (unsigned long long)s.budget,
                         budget_source_name(s.budget_source), mem_state_name(s.state),
                         (unsigned long long)s.trims, (unsigned long long)s.trimmed,
                         (unsigned long long)s.enomem);
}

static void memmon_atfork(int phase)
{
    if (phase != ATFORK_CHILD)
        return;
    /* /proc/self was resolved at open time: the kept fd shows the parent. */
    int fd = atomic_exchange(&statm_fd, -1);
    if (sys_fd_is(fd, atomic_load(&statm_dev), atomic_load(&statm_ino)))
        sys_close(fd);
    atomic_store(&mon_started, 0);
    atomic_store(&trims, 0);
    atomic_store(&trimmed, 0);
    atomic_store(&enomem, 0);
    atomic_store(&rss_peak, 0);
    atomic_store(&last_auto_trim_ns, 0);
    atomic_store(&last_auto_released, 0);
}
RESHIM_ATFORK(memmon_atfork, ATFORK_RANK_MEMMON);
