/* test_cfiwalk.c: unit tests of shim/cfiwalk.c against libgcc's own
 * _Unwind_Backtrace, taken from the same function: the same return
 * addresses, frame for frame, to the end of the stack, through plain
 * recursion, frames whose CFA is on rbp (alloca, a frame pointer), libc's
 * frames (qsort's comparator), a thread's start; max and the skipped range;
 * a signal handler's stack, on the thread's stack or an alternate one, and a
 * coroutine's own stack left to the full unwinder (-1); the rules read once
 * (a second walk reads none); four threads walking at once (the TSan build); fork
 * children of a process whose other thread walks without pause all walk
 * and exit (no lock is taken). */
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include <cmocka.h>

#include "cfiwalk.h"

#define CHECK(cond, ...)           \
    do {                           \
        if (!(cond))               \
            fail_msg(__VA_ARGS__); \
    } while (0)

#define MAXF 128

static _Unwind_Reason_Code (*ubt)(_Unwind_Trace_Fn, void *);
static _Unwind_Ptr (*ugetip)(struct _Unwind_Context *);
static bool ready;
static __thread struct cfi_stack tst; /* this thread's, as the shim keeps it */
#define WALK(f, max, lo, hi) cfiwalk((f), (max), (lo), (hi), &tst)

struct both {
    uintptr_t walk[MAXF], full[MAXF];
    int nwalk, nfull;
};

struct ubuf {
    uintptr_t *f;
    int n, max;
};

static _Unwind_Reason_Code step(struct _Unwind_Context *ctx, void *arg)
{
    struct ubuf *b = arg;
    uintptr_t ip = (uintptr_t)ugetip(ctx);
    if (!ip)
        return _URC_END_OF_STACK;
    b->f[b->n++] = ip;
    return b->n >= b->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

/* Both stacks from here: their first frames are return addresses into
 * this function (from two calls), the rest the same callers. */
static __attribute__((noinline)) void take_both(struct both *b, int max)
{
    b->nwalk = WALK(b->walk, max, 0, 0);
    struct ubuf u = {b->full, 0, max};
    ubt(step, &u);
    b->nfull = u.n;
    __asm__ volatile("" ::: "memory");
}

static void same_stacks(const struct both *b, const char *where)
{
    CHECK(b->nwalk > 1, "%s: cfiwalk gave %d frames", where, b->nwalk);
    CHECK(b->nwalk == b->nfull, "%s: cfiwalk %d frames, libgcc %d", where, b->nwalk, b->nfull);
    for (int i = 1; i < b->nwalk; i++)
        CHECK(b->walk[i] == b->full[i], "%s: frame %d: cfiwalk %#lx, libgcc %#lx", where, i,
              (unsigned long)b->walk[i], (unsigned long)b->full[i]);
}

static int setup(void **state)
{
    (void)state;
    void *h = dlopen("libgcc_s.so.1", RTLD_NOW);
    if (!h)
        return -1;
    *(void **)&ubt = dlsym(h, "_Unwind_Backtrace");
    *(void **)&ugetip = dlsym(h, "_Unwind_GetIP");
    cfi_find_fde_fn fde;
    *(void **)&fde = dlsym(h, "_Unwind_Find_FDE");
    cfi_find_object_fn obj;
    *(void **)&obj = dlsym(RTLD_DEFAULT, "_dl_find_object");
    void *mem = mmap(NULL, cfiwalk_table_bytes(), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!ubt || !ugetip || mem == MAP_FAILED)
        return -1;
    ready = cfiwalk_setup(mem, fde, obj, dlsym(RTLD_DEFAULT, "__libc_stack_end"));
    return 0;
}

#define NEED_WALKER()                                                          \
    do {                                                                       \
        if (!ready)                                                            \
            skip(); /* not x86_64, or a glibc without _dl_find_object */      \
    } while (0)

/* ---- the shapes of stack --------------------------------------------------- */

static __attribute__((noinline)) void recurse(struct both *b, int depth)
{
    if (depth == 0)
        take_both(b, MAXF);
    else
        recurse(b, depth - 1);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

/* The CFA on rbp: a frame of a size known only at run time. */
static __attribute__((noinline)) void with_alloca(struct both *b, size_t n, int depth)
{
    volatile char *p = alloca(n);
    p[0] = 1;
    p[n - 1] = 2;
    if (depth)
        with_alloca(b, n * 3 + 16, depth - 1);
    else
        take_both(b, MAXF);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline, optimize("no-omit-frame-pointer"))) static void with_fp(struct both *b)
{
    volatile char pad[200];
    pad[0] = 0;
    recurse(b, 2);
    __asm__ volatile("" ::"m"(pad) : "memory");
}

static void test_recursion(void **state)
{
    (void)state;
    NEED_WALKER();
    struct both b;
    for (int d = 0; d < 40; d += 7) {
        recurse(&b, d);
        char where[32];
        snprintf(where, sizeof where, "recursion %d", d);
        same_stacks(&b, where);
    }
}

static void test_rbp_frames(void **state)
{
    (void)state;
    NEED_WALKER();
    struct both b;
    for (size_t n = 16; n < 5000; n = n * 5 + 3) {
        with_alloca(&b, n, 3);
        same_stacks(&b, "alloca");
    }
    with_fp(&b);
    same_stacks(&b, "frame pointer");
}

static struct both in_cmp;
static int cmp_calls;
static int cmp(const void *a, const void *b)
{
    if (cmp_calls++ == 3)
        take_both(&in_cmp, MAXF);
    return *(const int *)a - *(const int *)b;
}

static void test_libc_frames(void **state)
{
    (void)state;
    NEED_WALKER();
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    cmp_calls = 0;
    qsort(v, 64, sizeof v[0], cmp);
    same_stacks(&in_cmp, "qsort's comparator");
}

static void *thread_walk(void *arg)
{
    struct both *b = arg;
    for (int i = 0; i < 200; i++) {
        recurse(b, i % 9);
        if (b->nwalk != b->nfull)
            break;
        for (int j = 1; j < b->nwalk; j++)
            if (b->walk[j] != b->full[j])
                return b;
    }
    return b;
}

static void test_threads(void **state)
{
    (void)state;
    NEED_WALKER();
    pthread_t t[4];
    static struct both b[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, thread_walk, &b[i]) == 0, "pthread_create");
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        same_stacks(&b[i], "a thread");
    }
}

static void test_max_and_skip(void **state)
{
    (void)state;
    NEED_WALKER();
    struct both b;
    take_both(&b, 3);
    CHECK(b.nwalk == 3, "max 3: %d frames", b.nwalk);
    same_stacks(&b, "max 3");
    /* this function's own return addresses at the top are left out */
    uintptr_t g[MAXF], h[MAXF];
    int m = WALK(g, MAXF, (uintptr_t)test_max_and_skip, (uintptr_t)test_max_and_skip + 4096);
    int k = WALK(h, MAXF, 0, 0);
    CHECK(k > 1 && m == k - 1 && g[0] == h[1], "skip: %d frames against %d", m, k);
}

static volatile sig_atomic_t in_handler_n = -2;
static void handler(int sig)
{
    (void)sig;
    uintptr_t f[MAXF];
    in_handler_n = WALK(f, MAXF, 0, 0);
}

static void test_signal_frame(void **state)
{
    (void)state;
    NEED_WALKER();
    struct sigaction sa = {0}, old;
    sa.sa_handler = handler;
    sigaction(SIGUSR1, &sa, &old);
    raise(SIGUSR1);
    CHECK(in_handler_n == -1, "a handler's stack: %d frames (want -1: the full unwinder's)",
          (int)in_handler_n);
    /* on an alternate stack: out of the thread's stack, not read */
    static char alt[64 * 1024];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt}, oss;
    sigaltstack(&ss, &oss);
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    in_handler_n = -2;
    raise(SIGUSR1);
    sigaltstack(&oss, NULL);
    sigaction(SIGUSR1, &old, NULL);
    CHECK(in_handler_n == -1, "a handler on an alternate stack: %d frames (want -1)",
          (int)in_handler_n);
}

/* A coroutine's stack (makecontext): not the thread's, not walked. */
static ucontext_t co_main, co_ctx;
static int co_n = -2;
static void co_body(void)
{
    uintptr_t f[MAXF];
    co_n = WALK(f, MAXF, 0, 0);
}

static int on_coroutine(char *stack, size_t size)
{
    co_n = -2;
    getcontext(&co_ctx);
    co_ctx.uc_stack.ss_sp = stack;
    co_ctx.uc_stack.ss_size = size;
    co_ctx.uc_link = &co_main;
    makecontext(&co_ctx, co_body, 0);
    swapcontext(&co_main, &co_ctx);
    return co_n;
}

/* Coroutine stacks from .bss, malloc and mmap (mmap's lands next to a
 * thread's stack), in the main thread and in another. */
static void *coroutines(void *arg)
{
    (void)arg;
    static char bss[128 * 1024];
    size_t sz = 128 * 1024;
    char *heap = malloc(sz);
    char *map = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static int got[3];
    got[0] = on_coroutine(bss, sizeof bss);
    got[1] = heap ? on_coroutine(heap, sz) : -1;
    got[2] = map != MAP_FAILED ? on_coroutine(map, sz) : -1;
    free(heap);
    if (map != MAP_FAILED)
        munmap(map, sz);
    return got;
}

static void test_other_stack(void **state)
{
    (void)state;
    NEED_WALKER();
    int *got = coroutines(NULL);
    CHECK(got[0] == -1 && got[1] == -1 && got[2] == -1,
          "coroutine stacks (bss, malloc, mmap), main thread: %d %d %d frames (want -1)", got[0],
          got[1], got[2]);
    pthread_t t;
    void *r;
    CHECK(pthread_create(&t, NULL, coroutines, NULL) == 0, "pthread_create");
    pthread_join(t, &r);
    got = r;
    CHECK(got[0] == -1 && got[1] == -1 && got[2] == -1,
          "coroutine stacks (bss, malloc, mmap), a thread: %d %d %d frames (want -1)", got[0],
          got[1], got[2]);
}

/* fork while another thread walks without pause: every child walks and
 * exits (a lock held by the walking thread at the fork would hang it). */
static atomic_int walking;
static void *walk_forever(void *arg)
{
    (void)arg;
    uintptr_t f[MAXF];
    while (atomic_load(&walking))
        WALK(f, MAXF, 0, 0);
    return NULL;
}

static void test_fork_while_walking(void **state)
{
    (void)state;
    NEED_WALKER();
    pthread_t t;
    atomic_store(&walking, 1);
    CHECK(pthread_create(&t, NULL, walk_forever, NULL) == 0, "pthread_create");
    int hung = 0, bad = 0;
    for (int i = 0; i < 200; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(5); /* a hang ends as SIGALRM */
            uintptr_t f[MAXF];
            _exit(WALK(f, MAXF, 0, 0) > 1 ? 0 : 3);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid)
            bad++;
        else if (WIFSIGNALED(st))
            hung++;
        else if (WEXITSTATUS(st) != 0)
            bad++;
    }
    atomic_store(&walking, 0);
    pthread_join(t, NULL);
    CHECK(hung == 0 && bad == 0, "200 fork children: %d hung, %d failed", hung, bad);
}

static void test_rules_kept(void **state)
{
    (void)state;
    NEED_WALKER();
    struct both b;
    uint64_t before = 0, reads[2];
    for (volatile int i = 0; i < 2; i++) { /* the same stack twice (one call site) */
        before = cfiwalk_reads();
        recurse(&b, 5);
        reads[i] = cfiwalk_reads() - before;
    }
    same_stacks(&b, "again");
    CHECK(reads[0] > 0 && reads[1] == 0, "the first walk read %lu rules, the second %lu",
          (unsigned long)reads[0], (unsigned long)reads[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recursion),   cmocka_unit_test(test_rbp_frames),
        cmocka_unit_test(test_libc_frames), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_max_and_skip), cmocka_unit_test(test_signal_frame),
        cmocka_unit_test(test_other_stack), cmocka_unit_test(test_rules_kept),
        cmocka_unit_test(test_fork_while_walking),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
