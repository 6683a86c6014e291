/* own.c: what the shim owns in the process beside its memory: its threads
 * (started with every signal blocked, under the guard) and its long-lived
 * descriptors (parked at the top of the descriptor table). Used by the
 * stats thread and the memory monitor; calls nothing above it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "alloc.h"
#include "reshim.h"
#include "sys.h"

/* The shim's long-lived descriptors (wake pipe, stats socket and its
 * clients, the statm fd, the push socket) live at the top of the process's
 * current descriptor table, not at the lowest free numbers: the app's own
 * open()/dup() then get exactly the numbers they would get without the shim
 * (CPython's test_os.test_closerange, which needs two consecutive fds,
 * skipped under the shim when a one-fd hole of the app's sat below our
 * pipe). Not above the table's size (FDSize in /proc/self/status, 64 for a
 * young process): a larger table would change what select() says of a
 * closed fd beyond the old size (the kernel ignores fds past the table, and
 * reports EBADF within it). Never on 0-2. Called a few times per process
 * (the statm fd may be parked on an app thread, inside malloc). */
#define FD_PARK_ROOM 16

static long fd_table_size_read(void)
{
    char buf[1024];
    if (sys_read_file("/proc/self/status", buf, sizeof buf) <= 0)
        return 64; /* the kernel's first table */
    const char *l = strstr(buf, "\nFDSize:");
    if (!l)
        return 64;
    long v = strtol(l + 8, NULL, 10);
    return v > 0 ? v : 64;
}

/* Read once: the open takes the lowest free number for a moment, which an
 * app thread opening at that instant would miss. A table only grows, so a
 * size read earlier is still within it. */
static long fd_table_size(void)
{
    static atomic_long cached;
    long v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!v) {
        v = fd_table_size_read();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

int reshim_fd_above_stdio(int fd)
{
    if (fd < 0)
        return fd;
    GUARD_ENTER();
    int saved = errno;
    long top = fd_table_size();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long)rl.rlim_cur < top)
        top = (long)rl.rlim_cur;
    /* The highest free number below the top, probed downwards (F_DUPFD
     * from a floor would grow the table when the room is full). */
    int high = -1;
    for (long c = top - 1; c > fd && c >= top - FD_PARK_ROOM && c > 2; c--) {
        if (sys_fcntl((int)c, F_GETFD, 0) != -1 || errno != EBADF)
            continue;
        high = sys_fcntl(fd, F_DUPFD_CLOEXEC, c);
        if (high >= top) { /* an app thread took it meanwhile: stay low */
            sys_close(high);
            high = -1;
        }
        break;
    }
    if (high < 0 && fd <= 2)
        high = sys_fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (high >= 0)
        sys_close(fd);
    errno = saved;
    GUARD_LEAVE();
    return high >= 0 ? high : fd;
}

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
/* The ASan build of the shim (tests/stress) binds pthread_create to libc's,
 * not to ASan's interceptor, which would clear the new stack's shadow: in
 * a fork child glibc hands out the stacks of the parent's threads, which
 * vanished mid-call with their frames still poisoned, and ASan then reports
 * our own locals (seen: stack-use-after-scope in dir_problem). */
static void *asan_clean_start(void *fn)
{
    pthread_attr_t a;
    void *lo;
    size_t sz;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        if (pthread_attr_getstack(&a, &lo, &sz) == 0) {
            char *here = (char *)__builtin_frame_address(0);
            /* Below this frame: the stack not in use yet. */
            if (here > (char *)lo && here <= (char *)lo + sz)
                ASAN_UNPOISON_MEMORY_REGION(lo, (size_t)(here - (char *)lo) - 256);
        }
        pthread_attr_destroy(&a);
    }
    void *(*f)(void *);
    memcpy(&f, &fn, sizeof f);
    return f(NULL);
}
#define THREAD_ENTRY(fn) asan_clean_start
#define THREAD_ARG(fn) fn_as_arg(fn)
static void *fn_as_arg(void *(*fn)(void *))
{
    void *v;
    memcpy(&v, &fn, sizeof v);
    return v;
}
#else
#define THREAD_ENTRY(fn) (fn)
#define THREAD_ARG(fn) NULL
#endif

int reshim_thread_start(void *(*fn)(void *), size_t stack)
{
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, stack);
    sigset_t all, prev;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &prev); /* inherited by the new thread */
    GUARD_ENTER();
    alloc_arena_only(true); /* its DTV: never from a lock a handler may have interrupted */
    int rc = pthread_create(&t, &a, THREAD_ENTRY(fn), THREAD_ARG(fn));
    if (rc == EINVAL) {
        /* glibc puts the static TLS on the thread's stack: a large one (an
         * app's big __thread data, a sanitizer runtime) does not fit in
         * `stack`. The default size (RLIMIT_STACK, virtual) makes room. */
        pthread_attr_destroy(&a);
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&t, &a, THREAD_ENTRY(fn), THREAD_ARG(fn));
    }
    alloc_arena_only(false);
    GUARD_LEAVE();
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    pthread_attr_destroy(&a);
    return rc;
}

