/* app_edges: small programs that do unusual but legal things around the
 * shim's own threads and descriptors, for test_app_edges.sh
 * (build/bin/app_edges). Each behaves the same with and without the shim
 * when the shim is right.
 *
 *   app_edges sigstorm          malloc/free in a loop (a second thread only
 *                               waits) while SIGALRM (every 100 us) runs a
 *                               handler that calls socket() and close() in
 *                               that thread; then idles in poll()
 *   app_edges efd               closes every fd above 2 (the shim's too), fills
 *                               the freed numbers with its own eventfds and a
 *                               pipe, checks its values survive (and a fork
 *                               child's writes)
 *   app_edges daemon GO QUIT    closes 0, 1 and 2, then (once GO exists)
 *                               writes a secret line to fd 2; waits for QUIT
 *   app_edges errno             errno stays EBADF across successful mallocs
 *   app_edges noreserve         an 8 GiB MAP_NORESERVE mapping, 10 MB touched,
 *                               then a 2 MiB malloc and a 4 MiB mmap
 *   app_edges statm             closes every fd above 2, fills the numbers
 *                               with pipes, forks: the child writes to each
 *
 * With APP_EDGES_STATS=1 (set by the test only when the shim is preloaded)
 * the program also waits until the shim's stats socket
 * $RESHIM_RUN_DIR/PID.sock exists at the point where the stats thread should
 * be up, and fails (exit 4) when it does not appear.
 *
 * It first closes the descriptors above 2 it inherited and runs itself
 * again (APP_EDGES_CLEAN=1), so that only the shim's own are there.
 *
 * Prints what it measured, one "key: ..." line each; exit 0 when everything
 * behaved as it does without a preloaded library, 1 (with the difference
 * printed) when not, 2 on a usage or setup error. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int out_fd = 1; /* where the report goes (daemon: a copy of stdout) */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    (void)!write(out_fd, buf, (size_t)n);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool stats_expected(void)
{
    const char *e = getenv("APP_EDGES_STATS");
    return e && strcmp(e, "1") == 0;
}

/* With APP_EDGES_STATS=1: until $RESHIM_RUN_DIR/PID.sock exists (polling,
 * which is itself a slow point of the shim). Exits 4 when it does not. */
static void wait_stats_socket(const char *where)
{
    if (!stats_expected())
        return;
    const char *dir = getenv("RESHIM_RUN_DIR");
    if (!dir) {
        say("error: APP_EDGES_STATS=1 without RESHIM_RUN_DIR\n");
        exit(2);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%d.sock", dir, (int)getpid());
    uint64_t start = now_ns();
    while (access(path, F_OK) != 0) {
        if (now_ns() - start > 4000000000u) {
            say("stats: no socket %s 4 s after %s: the stats thread never started\n", path, where);
            exit(4);
        }
        poll(NULL, 0, 10);
    }
    say("stats: socket %s there %.0f ms after %s\n", path, (double)(now_ns() - start) / 1e6,
        where);
}

/* The highest descriptor above 2 that is open (not counting the directory
 * stream used to find it), -1 when none; the open ones described in desc. */
static int fds_above_stdio(char *desc, size_t n)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int top = -1, self = dirfd(d);
    size_t used = 0;
    if (n)
        desc[0] = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd <= 2 || fd == self)
            continue;
        if (fd > top)
            top = fd;
        char p[64], l[128];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(p, l, sizeof l - 1);
        l[k > 0 ? k : 0] = 0;
        if (used < n) {
            int w = snprintf(desc + used, n - used, "%s%d=%s", used ? " " : "", fd, l);
            if (w > 0)
                used += (size_t)w;
        }
    }
    closedir(d);
    return top;
}

/* The first descriptor open on a file under /proc whose name ends in
 * suffix, -1 when none. */
static int find_proc_fd(const char *suffix)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int found = -1, self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self)
            continue;
        char p[64], l[256];
        snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(p, l, sizeof l - 1);
        if (k <= 0)
            continue;
        l[k] = 0;
        size_t ls = strlen(l), ss = strlen(suffix);
        if (strncmp(l, "/proc/", 6) == 0 && ls > ss && strcmp(l + ls - ss, suffix) == 0) {
            found = fd;
            break;
        }
    }
    closedir(d);
    return found;
}

/* What an app does when it wants no inherited descriptors (closefrom). */
static void close_all_above_stdio(void)
{
    if (close_range(3, ~0U, 0) == 0)
        return;
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
}

/* ---- sigstorm --------------------------------------------------------------- */

#define SLOTS 32
static void *slots[SLOTS];
static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        close(fd);
    handled = handled + 1;
    errno = saved;
}

/* A second thread that only waits: the process is multi-threaded, so
 * glibc's malloc takes its arena lock (a single-threaded process skips it). */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_done;

static void *idle_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&idle_mu);
    while (!idle_done)
        pthread_cond_wait(&idle_cv, &idle_mu);
    pthread_mutex_unlock(&idle_mu);
    return NULL;
}

static int mode_sigstorm(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* the idle thread never takes SIGALRM */
    pthread_t idle;
    if (pthread_create(&idle, NULL, idle_thread, NULL) != 0)
        return 2;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0)
        return 2;
    /* Live blocks stay under 32 x 4 KiB: no growth step (a safe slow point)
     * happens in the loop, the first slow point is a handler. */
    struct itimerval it = {{0, 100}, {0, 100}};
    uint64_t start = now_ns(), pairs = 0;
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        return 2;
    while (now_ns() - start < 40000000u) { /* 40 ms */
        for (int k = 0; k < 256; k++, pairs++) {
            unsigned i = (unsigned)(pairs * 7) % SLOTS;
            free(slots[i]);
            slots[i] = malloc(64 + (pairs * 37) % 4000);
            if (!slots[i])
                return 2;
            *(volatile char *)slots[i] = (char)pairs;
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < SLOTS; i++) {
        free(slots[i]);
        slots[i] = NULL;
    }
    int ran = handled;
    pthread_mutex_lock(&idle_mu);
    idle_done = 1;
    pthread_cond_signal(&idle_cv);
    pthread_mutex_unlock(&idle_mu);
    pthread_join(idle, NULL);
    poll(NULL, 0, 0); /* idle: a slow point after the storm */
    wait_stats_socket("the storm");
    say("sigstorm: %llu malloc/free pairs in 40 ms, %d handlers ran socket()+close()\n",
        (unsigned long long)pairs, ran);
    return ran > 0 ? 0 : 1;
}

/* ---- efd ---------------------------------------------------------------------- */

#define MAXFDS 256

static int mode_efd(void)
{
    usleep(150000);
    poll(NULL, 0, 0); /* a slow point past 100 ms: the stats thread starts */
    wait_stats_socket("the first poll");
    char before[1024];
    int top = fds_above_stdio(before, sizeof before);
    say("efd: fds above 2 before closing: %s\n", top < 0 ? "none" : before);
    close_all_above_stdio();

    /* Eventfds on every freed number (at least one), then a pipe. */
    int efd[MAXFDS], ne = 0;
    do {
        efd[ne] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd[ne] < 0) {
            say("efd: eventfd: %s\n", strerror(errno));
            return 2;
        }
        ne++;
    } while (efd[ne - 1] < top && ne < MAXFDS);
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return 2;
    say("efd: app eventfds on fds %d..%d, app pipe %d,%d\n", efd[0], efd[ne - 1], p[0], p[1]);

    int bad = 0;
    for (int i = 0; i < ne; i++) {
        uint64_t v = 1000 + (uint64_t)efd[i];
        if (write(efd[i], &v, sizeof v) != (ssize_t)sizeof v) {
            say("efd: write to own eventfd %d: %s\n", efd[i], strerror(errno));
            bad++;
        }
    }
    if (write(p[1], "app-pipe", 8) != 8) {
        say("efd: write to own pipe: %s\n", strerror(errno));
        bad++;
    }
    /* The stats thread waits at most 1 s: it has looked at its descriptors
     * again by now. */
    usleep(1300000);
    for (int i = 0; i < ne; i++) {
        uint64_t v = 0;
        ssize_t r = read(efd[i], &v, sizeof v);
        if (r != (ssize_t)sizeof v || v != 1000 + (uint64_t)efd[i]) {
            if (r < 0)
                say("efd: own eventfd %d: wrote %llu, read back nothing (%s): someone drained it\n",
                    efd[i], (unsigned long long)(1000 + efd[i]), strerrorname_np(errno));
            else
                say("efd: own eventfd %d: wrote %llu, read back %llu\n", efd[i],
                    (unsigned long long)(1000 + efd[i]), (unsigned long long)v);
            bad++;
        }
    }
    char buf[16] = {0};
    ssize_t r = read(p[0], buf, sizeof buf - 1);
    if (r != 8 || memcmp(buf, "app-pipe", 8) != 0) {
        say("efd: own pipe: read back %zd (%s)\n", r, r < 0 ? strerror(errno) : buf);
        bad++;
    }
    say("efd: after 1.3 s: %d of %d eventfd values and the pipe's data intact\n", ne - bad, ne);

    /* A fork child writes to every one of them. */
    pid_t c = fork();
    if (c < 0)
        return 2;
    if (c == 0) {
        int cbad = 0;
        for (int i = 0; i < ne; i++) {
            uint64_t one = 1;
            if (write(efd[i], &one, sizeof one) != (ssize_t)sizeof one) {
                say("efd: fork child: write to the app's eventfd %d: %s\n", efd[i], strerror(errno));
                cbad++;
            }
        }
        if (write(p[1], "child", 5) != 5) {
            say("efd: fork child: write to the app's pipe %d: %s\n", p[1], strerror(errno));
            cbad++;
        }
        _exit(cbad ? 1 : 0);
    }
    int st;
    if (waitpid(c, &st, 0) != c)
        return 2;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("efd: fork child: status 0x%x\n", st);
        bad++;
    }
    int got = 0;
    for (int i = 0; i < ne; i++) {
        uint64_t v = 0;
        if (read(efd[i], &v, sizeof v) == (ssize_t)sizeof v && v == 1)
            got++;
    }
    memset(buf, 0, sizeof buf);
    r = read(p[0], buf, sizeof buf - 1);
    if (got != ne || r != 5) {
        say("efd: after the fork child: %d of %d eventfds hold its 1, pipe read %zd\n", got, ne, r);
        bad++;
    }
    say("efd: fork child wrote to %d eventfds and the pipe: %s\n", ne, bad ? "NOT all arrived" : "all arrived");
    return bad ? 1 : 0;
}

/* ---- daemon ------------------------------------------------------------------- */

static bool wait_file(const char *path, int secs)
{
    uint64_t start = now_ns();
    while (access(path, F_OK) != 0) {
        if (now_ns() - start > (uint64_t)secs * 1000000000u)
            return false;
        usleep(20000);
    }
    return true;
}

#define SECRET "app-secret-line password=hunter2\n"

static int mode_daemon(const char *go, const char *quit)
{
    out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (out_fd < 0)
        return 2;
    close(0); /* a daemon that does not reopen /dev/null */
    close(1);
    close(2);
    usleep(150000);
    poll(NULL, 0, 0); /* a slow point past 100 ms: the stats thread starts */
    wait_stats_socket("the first poll");
    say("ready %d\n", (int)getpid());
    if (!wait_file(go, 10)) {
        say("daemon: %s never appeared\n", go);
        return 2;
    }
    ssize_t first = 0;
    int first_errno = 0, ok = 0;
    for (int i = 0; i < 10; i++) {
        errno = 0;
        ssize_t r = write(2, SECRET, sizeof SECRET - 1);
        if (i == 0) {
            first = r;
            first_errno = errno;
        }
        if (r > 0)
            ok++;
        usleep(30000);
    }
    say("wrote: write(2, secret) x10: %d succeeded, the first returned %zd (%s)\n", ok, first,
        first < 0 ? strerrorname_np(first_errno) : "written");
    if (!wait_file(quit, 20))
        return 2;
    return 0;
}

/* ---- errno -------------------------------------------------------------------- */

static void *kept[301];

static int mode_errno(void)
{
    errno = EBADF;
    for (int i = 0; i < 301; i++) {
        size_t sz = i < 300 ? 4096 : 2u << 20;
        kept[i] = malloc(sz);
        int e = errno;
        if (!kept[i]) {
            say("errno: malloc #%d of %zu bytes failed\n", i + 1, sz);
            return 2;
        }
        if (e != EBADF) {
            say("errno: after malloc #%d (%zu bytes, it succeeded) errno is %s, was EBADF\n", i + 1,
                sz, strerrorname_np(e));
            return 1;
        }
    }
    say("errno: still EBADF after 300 successful mallocs of 4 KiB and one of 2 MiB\n");
    return 0;
}

/* ---- noreserve ---------------------------------------------------------------- */

static int mode_noreserve(void)
{
    size_t len = 8ul << 30, touch = 10u << 20;
    /* As in any real program, malloc has been used before. */
    void *small = malloc(64);
    *(volatile char *)small = 1;
    free(small);
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) {
        say("noreserve: mmap of 8 GiB PROT_READ|PROT_WRITE MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE "
            "failed: %s\n",
            strerrorname_np(errno));
        return 1;
    }
    for (size_t off = 0; off < touch; off += 4096)
        m[off] = (char)(off >> 12);
    for (size_t off = 0; off < touch; off += 4096)
        if (m[off] != (char)(off >> 12)) {
            say("noreserve: touched page at %zu reads back wrong\n", off);
            return 1;
        }
    /* With the reservation still there, ordinary allocations go on working. */
    char *blk = malloc(2u << 20);
    int e1 = errno;
    char *map = mmap(NULL, 4u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int e2 = errno;
    if (!blk || map == MAP_FAILED) {
        say("noreserve: 8 GiB MAP_NORESERVE mapping made, 10 MB of it touched; then malloc(2 MiB) "
            "%s, a 4 MiB mmap %s\n",
            blk ? "ok" : strerrorname_np(e1), map != MAP_FAILED ? "ok" : strerrorname_np(e2));
        return 1;
    }
    memset(blk, 1, 2u << 20);
    memset(map, 1, 4u << 20);
    free(blk);
    munmap(map, 4u << 20);
    munmap(m, len);
    say("noreserve: 8 GiB MAP_NORESERVE mapping made, 10 MB of it touched, then a 2 MiB malloc and "
        "a 4 MiB mmap\n");
    return 0;
}

/* ---- statm -------------------------------------------------------------------- */

static int mode_statm(void)
{
    size_t big = 4u << 20;
    char *b = malloc(big); /* a large allocation: the memory monitor reads statm */
    if (!b)
        return 2;
    memset(b, 1, big);
    usleep(200000);
    poll(NULL, 0, 0);
    int statm = find_proc_fd("/statm");
    char before[1024];
    int top = fds_above_stdio(before, sizeof before);
    say("statm: kept statm fd %d; fds above 2 before closing: %s\n", statm,
        top < 0 ? "none" : before);
    close_all_above_stdio();
    /* Pipes on every freed number (at least one), then fork at once. */
    int pr[MAXFDS / 2], pw[MAXFDS / 2], np = 0;
    do {
        int p[2];
        if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
            return 2;
        pr[np] = p[0];
        pw[np] = p[1];
        np++;
    } while (pw[np - 1] < top && np < MAXFDS / 2);
    pid_t c = fork();
    if (c < 0)
        return 2;
    if (c == 0) {
        int cbad = 0;
        for (int i = 0; i < np; i++) {
            if (fcntl(pr[i], F_GETFD) < 0) {
                say("statm: fork child: the app's pipe read end %d: %s\n", pr[i], strerror(errno));
                cbad++;
            }
            if (write(pw[i], "x", 1) != 1) {
                say("statm: fork child: write to the app's pipe %d: %s\n", pw[i], strerror(errno));
                cbad++;
            }
        }
        _exit(cbad ? 1 : 0);
    }
    int st, bad = 0;
    if (waitpid(c, &st, 0) != c)
        return 2;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("statm: fork child: status 0x%x\n", st);
        bad++;
    }
    int got = 0;
    for (int i = 0; i < np; i++) {
        char ch = 0;
        if (read(pr[i], &ch, 1) == 1 && ch == 'x')
            got++;
    }
    if (got != np)
        bad++;
    say("statm: %d pipes on fds %d..%d; the fork child's byte arrived in %d of them\n", np, pr[0],
        pw[np - 1], got);
    free(b);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    /* Start clean: descriptors inherited from the test harness are closed
     * and the program runs again, so that the shim's own descriptors are
     * the only ones above 2 (the shim opens none before its first slow
     * point). */
    if (!getenv("APP_EDGES_CLEAN")) {
        close_all_above_stdio();
        setenv("APP_EDGES_CLEAN", "1", 1);
        execv("/proc/self/exe", argv);
        perror("app_edges: execv /proc/self/exe");
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "sigstorm") == 0)
        return mode_sigstorm();
    if (argc >= 2 && strcmp(argv[1], "efd") == 0)
        return mode_efd();
    if (argc >= 4 && strcmp(argv[1], "daemon") == 0)
        return mode_daemon(argv[2], argv[3]);
    if (argc >= 2 && strcmp(argv[1], "errno") == 0)
        return mode_errno();
    if (argc >= 2 && strcmp(argv[1], "noreserve") == 0)
        return mode_noreserve();
    if (argc >= 2 && strcmp(argv[1], "statm") == 0)
        return mode_statm();
    fprintf(stderr, "usage: app_edges sigstorm|efd|daemon GO QUIT|errno|noreserve|statm\n");
    return 2;
}
