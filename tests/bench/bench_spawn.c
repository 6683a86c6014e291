/* bench_spawn.c: process start-up cost. Starts a program N times, one after
 * the other (posix_spawn, then waitpid), and times the whole batch. With
 * -p LIB, each child gets LD_PRELOAD=LIB in its environment (replacing any
 * LD_PRELOAD already set); this process itself never loads LIB.
 *
 *   bench_spawn [-p LIB] N PROGRAM [ARGS...]
 *
 * Prints one line: the batch's wall time, and the CPU time it took (this
 * process and its children, user and system):
 *   bench_spawn n=N seconds=S per_sec=R cpu_seconds=C
 * Exits 1 if a spawn fails or a child does not exit 0. */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double cpu_used(void)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double us = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
                         kids.ru_stime.tv_sec) * 1e6 +
                (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
                         kids.ru_stime.tv_usec);
    return us / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* environ without LD_PRELOAD, plus LD_PRELOAD=lib when lib is set. */
static char **child_env(const char *lib)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[k++] = environ[i];
    if (lib) {
        size_t len = strlen(lib) + sizeof "LD_PRELOAD=";
        char *v = malloc(len);
        if (!v)
            return NULL;
        snprintf(v, len, "LD_PRELOAD=%s", lib);
        env[k++] = v;
    }
    env[k] = NULL;
    return env;
}

int main(int argc, char **argv)
{
    const char *lib = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "+p:")) != -1) {
        if (opt == 'p')
            lib = optarg;
        else
            return 2;
    }
    if (argc - optind < 2) {
        fprintf(stderr, "usage: bench_spawn [-p LIB] N PROGRAM [ARGS...]\n");
        return 2;
    }
    long n = atol(argv[optind]);
    char **child_argv = &argv[optind + 1];
    if (n <= 0) {
        fprintf(stderr, "bench_spawn: bad N\n");
        return 2;
    }
    if (lib && access(lib, R_OK) != 0) {
        fprintf(stderr, "bench_spawn: %s: %s\n", lib, strerror(errno));
        return 1;
    }
    char **env = child_env(lib);
    if (!env) {
        fprintf(stderr, "bench_spawn: out of memory\n");
        return 1;
    }

    double c0 = cpu_used();
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int err = posix_spawn(&pid, child_argv[0], NULL, NULL, child_argv, env);
        if (err) {
            fprintf(stderr, "bench_spawn: posix_spawn %s: %s\n", child_argv[0], strerror(err));
            return 1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0) {
            if (errno != EINTR) {
                perror("bench_spawn: waitpid");
                return 1;
            }
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "bench_spawn: %s: child %d ended with status 0x%x\n", child_argv[0],
                    (int)pid, st);
            return 1;
        }
    }
    double secs = now_s() - t0;
    double cpu = cpu_used() - c0;
    printf("bench_spawn n=%ld seconds=%.6f per_sec=%.1f cpu_seconds=%.6f\n", n, secs,
           (double)n / secs, cpu);
    return 0;
}
