/* mem_forker: fork from a process whose other threads are busy in malloc and
 * free, for the integration tests (build/bin/mem_forker).
 *
 *   mem_forker FORKS [THREADS]
 *
 * THREADS (default 4) threads allocate, write and free blocks of 1..8192
 * bytes in a loop, each keeping up to 256 live. The main thread holds one
 * 8 MiB block (written) for the whole run and forks FORKS times, one child
 * at a time, while those threads run. Each child (alarm(20): a child that
 * hangs dies of SIGALRM) checks the 8 MiB block it inherited, makes 100
 * allocations (written, checked, freed) and leaves with exit(0), so that
 * atexit handlers and the preloaded library's exit code run as usual. The
 * parent waits for each child and checks its status.
 *
 * Prints "children N ok M" and "parent ops K" (the threads' allocations);
 * exit 0 when every child exited 0, else 1 (the first bad status on stderr). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELD (8u << 20)

static atomic_int stop;
static atomic_ulong total_ops;

static void *churn(void *arg)
{
    unsigned long seed = (unsigned long)(size_t)arg * 2654435761u + 1, ops = 0;
    void *live[256] = { 0 };
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        unsigned i = (unsigned)(seed >> 33) % 256;
        if (live[i]) {
            free(live[i]);
            live[i] = NULL;
        } else {
            size_t n = 1 + (seed >> 20) % 8192;
            live[i] = malloc(n);
            if (!live[i])
                abort();
            memset(live[i], (int)i, n < 64 ? n : 64);
            ops++;
        }
    }
    for (int i = 0; i < 256; i++)
        free(live[i]);
    atomic_fetch_add(&total_ops, ops);
    return NULL;
}

static int child(unsigned char *held)
{
    alarm(20);
    for (size_t i = 0; i < HELD; i += 4096)
        if (held[i] != (unsigned char)(i >> 12))
            return 3;
    void *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = malloc(16 + (size_t)i * 40);
        if (!p[i])
            return 4;
        memset(p[i], i, 16 + (size_t)i * 40);
    }
    for (int i = 0; i < 100; i++) {
        if (((unsigned char *)p[i])[15 + i * 40] != (unsigned char)i)
            return 5;
        free(p[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 200;
    int nt = argc > 2 ? atoi(argv[2]) : 4;
    if (nt < 0 || nt > 64)
        nt = 4;
    unsigned char *held = malloc(HELD);
    if (!held)
        return 1;
    for (size_t i = 0; i < HELD; i += 4096)
        held[i] = (unsigned char)(i >> 12);

    pthread_t t[64];
    for (int i = 0; i < nt; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)(size_t)(i + 1))) {
            fprintf(stderr, "mem_forker: pthread_create failed\n");
            return 1;
        }
    usleep(100000); /* the threads are busy */

    int ok = 0, bad = 0;
    fflush(stdout);
    fflush(stderr);
    for (int k = 0; k < forks; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("mem_forker: fork");
            bad++;
            break;
        }
        if (pid == 0)
            exit(child(held));
        int st = 0;
        if (waitpid(pid, &st, 0) != pid) {
            perror("mem_forker: waitpid");
            bad++;
            continue;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            ok++;
        } else {
            if (!bad) {
                if (WIFSIGNALED(st))
                    fprintf(stderr, "mem_forker: child %d (pid %d) killed by signal %d%s\n", k,
                            (int)pid, WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (hung)" : "");
                else
                    fprintf(stderr, "mem_forker: child %d (pid %d) exited with %d\n", k,
                            (int)pid, WEXITSTATUS(st));
            }
            bad++;
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    free(held);
    printf("children %d ok %d\n", forks, ok);
    printf("parent ops %lu\n", atomic_load(&total_ops));
    return bad ? 1 : 0;
}
