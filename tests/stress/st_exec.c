/* st_exec: a process that execs itself GENERATIONS times.
 *
 *   st_exec GENERATIONS LIVE_PORT DEAD_PORT [TAG]
 *
 * Each generation: finds the shim in its own mappings when LD_PRELOAD names
 * it (the preload is inherited through execve, or the chain is broken),
 * allocates (1000 blocks and one of 2 MiB, written, checked, freed),
 * connects to 127.0.0.1:DEAD_PORT (refused: the shim retries as configured,
 * then ECONNREFUSED), then to LIVE_PORT and sends "TAG GEN\n", and execs
 * itself with GENERATIONS - 1. Generation 0 prints "chain TAG done" and
 * exits 0; a generation that fails exits 1 naming what failed. Under
 * RESHIM_LOG=info only the last image writes an exit summary (execve runs
 * no exit code), and its counters are its own: connect calls=2. */
#define _GNU_SOURCE
#include <stdint.h>

#include "stress_util.h"

static int shim_mapped(void)
{
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "libreshim"))
        return -1; /* not asked for */
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    char line[512];
    int yes = 0;
    while (!yes && fgets(line, sizeof line, f))
        yes = strstr(line, "libreshim") != NULL;
    fclose(f);
    return yes;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: st_exec GENERATIONS LIVE_PORT DEAD_PORT [TAG]\n");
        return 2;
    }
    int gen = atoi(argv[1]), live = atoi(argv[2]), dead = atoi(argv[3]);
    const char *tag = argc > 4 ? argv[4] : "chain";
    if (shim_mapped() == 0) {
        fprintf(stderr, "st_exec: generation %d: LD_PRELOAD names the shim, not mapped\n", gen);
        return 1;
    }
    unsigned char *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = malloc(1 + (size_t)i * 7);
        if (!p[i])
            return 1;
        memset(p[i], i, 1 + (size_t)i * 7);
    }
    unsigned char *big = malloc(2u << 20);
    if (!big)
        return 1;
    memset(big, gen, 2u << 20);
    for (int i = 0; i < 1000; i++) {
        if (p[i][(size_t)i * 7] != (unsigned char)i) {
            fprintf(stderr, "st_exec: generation %d: heap corrupted\n", gen);
            return 1;
        }
        free(p[i]);
    }
    free(big);
    int fd = tcp_connect(dead);
    if (fd >= 0 || errno != ECONNREFUSED) {
        fprintf(stderr, "st_exec: generation %d: connect to the refused port: %s\n", gen,
                fd >= 0 ? "connected" : strerror(errno));
        return 1;
    }
    fd = tcp_connect(live);
    if (fd < 0) {
        fprintf(stderr, "st_exec: generation %d: connect to %d: %s\n", gen, live, strerror(errno));
        return 1;
    }
    char line[128];
    int n = snprintf(line, sizeof line, "%s %d\n", tag, gen);
    if (write(fd, line, (size_t)n) != n) {
        fprintf(stderr, "st_exec: generation %d: write: %s\n", gen, strerror(errno));
        return 1;
    }
    close(fd);
    if (gen == 0) {
        printf("chain %s done\n", tag);
        return 0;
    }
    char next[16];
    snprintf(next, sizeof next, "%d", gen - 1);
    char *args[] = {argv[0], next, argv[2], argv[3], (char *)tag, NULL};
    execv("/proc/self/exe", args);
    fprintf(stderr, "st_exec: generation %d: execv: %s\n", gen, strerror(errno));
    return 1;
}
