/* st_fork: FORKS forks from a multithreaded, allocating process.
 *
 *   st_fork FORKS [THREADS] [PARALLEL]
 *
 * THREADS (default 4) threads allocate and free (1 B .. 64 KiB, some mmap)
 * without pause; one more thread accepts TCP connections on 127.0.0.1 (a
 * listener of the process itself) and reads one byte from each. The main
 * thread forks FORKS children, up to PARALLEL (default 8) alive at once,
 * while all that runs. Each child (alarm(30): a child that hangs in a lock
 * the fork copied dies of SIGALRM and is reported as hung) makes 200
 * allocations (written, checked, freed); every 3rd connects to the listener
 * and sends a byte; every 5th connects to a refused port (the shim retries
 * with the configured backoff, the call ends in ECONNREFUSED); every 50th
 * waits for its own stats socket and asks it: the answer must carry its own
 * pid and its own counts (reset at fork: fewer than 1000 allocations). Half
 * leave with exit(0) (atexit handlers and the library's exit code run), half
 * with _exit(0).
 *
 * After the last child the parent checks that its own stats socket (if
 * ST_STATS=1) still answers with its pid, and that the listener got one
 * connection per connecting child.
 * Prints "children N ok M hung H bad B accepted A"; exit 0 only when every
 * child exited 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "stress_util.h"

static atomic_int stop;
static atomic_long accepted;
static int lsn, live_port, dead_port;

static void *churn(void *arg)
{
    uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    void *live[256] = {0};
    size_t len[256] = {0};
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        unsigned i = (unsigned)(s >> 33) % 256;
        if (live[i]) {
            if (len[i])
                munmap(live[i], len[i]);
            else
                free(live[i]);
            live[i] = NULL;
            continue;
        }
        size_t n = 1 + (s >> 20) % 65536;
        if ((s >> 50) % 16 == 0) {
            void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED)
                abort();
            live[i] = p;
            len[i] = n;
        } else {
            live[i] = malloc(n);
            len[i] = 0;
            if (!live[i])
                abort();
        }
        memset(live[i], (int)i, n < 128 ? n : 128);
    }
    for (int i = 0; i < 256; i++)
        if (live[i]) {
            if (len[i])
                munmap(live[i], len[i]);
            else
                free(live[i]);
        }
    return NULL;
}

static void *acceptor(void *arg)
{
    for (;;) {
        int c = accept(lsn, NULL, NULL);
        if (c < 0) {
            if (atomic_load(&stop))
                return NULL;
            continue;
        }
        char b;
        if (read(c, &b, 1) == 1)
            atomic_fetch_add(&accepted, 1);
        close(c);
    }
}

static int child(int k)
{
    alarm(30);
    void *p[200];
    for (int i = 0; i < 200; i++) {
        size_t n = 16 + (size_t)(i * 37 + k) % 5000;
        p[i] = malloc(n);
        if (!p[i])
            return 4;
        memset(p[i], i, n);
        if (((unsigned char *)p[i])[n - 1] != (unsigned char)i)
            return 5;
    }
    for (int i = 0; i < 200; i++)
        free(p[i]);
    if (k % 3 == 0) {
        int fd = tcp_connect(live_port);
        if (fd < 0)
            return 6;
        if (write(fd, "x", 1) != 1)
            return 7;
        close(fd);
    }
    if (k % 5 == 0) {
        int fd = tcp_connect(dead_port);
        if (fd >= 0 || errno != ECONNREFUSED)
            return 8;
    }
    if (k % 50 == 0 && getenv("ST_STATS")) {
        struct memfig m;
        if (wait_own_socket(10) != 0)
            return 9;
        if (own_figures(&m) != 0)
            return 10;
        if (m.pid != getpid() || m.allocs > 1000)
            return 11;
    }
    if (k % 2)
        exit(0);
    _exit(0);
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 1000;
    int nt = argc > 2 ? atoi(argv[2]) : 4;
    int par = argc > 3 ? atoi(argv[3]) : 8;
    if (nt < 0 || nt > 64 || par < 1 || par > 256)
        return 2;
    int hold = refused_port(&dead_port);
    live_port = 0;
    lsn = tcp_listen(&live_port);
    if (hold < 0 || lsn < 0) {
        perror("st_fork: sockets");
        return 1;
    }
    pthread_t t[65];
    for (int i = 0; i < nt; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)))
            return 1;
    pthread_t at;
    if (pthread_create(&at, NULL, acceptor, NULL))
        return 1;
    usleep(100000);
    fflush(NULL);
    int ok = 0, hung = 0, bad = 0, alive = 0, started = 0, connecting = 0;
    while (started < forks || alive > 0) {
        if (started < forks && alive < par) {
            pid_t pid = fork();
            if (pid < 0) {
                perror("st_fork: fork");
                bad++;
                forks = started;
                continue;
            }
            if (pid == 0)
                child(started);
            if (started % 3 == 0)
                connecting++;
            started++;
            alive++;
            continue;
        }
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("st_fork: waitpid");
            return 1;
        }
        alive--;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        } else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            hung++;
            fprintf(stderr, "st_fork: child %d hung (killed by its alarm)\n", (int)pid);
        } else {
            bad++;
            if (WIFSIGNALED(st))
                fprintf(stderr, "st_fork: child %d killed by signal %d\n", (int)pid,
                        WTERMSIG(st));
            else
                fprintf(stderr, "st_fork: child %d exited with %d\n", (int)pid,
                        WEXITSTATUS(st));
        }
    }
    /* Every connecting child wrote its byte before exiting; the acceptor may
     * still be reading the last ones. */
    for (int i = 0; i < 500 && atomic_load(&accepted) < connecting; i++)
        usleep(10000);
    int rc = (ok == forks && !hung && !bad) ? 0 : 1;
    if (atomic_load(&accepted) != connecting) {
        fprintf(stderr, "st_fork: the listener got %ld connections, %d children connected\n",
                atomic_load(&accepted), connecting);
        rc = 1;
    }
    if (getenv("ST_STATS")) {
        struct memfig m;
        if (wait_own_socket(10) != 0 || own_figures(&m) != 0 || m.pid != getpid()) {
            fprintf(stderr, "st_fork: the parent's stats socket does not answer\n");
            rc = 1;
        }
    }
    atomic_store(&stop, 1);
    shutdown(lsn, SHUT_RDWR);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    printf("children %d ok %d hung %d bad %d accepted %ld\n", forks, ok, hung, bad,
           atomic_load(&accepted));
    return rc;
}
