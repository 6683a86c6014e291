/* st_closeall: a process that closes every descriptor above stderr, the
 * shim's included, and goes on.
 *
 *   st_closeall DIR SECONDS        (env ST_STATS=1: the stats checks too)
 *
 * Before: allocates, connects, waits for its own stats socket and asks it
 * (so the stats thread holds its listener and wake pipe, memmon its statm
 * descriptor, RESHIM_PUSH its datagram socket). Lists /proc/self/fd.
 * Then close_range(3, ~0U, 0) and at once opens 64 files DIR/f00..f63 (they
 * take the lowest numbers: those the shim had), writes a header line to
 * each, and for SECONDS: allocates and frees (blocks up to 4 MiB: growth
 * steps, where the shim reads RSS), connects to a refused port (retries) and
 * to a listener of its own (a byte each way), polls, forks children that do
 * the same and exit, asks its own stats socket (the shim must make a new
 * listener: its old descriptor number is now one of the files), and appends
 * one line to each file now and then. At the end every file must hold
 * exactly the lines the program wrote (a byte of the shim's in one of them,
 * a datagram, a log line, a stats answer, is corruption), every descriptor
 * the program opened must still be what it opened (fstat identity), every
 * child must have exited 0, and (ST_STATS=1) heap_live after all is freed
 * must equal the figure taken right after the close, with allocs and frees
 * grown by exactly the program's own calls.
 * ST_NO_FORK=1: no children; ST_NO_EXACT=1: the figures are asked for but
 * not compared (the TSan variant, where TSan's malloc comes first).
 * Prints one line; exit 0, or 1 with the reasons on stderr. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "stress_util.h"

#define NFILES 64

static int fds[NFILES];
static struct stat ids[NFILES];
static size_t written[NFILES];
static char dir[512];

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the listing's own */
}

static int line_for(int i, int k, char *out, size_t cap)
{
    return snprintf(out, cap, "file %02d line %04d %s\n", i, k, "abcdefghijklmnopqrstuvwxyz");
}

static int append(int i, int k)
{
    char line[128];
    int n = line_for(i, k, line, sizeof line);
    if (write(fds[i], line, (size_t)n) != n)
        return -1;
    written[i] += (size_t)n;
    return 0;
}

/* One round of work; returns 0 when all went as expected. `own` counts the
 * program's allocating and freeing calls. */
static int work(int live_port, int dead_port, unsigned long *allocs, unsigned long *frees,
                unsigned seed)
{
    void *p[64];
    for (int i = 0; i < 64; i++) {
        size_t n = (i % 16 == 0) ? ((size_t)1 << 20) * (1 + (seed + (unsigned)i) % 4)
                                 : 1 + (seed * 31u + (unsigned)i * 97u) % 20000;
        p[i] = malloc(n);
        if (!p[i])
            return -1;
        memset(p[i], i, n);
        (*allocs)++;
    }
    for (int i = 0; i < 64; i++) {
        free(p[i]);
        (*frees)++;
    }
    int fd = tcp_connect(dead_port);
    if (fd >= 0 || errno != ECONNREFUSED) {
        fprintf(stderr, "st_closeall: refused connect gave %s\n", fd >= 0 ? "a socket" : strerror(errno));
        return -1;
    }
    fd = tcp_connect(live_port);
    if (fd < 0) {
        fprintf(stderr, "st_closeall: live connect: %s\n", strerror(errno));
        return -1;
    }
    char b = 'q';
    if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1 || b != 'Q') {
        fprintf(stderr, "st_closeall: no echo from the own listener\n");
        close(fd);
        return -1;
    }
    close(fd);
    poll(NULL, 0, 1);
    return 0;
}

static int lsn;
static void *echo(void *arg)
{
    for (;;) {
        int c = accept(lsn, NULL, NULL);
        if (c < 0)
            return NULL;
        char b;
        if (read(c, &b, 1) == 1) {
            b = 'Q';
            (void)!write(c, &b, 1);
        }
        close(c);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: st_closeall DIR SECONDS\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    double secs = atof(argv[2]);
    int stats = getenv("ST_STATS") != NULL;
    int exact = stats && !getenv("ST_NO_EXACT"); /* ST_NO_EXACT: another malloc counts */
    int forks = !getenv("ST_NO_FORK");
    unsigned long allocs = 0, frees = 0;

    /* Before: the shim's descriptors are open. */
    int dport, lport = 0;
    int hold = refused_port(&dport);
    lsn = tcp_listen(&lport);
    pthread_t t;
    if (hold < 0 || lsn < 0 || pthread_create(&t, NULL, echo, NULL)) {
        perror("st_closeall: set-up");
        return 1;
    }
    if (work(lport, dport, &allocs, &frees, 1) != 0)
        return 1;
    struct memfig m0;
    if (stats && (wait_own_socket(10) != 0 || own_figures(&m0) != 0)) {
        fprintf(stderr, "st_closeall: no stats answer before the close\n");
        return 1;
    }
    int before = count_fds();

    /* Everything above stderr closed: the echo thread's accept fails and it
     * ends (a close alone does not wake an accept: shut the listener down
     * first); the refused port is given up. */
    shutdown(lsn, SHUT_RDWR);
    pthread_join(t, NULL);
    if (close_range(3, ~0U, 0) != 0) {
        perror("st_closeall: close_range");
        return 1;
    }
    for (int i = 0; i < NFILES; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/f%02d", dir, i);
        fds[i] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fds[i] < 0 || fstat(fds[i], &ids[i]) != 0 || append(i, 0) != 0) {
            perror("st_closeall: open");
            return 1;
        }
    }
    int lowest = fds[0];
    hold = refused_port(&dport);
    lport = 0;
    lsn = tcp_listen(&lport);
    if (hold < 0 || lsn < 0 || pthread_create(&t, NULL, echo, NULL)) {
        perror("st_closeall: set-up after the close");
        return 1;
    }
    struct stat hold_id, lsn_id;
    fstat(hold, &hold_id);
    fstat(lsn, &lsn_id);

    /* After: the stats socket must come back (a new listener). */
    struct memfig m1 = {0}, m2 = {0};
    unsigned long a1 = 0, f1 = 0;
    if (stats) {
        double end = now_s() + 15;
        while (own_figures(&m1) != 0) {
            if (now_s() > end) {
                fprintf(stderr, "st_closeall: the stats socket never answered after the close\n");
                return 1;
            }
            poll(NULL, 0, 50);
        }
        a1 = allocs;
        f1 = frees;
    }
    int bad = 0, rounds = 0, children = 0, questions = 0;
    double stop = now_s() + secs;
    while (now_s() < stop && !bad) {
        rounds++;
        if (work(lport, dport, &allocs, &frees, (unsigned)rounds) != 0)
            bad = 1;
        if (rounds % 5 == 0)
            for (int i = 0; i < NFILES; i++)
                if (append(i, rounds) != 0)
                    bad = 1;
        if (forks && rounds % 10 == 0) {
            fflush(NULL);
            pid_t pid = fork();
            if (pid == 0) {
                alarm(30);
                unsigned long ca = 0, cf = 0;
                _exit(work(lport, dport, &ca, &cf, 7) == 0 ? 0 : 1);
            }
            int st = 0;
            children++;
            if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
                fprintf(stderr, "st_closeall: child failed (status %#x)\n", st);
                bad = 1;
            }
        }
        if (stats && rounds % 7 == 0) {
            struct memfig mq;
            if (own_figures(&mq) != 0 || mq.pid != getpid()) {
                fprintf(stderr, "st_closeall: a stats question failed\n");
                bad = 1;
            }
            questions++;
        }
    }
    if (stats && own_figures(&m2) != 0) {
        fprintf(stderr, "st_closeall: the final stats question failed\n");
        bad = 1;
    }

    /* The program's descriptors are still its own. */
    for (int i = 0; i < NFILES; i++) {
        struct stat st;
        if (fstat(fds[i], &st) != 0 || st.st_ino != ids[i].st_ino || st.st_dev != ids[i].st_dev) {
            fprintf(stderr, "st_closeall: descriptor %d is no longer file f%02d\n", fds[i], i);
            bad = 1;
        }
    }
    struct stat st;
    if (fstat(hold, &st) != 0 || st.st_ino != hold_id.st_ino || fstat(lsn, &st) != 0 ||
        st.st_ino != lsn_id.st_ino) {
        fprintf(stderr, "st_closeall: a socket of the program was replaced\n");
        bad = 1;
    }
    /* The files hold exactly what the program wrote. */
    for (int i = 0; i < NFILES; i++) {
        close(fds[i]);
        char path[600];
        snprintf(path, sizeof path, "%s/f%02d", dir, i);
        int fd = open(path, O_RDONLY);
        static char buf[1 << 20];
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
        if (fd >= 0)
            close(fd);
        if (n != (ssize_t)written[i]) {
            fprintf(stderr, "st_closeall: f%02d holds %zd bytes, the program wrote %zu\n", i, n,
                    written[i]);
            bad = 1;
            continue;
        }
        size_t at = 0;
        for (int k = 0; k <= rounds && at < (size_t)n; k++) {
            if (k != 0 && k % 5 != 0)
                continue;
            char line[128];
            int len = line_for(i, k, line, sizeof line);
            if (memcmp(buf + at, line, (size_t)len) != 0) {
                fprintf(stderr, "st_closeall: f%02d differs at byte %zu: %.60s\n", i, at,
                        buf + at);
                bad = 1;
                break;
            }
            at += (size_t)len;
        }
    }
    printf("fds before the close %d (lowest new file fd %d); %d rounds, %d children, "
           "%d stats questions; 64 files intact: %s",
           before, lowest, rounds, children, questions, bad ? "no" : "yes");
    if (stats) {
        printf("; shim after the close: heap_live %lld -> %lld, allocs +%lld (program %lu), "
               "frees +%lld (program %lu)",
               m1.heap_live, m2.heap_live, m2.allocs - m1.allocs, allocs - a1,
               m2.frees - m1.frees, frees - f1);
        if (exact && (m2.heap_live != m1.heap_live || m2.allocs - m1.allocs != (long long)(allocs - a1) ||
            m2.frees - m1.frees != (long long)(frees - f1))) {
            fprintf(stderr, "st_closeall: the memory figures are not exact after the close\n");
            bad = 1;
        }
    }
    printf("\n");
    return bad;
}
