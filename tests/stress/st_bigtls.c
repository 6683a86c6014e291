/* st_bigtls: a program with 256 KiB of thread-local data (a static TLS
 * block that glibc puts on every thread's stack), waiting for its own stats
 * socket. Under the shim the stats thread must start anyway (its 128 KiB
 * stack cannot hold that TLS: pthread_create fails with EINVAL unless the
 * shim falls back to the default size). Prints "stats pid P: ok" and exits
 * 0 when the socket answers with its pid; 1 when it does not within 10 s. */
#define _GNU_SOURCE
#include "stress_util.h"

static __thread char big[256 * 1024];

int main(void)
{
    big[0] = 1;
    struct memfig m;
    if (wait_own_socket(10) != 0 || own_figures(&m) != 0 || m.pid != getpid()) {
        printf("stats pid %d: no answer\n", (int)getpid());
        return 1;
    }
    printf("stats pid %d: ok\n", (int)getpid());
    return big[0] - 1;
}
