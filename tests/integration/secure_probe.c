/* secure_probe: a small program for the security tests (test_security_*.sh).
 * Copies of it are made setuid root or given file capabilities; it reports
 * what it is (real and effective uid, AT_SECURE), whether a 4 MiB malloc
 * succeeds, makes one socket() call after 150 ms (a slow point, where the
 * shim's stats thread starts), then waits until the file argv[1] exists
 * (or 20 s pass) so that the test can look at it from outside.
 *   secure_probe QUITFILE
 * Output: "ready PID ruid=R euid=E secure=S malloc=ok|failed". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: secure_probe QUITFILE\n");
        return 2;
    }
    size_t n = 4u << 20;
    char *p = malloc(n);
    if (p)
        memset(p, 1, n);
    nap_ms(150);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s >= 0)
        close(s);
    printf("ready %d ruid=%u euid=%u secure=%lu malloc=%s\n", (int)getpid(), (unsigned)getuid(),
           (unsigned)geteuid(), getauxval(AT_SECURE), p ? "ok" : "failed");
    fflush(stdout);
    for (int i = 0; i < 2000 && access(argv[1], F_OK) != 0; i++)
        nap_ms(10);
    free(p);
    return 0;
}
